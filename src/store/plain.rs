//! A read-only store over a plain folder copy of a bucket: key `a/b` is the file `ROOT/a/b`,
//! and nothing else. This is what `aws s3 sync s3://bucket/prefix /backup` or any file copy
//! of a vault leaves behind: the object bodies, without user metadata or ETags.
//!
//! The s3cryptfs object header is self-contained, so such a copy still decrypts: sizes come
//! from the file sizes, modification times from the files' mtimes, modes fall back to the
//! mount defaults (the metadata that held them is gone). Every directory stands for a
//! directory marker (`a/`), so empty directories survive. ETags are made up from the file's
//! size, mtime and inode: stable while the file is unchanged, which is all readers need.
//!
//! Writes are refused: a plain copy is for recovery, and writing into it would create objects
//! no sync tool would put back with their metadata.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;

use super::list::{ListCursor, Walk};
use super::rules;
use super::{
    CompletedPart, CopyOptions, GetOutput, ListPage, ListRequest, Metadata, ObjectInfo, ObjectSse,
    ObjectStore, Op, PendingUpload, PutOptions, PutOutput, RequestStats, StatsSnapshot, StoreError,
    StoreResult,
};

/// A plain folder as a read-only object store.
#[derive(Debug)]
pub struct PlainDirStore {
    root: PathBuf,
    stats: RequestStats,
}

fn io_error(key: &str, source: io::Error) -> StoreError {
    StoreError::Io {
        key: key.to_owned(),
        source,
    }
}

fn not_found(key: &str) -> StoreError {
    StoreError::NotFound {
        key: key.to_owned(),
    }
}

fn is_not_found(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

impl PlainDirStore {
    /// Open the folder at `root`, which must exist and be a directory.
    pub fn open(root: &Path) -> StoreResult<PlainDirStore> {
        let meta = fs::metadata(root).map_err(|e| io_error(&root.display().to_string(), e))?;
        if !meta.is_dir() {
            return Err(StoreError::InvalidArgument(format!(
                "{} is not a directory",
                root.display()
            )));
        }
        Ok(PlainDirStore {
            root: root.to_path_buf(),
            stats: RequestStats::default(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path a key names, or `None` for keys no plain file can hold (empty, `.` or `..`
    /// components, a NUL).
    fn path_of(&self, key: &str) -> Option<PathBuf> {
        let trimmed = key.strip_suffix('/').unwrap_or(key);
        if key.contains('\0') {
            return None;
        }
        let mut path = self.root.clone();
        if trimmed.is_empty() {
            return key.is_empty().then_some(path);
        }
        for component in trimmed.split('/') {
            if component.is_empty() || component == "." || component == ".." {
                return None;
            }
            path.push(component);
        }
        Some(path)
    }

    fn info(key: &str, meta: &fs::Metadata, with_metadata: bool) -> ObjectInfo {
        let size = if meta.is_dir() { 0 } else { meta.len() };
        let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        let mtime_ns = mtime
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        ObjectInfo {
            key: key.to_owned(),
            size,
            etag: format!("\"plain-{size:x}-{mtime_ns:x}-{:x}\"", meta.ino()),
            last_modified: mtime,
            metadata: with_metadata.then(Metadata::new),
            sse: with_metadata.then(ObjectSse::default),
        }
    }

    fn head_sync(&self, key: &str) -> StoreResult<ObjectInfo> {
        rules::check_key(key)?;
        let path = self.path_of(key).ok_or_else(|| not_found(key))?;
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if is_not_found(&e) => return Err(not_found(key)),
            Err(e) => return Err(io_error(key, e)),
        };
        // `a/` is a directory marker: a directory. `a` is an object: a regular file.
        let wanted_dir = key.ends_with('/');
        if meta.is_dir() != wanted_dir || !(meta.is_dir() || meta.is_file()) {
            return Err(not_found(key));
        }
        Ok(Self::info(key, &meta, true))
    }

    fn get_sync(
        &self,
        key: &str,
        range: Option<Range<u64>>,
        if_match: Option<&str>,
    ) -> StoreResult<GetOutput> {
        let info = self.head_sync(key)?;
        rules::check_read_condition(key, &info.etag, if_match)?;
        let range = rules::resolve_range(key, range, info.size)?;
        let mut data = Vec::new();
        if range.end > range.start {
            let path = self.path_of(key).ok_or_else(|| not_found(key))?;
            let mut file = fs::File::open(&path).map_err(|e| io_error(key, e))?;
            file.seek(SeekFrom::Start(range.start))
                .map_err(|e| io_error(key, e))?;
            let len = usize::try_from(range.end - range.start).map_err(|_| {
                StoreError::InvalidArgument(format!("{key}: range too large for memory"))
            })?;
            data.reserve_exact(len);
            file.take(range.end - range.start)
                .read_to_end(&mut data)
                .map_err(|e| io_error(key, e))?;
            if data.len() != len {
                return Err(StoreError::Transient {
                    key: key.to_owned(),
                    reason: "the file changed size while being read".to_owned(),
                });
            }
        }
        Ok(GetOutput {
            data: Bytes::from(data),
            info,
        })
    }

    fn list_sync(&self, req: &ListRequest) -> StoreResult<ListPage> {
        let mut cursor = ListCursor::new(req)?;
        // Start at the deepest directory the prefix names whole.
        let key_prefix = match cursor.prefix().rfind('/') {
            Some(i) => cursor.prefix()[..=i].to_owned(),
            None => String::new(),
        };
        let Some(dir) = self.path_of(&key_prefix) else {
            return Ok(cursor.finish());
        };
        if !key_prefix.is_empty() {
            // The start directory's own marker sorts before everything inside it.
            match fs::metadata(&dir) {
                Ok(meta) if meta.is_dir() => {
                    let info = || Ok(Some(Self::info(&key_prefix, &meta, false)));
                    if cursor.offer_key(&key_prefix, info)? == Walk::Stop {
                        return Ok(cursor.finish());
                    }
                }
                Ok(_) => return Ok(cursor.finish()),
                Err(e) if is_not_found(&e) => return Ok(cursor.finish()),
                Err(e) => return Err(io_error(&key_prefix, e)),
            }
        }
        self.walk(&dir, &key_prefix, &mut cursor)?;
        Ok(cursor.finish())
    }

    /// Offer every key under `dir` (standing for `key_prefix`) in S3 order.
    fn walk(&self, dir: &Path, key_prefix: &str, cursor: &mut ListCursor<'_>) -> StoreResult<Walk> {
        let entries = match read_entries(dir, key_prefix) {
            Ok(entries) => entries,
            Err(e) if is_not_found(&e) => return Ok(Walk::Continue),
            Err(e) => return Err(io_error(key_prefix, e)),
        };
        for (key, path, meta) in entries {
            if !meta.is_dir() {
                let info = || Ok(Some(Self::info(&key, &meta, false)));
                if cursor.offer_key(&key, info)? == Walk::Stop {
                    return Ok(Walk::Stop);
                }
                continue;
            }
            let prefix = cursor.prefix();
            if key.starts_with(prefix) {
                if cursor.subtree_listed(&key) {
                    continue;
                }
                if let Some(common_prefix) = cursor.common_prefix_for(&key) {
                    // Every directory holds at least its own marker, so it always rolls up.
                    if cursor.offer_common_prefix(&common_prefix) == Walk::Stop {
                        return Ok(Walk::Stop);
                    }
                    continue;
                }
            } else if !prefix.starts_with(key.as_str()) {
                if key.as_str() > prefix {
                    return Ok(Walk::Stop);
                }
                continue;
            }
            // The directory's marker, then what is inside.
            let info = || Ok(Some(Self::info(&key, &meta, false)));
            if cursor.offer_key(&key, info)? == Walk::Stop {
                return Ok(Walk::Stop);
            }
            if self.walk(&path, &key, cursor)? == Walk::Stop {
                return Ok(Walk::Stop);
            }
        }
        Ok(Walk::Continue)
    }

    fn read_only(&self, key: &str) -> StoreError {
        StoreError::AccessDenied {
            key: key.to_owned(),
            reason: format!(
                "{} is a plain copy of a vault, opened read-only for recovery",
                self.root.display()
            ),
        }
    }
}

/// Files and directories of `dir` as (key, path, metadata), sorted by key; directory keys end
/// in '/'. Names that are not UTF-8, and anything but files and directories, are skipped.
fn read_entries(dir: &Path, key_prefix: &str) -> io::Result<Vec<(String, PathBuf, fs::Metadata)>> {
    let mut entries = Vec::new();
    for dir_entry in fs::read_dir(dir)? {
        let dir_entry = dir_entry?;
        let file_name = dir_entry.file_name();
        let Some(name) = file_name.to_str() else {
            log::warn!(
                "skipping {}: the name is not UTF-8, so no object key can name it",
                dir_entry.path().display()
            );
            continue;
        };
        let path = dir_entry.path();
        // Follow symlinks: a copy made with links into other storage still reads.
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if is_not_found(&e) => continue,
            Err(e) => return Err(e),
        };
        let key = if meta.is_dir() {
            format!("{key_prefix}{name}/")
        } else if meta.is_file() {
            format!("{key_prefix}{name}")
        } else {
            continue;
        };
        entries.push((key, path, meta));
    }
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(entries)
}

impl PlainDirStore {
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&PlainDirStore) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        // The store is cheap to clone in spirit (a path); a fresh one for the blocking pool
        // keeps `self` free of an Arc.
        let copy = PlainDirStore {
            root: self.root.clone(),
            stats: RequestStats::default(),
        };
        tokio::task::spawn_blocking(move || f(&copy))
            .await
            .map_err(|e| StoreError::Io {
                key: String::new(),
                source: io::Error::other(format!("blocking task failed: {e}")),
            })?
    }
}

#[async_trait]
impl ObjectStore for PlainDirStore {
    async fn head(&self, key: &str) -> StoreResult<ObjectInfo> {
        self.stats.record(Op::Head, 0);
        let key = key.to_owned();
        self.run(move |s| s.head_sync(&key)).await
    }

    async fn get(
        &self,
        key: &str,
        range: Option<Range<u64>>,
        if_match: Option<&str>,
    ) -> StoreResult<GetOutput> {
        let key = key.to_owned();
        let if_match = if_match.map(str::to_owned);
        let result = self
            .run(move |s| s.get_sync(&key, range, if_match.as_deref()))
            .await;
        let bytes = result.as_ref().map_or(0, |o| o.data.len() as u64);
        self.stats.record(Op::Get, bytes);
        result
    }

    async fn put(&self, key: &str, _body: Bytes, _opts: PutOptions) -> StoreResult<PutOutput> {
        Err(self.read_only(key))
    }

    async fn create_multipart(&self, key: &str, _opts: PutOptions) -> StoreResult<String> {
        Err(self.read_only(key))
    }

    async fn upload_part(
        &self,
        key: &str,
        _upload_id: &str,
        _part_number: u32,
        _body: Bytes,
    ) -> StoreResult<String> {
        Err(self.read_only(key))
    }

    async fn complete_multipart(
        &self,
        key: &str,
        _upload_id: &str,
        _parts: &[CompletedPart],
    ) -> StoreResult<PutOutput> {
        Err(self.read_only(key))
    }

    async fn set_upload_if_match(
        &self,
        key: &str,
        _upload_id: &str,
        _if_match: Option<String>,
    ) -> StoreResult<()> {
        Err(self.read_only(key))
    }

    async fn abort_multipart(&self, key: &str, _upload_id: &str) -> StoreResult<()> {
        Err(self.read_only(key))
    }

    /// A plain copy holds objects only.
    async fn list_uploads(&self, _prefix: &str) -> StoreResult<Vec<PendingUpload>> {
        Ok(Vec::new())
    }

    async fn list(&self, req: &ListRequest) -> StoreResult<ListPage> {
        self.stats.record(Op::List, 0);
        let req = req.clone();
        self.run(move |s| s.list_sync(&req)).await
    }

    async fn copy(&self, _src: &str, dst: &str, _opts: CopyOptions) -> StoreResult<PutOutput> {
        Err(self.read_only(dst))
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        Err(self.read_only(key))
    }

    async fn delete_if_match(&self, key: &str, _etag: &str) -> StoreResult<()> {
        Err(self.read_only(key))
    }

    fn stats(&self) -> Option<StatsSnapshot> {
        Some(self.stats.snapshot())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    fn list_all(store: &PlainDirStore, prefix: &str, delimiter: Option<&str>) -> Vec<String> {
        block_on(async {
            let mut out = Vec::new();
            let mut token = None;
            loop {
                let page = store
                    .list(&ListRequest {
                        prefix: prefix.to_owned(),
                        delimiter: delimiter.map(str::to_owned),
                        continuation_token: token.take(),
                        max_keys: 2,
                    })
                    .await
                    .expect("list");
                out.extend(page.objects.into_iter().map(|o| o.key));
                out.extend(page.common_prefixes.into_iter().map(|p| format!("{p}*")));
                match page.next_continuation_token {
                    Some(t) => token = Some(t),
                    None => break,
                }
            }
            out
        })
    }

    #[test]
    fn a_folder_reads_as_objects() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        fs::create_dir_all(root.join("a/b")).expect("mkdir");
        fs::create_dir_all(root.join("empty")).expect("mkdir");
        fs::write(root.join("a/b/c"), b"hello").expect("write");
        fs::write(root.join("a.txt"), b"x").expect("write");
        fs::write(root.join("z"), b"").expect("write");
        let store = PlainDirStore::open(root).expect("open");

        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        assert_eq!(
            sorted(list_all(&store, "", None)),
            ["a.txt", "a/", "a/b/", "a/b/c", "empty/", "z"]
        );
        assert_eq!(
            sorted(list_all(&store, "", Some("/"))),
            ["a.txt", "a/*", "empty/*", "z"]
        );
        assert_eq!(sorted(list_all(&store, "a/", Some("/"))), ["a/", "a/b/*"]);
        assert_eq!(list_all(&store, "a/", None), ["a/", "a/b/", "a/b/c"]);
        assert_eq!(list_all(&store, "a/b", None), ["a/b/", "a/b/c"]);

        block_on(async {
            let info = store.head("a/b/c").await.expect("head");
            assert_eq!(info.size, 5);
            assert_eq!(info.metadata, Some(Metadata::new()));
            let got = store
                .get("a/b/c", Some(1..3), Some(&info.etag))
                .await
                .expect("get");
            assert_eq!(&got.data[..], b"el");
            assert!(matches!(
                store.get("a/b/c", None, Some("\"other\"")).await,
                Err(StoreError::PreconditionFailed { .. })
            ));
            assert!(store.head("a/").await.is_ok());
            assert!(matches!(
                store.head("a").await,
                Err(StoreError::NotFound { .. })
            ));
            assert!(matches!(
                store.head("a/b/c/").await,
                Err(StoreError::NotFound { .. })
            ));
            assert!(matches!(
                store.head("a/../a.txt").await,
                Err(StoreError::NotFound { .. })
            ));
            assert!(matches!(
                store.put("n", Bytes::new(), PutOptions::default()).await,
                Err(StoreError::AccessDenied { .. })
            ));
        });
    }
}
