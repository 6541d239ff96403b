//! File-system checks run against both kinds of mount (in-process MemoryStore, CLI DirStore).
//!
//! Each takes the mount root and a `remount` callback that unmounts and mounts the same store
//! at the same place, so "survives remount" means "is in the store", not "is in a cache".

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

use super::data::{
    self, KIB, MIB, assert_same_file, assert_stream_file, sha256_file, sha256_stream, stream_bytes,
    write_stream_file,
};
use super::{assert_errno, run_ok, run_ok_in};

pub type Remount<'a> = &'a mut dyn FnMut();

/// Panics unless `got == want`, reporting lengths and the first differing offset (never the
/// bytes themselves: they can be megabytes).
#[track_caller]
pub fn assert_bytes_eq(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let first = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{what}: got {} bytes, want {}; first difference at {:?} (got {:?}, want {:?})",
            got.len(),
            want.len(),
            first.or(Some(got.len().min(want.len()))),
            first.map(|i| got[i]),
            first.map(|i| want[i])
        );
    }
}

/// Sizes every backend must store and return byte-exactly (64 KiB is the block size).
pub const EDGE_SIZES: [u64; 8] = [
    0,
    1,
    64 * KIB - 1,
    64 * KIB,
    64 * KIB + 1,
    128 * KIB,
    3 * 64 * KIB - 1,
    10 * MIB,
];

pub const BIG_SIZE: u64 = 200 * MIB;

fn seed_for(size: u64) -> u64 {
    0x5eed_0000 ^ size
}

/// Writes files of every size in `sizes` (the 10 MiB one through `cp`, the rest through
/// std::fs), reads them back, remounts and reads them back again.
pub fn sizes_roundtrip(root: &Path, scratch: &Path, sizes: &[u64], remount: Remount) {
    let dir = root.join("sizes");
    fs::create_dir(&dir).expect("mkdir sizes");
    for &size in sizes {
        let path = dir.join(format!("file-{size}"));
        if size == 10 * MIB {
            // Through a real tool, from a local copy.
            let local = scratch.join(format!("local-{size}"));
            write_stream_file(&local, seed_for(size), size);
            run_ok(
                "cp",
                &[
                    local.to_str().expect("utf-8"),
                    path.to_str().expect("utf-8"),
                ],
            );
            fs::remove_file(&local).expect("rm local");
        } else {
            write_stream_file(&path, seed_for(size), size);
        }
        assert_stream_file(&path, seed_for(size), size);
    }
    remount();
    let mut names: Vec<String> = fs::read_dir(&dir)
        .expect("readdir sizes")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .collect();
    names.sort();
    let mut want: Vec<String> = sizes.iter().map(|s| format!("file-{s}")).collect();
    want.sort();
    assert_eq!(names, want, "listing of sizes/ after remount");
    for &size in sizes {
        let path = dir.join(format!("file-{size}"));
        assert_eq!(
            fs::metadata(&path).expect("stat").len(),
            size,
            "size of {} after remount",
            path.display()
        );
        assert_stream_file(&path, seed_for(size), size);
        if size == 10 * MIB {
            let out = run_ok("sha256sum", &[path.to_str().expect("utf-8")]);
            let text = String::from_utf8_lossy(&out.stdout);
            let got = text.split_whitespace().next().unwrap_or_default();
            assert_eq!(
                got,
                hex::encode(sha256_stream(seed_for(size), size)),
                "sha256sum of {}",
                path.display()
            );
        }
    }
}

/// The 200 MiB file: written streamed, read back and hashed before and after a remount.
pub fn big_file_roundtrip(root: &Path, remount: Remount) -> PathBuf {
    let path = root.join("big-200MiB.bin");
    let seed = seed_for(BIG_SIZE);
    write_stream_file(&path, seed, BIG_SIZE);
    assert_eq!(fs::metadata(&path).expect("stat").len(), BIG_SIZE);
    remount();
    assert_eq!(
        sha256_file(&path),
        sha256_stream(seed, BIG_SIZE),
        "SHA-256 after remount"
    );
    assert_stream_file(&path, seed, BIG_SIZE);
    path
}

/// Reads `len` bytes at `offset` of the 200 MiB file written by `big_file_roundtrip` with
/// read-ahead disabled (POSIX_FADV_RANDOM), checks them, returns nothing: the caller
/// compares store counters around it.
pub fn random_read_big(path: &Path, offset: u64, len: usize) {
    let f = File::open(path).expect("open big file");
    // SAFETY: posix_fadvise on a descriptor we own.
    let rc = unsafe {
        libc::posix_fadvise(
            std::os::fd::AsRawFd::as_raw_fd(&f),
            0,
            0,
            libc::POSIX_FADV_RANDOM,
        )
    };
    assert_eq!(rc, 0, "posix_fadvise");
    let mut buf = vec![0u8; len];
    f.read_exact_at(&mut buf, offset).expect("pread");
    assert!(
        buf == stream_bytes(seed_for(BIG_SIZE), offset, len),
        "bytes at {offset} of the big file"
    );
}

/// Reads at most `len` bytes at `offset` (fewer only at end of file).
fn pread_full(f: &File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut n = 0;
    while n < len {
        match f.read_at(&mut buf[n..], offset + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(n);
    Ok(buf)
}

fn open_rw(path: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

/// A test seed: `S3CRYPTFS_TEST_SEED` if set, else `default`. Printed so failures can be
/// replayed.
pub fn test_seed(default: u64) -> u64 {
    let seed = std::env::var("S3CRYPTFS_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    eprintln!("random test seed: {seed} (set S3CRYPTFS_TEST_SEED to replay)");
    seed
}

/// Number of random operations: `S3CRYPTFS_TEST_OPS` if set (longer soak runs), else
/// `default`.
pub fn test_ops(default: usize) -> usize {
    std::env::var("S3CRYPTFS_TEST_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Random-offset writes, reads, truncations, appends and reopen/fsync/remount, applied to a
/// file in the mount and to a local file; every read and the final contents must agree.
pub fn random_ops_against_local(
    root: &Path,
    scratch: &Path,
    seed: u64,
    ops: usize,
    remounts: usize,
    remount: Remount,
) {
    const MAX_LEN: u64 = 3 * MIB;
    let mut rng = StdRng::seed_from_u64(seed);
    let remote_path = root.join("random-ops.bin");
    let local_path = scratch.join("random-ops.local");
    let mut remote = Some(open_rw(&remote_path));
    let mut local = open_rw(&local_path);
    let mut remounts_left = remounts;
    let remount_every = if remounts == 0 {
        usize::MAX
    } else {
        ops / (remounts + 1)
    };
    let mut log: Vec<String> = Vec::new();

    for i in 0..ops {
        let len = local.metadata().expect("stat local").len();
        let r = remote.as_ref().expect("remote open");
        let choice = rng.gen_range(0..100);
        let what;
        if i > 0 && i % remount_every == 0 && remounts_left > 0 {
            remounts_left -= 1;
            what = "remount".to_string();
            drop(remote.take());
            remount();
            remote = Some(open_rw(&remote_path));
        } else if choice < 40 {
            let off = rng.gen_range(0..=(len + 70 * KIB).min(MAX_LEN));
            let n = if rng.gen_bool(0.5) {
                rng.gen_range(1..=100)
            } else {
                rng.gen_range(1..=200 * KIB as usize)
            };
            let n = n.min((MAX_LEN - off.min(MAX_LEN)) as usize).max(1);
            let mut buf = vec![0u8; n];
            rng.fill_bytes(&mut buf);
            what = format!("write {n} at {off}");
            r.write_all_at(&buf, off)
                .unwrap_or_else(|e| panic!("op {i} ({what}) on the mount: {e}"));
            local.write_all_at(&buf, off).expect("local write");
        } else if choice < 70 {
            let off = rng.gen_range(0..=len + 10);
            let n = rng.gen_range(1..=300 * KIB as usize);
            what = format!("read {n} at {off}");
            let got = pread_full(r, off, n)
                .unwrap_or_else(|e| panic!("op {i} ({what}) on the mount: {e}"));
            let want = pread_full(&local, off, n).expect("local read");
            if got != want {
                panic!(
                    "op {i} ({what}): the mount returned {} bytes, the local file {} bytes; first \
                     difference at +{:?}; seed {seed}; ops so far:\n{}",
                    got.len(),
                    want.len(),
                    got.iter().zip(&want).position(|(a, b)| a != b),
                    log.join("\n")
                );
            }
        } else if choice < 78 {
            let new_len = if rng.gen_bool(0.3) {
                rng.gen_range(0..=2 * 64 * KIB)
            } else {
                rng.gen_range(0..=MAX_LEN)
            };
            what = format!("set_len {new_len}");
            r.set_len(new_len)
                .unwrap_or_else(|e| panic!("op {i} ({what}) on the mount: {e}"));
            local.set_len(new_len).expect("local set_len");
        } else if choice < 86 {
            what = "reopen".to_string();
            drop(remote.take());
            remote = Some(open_rw(&remote_path));
            local = open_rw(&local_path);
        } else if choice < 90 {
            let n = rng.gen_range(1..=100 * KIB as usize);
            if len + n as u64 > MAX_LEN {
                what = "skip append".into();
            } else {
                let mut buf = vec![0u8; n];
                rng.fill_bytes(&mut buf);
                what = format!("append {n}");
                let mut a = OpenOptions::new()
                    .append(true)
                    .open(&remote_path)
                    .unwrap_or_else(|e| panic!("op {i} ({what}): open O_APPEND: {e}"));
                a.write_all(&buf)
                    .unwrap_or_else(|e| panic!("op {i} ({what}) on the mount: {e}"));
                drop(a);
                let mut la = OpenOptions::new()
                    .append(true)
                    .open(&local_path)
                    .expect("local append open");
                la.write_all(&buf).expect("local append");
            }
        } else if choice < 95 {
            what = "fsync".into();
            r.sync_all()
                .unwrap_or_else(|e| panic!("op {i} ({what}) on the mount: {e}"));
        } else {
            what = "stat".into();
            let got = r.metadata().expect("fstat").len();
            let by_path = fs::metadata(&remote_path).expect("stat").len();
            assert_eq!(
                got,
                len,
                "op {i}: fstat size; seed {seed}; ops:\n{}",
                log.join("\n")
            );
            assert_eq!(by_path, len, "op {i}: stat size; seed {seed}");
        }
        log.push(format!("{i}: {what}"));
    }
    drop(remote);
    drop(local);
    assert_same_file(&local_path, &remote_path);
    remount();
    assert_same_file(&local_path, &remote_path);
}

/// Builds a tree of nested directories (one empty) holding `files_per_dir` files in each,
/// with names that have spaces and non-ASCII characters. Returns the number of files.
pub fn generate_tree(dst: &Path, seed: u64, files_per_dir: usize) -> usize {
    let mut rng = StdRng::seed_from_u64(seed);
    let tops = [
        "plain",
        "with space",
        "ünïcödé dïr",
        "日本語",
        "emoji 🚀 dir",
    ];
    let subs = ["", "sub one", "sub 二/deeper ñ"];
    let tags = ["α", "b", "ç", "😀", "x y"];
    let mut count = 0;
    for top in tops {
        for sub in subs {
            let d = if sub.is_empty() {
                dst.join(top)
            } else {
                dst.join(top).join(sub)
            };
            fs::create_dir_all(&d).expect("mkdir tree");
            for i in 0..files_per_dir {
                let name = format!("file {i:03} – {}.txt", tags[i % tags.len()]);
                let size = if i % 25 == 7 {
                    rng.gen_range(70 * KIB..200 * KIB)
                } else {
                    rng.gen_range(0..8 * KIB)
                };
                let mut buf = vec![0u8; size as usize];
                rng.fill_bytes(&mut buf);
                fs::write(d.join(name), &buf).expect("write tree file");
                count += 1;
            }
        }
    }
    fs::create_dir_all(dst.join("empty dir")).expect("mkdir empty");
    std::os::unix::fs::symlink("file 000 – α.txt", dst.join("plain/link to first"))
        .expect("symlink in tree");
    count
}

fn diff_r(a: &Path, b: &Path) {
    let out = Command::new("diff")
        .arg("-r")
        .arg(a)
        .arg(b)
        .output()
        .expect("run diff");
    assert!(
        out.status.success(),
        "diff -r {} {} found differences:\n{}{}",
        a.display(),
        b.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `cp -r` of a generated tree into the mount, `diff -r`, remount, `diff -r`, `rm -r`.
pub fn tree_copy_and_diff(root: &Path, scratch: &Path, files_per_dir: usize, remount: Remount) {
    let src = scratch.join("tree");
    let n = generate_tree(&src, 0x7EE5, files_per_dir);
    assert!(n >= 15 * files_per_dir);
    let dst = root.join("copied tree");
    run_ok_in(
        None,
        "cp",
        &[
            "-r",
            src.to_str().expect("utf-8"),
            dst.to_str().expect("utf-8"),
        ],
    );
    diff_r(&src, &dst);
    remount();
    diff_r(&src, &dst);
    let listed = fs::read_dir(dst.join("plain"))
        .expect("readdir")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_type().is_ok_and(|t| t.is_file()))
        })
        .count();
    assert_eq!(listed, files_per_dir, "files listed in plain/");
    run_ok("rm", &["-r", dst.to_str().expect("utf-8")]);
    assert_errno("stat removed tree", fs::metadata(&dst), libc::ENOENT);
    remount();
    assert_errno(
        "stat removed tree after remount",
        fs::metadata(&dst),
        libc::ENOENT,
    );
}

/// `rsync -a` of a generated tree (temp file + rename per file; modes, owners, mtimes and
/// symlinks preserved), `diff -r`; a second `rsync -ai` finds nothing to do, before and
/// after a remount (so sizes, modes and mtimes are stored exactly).
pub fn rsync_tree(root: &Path, scratch: &Path, files_per_dir: usize, remount: Remount) {
    assert!(
        super::find_in_path("rsync").is_some(),
        "rsync is not installed: run scripts/test.sh, or `apt-get install rsync`"
    );
    let src = scratch.join("rsync-src");
    generate_tree(&src, 0x125C, files_per_dir);
    let dst = root.join("rsynced");
    let src_arg = format!("{}/", src.display());
    let dst_arg = format!("{}/", dst.display());
    run_ok("rsync", &["-a", &src_arg, &dst_arg]);
    diff_r(&src, &dst);
    let second = |when: &str| {
        let out = run_ok("rsync", &["-ai", &src_arg, &dst_arg]);
        let changes = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            changes.trim().is_empty(),
            "a second rsync -a {when} should have nothing to do, but itemized:\n{changes}"
        );
    };
    second("right away");
    remount();
    diff_r(&src, &dst);
    second("after a remount");
    // Change one file locally: exactly that file is sent again.
    fs::write(src.join("plain/file 003 – ç.txt"), b"changed").expect("change a file");
    let out = run_ok("rsync", &["-ai", &src_arg, &dst_arg]);
    let changes = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        changes.lines().any(|l| l.contains("file 003")),
        "rsync sends the changed file:\n{changes}"
    );
    diff_r(&src, &dst);
}

/// Several threads write, overwrite and read back their own files while another lists the
/// directory; everything is intact after a remount.
pub fn concurrent_writers(root: &Path, threads: u64, remount: Remount) {
    let dir = root.join("concurrent");
    fs::create_dir(&dir).expect("mkdir");
    let size_of = |t: u64, i: u64| (t * 3 + i + 1) * 300 * KIB + 12_345;
    /// Stops the lister when dropped, also while unwinding from a failed worker (otherwise
    /// the scope would wait for the lister forever).
    struct StopOnDrop<'a>(&'a std::sync::atomic::AtomicBool);
    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let stop = StopOnDrop(&done);
        let lister = scope.spawn(|| {
            let mut listings = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                fs::read_dir(&dir)
                    .expect("readdir while writing")
                    .for_each(|e| drop(e.expect("entry")));
                listings += 1;
            }
            listings
        });
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let dir = &dir;
                scope.spawn(move || {
                    for i in 0..3 {
                        let p = dir.join(format!("t{t}-f{i}.bin"));
                        write_stream_file(&p, 1000 + t * 10 + i, size_of(t, i));
                        let f = open_rw(&p);
                        let patch = stream_bytes(77, 0, 5000);
                        f.write_all_at(&patch, 65_000).expect("overwrite");
                        drop(f);
                        let got = fs::read(&p).expect("read back");
                        assert_eq!(got.len() as u64, size_of(t, i), "size of {}", p.display());
                        assert!(got[65_000..70_000] == patch[..], "patch in {}", p.display());
                    }
                })
            })
            .collect();
        let failed = workers.into_iter().filter_map(|w| w.join().err()).count();
        drop(stop);
        let listings = lister.join().expect("lister thread");
        assert_eq!(
            failed, 0,
            "{failed} writer threads failed (their panics are above)"
        );
        assert!(listings > 0);
    });
    remount();
    for t in 0..threads {
        for i in 0..3 {
            let p = dir.join(format!("t{t}-f{i}.bin"));
            let got = fs::read(&p).expect("read after remount");
            let mut want = stream_bytes(1000 + t * 10 + i, 0, size_of(t, i) as usize);
            want[65_000..70_000].copy_from_slice(&stream_bytes(77, 0, 5000));
            assert_bytes_eq(&got, &want, &format!("{} after remount", p.display()));
        }
    }
    assert_eq!(
        fs::read_dir(&dir).expect("readdir").count() as u64,
        threads * 3
    );
}

/// mkdir/rmdir and the errors POSIX promises.
pub fn dir_ops_and_errors(root: &Path, remount: Remount) {
    let d = root.join("d");
    fs::create_dir(&d).expect("mkdir d");
    assert!(fs::metadata(&d).expect("stat d").is_dir());
    assert_errno("mkdir existing", fs::create_dir(&d), libc::EEXIST);
    let f = d.join("f");
    fs::write(&f, b"content").expect("write d/f");
    assert_errno("mkdir over a file", fs::create_dir(&f), libc::EEXIST);
    assert_errno("rmdir non-empty", fs::remove_dir(&d), libc::ENOTEMPTY);
    assert_errno("rmdir a file", fs::remove_dir(&f), libc::ENOTDIR);
    assert_errno("unlink a directory", fs::remove_file(&d), libc::EISDIR);
    assert_errno(
        "open a directory for writing",
        OpenOptions::new().write(true).open(&d),
        libc::EISDIR,
    );
    assert_errno(
        "mkdir under a file",
        fs::create_dir(f.join("x")),
        libc::ENOTDIR,
    );
    assert_errno(
        "create under a file",
        File::create(f.join("x")),
        libc::ENOTDIR,
    );
    assert_errno(
        "stat under a file",
        fs::metadata(f.join("x")),
        libc::ENOTDIR,
    );
    assert_errno(
        "rmdir missing",
        fs::remove_dir(root.join("nope")),
        libc::ENOENT,
    );
    assert_errno(
        "unlink missing",
        fs::remove_file(root.join("nope")),
        libc::ENOENT,
    );
    assert_errno("open missing", File::open(root.join("nope")), libc::ENOENT);
    assert_errno(
        "create in missing dir",
        File::create(root.join("nope/x")),
        libc::ENOENT,
    );
    assert_errno(
        "mkdir in missing dir",
        fs::create_dir(root.join("nope/x")),
        libc::ENOENT,
    );
    assert_errno("read_dir of a file", fs::read_dir(&f), libc::ENOTDIR);

    // Empty nested directories exist only as markers: they must survive a remount.
    fs::create_dir_all(root.join("e/f/g")).expect("mkdir -p e/f/g");
    fs::create_dir(root.join("empty")).expect("mkdir empty");
    remount();
    assert!(
        fs::metadata(root.join("e/f/g"))
            .expect("stat e/f/g")
            .is_dir()
    );
    assert!(
        fs::metadata(root.join("empty"))
            .expect("stat empty")
            .is_dir()
    );
    assert_eq!(
        fs::read_dir(root.join("empty"))
            .expect("readdir empty")
            .count(),
        0
    );
    assert_eq!(fs::read(d.join("f")).expect("read d/f"), b"content");
    assert_errno(
        "rmdir non-empty after remount",
        fs::remove_dir(&d),
        libc::ENOTEMPTY,
    );
    assert_errno(
        "rmdir e (has f/g)",
        fs::remove_dir(root.join("e")),
        libc::ENOTEMPTY,
    );
    fs::remove_file(d.join("f")).expect("rm d/f");
    fs::remove_dir(&d).expect("rmdir d once empty");
    fs::remove_dir(root.join("e/f/g")).expect("rmdir e/f/g");
    fs::remove_dir(root.join("e/f")).expect("rmdir e/f");
    fs::remove_dir(root.join("e")).expect("rmdir e");
    assert_errno("stat removed d", fs::metadata(&d), libc::ENOENT);
    remount();
    for p in ["d", "e", "e/f"] {
        assert_errno(
            &format!("stat removed {p} after remount"),
            fs::metadata(root.join(p)),
            libc::ENOENT,
        );
    }
    assert!(
        fs::metadata(root.join("empty"))
            .expect("stat empty")
            .is_dir()
    );
}

/// rename over an existing file (std::fs::rename and `mv`), the rsync pattern (write a
/// temporary name, rename over the target) and attributes that move with the file.
pub fn rename_over_existing(root: &Path, remount: Remount) {
    let a = root.join("a.bin");
    let b = root.join("b.bin");
    write_stream_file(&a, 1, 100 * KIB);
    write_stream_file(&b, 2, 3 * KIB);
    fs::set_permissions(&a, fs::Permissions::from_mode(0o600)).expect("chmod a");
    fs::rename(&a, &b).expect("rename a over b");
    assert_errno("stat renamed-away a", fs::metadata(&a), libc::ENOENT);
    assert_stream_file(&b, 1, 100 * KIB);

    fs::create_dir(root.join("sub")).expect("mkdir sub");
    let c = root.join("sub/c.bin");
    write_stream_file(&c, 3, 70 * KIB);
    run_ok(
        "mv",
        &[b.to_str().expect("utf-8"), c.to_str().expect("utf-8")],
    );
    assert_errno("stat moved b", fs::metadata(&b), libc::ENOENT);

    // rsync: write ".target.XXXX" then rename it over "target".
    let target = root.join("sub/target.txt");
    fs::write(&target, b"old version").expect("write target");
    let tmp = root.join("sub/.target.txt.Xy12Zq");
    fs::write(&tmp, b"new version, longer than the old one").expect("write tmp");
    fs::rename(&tmp, &target).expect("rename tmp over target");

    remount();
    assert_errno("a after remount", fs::metadata(&a), libc::ENOENT);
    assert_errno("b after remount", fs::metadata(&b), libc::ENOENT);
    assert_stream_file(&c, 1, 100 * KIB);
    assert_eq!(
        fs::metadata(&c).expect("stat c").permissions().mode() & 0o7777,
        0o600,
        "mode moves with the renamed file"
    );
    assert_eq!(
        fs::read(&target).expect("read target"),
        b"new version, longer than the old one"
    );
    assert_errno("rsync temp after remount", fs::metadata(&tmp), libc::ENOENT);
    let names: Vec<_> = fs::read_dir(root.join("sub"))
        .expect("readdir sub")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(
        names.len(),
        2,
        "sub/ holds c.bin and target.txt only: {names:?}"
    );
    assert_errno(
        "rename a missing file",
        fs::rename(root.join("missing"), root.join("x")),
        libc::ENOENT,
    );

    // Directories: a whole subtree moves, and the errors POSIX promises.
    fs::create_dir_all(root.join("tree/inner/deep")).expect("mkdir tree");
    write_stream_file(&root.join("tree/top.bin"), 4, 10 * KIB);
    write_stream_file(&root.join("tree/inner/deep/leaf.bin"), 5, 70 * KIB);
    fs::create_dir(root.join("tree/empty")).expect("mkdir tree/empty");
    run_ok(
        "mv",
        &[
            root.join("tree").to_str().expect("utf-8"),
            root.join("moved tree").to_str().expect("utf-8"),
        ],
    );
    assert_errno("old tree", fs::metadata(root.join("tree")), libc::ENOENT);
    fs::create_dir(root.join("full")).expect("mkdir full");
    fs::write(root.join("full/x"), b"x").expect("write full/x");
    fs::create_dir(root.join("vacant")).expect("mkdir vacant");
    fs::write(root.join("plain-file"), b"p").expect("write plain-file");
    assert_errno(
        "rename a file over a directory",
        fs::rename(root.join("plain-file"), root.join("vacant")),
        libc::EISDIR,
    );
    assert_errno(
        "rename a directory over a file",
        fs::rename(root.join("vacant"), root.join("plain-file")),
        libc::ENOTDIR,
    );
    let e = super::errno_of(
        "rename a directory over a non-empty one",
        fs::rename(root.join("vacant"), root.join("full")),
    );
    assert!(
        e == libc::ENOTEMPTY || e == libc::EEXIST,
        "rename a directory over a non-empty one: got {}",
        super::errno_name(e)
    );
    assert_errno(
        "rename a directory into itself",
        fs::rename(root.join("full"), root.join("full/sub")),
        libc::EINVAL,
    );
    fs::rename(root.join("vacant"), root.join("moved tree/empty"))
        .expect("rename a directory over an empty one");
    remount();
    assert_stream_file(&root.join("moved tree/top.bin"), 4, 10 * KIB);
    assert_stream_file(&root.join("moved tree/inner/deep/leaf.bin"), 5, 70 * KIB);
    assert!(
        fs::metadata(root.join("moved tree/empty"))
            .expect("stat")
            .is_dir()
    );
    assert_errno(
        "old tree after remount",
        fs::metadata(root.join("tree")),
        libc::ENOENT,
    );
    assert_errno(
        "vacant after remount",
        fs::metadata(root.join("vacant")),
        libc::ENOENT,
    );
    assert_eq!(fs::read(root.join("full/x")).expect("read full/x"), b"x");
}

/// Truncation up and down, by path (`truncate -s`) and on an open file (set_len), and
/// O_TRUNC, checked against the bytes that must result, before and after remount.
pub fn truncate_up_and_down(root: &Path, remount: Remount) {
    let p = root.join("trunc.bin");
    let p_str = p.to_str().expect("utf-8").to_string();
    write_stream_file(&p, 9, 200 * KIB);
    let mut model = stream_bytes(9, 0, (200 * KIB) as usize);

    run_ok("truncate", &["-s", "100000", &p_str]);
    model.truncate(100_000);
    assert_bytes_eq(
        &fs::read(&p).expect("read"),
        &model,
        "after truncate -s 100000",
    );
    run_ok("truncate", &["-s", "300000", &p_str]);
    model.resize(300_000, 0);
    assert_bytes_eq(
        &fs::read(&p).expect("read"),
        &model,
        "after truncate -s 300000",
    );

    {
        let f = open_rw(&p);
        f.write_all_at(b"hello", 0).expect("write");
        model[..5].copy_from_slice(b"hello");
        f.set_len(70_000).expect("set_len down");
        model.truncate(70_000);
        f.write_all_at(b"0123456789", 69_995)
            .expect("write across end");
        model.resize(70_005, 0);
        model[69_995..70_005].copy_from_slice(b"0123456789");
        f.set_len(64 * KIB + 10).expect("set_len to block + 10");
        model.truncate((64 * KIB + 10) as usize);
        f.set_len(5 * 64 * KIB).expect("set_len up");
        model.resize((5 * 64 * KIB) as usize, 0);
        assert_eq!(f.metadata().expect("fstat").len(), 5 * 64 * KIB);
        assert_bytes_eq(
            &pread_full(&f, 0, model.len() + 10).expect("read open file"),
            &model,
            "contents through the open handle",
        );
    }
    assert_bytes_eq(
        &fs::read(&p).expect("read"),
        &model,
        "after set_len on an open file",
    );

    // A partial overwrite with dd, as tools do it.
    let patch = root.join("patch.bin");
    fs::write(&patch, vec![0xABu8; 1000]).expect("write patch");
    run_ok(
        "dd",
        &[
            &format!("if={}", patch.display()),
            &format!("of={p_str}"),
            "bs=1000",
            "seek=65",
            "conv=notrunc",
            "status=none",
        ],
    );
    model[65_000..66_000].fill(0xAB);
    assert_bytes_eq(
        &fs::read(&p).expect("read"),
        &model,
        "after dd conv=notrunc",
    );

    remount();
    assert_bytes_eq(&fs::read(&p).expect("read"), &model, "after remount");

    // Growing a clean file (just opened, nothing written) through an open handle: the new
    // tail reads as zeros through that handle, and after close.
    {
        let f = open_rw(&p);
        let old = model.len();
        f.set_len(old as u64 + 100_000)
            .expect("set_len up on a clean file");
        model.resize(old + 100_000, 0);
        let tail = pread_full(&f, old as u64 - 10, 20_000).expect("read across the old end");
        assert_bytes_eq(
            &tail,
            &model[old - 10..old + 19_990],
            "reading across the old end of a clean file grown by set_len on an open handle",
        );
    }
    assert_bytes_eq(
        &fs::read(&p).expect("read"),
        &model,
        "after growing a clean open file",
    );
    remount();
    assert_bytes_eq(
        &fs::read(&p).expect("read"),
        &model,
        "grown file after remount",
    );

    run_ok("truncate", &["-s", "0", &p_str]);
    assert_eq!(fs::metadata(&p).expect("stat").len(), 0);
    run_ok("truncate", &["-s", "1M", &p_str]);
    assert!(
        fs::read(&p).expect("read").iter().all(|b| *b == 0)
            && fs::metadata(&p).expect("stat").len() == MIB,
        "a file grown by truncate reads as zeros"
    );
    write_stream_file(&p, 10, 5000);
    {
        // O_TRUNC on an existing file.
        let mut f = File::create(&p).expect("O_TRUNC open");
        f.write_all(b"short").expect("write");
    }
    remount();
    assert_eq!(fs::read(&p).expect("read"), b"short", "O_TRUNC then write");
}

const TOUCH_DATE: &str = "2001-02-03 04:05:06.123456789";
const TOUCH_SECS: i64 = 981_173_106;
const TOUCH_NANOS: i64 = 123_456_789;

fn assert_mode_and_mtime(p: &Path, mode: u32) {
    let m = fs::symlink_metadata(p).unwrap_or_else(|e| panic!("stat {}: {e}", p.display()));
    assert_eq!(m.mode() & 0o7777, mode, "mode of {}", p.display());
    assert_eq!(
        (m.mtime(), m.mtime_nsec()),
        (TOUCH_SECS, TOUCH_NANOS),
        "mtime of {} (seconds, nanoseconds)",
        p.display()
    );
}

/// chmod and `touch -d` (with nanoseconds) on files and directories survive a remount.
pub fn attrs_survive_remount(root: &Path, remount: Remount) {
    let f = root.join("attrs.txt");
    let d = root.join("attrs-dir");
    fs::write(&f, b"attributes").expect("write");
    fs::create_dir(&d).expect("mkdir");
    run_ok("chmod", &["640", f.to_str().expect("utf-8")]);
    run_ok("chmod", &["750", d.to_str().expect("utf-8")]);
    for p in [&f, &d] {
        let out = Command::new("touch")
            .env("TZ", "UTC")
            .arg("-d")
            .arg(TOUCH_DATE)
            .arg(p)
            .output()
            .expect("run touch");
        assert!(
            out.status.success(),
            "touch -d: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_mode_and_mtime(&f, 0o640);
    assert_mode_and_mtime(&d, 0o750);

    // A mode set through an open, dirty file must not be lost when it is uploaded.
    let g = root.join("chmod-while-open.txt");
    {
        let mut h = File::create(&g).expect("create");
        h.write_all(b"dirty data").expect("write");
        h.set_permissions(fs::Permissions::from_mode(0o604))
            .expect("fchmod");
        h.write_all(b", more").expect("write after fchmod");
    }

    remount();
    assert_mode_and_mtime(&f, 0o640);
    assert_mode_and_mtime(&d, 0o750);
    assert_eq!(fs::read(&f).expect("read"), b"attributes");
    assert_eq!(fs::read(&g).expect("read"), b"dirty data, more");
    assert_eq!(
        fs::metadata(&g).expect("stat").mode() & 0o7777,
        0o604,
        "mode set while the file was open and dirty"
    );
    // Changing the mode again leaves the mtime alone (it is not a content change).
    run_ok("chmod", &["600", f.to_str().expect("utf-8")]);
    // Owner and group: only root may give a file away (CI runs as root).
    // SAFETY: geteuid has no preconditions and cannot fail.
    let is_root = unsafe { libc::geteuid() } == 0;
    let owned = root.join("owned.txt");
    fs::write(&owned, b"owned").expect("write");
    if is_root {
        run_ok("chown", &["1234:5678", owned.to_str().expect("utf-8")]);
    } else {
        eprintln!("not root: chown to another owner is not checked");
    }
    remount();
    assert_mode_and_mtime(&f, 0o600);
    if is_root {
        let m = fs::metadata(&owned).expect("stat owned");
        assert_eq!(
            (m.uid(), m.gid()),
            (1234, 5678),
            "owner and group after remount"
        );
    }
}

/// Hard links are refused with EPERM and leave nothing behind.
pub fn hard_link_refused(root: &Path) {
    let f = root.join("link-source.txt");
    fs::write(&f, b"x").expect("write");
    assert_errno(
        "hard link",
        fs::hard_link(&f, root.join("link-target.txt")),
        libc::EPERM,
    );
    assert_errno(
        "stat link target",
        fs::metadata(root.join("link-target.txt")),
        libc::ENOENT,
    );
    let ln = Command::new("ln")
        .arg(&f)
        .arg(root.join("ln-target.txt"))
        .output()
        .expect("run ln");
    assert!(!ln.status.success(), "`ln` (hard link) must fail");
}

/// Symlinks: create, readlink, follow, survive remount, remove.
pub fn symlinks(root: &Path, remount: Remount) {
    use std::os::unix::fs::symlink;
    fs::write(root.join("target.txt"), b"through the link").expect("write target");
    symlink("target.txt", root.join("link")).expect("symlink");
    let long_target = format!("ünï/日本/{}", "x".repeat(900));
    symlink(&long_target, root.join("dangling")).expect("symlink dangling");
    assert_eq!(
        fs::read_link(root.join("link")).expect("readlink"),
        Path::new("target.txt")
    );
    assert_eq!(
        fs::read(root.join("link")).expect("read via link"),
        b"through the link"
    );
    remount();
    let m = fs::symlink_metadata(root.join("link")).expect("lstat");
    assert!(
        m.file_type().is_symlink(),
        "link is a symlink after remount"
    );
    assert_eq!(
        fs::read_link(root.join("link")).expect("readlink"),
        Path::new("target.txt")
    );
    assert_eq!(
        fs::read_link(root.join("dangling")).expect("readlink dangling"),
        Path::new(&long_target)
    );
    assert_eq!(
        fs::read(root.join("link")).expect("read via link"),
        b"through the link"
    );
    assert_errno(
        "follow dangling",
        fs::read(root.join("dangling")),
        libc::ENOENT,
    );
    let out = run_ok_in(Some(root), "readlink", &["link"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim_end(),
        "target.txt"
    );
    fs::remove_file(root.join("link")).expect("rm link");
    assert_eq!(
        fs::read(root.join("target.txt")).expect("target stays"),
        b"through the link"
    );
    assert_errno(
        "lstat removed link",
        fs::symlink_metadata(root.join("link")),
        libc::ENOENT,
    );
}

/// Writes the plaintext marker, repeated, through the mount: small, one block, several
/// blocks, in a symlink target. Returns the paths written.
pub fn write_marker_files(root: &Path) -> Vec<PathBuf> {
    let dir = root.join("secret stuff");
    fs::create_dir_all(&dir).expect("mkdir");
    let mut out = Vec::new();
    for (name, len) in [
        ("small.txt", 300usize),
        ("one-block.txt", (64 * KIB) as usize),
        ("several-blocks.txt", (3 * MIB + 123) as usize),
    ] {
        let p = dir.join(name);
        fs::write(&p, data::marker_bytes(len)).expect("write marker file");
        out.push(p);
    }
    // Rewritten in the middle through an open file, then renamed: every path a byte takes.
    let p = dir.join("rewritten.txt");
    {
        let f = open_rw(&p);
        f.write_all_at(&data::marker_bytes(200 * KIB as usize), 0)
            .expect("write");
        f.write_all_at(&data::marker_bytes(1000), 100_000)
            .expect("overwrite");
        f.sync_all().expect("fsync");
        f.write_all_at(&data::marker_bytes(500), 150_000)
            .expect("write after fsync");
    }
    let q = dir.join("renamed.txt");
    fs::rename(&p, &q).expect("rename");
    out.push(q);
    let target = String::from_utf8(data::marker_bytes(3 * data::PLAINTEXT_MARKER.len()))
        .expect("marker is ASCII");
    std::os::unix::fs::symlink(&target, dir.join("marker-link")).expect("symlink");
    for p in &out {
        assert!(
            super::contains_bytes(&fs::read(p).expect("read back"), data::PLAINTEXT_MARKER),
            "{} reads back with the marker",
            p.display()
        );
    }
    out
}

/// Reads `path` whole; panics unless that fails with EIO (at open or at read).
#[track_caller]
pub fn assert_read_is_eio(path: &Path) {
    let r = File::open(path).and_then(|mut f| {
        let mut v = Vec::new();
        f.read_to_end(&mut v).map(|_| v)
    });
    match r {
        Ok(v) => panic!(
            "reading tampered {} returned {} bytes instead of EIO",
            path.display(),
            v.len()
        ),
        Err(e) => assert_eq!(
            e.raw_os_error(),
            Some(libc::EIO),
            "reading tampered {}: expected EIO, got {e}",
            path.display()
        ),
    }
}

/// A pread of `len` bytes at `offset`; panics unless it fails with EIO.
#[track_caller]
pub fn assert_pread_is_eio(path: &Path, offset: u64, len: usize) {
    let r = File::open(path).and_then(|f| pread_full(&f, offset, len));
    match r {
        Ok(v) => panic!(
            "pread of tampered {} at {offset} returned {} bytes instead of EIO",
            path.display(),
            v.len()
        ),
        Err(e) => assert_eq!(
            e.raw_os_error(),
            Some(libc::EIO),
            "pread of tampered {} at {offset}: expected EIO, got {e}",
            path.display()
        ),
    }
}

/// Names and sizes of the files the tamper tests damage (each more than three blocks).
pub const TAMPER_VICTIMS: [&str; 6] = [
    "flip-body.bin",
    "flip-header.bin",
    "flip-last-tag.bin",
    "truncated-block.bin",
    "truncated-odd.bin",
    "swapped.bin",
];
pub const TAMPER_SIZE: u64 = 3 * 64 * KIB + 1000;
pub const TAMPER_INTACT: &str = "intact.bin";

/// Writes the victims and one intact file (seeds 100 + index).
pub fn write_tamper_files(root: &Path) {
    for (i, name) in TAMPER_VICTIMS.iter().enumerate() {
        write_stream_file(&root.join(name), 100 + i as u64, TAMPER_SIZE);
    }
    write_stream_file(&root.join(TAMPER_INTACT), 99, TAMPER_SIZE);
}

/// The damaged files give EIO, twice over (no garbage cached); the intact one reads fine.
pub fn check_tamper_files(root: &Path) {
    for name in TAMPER_VICTIMS {
        let p = root.join(name);
        assert_read_is_eio(&p);
        assert_read_is_eio(&p);
    }
    // Swapped blocks 0 and 1: a read of block 0 alone must already fail.
    assert_pread_is_eio(&root.join("swapped.bin"), 0, 4096);
    assert_stream_file(&root.join(TAMPER_INTACT), 99, TAMPER_SIZE);
}

/// Applies the damage named by `name` to an object's stored bytes. Returns the new bytes.
pub fn tamper(name: &str, mut obj: Vec<u8>) -> Vec<u8> {
    use s3cryptfs::crypto::format::{BLOCK_OVERHEAD, HEADER_LEN};
    let stride = (64 * KIB + BLOCK_OVERHEAD) as usize;
    let h = HEADER_LEN;
    assert_eq!(
        obj.len() as u64,
        s3cryptfs::crypto::format::ciphertext_len(TAMPER_SIZE, 64 * 1024),
        "stored size of {name}"
    );
    match name {
        "flip-body.bin" => obj[h + stride + 1234] ^= 0x01,
        "flip-header.bin" => obj[h - 20] ^= 0x80,
        "flip-last-tag.bin" => {
            let n = obj.len();
            obj[n - 3] ^= 0x10;
        }
        "truncated-block.bin" => {
            // Drops the final (short) block: the size is still a valid encrypted size.
            let n = obj.len();
            obj.truncate(n - (1000 + BLOCK_OVERHEAD as usize));
        }
        "truncated-odd.bin" => {
            let n = obj.len();
            obj.truncate(n - 7);
        }
        "swapped.bin" => {
            let (b0, b1) = (h, h + stride);
            let block0 = obj[b0..b0 + stride].to_vec();
            obj.copy_within(b1..b1 + stride, b0);
            obj[b1..b1 + stride].copy_from_slice(&block0);
        }
        other => panic!("no tampering named {other}"),
    }
    obj
}

/// Seconds since the epoch of a file's mtime (for messages).
pub fn mtime_of(p: &Path) -> Duration {
    fs::metadata(p)
        .and_then(|m| m.modified())
        .map(|t| t.duration_since(UNIX_EPOCH).unwrap_or_default())
        .unwrap_or_default()
}

/// Reads every regular file that process `pid` has open (only those below `only_under`, if
/// given) and panics if any holds the plaintext marker. Catches plaintext in unlinked staging
/// files, which no directory scan can see.
pub fn assert_no_marker_in_open_files(pid: u32, only_under: Option<&Path>) -> usize {
    let fd_dir = PathBuf::from(format!("/proc/{pid}/fd"));
    let entries =
        fs::read_dir(&fd_dir).unwrap_or_else(|e| panic!("read {}: {e}", fd_dir.display()));
    let mut scanned = 0;
    for e in entries.flatten() {
        let link = fs::read_link(e.path()).unwrap_or_default();
        if only_under.is_some_and(|dir| !link.starts_with(dir)) {
            continue;
        }
        let Ok(meta) = fs::metadata(e.path()) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        let Ok(mut f) = File::open(e.path()) else {
            continue;
        };
        let mut bytes = Vec::new();
        if f.seek(SeekFrom::Start(0)).is_err() || f.read_to_end(&mut bytes).is_err() {
            continue;
        }
        scanned += 1;
        assert!(
            !super::contains_bytes(&bytes, data::PLAINTEXT_MARKER),
            "plaintext found in a file process {pid} has open: fd {:?} -> {}",
            e.file_name(),
            link.display()
        );
    }
    scanned
}

/// Panics if any file below `dir` holds the marker.
pub fn assert_no_marker_below(dir: &Path) -> usize {
    let files = super::files_below(dir);
    for f in &files {
        let bytes = fs::read(f).unwrap_or_else(|e| panic!("read {}: {e}", f.display()));
        assert!(
            !super::contains_bytes(&bytes, data::PLAINTEXT_MARKER),
            "plaintext marker found in {}",
            f.display()
        );
    }
    files.len()
}
