//! Key rotation with rewrap on the memory store, through the library API: no object data is
//! read or written, every file reads back identical, new writes use the new generation, an
//! interrupted rewrap resumes, a file changed meanwhile is never clobbered, and a generation
//! can be retired only once nothing needs it. Plus an independent check of the metadata wrap
//! against docs/FORMAT.md §2a.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::sync::Arc;

use s3cryptfs::crypto::format::record::{ATTR_RECORD_KEY, seal_record};
use s3cryptfs::crypto::format::{ObjectSealer, open_all_with_metadata, seal_all_with};
use s3cryptfs::crypto::rewrap::{
    METADATA_KEY_HEADER, METADATA_WRAP_KEY, Rewrap, key_header_value, rewrap_for_metadata,
};
use s3cryptfs::crypto::{HEADER_LEN, Secret, VaultKeys};
use s3cryptfs::fs::attr::record_for;
use s3cryptfs::fs::{Fs, Kind, StoredAttrs};
use s3cryptfs::store::faulty::FaultyStore;
use s3cryptfs::store::{CopyOptions, DynStore, MemoryStore, MetadataDirective, ObjectStore, Op};
use s3cryptfs::tools::files::{read_file, resolve};
use s3cryptfs::tools::progress::Progress;
use s3cryptfs::tools::rewrap::{check_retire, rewrap_objects};
use s3cryptfs::vault::{self, config_key};
use zeroize::Zeroizing;

use crate::common::memfs::{self, MemVault};

const BLOCK: u32 = 4096;

fn secret() -> Secret {
    Secret::KeyFile(Zeroizing::new([0x5a; 32]))
}

fn content(i: usize) -> Vec<u8> {
    // Sizes from 0 to a few blocks, so headers, single and multi-block objects all appear.
    let len = (i * 37) % (3 * BLOCK as usize + 500);
    (0..len).map(|j| (i * 31 + j * 7) as u8).collect()
}

fn file_name(i: usize) -> (String, String) {
    (format!("d{}", i % 10), format!("f{i:04}"))
}

struct Vault {
    mem: Arc<MemoryStore>,
    vault: MemVault,
}

impl Vault {
    fn fs(&self, store: DynStore, keys: VaultKeys) -> Arc<Fs> {
        memfs::fs_over(store, Arc::new(keys), self.vault.staging())
    }

    async fn keys(&self) -> VaultKeys {
        vault::open_vault(&*self.mem, "", &secret(), &Default::default())
            .await
            .expect("unlock")
    }
}

/// A vault with `n` files in 10 directories, plus 3 symlinks.
async fn vault_with_files(n: usize) -> Vault {
    let vault = MemVault::init(&secret(), BLOCK).await;
    let fs = vault.fs();
    let v = Vault {
        mem: vault.mem.clone(),
        vault,
    };
    let root = fs.root_ino();
    let mut dirs = BTreeMap::new();
    for d in 0..10 {
        let a = fs
            .mkdir(root, OsStr::new(&format!("d{d}")), 0o755, 0, 0)
            .await
            .expect("mkdir");
        dirs.insert(format!("d{d}"), a.ino);
    }
    for i in 0..n {
        let (d, f) = file_name(i);
        let (_, fh) = fs
            .create(
                dirs[&d],
                OsStr::new(&f),
                0o640,
                libc::O_WRONLY | libc::O_CREAT,
                0,
                0,
            )
            .await
            .expect("create");
        fs.write(fh, 0, &content(i)).await.expect("write");
        fs.release(fh).await.expect("release");
    }
    for s in 0..3 {
        fs.symlink(
            root,
            OsStr::new(&format!("link{s}")),
            std::path::Path::new(&format!("d{s}/f000{s}")),
            0,
            0,
        )
        .await
        .expect("symlink");
    }
    v
}

async fn read_back(fs: &Arc<Fs>, i: usize) -> Vec<u8> {
    let (d, f) = file_name(i);
    let path = format!("{d}/{f}");
    let attr = resolve(fs, &path).await.expect("resolve");
    let mut out = Vec::new();
    read_file(fs, attr.ino, &path, &mut out)
        .await
        .expect("read");
    out
}

/// Opens every file object straight from the store with `keys`, using its metadata.
async fn open_all_objects(store: &MemoryStore, keys: &VaultKeys) -> usize {
    let mut n = 0;
    for key in store.keys() {
        if key.ends_with('/') || key.starts_with(".s3cryptfs/") {
            continue;
        }
        let info = store.head(&key).await.expect("head");
        let bytes = store.raw_get(&key).expect("bytes");
        open_all_with_metadata(keys, &bytes, info.metadata.as_ref())
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        n += 1;
    }
    n
}

async fn rotate(v: &Vault) -> VaultKeys {
    let mut stored = vault::load_config(&*v.mem, "").await.expect("load");
    let mut keys =
        vault::unlock_config(&stored, "", &secret(), &Default::default()).expect("unlock");
    stored.config.add_generation(&mut keys).expect("rotate");
    vault::save_config(
        &*v.mem,
        "",
        &stored.config,
        &stored.etag,
        &Default::default(),
    )
    .await
    .expect("save");
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_and_rewrap_1000_objects_reads_no_data() {
    let v = vault_with_files(1000).await;
    let objects = 1003u64;
    // One object as an older build wrote it: no header copy in its metadata.
    let old_style = "d3/f0003";
    let mut stripped = v
        .mem
        .head(old_style)
        .await
        .expect("head")
        .metadata
        .expect("meta");
    assert!(
        stripped.remove(METADATA_KEY_HEADER).is_some(),
        "uploads carry a header copy"
    );
    v.mem
        .copy(
            old_style,
            old_style,
            CopyOptions {
                metadata: MetadataDirective::Replace(stripped),
                source_if_match: None,
                source_size: None,
            },
        )
        .await
        .expect("strip the header copy");
    let keys = rotate(&v).await;
    assert_eq!(keys.current_generation(), 2);

    let faulty = FaultyStore::new(v.mem.clone());
    let store: DynStore = faulty.clone();
    v.mem.reset_stats();
    let report = rewrap_objects(&store, "", &keys, 16, &Progress::hidden())
        .await
        .expect("rewrap");
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(
        (report.examined, report.rewrapped, report.already_current),
        (objects, objects, 0)
    );

    // No object bytes were read: the header copies in the metadata were enough. Only the
    // object without one had its 116-byte header read.
    let stats = v.mem.stats().expect("stats");
    let gets = faulty.gets();
    assert_eq!(gets.len(), 1, "{gets:?}");
    assert_eq!(
        (gets[0].key.as_str(), gets[0].range.clone()),
        (old_style, Some(0..HEADER_LEN as u64))
    );
    assert_ne!(gets[0].key, config_key(""));
    assert_eq!(stats.bytes(Op::Get), HEADER_LEN as u64);
    // No object data was sent: copies only, server-side.
    assert_eq!(stats.bytes(Op::Put), 0);
    assert_eq!(stats.requests(Op::UploadPart), 0);
    // One copy per file object, and one per directory marker: its attribute record is
    // sealed again under the new generation.
    assert_eq!(report.markers_resealed, 10);
    assert_eq!(stats.requests(Op::Copy), objects + 10);

    // Everything reads back identical through the file system layer.
    let fs = v.fs(store.clone(), v.keys().await);
    for i in (0..1000).step_by(7) {
        assert_eq!(read_back(&fs, i).await, content(i), "file {i}");
    }
    let link = resolve(&fs, "link1").await.expect("link");
    assert_eq!(fs.readlink(link.ino).await.expect("readlink"), b"d1/f0001");

    // Without generation 1, every object still opens, through its metadata wrap.
    let only_new = v.keys().await.without_generation(1).expect("without 1");
    assert_eq!(open_all_objects(&v.mem, &only_new).await as u64, objects);

    // New writes use generation 2 (header bytes 8..12).
    let (_, fh) = fs
        .create(
            fs.root_ino(),
            OsStr::new("new.txt"),
            0o644,
            libc::O_WRONLY | libc::O_CREAT,
            0,
            0,
        )
        .await
        .expect("create");
    fs.write(fh, 0, b"written after the rotation")
        .await
        .expect("write");
    fs.release(fh).await.expect("release");
    let header = v.mem.raw_get("new.txt").expect("new object");
    assert_eq!(&header[8..12], &2u32.to_be_bytes());

    // A second run finds nothing to do and reads nothing.
    faulty.clear_gets();
    let again = rewrap_objects(&store, "", &keys, 16, &Progress::hidden())
        .await
        .expect("rewrap again");
    assert_eq!(
        (again.rewrapped, again.already_current),
        (0, objects + 1),
        "{again:?}"
    );
    // A rewrapped object costs a HEAD only, and so does the new object (its header copy
    // names the current generation).
    let gets = faulty.gets();
    assert!(gets.is_empty(), "{gets:?}");

    // Retire generation 1: nothing needs it; afterwards the config holds generation 2 only.
    let check = check_retire(&store, "", &keys, 1, 16, &Progress::hidden())
        .await
        .expect("check");
    assert!(check.blockers.is_empty(), "{check:?}");
    assert!(check.unreadable.is_empty(), "{check:?}");
    let mut stored = vault::load_config(&*v.mem, "").await.expect("load");
    let mut k = vault::unlock_config(&stored, "", &secret(), &Default::default()).expect("unlock");
    stored.config.remove_generation(&mut k, 1).expect("retire");
    vault::save_config(
        &*v.mem,
        "",
        &stored.config,
        &stored.etag,
        &Default::default(),
    )
    .await
    .expect("save");
    let after = v.keys().await;
    assert_eq!(after.generations(), vec![2]);
    assert_eq!(open_all_objects(&v.mem, &after).await as u64, objects + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_rewrap_resumes_and_completes() {
    let v = vault_with_files(200).await;
    let objects = 203u64;
    let keys = rotate(&v).await;
    let faulty = FaultyStore::new(v.mem.clone());
    let store: DynStore = faulty.clone();
    faulty.fail_copies_after(50);
    let first = rewrap_objects(&store, "", &keys, 4, &Progress::hidden())
        .await
        .expect("rewrap");
    assert!(!first.is_complete());
    // The 50 copies that went through: files and the directory markers listed among them
    // (their attribute records are sealed again too); the 10 markers count with the rest.
    assert_eq!(first.rewrapped + first.markers_resealed, 50, "{first:?}");
    assert_eq!(first.failed.len() as u64, objects + 10 - 50);
    assert!(
        first.failed[0].reason.contains("injected fault"),
        "{first:?}"
    );

    // Retiring generation 1 is refused while objects still need it.
    let check = check_retire(&store, "", &keys, 1, 8, &Progress::hidden())
        .await
        .expect("check");
    assert_eq!(check.blockers.len() as u64, objects + 10 - 50);

    faulty.heal();
    let second = rewrap_objects(&store, "", &keys, 4, &Progress::hidden())
        .await
        .expect("resume");
    assert!(second.is_complete(), "{second:?}");
    assert_eq!(
        (second.rewrapped, second.already_current),
        (objects - first.rewrapped, first.rewrapped)
    );
    assert_eq!(second.markers_resealed, 10 - first.markers_resealed);
    let check = check_retire(&store, "", &keys, 1, 8, &Progress::hidden())
        .await
        .expect("check");
    assert!(check.blockers.is_empty(), "{check:?}");
    let only_new = v.keys().await.without_generation(1).expect("without 1");
    assert_eq!(open_all_objects(&v.mem, &only_new).await as u64, objects);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_changed_during_the_rewrap_is_not_clobbered() {
    let v = vault_with_files(40).await;
    let keys = Arc::new(rotate(&v).await);
    let faulty = FaultyStore::new(v.mem.clone());
    let store: DynStore = faulty.clone();
    // Between the rewrap's HEAD/GET and its COPY of the 5th object, another client replaces
    // that object with new content.
    let mem = v.mem.clone();
    let hook_keys = keys.clone();
    let changed_key = Arc::new(std::sync::Mutex::new(None::<String>));
    let changed_in_hook = changed_key.clone();
    faulty.before_copy(move |n, key| {
        if n == 5 {
            let sealer = ObjectSealer::new(&hook_keys).expect("sealer");
            let body = seal_all_with(&sealer, b"changed by someone else").expect("seal");
            // As another s3cryptfs client writes it: with its own header copy and attribute
            // record.
            let mut metadata = BTreeMap::new();
            metadata.insert(METADATA_KEY_HEADER.to_owned(), key_header_value(&body));
            let attrs = StoredAttrs {
                perm: 0o644,
                uid: 0,
                gid: 0,
                mtime: std::time::SystemTime::now(),
                xattrs: Default::default(),
                ctime: std::time::SystemTime::now(),
            };
            let record = record_for(Kind::File, &attrs, Some(23), *sealer.salt());
            metadata.insert(
                ATTR_RECORD_KEY.to_owned(),
                seal_record(&hook_keys, key, &record).expect("record"),
            );
            mem.raw_put_with_metadata(key, body, metadata);
            *changed_in_hook.lock().expect("lock") = Some(key.to_owned());
        }
    });
    let report = rewrap_objects(&store, "", &keys, 1, &Progress::hidden())
        .await
        .expect("rewrap");
    let changed = changed_key.lock().expect("lock").clone().expect("hook ran");
    assert_eq!(report.changed.len(), 1, "{report:?}");
    assert_eq!(report.changed[0].key, changed);
    assert!(report.changed[0].reason.contains("skipped"), "{report:?}");
    assert_eq!(report.rewrapped, 42);

    // The new content survived, and reads as such.
    let fs = v.fs(store.clone(), v.keys().await);
    let attr = resolve(&fs, &changed).await.expect("resolve");
    let mut out = Vec::new();
    read_file(&fs, attr.ino, &changed, &mut out)
        .await
        .expect("read");
    assert_eq!(out, b"changed by someone else");
    // It was sealed under generation 2 already, so a resume counts it as current.
    let again = rewrap_objects(&store, "", &keys, 4, &Progress::hidden())
        .await
        .expect("resume");
    assert!(again.is_complete(), "{again:?}");
    assert_eq!(again.rewrapped, 0);
}

/// docs/FORMAT.md §2a, re-implemented with independent crates (hkdf, sha2, aes-kw).
#[test]
fn metadata_wrap_matches_the_format_document() {
    use aes_kw::KekAes256;
    use base64::Engine;
    use hkdf::Hkdf;
    use sha2::Sha256;

    let vault_id = [0x11u8; 16];
    let (g1, g2) = ([0x21u8; 32], [0x22u8; 32]);
    let vmk = [0x33u8; 32];
    let (dek, salt) = ([0x44u8; 32], [0x55u8; 32]);
    let old = VaultKeys::from_raw_parts(vault_id, BLOCK, 1, vec![(1, g1)], vmk).expect("keys");
    let sealer = ObjectSealer::with_fixed_material(&old, dek, salt).expect("sealer");
    let object = seal_all_with(&sealer, b"format document check").expect("seal");
    let new =
        VaultKeys::from_raw_parts(vault_id, BLOCK, 2, vec![(1, g1), (2, g2)], vmk).expect("keys");
    let Rewrap::Wrapped { value, from } =
        rewrap_for_metadata(&new, &object, object.len() as u64, None).expect("rewrap")
    else {
        panic!("expected a wrap");
    };
    assert_eq!(from, 1);

    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&value)
        .expect("base64");
    assert_eq!(bytes.len(), 44);
    assert_eq!(&bytes[..4], &2u32.to_be_bytes());
    let mut ctx = object[..12].to_vec();
    ctx.extend_from_slice(&vault_id);
    let mut info = b"s3cryptfs v1 metadata wrap".to_vec();
    info.extend_from_slice(&ctx);
    info.extend_from_slice(&2u32.to_be_bytes());
    let mut kek = [0u8; 32];
    Hkdf::<Sha256>::new(Some(&object[12..44]), &g2)
        .expand(&info, &mut kek)
        .expect("hkdf");
    let unwrapped = KekAes256::new((&kek).into())
        .unwrap_vec(&bytes[4..])
        .expect("AES-KW integrity check");
    assert_eq!(unwrapped, dek);

    // And a reader holding only generation 2 opens it through the metadata.
    let only_new = VaultKeys::from_raw_parts(vault_id, BLOCK, 2, vec![(2, g2)], vmk).expect("keys");
    let mut m = BTreeMap::new();
    m.insert(METADATA_WRAP_KEY.to_owned(), value);
    assert_eq!(
        open_all_with_metadata(&only_new, &object, Some(&m)).expect("open"),
        b"format document check"
    );
}
