//! The inode table: a two-way map between inode numbers and paths relative to the mount root.
//!
//! S3 has no inodes, so numbers are handed out on first lookup and stay stable for the life of
//! the mount. A rename moves the path of a node (and of every node below a directory); the
//! number stays, so open handles keep working.

use std::collections::HashMap;

use super::attr::Kind;

pub const ROOT_INO: u64 = 1;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Path relative to the mount root without leading or trailing `/`; "" is the root.
    pub path: String,
    pub kind: Kind,
}

#[derive(Debug)]
pub struct InodeTable {
    next: u64,
    by_ino: HashMap<u64, Node>,
    by_path: HashMap<String, u64>,
}

impl Default for InodeTable {
    fn default() -> Self {
        let mut t = InodeTable {
            next: ROOT_INO + 1,
            by_ino: HashMap::new(),
            by_path: HashMap::new(),
        };
        t.by_ino.insert(
            ROOT_INO,
            Node {
                path: String::new(),
                kind: Kind::Dir,
            },
        );
        t.by_path.insert(String::new(), ROOT_INO);
        t
    }
}

impl InodeTable {
    pub fn get(&self, ino: u64) -> Option<&Node> {
        self.by_ino.get(&ino)
    }

    pub fn ino_of(&self, path: &str) -> Option<u64> {
        self.by_path.get(path).copied()
    }

    /// The inode for `path`, created if new. A path whose kind changed (a file replaced by a
    /// directory by another client) gets a fresh number so the kernel never sees a type change.
    pub fn intern(&mut self, path: &str, kind: Kind) -> u64 {
        if let Some(&ino) = self.by_path.get(path) {
            match self.by_ino.get(&ino) {
                Some(node) if node.kind == kind => return ino,
                _ => {
                    self.by_ino.remove(&ino);
                }
            }
        }
        let ino = self.next;
        self.next += 1;
        self.by_ino.insert(
            ino,
            Node {
                path: path.to_string(),
                kind,
            },
        );
        self.by_path.insert(path.to_string(), ino);
        ino
    }

    /// Forget the path (after unlink/rmdir). The inode number stays valid for open handles,
    /// but no longer resolves by path.
    pub fn remove_path(&mut self, path: &str) {
        self.by_path.remove(path);
    }

    /// Move `from` (and, for a directory, everything below it) to `to`. A node already at
    /// `to` is detached first.
    pub fn rename(&mut self, from: &str, to: &str) {
        if let Some(old) = self.by_path.remove(to) {
            let _ = old;
        }
        let moved: Vec<(String, u64)> = self
            .by_path
            .iter()
            .filter(|(p, _)| *p == from || is_below(p, from))
            .map(|(p, i)| (p.clone(), *i))
            .collect();
        for (p, ino) in moved {
            self.by_path.remove(&p);
            let new_path = format!("{to}{}", &p[from.len()..]);
            if let Some(node) = self.by_ino.get_mut(&ino) {
                node.path = new_path.clone();
            }
            self.by_path.insert(new_path, ino);
        }
    }

    pub fn len(&self) -> usize {
        self.by_ino.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_ino.is_empty()
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
    match path.rfind('/') {
        Some(i) => &path[..i],
        None => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_moves_subtree_and_keeps_numbers() {
        let mut t = InodeTable::default();
        let d = t.intern("a", Kind::Dir);
        let f = t.intern("a/f", Kind::File);
        let other = t.intern("ab", Kind::File);
        t.rename("a", "b/c");
        assert_eq!(t.get(d).map(|n| n.path.as_str()), Some("b/c"));
        assert_eq!(t.get(f).map(|n| n.path.as_str()), Some("b/c/f"));
        assert_eq!(t.ino_of("b/c/f"), Some(f));
        assert_eq!(t.ino_of("a/f"), None);
        assert_eq!(t.get(other).map(|n| n.path.as_str()), Some("ab"));
    }

    #[test]
    fn kind_change_gets_new_inode() {
        let mut t = InodeTable::default();
        let a = t.intern("x", Kind::File);
        assert_eq!(t.intern("x", Kind::File), a);
        let b = t.intern("x", Kind::Dir);
        assert_ne!(a, b);
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
    }
}
