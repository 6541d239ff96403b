//! Attributes of files whose object has not changed since this mount read them: a fresh
//! listing that shows the same object answers a `stat` without a HEAD.
//!
//! The entry cache trusts what a HEAD said for `metadata_ttl` only; after that, `ls -l`, `du`
//! and rsync would HEAD every file again although the directory's listing (one request per
//! 1,000 names, taken anyway) already says whether each object changed. This cache keeps, per
//! path, the entry a HEAD gave together with what a listing shows of that object (ETag, size,
//! Last-Modified to the second), and gives the entry back when a later listing shows exactly
//! those.
//!
//! Why that is safe. A record change without a content change (chmod, chown, utimens, a
//! rename's copy) keeps the object's ETag and size on S3: the copy's Last-Modified is what
//! moves. Listings give Last-Modified to the second, so a change made within the same second
//! as the version this mount saw would look the same. An entry is therefore only kept when
//! the object was last modified at least `settled_after` (plus the second of rounding) before
//! the HEAD that read it: every change after that HEAD carries a later second. The argument
//! holds while the server's clock is behind or ahead of this machine's by less than
//! `settled_after` (5 s by default). Objects changed more recently are HEADed as before, as
//! are all objects of a server whose listings carry no ETag or no Last-Modified.
//! What is reused was authenticated when it was read (the record names this object's key and
//! content); a read still checks the content against it. This mount's own changes to a path
//! drop its entry.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::store::ObjectInfo;

/// Bytes of settled entries kept at most, each weighed by what it holds: about 6,500 files of
/// a vault with encrypted names (some 1.3 KiB each, most of it the metadata map). A cap of
/// 20,000 entries held 27 MiB, a tenth of the daemon's memory after `ls -lR` of a million
/// files (docs/BENCHMARKS.md, "Size"); the attribute cache keeps more, smaller, entries.
pub(crate) const MAX_SETTLED_BYTES: u64 = 8 << 20;
/// What one kept entry costs besides its path, ETag and entry: the cache's own node.
const SEEN_OVERHEAD: usize = 160;

/// What a listing shows of one object version, and the entry its HEAD gave.
#[derive(Clone)]
struct Seen<E> {
    etag: String,
    size: u64,
    modified_secs: u64,
    entry: E,
}

/// Entries `E` (the namespace's entries of files) by path.
pub(crate) struct Settled<E> {
    seen: moka::sync::Cache<String, Seen<E>>,
    /// How long before the HEAD an object must have last changed for its entry to be kept.
    settled_after: Duration,
}

/// Whole seconds since the epoch; `None` for a missing (epoch) or pre-epoch time.
fn secs(t: SystemTime) -> Option<u64> {
    t.duration_since(UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
        .filter(|s| *s > 0)
}

/// The Last-Modified second of the object a HEAD at `now` described (`info`) if it may be
/// reused while listings show it unchanged: it has an ETag and a Last-Modified, and had not
/// changed for `settled_after` (plus the second of rounding) when the HEAD read it.
pub(crate) fn settled_second(
    info: &ObjectInfo,
    settled_after: Duration,
    now: SystemTime,
) -> Option<u64> {
    let settled = info
        .last_modified
        .checked_add(settled_after + Duration::from_secs(1))
        .is_some_and(|t| t <= now);
    secs(info.last_modified).filter(|_| settled && !info.etag.is_empty())
}

/// Whether a listing's entry (`listed`) shows the object version with this ETag, size and
/// Last-Modified second.
pub(crate) fn shows_version(
    listed: &ObjectInfo,
    etag: &str,
    size: u64,
    modified_secs: u64,
) -> bool {
    !listed.etag.is_empty()
        && listed.etag == etag
        && listed.size == size
        && secs(listed.last_modified) == Some(modified_secs)
}

impl<E: Clone + Send + Sync + 'static> Settled<E> {
    /// `weigh`: the bytes an entry holds, about (its size and what it points to).
    pub fn new(settled_after: Duration, weigh: fn(&E) -> usize) -> Self {
        Settled {
            seen: moka::sync::Cache::builder()
                .max_capacity(MAX_SETTLED_BYTES)
                .weigher(move |path: &String, seen: &Seen<E>| {
                    let bytes = SEEN_OVERHEAD + path.len() + seen.etag.len() + weigh(&seen.entry);
                    u32::try_from(bytes).unwrap_or(u32::MAX)
                })
                .build(),
            settled_after,
        }
    }

    /// Entries kept and their weight in bytes (after pending evictions ran).
    pub fn usage(&self) -> (u64, u64) {
        self.seen.run_pending_tasks();
        (self.seen.entry_count(), self.seen.weighted_size())
    }

    /// A HEAD at `now` of the file object at `path` (`info`) gave `entry`: keep it if the
    /// object had settled by then, else drop what was kept for `path`.
    pub fn headed(&self, path: &str, info: &ObjectInfo, entry: &E, now: SystemTime) {
        match settled_second(info, self.settled_after, now) {
            Some(modified_secs) => {
                self.seen.insert(
                    path.to_string(),
                    Seen {
                        etag: info.etag.clone(),
                        size: info.size,
                        modified_secs,
                        entry: entry.clone(),
                    },
                );
            }
            _ => self.forget(path),
        }
    }

    /// The entry kept for `path` if `listed` (a fresh listing's entry for it) shows the same
    /// object version.
    pub fn listed(&self, path: &str, listed: &ObjectInfo) -> Option<E> {
        let seen = self.seen.get(path)?;
        if shows_version(listed, &seen.etag, seen.size, seen.modified_secs) {
            Some(seen.entry)
        } else {
            self.forget(path);
            None
        }
    }

    pub fn forget(&self, path: &str) {
        self.seen.invalidate(path);
    }

    pub fn forget_all(&self) {
        self.seen.invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(etag: &str, size: u64, modified: SystemTime) -> ObjectInfo {
        ObjectInfo {
            key: "v/f".into(),
            size,
            etag: etag.into(),
            last_modified: modified,
            metadata: None,
            sse: None,
        }
    }

    /// The tests keep a file's mode as its entry.
    fn file(perm: u32) -> u32 {
        perm
    }

    fn perm(e: Option<u32>) -> Option<u32> {
        e
    }

    const T0: u64 = 1_800_000_000;

    fn at(secs: u64, millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis)
    }

    #[test]
    fn an_unchanged_object_in_a_listing_gives_back_its_entry() {
        let s = Settled::new(Duration::from_secs(5), |_| 0);
        s.headed(
            "f",
            &info("e1", 100, at(T0, 400)),
            &file(0o600),
            at(T0 + 10, 0),
        );
        // A listing gives Last-Modified to the second.
        assert_eq!(
            perm(s.listed("f", &info("e1", 100, at(T0, 0)))),
            Some(0o600)
        );
        assert_eq!(
            perm(s.listed("f", &info("e1", 100, at(T0, 999)))),
            Some(0o600)
        );
        assert_eq!(perm(s.listed("g", &info("e1", 100, at(T0, 0)))), None);
    }

    #[test]
    fn any_difference_in_the_listing_drops_the_entry() {
        for changed in [
            info("e2", 100, at(T0, 0)),
            info("e1", 101, at(T0, 0)),
            info("e1", 100, at(T0 + 1, 0)),
            info("", 100, at(T0, 0)),
        ] {
            let s = Settled::new(Duration::from_secs(5), |_| 0);
            s.headed(
                "f",
                &info("e1", 100, at(T0, 0)),
                &file(0o600),
                at(T0 + 10, 0),
            );
            assert_eq!(perm(s.listed("f", &changed)), None, "{changed:?}");
            // Dropped, not only refused: the original version no longer answers either.
            assert_eq!(perm(s.listed("f", &info("e1", 100, at(T0, 0)))), None);
        }
    }

    #[test]
    fn an_object_changed_shortly_before_its_head_is_not_kept() {
        let s = Settled::new(Duration::from_secs(5), |_| 0);
        // Modified 5.5 s before the HEAD: a change in that same second could follow unseen.
        s.headed(
            "f",
            &info("e1", 100, at(T0, 500)),
            &file(0o600),
            at(T0 + 6, 0),
        );
        assert_eq!(perm(s.listed("f", &info("e1", 100, at(T0, 0)))), None);
        // No ETag, or no Last-Modified: nothing to compare a listing with.
        s.headed("f", &info("", 100, at(T0, 0)), &file(0o600), at(T0 + 60, 0));
        assert_eq!(perm(s.listed("f", &info("", 100, at(T0, 0)))), None);
        s.headed("f", &info("e1", 100, UNIX_EPOCH), &file(0o600), at(T0, 0));
        assert_eq!(perm(s.listed("f", &info("e1", 100, UNIX_EPOCH))), None);
    }

    #[test]
    fn the_entries_kept_are_bounded_in_bytes() {
        // Entries of 4 KiB each: the cap holds a few thousand, whatever their number.
        let s: Settled<u32> = Settled::new(Duration::from_secs(5), |_| 4096);
        let n = 2 * MAX_SETTLED_BYTES / 4096;
        for i in 0..n {
            s.headed(
                &format!("f{i}"),
                &info("e1", 100, at(T0, 0)),
                &file(0o600),
                at(T0 + 10, 0),
            );
        }
        let (entries, bytes) = s.usage();
        assert!(bytes <= MAX_SETTLED_BYTES, "{bytes} bytes");
        assert!(entries < n / 2 + 1, "{entries} entries");
        assert!(entries > 0);
    }

    #[test]
    fn a_newer_head_replaces_and_a_fresh_one_removes_what_was_kept() {
        let s = Settled::new(Duration::from_secs(5), |_| 0);
        s.headed(
            "f",
            &info("e1", 100, at(T0, 0)),
            &file(0o600),
            at(T0 + 10, 0),
        );
        s.headed(
            "f",
            &info("e1", 100, at(T0, 0)),
            &file(0o644),
            at(T0 + 20, 0),
        );
        assert_eq!(
            perm(s.listed("f", &info("e1", 100, at(T0, 0)))),
            Some(0o644)
        );
        // A HEAD of a version changed a moment ago forgets the older one.
        s.headed(
            "f",
            &info("e1", 100, at(T0 + 19, 0)),
            &file(0o600),
            at(T0 + 20, 0),
        );
        assert_eq!(perm(s.listed("f", &info("e1", 100, at(T0, 0)))), None);
        s.headed(
            "f",
            &info("e1", 100, at(T0, 0)),
            &file(0o600),
            at(T0 + 10, 0),
        );
        s.forget("f");
        assert_eq!(perm(s.listed("f", &info("e1", 100, at(T0, 0)))), None);
    }
}
