//! Generated trees through `cp -r` and `rsync`, and concurrent writers.

use super::*;

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
        super::super::find_in_path("rsync").is_some(),
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
