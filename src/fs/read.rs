//! The read path: ranged GETs of exactly the covering encrypted blocks and decrypted blocks
//! kept in a byte-bounded cache. Which blocks to fetch ahead of a reader is `prefetch.rs`'s
//! decision; [`BlockReader::prefetch`] only fills the cache with them.
//!
//! Every request names the version it reads (`If-Match` on the ETag seen at open), so blocks
//! of two versions of an object are never mixed. A file opened at the start is read with one
//! GET covering header and blocks; elsewhere the header is fetched once per version and cached.
//!
//! The cache holds runs of consecutive decrypted blocks, per aligned chunk of
//! [`FETCH_CHUNK_BYTES`]: a fetched body is decrypted in place (on the blocking pool when it
//! is large, so the chunks of a read-ahead decrypt on every core) and becomes one buffer, so a
//! read within a chunk is answered with a slice of it instead of a copy. The cache weighs the
//! bytes it holds exactly: a run is one allocation, evicted whole.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::stream::{self, StreamExt, TryStreamExt};
use tokio::sync::watch;

use crate::crypto::format::{block_offset, ciphertext_range_for};
use crate::crypto::{CryptoError, ObjectOpener, VaultKeys};
use crate::store::{DynStore, Metadata, StoreError};

use super::error::FsError;

/// What reading an object version can fail with; an [`FsError`] (and so an errno) by the
/// `From` impl below, variant for variant.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("object {key}: {source}")]
    Crypto {
        key: String,
        #[source]
        source: CryptoError,
    },
    /// The version changed or vanished under an open reader.
    #[error("object {key} was changed by another client while open")]
    Conflict { key: String },
    /// A bug or a panicked task: reported rather than answered with wrong data.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type ReadResult<T> = Result<T, ReadError>;

impl From<ReadError> for FsError {
    fn from(e: ReadError) -> FsError {
        match e {
            ReadError::Store(e) => FsError::Store(e),
            ReadError::Crypto { key, source } => FsError::Crypto { key, source },
            ReadError::Conflict { key } => FsError::Conflict { key },
            ReadError::Internal(reason) => FsError::Internal(reason),
        }
    }
}
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

/// One aligned chunk of one version: the unit of fetch sharing and of the cache.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ChunkKey {
    key: String,
    etag: String,
    chunk: u64,
}

/// Decrypted blocks `first..first + count` back to back in `data`. Every block but an
/// object's last is full, so block `i` starts at byte `(i - first) * block_size`.
#[derive(Clone, Debug)]
struct Run {
    first: u64,
    count: u64,
    data: Bytes,
}

impl Run {
    fn end(&self) -> u64 {
        self.first + self.count
    }
}

/// The cached runs of one chunk: disjoint, sorted by first block.
type ChunkRuns = Arc<Vec<Run>>;

/// Largest single ranged GET when filling the cache; larger spans go out in parallel.
pub const FETCH_CHUNK_BYTES: u64 = 8 * 1024 * 1024;
/// Parallel GETs per read.
const FETCH_PARALLELISM: usize = 8;
/// Runs up to this many bytes are decrypted on the task that fetched them (a random read's
/// block or two: no hand-off latency); larger ones on the blocking pool, in parallel.
const INLINE_DECRYPT_BYTES: usize = 256 * 1024;

pub struct BlockReader {
    store: DynStore,
    keys: Arc<VaultKeys>,
    block_size: u32,
    chunks: moka::future::Cache<ChunkKey, ChunkRuns>,
    openers: moka::future::Cache<(String, String), Arc<ObjectOpener>>,
    /// Chunks being fetched: a reader that needs blocks of a chunk the read-ahead is already
    /// fetching waits for it instead of fetching again.
    inflight: std::sync::Mutex<HashMap<ChunkKey, watch::Receiver<()>>>,
}

/// Removes a chunk from the in-flight map when its fetch ends (or is dropped); dropping the
/// sender wakes the waiters.
struct InflightGuard<'a> {
    map: &'a std::sync::Mutex<HashMap<ChunkKey, watch::Receiver<()>>>,
    key: ChunkKey,
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
            chunks: moka::future::Cache::builder()
                .weigher(|_k: &ChunkKey, v: &ChunkRuns| {
                    let bytes: usize = v.iter().map(|r| r.data.len()).sum();
                    u32::try_from(bytes.max(1)).unwrap_or(u32::MAX)
                })
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

    fn crypto_err(key: &str, e: CryptoError) -> ReadError {
        ReadError::Crypto {
            key: key.to_string(),
            source: e,
        }
    }

    /// A version that changed or vanished under an open reader is a conflict, not a
    /// missing file: the reader keeps the version it opened or gets EIO.
    fn store_err(_v: &RemoteVersion, e: StoreError) -> ReadError {
        match e {
            StoreError::PreconditionFailed { key } | StoreError::NotFound { key } => {
                ReadError::Conflict { key }
            }
            other => ReadError::Store(other),
        }
    }

    async fn opener(&self, v: &RemoteVersion) -> ReadResult<Arc<ObjectOpener>> {
        let id = (v.key.clone(), v.etag.clone());
        if let Some(o) = self.openers.get(&id).await {
            return Ok(o);
        }
        let got = self
            .store
            .get(
                &v.key,
                Some(0..block_offset(0, self.block_size)),
                Some(&v.etag),
            )
            .await
            .map_err(|e| Self::store_err(v, e))?;
        self.remember_opener(v, &got.data, &got.info).await
    }

    /// Open `v`'s header (fetched alone or with the first blocks) and keep the opener.
    async fn remember_opener(
        &self,
        v: &RemoteVersion,
        header: &[u8],
        info: &crate::store::ObjectInfo,
    ) -> ReadResult<Arc<ObjectOpener>> {
        let opener =
            ObjectOpener::open_with_metadata(&self.keys, header, info.size, info.metadata.as_ref())
                .map_err(|e| Self::crypto_err(&v.key, e))?;
        let opener = Arc::new(opener);
        self.openers
            .insert((v.key.clone(), v.etag.clone()), opener.clone())
            .await;
        Ok(opener)
    }

    fn blocks_per_chunk(&self) -> u64 {
        (FETCH_CHUNK_BYTES / self.block_size as u64).max(1)
    }

    fn chunk_key(&self, v: &RemoteVersion, chunk: u64) -> ChunkKey {
        ChunkKey {
            key: v.key.clone(),
            etag: v.etag.clone(),
            chunk,
        }
    }

    /// Runs covering blocks `first..=last` of `v`, in order, from the cache or fetched (the
    /// missing blocks of each chunk in one GET, up to [`FETCH_PARALLELISM`] chunks at once).
    async fn runs(&self, v: &RemoteVersion, first: u64, last: u64) -> ReadResult<Vec<Run>> {
        let per_chunk = self.blocks_per_chunk();
        let wanted = (first / per_chunk..=last / per_chunk).map(|chunk| {
            let from = first.max(chunk * per_chunk);
            let to = (last + 1).min((chunk + 1) * per_chunk);
            (chunk, from..to)
        });
        let per_chunk_runs: Vec<Vec<Run>> = stream::iter(wanted)
            .map(|(chunk, want)| self.chunk_runs(v, chunk, want))
            .buffered(FETCH_PARALLELISM)
            .try_collect()
            .await?;
        Ok(per_chunk_runs.into_iter().flatten().collect())
    }

    /// Runs covering blocks `want` of chunk `chunk`, fetching the blocks no run holds,
    /// or waiting for a fetch of the same chunk already under way.
    async fn chunk_runs(
        &self,
        v: &RemoteVersion,
        chunk: u64,
        want: Range<u64>,
    ) -> ReadResult<Vec<Run>> {
        let key = self.chunk_key(v, chunk);
        loop {
            let have = self.chunks.get(&key).await.unwrap_or_default();
            let missing = gaps(&have, &want);
            if missing.is_empty() {
                return Ok(covering(&have, &want));
            }
            let claim = {
                let mut map = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
                match map.get(&key) {
                    Some(rx) => Err(rx.clone()),
                    None => {
                        let (tx, rx) = watch::channel(());
                        map.insert(key.clone(), rx);
                        Ok(InflightGuard {
                            map: &self.inflight,
                            key: key.clone(),
                            _done: tx,
                        })
                    }
                }
            };
            match claim {
                Err(mut rx) => {
                    // Woken when the other fetch ends, whether it succeeded or not; then
                    // look again. Never fetch beside it: it may be fetching these blocks,
                    // and a fetch that is not in the map would not be waited for either.
                    let _ = rx.changed().await;
                }
                Ok(_guard) => {
                    let fetched = futures::future::try_join_all(
                        missing
                            .into_iter()
                            .map(|blocks| self.fetch_run(v, &key, blocks)),
                    )
                    .await?;
                    // Not read back from the cache: a small cache may have evicted them already.
                    let mut all: Vec<Run> = have.iter().cloned().collect();
                    for run in fetched {
                        all = merged(&all, run);
                    }
                    return Ok(covering(&all, &want));
                }
            }
        }
    }

    /// Decrypted blocks `first..=last` of `v`, one `Bytes` each (slices of the cached runs,
    /// not copies), from the cache or fetched.
    pub async fn blocks(&self, v: &RemoteVersion, first: u64, last: u64) -> ReadResult<Vec<Bytes>> {
        let bs = self.block_size as u64;
        let runs = self.runs(v, first, last).await?;
        let mut out = Vec::with_capacity((last - first + 1) as usize);
        for index in first..=last {
            let Some(run) = runs.iter().find(|r| r.first <= index && index < r.end()) else {
                return Err(missing_block(v, index));
            };
            let from = (((index - run.first) * bs) as usize).min(run.data.len());
            let to = (from + bs as usize).min(run.data.len());
            out.push(run.data.slice(from..to));
        }
        Ok(out)
    }

    /// Fill the cache with the blocks of plaintext bytes `range` of `v` (read-ahead; runs in
    /// the background, errors only logged: the foreground read reports its own).
    pub async fn prefetch(&self, v: &RemoteVersion, range: Range<u64>) {
        let end = range.end.min(v.plaintext_len);
        if range.start >= end {
            return;
        }
        let bs = self.block_size as u64;
        if let Err(e) = self.runs(v, range.start / bs, (end - 1) / bs).await {
            log::debug!("read-ahead of {} failed: {e}", v.key);
        }
    }

    /// One ranged GET for `blocks` of one chunk, decrypted into one buffer and added to the
    /// chunk's cached runs. The header rides along when the run starts at block 0 and the
    /// version is not open yet.
    async fn fetch_run(
        &self,
        v: &RemoteVersion,
        chunk: &ChunkKey,
        blocks: Range<u64>,
    ) -> ReadResult<Run> {
        let bs = self.block_size;
        let (first, last) = (blocks.start, blocks.end - 1);
        let start_plain = first * bs as u64;
        let end_plain = ((last + 1) * bs as u64)
            .min(v.plaintext_len)
            .max(start_plain + 1);
        let span = ciphertext_range_for(start_plain..end_plain, v.plaintext_len, bs);
        let cached_opener = self.openers.get(&(v.key.clone(), v.etag.clone())).await;
        let (opener, body) = match cached_opener {
            None if first == 0 => {
                let got = self
                    .store
                    .get(&v.key, Some(0..span.ciphertext.end), Some(&v.etag))
                    .await
                    .map_err(|e| Self::store_err(v, e))?;
                // Block 0 starts right after the header.
                let header_len = span.ciphertext.start as usize;
                if got.data.len() < header_len {
                    return Err(Self::crypto_err(
                        &v.key,
                        CryptoError::Corrupt("object shorter than its header".into()),
                    ));
                }
                let o = self
                    .remember_opener(v, &got.data[..header_len], &got.info)
                    .await?;
                (o, got.data.slice(header_len..))
            }
            cached => {
                let o = match cached {
                    Some(o) => o,
                    None => self.opener(v).await?,
                };
                let got = self
                    .store
                    .get(&v.key, Some(span.ciphertext.clone()), Some(&v.etag))
                    .await
                    .map_err(|e| Self::store_err(v, e))?;
                (o, got.data)
            }
        };
        if o_len_mismatch(&opener, v) {
            return Err(ReadError::Conflict { key: v.key.clone() });
        }
        let expected = (span.ciphertext.end - span.ciphertext.start) as usize;
        if body.len() != expected {
            return Err(Self::crypto_err(
                &v.key,
                CryptoError::Corrupt(format!(
                    "short read: expected {expected} bytes of blocks {first}..={last}, got {}",
                    body.len()
                )),
            ));
        }
        // The body is ours alone when it came off the network; a memory store shares it.
        let buf = body
            .try_into_mut()
            .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
        let data = if buf.len() <= INLINE_DECRYPT_BYTES {
            open_run(&opener, first, buf)
        } else {
            let opener = opener.clone();
            tokio::task::spawn_blocking(move || open_run(&opener, first, buf))
                .await
                .map_err(|e| ReadError::Internal(format!("decrypting {}: {e}", v.key)))?
        }
        .map_err(|e| Self::crypto_err(&v.key, e))?;
        let run = Run {
            first,
            count: last - first + 1,
            data,
        };
        let added = run.clone();
        self.chunks
            .entry(chunk.clone())
            .and_upsert_with(|old| {
                let runs = match old {
                    Some(entry) => merged(&entry.into_value(), added),
                    None => vec![added],
                };
                std::future::ready(Arc::new(runs))
            })
            .await;
        Ok(run)
    }

    /// Plaintext bytes `offset..offset+len` of `v` (clipped to its length). Within one
    /// cached run this is a slice of it, not a copy.
    pub async fn read(&self, v: &RemoteVersion, offset: u64, len: u64) -> ReadResult<Bytes> {
        if offset >= v.plaintext_len || len == 0 {
            return Ok(Bytes::new());
        }
        let end = (offset + len).min(v.plaintext_len);
        let bs = self.block_size as u64;
        let runs = self.runs(v, offset / bs, (end - 1) / bs).await?;
        let pieces: Vec<Bytes> = runs
            .iter()
            .filter_map(|run| {
                let run_start = run.first * bs;
                let from = offset.max(run_start);
                let to = end.min(run_start + run.data.len() as u64);
                (from < to).then(|| {
                    run.data
                        .slice((from - run_start) as usize..(to - run_start) as usize)
                })
            })
            .collect();
        let got: usize = pieces.iter().map(|p| p.len()).sum();
        if got as u64 != end - offset {
            return Err(missing_block(v, offset / bs));
        }
        match <[Bytes; 1]>::try_from(pieces) {
            Ok([one]) => Ok(one),
            Err(pieces) => Ok(Bytes::from(pieces.concat())),
        }
    }

    /// Forget the cached header of a version (after it was replaced or deleted).
    pub async fn forget(&self, key: &str, etag: &str) {
        self.openers
            .invalidate(&(key.to_string(), etag.to_string()))
            .await;
    }
}

/// Decrypts a fetched run of blocks starting at `first` in place; the plaintext, frozen.
fn open_run(opener: &ObjectOpener, first: u64, mut buf: BytesMut) -> Result<Bytes, CryptoError> {
    let len = opener.open_run_in_place(first, &mut buf)?;
    buf.truncate(len);
    Ok(buf.freeze())
}

/// A block the runs should have held but did not: a bug, reported instead of wrong data.
fn missing_block(v: &RemoteVersion, index: u64) -> ReadError {
    ReadError::Internal(format!(
        "{}: block {index} missing from the fetched runs",
        v.key
    ))
}

/// The blocks of `want` that no run in `runs` (sorted, disjoint) holds, as ranges.
fn gaps(runs: &[Run], want: &Range<u64>) -> Vec<Range<u64>> {
    let mut out = Vec::new();
    let mut at = want.start;
    for run in runs {
        if at >= want.end || run.first >= want.end {
            break;
        }
        if run.end() <= at {
            continue;
        }
        if run.first > at {
            out.push(at..run.first);
        }
        at = run.end();
    }
    if at < want.end {
        out.push(at..want.end);
    }
    out
}

/// The runs of `runs` that hold any block of `want`, in order.
fn covering(runs: &[Run], want: &Range<u64>) -> Vec<Run> {
    runs.iter()
        .filter(|r| r.first < want.end && want.start < r.end())
        .cloned()
        .collect()
}

/// `runs` with `new` added, dropping the runs it overlaps (it holds the same blocks, newer).
fn merged(runs: &[Run], new: Run) -> Vec<Run> {
    let mut out: Vec<Run> = runs
        .iter()
        .filter(|r| r.end() <= new.first || new.end() <= r.first)
        .cloned()
        .collect();
    let at = out.partition_point(|r| r.first < new.first);
    out.insert(at, new);
    out
}

fn o_len_mismatch(opener: &ObjectOpener, v: &RemoteVersion) -> bool {
    opener.plaintext_len() != v.plaintext_len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(first: u64, count: u64) -> Run {
        Run {
            first,
            count,
            data: Bytes::from(vec![first as u8; count as usize]),
        }
    }

    fn spans(runs: &[Run]) -> Vec<Range<u64>> {
        runs.iter().map(|r| r.first..r.end()).collect()
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init)] // lists of ranges, one long
    fn gaps_are_the_blocks_no_run_holds() {
        let runs = [run(2, 3), run(8, 2)];
        assert_eq!(gaps(&runs, &(0..12)), [0..2, 5..8, 10..12]);
        assert_eq!(gaps(&runs, &(2..5)), Vec::<Range<u64>>::new());
        assert_eq!(gaps(&runs, &(3..9)), [5..8]);
        assert_eq!(gaps(&[], &(4..6)), [4..6]);
        assert_eq!(gaps(&runs, &(10..11)), [10..11]);
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init)] // lists of ranges, one long
    fn merged_replaces_overlapped_runs_and_keeps_order() {
        let runs = vec![run(0, 2), run(4, 2), run(10, 1)];
        assert_eq!(spans(&merged(&runs, run(2, 2))), [0..2, 2..4, 4..6, 10..11]);
        assert_eq!(spans(&merged(&runs, run(1, 4))), [1..5, 10..11]);
        assert_eq!(spans(&merged(&[], run(3, 1))), [3..4]);
        assert_eq!(spans(&covering(&runs, &(1..5))), [0..2, 4..6]);
    }
}
