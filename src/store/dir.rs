//! Local directory store: the embedded default, with S3's semantics.
//!
//! On-disk layout:
//!
//! ```text
//! ROOT/s3cryptfs-store.json    {"format":"s3cryptfs-dirstore","version":1}
//! ROOT/objects/                one file per object, see `layout` (a -> a.obj, a/b -> a.d/b.obj,
//!                              marker a/ -> a.d/%.obj)
//! ROOT/uploads/<upload id>/    upload.json (key, metadata, conditions) + NNNNN.part files
//! ```
//!
//! Every object (and part) file holds its body and a JSON header (key, size, ETag, mtime, user
//! metadata) in one file (see `object_file`), so one `rename` replaces data and metadata
//! together. Writes go to a temporary `.tmp-*` file in the destination directory, are fsynced,
//! renamed into place, and the directory is fsynced. A crash leaves at most a temporary file,
//! which every reader ignores.
//!
//! Server-side encryption follows S3, as in the memory store: each `DirStore` is one client with
//! its own [`SseMode`] ([`DirStore::with_sse`]); object headers record the SSE an object was
//! written with, and SSE-C objects answer only to their key. (Nothing is encrypted on disk by
//! this: the bytes are already encrypted by the client; the rules are what is emulated.)
//!
//! Conditional writes and directory creation/removal are serialized by one in-process lock per
//! root (shared by every `DirStore` opened on the same directory), held only for the
//! check-and-rename, never while bodies are written. Two processes writing one directory store
//! at once are not supported. Blocking file I/O runs on tokio's blocking pool.

mod layout;
mod multipart;
mod object_file;
mod walk;

use std::collections::HashMap;
use std::fs;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use async_trait::async_trait;
use bytes::Bytes;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use self::layout::{LONG_NAME_FILE, ObjectPath};
use self::object_file::{Header, ObjectFile, TempFile, read_small, sync_dir};
use super::memory::copy_onto_itself;
use super::rules;
use super::sse::SseMode;
use super::{
    CompletedPart, CopyOptions, GetOutput, ListPage, ListRequest, MetadataDirective, ObjectInfo,
    ObjectStore, Op, PendingUpload, PutOptions, PutOutput, RequestStats, StatsSnapshot, StoreError,
    StoreResult,
};

/// The file that marks a directory as a directory store.
pub const MARKER_FILE: &str = "s3cryptfs-store.json";
const FORMAT_NAME: &str = "s3cryptfs-dirstore";
const FORMAT_VERSION: u32 = 1;
const OBJECTS_DIR: &str = "objects";
const UPLOADS_DIR: &str = "uploads";
const UPLOAD_RECORD: &str = "upload.json";

/// An object store in a local directory.
#[derive(Debug)]
pub struct DirStore {
    inner: Arc<Inner>,
    /// What this client asks the "server" for.
    sse: SseMode,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    objects: PathBuf,
    uploads: PathBuf,
    /// Serializes condition checks with renames, and directory creation with pruning.
    commit: Arc<Mutex<()>>,
    stats: RequestStats,
}

#[derive(Serialize, Deserialize)]
struct StoreMarker {
    format: String,
    version: u32,
}

fn io_error(key: &str, source: io::Error) -> StoreError {
    StoreError::Io {
        key: key.to_owned(),
        source,
    }
}

fn is_not_found(e: &io::Error) -> bool {
    // ENOTDIR: a path component is a file, which for this layout also means "no such object".
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

impl DirStore {
    /// Open the directory store at `path`. An empty directory (or a missing one whose parent
    /// exists) becomes a new store; a directory holding anything but a store is refused.
    pub fn open(path: &Path) -> StoreResult<DirStore> {
        let refuse = |reason: String| {
            StoreError::InvalidArgument(format!("directory store {}: {reason}", path.display()))
        };
        let at_root = |e: io::Error| io_error(&path.display().to_string(), e);
        match fs::metadata(path) {
            Ok(meta) if !meta.is_dir() => return Err(refuse("is not a directory".into())),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let parent = match path.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p,
                    _ => Path::new("."),
                };
                if !parent.is_dir() {
                    return Err(refuse(format!(
                        "does not exist, and neither does its parent {}; create it first",
                        parent.display()
                    )));
                }
                match fs::create_dir(path) {
                    Ok(()) => sync_dir(parent).map_err(at_root)?,
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(at_root(e)),
                }
            }
            Err(e) => return Err(at_root(e)),
        }

        let marker_path = path.join(MARKER_FILE);
        match fs::read(&marker_path) {
            Ok(bytes) => {
                let marker: StoreMarker = serde_json::from_slice(&bytes)
                    .map_err(|e| refuse(format!("{MARKER_FILE} is not a store marker ({e})")))?;
                if marker.format != FORMAT_NAME {
                    return Err(refuse(format!(
                        "{MARKER_FILE} names format {:?}, not {FORMAT_NAME:?}",
                        marker.format
                    )));
                }
                if marker.version != FORMAT_VERSION {
                    return Err(refuse(format!(
                        "store format version {} is not supported by this build (it reads \
                         version {FORMAT_VERSION}); use a matching s3cryptfs",
                        marker.version
                    )));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mut entries = fs::read_dir(path).map_err(at_root)?;
                if entries.next().is_some() {
                    return Err(refuse(format!(
                        "is not empty and is not a directory store (it has no {MARKER_FILE}); \
                         choose an empty or new directory"
                    )));
                }
                let marker = StoreMarker {
                    format: FORMAT_NAME.into(),
                    version: FORMAT_VERSION,
                };
                let json = serde_json::to_vec_pretty(&marker).map_err(io::Error::other);
                let mut tmp = TempFile::create_in(path).map_err(at_root)?;
                json.and_then(|json| tmp.write_all(&json))
                    .and_then(|()| tmp.finish_raw())
                    .and_then(|()| tmp.persist(&marker_path))
                    .map_err(at_root)?;
            }
            Err(e) => return Err(at_root(e)),
        }
        for dir in [OBJECTS_DIR, UPLOADS_DIR] {
            match fs::create_dir(path.join(dir)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(at_root(e)),
            }
        }
        sync_dir(path).map_err(at_root)?;

        let root = fs::canonicalize(path).map_err(at_root)?;
        Ok(DirStore {
            inner: Arc::new(Inner {
                objects: root.join(OBJECTS_DIR),
                uploads: root.join(UPLOADS_DIR),
                commit: commit_lock_for(&root),
                root,
                stats: RequestStats::default(),
            }),
            sse: SseMode::None,
        })
    }

    /// Another client of the same directory (and counters) that applies `sse` to its
    /// requests, as an `S3Store` with that mode would.
    pub fn with_sse(&self, sse: SseMode) -> DirStore {
        DirStore {
            inner: Arc::clone(&self.inner),
            sse,
        }
    }

    /// The SSE mode this client applies.
    pub fn sse(&self) -> &SseMode {
        &self.sse
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Set every request and byte counter back to zero.
    pub fn reset_stats(&self) {
        self.inner.stats.reset();
    }

    /// Counts a request that took `attempts` tries (one per SSE-C key tried).
    fn record_attempts(&self, op: Op, attempts: u64, bytes: u64) {
        for _ in 1..attempts {
            self.inner.stats.record(op, 0);
        }
        self.inner.stats.record(op, bytes);
    }

    /// Run `f` on the blocking pool (file I/O must not stall the async workers).
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let inner = Arc::clone(&self.inner);
        match tokio::task::spawn_blocking(move || f(&inner)).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(io_error(
                &self.inner.root.display().to_string(),
                io::Error::other(format!("directory store task cancelled: {e}")),
            )),
        }
    }
}

/// One lock per store root in this process, so two `DirStore`s on one directory still
/// serialize their commits.
fn commit_lock_for(root: &Path) -> Arc<Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<PathBuf, Weak<Mutex<()>>>>> = OnceLock::new();
    let mut locks = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(lock) = locks.get(root).and_then(Weak::upgrade) {
        return lock;
    }
    locks.retain(|_, lock| lock.strong_count() > 0);
    let lock = Arc::new(Mutex::new(()));
    locks.insert(root.to_path_buf(), Arc::downgrade(&lock));
    lock
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, ()> {
        // The lock guards no data, only ordering: poisoning carries no meaning.
        self.commit.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn open_object(&self, key: &str) -> StoreResult<ObjectFile> {
        let path = layout::object_path(&self.objects, key);
        let file = ObjectFile::open(&path.file).map_err(|e| {
            if is_not_found(&e) {
                StoreError::NotFound { key: key.into() }
            } else {
                io_error(key, e)
            }
        })?;
        if file.header.key != key {
            return Err(io_error(
                key,
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "object file {} holds key {:?}",
                        path.file.display(),
                        file.header.key
                    ),
                ),
            ));
        }
        Ok(file)
    }

    /// HEAD; also returns how many tries (SSE-C keys) it took.
    fn head(&self, key: &str, sse: &SseMode) -> (StoreResult<ObjectInfo>, u64) {
        let file = match rules::check_key(key).and_then(|()| self.open_object(key)) {
            Ok(file) => file,
            Err(e) => return (Err(e), 1),
        };
        let (allowed, attempts) = sse.check_read("HeadObject", key, &file.header.sse);
        (allowed.map(|()| file.header.info(true)), attempts)
    }

    /// GET; `attempts` is set to how many tries (SSE-C keys) it took.
    fn get(
        &self,
        key: &str,
        range: Option<Range<u64>>,
        if_match: Option<&str>,
        sse: &SseMode,
        attempts: &mut u64,
    ) -> StoreResult<GetOutput> {
        rules::check_key(key)?;
        let file = self.open_object(key)?;
        let (allowed, tries) = sse.check_read("GetObject", key, &file.header.sse);
        *attempts = tries;
        allowed?;
        rules::check_read_condition(key, &file.header.etag, if_match)?;
        let range = rules::resolve_range(key, range, file.header.size)?;
        let data = file
            .read_range(range.start, range.end)
            .map_err(|e| io_error(key, e))?;
        Ok(GetOutput {
            data: Bytes::from(data),
            info: file.header.info(true),
        })
    }

    /// Create the directories leading to `path` and a temporary file beside the object. Done
    /// under the lock, so pruning cannot remove a directory between the two; afterwards the
    /// temporary file keeps the directory non-empty.
    fn prepare(&self, key: &str, path: &ObjectPath) -> StoreResult<TempFile> {
        let _guard = self.lock();
        let mut parent = self.objects.clone();
        for step in &path.dirs {
            match fs::create_dir(&step.path) {
                Ok(()) => sync_dir(&parent).map_err(|e| io_error(key, e))?,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_error(key, e)),
            }
            if let Some(component) = &step.long_component {
                self.ensure_long_name(&step.path, component)
                    .map_err(|e| io_error(key, e))?;
            }
            parent.clone_from(&step.path);
        }
        TempFile::create_in(&parent).map_err(|e| io_error(key, e))
    }

    /// Make sure a `%H…` directory names its component (it may be missing after a crash).
    fn ensure_long_name(&self, dir: &Path, component: &str) -> io::Result<()> {
        let path = dir.join(LONG_NAME_FILE);
        match read_small(&path, layout::MAX_LONG_COMPONENT) {
            Ok(bytes) if bytes == component.as_bytes() => return Ok(()),
            // Missing, or damaged (wrong text, too long, not a plain file): written anew.
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::InvalidData
                ) => {}
            Err(e) => return Err(e),
        }
        let mut tmp = TempFile::create_in(dir)?;
        tmp.write_all(component.as_bytes())?;
        tmp.finish_raw()?;
        tmp.persist(&path)?;
        sync_dir(dir)
    }

    /// Rename a finished temporary file over the object, checking `conditions` against the
    /// current object first (atomically with respect to other commits).
    fn commit(
        &self,
        key: &str,
        tmp: TempFile,
        path: &ObjectPath,
        conditions: Option<&PutOptions>,
    ) -> StoreResult<()> {
        let parent = path.parent(&self.objects);
        {
            let guard = self.lock();
            if let Some(conditions) = conditions {
                let current = match ObjectFile::open(&path.file) {
                    Ok(file) => Some(file.header.etag),
                    Err(e) if is_not_found(&e) => None,
                    Err(e) => return Err(io_error(key, e)),
                };
                if let Err(e) = rules::check_write_conditions(key, current.as_deref(), conditions) {
                    drop(tmp);
                    self.prune(&parent, &guard);
                    return Err(e);
                }
            }
            tmp.persist(&path.file).map_err(|e| io_error(key, e))?;
        }
        sync_dir(&parent).map_err(|e| io_error(key, e))
    }

    /// Remove `dir` and its ancestors (below `objects/`) while they hold no entries. Returns the
    /// deepest directory that remains. Best effort: a failure only leaves an empty directory,
    /// which listings ignore.
    fn prune(&self, dir: &Path, _guard: &MutexGuard<'_, ()>) -> PathBuf {
        let mut dir = dir.to_path_buf();
        while dir != self.objects && dir.starts_with(&self.objects) {
            let empty = match fs::read_dir(&dir) {
                Ok(entries) => entries
                    .filter_map(Result::ok)
                    .all(|entry| entry.file_name() == LONG_NAME_FILE),
                Err(e) if is_not_found(&e) => true,
                Err(_) => false,
            };
            if !empty {
                break;
            }
            let _ = fs::remove_file(dir.join(LONG_NAME_FILE));
            match fs::remove_dir(&dir) {
                Ok(()) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => {
                    log::debug!("directory store: pruning {}: {e}", dir.display());
                    break;
                }
            }
            match dir.parent() {
                Some(parent) => dir = parent.to_path_buf(),
                None => break,
            }
        }
        dir
    }

    fn put(
        &self,
        key: &str,
        body: &[u8],
        opts: &PutOptions,
        sse: &SseMode,
    ) -> StoreResult<PutOutput> {
        rules::check_key(key)?;
        rules::check_single_put_size(key, body.len() as u64)?;
        let etag = rules::md5_etag(body);
        let path = layout::object_path(&self.objects, key);
        let mut tmp = self.prepare(key, &path)?;
        let header = Header::new(
            key,
            body.len() as u64,
            etag.clone(),
            rules::normalize_metadata(&opts.metadata),
        )
        .with_sse(sse.object_sse());
        let written = tmp
            .write_all(body)
            .and_then(|()| tmp.finish_object(&header));
        if let Err(e) = written {
            drop(tmp);
            self.prune(&path.parent(&self.objects), &self.lock());
            return Err(io_error(key, e));
        }
        self.commit(key, tmp, &path, Some(opts))?;
        Ok(PutOutput { etag })
    }

    /// DeleteObject, only while the object's ETag is `if_match` when one is given.
    fn delete(&self, key: &str, if_match: Option<&str>) -> StoreResult<()> {
        rules::check_key(key)?;
        let path = layout::object_path(&self.objects, key);
        let remaining = {
            let guard = self.lock();
            if let Some(wanted) = if_match {
                match self.open_object(key) {
                    Ok(file) if !rules::etag_matches(wanted, &file.header.etag) => {
                        return Err(StoreError::PreconditionFailed { key: key.into() });
                    }
                    Ok(_) => {}
                    Err(StoreError::NotFound { .. }) => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
            match fs::remove_file(&path.file) {
                Ok(()) => {}
                Err(e) if is_not_found(&e) => return Ok(()),
                Err(e) => return Err(io_error(key, e)),
            }
            self.prune(&path.parent(&self.objects), &guard)
        };
        sync_dir(&remaining).map_err(|e| io_error(key, e))
    }

    /// CopyObject; `attempts` is set to how many tries (SSE-C source keys) it took.
    fn copy(
        &self,
        src: &str,
        dst: &str,
        opts: &CopyOptions,
        sse: &SseMode,
        attempts: &mut u64,
    ) -> StoreResult<PutOutput> {
        rules::check_key(src)?;
        rules::check_key(dst)?;
        let source = self.open_object(src)?;
        // The source is read with the client's SSE-C keys (copy-source headers).
        let (allowed, tries) = sse.check_read("CopyObject", src, &source.header.sse);
        *attempts = tries;
        allowed?;
        if let Some(wanted) = &opts.source_if_match {
            if !rules::etag_matches(wanted, &source.header.etag) {
                return Err(StoreError::PreconditionFailed { key: src.into() });
            }
        }
        let metadata = match &opts.metadata {
            MetadataDirective::Copy if src == dst => return Err(copy_onto_itself(src)),
            MetadataDirective::Copy => source.header.metadata.clone(),
            MetadataDirective::Replace(metadata) => rules::normalize_metadata(metadata),
        };
        let path = layout::object_path(&self.objects, dst);
        let mut tmp = self.prepare(dst, &path)?;
        let mut md5 = Md5::new();
        let written = source.copy_body(&mut tmp, &mut md5).and_then(|()| {
            // A copy is a single-part object: its ETag is the MD5 of the body.
            let etag = rules::etag_from_md5(&md5.finalize().into());
            // The copy gets the SSE this request asks for, not the source's, as in S3.
            let header =
                Header::new(dst, tmp.written(), etag.clone(), metadata).with_sse(sse.object_sse());
            tmp.finish_object(&header).map(|()| etag)
        });
        let etag = match written {
            Ok(etag) => etag,
            Err(e) => {
                drop(tmp);
                self.prune(&path.parent(&self.objects), &self.lock());
                return Err(io_error(dst, e));
            }
        };
        self.commit(dst, tmp, &path, None)?;
        Ok(PutOutput { etag })
    }
}

#[async_trait]
impl ObjectStore for DirStore {
    async fn head(&self, key: &str) -> StoreResult<ObjectInfo> {
        let key = key.to_owned();
        let sse = self.sse.clone();
        let (result, attempts) = self
            .run(move |inner| Ok(inner.head(&key, &sse)))
            .await
            .unwrap_or_else(|e| (Err(e), 1));
        self.record_attempts(Op::Head, attempts, 0);
        result
    }

    async fn get(
        &self,
        key: &str,
        range: Option<Range<u64>>,
        if_match: Option<&str>,
    ) -> StoreResult<GetOutput> {
        let key = key.to_owned();
        let if_match = if_match.map(str::to_owned);
        let sse = self.sse.clone();
        let (result, attempts) = self
            .run(move |inner| {
                let mut attempts = 1;
                let result = inner.get(&key, range, if_match.as_deref(), &sse, &mut attempts);
                Ok((result, attempts))
            })
            .await
            .unwrap_or_else(|e| (Err(e), 1));
        let bytes = result.as_ref().map_or(0, |out| out.data.len() as u64);
        self.record_attempts(Op::Get, attempts, bytes);
        result
    }

    async fn put(&self, key: &str, body: Bytes, opts: PutOptions) -> StoreResult<PutOutput> {
        self.inner.stats.record(Op::Put, body.len() as u64);
        let key = key.to_owned();
        let sse = self.sse.clone();
        self.run(move |inner| inner.put(&key, &body, &opts, &sse))
            .await
    }

    async fn create_multipart(&self, key: &str, opts: PutOptions) -> StoreResult<String> {
        self.inner.stats.record(Op::CreateMultipart, 0);
        let key = key.to_owned();
        let sse = self.sse.object_sse();
        self.run(move |inner| inner.create_multipart(&key, &opts, sse))
            .await
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Bytes,
    ) -> StoreResult<String> {
        self.inner.stats.record(Op::UploadPart, body.len() as u64);
        let key = key.to_owned();
        let upload_id = upload_id.to_owned();
        let sse = self.sse.object_sse();
        self.run(move |inner| inner.upload_part(&key, &upload_id, part_number, &body, &sse))
            .await
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> StoreResult<PutOutput> {
        self.inner.stats.record(Op::CompleteMultipart, 0);
        let key = key.to_owned();
        let upload_id = upload_id.to_owned();
        let parts = parts.to_vec();
        self.run(move |inner| inner.complete_multipart(&key, &upload_id, &parts))
            .await
    }

    async fn set_upload_if_match(
        &self,
        key: &str,
        upload_id: &str,
        if_match: Option<String>,
    ) -> StoreResult<()> {
        let key = key.to_owned();
        let upload_id = upload_id.to_owned();
        self.run(move |inner| inner.set_upload_if_match(&key, &upload_id, if_match))
            .await
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> StoreResult<()> {
        self.inner.stats.record(Op::AbortMultipart, 0);
        let key = key.to_owned();
        let upload_id = upload_id.to_owned();
        self.run(move |inner| inner.abort_multipart(&key, &upload_id))
            .await
    }

    async fn list_uploads(&self, prefix: &str) -> StoreResult<Vec<PendingUpload>> {
        self.inner.stats.record(Op::List, 0);
        let prefix = prefix.to_owned();
        self.run(move |inner| inner.list_uploads(&prefix)).await
    }

    async fn list(&self, req: &ListRequest) -> StoreResult<ListPage> {
        self.inner.stats.record(Op::List, 0);
        let req = req.clone();
        self.run(move |inner| inner.list(&req)).await
    }

    async fn copy(&self, src: &str, dst: &str, opts: CopyOptions) -> StoreResult<PutOutput> {
        let src = src.to_owned();
        let dst = dst.to_owned();
        let sse = self.sse.clone();
        let (result, attempts) = self
            .run(move |inner| {
                let mut attempts = 1;
                let result = inner.copy(&src, &dst, &opts, &sse, &mut attempts);
                Ok((result, attempts))
            })
            .await
            .unwrap_or_else(|e| (Err(e), 1));
        self.record_attempts(Op::Copy, attempts, 0);
        result
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        self.inner.stats.record(Op::Delete, 0);
        let key = key.to_owned();
        self.run(move |inner| inner.delete(&key, None)).await
    }

    async fn delete_if_match(&self, key: &str, etag: &str) -> StoreResult<()> {
        self.inner.stats.record(Op::Delete, 0);
        let key = key.to_owned();
        let etag = etag.to_owned();
        self.run(move |inner| inner.delete(&key, Some(&etag))).await
    }

    fn stats(&self) -> Option<StatsSnapshot> {
        Some(self.inner.stats.snapshot())
    }
}

#[cfg(test)]
mod tests;
