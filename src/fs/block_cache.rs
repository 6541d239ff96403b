//! The byte-weighted LRU map behind the block cache. Every entry keeps the memory-budget
//! [`Reservation`] of the bytes it holds, so an entry leaving the cache gives its memory back
//! to the budget; besides its own capacity, the cache gives back its oldest entries whenever
//! the budget asks (someone waits for memory).

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::Mutex;

use super::memory::Reservation;

struct Slot<V> {
    value: V,
    bytes: u64,
    tick: u64,
    held: Reservation,
}

struct Lru<K, V> {
    map: HashMap<K, Slot<V>>,
    /// Entries by last use, oldest first.
    order: BTreeMap<u64, K>,
    /// The newest tick handed out; counts up from [`MIDDLE`].
    tick: u64,
    /// The oldest tick handed out (by [`ByteLru::demote`]); counts down from [`MIDDLE`].
    floor: u64,
    bytes: u64,
}

/// Where both tick counters start: a cache would need 2^63 uses or demotions to exhaust either.
const MIDDLE: u64 = 1 << 63;

pub struct ByteLru<K, V> {
    lru: Mutex<Lru<K, V>>,
    capacity: u64,
}

impl<K: Hash + Eq + Clone, V: Clone> ByteLru<K, V> {
    pub fn new(capacity: u64) -> Self {
        ByteLru {
            lru: Mutex::new(Lru {
                map: HashMap::new(),
                order: BTreeMap::new(),
                tick: MIDDLE,
                floor: MIDDLE,
                bytes: 0,
            }),
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru<K, V>> {
        self.lru.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The value at `key`, now the most recently used.
    pub fn get(&self, key: &K) -> Option<V> {
        let mut lru = self.lock();
        let lru = &mut *lru;
        let slot = lru.map.get_mut(key)?;
        lru.order.remove(&slot.tick);
        lru.tick += 1;
        slot.tick = lru.tick;
        lru.order.insert(slot.tick, key.clone());
        Some(slot.value.clone())
    }

    /// Make `key` the first to be given back (data read once, by a sequential reader that has
    /// passed it: it goes before every entry still to be read, read-ahead included).
    pub fn demote(&self, key: &K) {
        let mut lru = self.lock();
        let lru = &mut *lru;
        let Some(slot) = lru.map.get_mut(key) else {
            return;
        };
        lru.order.remove(&slot.tick);
        lru.floor -= 1;
        slot.tick = lru.floor;
        lru.order.insert(slot.tick, key.clone());
    }

    /// Set `key` to `update(old value)`, which returns the new value and the bytes it holds;
    /// `held` joins the entry's reservation, which is then trimmed to those bytes. Then give
    /// back the oldest entries (possibly this one) until the cache is within its capacity and
    /// `shortfall` bytes are freed.
    pub fn upsert(
        &self,
        key: K,
        update: impl FnOnce(Option<&V>) -> (V, u64),
        held: Reservation,
        shortfall: u64,
    ) {
        let evicted = {
            let mut lru = self.lock();
            let lru = &mut *lru;
            let old = lru.map.remove(&key);
            let (value, bytes) = update(old.as_ref().map(|s| &s.value));
            let mut held = held;
            if let Some(old) = old {
                lru.order.remove(&old.tick);
                lru.bytes -= old.bytes;
                held.merge(old.held);
            }
            held.shrink_to(bytes);
            lru.tick += 1;
            let tick = lru.tick;
            lru.order.insert(tick, key.clone());
            lru.bytes += bytes;
            lru.map.insert(
                key,
                Slot {
                    value,
                    bytes,
                    tick,
                    held,
                },
            );
            let over = lru.bytes.saturating_sub(self.capacity);
            evict(lru, over.max(shortfall))
        };
        // Given back (and freed) outside the lock.
        drop(evicted);
    }

    /// Give back the oldest entries until `bytes` are freed (or the cache is empty).
    pub fn shrink(&self, bytes: u64) {
        let evicted = evict(&mut self.lock(), bytes);
        drop(evicted);
    }

    /// Bytes held now.
    pub fn bytes(&self) -> u64 {
        self.lock().bytes
    }

    pub fn capacity(&self) -> u64 {
        self.capacity
    }
}

/// Remove the oldest entries of `lru` until `bytes` are freed; returns them.
fn evict<K: Hash + Eq, V>(lru: &mut Lru<K, V>, bytes: u64) -> Vec<Slot<V>> {
    let mut out = Vec::new();
    let mut freed = 0;
    while freed < bytes {
        let Some((_, key)) = lru.order.pop_first() else {
            break;
        };
        if let Some(slot) = lru.map.remove(&key) {
            freed += slot.bytes;
            lru.bytes -= slot.bytes;
            out.push(slot);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::memory::MemoryBudget;
    use super::*;

    const KIB: u64 = 1024;

    fn put(c: &ByteLru<u32, u64>, m: &MemoryBudget, key: u32, bytes: u64, shortfall: u64) {
        let held = futures::executor::block_on(m.overdraw(bytes));
        c.upsert(key, |_| (bytes, bytes), held, shortfall);
    }

    /// A full cache of 300 KiB holding entries 1, 2 and 3 (oldest first), 100 KiB each.
    fn full_cache() -> (MemoryBudget, ByteLru<u32, u64>) {
        let m = MemoryBudget::new(1024 * KIB);
        let c = ByteLru::new(300 * KIB);
        for key in 1..=3 {
            put(&c, &m, key, 100 * KIB, 0);
        }
        (m, c)
    }

    #[test]
    fn keeps_its_capacity_dropping_the_least_recently_used_and_their_memory() {
        let (m, c) = full_cache();
        assert_eq!(c.get(&1), Some(100 * KIB)); // 2 is now the oldest
        put(&c, &m, 4, 100 * KIB, 0);
        assert_eq!(c.get(&2), None);
        assert!(c.get(&1).is_some() && c.get(&3).is_some() && c.get(&4).is_some());
        assert_eq!(c.bytes(), 300 * KIB);
        assert_eq!(m.in_use(), 300 * KIB);
        c.shrink(150 * KIB);
        assert_eq!(c.bytes(), 100 * KIB);
        assert_eq!(m.in_use(), 100 * KIB);
    }

    #[test]
    fn an_update_replaces_the_entry_and_trims_its_reservation() {
        let m = MemoryBudget::new(1024 * KIB);
        let c: ByteLru<u32, u64> = ByteLru::new(1024 * KIB);
        put(&c, &m, 1, 100 * KIB, 0);
        // A merge that keeps 150 KiB of the 100 + 100 reserved.
        let held = futures::executor::block_on(m.overdraw(100 * KIB));
        c.upsert(
            1,
            |old| (old.copied().unwrap_or(0) + 50 * KIB, 150 * KIB),
            held,
            0,
        );
        assert_eq!(c.get(&1), Some(150 * KIB));
        assert_eq!(c.bytes(), 150 * KIB);
        assert_eq!(m.in_use(), 150 * KIB);
    }

    #[test]
    fn a_demoted_entry_is_given_back_before_older_ones() {
        let (m, c) = full_cache();
        c.demote(&3);
        c.demote(&9); // not cached: nothing happens
        put(&c, &m, 4, 100 * KIB, 0);
        assert_eq!(c.get(&3), None);
        assert!(c.get(&1).is_some() && c.get(&2).is_some() && c.get(&4).is_some());
        // A demoted entry used again is the newest again.
        c.demote(&1);
        assert!(c.get(&1).is_some());
        put(&c, &m, 5, 100 * KIB, 0);
        assert_eq!(c.get(&2), None);
        assert!(c.get(&1).is_some());
    }

    #[test]
    fn a_shortfall_gives_back_the_oldest_entries_at_insert() {
        let m = MemoryBudget::new(1024 * KIB);
        let c = ByteLru::new(1024 * KIB);
        put(&c, &m, 1, 100 * KIB, 0);
        put(&c, &m, 2, 100 * KIB, 0);
        put(&c, &m, 3, 100 * KIB, 150 * KIB);
        assert_eq!((c.get(&1), c.get(&2)), (None, None));
        assert_eq!(c.bytes(), 100 * KIB);
        assert_eq!(m.in_use(), 100 * KIB);
    }
}
