//! Extended attributes and POSIX ACLs through a mount, with the real tools (`setfattr`,
//! `getfattr`, `setfacl`, `getfacl`, `rsync -aAX`) and the raw calls for flags and sizes.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;

use super::super::run_ok;
use super::Remount;

fn c(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("path without NUL")
}

/// `getxattr` with a buffer of `size` bytes: the length, or the errno.
fn getxattr_len(p: &Path, name: &str, size: usize) -> Result<usize, i32> {
    let mut buf = vec![0u8; size];
    let n = CString::new(name).expect("name");
    // SAFETY: valid NUL-terminated strings and a buffer of `size` bytes (NULL for 0).
    let r = unsafe {
        libc::getxattr(
            c(p).as_ptr(),
            n.as_ptr(),
            if size == 0 {
                std::ptr::null_mut()
            } else {
                buf.as_mut_ptr().cast()
            },
            size,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(r as usize)
    }
}

fn setxattr(p: &Path, name: &str, value: &[u8], flags: i32) -> Result<(), i32> {
    let n = CString::new(name).expect("name");
    // SAFETY: valid NUL-terminated strings and `value` for its length.
    let r = unsafe {
        libc::setxattr(
            c(p).as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            flags,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(())
    }
}

fn get(p: &Path, name: &str) -> String {
    let out = run_ok(
        "getfattr",
        &["--only-values", "-n", name, p.to_str().expect("utf-8")],
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `getfattr -d -m -` and `getfacl` of every entry below `dir`, with paths relative to it.
fn dump(dir: &Path) -> String {
    let mut s = String::new();
    for (tool, args) in [
        (
            "getfattr",
            &["-R", "-d", "-m", "^user\\.", "--absolute-names", "."][..],
        ),
        ("getfacl", &["-R", "-p", "."][..]),
    ] {
        let out = Command::new(tool)
            .args(args)
            .current_dir(dir)
            .output()
            .expect(tool);
        assert!(
            out.status.success(),
            "{tool}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut blocks: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .split("\n\n")
            .map(|b| b.trim().to_owned())
            .filter(|b| !b.is_empty())
            .collect();
        blocks.sort();
        s.push_str(&blocks.join("\n\n"));
        s.push('\n');
    }
    s
}

/// user.* round trip, size-0 query, ERANGE, create/replace flags, remove, list, 4 KiB of
/// xattrs (a sidecar), ACLs with a default ACL inherited, all surviving chmod, rename and
/// remount.
pub fn xattrs_and_acls(root: &Path, remount: Remount<'_>) {
    let f = root.join("f");
    std::fs::write(&f, b"content").expect("write");
    let fs = f.to_str().expect("utf-8");
    run_ok("setfattr", &["-n", "user.note", "-v", "hello", fs]);
    assert_eq!(get(&f, "user.note"), "hello");
    assert_eq!(getxattr_len(&f, "user.note", 0), Ok(5), "size-0 query");
    assert_eq!(getxattr_len(&f, "user.note", 2), Err(libc::ERANGE));
    assert_eq!(getxattr_len(&f, "user.none", 0), Err(libc::ENODATA));
    assert_eq!(
        setxattr(&f, "user.note", b"x", libc::XATTR_CREATE),
        Err(libc::EEXIST)
    );
    assert_eq!(
        setxattr(&f, "user.new", b"x", libc::XATTR_REPLACE),
        Err(libc::ENODATA)
    );
    assert_eq!(setxattr(&f, "user.new", b"x", libc::XATTR_CREATE), Ok(()));
    assert_eq!(setxattr(&f, "user.new", b"yz", libc::XATTR_REPLACE), Ok(()));
    run_ok("setfattr", &["-x", "user.new", fs]);
    assert_eq!(getxattr_len(&f, "user.new", 0), Err(libc::ENODATA));
    let out = Command::new("setfattr")
        .args(["-x", "user.new", fs])
        .output()
        .expect("setfattr");
    assert!(!out.status.success(), "removing a missing xattr must fail");
    let list = run_ok("getfattr", &["-d", fs]);
    assert!(String::from_utf8_lossy(&list.stdout).contains("user.note=\"hello\""));

    // 4 KiB of xattrs: past the record's room, in a sidecar.
    let big = root.join("big");
    std::fs::write(&big, b"b").expect("write");
    for i in 0..4 {
        let v = vec![b'a' + i as u8; 1024];
        setxattr(&big, &format!("user.k{i}"), &v, 0).expect("1 KiB xattr");
    }
    assert_eq!(getxattr_len(&big, "user.k3", 0), Ok(1024));

    // ACLs: an access ACL on a file, access and default on a directory.
    let d = root.join("d");
    std::fs::create_dir(&d).expect("mkdir");
    let ds = d.to_str().expect("utf-8");
    run_ok("setfacl", &["-m", "u:1234:rwx,g:2345:r-x", ds]);
    run_ok("setfacl", &["-d", "-m", "u:1234:r-x,o::---", ds]);
    std::fs::write(d.join("inherited"), b"i").expect("create in d");
    std::fs::create_dir(d.join("sub")).expect("mkdir in d");
    let acl = |p: &Path| {
        String::from_utf8_lossy(&run_ok("getfacl", &["-p", p.to_str().expect("utf-8")]).stdout)
            .into_owned()
    };
    let inherited = acl(&d.join("inherited"));
    assert!(inherited.contains("user:1234:r-x"), "{inherited}");
    assert!(acl(&d.join("sub")).contains("default:user:1234:r-x"));
    run_ok("setfacl", &["-m", "u:99:rw-", fs]);

    // chmod keeps them (and moves the ACL mask); renames carry them.
    run_ok("chmod", &["750", fs]);
    assert!(acl(&f).contains("mask::r-x"), "{}", acl(&f));
    std::fs::rename(&f, root.join("g")).expect("rename file");
    std::fs::rename(&d, root.join("e")).expect("rename dir");
    std::fs::rename(&big, root.join("e/big")).expect("rename big");
    let before = dump(root);
    remount();
    let g = root.join("g");
    assert_eq!(get(&g, "user.note"), "hello");
    assert_eq!(get(&root.join("e/big"), "user.k2"), "c".repeat(1024));
    assert_eq!(dump(root), before, "xattrs and ACLs differ after remount");
}

/// `rsync -aAX` of a tree with xattrs and ACLs into the mount and back, exit 0; after a
/// remount a dry run has nothing to send and the dumps are identical.
pub fn rsync_aax_roundtrip(root: &Path, scratch: &Path, remount: Remount<'_>) {
    let src = scratch.join("src");
    std::fs::create_dir_all(src.join("dir/deeper")).expect("mkdir");
    for (i, name) in ["a", "dir/b", "dir/deeper/c"].iter().enumerate() {
        let p = src.join(name);
        std::fs::write(&p, format!("file {i}")).expect("write");
        setxattr(&p, "user.tag", format!("v{i}").as_bytes(), 0).expect("xattr");
    }
    setxattr(&src.join("a"), "user.big", &[7u8; 3000], 0).expect("big xattr");
    // A name of 255 bytes (the most a directory entry holds), with an xattr of its own.
    let long = src.join(format!("dir/{}", "é".repeat(127)) + "L");
    std::fs::write(&long, b"long name").expect("write a 255-byte name");
    setxattr(&long, "user.tag", b"long", 0).expect("xattr on a 255-byte name");
    run_ok(
        "setfacl",
        &[
            "-m",
            "u:1234:rw-",
            src.join("dir/b").to_str().expect("utf-8"),
        ],
    );
    run_ok(
        "setfacl",
        &[
            "-d",
            "-m",
            "g:2345:r-x",
            src.join("dir").to_str().expect("utf-8"),
        ],
    );
    setxattr(&src.join("dir"), "user.dir", b"yes", 0).expect("dir xattr");
    let dest = root.join("copy");
    let s = format!("{}/", src.display());
    let d = format!("{}/", dest.display());
    run_ok("rsync", &["-aAX", &s, &d]);
    remount();
    let out = run_ok("rsync", &["-aAXn", "--itemize-changes", &s, &d]);
    let changes = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        changes.trim().is_empty(),
        "a dry run after remount would send: {changes}"
    );
    assert_eq!(
        dump(&dest),
        dump(&src),
        "xattrs and ACLs differ from the source"
    );
}
