//! Where a key lives under `ROOT/objects/`.
//!
//! A key is split at `/`. Every component but the last becomes a directory `<name>.d`, the last
//! becomes a file `<name>.obj`. So `a` is `a.obj`, `a/b` is `a.d/b.obj` and the marker `a/`
//! (whose last component is empty) is `a.d/%.obj`: S3's flat namespace maps onto a tree with no
//! collisions, and a listing under a prefix reads only the directory of that prefix.
//!
//! Components are escaped reversibly: `%` becomes `%25`, control characters become `%XX`, a
//! leading `.` becomes `%2E` (so `.`, `..` and hidden names cannot occur, and names starting
//! with `.` are free for temporary files), and the empty component is `%`. A name is accepted
//! only in its canonical escaped form, so two files never decode to the same key.
//!
//! A component whose escaped form would not fit a file name (255 bytes with the suffix) is
//! stored as `%H<sha256 hex of the component>`; the real component is read back from the object
//! header (files) or from a `%name` file inside the directory (directories).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub(super) const OBJECT_SUFFIX: &str = ".obj";
pub(super) const DIR_SUFFIX: &str = ".d";
/// Inside a `%H…` directory: the component the directory stands for.
pub(super) const LONG_NAME_FILE: &str = "%name";
const LONG_PREFIX: &str = "%H";
/// A component is part of a key, and a key is at most 1024 bytes: a longer `%name` is damage.
pub(super) const MAX_LONG_COMPONENT: u64 = 1024;
/// Longest escaped component, so that `<name>.obj` fits in 255 bytes.
const MAX_ENCODED_LEN: usize = 255 - OBJECT_SUFFIX.len();

/// The on-disk name of one key component (without suffix).
pub(super) fn encode_component(component: &str) -> String {
    if component.is_empty() {
        return "%".to_owned();
    }
    let mut out = String::with_capacity(component.len());
    for (i, c) in component.char_indices() {
        let escape = c == '%' || c == '/' || c.is_ascii_control() || (i == 0 && c == '.');
        if escape {
            // Every character escaped here is ASCII, so one byte.
            let _ = write!(out, "%{:02X}", c as u32);
        } else {
            out.push(c);
        }
    }
    if out.len() > MAX_ENCODED_LEN {
        return long_name(component);
    }
    out
}

fn long_name(component: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, component.as_bytes());
    format!("{LONG_PREFIX}{}", hex::encode(digest.as_ref()))
}

/// What an on-disk name (without suffix) says about its component.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Decoded {
    Component(String),
    /// A hashed long name: the component is stored elsewhere.
    Long,
    /// Not a name this store writes.
    Foreign,
}

pub(super) fn decode_component(name: &str) -> Decoded {
    if name == "%" {
        return Decoded::Component(String::new());
    }
    if let Some(hash) = name.strip_prefix(LONG_PREFIX) {
        let is_hash = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
        return if is_hash {
            Decoded::Long
        } else {
            Decoded::Foreign
        };
    }
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let Some(byte) = bytes
                .get(i + 1..i + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            else {
                return Decoded::Foreign;
            };
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    match String::from_utf8(out) {
        // Only the canonical spelling counts, so `%41` and `A` cannot both claim key `A`.
        Ok(component) if encode_component(&component) == name => Decoded::Component(component),
        _ => Decoded::Foreign,
    }
}

/// Whether `name` (without suffix) is the name `component` is stored under.
pub(super) fn names_component(name: &str, component: &str) -> bool {
    encode_component(component) == name
}

/// A directory on the way to an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DirStep {
    pub path: PathBuf,
    /// For a `%H…` directory, the component it stands for (written to its `%name` file).
    pub long_component: Option<String>,
}

/// Where an object's file lives, and the directories leading to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ObjectPath {
    pub dirs: Vec<DirStep>,
    pub file: PathBuf,
}

impl ObjectPath {
    /// The directory holding the object file.
    pub(super) fn parent(&self, objects_root: &Path) -> PathBuf {
        self.dirs
            .last()
            .map_or_else(|| objects_root.to_path_buf(), |d| d.path.clone())
    }
}

fn dir_step(parent: &Path, component: &str) -> DirStep {
    let name = encode_component(component);
    let long_component = name.starts_with(LONG_PREFIX).then(|| component.to_owned());
    DirStep {
        path: parent.join(format!("{name}{DIR_SUFFIX}")),
        long_component,
    }
}

pub(super) fn object_path(objects_root: &Path, key: &str) -> ObjectPath {
    let mut components: Vec<&str> = key.split('/').collect();
    // `split` yields at least one item, even for "".
    let last = components.pop().unwrap_or_default();
    let mut dirs = Vec::with_capacity(components.len());
    let mut parent = objects_root.to_path_buf();
    for component in components {
        let step = dir_step(&parent, component);
        parent = step.path.clone();
        dirs.push(step);
    }
    let file = parent.join(format!("{}{OBJECT_SUFFIX}", encode_component(last)));
    ObjectPath { dirs, file }
}

/// The directory holding every key that starts with `prefix`, and the key prefix that
/// directory stands for (`prefix` up to its last `/`).
pub(super) fn dir_for_prefix(objects_root: &Path, prefix: &str) -> (PathBuf, String) {
    let Some(slash) = prefix.rfind('/') else {
        return (objects_root.to_path_buf(), String::new());
    };
    let mut dir = objects_root.to_path_buf();
    for component in prefix[..slash].split('/') {
        dir = dir_step(&dir, component).path;
    }
    (dir, prefix[..=slash].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_round_trip() {
        for component in [
            "",
            "a",
            ".",
            "..",
            ".hidden",
            "a.d",
            "b.obj",
            "%",
            "%41",
            "100%",
            "with space",
            "tab\there",
            "ünïcödé ✓",
            "a.",
            "%H",
            "%name",
        ] {
            let name = encode_component(component);
            assert!(!name.starts_with('.'), "{name}");
            assert!(!name.contains('/'), "{name}");
            assert_eq!(
                decode_component(&name),
                Decoded::Component(component.to_owned()),
                "{component:?} -> {name:?}"
            );
        }
    }

    #[test]
    fn non_canonical_names_are_foreign() {
        assert_eq!(decode_component("%41"), Decoded::Foreign);
        assert_eq!(decode_component("%zz"), Decoded::Foreign);
        assert_eq!(decode_component("%2"), Decoded::Foreign);
        assert_eq!(decode_component(".x"), Decoded::Foreign);
        assert_eq!(decode_component("%Hxyz"), Decoded::Foreign);
    }

    #[test]
    fn long_components_are_hashed_and_fit() {
        let long = "é".repeat(200);
        let name = encode_component(&long);
        assert!(name.starts_with(LONG_PREFIX));
        assert!(name.len() + OBJECT_SUFFIX.len() <= 255);
        assert_eq!(decode_component(&name), Decoded::Long);
        assert!(names_component(&name, &long));
        let fits = "x".repeat(MAX_ENCODED_LEN);
        assert_eq!(encode_component(&fits), fits);
    }

    #[test]
    fn object_markers_and_nested_keys_do_not_collide() {
        let root = Path::new("/r");
        let file = |key| object_path(root, key).file;
        assert_eq!(file("a"), Path::new("/r/a.obj"));
        assert_eq!(file("a/"), Path::new("/r/a.d/%.obj"));
        assert_eq!(file("a/b"), Path::new("/r/a.d/b.obj"));
        assert_eq!(file("a//b"), Path::new("/r/a.d/%.d/b.obj"));
        assert_eq!(file("/x"), Path::new("/r/%.d/x.obj"));
        assert_eq!(file("../x"), Path::new("/r/%2E..d/x.obj"));
        assert_eq!(
            object_path(root, "a/b/c").parent(root),
            Path::new("/r/a.d/b.d")
        );
    }

    #[test]
    fn prefix_directories() {
        let root = Path::new("/r");
        assert_eq!(
            dir_for_prefix(root, ""),
            (root.to_path_buf(), String::new())
        );
        assert_eq!(
            dir_for_prefix(root, "ab"),
            (root.to_path_buf(), String::new())
        );
        assert_eq!(
            dir_for_prefix(root, "a/b/c"),
            (PathBuf::from("/r/a.d/b.d"), "a/b/".to_owned())
        );
        assert_eq!(
            dir_for_prefix(root, "a/"),
            (PathBuf::from("/r/a.d"), "a/".to_owned())
        );
    }
}
