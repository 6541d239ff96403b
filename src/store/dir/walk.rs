//! Listing a directory store: a sorted depth-first walk under the prefix's directory.
//!
//! Siblings are sorted by the key they stand for (a directory's key ends in `/`), which makes
//! the walk yield keys in S3's UTF-8 byte order. Subtrees wholly before the continuation point
//! are skipped, and a subtree that rolls up into one common prefix is only probed for a single
//! object, so `ls` of a huge tree reads one directory level and a page costs O(page size).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::layout::{self, DIR_SUFFIX, Decoded, LONG_NAME_FILE, OBJECT_SUFFIX};
use super::object_file::{ObjectFile, read_small};
use super::{Inner, io_error, is_not_found};
use crate::store::list::{ListCursor, Walk};
use crate::store::{ListPage, ListRequest, ObjectInfo, StoreResult};

/// An object or subdirectory found while listing.
struct Entry {
    key: String,
    path: PathBuf,
    is_dir: bool,
}

impl Inner {
    pub(super) fn list(&self, req: &ListRequest) -> StoreResult<ListPage> {
        let mut cursor = ListCursor::new(req)?;
        let (dir, key_prefix) = layout::dir_for_prefix(&self.objects, cursor.prefix());
        self.walk(&dir, &key_prefix, &mut cursor)?;
        Ok(cursor.finish())
    }

    /// Offer the keys under `dir` (which stands for `key_prefix`) to `cursor`, in order.
    fn walk(&self, dir: &Path, key_prefix: &str, cursor: &mut ListCursor<'_>) -> StoreResult<Walk> {
        let entries = match self.read_entries(dir, key_prefix) {
            Ok(entries) => entries,
            // The prefix names no directory (or it vanished meanwhile): no keys.
            Err(e) if is_not_found(&e) => return Ok(Walk::Continue),
            Err(e) => return Err(io_error(key_prefix, e)),
        };
        for entry in entries {
            let key = entry.key.as_str();
            if !entry.is_dir {
                let walk = cursor.offer_key(key, || self.list_info(&entry.path, key))?;
                if walk == Walk::Stop {
                    return Ok(Walk::Stop);
                }
                continue;
            }
            // A directory: every key below it starts with `key`, which ends in '/'.
            let prefix = cursor.prefix();
            if key.starts_with(prefix) {
                if cursor.subtree_listed(key) {
                    continue;
                }
                if let Some(common_prefix) = cursor.common_prefix_for(key) {
                    // The whole subtree rolls up into one entry: look no deeper than needed to
                    // know it holds an object.
                    if !cursor.already_listed(&common_prefix)
                        && self.has_object(&entry.path).map_err(|e| io_error(key, e))?
                        && cursor.offer_common_prefix(&common_prefix) == Walk::Stop
                    {
                        return Ok(Walk::Stop);
                    }
                    continue;
                }
            } else if !prefix.starts_with(key) {
                if key > prefix {
                    // Sorted: this and everything after lies past the prefix.
                    return Ok(Walk::Stop);
                }
                continue;
            }
            if self.walk(&entry.path, key, cursor)? == Walk::Stop {
                return Ok(Walk::Stop);
            }
        }
        Ok(Walk::Continue)
    }

    fn list_info(&self, path: &Path, key: &str) -> StoreResult<Option<ObjectInfo>> {
        match ObjectFile::open(path) {
            Ok(file) => Ok(Some(file.header.info(false))),
            // Deleted since the directory was read.
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(io_error(key, e)),
        }
    }

    /// The objects and subdirectories of `dir`, sorted by key (a directory's key ends in '/').
    fn read_entries(&self, dir: &Path, key_prefix: &str) -> io::Result<Vec<Entry>> {
        let mut entries = Vec::new();
        for dir_entry in fs::read_dir(dir)? {
            let dir_entry = dir_entry?;
            let file_name = dir_entry.file_name();
            let Some(name) = file_name.to_str() else {
                continue;
            };
            if name.starts_with('.') {
                // Temporary files, finished or abandoned.
                continue;
            }
            let file_type = dir_entry.file_type()?;
            let path = dir_entry.path();
            let (base, is_dir) = match (
                name.strip_suffix(DIR_SUFFIX),
                name.strip_suffix(OBJECT_SUFFIX),
            ) {
                (Some(base), _) if file_type.is_dir() => (base, true),
                (_, Some(base)) if file_type.is_file() => (base, false),
                _ => continue,
            };
            let component = match layout::decode_component(base) {
                Decoded::Component(component) => component,
                Decoded::Foreign => continue,
                Decoded::Long => match self.long_component(&path, key_prefix, is_dir) {
                    Some(component) if layout::names_component(base, &component) => component,
                    _ => continue,
                },
            };
            let key = if is_dir {
                format!("{key_prefix}{component}/")
            } else {
                format!("{key_prefix}{component}")
            };
            entries.push(Entry { key, path, is_dir });
        }
        entries.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        Ok(entries)
    }

    /// The component a hashed long name stands for, or `None` if it cannot be told (yet, or
    /// ever: a damaged `%name` or header leaves the entry out, and the caller checks that the
    /// component hashes to the name).
    fn long_component(&self, path: &Path, key_prefix: &str, is_dir: bool) -> Option<String> {
        if is_dir {
            let name = read_small(&path.join(LONG_NAME_FILE), layout::MAX_LONG_COMPONENT);
            let component = String::from_utf8(name.ok()?).ok()?;
            return (!component.contains('/')).then_some(component);
        }
        let key = ObjectFile::open(path).ok()?.header.key;
        let component = key.strip_prefix(key_prefix)?;
        (!component.contains('/')).then(|| component.to_owned())
    }

    /// Whether any object lives below `dir`.
    fn has_object(&self, dir: &Path) -> io::Result<bool> {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if is_not_found(&e) => return Ok(false),
            Err(e) => return Err(e),
        };
        for dir_entry in entries {
            let dir_entry = dir_entry?;
            let file_name = dir_entry.file_name();
            let Some(name) = file_name.to_str() else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let file_type = dir_entry.file_type()?;
            if file_type.is_file() && name.ends_with(OBJECT_SUFFIX) {
                return Ok(true);
            }
            if file_type.is_dir()
                && name.ends_with(DIR_SUFFIX)
                && self.has_object(&dir_entry.path())?
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
