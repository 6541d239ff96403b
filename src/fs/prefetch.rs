//! The read-ahead policy: per handle, which plaintext bytes to fetch ahead of each read.
//!
//! A read that continues where the previous one ended (or starts at offset 0) is sequential:
//! the window starts at [`READAHEAD_MIN`] and doubles with each sequential read up to
//! [`READAHEAD_MAX`]; any other read resets it to nothing. The window is kept ahead of the
//! reader by topping it up in half-window steps, so the fetches overlap the reading instead of
//! stalling it, and every top-up ends on a fetch-chunk boundary so that successive read-aheads
//! fetch whole chunks. This is policy only: the caller starts the fetch (`BlockReader::prefetch`).

use std::ops::Range;

/// The first window of a sequential reader.
pub const READAHEAD_MIN: u64 = 1024 * 1024;
/// The largest window.
pub const READAHEAD_MAX: u64 = 32 * 1024 * 1024;

/// One handle's sequential-read state.
#[derive(Debug, Default)]
pub struct ReadAhead {
    /// Offset the next sequential read would start at.
    next: u64,
    /// Current read-ahead window (grows while reads stay sequential).
    window: u64,
    /// End of what the read-ahead has asked for so far.
    prefetched: u64,
}

impl ReadAhead {
    /// A read of `offset..offset+len` arrives: the plaintext bytes to fetch ahead now, if any
    /// (not clipped to the file's length), with the top-up ending on a multiple of
    /// `chunk_bytes`.
    pub fn on_read(&mut self, offset: u64, len: u64, chunk_bytes: u64) -> Option<Range<u64>> {
        let end = offset.saturating_add(len);
        let window = if offset == self.next && offset > 0 {
            (self.window * 2).clamp(READAHEAD_MIN, READAHEAD_MAX)
        } else if offset == 0 {
            READAHEAD_MIN
        } else {
            0
        };
        self.next = end;
        self.window = window;
        if window == 0 {
            self.prefetched = end;
            return None;
        }
        if self.prefetched >= end + window / 2 {
            return None;
        }
        let from = self.prefetched.max(end);
        let to = (end + window).next_multiple_of(chunk_bytes.max(1));
        self.prefetched = to;
        Some(from..to)
    }

    /// Whether the last read continued a sequential run (or started at offset 0).
    pub fn sequential(&self) -> bool {
        self.window > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;
    const CHUNK: u64 = 8 * MIB;
    const READ: u64 = 128 * 1024;

    #[test]
    fn a_read_at_the_start_fetches_the_first_window_to_a_chunk_boundary() {
        let mut ra = ReadAhead::default();
        assert_eq!(ra.on_read(0, READ, CHUNK), Some(READ..CHUNK));
    }

    #[test]
    fn sequential_reads_top_up_in_half_window_steps_and_the_window_grows_to_its_max() {
        let mut ra = ReadAhead::default();
        let mut fetched = vec![ra.on_read(0, READ, CHUNK).expect("first window")];
        let mut offset = READ;
        while offset < 256 * MIB {
            if let Some(r) = ra.on_read(offset, READ, CHUNK) {
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
        ra.on_read(0, READ, CHUNK);
        assert!(ra.sequential());
        assert_eq!(ra.on_read(50 * MIB, READ, CHUNK), None);
        assert_eq!(ra.window, 0);
        assert!(!ra.sequential());
        // Continuing from the random read is sequential again, from the smallest window.
        let r = ra
            .on_read(50 * MIB + READ, READ, CHUNK)
            .expect("sequential again");
        assert_eq!(r.start, 50 * MIB + 2 * READ);
        assert_eq!(ra.window, READAHEAD_MIN);
    }

    #[test]
    fn rereading_from_the_start_restarts_the_window() {
        let mut ra = ReadAhead::default();
        for i in 0..100 {
            ra.on_read(i * READ, READ, CHUNK);
        }
        assert!(ra.window > READAHEAD_MIN);
        ra.on_read(0, READ, CHUNK);
        assert_eq!(ra.window, READAHEAD_MIN);
    }
}
