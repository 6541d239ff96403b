//! The bucket's owner as the adversary (issue 13): forged attributes, bodies and metadata moved
//! between names, emptied and impossible-sized objects. Every forgery is refused (EIO for that
//! name, other files stay usable) or leaves the true attributes; none shows what the forger
//! wanted. Each test tampers through the `MemoryStore` directly, then looks through a fresh `Fs`
//! (no cached entry or opener).

use std::ffi::OsStr;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use s3cryptfs::crypto::format::record::ATTR_RECORD_KEY;
use s3cryptfs::crypto::format::{HEADER_LEN, ciphertext_len};
use s3cryptfs::fs::attr::{StoredAttrs, to_metadata};
use s3cryptfs::fs::{Attr, Fs, FsError, Kind};
use s3cryptfs::sealed::SealedStore;
use s3cryptfs::store::{
    CopyOptions, MemoryStore, Metadata, MetadataDirective, ObjectStore, PutOptions,
};
use s3cryptfs::tools::progress::Progress;
use s3cryptfs::tools::verify::{ProblemKind, verify_objects};
use s3cryptfs::vault::RollbackGuard;

use crate::common::memfs::{self, MemVault};

const B: u32 = 4096;

async fn write_file(fs: &Arc<Fs>, name: &str, data: &[u8], mode: u32, uid: u32) {
    let (_, fh) = fs
        .create(1, OsStr::new(name), mode, libc::O_WRONLY, uid, uid)
        .await
        .expect("create");
    fs.write(fh, 0, data).await.expect("write");
    fs.flush(fh).await.expect("flush");
    fs.release(fh).await.expect("release");
}

async fn read_all(fs: &Arc<Fs>, ino: u64) -> Result<Vec<u8>, FsError> {
    let fh = fs.open(ino, libc::O_RDONLY).await?;
    let mut out = Vec::new();
    let r = loop {
        match fs.read(fh, out.len() as u64, 64 * 1024).await {
            Ok(chunk) if chunk.is_empty() => break Ok(()),
            Ok(chunk) => out.extend_from_slice(&chunk),
            Err(e) => break Err(e),
        }
    };
    fs.release(fh).await?;
    r.map(|()| out)
}

async fn lookup(fs: &Arc<Fs>, name: &str) -> Result<Attr, FsError> {
    fs.lookup(1, OsStr::new(name)).await
}

fn assert_eio<T: std::fmt::Debug>(r: Result<T, FsError>, what: &str) {
    match r {
        Err(e) => assert_eq!(e.errno(), libc::EIO, "{what}: {e}"),
        Ok(v) => panic!("{what}: accepted: {v:?}"),
    }
}

async fn metadata(mem: &MemoryStore, key: &str) -> Metadata {
    mem.head(key)
        .await
        .expect("head")
        .metadata
        .unwrap_or_default()
}

/// CopyObject of `key` onto itself with `m` as its metadata: what the bucket owner can do
/// to any object.
async fn replace_metadata(mem: &MemoryStore, key: &str, m: Metadata) {
    mem.copy(
        key,
        key,
        CopyOptions {
            metadata: MetadataDirective::Replace(m),
            ..Default::default()
        },
    )
    .await
    .expect("replace metadata");
}

fn vault() -> MemVault {
    MemVault::create(7, B)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_setuid_root_mode_is_never_shown() {
    let v = vault();
    write_file(&v.fs(), "f", b"payload", 0o644, 1000).await;
    // s3fs-style plaintext attributes added next to the record: ignored.
    let mut m = metadata(&v.mem, "f").await;
    m.insert("mode".into(), (libc::S_IFREG | 0o4755).to_string());
    m.insert("uid".into(), "0".into());
    m.insert("gid".into(), "0".into());
    replace_metadata(&v.mem, "f", m.clone()).await;
    let attr = lookup(&v.fs(), "f").await.expect("the record still opens");
    assert_eq!((attr.perm, attr.uid, attr.kind), (0o644, 1000, Kind::File));
    // The record dropped, only the forged attributes left: refused.
    m.remove(ATTR_RECORD_KEY);
    replace_metadata(&v.mem, "f", m).await;
    let fs = v.fs();
    assert_eio(lookup(&fs, "f").await, "forged mode without a record");
    // Other files stay usable.
    write_file(&fs, "g", b"fine", 0o600, 1000).await;
    assert_eq!(lookup(&v.fs(), "g").await.expect("g").perm, 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_is_not_turned_into_a_symlink_or_back() {
    let v = vault();
    let fs = v.fs();
    write_file(&fs, "f", b"/etc/shadow", 0o644, 1000).await;
    fs.symlink(1, OsStr::new("l"), "/etc/passwd".as_ref(), 1000, 1000)
        .await
        .expect("symlink");
    let mut m = metadata(&v.mem, "f").await;
    m.insert("mode".into(), (libc::S_IFLNK | 0o777).to_string());
    replace_metadata(&v.mem, "f", m).await;
    let attr = lookup(&v.fs(), "f").await.expect("f");
    assert_eq!(attr.kind, Kind::File, "the type comes from the record only");
    // The symlink's record moved onto the file's object: bound to "l", refused at "f".
    let l_meta = metadata(&v.mem, "l").await;
    let f_body = v.mem.raw_get("f").expect("f");
    v.mem.raw_put_with_metadata("f", f_body, l_meta);
    assert_eio(lookup(&v.fs(), "f").await, "symlink record on a file");
    // And a file's record onto the symlink.
    write_file(&fs, "g", b"x", 0o644, 1000).await;
    let g_meta = metadata(&v.mem, "g").await;
    let l_body = v.mem.raw_get("l").expect("l");
    v.mem.raw_put_with_metadata("l", l_body, g_meta);
    assert_eio(lookup(&v.fs(), "l").await, "file record on a symlink");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emptied_object_is_eio_not_an_empty_file() {
    let v = vault();
    let fs = v.fs();
    write_file(&fs, "f", b"secret content", 0o644, 1000).await;
    write_file(&fs, "empty", b"", 0o644, 1000).await;
    write_file(&fs, "other-empty", b"", 0o644, 1000).await;
    // A 0-byte body under the same metadata.
    let m = metadata(&v.mem, "f").await;
    v.mem.raw_put_with_metadata("f", Vec::new(), m);
    assert_eio(lookup(&v.fs(), "f").await, "0-byte body");
    // An empty file's object replaced by another valid empty object (same size, so the
    // record's size agrees): the open checks the whole object and its binding.
    let m = metadata(&v.mem, "empty").await;
    let other = v.mem.raw_get("other-empty").expect("other");
    v.mem.raw_put_with_metadata("empty", other, m);
    let fs = v.fs();
    let attr = lookup(&fs, "empty")
        .await
        .expect("size agrees with the record");
    assert_eio(
        fs.open(attr.ino, libc::O_RDONLY).await,
        "open of a swapped empty file",
    );
    // The genuine empty file opens and reads empty.
    let attr = lookup(&fs, "other-empty").await.expect("other-empty");
    assert_eq!(read_all(&fs, attr.ino).await.expect("read"), b"");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_impossible_size_is_eio() {
    let v = vault();
    write_file(&v.fs(), "f", &[5u8; 5000], 0o644, 1000).await;
    let m = metadata(&v.mem, "f").await;
    let body = v.mem.raw_get("f").expect("f");
    let h = HEADER_LEN as u64;
    let one_full_block = h + u64::from(B) + 16;
    // Shorter than a header plus one tag, and the sizes between one full block and the
    // smallest two-block object (docs/FORMAT.md §3).
    let mut sizes = vec![1, h - 1, h, h + 15];
    sizes.extend((1..=16).map(|k| one_full_block + k));
    for size in sizes {
        let mut forged = body.clone();
        forged.resize(size as usize, 0);
        v.mem.raw_put_with_metadata("f", forged, m.clone());
        assert_eio(lookup(&v.fs(), "f").await, &format!("stored size {size}"));
    }
    // A valid size that is not the record's: refused too.
    let valid = ciphertext_len(100, B);
    let mut forged = body.clone();
    forged.resize(valid as usize, 0);
    v.mem.raw_put_with_metadata("f", forged, m.clone());
    assert_eio(lookup(&v.fs(), "f").await, "size other than the record's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_swapped_between_names_are_eio() {
    let v = vault();
    let fs = v.fs();
    write_file(&fs, "a", b"content of a", 0o600, 1000).await;
    write_file(&fs, "b", b"content of b", 0o644, 1001).await;
    // A's whole object (body and metadata) copied over B.
    v.mem
        .copy("a", "b", CopyOptions::default())
        .await
        .expect("copy");
    let fs = v.fs();
    assert_eio(lookup(&fs, "b").await, "a's object under b");
    let attr = lookup(&fs, "a").await.expect("a is untouched");
    assert_eq!(
        read_all(&fs, attr.ino).await.expect("read a"),
        b"content of a"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transplanted_record_is_eio() {
    let v = vault();
    let fs = v.fs();
    write_file(&fs, "a", b"aaaa", 0o4755, 0).await;
    write_file(&fs, "b", b"bbbb", 0o644, 1001).await;
    // A's metadata (its owner and setuid mode) copied onto B's object.
    let a_meta = metadata(&v.mem, "a").await;
    replace_metadata(&v.mem, "b", a_meta).await;
    assert_eio(lookup(&v.fs(), "b").await, "a's record on b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_swapped_under_a_record_is_eio_at_read() {
    let v = vault();
    let fs = v.fs();
    // Same size: the record's size agrees, only the content binding tells.
    write_file(&fs, "a", b"AAAAAAAA", 0o644, 1000).await;
    write_file(&fs, "b", b"BBBBBBBB", 0o644, 1000).await;
    let b_meta = metadata(&v.mem, "b").await;
    // An older record of the same name with newer content (same size).
    write_file(&fs, "b", b"bbbbbbbb", 0o644, 1000).await;
    replace_metadata(&v.mem, "b", b_meta.clone()).await;
    let fs = v.fs();
    let attr = lookup(&fs, "b").await.expect("size agrees");
    assert_eio(read_all(&fs, attr.ino).await, "old record, new content");
    // A's body under b's (first) record.
    let a_body = v.mem.raw_get("a").expect("a");
    v.mem.raw_put_with_metadata("b", a_body, b_meta);
    let fs = v.fs();
    let attr = lookup(&fs, "b").await.expect("size agrees");
    assert_eio(read_all(&fs, attr.ino).await, "a's body under b's record");
    let attr = lookup(&fs, "a").await.expect("a");
    assert_eq!(read_all(&fs, attr.ino).await.expect("a reads"), b"AAAAAAAA");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vault_without_the_marker_still_mounts_with_its_plaintext_attributes() {
    let v = vault();
    let legacy_keys = Arc::new((*v.keys).clone().with_attribute_records(false));
    // An object as versions before records wrote it: sealed, plaintext attributes.
    let sealed = SealedStore::new(v.mem.clone(), v.keys.clone());
    let attrs = StoredAttrs {
        perm: 0o640,
        uid: 1234,
        gid: 5678,
        mtime: UNIX_EPOCH + Duration::from_secs(1_600_000_000),
        xattrs: Default::default(),
        ctime: UNIX_EPOCH + Duration::from_secs(1_600_000_000),
    };
    sealed
        .put_all(
            "old",
            b"legacy",
            PutOptions {
                metadata: to_metadata(Kind::File, &attrs),
                ..Default::default()
            },
            None,
        )
        .await
        .expect("put");
    let legacy = memfs::fs_over(v.mem.clone(), legacy_keys.clone(), v.staging());
    let attr = lookup(&legacy, "old").await.expect("legacy file");
    assert_eq!(
        (attr.perm, attr.uid, attr.gid, attr.mtime),
        (0o640, 1234, 5678, attrs.mtime)
    );
    assert_eq!(read_all(&legacy, attr.ino).await.expect("read"), b"legacy");
    // New files of a legacy vault get records, which it reads.
    write_file(&legacy, "new", b"n", 0o600, 42).await;
    assert!(metadata(&v.mem, "new").await.contains_key(ATTR_RECORD_KEY));
    let fresh = memfs::fs_over(v.mem.clone(), legacy_keys, v.staging());
    assert_eq!(lookup(&fresh, "new").await.expect("new").uid, 42);
    // A vault that requires records refuses the record-less object, and verify names it.
    assert_eio(lookup(&v.fs(), "old").await, "no record where required");
    let store: s3cryptfs::store::DynStore = v.mem.clone();
    let report = verify_objects(&store, "", &v.keys, None, false, &Progress::hidden())
        .await
        .expect("verify");
    assert!(!report.ok);
    assert_eq!(
        report
            .problems
            .iter()
            .map(|p| (p.key.as_str(), p.kind))
            .collect::<Vec<_>>(),
        vec![("old", ProblemKind::BadRecord)]
    );
    // Without the marker, verify accepts it and counts it as unauthenticated.
    let report = verify_objects(
        &store,
        "",
        &legacy_keys_of(&v),
        None,
        false,
        &Progress::hidden(),
    )
    .await
    .expect("verify");
    assert!(report.ok, "{report:?}");
    assert_eq!(report.without_record, 1);
}

fn legacy_keys_of(v: &MemVault) -> s3cryptfs::crypto::VaultKeys {
    (*v.keys).clone().with_attribute_records(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_every_forged_object() {
    let v = vault();
    let fs = v.fs();
    for name in ["a", "b", "c", "d", "ok"] {
        write_file(&fs, name, name.as_bytes(), 0o644, 1000).await;
    }
    fs.mkdir(1, OsStr::new("dir"), 0o755, 1000, 1000)
        .await
        .expect("mkdir");
    let a_meta = metadata(&v.mem, "a").await;
    replace_metadata(&v.mem, "b", a_meta).await; // transplanted record
    v.mem
        .copy("a", "c", CopyOptions::default())
        .await
        .expect("copy"); // swapped object
    let mut d_meta = metadata(&v.mem, "d").await;
    d_meta.remove(ATTR_RECORD_KEY);
    replace_metadata(&v.mem, "d", d_meta).await; // record removed
    let mut dir_meta = metadata(&v.mem, "dir/").await;
    dir_meta.insert(
        ATTR_RECORD_KEY.into(),
        metadata(&v.mem, "ok").await[ATTR_RECORD_KEY].clone(),
    );
    replace_metadata(&v.mem, "dir/", dir_meta).await; // a file's record on a marker
    let store: s3cryptfs::store::DynStore = v.mem.clone();
    let report = verify_objects(&store, "", &v.keys, None, false, &Progress::hidden())
        .await
        .expect("verify");
    assert!(!report.ok);
    let mut bad: Vec<&str> = report.problems.iter().map(|p| p.key.as_str()).collect();
    bad.sort();
    assert_eq!(bad, vec!["b", "c", "d", "dir/"], "{report:?}");
    assert!(
        report
            .problems
            .iter()
            .all(|p| p.kind == ProblemKind::BadRecord)
    );
    assert_eio(lookup(&v.fs(), "dir").await, "a file's record on a marker");
}

/// After files, a directory and a symlink with distinct owners, modes and times, no object's
/// metadata holds them in plaintext.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_attribute_is_stored_in_plaintext() {
    let v = vault();
    let fs = v.fs();
    write_file(&fs, "f", b"data", 0o4711, 424242).await;
    let attr = lookup(&fs, "f").await.expect("f");
    let when = UNIX_EPOCH + Duration::new(1_234_567_890, 987_654_321);
    fs.setattr(attr.ino, None, Some(0o2751), None, Some(434343), Some(when))
        .await
        .expect("setattr");
    let d = fs
        .mkdir(1, OsStr::new("d"), 0o1755, 454545, 464646)
        .await
        .expect("mkdir");
    fs.symlink(d.ino, OsStr::new("l"), "target".as_ref(), 474747, 484848)
        .await
        .expect("symlink");
    fs.rename(1, OsStr::new("f"), d.ino, OsStr::new("g"), 0)
        .await
        .expect("rename");
    fs.flush_all().await.expect("flush");
    let keys = v.mem.keys();
    assert_eq!(keys, vec!["d/", "d/g", "d/l"]);
    for key in keys {
        let m = metadata(&v.mem, &key).await;
        for forbidden in ["mode", "uid", "gid", "mtime", "mtime-nsec"] {
            assert!(!m.contains_key(forbidden), "{key}: {forbidden} in {m:?}");
        }
        for (k, value) in &m {
            assert!(k.starts_with("s3cryptfs-"), "{key}: {k}");
            for secret in [
                "424242",
                "434343",
                "454545",
                "464646",
                "474747",
                "1234567890",
            ] {
                assert!(!value.contains(secret), "{key}: {k} holds {secret}");
            }
        }
        assert!(m.contains_key(ATTR_RECORD_KEY), "{key} has a record");
    }
    // And a fresh mount shows them, from the records.
    let fs = v.fs();
    let d = lookup(&fs, "d").await.expect("d");
    assert_eq!((d.perm, d.uid, d.gid), (0o1755, 454545, 464646));
    let g = fs.lookup(d.ino, OsStr::new("g")).await.expect("g");
    assert_eq!(
        (g.perm, g.uid, g.gid, g.mtime),
        (0o2751, 424242, 434343, when)
    );
    let l = fs.lookup(d.ino, OsStr::new("l")).await.expect("l");
    assert_eq!((l.kind, l.uid), (Kind::Symlink, 474747));
    assert_eq!(fs.readlink(l.ino).await.expect("readlink"), b"target");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_directory_keeps_readable_records() {
    let v = vault();
    let fs = v.fs();
    let d = fs
        .mkdir(1, OsStr::new("d"), 0o750, 1000, 1000)
        .await
        .expect("mkdir");
    let (_, fh) = fs
        .create(d.ino, OsStr::new("x"), 0o640, libc::O_WRONLY, 1001, 1002)
        .await
        .expect("create");
    fs.write(fh, 0, b"inside").await.expect("write");
    fs.release(fh).await.expect("release");
    fs.rename(1, OsStr::new("d"), 1, OsStr::new("e"), 0)
        .await
        .expect("rename");
    let fs = v.fs();
    let e = lookup(&fs, "e").await.expect("e");
    assert_eq!((e.perm, e.uid), (0o750, 1000));
    let x = fs.lookup(e.ino, OsStr::new("x")).await.expect("x");
    assert_eq!((x.perm, x.uid, x.gid), (0o640, 1001, 1002));
    assert_eq!(read_all(&fs, x.ino).await.expect("read"), b"inside");
}

/// `upgrade` turns a vault made before records (plaintext attributes, no marker) into one that
/// requires them: every object and marker gets the record of its old attributes, the
/// plaintext metadata goes, the config is marked, and forgeries are refused afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_seals_old_attributes_and_marks_the_vault() {
    use s3cryptfs::crypto::{PassphraseParams, Secret, VaultConfig};
    use s3cryptfs::tools::upgrade::upgrade_vault;
    use s3cryptfs::vault;

    let mem = MemoryStore::new();
    let store: s3cryptfs::store::DynStore = mem.clone();
    let secret = Secret::KeyFile(zeroize::Zeroizing::new([3; 32]));
    // A config as versions before records made it: no marker.
    let (config, keys) = VaultConfig::create_from_parts(
        &secret,
        PassphraseParams::INSECURE_FOR_TESTS,
        [1; 32],
        [2; 16],
        &[4; 32],
        &[5; 32],
        B,
    )
    .expect("config");
    assert!(!config.attribute_records());
    mem.put(
        &vault::config_key(""),
        config.to_bytes().into(),
        PutOptions::default(),
    )
    .await
    .expect("put config");
    let keys = Arc::new(keys);
    let sealed = SealedStore::new(store.clone(), keys.clone());
    let old = StoredAttrs {
        perm: 0o4750,
        uid: 1234,
        gid: 5678,
        mtime: UNIX_EPOCH + Duration::from_secs(1_500_000_000),
        xattrs: Default::default(),
        ctime: UNIX_EPOCH + Duration::from_secs(1_500_000_000),
    };
    sealed
        .put_all(
            "d/old",
            b"old content",
            PutOptions {
                metadata: to_metadata(Kind::File, &old),
                ..Default::default()
            },
            None,
        )
        .await
        .expect("old file");
    mem.put(
        "d/",
        bytes::Bytes::new(),
        PutOptions {
            metadata: to_metadata(Kind::Dir, &StoredAttrs { perm: 0o700, ..old }),
            ..Default::default()
        },
    )
    .await
    .expect("old marker");
    let staging = tempfile::tempdir().expect("staging");
    let legacy = memfs::fs_over(store.clone(), keys.clone(), staging.path());
    write_file(&legacy, "new", b"new", 0o600, 42).await;

    let report = upgrade_vault(
        &store,
        "",
        "mem://t",
        &secret,
        &RollbackGuard::default(),
        &Progress::hidden(),
    )
    .await
    .expect("upgrade");
    assert!(report.marked && report.is_complete(), "{report:?}");
    assert_eq!(
        (report.examined, report.upgraded, report.already),
        (3, 2, 1)
    );
    for key in ["d/", "d/old", "new"] {
        let m = metadata(&mem, key).await;
        assert!(m.contains_key(ATTR_RECORD_KEY), "{key}");
        assert!(
            !m.contains_key("mode") && !m.contains_key("uid"),
            "{key}: {m:?}"
        );
    }
    let keys = vault::open_vault(&*mem, "", &secret, &RollbackGuard::default())
        .await
        .expect("unlock");
    assert!(keys.requires_attribute_records());
    let fs = memfs::fs_over(store.clone(), Arc::new(keys), staging.path());
    let d = lookup(&fs, "d").await.expect("d");
    assert_eq!((d.perm, d.uid), (0o700, 1234));
    let f = fs.lookup(d.ino, OsStr::new("old")).await.expect("old");
    assert_eq!(
        (f.perm, f.uid, f.gid, f.mtime),
        (0o4750, 1234, 5678, old.mtime)
    );
    assert_eq!(read_all(&fs, f.ino).await.expect("read"), b"old content");
    // Now a forgery of the old kind is refused.
    let mut m = metadata(&mem, "new").await;
    m.remove(ATTR_RECORD_KEY);
    m.insert("mode".into(), (libc::S_IFREG | 0o4755).to_string());
    replace_metadata(&mem, "new", m).await;
    let fs = memfs::fs_over(
        store.clone(),
        Arc::new(
            vault::open_vault(&*mem, "", &secret, &RollbackGuard::default())
                .await
                .expect("unlock"),
        ),
        staging.path(),
    );
    assert_eio(
        lookup(&fs, "new").await,
        "record stripped after the upgrade",
    );
    // A second run changes nothing and keeps the marker.
    let again = upgrade_vault(
        &store,
        "",
        "mem://t",
        &secret,
        &RollbackGuard::default(),
        &Progress::hidden(),
    )
    .await
    .expect("again");
    assert!(again.marked);
    assert_eq!(again.upgraded, 0);
    assert_eq!(
        again.failed.len(),
        1,
        "the stripped object is reported: {again:?}"
    );
}
