//! [`Fs::status`]: what the file system holds and has done, for `s3cryptfs status`, the
//! Prometheus metrics and systemd's `STATUS=` line. It never waits for a file: a file whose
//! state is locked (an upload runs) is reported from its [`FileActivity`](super::activity).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Fs;
use super::activity::{ActivityCounts, PendingFile, UploadState};
use super::upload::OpenFile;
use crate::store::Op;

/// Requests of one kind sent to the store, and their body bytes (sent for PUT and parts,
/// received for GET).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestCount {
    pub kind: String,
    pub requests: u64,
    pub bytes: u64,
}

/// The decrypted block cache.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheStatus {
    /// Bytes held now.
    pub bytes: u64,
    /// The most it holds (`--block-cache-mib`, at most `--memory-limit`).
    pub capacity: u64,
    /// Reads of one chunk answered from the cache, and those that fetched blocks.
    pub hits: u64,
    pub misses: u64,
}

/// The memory budget (`--memory-limit`): what the block cache, the fetches in flight and the
/// upload part buffers and bodies hold together.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryStatus {
    pub limit: u64,
    /// Bytes held now.
    pub in_use: u64,
    /// The most held at once since the mount.
    pub high_water: u64,
}

/// One of the metadata caches (the inode table, the entry cache, the settled entries, the
/// directory listings, the attribute cache on disk): what it holds now.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataCache {
    pub name: String,
    pub entries: u64,
    /// Bytes it holds, about (each is bounded in bytes or, the inode table, by the kernel).
    pub bytes: u64,
}

/// A report of the file system.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsStatus {
    /// Files open now (by handles, or kept until their upload succeeds).
    pub open_files: u64,
    pub files_dirty: u64,
    pub files_uploading: u64,
    pub files_failed: u64,
    /// Plaintext bytes of the files not stored yet.
    pub bytes_pending: u64,
    /// Bytes of (sealed) staging files on local disk.
    pub staged_bytes: u64,
    /// Every file not stored yet, by path.
    pub pending: Vec<PendingFile>,
    pub counts: ActivityCounts,
    /// Requests by kind, where the store counts them.
    pub requests: Vec<RequestCount>,
    pub cache: CacheStatus,
    #[serde(default)]
    pub memory: MemoryStatus,
    #[serde(default)]
    pub metadata: Vec<MetadataCache>,
}

impl Fs {
    /// The report; see the module comment.
    pub async fn status(&self) -> FsStatus {
        let files: Vec<Arc<OpenFile>> = self.lock_open().values().cloned().collect();
        let mut pending: Vec<PendingFile> = files
            .iter()
            .filter_map(|f| match f.state.try_lock() {
                Ok(st) => f.activity.pending(Some((
                    st.dirty && !st.unlinked && !st.stale,
                    &st.path,
                    st.size,
                ))),
                Err(_) => f.activity.pending(None),
            })
            .collect();
        pending.sort_by(|a, b| a.path.cmp(&b.path));
        let count = |state| pending.iter().filter(|p| p.state == state).count() as u64;
        let counts = self.activity.counts();
        let requests = self
            .store
            .stats()
            .map(|s| {
                Op::ALL
                    .iter()
                    .map(|&op| RequestCount {
                        kind: op.name().to_owned(),
                        requests: s.requests(op),
                        bytes: s.bytes(op),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut usage = self.ns.usage().await;
        if let Some(cache) = &self.attr_cache {
            let (entries, bytes) = cache.usage();
            usage.push(("attr_cache", entries, bytes));
        }
        let metadata = (usage.into_iter())
            .map(|(name, entries, bytes)| MetadataCache {
                name: name.into(),
                entries,
                bytes,
            })
            .collect();
        FsStatus {
            open_files: files.len() as u64,
            files_dirty: count(UploadState::Dirty),
            files_uploading: count(UploadState::Uploading),
            files_failed: count(UploadState::Failed),
            bytes_pending: pending.iter().map(|p| p.bytes).sum(),
            staged_bytes: self.staging.staged_bytes(),
            cache: CacheStatus {
                bytes: self.reader.cached_bytes(),
                capacity: self.reader.cache_capacity(),
                hits: counts.cache_hits,
                misses: counts.cache_misses,
            },
            memory: MemoryStatus {
                limit: self.reader.memory().limit(),
                in_use: self.reader.memory().in_use(),
                high_water: self.reader.memory().high_water(),
            },
            pending,
            counts,
            requests,
            metadata,
        }
    }
}
