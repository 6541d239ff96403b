//! The memory budget (`--memory-limit`): one count of the bytes the block cache, the fetches
//! in flight and the upload part buffers and bodies hold, across every open file.
//!
//! A [`Reservation`] is a claim on the budget, given back when it is dropped. Who takes what:
//!
//! - the block cache keeps the reservation of every run it holds, and gives runs back, oldest
//!   first, whenever anyone waits for memory (and when it is over its own capacity);
//! - a fetch reserves the encrypted size of its range before its GET ([`MemoryBudget::acquire`],
//!   which waits), and hands the reservation to the cache with the decrypted run;
//! - an upload reserves each part's (or a small object's) body before sealing it, and the
//!   reservation travels with the body until the request is done (`Bytes` own it);
//! - a sequential writer's part buffers only ever *try* ([`MemoryBudget::try_buffer`]): they
//!   may hold about three quarters of the budget, and without room the part is staged
//!   (sealed on local disk) instead.
//!
//! Why this never deadlocks: everything but part buffers is either evictable (the cache) or
//! held by work that finishes without asking for more memory (a GET, a part upload). Part
//! buffers may sit in idle open files, so they are kept to the budget less one largest
//! request (a quarter and a little more), and one waiting acquisition is clamped to that
//! largest request: it is always granted once work in flight ends.
//!
//! The one holder that reads while holding, an upload sealing blocks of a file's stored
//! version, must not wait for memory it holds itself: it fetches those blocks with
//! [`MemoryBudget::overdraw`], which takes free memory if there is and else uses the
//! *slack*, a sixteenth of the limit past it. The slack is its own count: an overdraw waits
//! only for other overdrawn reservations, each one GET of at most the slack that the upload
//! asks for while it holds no other slack (one run within one chunk at a time), and that
//! ends without asking for more: its run goes to the cache only if it fits within the limit
//! ([`MemoryBudget::rebase`]), else to the upload alone, which drops it once its blocks are
//! copied. So `used` passes the limit by at most the slack (6.25 %), plus what acquisitions
//! clamped to the largest request count beyond their permits: none with a budget of 32 MiB
//! or more (the smallest `--memory-limit`), where a part (its header included) or a fetch
//! is at most 8 MiB and its tags, and a single PUT's body is kept to the largest request
//! (`upload/whole.rs`; a 12 MiB PUT under 32 MiB once passed the limit by 4 MiB).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use tokio::sync::Semaphore;

/// Permits count KiB, so that one acquisition (a `u32` of permits) may span terabytes.
const UNIT: u64 = 1024;

/// The slack overdrawn reservations may use past the limit: a sixteenth of it (6.25 %).
const SLACK_DIVISOR: u64 = 16;

/// What frees memory for waiters: the block cache, asked to give back this many bytes.
type Reclaim = Box<dyn Fn(u64) + Send + Sync>;

struct Inner {
    limit: u64,
    sem: Semaphore,
    /// The slack past the limit that overdrawn reservations may use (see the module comment).
    slack: Semaphore,
    slack_bytes: u64,
    /// Bytes reserved now (may pass `limit` by clamped and overdrawn reservations).
    used: AtomicU64,
    high_water: AtomicU64,
    /// Bytes of part buffers among `used`.
    buffers: AtomicU64,
    /// Permits waiters are waiting for.
    waiting: AtomicU64,
    reclaim: OnceLock<Reclaim>,
}

/// The shared budget; clones share it.
#[derive(Clone)]
pub struct MemoryBudget(Arc<Inner>);

/// Bytes held against the budget, given back on drop.
pub struct Reservation {
    inner: Arc<Inner>,
    permits: u64,
    bytes: u64,
    buffer: bool,
    /// Its permits are the slack's (an overdraw), not the limit's.
    slack: bool,
}

/// Counts a waiter's permits while it waits (also when its future is dropped).
struct Waiting<'a>(&'a Inner, u64);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(self.1, Ordering::SeqCst);
    }
}

impl MemoryBudget {
    /// A budget of `limit` bytes (at least 4 KiB).
    pub fn new(limit: u64) -> Self {
        let limit = limit.max(4 * UNIT);
        let slack_bytes = limit / SLACK_DIVISOR;
        MemoryBudget(Arc::new(Inner {
            limit,
            sem: Semaphore::new((limit / UNIT) as usize),
            slack: Semaphore::new((slack_bytes / UNIT) as usize),
            slack_bytes,
            used: AtomicU64::new(0),
            high_water: AtomicU64::new(0),
            buffers: AtomicU64::new(0),
            waiting: AtomicU64::new(0),
            reclaim: OnceLock::new(),
        }))
    }

    pub fn limit(&self) -> u64 {
        self.0.limit
    }

    /// The most that overdrawn reservations hold at once: `used` never passes the limit by
    /// more (except by clamped acquisitions, see [`Self::acquire`]).
    pub fn slack(&self) -> u64 {
        self.0.slack_bytes
    }

    /// Bytes reserved now.
    pub fn in_use(&self) -> u64 {
        self.0.used.load(Ordering::SeqCst)
    }

    /// The most bytes reserved at once since the budget was made.
    pub fn high_water(&self) -> u64 {
        self.0.high_water.load(Ordering::SeqCst)
    }

    /// Set what frees memory for waiters (once; later calls are ignored).
    pub fn set_reclaim(&self, reclaim: impl Fn(u64) + Send + Sync + 'static) {
        let _ = self.0.reclaim.set(Box::new(reclaim));
    }

    /// Bytes waiters want beyond what is free: what the cache should give back now.
    pub fn shortfall(&self) -> u64 {
        let waiting = self.0.waiting.load(Ordering::SeqCst);
        let free = self.0.sem.available_permits() as u64;
        waiting.saturating_sub(free) * UNIT
    }

    /// The largest single waiting acquisition: a quarter of the budget and a little more, so
    /// that an 8 MiB part or fetch with its tags fits whole in the smallest budget.
    pub fn largest_request(&self) -> u64 {
        self.0.limit / 4 + self.0.limit / 64
    }

    /// Permits for one acquisition of `bytes`: at most [`Self::largest_request`] (see the module
    /// comment), at least one.
    fn permits(&self, bytes: u64) -> u64 {
        bytes
            .div_ceil(UNIT)
            .clamp(1, (self.largest_request() / UNIT).max(1))
    }

    fn reclaim(&self, bytes: u64) {
        if bytes > 0
            && let Some(r) = self.0.reclaim.get()
        {
            r(bytes);
        }
    }

    fn grant(&self, permits: u64, bytes: u64, buffer: bool) -> Reservation {
        self.grant_from(permits, bytes, buffer, false)
    }

    fn grant_from(&self, permits: u64, bytes: u64, buffer: bool, slack: bool) -> Reservation {
        let used = self.0.used.fetch_add(bytes, Ordering::SeqCst) + bytes;
        self.0.high_water.fetch_max(used, Ordering::SeqCst);
        if buffer {
            self.0.buffers.fetch_add(bytes, Ordering::SeqCst);
        }
        Reservation {
            inner: self.0.clone(),
            permits,
            bytes,
            buffer,
            slack,
        }
    }

    /// Take `permits` now if they are free, or once the cache gave them back.
    fn try_take(&self, permits: u64) -> bool {
        let take = || match self.0.sem.try_acquire_many(permits as u32) {
            Ok(p) => {
                p.forget();
                true
            }
            Err(_) => false,
        };
        if take() {
            return true;
        }
        let free = self.0.sem.available_permits() as u64;
        self.reclaim(permits.saturating_sub(free) * UNIT);
        take()
    }

    /// Reserve `bytes`, waiting for memory if there is none (the cache gives back first).
    pub async fn acquire(&self, bytes: u64) -> Reservation {
        let permits = self.permits(bytes);
        if self.try_take(permits) {
            return self.grant(permits, bytes, false);
        }
        // Counted as waiting before the cache is asked, so that a run the cache takes in
        // meanwhile is given back as well.
        self.0.waiting.fetch_add(permits, Ordering::SeqCst);
        let waiting = Waiting(&self.0, permits);
        self.reclaim(self.shortfall());
        match self.0.sem.acquire_many(permits as u32).await {
            Ok(p) => p.forget(),
            // The semaphore is never closed; should it be, go on unaccounted.
            Err(_) => return self.grant(0, bytes, false),
        }
        drop(waiting);
        self.grant(permits, bytes, false)
    }

    /// Reserve `bytes` for a part buffer if part buffers stay within the budget less one
    /// largest request (about three quarters) and the memory is free (or the cache gives it
    /// back); never waits.
    pub fn try_buffer(&self, bytes: u64) -> Option<Reservation> {
        let cap = self.0.limit - self.largest_request();
        if self.0.buffers.load(Ordering::SeqCst) + bytes > cap {
            return None;
        }
        let permits = bytes.div_ceil(UNIT);
        self.try_take(permits)
            .then(|| self.grant(permits, bytes, true))
    }

    /// Reserve `bytes` for a holder that must not wait for the limit (it holds memory
    /// itself): from free memory if there is (or the cache gives it back), else from the
    /// slack past the limit, waiting only for other overdrawn reservations to end. At most
    /// the slack is taken (a larger request is counted whole, beyond it).
    pub async fn overdraw(&self, bytes: u64) -> Reservation {
        let permits = self.permits(bytes);
        if self.try_take(permits) {
            return self.grant(permits, bytes, false);
        }
        let permits = bytes
            .div_ceil(UNIT)
            .clamp(1, (self.0.slack_bytes / UNIT).max(1));
        match self.0.slack.acquire_many(permits as u32).await {
            Ok(p) => p.forget(),
            // The semaphore is never closed; should it be, go on unaccounted.
            Err(_) => return self.grant(0, bytes, false),
        }
        self.grant_from(permits, bytes, false, true)
    }

    /// Move an overdrawn reservation within the limit if the memory is free there (or the
    /// cache gives it back), giving its slack back; false if it stays on the slack. Only a
    /// reservation within the limit may be kept in the cache (see the module comment).
    pub fn rebase(&self, held: &mut Reservation) -> bool {
        if !held.slack {
            return true;
        }
        let permits = held.bytes.div_ceil(UNIT);
        if !self.try_take(permits) {
            return false;
        }
        self.0.slack.add_permits(held.permits as usize);
        held.permits = permits;
        held.slack = false;
        true
    }
}

impl Reservation {
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Take over `other` (of the same budget): one reservation of both, of this one's kind.
    pub fn merge(&mut self, mut other: Reservation) {
        debug_assert!(
            !self.slack && !other.slack,
            "overdrawn reservations are not merged"
        );
        let bytes = std::mem::take(&mut other.bytes);
        if other.buffer != self.buffer {
            if other.buffer {
                self.inner.buffers.fetch_sub(bytes, Ordering::SeqCst);
            } else {
                self.inner.buffers.fetch_add(bytes, Ordering::SeqCst);
            }
        }
        self.permits += std::mem::take(&mut other.permits);
        self.bytes += bytes;
    }

    /// Give back what is held beyond `bytes`.
    pub fn shrink_to(&mut self, bytes: u64) {
        if bytes >= self.bytes {
            return;
        }
        let permits = bytes.div_ceil(UNIT).min(self.permits);
        self.release(self.permits - permits, self.bytes - bytes);
        self.permits = permits;
        self.bytes = bytes;
    }

    fn release(&self, permits: u64, bytes: u64) {
        // Uncounted before the permits are free: whoever takes them next counts them again.
        self.inner.used.fetch_sub(bytes, Ordering::SeqCst);
        if self.buffer {
            self.inner.buffers.fetch_sub(bytes, Ordering::SeqCst);
        }
        if self.slack {
            self.inner.slack.add_permits(permits as usize);
        } else {
            self.inner.sem.add_permits(permits as usize);
        }
    }

    /// `data` as `Bytes` that hold this reservation until the last of them is dropped.
    pub fn attach(self, data: Vec<u8>) -> Bytes {
        Bytes::from_owner(Held { data, _held: self })
    }

    /// [`Self::attach`] for data that is `Bytes` already.
    pub fn attach_bytes(self, data: Bytes) -> Bytes {
        Bytes::from_owner(Held { data, _held: self })
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.release(self.permits, self.bytes);
    }
}

/// A buffer and the reservation that counts it.
struct Held<T> {
    data: T,
    _held: Reservation,
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Held<T> {
    fn as_ref(&self) -> &[u8] {
        self.data.as_ref()
    }
}

#[cfg(test)]
#[path = "memory_tests.rs"]
mod tests;
