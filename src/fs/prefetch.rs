//! The read-ahead policy: per handle, which plaintext bytes to fetch ahead of each read.
//!
//! A read that continues where the previous one ended (or starts at offset 0) is sequential:
//! the window starts at [`READAHEAD_MIN`] and doubles with each sequential read up to its
//! largest size; any other read resets it to nothing. The window is kept ahead of the reader
//! by topping it up in half-window steps, so the fetches overlap the reading instead of
//! stalling it, and every top-up ends on an alignment boundary (the fetch chunk) so that
//! successive read-aheads fetch whole chunks. This is policy only: the caller starts the fetch
//! (`BlockReader::prefetch`).
//!
//! The block cache is shared by every reader, so the largest window is too: the sequential
//! readers of all handles are counted, and each gets a share of the cache
//! ([`ReadAheadLimits::for_readers`]) that holds its window and the chunk it is reading. With
//! one reader that is [`READAHEAD_MAX`]; with many, each reads ahead less instead of pushing
//! the others' blocks out of the cache before they are read.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The first window of a sequential reader.
pub const READAHEAD_MIN: u64 = 1024 * 1024;
/// The largest window.
pub const READAHEAD_MAX: u64 = 32 * 1024 * 1024;

/// How far a read may land from where a sequential run has got to and still continue it:
/// twice the kernel's own read-ahead (1 MiB, `fuse.rs`), whose reads may arrive out of order.
const NEAR: u64 = 2 * 1024 * 1024;

/// How far one sequential reader may read ahead now, and where its top-ups end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadAheadLimits {
    /// The largest window (at least [`READAHEAD_MIN`]).
    pub max_window: u64,
    /// Top-ups end on a multiple of this.
    pub align: u64,
}

impl ReadAheadLimits {
    /// The limits of each of `readers` sequential readers sharing a cache of `cache` bytes,
    /// fetched in chunks of `chunk` bytes of blocks of `block` bytes. Each reader holds the
    /// chunk it reads, its window and up to one alignment step beyond it; together they take
    /// at most nine tenths of the cache (one reader) or three quarters (several) while the
    /// windows stay above their minimum.
    /// The step is the largest whole number of blocks up to half the window that divides
    /// the chunk, so that top-ups still fetch whole blocks and never straddle a chunk.
    pub fn for_readers(readers: usize, cache: u64, chunk: u64, block: u64) -> Self {
        // One reader may fill nine tenths of the cache; several leave a quarter of it for
        // their fetches in flight and for reads that arrive out of order.
        let fill = if readers > 1 {
            cache * 3 / 4
        } else {
            cache * 9 / 10
        };
        let share = fill / readers.max(1) as u64;
        let max_window = (share.saturating_sub(chunk) * 2 / 3).clamp(READAHEAD_MIN, READAHEAD_MAX);
        let block = block.max(1);
        let per_chunk = (chunk / block).max(1);
        let most = (max_window / 2 / block).clamp(1, per_chunk);
        let step = (1..=most).rev().find(|d| per_chunk % d == 0).unwrap_or(1);
        ReadAheadLimits {
            max_window,
            align: step * block,
        }
    }
}

/// How long after its last sequential read a handle still counts as a sequential reader: a
/// handle left open (a file read to its end and kept, `tail -f` at the end) stops taking a
/// share of the cache from the readers still streaming.
const ACTIVE: Duration = Duration::from_secs(2);

/// The handles reading sequentially now, which share the block cache's room for read-ahead:
/// each counts while its last read continued a sequential run less than [`ACTIVE`] ago.
#[derive(Debug)]
pub struct SequentialReaders {
    last_read: Mutex<HashMap<u64, Instant>>,
    next_id: AtomicU64,
    active: Duration,
}

impl Default for SequentialReaders {
    fn default() -> Self {
        SequentialReaders::active_for(ACTIVE)
    }
}

impl SequentialReaders {
    /// Handles count for `active` after their last sequential read.
    pub fn active_for(active: Duration) -> Self {
        SequentialReaders {
            last_read: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            active,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Instant>> {
        self.last_read.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Handle `id` read, sequentially or not: the readers counted now, `id` among them if
    /// sequential. The idle ones are let go (so the map holds the active ones). One lock per
    /// read: this is on every read's path.
    fn note(&self, id: u64, sequential: bool) -> usize {
        let now = Instant::now();
        let mut last = self.lock();
        if sequential {
            last.insert(id, now);
        } else {
            last.remove(&id);
        }
        last.retain(|_, t| now.saturating_duration_since(*t) < self.active);
        last.len()
    }

    /// The readers counted now.
    #[cfg(test)]
    fn active(&self) -> usize {
        let now = Instant::now();
        let mut last = self.lock();
        last.retain(|_, t| now.saturating_duration_since(*t) < self.active);
        last.len()
    }
}

/// One handle's sequential-read state.
#[derive(Debug, Default)]
pub struct ReadAhead {
    /// Offset the next sequential read would start at.
    next: u64,
    /// Current read-ahead window (grows while reads stay sequential).
    window: u64,
    /// End of what the read-ahead has asked for so far.
    prefetched: u64,
    /// The sequential readers of every handle, this one among them (as `id`) while it reads
    /// sequentially.
    readers: Arc<SequentialReaders>,
    id: u64,
    /// Where the last read ended, for the read-ahead under way: what it has not fetched yet
    /// behind that, it need not fetch any more.
    reader_at: Arc<AtomicU64>,
}

impl ReadAhead {
    /// A handle's state, counted among `readers` while it reads sequentially.
    pub fn new(readers: Arc<SequentialReaders>) -> Self {
        let id = readers.next_id.fetch_add(1, Ordering::Relaxed);
        ReadAhead {
            next: 0,
            window: 0,
            prefetched: 0,
            readers,
            id,
            reader_at: Arc::default(),
        }
    }

    /// Where this handle's last read ended, kept up to date by later reads.
    pub fn reader_at(&self) -> Arc<AtomicU64> {
        self.reader_at.clone()
    }

    /// A read of `offset..offset+len` arrives: the plaintext bytes to fetch ahead now, if any
    /// (not clipped to the file's length), within the limits `limits` gives for the number
    /// of sequential readers counted now (this one among them if it is one).
    pub fn on_read(
        &mut self,
        offset: u64,
        len: u64,
        limits: impl FnOnce(usize) -> ReadAheadLimits,
    ) -> Option<Range<u64>> {
        let end = offset.saturating_add(len);
        // The kernel sends the reads of one stream from several threads, so they may arrive
        // a little out of order: a read near where a sequential run has got to continues it.
        let within_run = self.window > 0 && offset.abs_diff(self.next) <= NEAR;
        let continues = offset > 0 && (offset == self.next || within_run);
        let limits = limits(self.readers.note(self.id, continues || offset == 0));
        let window = if continues {
            (self.window * 2).clamp(READAHEAD_MIN, limits.max_window.max(READAHEAD_MIN))
        } else if offset == 0 {
            READAHEAD_MIN
        } else {
            0
        };
        self.next = if within_run { self.next.max(end) } else { end };
        self.reader_at.store(self.next, Ordering::Relaxed);
        self.window = window;
        if window == 0 {
            self.prefetched = end;
            return None;
        }
        if self.prefetched >= end + window / 2 {
            return None;
        }
        let from = self.prefetched.max(end);
        let to = (end + window).next_multiple_of(limits.align.max(1));
        self.prefetched = to;
        Some(from..to)
    }

    /// Whether the last read continued a sequential run (or started at offset 0).
    pub fn sequential(&self) -> bool {
        self.window > 0
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.readers.note(self.id, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;
    const CHUNK: u64 = 8 * MIB;
    const READ: u64 = 128 * 1024;
    const ONE: ReadAheadLimits = ReadAheadLimits {
        max_window: READAHEAD_MAX,
        align: CHUNK,
    };

    #[test]
    fn a_read_at_the_start_fetches_the_first_window_to_a_chunk_boundary() {
        let mut ra = ReadAhead::default();
        assert_eq!(ra.on_read(0, READ, |_| ONE), Some(READ..CHUNK));
    }

    #[test]
    fn sequential_reads_top_up_in_half_window_steps_and_the_window_grows_to_its_max() {
        let mut ra = ReadAhead::default();
        let mut fetched = vec![ra.on_read(0, READ, |_| ONE).expect("first window")];
        let mut offset = READ;
        while offset < 256 * MIB {
            if let Some(r) = ra.on_read(offset, READ, |_| ONE) {
                fetched.push(r);
            }
            offset += READ;
        }
        // Contiguous, never behind the reader, whole chunks after the first.
        for pair in fetched.windows(2) {
            assert_eq!(pair[0].end, pair[1].start);
            assert_eq!(pair[1].end % CHUNK, 0);
        }
        assert_eq!(ra.window, READAHEAD_MAX);
        let last = fetched.last().expect("top-ups");
        assert!(
            last.end >= offset + READAHEAD_MAX / 2 && last.end <= offset + READAHEAD_MAX + CHUNK
        );
    }

    #[test]
    fn a_random_read_fetches_nothing_and_resets_the_window() {
        let mut ra = ReadAhead::default();
        ra.on_read(0, READ, |_| ONE);
        assert!(ra.sequential());
        assert_eq!(ra.on_read(50 * MIB, READ, |_| ONE), None);
        assert_eq!(ra.window, 0);
        assert!(!ra.sequential());
        // Continuing from the random read is sequential again, from the smallest window.
        let r = ra
            .on_read(50 * MIB + READ, READ, |_| ONE)
            .expect("sequential again");
        assert_eq!(r.start, 50 * MIB + 2 * READ);
        assert_eq!(ra.window, READAHEAD_MIN);
    }

    #[test]
    fn rereading_from_the_start_restarts_the_window() {
        let mut ra = ReadAhead::default();
        for i in 0..100 {
            ra.on_read(i * READ, READ, |_| ONE);
        }
        assert!(ra.window > READAHEAD_MIN);
        ra.on_read(0, READ, |_| ONE);
        assert_eq!(ra.window, READAHEAD_MIN);
    }

    #[test]
    fn one_reader_reads_ahead_the_most_and_many_share_the_cache() {
        let one = ReadAheadLimits::for_readers(1, 64 * MIB, CHUNK, 65536);
        assert_eq!(one, ONE);
        for readers in 2..=16 {
            let l = ReadAheadLimits::for_readers(readers, 64 * MIB, CHUNK, 65536);
            assert!(l.max_window < READAHEAD_MAX && l.align <= CHUNK && l.align >= 65536);
            // Whole blocks, and whole steps per chunk: a top-up never straddles a chunk.
            assert!(
                l.align % 65536 == 0 && CHUNK % l.align == 0,
                "{readers}: {l:?}"
            );
            // Each reader's chunk, window and one step beyond fit the cache together, as
            // long as the windows are above their minimum.
            if l.max_window > READAHEAD_MIN {
                let each = CHUNK + l.max_window + l.align;
                assert!(readers as u64 * each <= 64 * MIB, "{readers}: {l:?}");
            }
        }
        // A tiny cache still reads ahead its minimum.
        let tiny = ReadAheadLimits::for_readers(4, MIB, CHUNK, 65536);
        assert_eq!(tiny.max_window, READAHEAD_MIN);
    }

    #[test]
    fn a_handle_is_counted_while_it_reads_sequentially() {
        let readers = Arc::new(SequentialReaders::default());
        let mut a = ReadAhead::new(readers.clone());
        let mut b = ReadAhead::new(readers.clone());
        a.on_read(0, READ, |_| ONE);
        b.on_read(0, READ, |_| ONE);
        a.on_read(READ, READ, |_| ONE);
        assert_eq!(readers.active(), 2);
        assert_eq!(a.reader_at().load(Ordering::Relaxed), 2 * READ);
        // A random read ends a's run; closing b's handle ends b's.
        a.on_read(10 * MIB, READ, |_| ONE);
        assert_eq!(readers.active(), 1);
        drop(b);
        assert_eq!(readers.active(), 0);
        // A window grows only to the limit it is given.
        let small = ReadAheadLimits {
            max_window: 2 * MIB,
            align: MIB,
        };
        let mut offset = 0;
        let mut last = None;
        while offset < 64 * MIB {
            last = a.on_read(offset, READ, |_| small).or(last);
            offset += READ;
        }
        let last = last.expect("top-ups");
        assert!(
            last.end <= offset + 3 * MIB && last.end % MIB == 0,
            "{last:?}"
        );
        assert_eq!(a.window, 2 * MIB);
    }

    #[test]
    fn a_handle_left_idle_stops_counting() {
        // Counted for no time at all after each read: every handle is idle when asked.
        let readers = Arc::new(SequentialReaders::active_for(Duration::ZERO));
        let mut a = ReadAhead::new(readers.clone());
        a.on_read(0, READ, |_| ONE);
        a.on_read(READ, READ, |_| ONE);
        assert!(a.sequential());
        assert_eq!(readers.active(), 0);
        // And the idle ones are let go, not kept in the map.
        assert!(readers.lock().is_empty());
    }

    #[test]
    fn reads_a_little_out_of_order_continue_the_run() {
        let mut ra = ReadAhead::default();
        ra.on_read(0, READ, |_| ONE);
        ra.on_read(READ, READ, |_| ONE);
        // The kernel's threads deliver 3 before 2: still one run, and it has got to 4.
        ra.on_read(3 * READ, READ, |_| ONE);
        assert!(ra.sequential());
        ra.on_read(2 * READ, READ, |_| ONE);
        assert!(ra.sequential());
        assert_eq!(ra.next, 4 * READ);
        assert_eq!(ra.reader_at().load(Ordering::Relaxed), 4 * READ);
        assert!(ra.window > READAHEAD_MIN);
        // A read far from the run is random.
        assert_eq!(ra.on_read(4 * READ + NEAR + 1, READ, |_| ONE), None);
        assert!(!ra.sequential());
    }
}
