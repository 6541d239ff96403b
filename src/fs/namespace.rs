//! The namespace component: which names exist and what they are, as far as this mount knows.
//! It owns the inode table (numbers <-> parent + name, with the kernel's lookup counts), the
//! entry cache (what the store holds at a path, kept for `metadata_ttl`) and the directory
//! listings, and keeps the three in step when a name is added, removed or moved.
//!
//! It sends no request: `Fs` asks the store and tells the namespace what it found or changed.
//! The open-file table is not its own; the calls that may free an inode take an `is_open`
//! check, so an inode a file is open on outlives the kernel's last reference to it.
//! Lock order: the inode table's lock is taken before whatever `is_open` locks.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::attr::{Attr, Kind, StoredAttrs};
use super::inode::{InodeTable, ROOT_INO};
use super::listing::Listings;
use super::read::RemoteVersion;
use super::settled::Settled;

/// Bytes of entries kept in the entry cache at most, each weighed by what it holds (about
/// 40,000 files' entries; with the default TTL of 1 s it holds far fewer).
pub(crate) const MAX_CACHED_BYTES: u64 = 32 << 20;
/// What one cached entry costs besides its path and what [`Entry::heap_bytes`] counts.
const CACHED_OVERHEAD: usize = 160;

/// What the store holds at a path (cached for `metadata_ttl`).
#[derive(Clone, Debug)]
pub(crate) enum Entry {
    File {
        kind: Kind,
        version: RemoteVersion,
        attrs: StoredAttrs,
    },
    Dir {
        attrs: StoredAttrs,
    },
    Missing,
}

impl Entry {
    /// Bytes this entry holds, about: its own size, its strings and its metadata map (a
    /// B-tree node of some 540 bytes however few entries it has).
    pub fn heap_bytes(&self) -> usize {
        let own = std::mem::size_of::<Entry>();
        match self {
            Entry::File { version, .. } => {
                let map = if version.carried.is_empty() {
                    0
                } else {
                    544 + (version.carried.iter())
                        .map(|(k, v)| k.len() + v.len() + 32)
                        .sum::<usize>()
                };
                own + version.key.len() + version.etag.len() + map
            }
            Entry::Dir { .. } | Entry::Missing => own,
        }
    }

    /// The attributes of inode `ino` holding this entry; `None` when it is missing.
    pub fn attr(&self, ino: u64) -> Option<Attr> {
        match self {
            Entry::File {
                kind,
                version,
                attrs,
            } => Some(Attr {
                ino,
                kind: *kind,
                size: version.plaintext_len,
                perm: attrs.perm,
                uid: attrs.uid,
                gid: attrs.gid,
                mtime: attrs.mtime,
                ctime: attrs.ctime,
            }),
            Entry::Dir { attrs } => Some(Attr {
                ino,
                kind: Kind::Dir,
                size: 0,
                perm: attrs.perm,
                uid: attrs.uid,
                gid: attrs.gid,
                mtime: attrs.mtime,
                ctime: attrs.ctime,
            }),
            Entry::Missing => None,
        }
    }
}

/// One entry of a directory listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub ino: u64,
    pub name: String,
    pub kind: Kind,
}

/// What the namespace can fail with.
#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    /// The number is not (or no longer) an inode of this mount, or its name now holds
    /// another kind of object.
    #[error("inode {0} is not known")]
    UnknownInode(u64),
}

pub(crate) struct Namespace {
    inodes: Mutex<InodeTable>,
    entries: moka::future::Cache<String, Entry>,
    /// Names per directory, so that lookups of names that do not exist cost no request.
    listings: Listings,
    /// Entries of files whose object had settled when it was read, for fresh listings that
    /// show it unchanged (`settled.rs`).
    settled: Settled<Entry>,
}

impl Namespace {
    pub fn new(metadata_ttl: Duration, settled_after: Duration) -> Self {
        Namespace {
            settled: Settled::new(settled_after, Entry::heap_bytes),
            inodes: Mutex::new(InodeTable::default()),
            entries: moka::future::Cache::builder()
                .max_capacity(MAX_CACHED_BYTES)
                .weigher(|path: &String, entry: &Entry| {
                    let bytes = CACHED_OVERHEAD + path.len() + entry.heap_bytes();
                    u32::try_from(bytes).unwrap_or(u32::MAX)
                })
                .time_to_live(metadata_ttl.max(Duration::from_millis(1)))
                .build(),
            listings: Listings::new(metadata_ttl),
        }
    }

    fn inodes(&self) -> MutexGuard<'_, InodeTable> {
        self.inodes.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn root_ino(&self) -> u64 {
        ROOT_INO
    }

    /// The path of inode `ino` (computed from its parents) and its kind.
    pub fn path_of(&self, ino: u64) -> Result<(String, Kind), NamespaceError> {
        self.inodes()
            .path_of(ino)
            .ok_or(NamespaceError::UnknownInode(ino))
    }

    pub fn ino_of(&self, path: &str) -> Option<u64> {
        self.inodes().ino_of(path)
    }

    /// The inode of `path`, handed to the kernel now: its lookup count goes up by one, to
    /// be taken back by [`Self::forget`].
    pub fn remember(&self, path: &str, kind: Kind) -> u64 {
        self.inodes().intern(path, kind, true)
    }

    /// Numbers for the entries of directory `dir` (a readdir: no lookup count). The oldest
    /// unreferenced inodes go when there are too many.
    pub fn number(
        &self,
        dir: &str,
        names: impl IntoIterator<Item = (String, Kind)>,
        is_open: &dyn Fn(u64) -> bool,
    ) -> Vec<DirEntry> {
        let mut inodes = self.inodes();
        let listed: Vec<DirEntry> = names
            .into_iter()
            .map(|(name, kind)| {
                let ino = inodes.intern(&super::inode::join(dir, &name), kind, false);
                DirEntry { ino, name, kind }
            })
            .collect();
        inodes.trim(is_open);
        listed
    }

    /// The kernel dropped `n` references to `ino`.
    pub fn forget(&self, ino: u64, n: u64, is_open: &dyn Fn(u64) -> bool) {
        if ino != ROOT_INO {
            self.inodes().forget(ino, n, is_open);
        }
    }

    /// A file on `ino` was closed: free the inode if the kernel forgot it meanwhile.
    pub fn closed(&self, ino: u64, is_open: &dyn Fn(u64) -> bool) {
        self.inodes().free_if_unused(ino, is_open);
    }

    /// Inodes in the table (the root included).
    pub fn inode_count(&self) -> usize {
        self.inodes().len()
    }

    /// What the inode table, the entry cache, the settled entries and the listings hold:
    /// (name, entries, bytes).
    pub async fn usage(&self) -> Vec<(&'static str, u64, u64)> {
        let (inodes, inode_bytes) = {
            let t = self.inodes();
            (t.len() as u64, t.heap_bytes() as u64)
        };
        self.entries.run_pending_tasks().await;
        let (settled, settled_bytes) = self.settled.usage();
        let (dirs, listing_bytes) = self.listings.usage();
        vec![
            ("inodes", inodes, inode_bytes),
            (
                "entries",
                self.entries.entry_count(),
                self.entries.weighted_size(),
            ),
            ("settled", settled, settled_bytes),
            ("listings", dirs, listing_bytes),
        ]
    }

    /// The kernel's lookup count of `ino`, `None` when it is not in the table.
    pub fn lookup_count(&self, ino: u64) -> Option<u64> {
        self.inodes().lookups(ino)
    }

    pub async fn cached(&self, path: &str) -> Option<Entry> {
        self.entries.get(path).await
    }

    /// What this mount made of `path` (a change of its own): cached for the TTL, and what a
    /// HEAD once said of it is no longer reused.
    pub async fn cache(&self, path: &str, entry: Entry) {
        self.settled.forget(path);
        self.entries.insert(path.to_string(), entry).await;
    }

    /// What the store said of `path` (a HEAD, or a listing that found it unchanged).
    pub async fn cache_fetched(&self, path: &str, entry: Entry) {
        self.entries.insert(path.to_string(), entry).await;
    }

    pub fn settled(&self) -> &Settled<Entry> {
        &self.settled
    }

    pub fn listings(&self) -> &Listings {
        &self.listings
    }

    /// This mount made `path` (file, symlink, or a first upload): listings gain the name and
    /// the cache holds `entry`, or asks the store next time when `None`.
    pub async fn added(&self, path: &str, entry: Option<Entry>) {
        self.listings.added(path);
        match entry {
            Some(e) => self.cache(path, e).await,
            None => {
                self.settled.forget(path);
                self.entries.invalidate(path).await
            }
        }
    }

    /// This mount made directory `path`: empty, known without a LIST.
    pub async fn made_dir(&self, path: &str, entry: Entry) {
        self.listings.made_dir(path);
        self.cache(path, entry).await;
    }

    /// This mount removed `path` (unlink, rmdir). Its inode stays for the kernel's
    /// references and open handles but no longer resolves by path.
    pub async fn removed(&self, path: &str) {
        self.listings.removed(path);
        self.cache(path, Entry::Missing).await;
        self.inodes().remove_path(path);
    }

    /// This mount moved the file at `from` to `to`.
    pub async fn moved_file(&self, from: &str, to: &str) {
        self.inodes().rename(from, to);
        self.listings.renamed(from, to);
        self.cache(from, Entry::Missing).await;
        self.settled.forget(to);
        self.entries.invalidate(to).await;
    }

    /// This mount moved directory `from` to `to`: one inode moves; every cached entry goes,
    /// since paths below both changed.
    pub fn moved_dir(&self, from: &str, to: &str) {
        self.inodes().rename(from, to);
        self.listings.renamed(from, to);
        self.entries.invalidate_all();
        self.settled.forget_all();
    }

    /// Drop every cached entry and listing (tests; SIGHUP). Inodes stay: the kernel holds them.
    pub fn invalidate_caches(&self) {
        self.entries.invalidate_all();
        self.settled.forget_all();
        self.listings.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    /// A file entry whose metadata holds `n` bytes.
    fn file(n: usize) -> Entry {
        Entry::File {
            kind: Kind::File,
            version: RemoteVersion {
                key: "k".repeat(100),
                etag: "\"e\"".into(),
                plaintext_len: 1,
                carried: [("s3cryptfs-key".to_string(), "x".repeat(n))].into(),
                content_salt: None,
            },
            attrs: StoredAttrs {
                perm: 0o644,
                uid: 0,
                gid: 0,
                mtime: SystemTime::UNIX_EPOCH,
                xattrs: Default::default(),
                ctime: SystemTime::UNIX_EPOCH,
            },
        }
    }

    #[tokio::test]
    async fn the_entry_cache_is_bounded_in_bytes() {
        let ns = Namespace::new(Duration::from_secs(3600), Duration::from_secs(5));
        let weight = file(4000).heap_bytes() as u64;
        assert!(weight > 4000, "{weight}");
        let n = 2 * MAX_CACHED_BYTES / weight;
        for i in 0..n {
            ns.cache_fetched(&format!("d/f{i}"), file(4000)).await;
        }
        let usage = ns.usage().await;
        let (_, entries, bytes) = *usage.iter().find(|c| c.0 == "entries").expect("entries");
        assert!(bytes <= MAX_CACHED_BYTES, "{bytes} bytes");
        assert!(entries < n / 2 + 1, "{entries} entries");
        assert!(entries > 0);
    }
}
