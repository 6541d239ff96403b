//! The inode table: inode numbers for the names the kernel (or a tool) has been told about.
//!
//! The model, as in mountpoint-s3's superblock: an inode knows its parent inode and its own
//! name, not its full path; the path (and so the object key) is computed by walking parents
//! when an operation needs it. A rename changes one inode's parent and name, whatever lies
//! below it.
//!
//! Lifetime follows the kernel. Every reply that hands the kernel an entry (lookup, create,
//! mkdir, symlink) adds one to the inode's lookup count; `forget` takes the kernel's count
//! back. An inode is freed when its count is zero, no file state is open on it, no inode
//! below it is alive and it is not the root, so the table holds what the kernel holds plus
//! a bounded set of unreferenced inodes: names that `readdir` numbered without a lookup
//! (kept so that the `stat` that usually follows sees the same number) and inodes whose
//! last reference went while a file was open on them. Numbers come from a counter and are
//! never reused, so a number the kernel still holds can never name another object.

use std::collections::VecDeque;
use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::attr::Kind;

pub const ROOT_INO: u64 = 1;

/// Unreferenced inodes kept at most; beyond it the oldest are freed.
const MAX_UNREFERENCED: usize = 16_384;

/// A name in 24 bytes: up to [`INLINE_NAME`] bytes inline, longer ones on the heap (a name on
/// the heap costs 32 bytes more, a third of what an inode costs in all).
#[derive(Debug)]
enum Name {
    Inline { len: u8, bytes: [u8; INLINE_NAME] },
    Heap(Box<str>),
}

const INLINE_NAME: usize = 22;

impl Name {
    fn new(name: &str) -> Name {
        match u8::try_from(name.len()) {
            Ok(len) if name.len() <= INLINE_NAME => {
                let mut bytes = [0; INLINE_NAME];
                bytes[..name.len()].copy_from_slice(name.as_bytes());
                Name::Inline { len, bytes }
            }
            _ => Name::Heap(name.into()),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // Whole characters of a `&str` were copied in.
            Name::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            Name::Heap(s) => s,
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Name::Inline { .. } => 0,
            Name::Heap(s) => s.len().next_multiple_of(16).max(16) + 16,
        }
    }
}

/// One inode. The table holds one per inode the kernel holds (a million after `ls -lR` of a
/// million files, when the kernel keeps them), so it is kept small: 72 bytes with a name of
/// up to 22 bytes, and a slot in each of the two indexes (docs/BENCHMARKS.md, "Size").
#[derive(Debug)]
struct Node {
    ino: u64,
    parent: u64,
    /// References the kernel holds (lookup replies not yet forgotten).
    lookups: u64,
    /// Inodes whose parent this is, named or not: they keep this one alive.
    below: u32,
    name: Name,
    kind: Kind,
    /// Still reachable by its name (false after unlink, rmdir or being renamed over).
    linked: bool,
    /// Another kind of object took the name: the number resolves no more.
    replaced: bool,
}

/// The nodes in a slab (a vector of slots, freed slots reused; its growth is a `realloc` of
/// one mapping, which moves no pages), found by number and by `(parent, name)` through two
/// hash tables of slot indexes. This costs about a third of a map of numbers to nodes that
/// each hold a map of their children's names: no name is stored twice, no per-directory map,
/// and growing an index moves 4-byte slots, not nodes.
#[derive(Debug)]
pub struct InodeTable {
    next: u64,
    slots: Vec<Option<Node>>,
    free: Vec<u32>,
    /// Every node's slot, by `ino`.
    by_ino: HashTable<u32>,
    /// Linked nodes' slots, by `(parent, name)`.
    by_name: HashTable<u32>,
    hasher: std::hash::RandomState,
    /// Inodes that may be unreferenced, oldest first (checked again when swept).
    unreferenced: VecDeque<u64>,
}

fn node(slots: &[Option<Node>], slot: u32) -> &Node {
    slots[slot as usize]
        .as_ref()
        .expect("an index names an occupied slot")
}

impl Default for InodeTable {
    fn default() -> Self {
        let mut t = InodeTable {
            next: ROOT_INO,
            slots: Vec::new(),
            free: Vec::new(),
            by_ino: HashTable::new(),
            by_name: HashTable::new(),
            hasher: std::hash::RandomState::new(),
            unreferenced: VecDeque::new(),
        };
        t.insert_node(ROOT_INO, "", Kind::Dir);
        // The root is nobody's child: no name to be found by.
        t.unlink_name(ROOT_INO);
        if let Some(root) = t.get_mut(ROOT_INO) {
            root.linked = true;
        }
        t
    }
}

impl InodeTable {
    fn slot_of(&self, ino: u64) -> Option<u32> {
        let slots = &self.slots;
        self.by_ino
            .find(self.hasher.hash_one(ino), |&s| node(slots, s).ino == ino)
            .copied()
    }

    fn get(&self, ino: u64) -> Option<&Node> {
        self.slot_of(ino).map(|s| node(&self.slots, s))
    }

    fn get_mut(&mut self, ino: u64) -> Option<&mut Node> {
        let s = self.slot_of(ino)?;
        self.slots[s as usize].as_mut()
    }

    fn child(&self, parent: u64, name: &str) -> Option<u64> {
        let slots = &self.slots;
        let hash = self.hasher.hash_one((parent, name));
        self.by_name
            .find(hash, |&s| {
                let n = node(slots, s);
                n.parent == parent && n.name.as_str() == name
            })
            .map(|&s| node(slots, s).ino)
    }

    /// Put a new node (linked, by its name too) in a slot.
    fn insert_node(&mut self, parent: u64, name: &str, kind: Kind) -> u64 {
        let ino = self.next;
        self.next += 1;
        let n = Node {
            ino,
            parent,
            lookups: 0,
            below: 0,
            name: Name::new(name),
            kind,
            linked: true,
            replaced: false,
        };
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = Some(n);
                s
            }
            None => {
                self.slots.push(Some(n));
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 inodes")
            }
        };
        let Self {
            slots,
            by_ino,
            hasher,
            ..
        } = self;
        by_ino.insert_unique(hasher.hash_one(ino), slot, |&s| {
            hasher.hash_one(node(slots, s).ino)
        });
        self.link_name(slot);
        ino
    }

    /// Make the node in `slot` findable by its `(parent, name)`.
    fn link_name(&mut self, slot: u32) {
        let Self {
            slots,
            by_name,
            hasher,
            ..
        } = self;
        let n = node(slots, slot);
        let hash = hasher.hash_one((n.parent, n.name.as_str()));
        by_name.insert_unique(hash, slot, |&s| {
            let n = node(slots, s);
            hasher.hash_one((n.parent, n.name.as_str()))
        });
    }

    /// Take `ino` out of the name index (if it is there under its name).
    fn unlink_name(&mut self, ino: u64) {
        let Some(n) = self.get(ino) else { return };
        let hash = self.hasher.hash_one((n.parent, n.name.as_str()));
        let slots = &self.slots;
        if let Ok(entry) = self
            .by_name
            .find_entry(hash, |&s| node(slots, s).ino == ino)
        {
            entry.remove();
        }
    }

    /// Remove `ino`'s node from the table; its slot is reused.
    fn remove_node(&mut self, ino: u64) -> Option<Node> {
        self.unlink_name(ino);
        let slots = &self.slots;
        let entry = self
            .by_ino
            .find_entry(self.hasher.hash_one(ino), |&s| node(slots, s).ino == ino)
            .ok()?;
        let (slot, _) = entry.remove();
        self.free.push(slot);
        self.slots[slot as usize].take()
    }

    /// The path of `ino` (relative to the mount root, "" for the root) and its kind. An
    /// unlinked inode keeps the path it had; an inode whose name now holds another kind of
    /// object has none.
    pub fn path_of(&self, ino: u64) -> Option<(String, Kind)> {
        let node = self.get(ino)?;
        if node.replaced {
            return None;
        }
        let mut names = Vec::new();
        let mut cur = node;
        let mut at = ino;
        while at != ROOT_INO {
            names.push(cur.name.as_str());
            at = cur.parent;
            cur = self.get(at)?;
        }
        names.reverse();
        Some((names.join("/"), node.kind))
    }

    /// The inode named by `path`, if the table has one.
    pub fn ino_of(&self, path: &str) -> Option<u64> {
        let mut ino = ROOT_INO;
        if path.is_empty() {
            return Some(ino);
        }
        for name in path.split('/') {
            ino = self.child(ino, name)?;
        }
        Some(ino)
    }

    /// The inode for `path`, created if new (with its parent directories). `counted`: the
    /// caller hands it to the kernel, which will forget it once. A name whose kind changed (a
    /// file replaced by a directory by another client) gets a fresh number so the kernel never
    /// sees a type change.
    pub fn intern(&mut self, path: &str, kind: Kind, counted: bool) -> u64 {
        if path.is_empty() {
            return ROOT_INO;
        }
        let (dir, name) = split(path);
        let parent = match self.ino_of(dir) {
            Some(p) => p,
            None => self.intern(dir, Kind::Dir, false),
        };
        let existing = self.child(parent, name);
        let ino = match existing {
            Some(ino) if self.get(ino).is_some_and(|n| n.kind == kind) => ino,
            _ => {
                if let Some(old) = existing {
                    self.detach(old);
                    if let Some(n) = self.get_mut(old) {
                        n.replaced = true;
                    }
                    self.unreferenced.push_back(old);
                }
                self.insert_child(parent, name, kind)
            }
        };
        if counted {
            if let Some(n) = self.get_mut(ino) {
                n.lookups += 1;
            }
        } else if existing != Some(ino) {
            self.unreferenced.push_back(ino);
        }
        ino
    }

    fn insert_child(&mut self, parent: u64, name: &str, kind: Kind) -> u64 {
        let ino = self.insert_node(parent, name, kind);
        if let Some(p) = self.get_mut(parent) {
            p.below = p.below.saturating_add(1);
        }
        ino
    }

    /// Take `ino`'s name from its parent; the inode stays for whoever still holds it.
    fn detach(&mut self, ino: u64) {
        if !self.get(ino).is_some_and(|n| n.linked) {
            return;
        }
        self.unlink_name(ino);
        if let Some(n) = self.get_mut(ino) {
            n.linked = false;
        }
    }

    /// The name at `path` is gone (unlink, rmdir). Its inode stays valid for the kernel's
    /// references and open handles, but no longer resolves by path.
    pub fn remove_path(&mut self, path: &str) {
        if let Some(ino) = self.ino_of(path).filter(|&i| i != ROOT_INO) {
            self.detach(ino);
            self.unreferenced.push_back(ino);
        }
    }

    /// Move the inode at `from` to `to` (whatever is below a directory moves with it). An
    /// inode already at `to` is detached first.
    pub fn rename(&mut self, from: &str, to: &str) {
        if from == to || to.is_empty() {
            return;
        }
        self.remove_path(to);
        let Some(ino) = self.ino_of(from).filter(|&i| i != ROOT_INO) else {
            return;
        };
        let (dir, name) = split(to);
        let new_parent = match self.ino_of(dir) {
            Some(p) => p,
            None => self.intern(dir, Kind::Dir, false),
        };
        self.detach(ino);
        let Some(slot) = self.slot_of(ino) else {
            return;
        };
        let Some(node) = self.slots[slot as usize].as_mut() else {
            return;
        };
        let old_parent = node.parent;
        node.parent = new_parent;
        node.name = Name::new(name);
        node.linked = true;
        self.link_name(slot);
        if let Some(p) = self.get_mut(new_parent) {
            p.below = p.below.saturating_add(1);
        }
        self.drop_below(old_parent);
    }

    /// The kernel dropped `n` references to `ino`. Frees it (and parents left with nothing)
    /// unless `is_open` says a file is open on it. Returns how many inodes were freed.
    pub fn forget(&mut self, ino: u64, n: u64, is_open: &dyn Fn(u64) -> bool) -> usize {
        let Some(node) = self.get_mut(ino) else {
            log::debug!("forget of inode {ino}, which is not in the table");
            return 0;
        };
        node.lookups = node.lookups.saturating_sub(n);
        if node.lookups > 0 {
            return 0;
        }
        let freed = self.free_if_unused(ino, is_open);
        if freed == 0 {
            // Open, or parent of live inodes: looked at again when swept.
            self.unreferenced.push_back(ino);
        }
        freed + self.sweep(is_open)
    }

    /// Free `ino` (and then parents left with nothing) if nothing holds it.
    pub fn free_if_unused(&mut self, ino: u64, is_open: &dyn Fn(u64) -> bool) -> usize {
        let unused = |n: &Node| n.lookups == 0 && n.below == 0;
        match self.get(ino) {
            Some(n) if ino != ROOT_INO && unused(n) && !is_open(ino) => {}
            _ => return 0,
        }
        let mut freed = 0;
        let mut at = ino;
        while let Some(node) = self.remove_node(at) {
            freed += 1;
            let parent = node.parent;
            let Some(p) = self.get_mut(parent) else {
                break;
            };
            p.below = p.below.saturating_sub(1);
            if parent == ROOT_INO || !unused(p) || is_open(parent) {
                break;
            }
            at = parent;
        }
        freed
    }

    fn drop_below(&mut self, ino: u64) {
        if let Some(n) = self.get_mut(ino) {
            n.below = n.below.saturating_sub(1);
            if n.below == 0 && n.lookups == 0 {
                self.unreferenced.push_back(ino);
            }
        }
    }

    /// Free the oldest unreferenced inodes while there are more than the bound. Open ones
    /// go to the back of the queue.
    fn sweep(&mut self, is_open: &dyn Fn(u64) -> bool) -> usize {
        let mut freed = 0;
        let mut budget = self.unreferenced.len();
        while self.unreferenced.len() > MAX_UNREFERENCED && budget > 0 {
            budget -= 1;
            let Some(ino) = self.unreferenced.pop_front() else {
                break;
            };
            match self.get(ino) {
                Some(n) if n.lookups == 0 && n.below == 0 && is_open(ino) => {
                    self.unreferenced.push_back(ino);
                }
                Some(_) => freed += self.free_if_unused(ino, is_open),
                None => {}
            }
        }
        freed
    }

    /// Newly numbered unreferenced inodes (readdir) may push the table past its bound.
    pub fn trim(&mut self, is_open: &dyn Fn(u64) -> bool) -> usize {
        self.sweep(is_open)
    }

    /// The kernel's lookup count of `ino` (tests).
    pub fn lookups(&self, ino: u64) -> Option<u64> {
        self.get(ino).map(|n| n.lookups)
    }

    pub fn len(&self) -> usize {
        self.by_ino.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_ino.is_empty()
    }

    /// Bytes the table holds on the heap, about (its slab, indexes and names).
    pub fn heap_bytes(&self) -> usize {
        let names: usize = (self.slots.iter().flatten())
            .map(|n| n.name.heap_bytes())
            .sum();
        self.slots.capacity() * std::mem::size_of::<Option<Node>>()
            + (self.by_ino.capacity() + self.by_name.capacity()) * 5 * 8 / 7
            + self.free.capacity() * 4
            + self.unreferenced.capacity() * 8
            + names
    }
}

/// `(parent, name)` of `path` ("" for a top-level entry's parent).
pub fn split(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    }
}

/// Whether `path` lies strictly below directory `dir` ("" is the root).
pub fn is_below(path: &str, dir: &str) -> bool {
    if dir.is_empty() {
        return !path.is_empty();
    }
    path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/'
}

/// `parent/name`, or `name` at the root.
pub fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}/{name}")
    }
}

/// The parent directory of `path` ("" for a top-level entry).
pub fn parent_of(path: &str) -> &str {
    split(path).0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed(_: u64) -> bool {
        false
    }

    fn path(t: &InodeTable, ino: u64) -> Option<String> {
        t.path_of(ino).map(|(p, _)| p)
    }

    #[test]
    fn rename_moves_subtree_and_keeps_numbers() {
        let mut t = InodeTable::default();
        let d = t.intern("a", Kind::Dir, true);
        let f = t.intern("a/f", Kind::File, true);
        let other = t.intern("ab", Kind::File, true);
        t.rename("a", "b/c");
        assert_eq!(path(&t, d).as_deref(), Some("b/c"));
        assert_eq!(path(&t, f).as_deref(), Some("b/c/f"));
        assert_eq!(t.ino_of("b/c/f"), Some(f));
        assert_eq!(t.ino_of("a/f"), None);
        assert_eq!(path(&t, other).as_deref(), Some("ab"));
    }

    #[test]
    fn kind_change_gets_new_inode() {
        let mut t = InodeTable::default();
        let a = t.intern("x", Kind::File, true);
        assert_eq!(t.intern("x", Kind::File, true), a);
        let b = t.intern("x", Kind::Dir, true);
        assert_ne!(a, b);
        assert_eq!(t.path_of(a), None);
        assert_eq!(t.ino_of("x"), Some(b));
    }

    #[test]
    fn forget_frees_leaves_then_parents_and_never_reuses_numbers() {
        let mut t = InodeTable::default();
        let d = t.intern("d", Kind::Dir, true);
        let f = t.intern("d/f", Kind::File, true);
        assert_eq!(t.intern("d/f", Kind::File, true), f);
        assert_eq!(t.len(), 3);
        // The parent stays while a child lives, even with no references of its own.
        assert_eq!(t.forget(d, 1, &closed), 0);
        assert_eq!(path(&t, f).as_deref(), Some("d/f"));
        assert_eq!(t.forget(f, 1, &closed), 0);
        assert_eq!(t.forget(f, 1, &closed), 2);
        assert_eq!(t.len(), 1);
        assert_eq!(t.ino_of("d"), None);
        let again = t.intern("d/f", Kind::File, true);
        assert!(again > f);
    }

    #[test]
    fn open_inodes_outlive_forget_and_unlinked_ones_keep_their_path() {
        let mut t = InodeTable::default();
        let f = t.intern("f", Kind::File, true);
        assert_eq!(t.forget(f, 1, &|i| i == f), 0);
        assert_eq!(path(&t, f).as_deref(), Some("f"));
        assert_eq!(t.free_if_unused(f, &closed), 1);
        let g = t.intern("g", Kind::File, true);
        t.remove_path("g");
        assert_eq!(t.ino_of("g"), None);
        assert_eq!(path(&t, g).as_deref(), Some("g"));
        assert_eq!(t.forget(g, 1, &closed), 1);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn unreferenced_inodes_are_bounded() {
        let mut t = InodeTable::default();
        for i in 0..MAX_UNREFERENCED * 2 {
            t.intern(&format!("d/f{i}"), Kind::File, false);
        }
        t.trim(&closed);
        assert!(t.len() <= MAX_UNREFERENCED + 2, "{}", t.len());
        // The newest stay, so a stat right after readdir sees the listed number.
        let last = format!("d/f{}", MAX_UNREFERENCED * 2 - 1);
        assert!(t.ino_of(&last).is_some());
    }

    #[test]
    fn a_table_of_many_inodes_stays_small() {
        // What `ls -lR` of a vault leaves when the kernel keeps every inode it looked up.
        let mut t = InodeTable::default();
        for d in 0..100 {
            for f in 0..1000 {
                t.intern(&format!("d{d:04}/f{f:06}"), Kind::File, true);
            }
        }
        assert_eq!(t.len(), 100_101);
        let per_inode = t.heap_bytes() / t.len();
        assert!(per_inode <= 128, "{per_inode} bytes per inode");
        assert!(std::mem::size_of::<Option<Node>>() <= 72);
        assert_eq!(
            t.ino_of("d0042/f000017")
                .and_then(|i| path(&t, i))
                .as_deref(),
            Some("d0042/f000017")
        );
        // Freed slots are reused, numbers are not.
        let f = t.ino_of("d0000/f000000").expect("interned");
        assert_eq!(t.forget(f, 1, &closed), 1);
        let g = t.intern("d0000/f000000", Kind::File, true);
        assert!(g > f);
        assert_eq!(t.slots.len(), 100_101);
        // Names past the inline length, and renames between the two forms.
        let long = "a name longer than twenty-two bytes";
        let l = t.intern(&format!("d0001/{long}"), Kind::File, true);
        assert_eq!(path(&t, l), Some(format!("d0001/{long}")));
        t.rename(&format!("d0001/{long}"), "d0001/short");
        assert_eq!(t.ino_of("d0001/short"), Some(l));
        t.rename("d0001/short", &format!("d0002/{long}"));
        assert_eq!(t.ino_of(&format!("d0002/{long}")), Some(l));
    }

    #[test]
    fn path_helpers() {
        assert!(is_below("a/b", "a"));
        assert!(!is_below("ab", "a"));
        assert!(!is_below("a", "a"));
        assert!(is_below("a", ""));
        assert_eq!(join("", "x"), "x");
        assert_eq!(join("a", "x"), "a/x");
        assert_eq!(parent_of("a/b/c"), "a/b");
        assert_eq!(parent_of("a"), "");
        assert_eq!(split("a/b/c"), ("a/b", "c"));
    }
}
