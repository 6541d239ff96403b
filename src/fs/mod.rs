//! The file system, independent of FUSE: inodes, handles and every operation as an async fn
//! over an [`ObjectStore`](crate::store::ObjectStore) and the vault's keys, so the whole file
//! system runs in unit tests without a kernel. `crate::fuse` is the only adapter to the kernel;
//! nothing here knows of it.
//!
//! `Fs` orchestrates components that each own their state:
//! - `namespace` (with `inode` and `listing`): inode numbers <-> parent + name with the
//!   kernel's lookup counts, the entry cache and directory listings. `attr`: attributes <->
//!   object metadata.
//! - `lookup`: resolving names against the store, listings; `names`: mkdir/rmdir, create,
//!   unlink, symlinks; `rename`; `setattr`.
//! - `read`: ranged GETs of covering blocks through the sealed-object seam, block cache
//!   (`block_cache`). `prefetch`: the read-ahead policy. `memory`: the one memory budget of
//!   the cache, the fetches in flight and the upload buffers (`--memory-limit`).
//! - `upload`: open-file state, sealed local staging, upload on close/fsync (whole or
//!   streamed while written). `conflict`: another client replaced a file this mount was
//!   writing; this mount's version is kept as a conflict copy.
//!
//! Consistency: close-to-open. `close` and `fsync` return only once the file is durable in the
//! store; attributes and listings are cached for `metadata_ttl`.

mod acl;
mod activity;
pub mod attr;
mod attr_cache;
mod block_cache;
mod conflict;
mod dir_handle;
mod dir_times;
mod dirstream;
pub mod error;
pub mod inode;
pub mod keymap;
#[cfg(test)]
mod lifetime_tests;
mod listing;
mod lookup;
mod memory;
mod names;
mod namespace;
mod prefetch;
pub mod read;
mod rename;
mod setattr;
mod settled;
mod status;
mod upload;
mod xattr;
mod xattr_cache;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use crate::crypto::VaultKeys;
use crate::sealed::SealedStore;
use crate::store::DynStore;

use activity::Activity;
pub use activity::{ActivityCounts, PendingFile, UploadState};
pub use attr::{Attr, Kind, StoredAttrs};
pub use error::{FsError, FsResult};
pub use lookup::VAULT_DIR;
pub(crate) use namespace::Entry;
use namespace::Namespace;
pub use namespace::{DirEntry, NamespaceError};
use prefetch::ReadAhead;
use read::{BlockReader, RemoteVersion};
pub use status::{CacheStatus, FsStatus, MemoryStatus, MetadataCache, RequestCount};
pub(crate) use upload::OpenFile;
use upload::{FileState, StagingArea, Uploader};

/// Mount-wide settings of the file system.
#[derive(Clone, Debug)]
pub struct FsOptions {
    /// Owner and modes for objects that carry no attributes of their own.
    pub uid: u32,
    pub gid: u32,
    pub file_mode: u32,
    pub dir_mode: u32,
    /// How long attributes and listings are trusted before asking the store again.
    pub metadata_ttl: Duration,
    /// After the TTL, a file's attributes are reused without a HEAD while fresh listings show
    /// its object unchanged, if it was last modified at least this long before the HEAD that
    /// read them (`settled.rs`: larger than the skew between this machine's and the server's
    /// clocks).
    pub settled_after: Duration,
    /// Upper bound of decrypted blocks kept in memory.
    pub block_cache_bytes: u64,
    /// The memory budget of the block cache, fetches in flight and upload part buffers and
    /// bodies, across all open files (`--memory-limit`).
    pub memory_limit: u64,
    /// Where sealed staging files live (never plaintext).
    pub staging_dir: PathBuf,
    /// Where the attributes [`Self::settled_after`] allows to reuse are kept across mounts
    /// (`attr_cache.rs`, one subdirectory per vault); `None`: in memory only.
    pub attr_cache_dir: Option<PathBuf>,
    pub read_only: bool,
}

impl FsOptions {
    /// Defaults for tests and embedders: the current user, 0644/0755, 1 s TTL, 64 MiB cache
    /// within a 64 MiB memory budget.
    pub fn for_current_user(staging_dir: PathBuf) -> Self {
        // SAFETY: getuid/getgid have no preconditions and cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        FsOptions {
            uid,
            gid,
            file_mode: 0o644,
            dir_mode: 0o755,
            metadata_ttl: Duration::from_secs(1),
            settled_after: DEFAULT_SETTLED_AFTER,
            block_cache_bytes: 64 * 1024 * 1024,
            memory_limit: 64 * 1024 * 1024,
            staging_dir,
            attr_cache_dir: None,
            read_only: false,
        }
    }
}

/// Per-handle state.
pub(crate) enum Handle {
    File {
        ino: u64,
        file: Arc<OpenFile>,
        writable: bool,
        append: bool,
        /// Where this handle reads sequentially, for the read-ahead.
        seq: Mutex<ReadAhead>,
    },
    /// A directory being read, one listing page at a time (`dirstream.rs`).
    Dir {
        stream: Box<tokio::sync::Mutex<dir_handle::DirStream>>,
    },
}

/// Default [`FsOptions::settled_after`].
pub const DEFAULT_SETTLED_AFTER: Duration = Duration::from_secs(5);

/// Largest plaintext file (S3's 5 TiB object limit, minus encryption overhead).
pub const MAX_FILE_SIZE: u64 = 5 * 1024 * 1024 * 1024 * 1024 - 256 * 1024 * 1024 * 1024;
/// How long attribute-only changes of a closed file wait to be folded into a rename.
const ATTR_FLUSH_DELAY: Duration = Duration::from_millis(500);

pub struct Fs {
    store: DynStore,
    /// Paths <-> store keys (the vault's prefix; names plaintext or encrypted).
    names: keymap::KeyMap,
    keys: Arc<VaultKeys>,
    opts: FsOptions,
    /// Inodes, the entry cache and listings.
    ns: Namespace,
    open_files: Mutex<HashMap<u64, Arc<OpenFile>>>,
    handles: Mutex<HashMap<u64, Arc<Handle>>>,
    next_fh: AtomicU64,
    /// The sealed-object seam: symlinks are read and written whole through it.
    sealed: SealedStore,
    reader: BlockReader,
    uploader: Uploader,
    staging: Arc<StagingArea>,
    /// Time of the root and of directories that exist only implicitly (no marker).
    mounted_at: SystemTime,
    /// Attributes of the mount root set by `chmod`/`chown`/`touch` on it: the root has no
    /// object of its own (its attributes come from the mount options), so a change lasts until
    /// unmount (docs/SEMANTICS.md). `None`: the mount options' defaults.
    root_attrs: Mutex<Option<attr::StoredAttrs>>,
    /// Counters for status reports and metrics (`activity.rs`, `status.rs`).
    activity: Arc<Activity>,
    /// Settled attributes kept on local disk across mounts.
    attr_cache: Option<Arc<attr_cache::AttrCache>>,
    /// Opened xattr sidecars and the default ACLs of directories (`xattr.rs`).
    xattr_caches: xattr_cache::XattrCaches,
    /// Directory times changed by entry operations, not yet in the directories' markers.
    dir_times: dir_times::DirTimes,
    dir_owners: dir_times::DirOwners,
    /// For background tasks (deferred attribute writes, upload retries).
    me: std::sync::Weak<Fs>,
}

impl Fs {
    pub fn new(
        store: DynStore,
        prefix: String,
        keys: Arc<VaultKeys>,
        opts: FsOptions,
    ) -> Result<Arc<Fs>, FsError> {
        let prefix = if prefix.is_empty() || prefix.ends_with('/') {
            prefix
        } else {
            format!("{prefix}/")
        };
        let staging = Arc::new(StagingArea::new(&opts.staging_dir)?);
        if !keys.requires_attribute_records() {
            log::warn!(
                "this vault's config has no attribute_records marker (made before attribute \
                 records): files without a record show the unauthenticated mode, owner and \
                 times of their plaintext metadata, which the bucket's owner can forge, until \
                 the vault is upgraded"
            );
        }
        // One seam for reading and writing sealed objects: its opener cache is shared.
        let sealed = SealedStore::new(store.clone(), keys.clone());
        let activity = Arc::new(Activity::default());
        let reader = BlockReader::new(
            sealed.clone(),
            opts.block_cache_bytes,
            memory::MemoryBudget::new(opts.memory_limit),
            activity.clone(),
        );
        let uploader = Uploader::new(sealed.clone(), staging.clone());
        let ns = Namespace::new(opts.metadata_ttl, opts.settled_after);
        let names = keymap::KeyMap::new(prefix, keys.name_cipher());
        let attr_cache = (opts.attr_cache_dir.as_deref()).and_then(|dir| {
            attr_cache::AttrCache::open(dir, &keys, opts.settled_after)
                .map_err(|e| log::warn!("no attribute cache in {}: {e}", dir.display()))
                .ok()
                .map(Arc::new)
        });
        Ok(Arc::new_cyclic(|me| Fs {
            store,
            names,
            keys,
            opts,
            ns,
            open_files: Mutex::new(HashMap::new()),
            handles: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            sealed,
            reader,
            uploader,
            staging,
            mounted_at: SystemTime::now(),
            root_attrs: Mutex::new(None),
            activity,
            attr_cache,
            xattr_caches: xattr_cache::XattrCaches::default(),
            dir_times: dir_times::DirTimes::default(),
            dir_owners: dir_times::DirOwners::default(),
            me: me.clone(),
        }))
    }

    pub fn options(&self) -> &FsOptions {
        &self.opts
    }

    pub fn store(&self) -> &DynStore {
        &self.store
    }

    /// Object key of a file at `path` (its name encrypted if the vault's names are).
    pub fn key_of(&self, path: &str) -> String {
        self.names.key_of(path)
    }

    /// Object key prefix of the entries of directory `path` (also its marker key).
    pub fn dir_prefix(&self, path: &str) -> String {
        self.names.dir_prefix(path)
    }

    /// Whether this vault stores names encrypted.
    pub fn encrypted_names(&self) -> bool {
        self.names.encrypted()
    }

    fn lock_open(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<OpenFile>>> {
        self.open_files.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_handles(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Handle>>> {
        self.handles.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn path_of(&self, ino: u64) -> FsResult<(String, Kind)> {
        Ok(self.ns.path_of(ino)?)
    }

    /// Whether a file is open on `ino` (its open-file state keeps the inode alive).
    fn is_open(&self, ino: u64) -> bool {
        self.lock_open().contains_key(&ino)
    }

    fn open_file(&self, ino: u64) -> Option<Arc<OpenFile>> {
        self.lock_open().get(&ino).cloned()
    }

    fn check_writable(&self) -> FsResult<()> {
        if self.opts.read_only {
            Err(FsError::ReadOnly)
        } else {
            Ok(())
        }
    }

    fn attr_of_state(&self, ino: u64, st: &FileState) -> Attr {
        Attr {
            ino,
            kind: st.kind,
            size: st.size,
            perm: st.attrs.perm,
            uid: st.attrs.uid,
            gid: st.attrs.gid,
            mtime: st.attrs.mtime,
            ctime: st.attrs.ctime,
        }
    }

    fn attr_of_entry(&self, ino: u64, entry: &Entry) -> FsResult<Attr> {
        entry.attr(ino).ok_or(FsError::NotFound)
    }

    pub async fn getattr(&self, ino: u64) -> FsResult<Attr> {
        if let Some(of) = self.open_file(ino) {
            let st = of.state.lock().await;
            return Ok(self.attr_of_state(ino, &st));
        }
        let (path, _) = self.path_of(ino)?;
        let entry = self.resolve(&path).await?;
        self.attr_of_entry(ino, &entry)
    }

    fn new_fh(&self, handle: Handle) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.lock_handles().insert(fh, Arc::new(handle));
        fh
    }

    fn handle(&self, fh: u64) -> FsResult<Arc<Handle>> {
        self.lock_handles()
            .get(&fh)
            .cloned()
            .ok_or(FsError::BadHandle)
    }

    /// Open file `ino` with `open(2)` flags. Returns the handle number.
    pub async fn open(&self, ino: u64, flags: i32) -> FsResult<u64> {
        let acc = flags & libc::O_ACCMODE;
        let writable = acc == libc::O_WRONLY || acc == libc::O_RDWR;
        if writable || flags & libc::O_TRUNC != 0 {
            self.check_writable()?;
        }
        let (path, kind) = self.path_of(ino)?;
        if kind == Kind::Dir {
            return Err(FsError::IsDir);
        }
        let file = self.get_or_open_file(ino, &path).await?;
        if flags & libc::O_TRUNC != 0 && writable {
            let mut st = file.state.lock().await;
            if st.size != 0 || st.base.is_some() {
                // Through the same guard as a truncating setattr.
                let r = self.truncate_locked(&mut st, 0).await;
                if let Err(e) = r {
                    drop(st);
                    self.drop_handle_ref(ino, &file).await;
                    return Err(e);
                }
            }
        }
        Ok(self.new_fh(Handle::File {
            ino,
            file,
            writable,
            append: flags & libc::O_APPEND != 0,
            seq: Mutex::new(self.reader.read_ahead()),
        }))
    }

    /// The shared open-file state of `ino`, loaded from the store if not open yet, with one
    /// more handle reference for the caller (dropped with `drop_handle_ref`). The reference is
    /// taken under the open-table lock while the entry is still the table's: a release that
    /// drops the last reference at the same time (FUSE sends it after `close` returned, so
    /// rsync's `utimes` of the file it just closed races it) would otherwise remove the entry
    /// from under the caller, whose changes no rename or flush would then see.
    async fn get_or_open_file(&self, ino: u64, path: &str) -> FsResult<Arc<OpenFile>> {
        // A version that lost a conflict stays stale for the handles that had it open (their
        // release may still be on its way); a new open starts from what the store holds now.
        let stale = match self.open_file(ino) {
            Some(of) if !of.state.lock().await.stale => {
                let open = self.lock_open();
                if open.get(&ino).is_some_and(|cur| Arc::ptr_eq(cur, &of)) {
                    of.handles.fetch_add(1, Ordering::SeqCst);
                    return Ok(of);
                }
                // Released and dropped meanwhile (with nothing left to store): load afresh.
                None
            }
            other => other,
        };
        let entry = self.resolve(path).await?;
        let state = match entry {
            Entry::File {
                kind: Kind::File,
                version,
                attrs,
            } => {
                if version.plaintext_len == 0 {
                    // No read will fetch a block of an empty file: check its whole (header
                    // and the empty final block's tag, 132 bytes) now, so an emptied or
                    // forged object is EIO rather than an empty file.
                    self.sealed.read_all(&version).await?;
                }
                FileState::from_remote(path.to_string(), version, attrs)
            }
            // The kernel opens fifos, sockets and devices itself (they are nodes only) and
            // follows symlinks before opening: neither reaches here through FUSE.
            Entry::File { kind, .. } => {
                return Err(FsError::NotSupported(format!("opening a {kind:?} node")));
            }
            Entry::Dir { .. } => return Err(FsError::IsDir),
            Entry::Missing => return Err(FsError::NotFound),
        };
        let mut open = self.lock_open();
        let of = match open.get(&ino) {
            Some(cur) if stale.as_ref().is_none_or(|s| !Arc::ptr_eq(cur, s)) => cur.clone(),
            _ => {
                let of = Arc::new(OpenFile::new(state, 0));
                open.insert(ino, of.clone());
                of
            }
        };
        of.handles.fetch_add(1, Ordering::SeqCst);
        Ok(of)
    }

    /// Bytes `offset..offset+size` of an open file (fewer at its end). Usually a slice of the
    /// block cache, not a copy.
    pub async fn read(&self, fh: u64, offset: u64, size: u32) -> FsResult<Bytes> {
        let handle = self.handle(fh)?;
        let Handle::File { file, seq, .. } = &*handle else {
            return Err(FsError::IsDir);
        };
        let (ahead, sequential, reader_at) = {
            let mut seq = seq.lock().unwrap_or_else(|p| p.into_inner());
            let ahead = seq.on_read(offset, size as u64, |n| self.reader.read_ahead_limits(n));
            (ahead, seq.sequential(), seq.reader_at())
        };
        let mut st = file.state.lock().await;
        if st.stream_pins(offset, size as u64, self.reader.block_size() as u64) {
            self.settle_stream(&mut st).await?;
        }
        if st.has_local_content() {
            let data = st.read(offset, size as u64, &self.reader).await?;
            return Ok(Bytes::from(data));
        }
        let Some(base) = st.base.clone() else {
            return Ok(Bytes::new());
        };
        drop(st);
        if let Some(range) = ahead
            && let Some(fs) = self.me.upgrade()
        {
            let v = base.clone();
            tokio::spawn(async move { fs.reader.prefetch(&v, range, &reader_at).await });
        }
        let data = self.reader.read(&base, offset, size as u64).await?;
        if sequential {
            self.reader
                .passed(&base, offset, offset + data.len() as u64);
        }
        Ok(data)
    }

    /// Write `data` at `offset` (or at the end for O_APPEND handles). Returns bytes written.
    pub async fn write(&self, fh: u64, offset: u64, data: &[u8]) -> FsResult<u32> {
        self.check_writable()?;
        let handle = self.handle(fh)?;
        let Handle::File {
            file,
            writable,
            append,
            ..
        } = &*handle
        else {
            return Err(FsError::IsDir);
        };
        if !*writable {
            return Err(FsError::BadHandle);
        }
        let mut st = file.state.lock().await;
        if st.stale {
            return Err(FsError::Conflict {
                key: self.key_of(&st.path),
            });
        }
        let offset = if *append { st.size } else { offset };
        if offset.saturating_add(data.len() as u64) > MAX_FILE_SIZE {
            return Err(FsError::TooLarge);
        }
        let bs = self.reader.block_size() as u64;
        if st.stream_pins(offset, data.len() as u64, bs) {
            self.settle_stream(&mut st).await?;
        }
        let key = self.key_of(&st.path);
        let written = self
            .uploader
            .write(&key, &mut st, offset, data, &self.reader)
            .await;
        st.activity.written(&st.path, st.size);
        written?;
        Ok(data.len() as u32)
    }

    /// Make the file durable: its content if dirty, and pending attributes (fsync, unmount,
    /// the deferred attribute flush).
    async fn sync_file(&self, file: &OpenFile) -> FsResult<()> {
        self.sync_file_with(file, true).await
    }

    /// `close`: content if dirty; attribute-only changes are left to the deferred flush or a
    /// following rename, so closing a read-only handle after `fchmod` costs nothing.
    async fn sync_file_with(&self, file: &OpenFile, attrs_too: bool) -> FsResult<()> {
        let mut st = file.state.lock().await;
        self.sync_locked(&mut st, attrs_too).await
    }

    /// `flush` or `fsync` of a handle. A handle whose file lost a conflict fails every time,
    /// not only the first: its data is at the conflict name, not at the file's name, and the
    /// `close` that was told may not have been the application's (a forked child closing the
    /// descriptor it inherited sends a flush too, and nobody reads its error). Checked under
    /// the state's lock, so a flush that conflicts while this call waits is seen.
    async fn sync_handle(&self, file: &OpenFile, attrs_too: bool) -> FsResult<()> {
        let mut st = file.state.lock().await;
        if st.stale {
            return Err(FsError::Conflict {
                key: self.key_of(&st.path),
            });
        }
        self.sync_locked(&mut st, attrs_too).await
    }

    async fn sync_locked(&self, st: &mut FileState, attrs_too: bool) -> FsResult<()> {
        if !st.needs_sync() {
            return Ok(());
        }
        if !st.dirty {
            if !attrs_too {
                return Ok(());
            }
            return self.sync_attrs(st).await;
        }
        self.upload_locked(st).await
    }

    /// Upload the content of a locked file state and cache the new version.
    async fn upload_locked(&self, st: &mut FileState) -> FsResult<()> {
        let key = self.key_of(&st.path);
        let old = st.base.clone();
        if old.as_ref().is_none_or(|b| b.key != key) {
            // A new name: a shortened one needs its name object.
            self.put_name_object(&st.path).await?;
        }
        let activity = st.activity.clone();
        activity.upload_started(&st.path, st.size);
        let result = match self.uploader.upload(&key, st, &self.reader).await {
            Ok(version) => {
                self.activity.upload_stored(version.plaintext_len);
                self.stored(st, old, version).await;
                Ok(())
            }
            Err(e) if e.is_conflict() => self.resolve_conflict(st, old).await,
            Err(e) => {
                log::error!(
                    "upload of {key} failed, data kept in local staging and retried later: {e}"
                );
                Err(e.into())
            }
        };
        // A conflict whose copy was made leaves nothing to upload: not a failing upload.
        let failed = result.as_ref().err().filter(|_| st.needs_sync());
        if failed.is_some() {
            self.activity.upload_failed();
        }
        activity.upload_ended(failed.map(ToString::to_string));
        result
    }

    /// `st` was uploaded as `version`, replacing `old`: drop the old version's cached blocks
    /// and cache the new one.
    async fn stored(&self, st: &FileState, old: Option<RemoteVersion>, version: RemoteVersion) {
        log::debug!("uploaded {} ({} bytes)", version.key, version.plaintext_len);
        if let Some(old) = old {
            self.reader.forget(&old.key, &old.etag).await;
        }
        let entry = Entry::File {
            kind: st.kind,
            version,
            attrs: st.attrs.clone(),
        };
        // The name is an object now: a listing taken while it was only local (or
        // while this upload was on its way) must not say it is absent once the
        // entry is gone (evicted, or dropped by a directory rename).
        self.ns.added(&st.path, Some(entry)).await;
    }

    /// Complete a streaming upload before an operation that needs the bytes of its streamed
    /// parts back or changes them (see `upload/stream.rs`).
    async fn settle_stream(&self, st: &mut FileState) -> FsResult<()> {
        if st.stream.is_none() {
            return Ok(());
        }
        self.upload_locked(st).await
    }

    /// `close` of one descriptor: uploads the content if dirty.
    pub async fn flush(&self, fh: u64) -> FsResult<()> {
        let handle = self.handle(fh)?;
        match &*handle {
            Handle::File { file, .. } => self.sync_handle(file, false).await,
            Handle::Dir { .. } => Ok(()),
        }
    }

    /// Content and attributes durable.
    pub async fn fsync(&self, fh: u64) -> FsResult<()> {
        let handle = self.handle(fh)?;
        match &*handle {
            Handle::File { file, .. } => self.sync_handle(file, true).await,
            Handle::Dir { .. } => Ok(()),
        }
    }

    /// `fsync` of directory `ino`: its entries are stored already; its times changed by
    /// entry operations are written now.
    pub async fn fsync_dir(&self, ino: u64) -> FsResult<()> {
        let (path, _) = self.path_of(ino)?;
        self.write_dir_times(&path).await
    }

    pub async fn release(self: &Arc<Self>, fh: u64) -> FsResult<()> {
        let handle = self.lock_handles().remove(&fh);
        let Some(handle) = handle else {
            return Err(FsError::BadHandle);
        };
        if let Handle::File { ino, file, .. } = &*handle {
            // Usually a no-op: flush already uploaded. Catches writes after the last flush.
            let res = self.sync_file_with(file, false).await;
            self.drop_handle_ref(*ino, file).await;
            self.ns.closed(*ino, &|i| self.is_open(i));
            let pending_attrs = file.state.lock().await.attrs_dirty;
            if res.is_err() {
                self.spawn_retry(*ino, file.clone());
            } else if pending_attrs {
                self.schedule_attr_flush(*ino, file.clone());
            }
            return res;
        }
        Ok(())
    }

    async fn drop_handle_ref(&self, ino: u64, file: &Arc<OpenFile>) {
        let left = file
            .handles
            .fetch_sub(1, Ordering::SeqCst)
            .saturating_sub(1);
        if left == 0 {
            let st = file.state.lock().await;
            if !st.needs_sync() {
                let mut open = self.lock_open();
                if let Some(cur) = open.get(&ino) {
                    if Arc::ptr_eq(cur, file) && file.handles.load(Ordering::SeqCst) == 0 {
                        open.remove(&ino);
                    }
                }
            }
        }
    }

    /// Keep retrying the upload of a file whose last close failed, with backoff.
    fn spawn_retry(self: &Arc<Self>, ino: u64, file: Arc<OpenFile>) {
        let fs = self.clone();
        tokio::spawn(async move {
            let mut delay = Duration::from_secs(1);
            loop {
                tokio::time::sleep(delay).await;
                match fs.sync_file(&file).await {
                    Ok(()) => {
                        log::info!("retried upload of inode {ino} succeeded");
                        let st = file.state.lock().await;
                        let clean = !st.needs_sync();
                        drop(st);
                        if clean && file.handles.load(Ordering::SeqCst) == 0 {
                            let mut open = fs.lock_open();
                            if open.get(&ino).is_some_and(|c| Arc::ptr_eq(c, &file)) {
                                open.remove(&ino);
                            }
                        }
                        return;
                    }
                    Err(_) => delay = (delay * 2).min(Duration::from_secs(60)),
                }
            }
        });
    }

    /// Upload every dirty file (on unmount and SIGTERM). Returns the first error after trying
    /// them all.
    pub async fn flush_all(&self) -> Result<(), FsError> {
        let files: Vec<Arc<OpenFile>> = self.lock_open().values().cloned().collect();
        let mut first_err = None;
        for f in files {
            if let Err(e) = self.sync_file(&f).await {
                first_err.get_or_insert(e);
            }
        }
        if let Err(e) = self.write_all_dir_times().await {
            first_err.get_or_insert(e);
        }
        if let Some(cache) = &self.attr_cache {
            cache.flush();
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Number of files (and directories' times) not yet in the store.
    pub async fn dirty_count(&self) -> usize {
        let files: Vec<Arc<OpenFile>> = self.lock_open().values().cloned().collect();
        let mut n = self.dir_times.len();
        for f in files {
            let st = f.state.lock().await;
            if st.needs_sync() {
                n += 1;
            }
        }
        n
    }

    pub fn statfs(&self) -> StatFs {
        StatFs {
            block_size: 4096,
            blocks: 1 << 40,
            blocks_free: 1 << 40,
            files: 1 << 40,
            files_free: 1 << 40,
            name_max: 255,
        }
    }

    /// Plaintext bytes of dirty file blocks staged on local disk right now.
    pub fn staged_bytes(&self) -> u64 {
        self.staging.staged_bytes()
    }

    /// Drop every cached attribute and listing (tests; SIGHUP).
    pub fn invalidate_caches(&self) {
        self.ns.invalidate_caches();
    }

    pub fn root_ino(&self) -> u64 {
        self.ns.root_ino()
    }

    /// The kernel dropped `nlookup` references to `ino` (FUSE `forget`): the inode is freed
    /// once no reference, open file or inode below holds it.
    pub fn forget(&self, ino: u64, nlookup: u64) {
        self.ns.forget(ino, nlookup, &|i| self.is_open(i));
    }

    /// [`Self::forget`] for many inodes (FUSE `batch_forget`).
    pub fn batch_forget(&self, nodes: impl IntoIterator<Item = (u64, u64)>) {
        for (ino, nlookup) in nodes {
            self.forget(ino, nlookup);
        }
    }

    /// Inodes this mount keeps (the root included): bounded by what the kernel holds.
    pub fn inode_count(&self) -> usize {
        self.ns.inode_count()
    }

    /// The kernel's lookup count of `ino` as this mount counts it; `None` when freed.
    pub fn lookup_count(&self, ino: u64) -> Option<u64> {
        self.ns.lookup_count(ino)
    }
}

/// Numbers for statfs(2). S3 has no capacity, so the numbers are large and constant.
#[derive(Clone, Copy, Debug)]
pub struct StatFs {
    pub block_size: u32,
    pub blocks: u64,
    pub blocks_free: u64,
    pub files: u64,
    pub files_free: u64,
    pub name_max: u32,
}
