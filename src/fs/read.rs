//! The read path: ranged GETs of exactly the covering encrypted blocks and decrypted blocks
//! kept in a byte-bounded cache. Which blocks to fetch ahead of a reader is `prefetch.rs`'s
//! decision; [`BlockReader::prefetch`] only fills the cache with them.
//!
//! Fetching, opening and authenticating blocks is the encrypted-object seam's
//! ([`SealedStore::read_blocks`]): every request names the version it reads (`If-Match` on the
//! ETag seen at open), a file opened at the start is read with one GET covering header and
//! blocks, and elsewhere the header is fetched once per version and its opener cached there.
//! This file decides which blocks to ask for and keeps what came back.
//!
//! The cache holds runs of consecutive decrypted blocks, per aligned chunk of
//! [`FETCH_CHUNK_BYTES`]: the seam decrypts a fetched body in place (on the blocking pool when
//! it is large, so the chunks of a read-ahead decrypt on every core) into one buffer, so a read
//! within a chunk is answered with a slice of it instead of a copy. The cache weighs the
//! bytes it holds exactly: a run is one allocation, evicted whole.
//!
//! Memory: a fetch reserves its size in the [`MemoryBudget`] before its GET (waiting if the
//! budget is spent and the cache has nothing left to give back) and the cache keeps that
//! reservation with the run, so the cache and the fetches in flight stay within the budget.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};
use tokio::sync::watch;

use super::activity::Activity;
use super::block_cache::ByteLru;
use super::memory::MemoryBudget;
use super::prefetch::{ReadAhead, ReadAheadLimits, SequentialReaders};
use crate::crypto::CryptoError;
use crate::crypto::format::sealed_run_len;
use crate::sealed::{SealedError, SealedStore};
use crate::store::StoreError;

/// What reading an object version can fail with; an [`FsError`](super::FsError) (and so an
/// errno) by the `From` impl in `fs/error.rs`, variant for variant.
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

impl From<SealedError> for ReadError {
    /// A version that changed or vanished under an open reader is a conflict, not a missing
    /// file: the reader keeps the version it opened or gets an error.
    fn from(e: SealedError) -> ReadError {
        match e {
            SealedError::Changed { key } => ReadError::Conflict { key },
            SealedError::Crypto { key, source } => ReadError::Crypto { key, source },
            SealedError::Store(e) => ReadError::Store(e),
            SealedError::Internal(reason) => ReadError::Internal(reason),
        }
    }
}

/// One version of one object (the seam's name for it is `ObjectVersion`).
pub use crate::sealed::ObjectVersion as RemoteVersion;

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

/// How a fetch reserves its memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fetch {
    /// Wait for room in the budget (every read).
    Wait,
    /// Never wait for the limit: for a caller that holds memory while it reads (an upload
    /// sealing blocks of the stored version), which waiting could deadlock. It may use the
    /// budget's slack ([`MemoryBudget::overdraw`]), so it asks for one run of at most
    /// [`BlockReader::overdraw_run_blocks`] blocks within one chunk at a time.
    Overdraw,
}

pub struct BlockReader {
    sealed: SealedStore,
    block_size: u32,
    /// Runs by chunk, least recently used given back first (to its capacity, and whenever
    /// someone waits for memory). Not moka's TinyLFU admission: read-ahead inserts blocks
    /// that have never been read yet, and a frequency filter would turn them away once the
    /// cache is full, so a long sequential read would fetch everything twice.
    chunks: Arc<ByteLru<ChunkKey, ChunkRuns>>,
    /// The budget of the cache, fetches in flight and upload buffers (`--memory-limit`).
    memory: MemoryBudget,
    /// Chunks being fetched: a reader that needs blocks of a chunk the read-ahead is already
    /// fetching waits for it instead of fetching again.
    inflight: std::sync::Mutex<HashMap<ChunkKey, watch::Receiver<()>>>,
    /// Cache hits and misses are counted here (status reports, metrics).
    activity: Arc<Activity>,
    /// The handles reading sequentially now, which share the cache's room for read-ahead.
    sequential_readers: Arc<SequentialReaders>,
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
    /// A reader whose cache holds at most `cache_bytes` and gives memory back to `memory`
    /// when anyone waits for it.
    pub fn new(
        sealed: SealedStore,
        cache_bytes: u64,
        memory: MemoryBudget,
        activity: Arc<Activity>,
    ) -> Self {
        let block_size = sealed.block_size();
        let chunks = Arc::new(ByteLru::new(cache_bytes.min(memory.limit())));
        let weak = Arc::downgrade(&chunks);
        memory.set_reclaim(move |bytes| {
            if let Some(c) = weak.upgrade() {
                c.shrink(bytes);
            }
        });
        BlockReader {
            activity,
            sealed,
            block_size,
            chunks,
            memory,
            inflight: std::sync::Mutex::new(HashMap::new()),
            sequential_readers: Arc::default(),
        }
    }

    /// The read-ahead state of a new handle, counted among this cache's sequential readers
    /// while it reads sequentially.
    pub fn read_ahead(&self) -> ReadAhead {
        ReadAhead::new(self.sequential_readers.clone())
    }

    /// How far each of `readers` sequential readers may read ahead in this cache.
    pub fn read_ahead_limits(&self, readers: usize) -> ReadAheadLimits {
        let block = self.block_size as u64;
        let chunk = self.blocks_per_chunk() * block;
        ReadAheadLimits::for_readers(readers, self.cache_capacity(), chunk, block)
    }

    /// The memory budget this reader's cache and fetches count against.
    pub fn memory(&self) -> &MemoryBudget {
        &self.memory
    }

    pub fn block_size(&self) -> u32 {
        self.block_size
    }

    /// Bytes of decrypted blocks the cache holds now.
    pub fn cached_bytes(&self) -> u64 {
        self.chunks.bytes()
    }

    /// The most the cache holds (its capacity, within the memory budget).
    pub fn cache_capacity(&self) -> u64 {
        self.chunks.capacity()
    }

    /// The most blocks an [`Fetch::Overdraw`] caller asks for at once: their GET fits in the
    /// budget's slack (at least one block, at most `max`).
    pub fn overdraw_run_blocks(&self, max: u64) -> u64 {
        let sealed_block = sealed_run_len(1, self.block_size);
        (self.memory.slack() / sealed_block).clamp(1, max)
    }

    pub fn blocks_per_chunk(&self) -> u64 {
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
    async fn runs(
        &self,
        v: &RemoteVersion,
        first: u64,
        last: u64,
        mode: Fetch,
    ) -> ReadResult<Vec<Run>> {
        let per_chunk_runs: Vec<Vec<Run>> = stream::iter(self.wanted(first, last))
            .map(|(chunk, want)| self.chunk_runs(v, chunk, want, mode))
            .buffered(FETCH_PARALLELISM)
            .try_collect()
            .await?;
        Ok(per_chunk_runs.into_iter().flatten().collect())
    }

    /// The chunks blocks `first..=last` span, each with the blocks wanted of it.
    fn wanted(&self, first: u64, last: u64) -> impl Iterator<Item = (u64, Range<u64>)> + use<> {
        let per_chunk = self.blocks_per_chunk();
        (first / per_chunk..=last / per_chunk).map(move |chunk| {
            let from = first.max(chunk * per_chunk);
            let to = (last + 1).min((chunk + 1) * per_chunk);
            (chunk, from..to)
        })
    }

    /// Runs covering blocks `want` of chunk `chunk`, fetching the blocks no run holds,
    /// or waiting for a fetch of the same chunk already under way.
    async fn chunk_runs(
        &self,
        v: &RemoteVersion,
        chunk: u64,
        want: Range<u64>,
        mode: Fetch,
    ) -> ReadResult<Vec<Run>> {
        let key = self.chunk_key(v, chunk);
        let mut first_look = true;
        loop {
            let have = self.chunks.get(&key).unwrap_or_default();
            let missing = gaps(&have, &want);
            if std::mem::take(&mut first_look) {
                self.activity.cache_lookup(missing.is_empty());
            }
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
                    // Look again now that the chunk is ours: a fetch that cached these blocks
                    // and left the map between the first look and the claim is not redone.
                    let have = self.chunks.get(&key).unwrap_or_default();
                    let missing = gaps(&have, &want);
                    if missing.is_empty() {
                        return Ok(covering(&have, &want));
                    }
                    // An overdraw fetches in one GET (cached blocks between the gaps again),
                    // so that it never holds slack while it waits for more.
                    let missing = match (mode, missing.first(), missing.last()) {
                        (Fetch::Overdraw, Some(a), Some(z)) => vec![Range {
                            start: a.start,
                            end: z.end,
                        }],
                        _ => missing,
                    };
                    let fetched = futures::future::try_join_all(
                        missing
                            .into_iter()
                            .map(|blocks| self.fetch_run(v, &key, blocks, mode)),
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
    pub async fn blocks(
        &self,
        v: &RemoteVersion,
        first: u64,
        last: u64,
        mode: Fetch,
    ) -> ReadResult<Vec<Bytes>> {
        let bs = self.block_size as u64;
        let runs = self.runs(v, first, last, mode).await?;
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
    /// the background, errors only logged: the foreground read reports its own). At most half
    /// the memory budget is read ahead at once, so that the read-ahead does not push its own
    /// blocks out of the cache before they are read; each chunk's runs are let go as soon as
    /// it is cached. Blocks wholly behind `reader_at` (where its reader is now) when their
    /// chunk's turn comes are not fetched: a read-ahead that started late (a busy machine,
    /// many readers) would otherwise fetch again what its reader has read and passed.
    pub async fn prefetch(&self, v: &RemoteVersion, range: Range<u64>, reader_at: &AtomicU64) {
        let end = range
            .end
            .min(v.plaintext_len)
            .min(range.start.saturating_add(self.memory.limit() / 2));
        if range.start >= end {
            return;
        }
        let bs = self.block_size as u64;
        let fetched = stream::iter(self.wanted(range.start / bs, (end - 1) / bs))
            .map(|(chunk, want)| async move {
                let passed = reader_at.load(std::sync::atomic::Ordering::Relaxed) / bs;
                let want = want.start.max(passed)..want.end;
                if want.is_empty() {
                    return Ok(Vec::new());
                }
                self.chunk_runs(v, chunk, want, Fetch::Wait).await
            })
            .buffer_unordered(FETCH_PARALLELISM)
            .try_for_each(|_| std::future::ready(Ok(())))
            .await;
        if let Err(e) = fetched {
            log::debug!("read-ahead of {} failed: {e}", v.key);
        }
    }

    /// One ranged GET for `blocks` of one chunk (through the seam, which opens the version
    /// first if needed), decrypted into one buffer and added to the chunk's cached runs.
    async fn fetch_run(
        &self,
        v: &RemoteVersion,
        chunk: &ChunkKey,
        blocks: Range<u64>,
        mode: Fetch,
    ) -> ReadResult<Run> {
        let (first, last) = (blocks.start, blocks.end - 1);
        // The GET's body, decrypted in place: its encrypted size is what the run holds.
        let bytes = sealed_run_len(last - first + 1, self.block_size);
        let mut held = match mode {
            Fetch::Wait => self.memory.acquire(bytes).await,
            Fetch::Overdraw => self.memory.overdraw(bytes).await,
        };
        let data = self.sealed.read_blocks(v, blocks).await?;
        if !self.memory.rebase(&mut held) {
            // Still on the budget's slack: the cache keeps only memory within the limit, so
            // the run goes to its caller alone and gives the slack back when it is dropped.
            return Ok(Run {
                first,
                count: last - first + 1,
                data: held.attach_bytes(data),
            });
        }
        let run = Run {
            first,
            count: last - first + 1,
            data,
        };
        let added = run.clone();
        self.chunks.upsert(
            chunk.clone(),
            |old| {
                let runs = match old {
                    Some(runs) => merged(runs, added),
                    None => vec![added],
                };
                let bytes = runs.iter().map(|r| r.data.len() as u64).sum();
                (Arc::new(runs), bytes)
            },
            held,
            self.memory.shortfall(),
        );
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
        let runs = self
            .runs(v, offset / bs, (end - 1) / bs, Fetch::Wait)
            .await?;
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

    /// A sequential reader has read plaintext bytes `offset..end` of `v`: if `v` is a stream
    /// (a file larger than a quarter of the cache), the chunks it has now read to their end
    /// (or to the end of the file) are given back before anything else, above all before the
    /// read-ahead still ahead of it. Plain LRU would do the opposite: read-ahead cached before
    /// the reader reached the chunks behind it is older than they are, so a file larger than
    /// the cache would lose its next chunks and fetch them again. Smaller files keep LRU's
    /// order, so that files read often stay however they are read.
    pub fn passed(&self, v: &RemoteVersion, offset: u64, end: u64) {
        let chunk_bytes = self.blocks_per_chunk() * self.block_size as u64;
        if end <= offset || chunk_bytes == 0 || v.plaintext_len <= self.cache_capacity() / 4 {
            return;
        }
        for chunk in offset / chunk_bytes..=(end - 1) / chunk_bytes {
            if (chunk + 1) * chunk_bytes <= end || end >= v.plaintext_len {
                self.chunks.demote(&self.chunk_key(v, chunk));
            }
        }
    }

    /// Forget the cached header of a version (after it was replaced or deleted).
    pub async fn forget(&self, key: &str, etag: &str) {
        self.sealed.forget(key, etag).await;
    }
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
