//! Vaults on the local directory store, created and mounted through the `s3cryptfs` binary
//! (`init`, `mount` returning once mounted, `unmount`), exercised with std::fs and real tools.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::common::data::{self, MIB};
use crate::common::scenarios::{self, EDGE_SIZES};
use crate::common::{CliVault, contains_bytes};

#[test]
fn edge_sizes_roundtrip_and_survive_remount() {
    let v = CliVault::init();
    let mut m = v.mount();
    let root = m.mountpoint.clone();
    let scratch = v.new_dir("scratch");
    scenarios::sizes_roundtrip(&root, &scratch, &EDGE_SIZES, &mut || m.remount());
}

#[test]
fn file_200mib_roundtrip_and_survives_remount() {
    let v = CliVault::init();
    let mut m = v.mount();
    let root = m.mountpoint.clone();
    scenarios::big_file_roundtrip(&root, &mut || m.remount());
}

#[test]
fn random_reads_and_writes_match_a_local_file() {
    let v = CliVault::init();
    let mut m = v.mount();
    let root = m.mountpoint.clone();
    let scratch = v.new_dir("scratch");
    let seed = scenarios::test_seed(0xD15C);
    scenarios::random_ops_against_local(
        &root,
        &scratch,
        seed,
        scenarios::test_ops(400),
        3,
        &mut || m.remount(),
    );
}

#[test]
fn cp_r_of_a_tree_then_diff_r() {
    let v = CliVault::init();
    let mut m = v.mount();
    let root = m.mountpoint.clone();
    let scratch = v.new_dir("scratch");
    scenarios::tree_copy_and_diff(&root, &scratch, 20, &mut || m.remount());
}

#[test]
fn concurrent_writers_and_a_lister() {
    let v = CliVault::init();
    let mut m = v.mount();
    let root = m.mountpoint.clone();
    scenarios::concurrent_writers(&root, 6, &mut || m.remount());
}

#[test]
fn rsync_of_a_tree_then_nothing_to_do() {
    let v = CliVault::init();
    let mut m = v.mount();
    let root = m.mountpoint.clone();
    let scratch = v.new_dir("scratch");
    scenarios::rsync_tree(&root, &scratch, 10, &mut || m.remount());
}

/// mkdir/rmdir and errors, rename over an existing file, truncate, chmod + touch -d across
/// remounts, hard links refused, symlinks, directory times and ctime: one vault, one daemon.
#[test]
fn posix_semantics() {
    let v = CliVault::init();
    let mut m = v.mount();
    let root = m.mountpoint.clone();
    scenarios::dir_ops_and_errors(&root, &mut || m.remount());
    scenarios::rename_over_existing(&root, &mut || m.remount());
    scenarios::truncate_up_and_down(&root, &mut || m.remount());
    scenarios::attrs_survive_remount(&root, &mut || m.remount());
    scenarios::hard_link_refused(&root);
    scenarios::symlinks(&root, &mut || m.remount());
    scenarios::entry_times(&root, &mut || m.remount());
}

/// Names of 252 to 255 bytes on a vault with plaintext names, where each name is a file
/// name of the store directory too (longer than it can hold with its suffix): create, stat,
/// rename, readdir, unlink, across a remount.
#[test]
fn names_of_252_to_255_bytes_with_plain_names() {
    let v = CliVault::init_plain();
    let mut m = v.mount();
    let root = m.mountpoint.clone();
    scenarios::long_names(&root, &mut || m.remount());
}

/// Fifos, sockets and devices (issue 14): made by mkfifo, mknod and bind, kept across a
/// remount with their type and device number, and copied by `rsync -a`.
#[test]
fn special_files_and_rsync_of_them() {
    let v = CliVault::init();
    let mut m = v.mount();
    let root = m.mountpoint.clone();
    let scratch = v.new_dir("scratch");
    scenarios::special_files(&root, &mut || m.remount());
    scenarios::rsync_special_files(&root, &scratch, &mut || m.remount());
}

/// Every file of the directory store, and every file the daemon holds open while a file is
/// dirty (its sealed staging), is free of the plaintext marker.
#[test]
fn store_directory_never_holds_plaintext() {
    let v = CliVault::init();
    let mut m = v.mount();
    let root = m.mountpoint.clone();
    let files = scenarios::write_marker_files(&root);

    let open_path = m.path("secret stuff/still-open.txt");
    let mut open = File::create(&open_path).expect("create");
    open.write_all(&data::marker_bytes((2 * MIB) as usize))
        .expect("write");
    let pids = m.daemon_pids();
    assert_eq!(pids.len(), 1, "one daemon serves the mount: {pids:?}");
    let scanned = scenarios::assert_no_marker_in_open_files(pids[0], None);
    eprintln!("scanned {scanned} files the daemon has open");
    scenarios::assert_no_marker_below(&v.store_dir);
    scenarios::assert_no_marker_below(&v.staging_dir());
    drop(open);

    m.unmount();
    let n = scenarios::assert_no_marker_below(&v.store_dir);
    assert!(n >= 6, "the store directory holds the objects ({n} files)");
    scenarios::assert_no_marker_below(&v.staging_dir());
    m.remount();
    for p in &files {
        assert!(
            contains_bytes(&fs::read(p).expect("read back"), data::PLAINTEXT_MARKER),
            "{} reads back after remount",
            p.display()
        );
    }
}

/// Where the directory store keeps the object of a root-level file `name`.
fn object_file(store_dir: &Path, name: &str) -> PathBuf {
    store_dir.join("objects").join(format!("{name}.obj"))
}

/// Object file = body, JSON header, header length (u32 BE), magic "s3cfobj1". Returns
/// (body, header JSON).
fn split_object_file(bytes: &[u8]) -> (Vec<u8>, serde_json::Value) {
    let n = bytes.len();
    assert!(
        n >= 12 && &bytes[n - 8..] == b"s3cfobj1",
        "object file trailer"
    );
    let hlen = u32::from_be_bytes(bytes[n - 12..n - 8].try_into().expect("4 bytes")) as usize;
    let body_end = n - 12 - hlen;
    let header: serde_json::Value =
        serde_json::from_slice(&bytes[body_end..n - 12]).expect("object header is JSON");
    (bytes[..body_end].to_vec(), header)
}

fn join_object_file(body: &[u8], mut header: serde_json::Value) -> Vec<u8> {
    header["size"] = serde_json::Value::from(body.len() as u64);
    let h = serde_json::to_vec(&header).expect("serialize header");
    let mut out = body.to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    out.extend_from_slice(b"s3cfobj1");
    out
}

/// Damaged object files give EIO (never garbage), the daemon logs an error naming each
/// damaged object, and other files stay readable.
#[test]
fn tampered_objects_read_as_eio_and_are_logged() {
    let v = CliVault::init_plain();
    let mut m = v.mount();
    let root = m.mountpoint.clone();
    scenarios::write_tamper_files(&root);
    m.unmount();
    for name in scenarios::TAMPER_VICTIMS {
        let path = object_file(&v.store_dir, name);
        let bytes = fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let (body, header) = split_object_file(&bytes);
        let body = scenarios::tamper(name, body);
        fs::write(&path, join_object_file(&body, header)).expect("write damaged object");
    }
    m.remount();
    scenarios::check_tamper_files(&root);
    let log = m.log();
    for name in scenarios::TAMPER_VICTIMS {
        assert!(
            log.lines()
                .any(|l| l.contains(name) && l.to_lowercase().contains("error")),
            "the daemon log should have an error line naming {name}; log:\n{log}"
        );
    }
}

#[test]
fn xattrs_and_acls_survive_chmod_rename_and_remount() {
    let v = CliVault::init();
    let mut m = v.mount();
    let root = m.mountpoint.clone();
    scenarios::xattrs_and_acls(&root, &mut || m.remount());
}

#[test]
fn rsync_aax_round_trip_then_nothing_to_send() {
    let v = CliVault::init();
    let mut m = v.mount();
    let root = m.mountpoint.clone();
    let scratch = v.new_dir("scratch");
    scenarios::rsync_aax_roundtrip(&root, &scratch, &mut || m.remount());
}

/// The value of xattr `name` of `path`, or the errno.
fn getxattr(path: &Path, name: &str) -> Result<Vec<u8>, i32> {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("path");
    let n = std::ffi::CString::new(name).expect("name");
    let mut buf = vec![0u8; 64 * 1024];
    // SAFETY: NUL-terminated strings and a buffer of buf.len() bytes.
    let r = unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
    }
    buf.truncate(r as usize);
    Ok(buf)
}

/// The sidecar object files of the store (xattrs too big for the attribute record).
fn sidecar_files(store_dir: &Path) -> std::collections::BTreeSet<PathBuf> {
    crate::common::files_below(&store_dir.join("objects"))
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("xattr"))
        .collect()
}

/// Sidecars of large xattrs damaged in the store (a flipped byte, another file's sidecar, the
/// file's own older sidecar in place of its current one) give EIO for that file's xattrs
/// with an error line in the log, while its content and every other file's xattrs stay fine.
#[test]
fn tampered_swapped_or_older_xattr_sidecars_give_eio() {
    let v = CliVault::init_plain();
    let mut m = v.mount();
    let root = m.mountpoint.clone();
    let big = |b: u8| vec![b; 3000];
    let mut sidecar_of = std::collections::HashMap::new();
    for (i, name) in ["flipped", "swapped", "older", "donor", "fine"]
        .iter()
        .enumerate()
    {
        let p = root.join(name);
        fs::write(&p, name.as_bytes()).expect("write");
        let before = sidecar_files(&v.store_dir);
        xattr_set(&p, "user.big", &big(i as u8));
        let new: Vec<PathBuf> = sidecar_files(&v.store_dir)
            .difference(&before)
            .cloned()
            .collect();
        assert_eq!(new.len(), 1, "one sidecar for {name}: {new:?}");
        sidecar_of.insert(*name, new[0].clone());
    }
    fs::write(root.join("inline"), b"inline").expect("write");
    xattr_set(&root.join("inline"), "user.small", b"s");
    // The older sidecar of "older", then its current one.
    let older_bytes = fs::read(&sidecar_of["older"]).expect("read sidecar");
    let before = sidecar_files(&v.store_dir);
    xattr_set(&root.join("older"), "user.big", &big(9));
    let now = sidecar_files(&v.store_dir);
    let current: Vec<&PathBuf> = now.difference(&before).collect();
    assert_eq!(current.len(), 1, "a new sidecar for older: {current:?}");
    let older_current = current[0].clone();
    m.unmount();

    let read = |p: &Path| split_object_file(&fs::read(p).expect("read sidecar"));
    let (mut body, header) = read(&sidecar_of["flipped"]);
    let mid = body.len() / 2;
    body[mid] ^= 1;
    fs::write(&sidecar_of["flipped"], join_object_file(&body, header)).expect("flip");
    let (donor_body, _) = read(&sidecar_of["donor"]);
    let (_, header) = read(&sidecar_of["swapped"]);
    fs::write(
        &sidecar_of["swapped"],
        join_object_file(&donor_body, header),
    )
    .expect("swap");
    let (old_body, _) = split_object_file(&older_bytes);
    let (_, header) = read(&older_current);
    fs::write(&older_current, join_object_file(&old_body, header)).expect("roll back");

    m.remount();
    for name in ["flipped", "swapped", "older"] {
        let p = root.join(name);
        assert_eq!(getxattr(&p, "user.big"), Err(libc::EIO), "{name}");
        assert_eq!(fs::read(&p).expect("content"), name.as_bytes(), "{name}");
    }
    assert_eq!(getxattr(&root.join("donor"), "user.big"), Ok(big(3)));
    assert_eq!(getxattr(&root.join("fine"), "user.big"), Ok(big(4)));
    assert_eq!(
        getxattr(&root.join("inline"), "user.small"),
        Ok(b"s".to_vec())
    );
    let log = m.log();
    for (name, path) in [
        ("flipped", &sidecar_of["flipped"]),
        ("swapped", &sidecar_of["swapped"]),
        ("older", &older_current),
    ] {
        let id = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("sidecar file name");
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("ERROR") && l.contains(id) && l.contains(name))
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "one error line naming {name} and its sidecar {id}; log:\n{log}"
        );
    }
}

fn xattr_set(p: &Path, name: &str, value: &[u8]) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).expect("path");
    let n = std::ffi::CString::new(name).expect("name");
    // SAFETY: NUL-terminated strings and a value of value.len() bytes.
    let r = unsafe {
        libc::setxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(
        r,
        0,
        "setxattr {name} on {}: {}",
        p.display(),
        std::io::Error::last_os_error()
    );
}
