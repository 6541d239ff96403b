//! Directories and the errors POSIX promises, rename, attributes, hard links, symlinks.

use super::*;

/// mkdir/rmdir and the errors POSIX promises.
pub fn dir_ops_and_errors(root: &Path, remount: Remount) {
    let d = root.join("d");
    fs::create_dir(&d).expect("mkdir d");
    assert!(fs::metadata(&d).expect("stat d").is_dir());
    assert_errno("mkdir existing", fs::create_dir(&d), libc::EEXIST);
    let f = d.join("f");
    fs::write(&f, b"content").expect("write d/f");
    assert_errnos([
        fails("mkdir over a file", libc::EEXIST, || fs::create_dir(&f)),
        fails("rmdir non-empty", libc::ENOTEMPTY, || fs::remove_dir(&d)),
        fails("rmdir a file", libc::ENOTDIR, || fs::remove_dir(&f)),
        fails("unlink a directory", libc::EISDIR, || fs::remove_file(&d)),
        fails("open a directory for writing", libc::EISDIR, || {
            OpenOptions::new().write(true).open(&d)
        }),
        fails("mkdir under a file", libc::ENOTDIR, || {
            fs::create_dir(f.join("x"))
        }),
        fails("create under a file", libc::ENOTDIR, || {
            File::create(f.join("x"))
        }),
        fails("stat under a file", libc::ENOTDIR, || {
            fs::metadata(f.join("x"))
        }),
        fails("rmdir missing", libc::ENOENT, || {
            fs::remove_dir(root.join("nope"))
        }),
        fails("unlink missing", libc::ENOENT, || {
            fs::remove_file(root.join("nope"))
        }),
        fails("open missing", libc::ENOENT, || {
            File::open(root.join("nope"))
        }),
        fails("create in missing dir", libc::ENOENT, || {
            File::create(root.join("nope/x"))
        }),
        fails("mkdir in missing dir", libc::ENOENT, || {
            fs::create_dir(root.join("nope/x"))
        }),
        fails("read_dir of a file", libc::ENOTDIR, || fs::read_dir(&f)),
    ]);

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
    let e = super::super::errno_of(
        "rename a directory over a non-empty one",
        fs::rename(root.join("vacant"), root.join("full")),
    );
    assert!(
        e == libc::ENOTEMPTY || e == libc::EEXIST,
        "rename a directory over a non-empty one: got {}",
        super::super::errno_name(e)
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

/// glibc's `major`/`minor` of a `dev_t`.
fn major_minor(dev: u64) -> (u64, u64) {
    (
        ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff),
        (dev & 0xff) | ((dev >> 12) & !0xff),
    )
}

/// Fifos, sockets and (as root) character and block devices: `mkfifo`, `mknod`, a unix
/// socket bound inside the mount; each keeps its type, device number and mode across a
/// remount, is renamed, chmod'ed and removed like a file. Hard links stay refused.
pub fn special_files(root: &Path, remount: Remount) {
    use std::os::unix::fs::FileTypeExt;
    // Devices need root (CI runs as root). SAFETY: geteuid has no preconditions.
    let is_root = unsafe { libc::geteuid() } == 0;
    let d = root.join("nodes");
    fs::create_dir(&d).expect("mkdir nodes");
    let fifo = d.join("fifo");
    run_ok("mkfifo", &["-m", "0640", &fifo.display().to_string()]);
    let sock = d.join("sock");
    drop(std::os::unix::net::UnixListener::bind(&sock).expect("bind a unix socket"));
    if is_root {
        run_ok(
            "mknod",
            &[&d.join("null").display().to_string(), "c", "1", "3"],
        );
        run_ok(
            "mknod",
            &[&d.join("loop").display().to_string(), "b", "7", "0"],
        );
    }
    fs::set_permissions(&sock, fs::Permissions::from_mode(0o700)).expect("chmod sock");
    fs::rename(d.join("fifo"), d.join("fifo2")).expect("rename fifo");
    remount();
    let m = fs::symlink_metadata(d.join("fifo2")).expect("stat fifo2");
    assert!(m.file_type().is_fifo(), "{m:?}");
    // The kernel opens the fifo (the daemon keeps only the node): bytes pass through it.
    let mut pipe = OpenOptions::new()
        .read(true)
        .write(true)
        .open(d.join("fifo2"))
        .expect("open the fifo read-write");
    pipe.write_all(b"through the fifo").expect("write the fifo");
    let mut got = [0u8; 16];
    pipe.read_exact(&mut got).expect("read the fifo");
    assert_eq!(&got, b"through the fifo");
    drop(pipe);
    assert_eq!(m.mode() & 0o7777, 0o640);
    assert_errno("the old name", fs::symlink_metadata(&fifo), libc::ENOENT);
    let m = fs::symlink_metadata(&sock).expect("stat sock");
    assert!(m.file_type().is_socket(), "{m:?}");
    assert_eq!(m.mode() & 0o7777, 0o700);
    if is_root {
        let m = fs::symlink_metadata(d.join("null")).expect("stat null");
        assert!(m.file_type().is_char_device(), "{m:?}");
        assert_eq!(major_minor(m.rdev()), (1, 3));
        let m = fs::symlink_metadata(d.join("loop")).expect("stat loop");
        assert!(m.file_type().is_block_device(), "{m:?}");
        assert_eq!(major_minor(m.rdev()), (7, 0));
    }
    assert_errno(
        "hard link of a fifo",
        fs::hard_link(d.join("fifo2"), d.join("fifo3")),
        libc::EPERM,
    );
    let mut names: Vec<String> = fs::read_dir(&d)
        .expect("readdir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let want: &[&str] = if is_root {
        &["fifo2", "loop", "null", "sock"]
    } else {
        &["fifo2", "sock"]
    };
    assert_eq!(names, want);
    for n in &names {
        fs::remove_file(d.join(n)).expect("unlink a node");
    }
    fs::remove_dir(&d).expect("rmdir nodes");
}

/// `rsync -a` of a tree with a fifo and a socket beside a file exits 0, and a dry run after a
/// remount has nothing to send.
pub fn rsync_special_files(root: &Path, scratch: &Path, remount: Remount) {
    let src = scratch.join("specials");
    fs::create_dir_all(src.join("sub")).expect("mkdir src");
    fs::write(src.join("sub/file.txt"), b"regular").expect("write");
    run_ok("mkfifo", &[&src.join("sub/fifo").display().to_string()]);
    drop(std::os::unix::net::UnixListener::bind(src.join("s")).expect("bind"));
    let src_arg = format!("{}/", src.display());
    let dst_arg = format!("{}/", root.join("specials").display());
    run_ok("rsync", &["-a", &src_arg, &dst_arg]);
    remount();
    let out = run_ok(
        "rsync",
        &["-a", "-n", "--itemize-changes", &src_arg, &dst_arg],
    );
    let changes = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        changes.trim().is_empty(),
        "a dry run after a remount should have nothing to send, but itemized:\n{changes}"
    );
}
