//! Times (issue 14): a file's ctime follows every change of content or attributes; a
//! directory's mtime and ctime follow every entry made, removed or renamed in it; the mount
//! root takes `touch`. Directory times are kept in memory and written at `fsync` of the
//! directory or at unmount, so they survive a remount.

use std::time::{Duration, SystemTime};

use super::*;

/// (mtime, ctime) of `p` with nanoseconds, without following a symlink.
fn times(p: &Path) -> (SystemTime, SystemTime) {
    let m = fs::symlink_metadata(p).unwrap_or_else(|e| panic!("stat {}: {e}", p.display()));
    let ctime = SystemTime::UNIX_EPOCH + Duration::new(m.ctime() as u64, m.ctime_nsec() as u32);
    (m.modified().expect("mtime"), ctime)
}

/// Wait until the clock has moved past every time taken so far (times have ns precision,
/// but two operations may fall in one clock tick).
fn tick() {
    std::thread::sleep(Duration::from_millis(20));
}

/// Runs `op`, then asserts that every directory in `dirs` got a newer mtime and ctime.
fn changes_dirs(what: &str, dirs: &[&Path], op: impl FnOnce()) {
    let before: Vec<_> = dirs.iter().map(|d| times(d)).collect();
    tick();
    op();
    for (d, (m0, c0)) in dirs.iter().zip(before) {
        let (m1, c1) = times(d);
        assert!(
            m1 > m0,
            "{what}: mtime of {} did not change ({m0:?} -> {m1:?})",
            d.display()
        );
        assert!(
            c1 > c0,
            "{what}: ctime of {} did not change ({c0:?} -> {c1:?})",
            d.display()
        );
    }
}

/// Runs `op`, then asserts that `p`'s ctime is newer (and, when `mtime_too`, its mtime).
fn changes_ctime(what: &str, p: &Path, mtime_too: bool, op: impl FnOnce()) {
    let (m0, c0) = times(p);
    tick();
    op();
    let (m1, c1) = times(p);
    assert!(c1 > c0, "{what}: ctime did not change ({c0:?} -> {c1:?})");
    if mtime_too {
        assert!(m1 > m0, "{what}: mtime did not change ({m0:?} -> {m1:?})");
    } else {
        assert_eq!(m1, m0, "{what}: mtime changed");
    }
}

/// Every entry operation changes its directory's (both directories' for rename) mtime and
/// ctime; chmod, chown, utimes, write, truncate and rename change a file's ctime; the times
/// survive a remount (written at `fsync` of the directory, or at unmount).
pub fn entry_times(root: &Path, remount: Remount) {
    let a = root.join("times-a");
    let b = root.join("times-b");
    fs::create_dir(&a).expect("mkdir a");
    fs::create_dir(&b).expect("mkdir b");
    let f = a.join("f");
    changes_dirs("create", &[&a], || fs::write(&f, b"x").expect("create"));
    changes_dirs("mkdir", &[&a], || {
        fs::create_dir(a.join("sub")).expect("mkdir")
    });
    changes_dirs("rmdir", &[&a], || {
        fs::remove_dir(a.join("sub")).expect("rmdir")
    });
    changes_dirs("symlink", &[&a], || {
        std::os::unix::fs::symlink("f", a.join("link")).expect("symlink")
    });
    changes_dirs("mknod (mkfifo)", &[&a], || {
        run_ok("mkfifo", &[a.join("fifo").to_str().expect("utf-8")]);
    });
    changes_dirs("unlink", &[&a], || {
        fs::remove_file(a.join("link")).expect("unlink")
    });
    changes_dirs("rename across directories", &[&a, &b], || {
        fs::rename(a.join("fifo"), b.join("fifo")).expect("rename")
    });
    changes_dirs("mkdir at the mount root", &[root], || {
        fs::create_dir(root.join("times-c")).expect("mkdir c")
    });
    changes_dirs("rename of a directory", &[root, &b], || {
        fs::rename(root.join("times-c"), b.join("c")).expect("rename dir")
    });

    // A file's ctime.
    changes_ctime("chmod", &f, false, || {
        fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).expect("chmod")
    });
    changes_ctime("chown", &f, false, || {
        std::os::unix::fs::chown(&f, Some(0), Some(0)).expect("chown")
    });
    changes_ctime("write", &f, true, || {
        fs::write(&f, b"new content").expect("write")
    });
    changes_ctime("truncate", &f, true, || {
        OpenOptions::new()
            .write(true)
            .open(&f)
            .and_then(|h| h.set_len(3))
            .expect("truncate")
    });
    let (_, before_touch) = times(&f);
    tick();
    run_ok(
        "touch",
        &["-d", "2001-02-03 04:05:06", f.to_str().expect("utf-8")],
    );
    let (m, c) = times(&f);
    assert!(c > before_touch, "utimes: ctime did not change");
    assert_eq!(m, SystemTime::UNIX_EPOCH + Duration::from_secs(981_173_106));
    let g = b.join("g");
    changes_ctime_of_renamed(&f, &g);

    // `touch` of the mount root.
    let (_, root_c0) = times(root);
    tick();
    run_ok("touch", &[root.to_str().expect("utf-8")]);
    let (root_m, root_c) = times(root);
    assert!(root_c > root_c0, "touch of the mount root: ctime unchanged");
    assert!(root_m > root_c0, "touch of the mount root: mtime unchanged");

    // The times of `b` written by fsync of the directory; those of `a` at unmount.
    let want_a = times(&a);
    let want_b = times(&b);
    let want_g = times(&g);
    File::open(&b)
        .and_then(|d| d.sync_all())
        .expect("fsync directory");
    remount();
    assert_eq!(times(&a), want_a, "directory times after remount");
    assert_eq!(times(&b), want_b, "fsync'ed directory times after remount");
    assert_eq!(times(&g), want_g, "file times after remount");
    for d in [&a, &b] {
        fs::remove_dir_all(d).expect("clean up");
    }
}

/// A rename changes the renamed file's ctime, and its mtime not.
fn changes_ctime_of_renamed(from: &Path, to: &Path) {
    let (m0, c0) = times(from);
    tick();
    fs::rename(from, to).expect("rename file");
    let (m1, c1) = times(to);
    assert!(c1 > c0, "rename: ctime did not change ({c0:?} -> {c1:?})");
    assert_eq!(m1, m0, "rename: mtime changed");
}
