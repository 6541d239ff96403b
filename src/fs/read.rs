//! The read path: ranged GETs of exactly the covering encrypted blocks, decrypted blocks kept
//! in a byte-bounded cache, and a growing read-ahead window for sequential readers.
//!
//! Every request names the version it reads (`If-Match` on the ETag seen at open), so blocks
//! of two versions of an object are never mixed. A file opened at the start is read with one
//! GET covering header and blocks; elsewhere the header is fetched once per version and cached.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};
use tokio::sync::watch;

use crate::crypto::format::{self, ciphertext_range_for};
use crate::crypto::{HEADER_LEN, ObjectOpener, VaultKeys};
use crate::store::{DynStore, Metadata, StoreError};

use super::error::{FsError, FsResult};

/// One version of one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteVersion {
    pub key: String,
    pub etag: String,
    pub plaintext_len: u64,
    /// The object's own crypto metadata (`s3cryptfs-*`: the header's key copy, a data key
    /// rewrapped by `key rotate --rewrap`), carried into every metadata-replacing copy so the
    /// object stays readable after an old key generation is retired and rewraps need no GET.
    pub carried: Metadata,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct BlockKey {
    key: String,
    etag: String,
    index: u64,
}

/// Largest single ranged GET when filling the cache; larger spans go out in parallel.
pub const FETCH_CHUNK_BYTES: u64 = 2 * 1024 * 1024;
/// Parallel GETs per read.
const FETCH_PARALLELISM: usize = 8;

pub struct BlockReader {
    store: DynStore,
    keys: Arc<VaultKeys>,
    block_size: u32,
    blocks: moka::future::Cache<BlockKey, Bytes>,
    openers: moka::future::Cache<(String, String), Arc<ObjectOpener>>,
    /// Chunks being fetched, by the key of their first block: a reader that needs blocks of
    /// a chunk the read-ahead is already fetching waits for it instead of fetching again.
    inflight: std::sync::Mutex<HashMap<BlockKey, watch::Receiver<()>>>,
}

/// Removes a chunk from the in-flight map when its fetch ends (or is dropped); dropping the
/// sender wakes the waiters.
struct InflightGuard<'a> {
    map: &'a std::sync::Mutex<HashMap<BlockKey, watch::Receiver<()>>>,
    key: BlockKey,
    _done: watch::Sender<()>,
}

impl Drop for InflightGuard<'_> {
    fn drop(&mut self) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.key);
    }
}

impl BlockReader {
    pub fn new(store: DynStore, keys: Arc<VaultKeys>, cache_bytes: u64) -> Self {
        let block_size = keys.block_size();
        BlockReader {
            store,
            keys,
            block_size,
            // LRU, not moka's default TinyLFU admission: read-ahead inserts blocks that have
            // never been read yet, and a frequency filter would turn them away once the cache
            // is full, so a long sequential read would fetch everything twice.
            blocks: moka::future::Cache::builder()
                .weigher(|_k: &BlockKey, v: &Bytes| v.len().max(1) as u32)
                .max_capacity(cache_bytes.max(1))
                .eviction_policy(moka::policy::EvictionPolicy::lru())
                .build(),
            openers: moka::future::Cache::builder().max_capacity(4096).build(),
            inflight: std::sync::Mutex::new(HashMap::new()),
        }
    }

    pub fn block_size(&self) -> u32 {
        self.block_size
    }

    fn crypto_err(key: &str, e: crate::crypto::CryptoError) -> FsError {
        FsError::Crypto {
            key: key.to_string(),
            source: e,
        }
    }

    /// A version that changed or vanished under an open reader is a conflict, not a
    /// missing file: the reader keeps the version it opened or gets EIO.
    fn store_err(_v: &RemoteVersion, e: StoreError) -> FsError {
        match e {
            StoreError::PreconditionFailed { key } | StoreError::NotFound { key } => {
                FsError::Conflict { key }
            }
            other => FsError::Store(other),
        }
    }

    async fn opener(&self, v: &RemoteVersion) -> FsResult<Arc<ObjectOpener>> {
        let id = (v.key.clone(), v.etag.clone());
        if let Some(o) = self.openers.get(&id).await {
            return Ok(o);
        }
        let got = self
            .store
            .get(&v.key, Some(0..HEADER_LEN as u64), Some(&v.etag))
            .await
            .map_err(|e| Self::store_err(v, e))?;
        let opener = ObjectOpener::open_with_metadata(
            &self.keys,
            &got.data,
            got.info.size,
            got.info.metadata.as_ref(),
        )
        .map_err(|e| Self::crypto_err(&v.key, e))?;
        let opener = Arc::new(opener);
        self.openers.insert(id, opener.clone()).await;
        Ok(opener)
    }

    /// Decrypted blocks `first..=last` of `v`, from the cache or fetched (missing runs in
    /// chunks of up to 2 MiB, in parallel).
    pub async fn blocks(&self, v: &RemoteVersion, first: u64, last: u64) -> FsResult<Vec<Bytes>> {
        let mut out: Vec<Option<Bytes>> = Vec::with_capacity((last - first + 1) as usize);
        for index in first..=last {
            out.push(self.blocks.get(&self.block_key(v, index)).await);
        }
        // Contiguous runs of missing blocks, cut at chunk boundaries (chunks are aligned, so
        // a foreground read and the read-ahead agree on what one fetch covers).
        let per_chunk = self.blocks_per_chunk();
        let mut runs: Vec<Range<u64>> = Vec::new();
        let mut i = first;
        while i <= last {
            if out[(i - first) as usize].is_some() {
                i += 1;
                continue;
            }
            let start = i;
            let chunk_end = (start / per_chunk + 1) * per_chunk;
            while i <= last && out[(i - first) as usize].is_none() && i < chunk_end {
                i += 1;
            }
            runs.push(start..i);
        }
        if runs.is_empty() {
            return Ok(out.into_iter().map(|b| b.unwrap_or_default()).collect());
        }
        let fetched: Vec<(u64, Vec<Bytes>)> = stream::iter(runs)
            .map(|run| async move {
                let blocks = self.fetch_shared(v, run.clone()).await?;
                Ok::<_, FsError>((run.start, blocks))
            })
            .buffer_unordered(FETCH_PARALLELISM)
            .try_collect()
            .await?;
        for (start, blocks) in fetched {
            for (k, b) in blocks.into_iter().enumerate() {
                out[(start - first) as usize + k] = Some(b);
            }
        }
        Ok(out.into_iter().map(|b| b.unwrap_or_default()).collect())
    }

    fn blocks_per_chunk(&self) -> u64 {
        (FETCH_CHUNK_BYTES / self.block_size as u64).max(1)
    }

    /// Blocks `run` (within one chunk), joining a fetch of the same chunk already under way.
    async fn fetch_shared(&self, v: &RemoteVersion, run: Range<u64>) -> FsResult<Vec<Bytes>> {
        let per_chunk = self.blocks_per_chunk();
        let chunk = self.block_key(v, run.start / per_chunk * per_chunk);
        let waiting = {
            let mut map = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            match map.get(&chunk) {
                Some(rx) => Err(rx.clone()),
                None => {
                    let (tx, rx) = watch::channel(());
                    map.insert(chunk.clone(), rx);
                    Ok(tx)
                }
            }
        };
        match waiting {
            Ok(tx) => {
                let _guard = InflightGuard {
                    map: &self.inflight,
                    key: chunk,
                    _done: tx,
                };
                // Another reader may have fetched these blocks since the caller looked.
                if let Some(got) = self.cached_run(v, run.clone()).await {
                    return Ok(got);
                }
                self.fetch_run(v, run.start, run.end - 1).await
            }
            Err(mut rx) => {
                // Woken when the other fetch ends, whether it succeeded or not.
                let _ = rx.changed().await;
                match self.cached_run(v, run.clone()).await {
                    Some(got) => Ok(got),
                    None => self.fetch_run(v, run.start, run.end - 1).await,
                }
            }
        }
    }

    /// Blocks `run` of `v` if all are cached.
    async fn cached_run(&self, v: &RemoteVersion, run: Range<u64>) -> Option<Vec<Bytes>> {
        let mut got = Vec::with_capacity((run.end - run.start) as usize);
        for index in run {
            got.push(self.blocks.get(&self.block_key(v, index)).await?);
        }
        Some(got)
    }

    /// Fill the cache with the blocks of plaintext bytes `range` of `v` (read-ahead; runs in
    /// the background, errors only logged: the foreground read reports its own).
    pub async fn prefetch(&self, v: &RemoteVersion, range: Range<u64>) {
        let end = range.end.min(v.plaintext_len);
        if range.start >= end {
            return;
        }
        let bs = self.block_size as u64;
        if let Err(e) = self.blocks(v, range.start / bs, (end - 1) / bs).await {
            log::debug!("read-ahead of {} failed: {e}", v.key);
        }
    }

    fn block_key(&self, v: &RemoteVersion, index: u64) -> BlockKey {
        BlockKey {
            key: v.key.clone(),
            etag: v.etag.clone(),
            index,
        }
    }

    /// One ranged GET for blocks `first..=last`; the header rides along when the run starts
    /// at block 0 and the version is not open yet.
    async fn fetch_run(&self, v: &RemoteVersion, first: u64, last: u64) -> FsResult<Vec<Bytes>> {
        let bs = self.block_size;
        let start_plain = first * bs as u64;
        let end_plain = ((last + 1) * bs as u64)
            .min(v.plaintext_len)
            .max(start_plain + 1);
        let span = if v.plaintext_len == 0 {
            format::BlockSpan {
                first_block: 0,
                last_block: 0,
                ciphertext: HEADER_LEN as u64..format::ciphertext_len(0, bs),
            }
        } else {
            ciphertext_range_for(start_plain..end_plain, v.plaintext_len, bs)
        };
        let cached_opener = self.openers.get(&(v.key.clone(), v.etag.clone())).await;
        let (opener, body) = match cached_opener {
            Some(o) => {
                let got = self
                    .store
                    .get(&v.key, Some(span.ciphertext.clone()), Some(&v.etag))
                    .await
                    .map_err(|e| Self::store_err(v, e))?;
                (o, got.data)
            }
            None if first == 0 => {
                let got = self
                    .store
                    .get(&v.key, Some(0..span.ciphertext.end), Some(&v.etag))
                    .await
                    .map_err(|e| Self::store_err(v, e))?;
                if got.data.len() < HEADER_LEN {
                    return Err(Self::crypto_err(
                        &v.key,
                        crate::crypto::CryptoError::Corrupt(
                            "object shorter than its header".into(),
                        ),
                    ));
                }
                let o = Arc::new(
                    ObjectOpener::open_with_metadata(
                        &self.keys,
                        &got.data[..HEADER_LEN],
                        got.info.size,
                        got.info.metadata.as_ref(),
                    )
                    .map_err(|e| Self::crypto_err(&v.key, e))?,
                );
                self.openers
                    .insert((v.key.clone(), v.etag.clone()), o.clone())
                    .await;
                (o, got.data.slice(HEADER_LEN..))
            }
            None => {
                let o = self.opener(v).await?;
                let got = self
                    .store
                    .get(&v.key, Some(span.ciphertext.clone()), Some(&v.etag))
                    .await
                    .map_err(|e| Self::store_err(v, e))?;
                (o, got.data)
            }
        };
        if o_len_mismatch(&opener, v) {
            return Err(FsError::Conflict { key: v.key.clone() });
        }
        let expected = (span.ciphertext.end - span.ciphertext.start) as usize;
        if body.len() != expected {
            return Err(Self::crypto_err(
                &v.key,
                crate::crypto::CryptoError::Corrupt(format!(
                    "short read: expected {expected} bytes of blocks {first}..={last}, got {}",
                    body.len()
                )),
            ));
        }
        let mut blocks = Vec::with_capacity((last - first + 1) as usize);
        let mut pos = 0usize;
        for index in first..=last {
            let plain_len = block_plain_len(index, v.plaintext_len, bs);
            let ct_len = plain_len + 16;
            let ct = &body[pos..pos + ct_len];
            pos += ct_len;
            let plain = opener
                .open_block(index, ct)
                .map_err(|e| Self::crypto_err(&v.key, e))?;
            let plain = Bytes::from(plain);
            self.blocks
                .insert(self.block_key(v, index), plain.clone())
                .await;
            blocks.push(plain);
        }
        Ok(blocks)
    }

    /// Plaintext bytes `offset..offset+len` of `v` (clipped to its length), prefetching up to
    /// `readahead` more bytes into the cache.
    pub async fn read(
        &self,
        v: &RemoteVersion,
        offset: u64,
        len: u64,
        readahead: u64,
    ) -> FsResult<Vec<u8>> {
        if offset >= v.plaintext_len || len == 0 {
            return Ok(Vec::new());
        }
        let end = (offset + len).min(v.plaintext_len);
        let bs = self.block_size as u64;
        let first = offset / bs;
        let last = (end - 1) / bs;
        let ahead_last = if readahead > 0 {
            ((end + readahead).min(v.plaintext_len) - 1) / bs
        } else {
            last
        };
        let blocks = self.blocks(v, first, ahead_last).await?;
        let mut out = Vec::with_capacity((end - offset) as usize);
        for (k, block) in blocks.iter().take((last - first + 1) as usize).enumerate() {
            let block_start = (first + k as u64) * bs;
            let from = offset.saturating_sub(block_start) as usize;
            let to = ((end - block_start) as usize).min(block.len());
            if from < to {
                out.extend_from_slice(&block[from..to]);
            }
        }
        Ok(out)
    }

    /// Forget the cached header of a version (after it was replaced or deleted).
    pub async fn forget(&self, key: &str, etag: &str) {
        self.openers
            .invalidate(&(key.to_string(), etag.to_string()))
            .await;
    }
}

fn o_len_mismatch(opener: &ObjectOpener, v: &RemoteVersion) -> bool {
    opener.plaintext_len() != v.plaintext_len
}

/// Plaintext length of block `index` of an object of `plaintext_len` bytes.
pub fn block_plain_len(index: u64, plaintext_len: u64, block_size: u32) -> usize {
    let bs = block_size as u64;
    let start = index * bs;
    (plaintext_len.saturating_sub(start)).min(bs) as usize
}
