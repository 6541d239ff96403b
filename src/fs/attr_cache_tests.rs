//! The attribute cache across "remounts" (a new `Fs` over the same store and cache directory),
//! counting the memory store's requests.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use zeroize::Zeroizing;

use super::AttrCache;
use crate::crypto::{Secret, VaultConfig, VaultKeys};
use crate::fs::{Fs, FsOptions};
use crate::store::{DynStore, MemoryStore, ObjectStore, Op};

const FILES: usize = 20;

/// The name of file `i` (distinctive enough that finding it in a file is no accident).
fn name(i: usize) -> String {
    format!("plaintext-name-{i:02}")
}

struct Env {
    mem: Arc<MemoryStore>,
    keys: Arc<VaultKeys>,
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let (_cfg, keys) =
            VaultConfig::create(&Secret::KeyFile(Zeroizing::new([5u8; 32])), 4096).expect("vault");
        Env {
            mem: MemoryStore::new(),
            keys: Arc::new(keys),
            dir: tempfile::tempdir().expect("dir"),
        }
    }

    fn cache_dir(&self) -> PathBuf {
        self.dir.path().join("attr-cache")
    }

    fn cache_file(&self) -> PathBuf {
        (self.cache_dir())
            .join(hex::encode(self.keys.vault_id()))
            .join("attrs")
    }

    /// A mount of the vault: a new `Fs`, nothing in memory. Its caches last an hour: the
    /// counts of an `ls -l` hold only while what it fetched is still cached (a lookup after
    /// the TTL lists the directory again), however slowly the machine runs it.
    fn mount(&self) -> Arc<Fs> {
        self.mount_with_ttl(Duration::from_secs(3600))
    }

    /// [`Self::mount`] with cached attributes and listings kept for `metadata_ttl`.
    fn mount_with_ttl(&self, metadata_ttl: Duration) -> Arc<Fs> {
        let mut opts = FsOptions::for_current_user(self.dir.path().join("staging"));
        opts.metadata_ttl = metadata_ttl;
        opts.settled_after = Duration::ZERO;
        opts.attr_cache_dir = Some(self.cache_dir());
        let store: DynStore = self.mem.clone();
        Fs::new(store, String::new(), self.keys.clone(), opts).expect("fs")
    }

    /// `ls -l` of the root: its names with their modes, and the LISTs and HEADs it cost.
    async fn ls_l(&self, fs: &Fs) -> (Vec<(String, u32)>, (u64, u64)) {
        self.mem.reset_stats();
        let mut perms = Vec::new();
        for ent in fs.list_dir("").await.expect("list") {
            let a = fs.lookup(1, OsStr::new(&ent.name)).await.expect("lookup");
            perms.push((ent.name, a.perm));
        }
        let s = self.mem.stats().expect("stats");
        (perms, (s.requests(Op::List), s.requests(Op::Head)))
    }

    /// Files written, then a first mount HEADs them once they have settled and keeps their
    /// attributes on disk (written at its unmount).
    async fn written_and_headed(&self) -> Vec<(String, u32)> {
        let fs = self.mount();
        for i in 0..FILES {
            let name = name(i);
            let (_, fh) = fs
                .create(1, OsStr::new(&name), 0o640, libc::O_WRONLY, 0, 0)
                .await
                .expect("create");
            fs.write(fh, 0, name.as_bytes()).await.expect("write");
            fs.release(fh).await.expect("release");
        }
        drop(fs);
        // Settled: Last-Modified (to the second, as listings give it) lies before the HEADs.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let fs = self.mount();
        let (perms, counts) = self.ls_l(&fs).await;
        assert_eq!(counts, (1, FILES as u64), "a first mount HEADs every file");
        fs.flush_all().await.expect("unmount");
        perms
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remount_heads_no_unchanged_file() {
    let env = Env::new();
    let before = env.written_and_headed().await;
    let fs = env.mount();
    let (after, counts) = env.ls_l(&fs).await;
    assert_eq!(counts, (1, 0), "one LIST, no HEAD");
    assert_eq!(after, before);
    // Private: the directory 0700, the file 0600; no name in it (this vault's are plain).
    let file = env.cache_file();
    let mode = |p: &std::path::Path| std::fs::metadata(p).expect("stat").permissions().mode();
    assert_eq!(mode(&file) & 0o777, 0o600);
    assert_eq!(mode(file.parent().expect("dir")) & 0o777, 0o700);
    let bytes = std::fs::read(&file).expect("read cache");
    let name = name(7);
    assert!(
        !bytes.windows(name.len()).any(|w| w == name.as_bytes()),
        "a name in the cache"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_changed_elsewhere_is_headed_after_a_remount() {
    let env = Env::new();
    env.written_and_headed().await;
    // Another mount changes one file's mode (a metadata-only copy: same ETag and size, a
    // later Last-Modified) and another's content (a new ETag).
    let other = env.mount();
    let ino = other
        .lookup(1, OsStr::new(&name(3)))
        .await
        .expect("lookup")
        .ino;
    other
        .setattr(ino, None, Some(0o600), None, None, None)
        .await
        .expect("chmod");
    let ino = other
        .lookup(1, OsStr::new(&name(4)))
        .await
        .expect("lookup")
        .ino;
    let fh = other.open(ino, libc::O_WRONLY).await.expect("open");
    other.write(fh, 0, b"F04").await.expect("write");
    other.release(fh).await.expect("release");
    other.flush_all().await.expect("flush");
    drop(other);
    let s = env.mem.stats().expect("stats");
    assert_eq!((s.requests(Op::Copy), s.requests(Op::Put)), (1, 1));

    let fs = env.mount();
    let (perms, counts) = env.ls_l(&fs).await;
    assert_eq!(counts, (1, 2), "only the two changed files are HEADed");
    let perm = |n: &str| perms.iter().find(|(name, _)| name == n).map(|(_, p)| *p);
    assert_eq!(perm(&name(3)), Some(0o600));
    assert_eq!(perm(&name(5)), Some(0o640));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_or_torn_cache_file_is_ignored_and_rebuilt() {
    let env = Env::new();
    let before = env.written_and_headed().await;
    let file = env.cache_file();
    let good = std::fs::read(&file).expect("read cache");
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 1;
    for bad in [flipped, good[..good.len() / 2].to_vec(), Vec::new()] {
        std::fs::write(&file, &bad).expect("damage the cache");
        let fs = env.mount();
        let (after, counts) = env.ls_l(&fs).await;
        assert_eq!(counts, (1, FILES as u64), "every file HEADed");
        assert_eq!(after, before);
        fs.flush_all().await.expect("unmount");
        drop(fs);
        // Rebuilt by that mount: the next one HEADs nothing.
        let fs = env.mount();
        assert_eq!(env.ls_l(&fs).await.1, (1, 0));
    }
}

/// An entry whose record is not this object's (as if the cache file had been forged) does not
/// authenticate when used: the file is HEADed and shows its own attributes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_whose_record_does_not_authenticate_gives_a_head() {
    let env = Env::new();
    env.written_and_headed().await;
    let other = env.mount();
    let ino = other
        .lookup(1, OsStr::new(&name(2)))
        .await
        .expect("lookup")
        .ino;
    other
        .setattr(ino, None, Some(0o604), None, None, None)
        .await
        .expect("chmod");
    other.flush_all().await.expect("flush");
    drop(other);
    tokio::time::sleep(Duration::from_millis(1100)).await; // settled again
    // This mount's caches must expire between its two `ls -l`s, but not during either: 2 s
    // lets a loaded machine stall.
    let ttl = Duration::from_secs(2);
    let fs = env.mount_with_ttl(ttl);
    assert_eq!(env.ls_l(&fs).await.1, (1, 1), "f02 changed");
    // f02's record (mode 0604) under f01's entry, whose validators still show f01 unchanged.
    let cache = fs.attr_cache.clone().expect("cache");
    {
        let mut st = cache.lock();
        let rec2 = (st.entries.get(&cache.id(&fs.key_of(&name(2))))).expect("f02 cached");
        let metadata = rec2.metadata.clone();
        let rec1 = (st.entries.get_mut(&cache.id(&fs.key_of(&name(1))))).expect("f01 cached");
        rec1.metadata = metadata;
    }
    tokio::time::sleep(ttl + Duration::from_millis(100)).await; // past the TTL
    let (perms, counts) = env.ls_l(&fs).await;
    assert_eq!(counts, (1, 1), "f01 is HEADed");
    assert_eq!(perms[1], (name(1), 0o640));
    assert_eq!(perms[2], (name(2), 0o604));
}

#[test]
fn the_cache_is_bounded() {
    let env = Env::new();
    let cache = AttrCache::open(&env.cache_dir(), &env.keys, Duration::ZERO).expect("open");
    let mut st = cache.lock();
    let rec = super::Rec {
        seq: 0,
        etag: "\"0123456789abcdef0123456789abcdef\"".into(),
        size: 1000,
        modified_secs: 1_800_000_000,
        modified_nanos: 0,
        metadata: super::encode_metadata(
            &[("s3cryptfs-attr".to_string(), "x".repeat(2000))].into(),
        ),
    };
    for i in 0..super::MAX_ENTRIES + 10 {
        st.insert(cache.id(&format!("k{i}")), rec.clone());
    }
    assert!(st.bytes + 64 <= super::MAX_BYTES, "{} bytes", st.bytes);
    assert!(st.entries.len() < super::MAX_ENTRIES);
    // The newest entries stay.
    let last = super::MAX_ENTRIES + 9;
    assert!(st.entries.contains_key(&cache.id(&format!("k{last}"))));
    assert!(!st.entries.contains_key(&cache.id("k0")));
    let encoded = cache.encode(&st);
    assert!(encoded.len() <= super::MAX_BYTES);
    assert_eq!(
        cache.decode(&encoded).map(|s| s.entries.len()),
        Some(st.entries.len())
    );
}
