//! The one place where paths become store keys and listed keys become names again.
//!
//! A vault stores names in plaintext (vaults made before encrypted names, `init
//! --plain-names`: key = `PREFIX` + path) or encrypted (docs/FORMAT.md §9: every segment
//! sealed with AES-SIV under the name key, its parent's plaintext path as associated data).
//! Everything in `fs` that names an object asks this component, so lookups, listings, renames
//! and the tools over [`Fs`](super::Fs) see plaintext names whichever the vault holds.
//!
//! A name whose encrypted segment would be longer than [`MAX_SEGMENT_LEN`] is stored as
//! `H.long` plus an object `H.name` holding the full segment (its content is the AES-SIV
//! ciphertext itself, authenticated, and must hash to `H`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::crypto::names::{
    MAX_FULL_SEGMENT_LEN, NAME_OBJECT_SUFFIX, NameCipher, Segment, StoredName, classify,
};
use crate::store::ObjectStore;

use super::inode::{join, parent_of};

/// Directories whose encrypted path is kept (the walk up to the root is not redone per file).
const CACHED_DIRS: u64 = 16_384;
/// Keys whose refusal was logged, so a listing taken again does not log them again.
const LOGGED_KEYS: usize = 4096;

/// What a listed segment of a directory is.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// An entry with this name.
    Name(String),
    /// A shortened entry: the name is in the object [`KeyMap::name_object_key`] of this hash.
    Long(String),
    /// A name object (not an entry).
    NameObject,
    /// Not an entry this vault can show; hidden (and logged once).
    Bad(String),
}

/// Paths <-> store keys of one vault (see the module comment).
pub struct KeyMap {
    /// Key prefix of the vault root: "" or "some/prefix/".
    prefix: String,
    cipher: Option<NameCipher>,
    /// Plaintext directory path -> its encrypted path (no prefix).
    dirs: moka::sync::Cache<String, Arc<str>>,
    logged: Mutex<HashSet<String>>,
}

impl KeyMap {
    pub fn new(prefix: String, cipher: Option<NameCipher>) -> KeyMap {
        KeyMap {
            prefix,
            cipher,
            dirs: moka::sync::Cache::new(CACHED_DIRS),
            logged: Mutex::new(HashSet::new()),
        }
    }

    /// Whether names are stored encrypted.
    pub fn encrypted(&self) -> bool {
        self.cipher.is_some()
    }

    /// The encrypted path (below the prefix) of `path`; `path` itself with plaintext names.
    fn stored_path(&self, path: &str) -> String {
        let Some(cipher) = &self.cipher else {
            return path.to_owned();
        };
        if path.is_empty() {
            return String::new();
        }
        let parent = parent_of(path);
        let name = last_segment(path);
        join(
            &self.stored_dir(parent),
            cipher.encrypt(parent, name).segment(),
        )
    }

    fn stored_dir(&self, dir: &str) -> Arc<str> {
        if dir.is_empty() {
            return Arc::from("");
        }
        if let Some(s) = self.dirs.get(dir) {
            return s;
        }
        let s: Arc<str> = Arc::from(self.stored_path(dir));
        self.dirs.insert(dir.to_owned(), s.clone());
        s
    }

    /// Object key of a file at `path`.
    pub fn key_of(&self, path: &str) -> String {
        format!("{}{}", self.prefix, self.stored_path(path))
    }

    /// Object key prefix of the entries of directory `path` (also its marker key).
    pub fn dir_prefix(&self, path: &str) -> String {
        if path.is_empty() {
            self.prefix.clone()
        } else {
            format!("{}{}/", self.prefix, self.stored_dir(path))
        }
    }

    /// The name object a name at `path` needs (its key and content): `Some` only for an
    /// encrypted name too long to be a segment itself.
    pub fn name_object(&self, path: &str) -> Option<(String, Bytes)> {
        let cipher = self.cipher.as_ref()?;
        let parent = parent_of(path);
        match cipher.encrypt(parent, last_segment(path)) {
            StoredName::Short(_) => None,
            StoredName::Long { entry, full } => {
                let hash = entry.strip_suffix(crate::crypto::names::LONG_SUFFIX)?;
                Some((self.name_object_key(parent, hash), Bytes::from(full)))
            }
        }
    }

    /// Key of the name object of the shortened entry `hash` in directory `dir`.
    pub fn name_object_key(&self, dir: &str, hash: &str) -> String {
        format!("{}{hash}{NAME_OBJECT_SUFFIX}", self.dir_prefix(dir))
    }

    /// What `segment`, listed in directory `dir`, is.
    pub fn listed(&self, dir: &str, segment: &str) -> Decoded {
        let Some(cipher) = &self.cipher else {
            return match check_listed_name(segment) {
                Ok(()) => Decoded::Name(segment.to_owned()),
                Err(why) => Decoded::Bad(why.to_owned()),
            };
        };
        match classify(segment) {
            Segment::Encrypted(s) => match cipher.decrypt(dir, s) {
                Ok(name) => checked(name),
                Err(e) => Decoded::Bad(format!("the name does not decrypt: {e}")),
            },
            Segment::Long(hash) => Decoded::Long(hash.to_owned()),
            Segment::NameObject(_) => Decoded::NameObject,
            Segment::Foreign => Decoded::Bad("not an encrypted name".into()),
        }
    }

    /// The name of the shortened entry `hash` in `dir`, from its name object's content.
    pub fn long_name(&self, dir: &str, hash: &str, content: &[u8]) -> Decoded {
        let Some(cipher) = &self.cipher else {
            return Decoded::Bad("a shortened name in a vault with plaintext names".into());
        };
        match cipher.decrypt_long(dir, hash, content) {
            Ok(name) => checked(name),
            Err(e) => Decoded::Bad(format!("its name object does not decrypt: {e}")),
        }
    }

    /// Log that the object (or directory) at `key` is not shown, once per key.
    pub fn hide(&self, key: &str, why: &str) {
        let mut logged = self.logged.lock().unwrap_or_else(|p| p.into_inner());
        if logged.len() >= LOGGED_KEYS {
            logged.clear();
        }
        if logged.insert(key.to_owned()) {
            log::warn!("not listing {key:?}: {why}");
        }
    }

    /// The plaintext path below `dir` that the store path `rel` (relative to `dir`'s key
    /// prefix, `/`-separated, a trailing `/` for a marker) stands for. `long` gives the content
    /// of the name object of a shortened segment, by the (plaintext) directory holding it and
    /// its hash; when it has none, [`Undecoded::NeedNameObject`] says which to fetch.
    pub fn decode_below(
        &self,
        dir: &str,
        rel: &str,
        long: &dyn Fn(&str, &str) -> Option<Bytes>,
    ) -> Result<String, Undecoded> {
        let mut path = dir.to_owned();
        for segment in rel.split('/').filter(|s| !s.is_empty()) {
            let listed = match self.listed(&path, segment) {
                Decoded::Long(hash) => match long(&path, &hash) {
                    Some(content) => self.long_name(&path, &hash, &content),
                    None => {
                        let key = self.name_object_key(&path, &hash);
                        return Err(Undecoded::NeedNameObject(key));
                    }
                },
                other => other,
            };
            match listed {
                Decoded::Name(name) => path = join(&path, &name),
                Decoded::Bad(why) => return Err(Undecoded::Bad(format!("{segment}: {why}"))),
                _ => return Err(Undecoded::Bad(format!("{segment}: a name object"))),
            }
        }
        Ok(path)
    }

    /// The plaintext path of the object at `key` (a trailing `/` for a marker is dropped),
    /// reading the name objects of shortened names on the way (a GET each): for reports.
    pub async fn decode_key(&self, store: &dyn ObjectStore, key: &str) -> Result<String, String> {
        let rel = key
            .strip_prefix(self.prefix.as_str())
            .ok_or_else(|| "outside the vault".to_owned())?;
        let mut contents: HashMap<String, Bytes> = HashMap::new();
        // Each round fetches one more name object; a path has a bounded number of segments.
        for _ in 0..=rel.matches('/').count() + 1 {
            let long =
                |dir: &str, hash: &str| contents.get(&self.name_object_key(dir, hash)).cloned();
            match self.decode_below("", rel, &long) {
                Ok(path) => return Ok(path),
                Err(Undecoded::Bad(why)) => return Err(why),
                Err(Undecoded::NeedNameObject(k)) => {
                    let range = Some(0..MAX_FULL_SEGMENT_LEN as u64 + 1);
                    let got = store.get(&k, range, None).await;
                    let content = got.map_err(|e| format!("its name object {k}: {e}"))?.data;
                    contents.insert(k, content);
                }
            }
        }
        Err("too many shortened names".into())
    }
}

/// Why a stored path does not decode.
#[derive(Debug, PartialEq, Eq)]
pub enum Undecoded {
    /// The content of the name object at this key is needed.
    NeedNameObject(String),
    /// It does not decrypt (or is no name).
    Bad(String),
}

fn checked(name: String) -> Decoded {
    match check_listed_name(&name) {
        Ok(()) => Decoded::Name(name),
        Err(why) => Decoded::Bad(format!(
            "its name decrypts to something that is no name: {why}"
        )),
    }
}

/// The last segment of `path`.
pub(crate) fn last_segment(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Whether a name a listing gave (the part of a key or common prefix below the directory,
/// decrypted if names are encrypted) can be an entry: the bucket is not trusted to hold only
/// keys this file system wrote, and a name goes on to the kernel and to `get`, which make it a
/// local path. The kernel's names are held to the same rules in `Fs::child_path`.
pub(super) fn check_listed_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty name (an empty path component)");
    }
    if name == "." || name == ".." {
        return Err("`.` or `..` is not a name");
    }
    if name.contains('/') {
        return Err("the name holds a `/`");
    }
    if name.contains('\0') {
        return Err("the name holds a NUL byte");
    }
    if name.len() > 255 {
        return Err("the name is longer than 255 bytes");
    }
    Ok(())
}

#[cfg(test)]
mod listed_name_tests {
    use super::check_listed_name;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Whatever the bucket lists, a name accepted here is one path component a local
        /// file system can hold.
        #[test]
        fn accepted_listed_names_are_single_components(name in "\\PC{0,300}|[./\\x00a]{0,4}") {
            if check_listed_name(&name).is_ok() {
                proptest::prop_assert!(!name.is_empty() && name != "." && name != "..");
                proptest::prop_assert!(!name.contains('/') && !name.contains('\0'));
                proptest::prop_assert!(name.len() <= 255);
            }
        }
    }
}
