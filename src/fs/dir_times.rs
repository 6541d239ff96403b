//! Directory times that entry operations changed, kept in memory until they are written.
//!
//! Creating, removing or renaming an entry changes its directory's mtime and ctime (and a
//! renamed directory's own ctime). Writing the directory's marker on every such operation
//! would double what creating a file costs, so the new times live here, coalesced per
//! directory, and overlay whatever the store or the entry cache says about the directory.
//! `Fs` writes them with the directory's marker (one PUT per directory, however many entries
//! changed) at `fsync` of the directory, at unmount, and in the background
//! [`FLUSH_DELAY`] after the first change (docs/SEMANTICS.md).
//!
//! Keys are paths below the mount root; the root itself has no marker and is not kept here.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use super::attr::StoredAttrs;
use super::inode::is_below;

/// How long changed directory times wait in memory before the background write.
pub(super) const FLUSH_DELAY: Duration = Duration::from_secs(30);

/// New times of one directory, not yet in its marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Pending {
    /// `None` when only the ctime changed (the directory itself was renamed).
    pub mtime: Option<SystemTime>,
    pub ctime: SystemTime,
}

#[derive(Default)]
pub(super) struct DirTimes {
    pending: Mutex<HashMap<String, Pending>>,
    /// A background write is scheduled.
    scheduled: AtomicBool,
}

impl DirTimes {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Directory `dir` changed at `now`: its mtime too when `mtime_too` (an entry was added,
    /// removed or renamed in it), else only its ctime.
    pub fn changed(&self, dir: &str, mtime_too: bool, now: SystemTime) {
        let mut map = self.lock();
        let p = map.entry(dir.to_string()).or_insert(Pending {
            mtime: None,
            ctime: now,
        });
        p.ctime = now;
        if mtime_too {
            p.mtime = Some(now);
        }
    }

    /// Claim the background write: true for the caller that must schedule it.
    pub fn claim_schedule(&self) -> bool {
        !self.scheduled.swap(true, Ordering::SeqCst)
    }

    /// The background write started: later changes schedule another.
    pub fn unclaim_schedule(&self) {
        self.scheduled.store(false, Ordering::SeqCst);
    }

    pub fn get(&self, dir: &str) -> Option<Pending> {
        self.lock().get(dir).copied()
    }

    /// `attrs` of directory `dir` with its pending times laid over.
    pub fn overlay(&self, dir: &str, attrs: &mut StoredAttrs) {
        if let Some(p) = self.get(dir) {
            if let Some(m) = p.mtime {
                attrs.mtime = m;
            }
            attrs.ctime = p.ctime;
        }
    }

    /// The times `seen` of `dir` were written (or `dir` is gone): forget them unless they
    /// changed again meanwhile.
    pub fn written(&self, dir: &str, seen: Pending) {
        let mut map = self.lock();
        if map.get(dir) == Some(&seen) {
            map.remove(dir);
        }
    }

    /// `dir` was removed, or its marker written with everything pending.
    pub fn remove(&self, dir: &str) {
        self.lock().remove(dir);
    }

    /// Directory `from` (and everything below) is now `to`.
    pub fn renamed(&self, from: &str, to: &str) {
        let mut map = self.lock();
        let moved: Vec<String> = map
            .keys()
            .filter(|k| *k == from || is_below(k, from))
            .cloned()
            .collect();
        for old in moved {
            if let Some(p) = map.remove(&old) {
                map.insert(format!("{to}{}", &old[from.len()..]), p);
            }
        }
    }

    /// Directories with times not written yet.
    pub fn dirs(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Directories kept in [`DirOwners`] at most.
const MAX_KNOWN_DIRS: u64 = 65_536;

/// The permission bits and group of directories as last resolved, for what a new entry in
/// one inherits (a setgid directory passes its group, and to new directories its setgid
/// bit). The kernel resolves a directory before creating in it (lookup, and with
/// `default_permissions` a `getattr` once its attributes expire), so this is as fresh as the
/// kernel's view, without a request of its own.
pub(super) struct DirOwners(moka::sync::Cache<String, (u32, u32)>);

impl Default for DirOwners {
    fn default() -> Self {
        DirOwners(moka::sync::Cache::new(MAX_KNOWN_DIRS))
    }
}

impl DirOwners {
    pub fn seen(&self, dir: &str, attrs: &StoredAttrs) {
        self.0.insert(dir.to_string(), (attrs.perm, attrs.gid));
    }

    /// (permission bits, group) of `dir`, if known.
    pub fn get(&self, dir: &str) -> Option<(u32, u32)> {
        self.0.get(dir)
    }

    /// Paths below a renamed directory changed.
    pub fn clear(&self) {
        self.0.invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn at(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(s)
    }

    #[test]
    fn coalesces_overlays_and_follows_renames() {
        let t = DirTimes::default();
        t.changed("a", true, at(1));
        t.changed("a", true, at(2));
        t.changed("a/b", false, at(3));
        t.changed("ab", true, at(4));
        assert_eq!(t.len(), 3);
        let mut attrs = StoredAttrs {
            perm: 0o755,
            uid: 0,
            gid: 0,
            mtime: at(0),
            ctime: at(0),
            xattrs: Default::default(),
        };
        t.overlay("a/b", &mut attrs);
        assert_eq!((attrs.mtime, attrs.ctime), (at(0), at(3)));
        t.overlay("a", &mut attrs);
        assert_eq!((attrs.mtime, attrs.ctime), (at(2), at(2)));
        t.renamed("a", "z");
        let mut dirs = t.dirs();
        dirs.sort();
        assert_eq!(dirs, ["ab", "z", "z/b"]);
        // A write of what was seen clears it, unless it changed again.
        let seen = t.get("z").expect("z");
        t.changed("z", true, at(9));
        t.written("z", seen);
        assert!(t.get("z").is_some());
        t.written("z", t.get("z").expect("z"));
        assert!(t.get("z").is_none());
        assert!(t.claim_schedule());
        assert!(!t.claim_schedule());
        t.unclaim_schedule();
        assert!(t.claim_schedule());
    }
}
