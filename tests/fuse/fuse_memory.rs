//! Real kernel mounts of a vault on a `MemoryStore`, served by this test process.
//!
//! Every test mounts its own store at its own mount point, works through std::fs and real
//! tools, and remounts to prove that what it checks is in the store. The store's raw API lets
//! tests look at every stored byte (no plaintext) and damage objects (EIO, never garbage).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use s3cryptfs::crypto::format::{BLOCK_OVERHEAD, HEADER_LEN};
use s3cryptfs::store::{DynStore, MemoryStore, ObjectStore, Op};

use crate::common;
use crate::common::data::{self, KIB, MIB};
use crate::common::scenarios::{self, BIG_SIZE, EDGE_SIZES};
use crate::common::{MountedFs, contains_bytes, mount_in_process};

fn mount_memory() -> (Arc<MemoryStore>, MountedFs) {
    let store = MemoryStore::new();
    let dyn_store: DynStore = store.clone();
    (store, mount_in_process(dyn_store))
}

#[test]
fn edge_sizes_roundtrip_and_survive_remount() {
    let (_store, mut m) = mount_memory();
    let root = m.mountpoint.clone();
    let scratch = m.scratch();
    scenarios::sizes_roundtrip(&root, &scratch, &EDGE_SIZES, &mut || m.remount());
}

/// 200 MiB streamed in and out; then a 4 KiB read at a random offset, with kernel read-ahead
/// off, fetches at most two blocks' worth of ciphertext (plus the object header).
#[test]
fn file_200mib_roundtrip_and_random_4k_read_fetches_at_most_two_blocks() {
    let (store, mut m) = mount_memory();
    let root = m.mountpoint.clone();
    let path = scenarios::big_file_roundtrip(&root, &mut || m.remount());

    let stride = 64 * KIB + BLOCK_OVERHEAD;
    let limit = 2 * stride + HEADER_LEN as u64;
    for (offset, what) in [
        (123_456_789 / 4096 * 4096, "inside one block"),
        (77 * 64 * KIB - 2048, "straddling two blocks"),
        (BIG_SIZE - 4096, "at the end"),
    ] {
        m.remount();
        store.reset_stats();
        scenarios::random_read_big(&path, offset, 4096);
        let s = store.stats().expect("memory store counts requests");
        assert!(
            s.bytes(Op::Get) <= limit,
            "4 KiB read {what} at {offset} fetched {} ciphertext bytes in {} GETs; at most {limit} \
             (2 blocks + header) allowed",
            s.bytes(Op::Get),
            s.requests(Op::Get)
        );
        assert!(s.bytes(Op::Get) > 0, "the read must come from the store");
    }
}

#[test]
fn random_reads_and_writes_match_a_local_file() {
    let (_store, mut m) = mount_memory();
    let root = m.mountpoint.clone();
    let scratch = m.scratch();
    let seed = scenarios::test_seed(0xC0FFEE);
    scenarios::random_ops_against_local(
        &root,
        &scratch,
        seed,
        scenarios::test_ops(800),
        4,
        &mut || m.remount(),
    );
}

#[test]
fn cp_r_of_a_tree_then_diff_r() {
    let (_store, mut m) = mount_memory();
    let root = m.mountpoint.clone();
    let scratch = m.scratch();
    scenarios::tree_copy_and_diff(&root, &scratch, 20, &mut || m.remount());
}

#[test]
fn concurrent_writers_and_a_lister() {
    let (_store, mut m) = mount_memory();
    let root = m.mountpoint.clone();
    scenarios::concurrent_writers(&root, 6, &mut || m.remount());
}

#[test]
fn rsync_of_a_tree_then_nothing_to_do() {
    let (_store, mut m) = mount_memory();
    let root = m.mountpoint.clone();
    let scratch = m.scratch();
    scenarios::rsync_tree(&root, &scratch, 10, &mut || m.remount());
}

#[test]
fn mkdir_rmdir_and_their_errors() {
    let (_store, mut m) = mount_memory();
    let root = m.mountpoint.clone();
    scenarios::dir_ops_and_errors(&root, &mut || m.remount());
}

#[test]
fn rename_over_an_existing_file() {
    let (_store, mut m) = mount_memory();
    let root = m.mountpoint.clone();
    scenarios::rename_over_existing(&root, &mut || m.remount());
}

#[test]
fn truncate_up_and_down() {
    let (_store, mut m) = mount_memory();
    let root = m.mountpoint.clone();
    scenarios::truncate_up_and_down(&root, &mut || m.remount());
}

#[test]
fn chmod_and_touch_d_survive_remount() {
    let (_store, mut m) = mount_memory();
    let root = m.mountpoint.clone();
    scenarios::attrs_survive_remount(&root, &mut || m.remount());
}

#[test]
fn entry_operations_change_directory_times_and_ctime_follows_changes() {
    let (_store, mut m) = mount_memory();
    let root = m.mountpoint.clone();
    scenarios::entry_times(&root, &mut || m.remount());
}

#[test]
fn hard_links_are_refused_and_symlinks_work() {
    let (_store, mut m) = mount_memory();
    let root = m.mountpoint.clone();
    scenarios::hard_link_refused(&root);
    scenarios::symlinks(&root, &mut || m.remount());
}

/// The vault config object is in the store but never in a listing.
#[test]
fn vault_config_is_hidden_from_listings() {
    let (store, m) = mount_memory();
    assert!(
        store.raw_get(common::inproc::VAULT_CONFIG_KEY).is_some(),
        "the vault config object is stored"
    );
    fs::write(m.path("visible.txt"), b"x").expect("write");
    let names: Vec<String> = fs::read_dir(&m.mountpoint)
        .expect("readdir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["visible.txt".to_string()], "root listing");
    common::assert_errno(
        "stat .s3cryptfs",
        fs::metadata(m.path(".s3cryptfs")),
        libc::ENOENT,
    );
}

/// No stored byte and no staging byte is plaintext: a marker written through the mount must
/// appear nowhere in the store, in the staging directory, or in any staging file this process
/// has open (even unlinked ones) while a file is open and dirty.
#[test]
fn store_and_staging_never_hold_plaintext() {
    let (store, mut m) = mount_memory();
    let root = m.mountpoint.clone();
    let staging = m.staging_dir.clone();
    assert!(
        contains_bytes(&data::marker_bytes(300), data::PLAINTEXT_MARKER),
        "the scanner finds the marker when it is there"
    );
    let files = scenarios::write_marker_files(&root);
    assert!(!files.is_empty());

    // A file left open and dirty: its data is only in staging right now.
    let open_path = m.path("secret stuff/still-open.txt");
    let mut open = File::create(&open_path).expect("create");
    open.write_all(&data::marker_bytes((2 * MIB) as usize))
        .expect("write");
    open.write_all_at(&data::marker_bytes(1000), 12_345)
        .expect("overwrite");
    let scanned_dir = scenarios::assert_no_marker_below(&staging);
    let scanned_fds = scenarios::assert_no_marker_in_open_files(std::process::id(), Some(&staging));
    eprintln!("staging: {scanned_dir} files in the directory, {scanned_fds} open staging files");
    assert!(
        scanned_dir + scanned_fds >= 1,
        "a 2 MiB dirty file is staged on disk, so the scan above must have seen its staging file"
    );
    drop(open);

    m.unmount();
    let keys = store.keys();
    assert!(
        keys.len() >= 6,
        "the store holds the written files: {keys:?}"
    );
    for key in &keys {
        let bytes = store.raw_get(key).expect("listed key has bytes");
        assert!(
            !contains_bytes(&bytes, data::PLAINTEXT_MARKER),
            "object {key} holds plaintext"
        );
    }
    let pending = store.pending_uploads();
    assert!(
        pending.is_empty(),
        "multipart uploads left pending: {pending:?}"
    );
    scenarios::assert_no_marker_below(&staging);
    m.mount();
    for p in &files {
        assert!(
            contains_bytes(&fs::read(p).expect("read back"), data::PLAINTEXT_MARKER),
            "{} reads back after remount",
            p.display()
        );
    }
}

/// A flipped byte, a truncated tail or swapped blocks give EIO, never garbage; other files
/// stay readable.
#[test]
fn tampered_objects_read_as_eio() {
    let (store, mut m) = mount_memory();
    let root = m.mountpoint.clone();
    scenarios::write_tamper_files(&root);
    m.unmount();
    for name in scenarios::TAMPER_VICTIMS {
        let obj = store
            .raw_get(name)
            .unwrap_or_else(|| panic!("object {name} is in the store"));
        store.raw_put(name, scenarios::tamper(name, obj));
    }
    m.mount();
    scenarios::check_tamper_files(&root);
    // The damaged files can still be replaced by writing them anew.
    let p = m.path(scenarios::TAMPER_VICTIMS[0]);
    fs::write(&p, b"fresh").expect("overwrite a damaged file");
    m.remount();
    assert_eq!(fs::read(&p).expect("read"), b"fresh");
}

/// Writes through one handle are visible to another open handle and to stat right away, and
/// a file written by two handles in turn ends up with both writes.
#[test]
fn two_handles_on_one_file() {
    let (_store, mut m) = mount_memory();
    let p = m.path("shared.bin");
    let a = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&p)
        .expect("open a");
    let b = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&p)
        .expect("open b");
    a.write_all_at(b"AAAA", 0).expect("write a");
    b.write_all_at(b"BBBB", 70_000).expect("write b");
    let mut buf = [0u8; 4];
    b.read_exact_at(&mut buf, 0).expect("read b");
    assert_eq!(&buf, b"AAAA");
    assert_eq!(fs::metadata(&p).expect("stat").len(), 70_004);
    drop(a);
    drop(b);
    m.remount();
    let got = fs::read(&p).expect("read");
    assert_eq!(got.len(), 70_004);
    assert_eq!(&got[..4], b"AAAA");
    assert_eq!(&got[70_000..], b"BBBB");
    assert!(
        got[4..70_000].iter().all(|b| *b == 0),
        "the hole reads as zeros"
    );
}

/// A chmod right after close is written a moment later (attribute changes are deferred); a
/// directory rename in between must carry it. Copies are slowed down so that the deferred
/// write falls in the middle of the rename (as on a server that makes the client copy, like
/// Ceph RGW for SSE-C objects): it used to land on the old key and be lost.
#[test]
fn chmod_just_before_a_slow_directory_rename_is_kept() {
    use std::os::unix::fs::PermissionsExt;
    let faulty = s3cryptfs::store::faulty::FaultyStore::new(MemoryStore::new());
    faulty.before_copy(|_, _| std::thread::sleep(std::time::Duration::from_millis(700)));
    let store: DynStore = faulty.clone();
    let mut m = mount_in_process(store);
    std::fs::create_dir(m.path("dir")).expect("mkdir");
    std::fs::write(m.path("dir/top"), b"top").expect("write");
    std::fs::set_permissions(m.path("dir/top"), std::fs::Permissions::from_mode(0o640))
        .expect("chmod");
    std::fs::rename(m.path("dir"), m.path("moved")).expect("rename the directory");
    let mode_of = |m: &MountedFs| {
        std::fs::metadata(m.path("moved/top"))
            .expect("stat")
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode_of(&m), 0o640, "right after the rename");
    m.remount();
    assert_eq!(mode_of(&m), 0o640, "after a remount");
    assert_eq!(std::fs::read(m.path("moved/top")).expect("read"), b"top");
}
