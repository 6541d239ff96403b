//! Directory listings kept for `metadata_ttl`, so that looking up a name a fresh listing does
//! not hold costs no request.
//!
//! Creating a file starts with the kernel looking up its name; for a name that does not exist
//! that used to cost a HEAD of the file, a HEAD of a directory marker and a LIST. Creating many
//! files in one directory (`tar x`, `cp -r`, rsync, which also looks up its temporary names)
//! paid that for every file. A listing answers all of them: it is taken by `readdir`, by a
//! lookup that sees a directory being scanned, or is known without asking (a directory this
//! mount just made is empty), and it is kept up to date with this mount's own changes. Other
//! clients' changes show after `metadata_ttl`, as for every other cached attribute.
//!
//! A listing that finished while this mount changed names anywhere is not kept: it could lack
//! a name this mount just made (the LIST ran before the change was stored). A global change
//! counter tells, with no per-name bookkeeping.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::inode::{is_below, parent_of};

/// Listings kept at most (directories); beyond it the oldest go first.
const MAX_LISTINGS: usize = 4096;
/// Largest directory whose names are kept (a listing is one set of names in memory).
pub const MAX_LISTING_NAMES: usize = 20_000;
/// A stale listing is refreshed (one LIST) rather than forgotten while it was taken at most
/// this many TTLs ago: the directory is still being worked in.
const RECENT_TTLS: u32 = 10;

/// What the listings say about a name.
#[derive(Debug, PartialEq, Eq)]
pub enum Known {
    /// A fresh listing of the parent lacks the name: it does not exist.
    Absent,
    /// A fresh listing of the parent holds the name.
    Present,
    /// The parent's listing is stale but recent and small: one LIST refreshes it.
    Refresh,
    /// No listing helps.
    Unknown,
}

struct Listing {
    /// When the LIST that made it was sent (or when the directory was made).
    at: Instant,
    names: HashSet<String>,
}

/// The listings of one mount.
pub struct Listings {
    ttl: Duration,
    /// Bumped by every change of a name this mount makes.
    generation: AtomicU64,
    dirs: Mutex<HashMap<String, Listing>>,
    /// Directories in which a lookup missed the caches, and when: a second miss within the TTL
    /// means the directory is being scanned (rsync stats every name in it).
    misses: Mutex<HashMap<String, Miss>>,
}

#[derive(Clone, Copy)]
enum Miss {
    Once(Instant),
    /// A scan was started; no other one for a TTL.
    Scanned(Instant),
}

fn split(path: &str) -> (&str, &str) {
    let dir = parent_of(path);
    let name = if dir.is_empty() {
        path
    } else {
        &path[dir.len() + 1..]
    };
    (dir, name)
}

impl Listings {
    pub fn new(ttl: Duration) -> Self {
        Listings {
            ttl,
            generation: AtomicU64::new(0),
            dirs: Mutex::new(HashMap::new()),
            misses: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Listing>> {
        self.dirs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The change counter to read before sending a LIST whose result goes to [`Self::put`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Keep the names of directory `dir` as listed by a LIST sent at `at`, read when the
    /// change counter was `generation`. Dropped if this mount changed a name since.
    pub fn put(&self, dir: &str, names: HashSet<String>, at: Instant, generation: u64) {
        if names.len() > MAX_LISTING_NAMES {
            return;
        }
        let mut dirs = self.lock();
        if self.generation() != generation {
            return;
        }
        // Listings past use answer nothing (`check` says Unknown, `missed` ignores them): they
        // go at every LIST, so a walk keeps only the last `RECENT_TTLS` TTLs of names.
        let keep = self.ttl * RECENT_TTLS;
        dirs.retain(|_, l| l.at.elapsed() < keep);
        if dirs.len() >= MAX_LISTINGS {
            dirs.clear();
        }
        dirs.insert(dir.to_string(), Listing { at, names });
    }

    /// A directory this mount just made: empty, known without a LIST.
    pub fn made_dir(&self, path: &str) {
        self.added(path);
        let generation = self.generation();
        self.put(path, HashSet::new(), Instant::now(), generation);
    }

    pub fn check(&self, path: &str) -> Known {
        let (dir, name) = split(path);
        let dirs = self.lock();
        let Some(l) = dirs.get(dir) else {
            return Known::Unknown;
        };
        let age = l.at.elapsed();
        if age < self.ttl {
            if l.names.contains(name) {
                Known::Present
            } else {
                Known::Absent
            }
        } else if age < self.ttl * RECENT_TTLS && l.names.len() < 1000 {
            Known::Refresh
        } else {
            Known::Unknown
        }
    }

    /// Note that a lookup in `path`'s directory missed the caches; true when the directory is
    /// being scanned and should be listed once: the second miss there within the TTL, or the
    /// first in a subdirectory of a directory listed or scanned a moment ago.
    pub fn missed(&self, path: &str) -> bool {
        let (dir, _) = split(path);
        let mut misses = self.misses.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let recent = |t: Instant| now.duration_since(t) < self.ttl;
        if misses.len() >= MAX_LISTINGS {
            misses.retain(|_, m| match *m {
                Miss::Once(t) | Miss::Scanned(t) => recent(t),
            });
            if misses.len() >= MAX_LISTINGS {
                misses.clear();
            }
        }
        // A walk (rsync, find) goes on into the subdirectories of the directory it scanned:
        // their first miss starts their scan.
        let walk = self.ttl * RECENT_TTLS;
        let parent_scanned = !dir.is_empty() && {
            let up = parent_of(dir);
            matches!(misses.get(up), Some(Miss::Scanned(t)) if now.duration_since(*t) < walk)
                || self.lock().get(up).is_some_and(|l| l.at.elapsed() < walk)
        };
        let (next, scan) = match misses.get(dir).copied() {
            Some(Miss::Scanned(t)) if recent(t) => (Miss::Scanned(t), false),
            Some(Miss::Once(t)) if recent(t) => (Miss::Scanned(now), true),
            _ if parent_scanned => (Miss::Scanned(now), true),
            _ => (Miss::Once(now), false),
        };
        misses.insert(dir.to_string(), next);
        scan
    }

    /// Forget the listing of `dir` (it grew too large to refresh in one LIST).
    pub fn forget(&self, dir: &str) {
        self.lock().remove(dir);
    }

    /// `from` moved to `to` (replacing whatever was there).
    pub fn renamed(&self, from: &str, to: &str) {
        self.removed(from);
        self.removed(to);
        self.added(to);
    }

    /// `path` now exists (this mount made it).
    pub fn added(&self, path: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        let (dir, name) = split(path);
        let mut dirs = self.lock();
        if let Some(l) = dirs.get_mut(dir) {
            l.names.insert(name.to_string());
            if l.names.len() > MAX_LISTING_NAMES {
                dirs.remove(dir);
            }
        }
    }

    /// `path` is gone (this mount removed it), with whatever was below it.
    pub fn removed(&self, path: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        let (dir, name) = split(path);
        let mut dirs = self.lock();
        if let Some(l) = dirs.get_mut(dir) {
            l.names.remove(name);
        }
        dirs.retain(|d, _| d != path && !is_below(d, path));
    }

    /// Listings kept and the bytes of their names, about.
    pub fn usage(&self) -> (u64, u64) {
        let dirs = self.lock();
        let bytes = (dirs.iter())
            .map(|(dir, l)| dir.len() + 64 + l.names.iter().map(|n| n.len() + 40).sum::<usize>())
            .sum::<usize>();
        (dirs.len() as u64, bytes as u64)
    }

    pub fn clear(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> HashSet<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn fresh_listing_answers_and_follows_own_changes() {
        let l = Listings::new(Duration::from_secs(60));
        assert_eq!(l.check("d/a"), Known::Unknown);
        let g = l.generation();
        l.put("d", names(&["a", "sub"]), Instant::now(), g);
        assert_eq!(l.check("d/a"), Known::Present);
        assert_eq!(l.check("d/b"), Known::Absent);
        assert_eq!(l.check("other/a"), Known::Unknown);
        l.added("d/b");
        assert_eq!(l.check("d/b"), Known::Present);
        l.removed("d/a");
        assert_eq!(l.check("d/a"), Known::Absent);
        // Removing a directory forgets the listings below it.
        l.put("d/sub/x", names(&["y"]), Instant::now(), l.generation());
        l.removed("d/sub");
        assert_eq!(l.check("d/sub/x/y"), Known::Unknown);
        assert_eq!(l.check("d/sub"), Known::Absent);
        l.put("d/old", names(&["f"]), Instant::now(), l.generation());
        l.renamed("d/old", "d/new");
        assert_eq!(l.check("d/old"), Known::Absent);
        assert_eq!(l.check("d/new"), Known::Present);
        assert_eq!(l.check("d/old/f"), Known::Unknown);
    }

    #[test]
    fn root_and_new_directories() {
        let l = Listings::new(Duration::from_secs(60));
        l.put("", names(&["top"]), Instant::now(), l.generation());
        assert_eq!(l.check("top"), Known::Present);
        l.made_dir("new");
        assert_eq!(l.check("new"), Known::Present);
        assert_eq!(l.check("new/anything"), Known::Absent);
    }

    #[test]
    fn a_listing_raced_by_a_change_is_not_kept() {
        let l = Listings::new(Duration::from_secs(60));
        let g = l.generation();
        l.added("d/new"); // made while the LIST was on its way
        l.put("d", names(&["old"]), Instant::now(), g);
        assert_eq!(l.check("d/new"), Known::Unknown);
    }

    #[test]
    fn stale_listings_ask_for_a_refresh_then_expire() {
        // Stale (older than the TTL) but recent (younger than 10 TTLs) until `check`: the
        // 8 s between them are slack for a loaded machine (a 10 ms TTL left it 50 ms).
        let l = Listings::new(Duration::from_secs(1));
        let long_ago = Instant::now() - Duration::from_secs(2);
        l.put("d", names(&["a"]), long_ago, l.generation());
        assert_eq!(l.check("d/b"), Known::Refresh);
        let very_long_ago = Instant::now() - Duration::from_secs(10);
        l.put("d", names(&["a"]), very_long_ago, l.generation());
        assert_eq!(l.check("d/b"), Known::Unknown);
        let too_big: HashSet<String> = (0..MAX_LISTING_NAMES + 1).map(|i| i.to_string()).collect();
        l.put("big", too_big, Instant::now(), l.generation());
        assert_eq!(l.check("big/x"), Known::Unknown);
    }

    #[test]
    fn a_second_miss_within_the_ttl_is_a_scan() {
        let l = Listings::new(Duration::from_secs(60));
        assert!(!l.missed("d/a"));
        assert!(l.missed("d/b"));
        // One scan per TTL, however many lookups race.
        assert!(!l.missed("d/c"));
        assert!(!l.missed("d/d"));
        assert!(!l.missed("e/a"));
        // The walk goes on into a subdirectory of the scanned directory: scanned at once.
        assert!(l.missed("d/sub/a"));
        assert!(!l.missed("d/sub/b"));
        // Or of a directory listed by readdir.
        l.put("f", names(&["sub"]), Instant::now(), l.generation());
        assert!(l.missed("f/sub/a"));
    }
}
