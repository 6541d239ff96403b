//! Files of every size, random operations checked against a local file, truncation.

use super::*;

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
pub(super) fn pread_full(f: &File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
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

pub(super) fn open_rw(path: &Path) -> File {
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
