//! The namespace: resolving paths against the store, listings, and the operations that add,
//! remove or move names.
//!
//! A file is an object at `prefix/path`; a directory exists when its marker `prefix/path/`
//! exists or any key lies below it. Files still being written for the first time exist only
//! in the open-file table until their first close, so `create` costs no request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use bytes::Bytes;
use futures::stream::{self, StreamExt};

use crate::crypto::ObjectSealer;
use crate::crypto::format::{open_all_with_metadata, plaintext_len, seal_all_with};
use crate::store::{ListRequest, Metadata, PutOptions, StoreError};

use super::attr::{self, Kind, StoredAttrs};
use super::inode::{is_below, join, parent_of};
use super::listing::Known;
use super::read::RemoteVersion;
use super::upload::FileState;
use super::{Attr, DirEntry, Entry, Fs, FsError, FsResult, Handle, OpenFile};

/// The vault's own directory at the mount root; hidden and protected.
pub const VAULT_DIR: &str = ".s3cryptfs";
/// Parallel HEADs when a listing fetches attributes.
const HEAD_PARALLELISM: usize = 32;
/// Longest object key S3 accepts.
const MAX_KEY_LEN: usize = 1024;

/// What one LIST of a directory found, and the files in it that exist only locally so far.
#[derive(Default)]
struct Listed {
    /// Names in the store (kind `None`: a file whose kind its HEAD tells).
    names: std::collections::BTreeMap<String, Option<Kind>>,
    /// The listing entries of the stored files.
    files: Vec<crate::store::ObjectInfo>,
    /// Files being written for the first time, with their kinds.
    pending: Vec<(String, Kind)>,
}

impl Fs {
    /// Validate a name given by the kernel and return `parent/name`.
    pub(super) fn child_path(&self, parent: u64, name: &std::ffi::OsStr) -> FsResult<String> {
        let (ppath, pkind) = self.path_of(parent)?;
        if pkind != Kind::Dir {
            return Err(FsError::NotDir);
        }
        let name = name.to_str().ok_or_else(|| {
            FsError::InvalidArgument(format!("file name {name:?} is not UTF-8; S3 keys must be"))
        })?;
        if name.len() > 255 {
            return Err(FsError::NameTooLong);
        }
        if name.is_empty() || name == "." || name == ".." || name.contains('/') {
            return Err(FsError::InvalidArgument(format!("bad name {name:?}")));
        }
        let path = join(&ppath, name);
        if self.key_of(&path).len() + 1 > MAX_KEY_LEN {
            return Err(FsError::NameTooLong);
        }
        Ok(path)
    }

    pub(super) fn is_reserved(path: &str) -> bool {
        path == VAULT_DIR || is_below(path, VAULT_DIR)
    }

    /// What is at `path`: a pending local file, the cache, or the store.
    pub(crate) async fn resolve(&self, path: &str) -> FsResult<Entry> {
        if path.is_empty() {
            return Ok(Entry::Dir {
                attrs: self.default_attrs(Kind::Dir, self.mounted_at),
            });
        }
        if Self::is_reserved(path) {
            return Ok(Entry::Missing);
        }
        let ino = self.lock_inodes().ino_of(path);
        if let Some(of) = ino.and_then(|i| self.open_file(i)) {
            let st = of.state.lock().await;
            if !st.unlinked && st.path == path {
                return Ok(pending_entry(&st));
            }
        }
        if let Some(e) = self.entries.get(path).await {
            return Ok(e);
        }
        match self.listings.check(path) {
            Known::Absent => return Ok(Entry::Missing),
            Known::Present => {}
            Known::Refresh => match self.refresh_listing(path).await {
                Ok(Known::Absent) => return Ok(Entry::Missing),
                Ok(_) => {}
                // Ask about the name itself instead.
                Err(e) => log::debug!("refreshing the listing of {path:?}'s directory: {e}"),
            },
            Known::Unknown => {
                if self.listings.missed(path) {
                    // A second miss in this directory within the TTL: it is being scanned
                    // (rsync stats every name). One listing with the files' attributes
                    // fetched in parallel answers this lookup and the ones to come.
                    let dir = parent_of(path);
                    match self.list_dir_limited(dir, Some(1)).await {
                        Ok(_) => {
                            if let Some(e) = self.entries.get(path).await {
                                return Ok(e);
                            }
                            if self.listings.check(path) == Known::Absent {
                                return Ok(Entry::Missing);
                            }
                        }
                        Err(e) => log::debug!("listing {dir:?} for a scan failed: {e}"),
                    }
                }
            }
        }
        let entry = self.fetch_entry(path).await?;
        self.entries.insert(path.to_string(), entry.clone()).await;
        Ok(entry)
    }

    /// List `path`'s directory again (one page, names only) for [`Known::Refresh`] and say
    /// what the fresh listing knows of `path`.
    async fn refresh_listing(&self, path: &str) -> FsResult<Known> {
        let dir = parent_of(path);
        if self.list_names(dir, Some(1)).await?.is_none() {
            self.listings.forget(dir);
            return Ok(Known::Unknown);
        }
        Ok(self.listings.check(path))
    }

    async fn fetch_entry(&self, path: &str) -> FsResult<Entry> {
        let key = self.key_of(path);
        let marker = self.dir_prefix(path);
        // Files are the common case (rsync stats every one): one HEAD answers them. Only a
        // miss asks about a directory marker.
        match self.store.head(&key).await {
            Ok(info) => return Ok(self.entry_from_head(&info)),
            Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        // Not a file: a directory marker (the common case: mkdir makes one), else keys below.
        match self.store.head(&marker).await {
            Ok(info) => {
                let defaults = self.default_attrs(Kind::Dir, info.last_modified);
                return Ok(Entry::Dir {
                    attrs: attr::from_metadata(info.metadata.as_ref(), defaults),
                });
            }
            Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let page = self
            .store
            .list(&ListRequest {
                prefix: marker,
                delimiter: None,
                continuation_token: None,
                max_keys: 1,
            })
            .await?;
        if page.objects.is_empty() && page.common_prefixes.is_empty() {
            Ok(Entry::Missing)
        } else {
            Ok(Entry::Dir {
                attrs: self.default_attrs(Kind::Dir, self.mounted_at),
            })
        }
    }

    pub async fn lookup(&self, parent: u64, name: &std::ffi::OsStr) -> FsResult<Attr> {
        let path = self.child_path(parent, name)?;
        let entry = self.resolve(&path).await?;
        let kind = match &entry {
            Entry::File { kind, .. } => *kind,
            Entry::Dir { .. } => Kind::Dir,
            Entry::Missing => return Err(FsError::NotFound),
        };
        let ino = self.lock_inodes().intern(&path, kind);
        if let Some(of) = self.open_file(ino) {
            let st = of.state.lock().await;
            return Ok(self.attr_of_state(ino, &st));
        }
        self.attr_of_entry(ino, &entry)
    }

    /// List directory `ino` once (one paginated LIST with delimiter) and keep the entries in a
    /// handle; attributes of the files are fetched in parallel and cached, so the `stat` of
    /// every entry that follows (`ls -l`, rsync) costs no request.
    pub async fn opendir(&self, ino: u64) -> FsResult<u64> {
        let (path, kind) = self.path_of(ino)?;
        if kind != Kind::Dir {
            return Err(FsError::NotDir);
        }
        let entries = self.list_dir(&path).await?;
        Ok(self.new_fh(Handle::Dir { entries }))
    }

    pub fn readdir(&self, fh: u64) -> FsResult<Vec<DirEntry>> {
        match &*self.handle(fh)? {
            Handle::Dir { entries } => Ok(entries.clone()),
            Handle::File { .. } => Err(FsError::NotDir),
        }
    }

    pub fn releasedir(&self, fh: u64) {
        self.lock_handles().remove(&fh);
    }

    /// The names in directory `path` with their kinds and inode numbers.
    pub async fn list_dir(&self, path: &str) -> FsResult<Vec<DirEntry>> {
        // Without a page limit the listing always runs to its end.
        Ok(self.list_dir_limited(path, None).await?.unwrap_or_default())
    }

    /// One LIST (with delimiter, paginated) of directory `path`: its names (kind `None` for
    /// files, kind unknown until their HEAD) and its files' listing entries. `None` when it
    /// takes more than `max_pages` pages. A complete listing is kept in `self.listings`.
    async fn list_names(&self, path: &str, max_pages: Option<usize>) -> FsResult<Option<Listed>> {
        let prefix = self.dir_prefix(path);
        let generation = self.listings.generation();
        let started = std::time::Instant::now();
        let mut listed = Listed::default();
        let (names_map, files) = (&mut listed.names, &mut listed.files);
        let mut token = None;
        let mut pages = 0;
        loop {
            if max_pages.is_some_and(|m| pages >= m) {
                return Ok(None);
            }
            pages += 1;
            let page = self
                .store
                .list(&ListRequest {
                    prefix: prefix.clone(),
                    delimiter: Some("/".into()),
                    continuation_token: token.take(),
                    max_keys: 1000,
                })
                .await?;
            for cp in page.common_prefixes {
                let name = cp[prefix.len()..].trim_end_matches('/').to_string();
                if name.is_empty() || (path.is_empty() && name == VAULT_DIR) {
                    continue;
                }
                names_map.entry(name).or_insert(Some(Kind::Dir));
            }
            for obj in page.objects {
                let name = obj.key[prefix.len()..].to_string();
                if name.is_empty() {
                    continue; // this directory's own marker
                }
                names_map.insert(name, None);
                files.push(obj);
            }
            match page.next_continuation_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        // Files being written for the first time exist only locally, but they exist.
        let open: Vec<Arc<OpenFile>> = self.lock_open().values().cloned().collect();
        for of in open {
            let st = of.state.lock().await;
            if !st.unlinked && !st.path.is_empty() && parent_of(&st.path) == path {
                let name = st.path[if path.is_empty() { 0 } else { path.len() + 1 }..].to_string();
                listed.pending.push((name, st.kind));
            }
        }
        let known = (listed.names.keys())
            .chain(listed.pending.iter().map(|(name, _)| name))
            .cloned()
            .collect();
        self.listings.put(path, known, started, generation);
        Ok(Some(listed))
    }

    /// [`Self::list_dir`], giving up (`None`) when the LIST takes more than `max_pages` pages.
    async fn list_dir_limited(
        &self,
        path: &str,
        max_pages: Option<usize>,
    ) -> FsResult<Option<Vec<DirEntry>>> {
        let Some(Listed {
            mut names,
            files,
            pending,
        }) = self.list_names(path, max_pages).await?
        else {
            return Ok(None);
        };
        let prefix = self.dir_prefix(path);
        // Attributes of files and directories not cached yet: HEADs in parallel (of the object,
        // of the directory's marker), cached for the stats to come.
        let mut unknown: Vec<(String, String, Option<crate::store::ObjectInfo>)> = Vec::new();
        for obj in &files {
            let name = obj.key[prefix.len()..].to_string();
            let p = join(path, &name);
            match self.entries.get(&p).await {
                Some(Entry::File { kind, version, .. }) if version.etag == obj.etag => {
                    names.insert(name, Some(kind));
                }
                _ => unknown.push((p, name, Some(obj.clone()))),
            }
        }
        for (name, kind) in &names {
            let p = join(path, name);
            if *kind == Some(Kind::Dir) && self.entries.get(&p).await.is_none() {
                unknown.push((p, name.clone(), None));
            }
        }
        let heads: Vec<(String, String, Option<Entry>)> = stream::iter(unknown)
            .map(|(p, name, obj)| async move {
                let entry = match obj {
                    Some(obj) => self.listed_file_entry(&obj).await,
                    None => self.listed_dir_entry(&p).await,
                };
                (p, name, entry)
            })
            .buffer_unordered(HEAD_PARALLELISM)
            .collect()
            .await;
        for (p, name, entry) in heads {
            match entry {
                Some(e) => {
                    let kind = match &e {
                        Entry::File { kind, .. } => *kind,
                        _ => Kind::Dir,
                    };
                    self.entries.insert(p, e).await;
                    names.insert(name, Some(kind));
                }
                None => {
                    names.remove(&name);
                }
            }
        }
        // Files being written for the first time exist only locally.
        for (name, kind) in pending {
            names.insert(name, Some(kind));
        }
        let mut inodes = self.lock_inodes();
        Ok(Some(
            names
                .into_iter()
                .map(|(name, kind)| {
                    let kind = kind.unwrap_or(Kind::File);
                    let ino = inodes.intern(&join(path, &name), kind);
                    DirEntry { ino, name, kind }
                })
                .collect(),
        ))
    }

    /// The entry of a file a listing found, from its HEAD (`None`: deleted since).
    async fn listed_file_entry(&self, obj: &crate::store::ObjectInfo) -> Option<Entry> {
        match self.store.head(&obj.key).await {
            Ok(info) => Some(self.entry_from_head(&info)),
            Err(StoreError::NotFound { .. }) => None,
            Err(e) => {
                log::warn!("HEAD {} during listing failed: {e}", obj.key);
                // Fall back to what LIST said; attributes get defaults.
                let kind = Kind::File;
                let plain = plaintext_len(obj.size, self.keys.block_size()).unwrap_or(0);
                Some(Entry::File {
                    kind,
                    version: RemoteVersion {
                        key: obj.key.clone(),
                        etag: obj.etag.clone(),
                        plaintext_len: plain,
                        carried: Metadata::new(),
                    },
                    attrs: self.default_attrs(kind, obj.last_modified),
                })
            }
        }
    }

    /// The entry of a subdirectory a listing found: its marker's attributes, or defaults for
    /// a directory that exists only through the keys below it.
    async fn listed_dir_entry(&self, path: &str) -> Option<Entry> {
        let marker = self.dir_prefix(path);
        let attrs = match self.store.head(&marker).await {
            Ok(info) => {
                let defaults = self.default_attrs(Kind::Dir, info.last_modified);
                attr::from_metadata(info.metadata.as_ref(), defaults)
            }
            Err(StoreError::NotFound { .. }) => self.default_attrs(Kind::Dir, self.mounted_at),
            Err(e) => {
                log::warn!("HEAD {marker} during listing failed: {e}");
                return Some(Entry::Dir {
                    attrs: self.default_attrs(Kind::Dir, self.mounted_at),
                });
            }
        };
        Some(Entry::Dir { attrs })
    }

    pub(crate) async fn put_dir_marker(&self, path: &str, attrs: &StoredAttrs) -> FsResult<()> {
        let opts = PutOptions {
            metadata: attr::to_metadata(Kind::Dir, attrs),
            ..Default::default()
        };
        self.store
            .put(&self.dir_prefix(path), Bytes::new(), opts)
            .await?;
        Ok(())
    }

    fn new_attrs(&self, mode: u32, uid: u32, gid: u32) -> StoredAttrs {
        StoredAttrs {
            perm: mode & 0o7777,
            uid,
            gid,
            mtime: SystemTime::now(),
        }
    }

    /// Refuse to create where something exists or in the vault's own directory.
    async fn check_absent(&self, path: &str) -> FsResult<()> {
        if Self::is_reserved(path) {
            return Err(FsError::NotPermitted(format!(
                "{VAULT_DIR} is reserved for the vault's configuration"
            )));
        }
        match self.resolve(path).await? {
            Entry::Missing => Ok(()),
            _ => Err(FsError::Exists),
        }
    }

    pub async fn mkdir(
        &self,
        parent: u64,
        name: &std::ffi::OsStr,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> FsResult<Attr> {
        self.check_writable()?;
        let path = self.child_path(parent, name)?;
        self.check_absent(&path).await?;
        let attrs = self.new_attrs(mode, uid, gid);
        self.put_dir_marker(&path, &attrs).await?;
        self.listings.made_dir(&path);
        let entry = Entry::Dir { attrs };
        self.entries.insert(path.clone(), entry.clone()).await;
        let ino = self.lock_inodes().intern(&path, Kind::Dir);
        self.attr_of_entry(ino, &entry)
    }

    /// Whether directory `path` holds anything besides its marker (stored or pending).
    pub(super) async fn dir_has_children(&self, path: &str) -> FsResult<bool> {
        let prefix = self.dir_prefix(path);
        let page = self
            .store
            .list(&ListRequest {
                prefix: prefix.clone(),
                delimiter: None,
                continuation_token: None,
                max_keys: 2,
            })
            .await?;
        if page.objects.iter().any(|o| o.key != prefix) {
            return Ok(true);
        }
        let pending: Vec<Arc<OpenFile>> = self.lock_open().values().cloned().collect();
        for of in pending {
            let st = of.state.lock().await;
            if !st.unlinked && is_below(&st.path, path) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    pub async fn rmdir(&self, parent: u64, name: &std::ffi::OsStr) -> FsResult<()> {
        self.check_writable()?;
        let path = self.child_path(parent, name)?;
        match self.resolve(&path).await? {
            Entry::Dir { .. } => {}
            Entry::Missing => return Err(FsError::NotFound),
            Entry::File { .. } => return Err(FsError::NotDir),
        }
        if self.dir_has_children(&path).await? {
            return Err(FsError::NotEmpty);
        }
        self.store.delete(&self.dir_prefix(&path)).await?;
        self.listings.removed(&path);
        self.entries.insert(path.clone(), Entry::Missing).await;
        self.lock_inodes().remove_path(&path);
        Ok(())
    }

    /// Create and open a new regular file. Nothing is sent to the store until the first
    /// close/fsync.
    #[allow(clippy::too_many_arguments)]
    pub async fn create(
        &self,
        parent: u64,
        name: &std::ffi::OsStr,
        mode: u32,
        flags: i32,
        uid: u32,
        gid: u32,
    ) -> FsResult<(Attr, u64)> {
        self.check_writable()?;
        let path = self.child_path(parent, name)?;
        if Self::is_reserved(&path) {
            return Err(FsError::NotPermitted(format!("{VAULT_DIR} is reserved")));
        }
        match self.resolve(&path).await? {
            Entry::Missing => {}
            Entry::Dir { .. } => return Err(FsError::IsDir),
            Entry::File { kind, .. } => {
                if flags & libc::O_EXCL != 0 {
                    return Err(FsError::Exists);
                }
                let ino = self.lock_inodes().intern(&path, kind);
                let fh = self.open(ino, flags).await?;
                let attr = self.getattr(ino).await?;
                return Ok((attr, fh));
            }
        }
        let ino = self.lock_inodes().intern(&path, Kind::File);
        let state = FileState::new_empty(path.clone(), self.new_attrs(mode, uid, gid));
        let attr = self.attr_of_state(ino, &state);
        let file = Arc::new(OpenFile {
            state: tokio::sync::Mutex::new(state),
            handles: AtomicU64::new(1),
        });
        self.lock_open().insert(ino, file.clone());
        self.listings.added(&path);
        self.entries.invalidate(&path).await;
        let acc = flags & libc::O_ACCMODE;
        let fh = self.new_fh(Handle::File {
            ino,
            file,
            writable: acc == libc::O_WRONLY || acc == libc::O_RDWR,
            append: flags & libc::O_APPEND != 0,
            seq: std::sync::Mutex::new(super::ReadAhead::default()),
        });
        Ok((attr, fh))
    }

    pub async fn unlink(&self, parent: u64, name: &std::ffi::OsStr) -> FsResult<()> {
        self.check_writable()?;
        let path = self.child_path(parent, name)?;
        let entry = self.resolve(&path).await?;
        match entry {
            Entry::Missing => return Err(FsError::NotFound),
            Entry::Dir { .. } => return Err(FsError::IsDir),
            Entry::File { .. } => {}
        }
        let ino = self.lock_inodes().ino_of(&path);
        let mut remote = matches!(
            self.entries.get(&path).await,
            Some(Entry::File { .. }) | None
        );
        if let Some(of) = ino.and_then(|i| self.open_file(i)) {
            let mut st = of.state.lock().await;
            remote = st
                .base
                .as_ref()
                .is_some_and(|b| b.key == self.key_of(&path));
            if of.handles.load(Ordering::SeqCst) > 0 {
                // Open handles keep reading the content after the name is gone.
                if st.stream.is_some() {
                    self.settle_stream(&mut st).await?;
                    remote = true;
                }
                st.materialize(&self.reader, &self.staging).await?;
            } else if let Some(stream) = st.stream.take() {
                stream.abort(&self.store);
            }
            st.unlinked = true;
        }
        if remote {
            self.store.delete(&self.key_of(&path)).await?;
        }
        self.listings.removed(&path);
        self.entries.insert(path.clone(), Entry::Missing).await;
        self.lock_inodes().remove_path(&path);
        Ok(())
    }

    pub async fn symlink(
        &self,
        parent: u64,
        name: &std::ffi::OsStr,
        target: &std::path::Path,
        uid: u32,
        gid: u32,
    ) -> FsResult<Attr> {
        self.check_writable()?;
        let path = self.child_path(parent, name)?;
        self.check_absent(&path).await?;
        let target = target.as_os_str().as_encoded_bytes();
        let key = self.key_of(&path);
        let crypto_err = |e| FsError::Crypto {
            key: key.clone(),
            source: e,
        };
        let sealer = ObjectSealer::new(&self.keys).map_err(crypto_err)?;
        let body = seal_all_with(&sealer, target).map_err(crypto_err)?;
        let carried = sealer.crypto_metadata();
        let attrs = self.new_attrs(0o777, uid, gid);
        let mut metadata = attr::to_metadata(Kind::Symlink, &attrs);
        metadata.extend(carried.clone());
        let out = self
            .store
            .put(
                &key,
                Bytes::from(body),
                PutOptions {
                    metadata,
                    ..Default::default()
                },
            )
            .await?;
        let entry = Entry::File {
            kind: Kind::Symlink,
            version: RemoteVersion {
                key,
                etag: out.etag,
                plaintext_len: target.len() as u64,
                carried,
            },
            attrs,
        };
        self.listings.added(&path);
        self.entries.insert(path.clone(), entry.clone()).await;
        let ino = self.lock_inodes().intern(&path, Kind::Symlink);
        self.attr_of_entry(ino, &entry)
    }

    pub async fn readlink(&self, ino: u64) -> FsResult<Vec<u8>> {
        let (path, _) = self.path_of(ino)?;
        let Entry::File {
            kind: Kind::Symlink,
            version,
            ..
        } = self.resolve(&path).await?
        else {
            return Err(FsError::InvalidArgument("not a symlink".into()));
        };
        let got = self
            .store
            .get(&version.key, None, Some(&version.etag))
            .await?;
        open_all_with_metadata(&self.keys, &got.data, got.info.metadata.as_ref()).map_err(|e| {
            FsError::Crypto {
                key: version.key.clone(),
                source: e,
            }
        })
    }

    /// Hard links cannot be represented in an object store.
    pub fn link(&self) -> FsResult<Attr> {
        Err(FsError::NotPermitted(
            "hard links are not supported by s3cryptfs (objects have one name)".into(),
        ))
    }
}

fn pending_entry(st: &FileState) -> Entry {
    Entry::File {
        kind: st.kind,
        version: RemoteVersion {
            key: String::new(),
            etag: String::new(),
            plaintext_len: st.size,
            carried: Metadata::new(),
        },
        attrs: st.attrs,
    }
}
