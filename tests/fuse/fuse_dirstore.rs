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
