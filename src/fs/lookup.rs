//! Resolving names against the store: lookup, directory listings (opendir/readdir) and the
//! entry of a path, answered by the namespace's caches when it can and by HEAD/LIST when not.
//!
//! A file is an object at `prefix/path`; a directory exists when its marker `prefix/path/`
//! exists or any key lies below it. Files still being written for the first time exist only
//! in the open-file table until their first close, and are listed from there.

use std::sync::Arc;

use futures::stream::{self, StreamExt};

use std::time::SystemTime;

use crate::crypto::CryptoError;
use crate::crypto::format::metadata::crypto_metadata;
use crate::crypto::format::plaintext_len;
use crate::crypto::names::MAX_FULL_SEGMENT_LEN;
use crate::store::{ListRequest, Metadata, ObjectInfo, Pager, StoreError};

use super::attr::{self, Attr, Kind, StoredAttrs};
use super::error::{FsError, FsResult};
use super::inode::{is_below, join, parent_of};
use super::keymap::Decoded;
use super::listing::Known;
use super::namespace::{DirEntry, Entry};
use super::read::RemoteVersion;
use super::upload::FileState;
use super::{Fs, OpenFile};

/// The vault's own directory at the mount root; hidden and protected.
pub const VAULT_DIR: &str = ".s3cryptfs";
/// Parallel HEADs when a listing fetches attributes.
const HEAD_PARALLELISM: usize = 32;
/// Longest object key S3 accepts.
const MAX_KEY_LEN: usize = 1024;

/// What one LIST of a directory found, and the files in it that exist only locally so far.
#[derive(Default)]
pub(super) struct Listed {
    /// Names in the store (kind `None`: a file whose kind its HEAD tells).
    names: std::collections::BTreeMap<String, Option<Kind>>,
    /// The listing entries of the stored files, with their names.
    files: Vec<(String, crate::store::ObjectInfo)>,
    /// Files being written for the first time, with their kinds.
    pub(super) pending: Vec<(String, Kind)>,
}

impl Listed {
    /// Add the next page of the same listing (a file wins over a directory of the same name).
    fn merge(&mut self, page: Listed) {
        for (name, kind) in page.names {
            match kind {
                None => {
                    self.names.insert(name, None);
                }
                Some(_) => {
                    self.names.entry(name).or_insert(kind);
                }
            }
        }
        self.files.extend(page.files);
        self.pending.extend(page.pending);
    }

    /// Every name listed, stored or pending.
    pub(super) fn known_names(&self) -> std::collections::HashSet<String> {
        (self.names.keys())
            .chain(self.pending.iter().map(|(name, _)| name))
            .cloned()
            .collect()
    }
}

impl Fs {
    /// The mount root's attributes: the mount options', or what `setattr` made of them.
    pub(super) fn root_attrs(&self) -> StoredAttrs {
        let set = self
            .root_attrs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        set.unwrap_or_else(|| self.default_attrs(Kind::Dir, self.mounted_at))
    }

    pub(super) fn default_attrs(&self, kind: Kind, mtime: SystemTime) -> StoredAttrs {
        StoredAttrs {
            perm: match kind {
                Kind::Dir => self.opts.dir_mode,
                Kind::Symlink => 0o777,
                // Files, and nodes (which always carry a record, so never take this).
                _ => self.opts.file_mode,
            },
            uid: self.opts.uid,
            gid: self.opts.gid,
            mtime,
            xattrs: Default::default(),
            ctime: mtime,
        }
    }

    /// The entry of the file object a HEAD (or GET) describes. Its attributes and type are its
    /// attribute record's, opened with the object's key in the AAD; the size must be a valid
    /// sealed size and, when the record says one, that one. Anything else is `Crypto`
    /// (EIO for this name alone). Without a record in a vault that does not require one, the
    /// unauthenticated plaintext metadata of older writers is read as before.
    pub(super) fn entry_from_head(&self, info: &ObjectInfo) -> FsResult<Entry> {
        let bad = |reason: String| FsError::Crypto {
            key: info.key.clone(),
            source: CryptoError::Corrupt(reason),
        };
        let Some(plain) = plaintext_len(info.size, self.keys.block_size()) else {
            return Err(bad(format!(
                "size {} is not the size of any encrypted object (truncated, extended or \
                 replaced)",
                info.size
            )));
        };
        let carried = info
            .metadata
            .as_ref()
            .map(crypto_metadata)
            .unwrap_or_default();
        let (kind, attrs, content_salt) =
            match self.sealed.open_record(&info.key, info.metadata.as_ref())? {
                Some(rec) => {
                    let (kind, attrs) = attr::from_record(&rec, info.last_modified).map_err(bad)?;
                    if kind == Kind::Dir {
                        return Err(bad("a directory's attribute record on a file object".into()));
                    }
                    if kind.is_special() && plain != 0 {
                        return Err(bad("a fifo, socket or device node with content".into()));
                    }
                    if let Some(size) = rec.size
                        && size != plain
                    {
                        return Err(bad(format!(
                            "{plain} plaintext bytes stored, {size} in the attribute record"
                        )));
                    }
                    (kind, attrs, Some(rec.content_salt))
                }
                None => {
                    let kind = info
                        .metadata
                        .as_ref()
                        .and_then(attr::kind_from_metadata)
                        .filter(|k| *k != Kind::Dir)
                        .unwrap_or(Kind::File);
                    let defaults = self.default_attrs(kind, info.last_modified);
                    (
                        kind,
                        attr::from_metadata(info.metadata.as_ref(), defaults),
                        None,
                    )
                }
            };
        Ok(Entry::File {
            kind,
            version: RemoteVersion {
                key: info.key.clone(),
                etag: info.etag.clone(),
                plaintext_len: plain,
                carried,
                content_salt,
            },
            attrs,
        })
    }

    /// [`Self::entry_from_head`] of a HEAD just made of the file at `path`, remembered for
    /// listings that show the object unchanged later (`settled.rs`).
    pub(super) fn entry_headed(&self, path: &str, info: &ObjectInfo) -> FsResult<Entry> {
        let entry = self.entry_from_head(info)?;
        if let Entry::File { version, .. } = &entry {
            let now = SystemTime::now();
            (self.ns.settled()).headed(path, info, &entry, now);
            // Only authenticated records go to disk, never plaintext metadata of old writers.
            if let Some(cache) = &self.attr_cache
                && version.content_salt.is_some()
            {
                cache.headed(info, now);
            }
        }
        Ok(entry)
    }

    /// The entry of the file at `path` if `obj` (a fresh listing's entry for it) shows its
    /// object unchanged since a HEAD of this mount (`settled.rs`) or, after a remount, one
    /// kept on disk (`attr_cache.rs`), whose record must authenticate again.
    fn settled_entry(&self, path: &str, obj: &ObjectInfo) -> Option<Entry> {
        if let Some(e) = self.ns.settled().listed(path, obj) {
            return Some(e);
        }
        let cache = self.attr_cache.as_ref()?;
        let info = cache.listed(obj)?;
        match self.entry_from_head(&info) {
            Ok(e @ Entry::File { .. }) => Some(e),
            Ok(_) => None,
            Err(e) => {
                log::warn!(
                    "{}: its cached attributes do not authenticate ({e}); asking the store",
                    obj.key
                );
                cache.forget(&obj.key);
                None
            }
        }
    }

    /// The entry of a directory whose marker a HEAD describes: the marker's attribute record
    /// (a directory's, for this key, with no content), or in a vault that does not require
    /// records and a marker without one, its plaintext metadata.
    pub(super) fn dir_entry_from_head(&self, info: &ObjectInfo) -> FsResult<Entry> {
        let bad = |reason: String| FsError::Crypto {
            key: info.key.clone(),
            source: CryptoError::Corrupt(reason),
        };
        let defaults = self.default_attrs(Kind::Dir, info.last_modified);
        let attrs = match self.sealed.open_record(&info.key, info.metadata.as_ref())? {
            Some(rec) => {
                let (kind, attrs) = attr::from_record(&rec, info.last_modified).map_err(bad)?;
                if kind != Kind::Dir || rec.content_salt != [0; 32] || info.size != 0 {
                    return Err(bad(
                        "a directory marker whose attribute record is not a directory's".into(),
                    ));
                }
                attrs
            }
            None => attr::from_metadata(info.metadata.as_ref(), defaults),
        };
        Ok(Entry::Dir { attrs })
    }

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
        let key_len = self.key_of(&path).len();
        // The marker of a directory (one `/` more) must fit too.
        if key_len + 1 > MAX_KEY_LEN {
            log::warn!(
                "{path:?}: its store key would be {key_len} bytes{}, more than the {MAX_KEY_LEN}                  S3 allows (ENAMETOOLONG)",
                if self.encrypted_names() {
                    " with encrypted names"
                } else {
                    ""
                }
            );
            return Err(FsError::NameTooLong);
        }
        Ok(path)
    }

    pub(super) fn is_reserved(path: &str) -> bool {
        path == VAULT_DIR || is_below(path, VAULT_DIR)
    }

    /// What is at `path`: a pending local file, the cache, or the store; a directory with the
    /// times this mount's entry operations gave it and has not written yet.
    pub(crate) async fn resolve(&self, path: &str) -> FsResult<Entry> {
        let mut entry = self.resolve_stored(path).await?;
        if let Entry::Dir { attrs } = &mut entry {
            self.dir_times.overlay(path, attrs);
            self.dir_owners.seen(path, attrs);
        }
        Ok(entry)
    }

    async fn resolve_stored(&self, path: &str) -> FsResult<Entry> {
        if path.is_empty() {
            return Ok(Entry::Dir {
                attrs: self.root_attrs(),
            });
        }
        if Self::is_reserved(path) {
            return Ok(Entry::Missing);
        }
        let ino = self.ns.ino_of(path);
        if let Some(of) = ino.and_then(|i| self.open_file(i)) {
            let st = of.state.lock().await;
            if !st.unlinked && st.path == path {
                return Ok(pending_entry(&st));
            }
        }
        if let Some(e) = self.ns.cached(path).await {
            return Ok(e);
        }
        match self.ns.listings().check(path) {
            Known::Absent => return Ok(Entry::Missing),
            Known::Present => {}
            Known::Refresh => match self.refresh_listing(path).await {
                Ok(Known::Absent) => return Ok(Entry::Missing),
                Ok(_) => {
                    // Unchanged since a HEAD of it that is still remembered.
                    if let Some(e) = self.ns.cached(path).await {
                        return Ok(e);
                    }
                }
                // Ask about the name itself instead.
                Err(e) => log::debug!("refreshing the listing of {path:?}'s directory: {e}"),
            },
            Known::Unknown => {
                if self.ns.listings().missed(path) {
                    // A second miss in this directory within the TTL: it is being scanned
                    // (rsync stats every name). One listing with the files' attributes
                    // fetched in parallel answers this lookup and the ones to come.
                    let dir = parent_of(path);
                    match self.list_dir_limited(dir, Some(1)).await {
                        Ok(_) => {
                            if let Some(e) = self.ns.cached(path).await {
                                return Ok(e);
                            }
                            if self.ns.listings().check(path) == Known::Absent {
                                return Ok(Entry::Missing);
                            }
                        }
                        Err(e) => log::debug!("listing {dir:?} for a scan failed: {e}"),
                    }
                }
            }
        }
        let entry = self.fetch_entry(path).await?;
        self.ns.cache_fetched(path, entry.clone()).await;
        Ok(entry)
    }

    /// List `path`'s directory again (one page, names only) for [`Known::Refresh`] and say
    /// what the fresh listing knows of `path`.
    async fn refresh_listing(&self, path: &str) -> FsResult<Known> {
        let dir = parent_of(path);
        let Some(listed) = self.list_names(dir, Some(1)).await? else {
            self.ns.listings().forget(dir);
            return Ok(Known::Unknown);
        };
        // Files the listing shows unchanged since their HEAD need no other: the lookups of a
        // scan (`du`, rsync, `ls -l` after the TTL) find them cached.
        for (name, obj) in &listed.files {
            let p = join(dir, name);
            if let Some(e) = self.settled_entry(&p, obj) {
                self.ns.cache_fetched(&p, e).await;
            }
        }
        Ok(self.ns.listings().check(path))
    }

    async fn fetch_entry(&self, path: &str) -> FsResult<Entry> {
        let key = self.key_of(path);
        let marker = self.dir_prefix(path);
        // Files are the common case (rsync stats every one): one HEAD answers them. Only a
        // miss asks about a directory marker.
        match self.store.head(&key).await {
            Ok(info) => return self.entry_headed(path, &info),
            Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        // Not a file: a directory marker (the common case: mkdir makes one), else keys below.
        match self.store.head(&marker).await {
            Ok(info) => return self.dir_entry_from_head(&info),
            Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let page = self
            .store
            .list_names(&ListRequest {
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
        let ino = self.ns.remember(&path, kind);
        if let Some(of) = self.open_file(ino) {
            let st = of.state.lock().await;
            return Ok(self.attr_of_state(ino, &st));
        }
        self.attr_of_entry(ino, &entry)
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
        let generation = self.ns.listings().generation();
        let started = std::time::Instant::now();
        let mut listed = Listed::default();
        let mut token = None;
        let mut pages = 0;
        let mut pager = Pager::new(&self.dir_prefix(path));
        loop {
            if max_pages.is_some_and(|m| pages >= m) {
                return Ok(None);
            }
            pages += 1;
            let (page, next) = self.list_page(path, token.take(), &mut pager).await?;
            listed.merge(page);
            match next {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        listed.pending = self.pending_in(path).await;
        self.ns
            .listings()
            .put(path, listed.known_names(), started, generation);
        Ok(Some(listed))
    }

    /// One page of the LIST of directory `path` from `token` (the first page for `None`),
    /// checked by `pager`, its shortened names resolved; with the next page's token.
    pub(super) async fn list_page(
        &self,
        path: &str,
        token: Option<String>,
        pager: &mut Pager,
    ) -> FsResult<(Listed, Option<String>)> {
        let prefix = pager.prefix().to_owned();
        let mut listed = Listed::default();
        let (names_map, files) = (&mut listed.names, &mut listed.files);
        // Shortened names: (hash, listed key, the object when a file).
        let mut long: Vec<(String, String, Option<ObjectInfo>)> = Vec::new();
        let page = self
            .store
            .list_names(&ListRequest {
                prefix: prefix.clone(),
                delimiter: Some("/".into()),
                continuation_token: token,
                max_keys: 1000,
            })
            .await?;
        pager.check(&page)?;
        for cp in page.common_prefixes {
            let below = cp.strip_prefix(prefix.as_str()).unwrap_or("");
            let segment = below.strip_suffix('/').unwrap_or(below);
            if path.is_empty() && segment == VAULT_DIR {
                continue;
            }
            match self.names.listed(path, segment) {
                Decoded::Name(name) => {
                    names_map.entry(name).or_insert(Some(Kind::Dir));
                }
                Decoded::Long(hash) => long.push((hash, cp, None)),
                Decoded::NameObject => self.names.hide(&cp, "a name object's name"),
                Decoded::Bad(why) => self.names.hide(&cp, &why),
            }
        }
        for obj in page.objects {
            let Some(segment) = obj.key.strip_prefix(prefix.as_str()) else {
                log::warn!("listing {prefix:?}: skipping {:?}: not below it", obj.key);
                continue;
            };
            if segment.is_empty() {
                continue; // this directory's own marker
            }
            match self.names.listed(path, segment) {
                Decoded::Name(name) => {
                    names_map.insert(name.clone(), None);
                    files.push((name, obj));
                }
                Decoded::Long(hash) => long.push((hash, obj.key.clone(), Some(obj))),
                Decoded::NameObject => {}
                Decoded::Bad(why) => self.names.hide(&obj.key, &why),
            }
        }
        self.resolve_long_names(path, long, &mut listed).await?;
        Ok((listed, page.next_continuation_token))
    }

    /// Files being written for the first time in directory `path`: they exist only locally,
    /// but they exist.
    pub(super) async fn pending_in(&self, path: &str) -> Vec<(String, Kind)> {
        let mut pending = Vec::new();
        let open: Vec<Arc<OpenFile>> = self.lock_open().values().cloned().collect();
        for of in open {
            let st = of.state.lock().await;
            if !st.unlinked && !st.path.is_empty() && parent_of(&st.path) == path {
                let name = st.path[if path.is_empty() { 0 } else { path.len() + 1 }..].to_string();
                pending.push((name, st.kind));
            }
        }
        pending
    }

    /// The names of shortened entries a listing found, from their name objects (one GET each,
    /// in parallel). An entry whose name object is missing or does not decrypt is hidden.
    async fn resolve_long_names(
        &self,
        path: &str,
        long: Vec<(String, String, Option<ObjectInfo>)>,
        listed: &mut Listed,
    ) -> FsResult<()> {
        let fetched: Vec<_> = stream::iter(long)
            .map(|(hash, listed_key, obj)| async move {
                let key = self.names.name_object_key(path, &hash);
                let got = self
                    .store
                    .get(&key, Some(0..MAX_FULL_SEGMENT_LEN as u64 + 1), None)
                    .await;
                (hash, listed_key, obj, key, got)
            })
            .buffer_unordered(HEAD_PARALLELISM)
            .collect()
            .await;
        for (hash, listed_key, obj, key, got) in fetched {
            let content = match got {
                Ok(out) => out.data,
                Err(StoreError::NotFound { .. }) => {
                    self.names
                        .hide(&listed_key, &format!("its name object {key} is missing"));
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            match (self.names.long_name(path, &hash, &content), obj) {
                (Decoded::Name(name), Some(obj)) => {
                    listed.names.insert(name.clone(), None);
                    listed.files.push((name, obj));
                }
                (Decoded::Name(name), None) => {
                    listed.names.entry(name).or_insert(Some(Kind::Dir));
                }
                (Decoded::Bad(why), _) => self.names.hide(&listed_key, &why),
                _ => {}
            }
        }
        Ok(())
    }

    /// [`Self::list_dir`], giving up (`None`) when the LIST takes more than `max_pages` pages.
    async fn list_dir_limited(
        &self,
        path: &str,
        max_pages: Option<usize>,
    ) -> FsResult<Option<Vec<DirEntry>>> {
        let Some(listed) = self.list_names(path, max_pages).await? else {
            return Ok(None);
        };
        Ok(Some(self.entries_of(path, listed).await))
    }

    /// The entries of (part of) a listing of directory `path`, numbered, with the attributes
    /// of the files and directories not cached yet fetched and cached.
    pub(super) async fn entries_of(&self, path: &str, listed: Listed) -> Vec<DirEntry> {
        let Listed {
            mut names,
            files,
            pending,
        } = listed;
        // Attributes of files and directories not cached yet: HEADs in parallel (of the object,
        // of the directory's marker), cached for the stats to come.
        let mut unknown: Vec<(String, String, Option<crate::store::ObjectInfo>)> = Vec::new();
        for (name, obj) in &files {
            let name = name.clone();
            let p = join(path, &name);
            match self.ns.cached(&p).await {
                Some(Entry::File { kind, version, .. }) if version.etag == obj.etag => {
                    names.insert(name, Some(kind));
                }
                _ => match self.settled_entry(&p, obj) {
                    Some(e @ Entry::File { kind, .. }) => {
                        self.ns.cache_fetched(&p, e).await;
                        names.insert(name, Some(kind));
                    }
                    _ => unknown.push((p, name, Some(obj.clone()))),
                },
            }
        }
        for (name, kind) in &names {
            let p = join(path, name);
            if *kind == Some(Kind::Dir) && self.ns.cached(&p).await.is_none() {
                unknown.push((p, name.clone(), None));
            }
        }
        let heads: Vec<(String, String, FsResult<Option<Entry>>)> = stream::iter(unknown)
            .map(|(p, name, obj)| async move {
                let entry = match obj {
                    Some(obj) => self.listed_file_entry(&p, &obj).await,
                    None => self.listed_dir_entry(&p).await,
                };
                (p, name, entry)
            })
            .buffer_unordered(HEAD_PARALLELISM)
            .collect()
            .await;
        for (p, name, entry) in heads {
            match entry {
                Ok(Some(e)) => {
                    let kind = match &e {
                        Entry::File { kind, .. } => *kind,
                        _ => Kind::Dir,
                    };
                    self.ns.cache_fetched(&p, e).await;
                    names.insert(name, Some(kind));
                }
                Ok(None) => {
                    names.remove(&name);
                }
                // Listed but not cached: a `stat` of it asks again and gets the error (EIO
                // for a bad record, logged there with the key and the reason).
                Err(e) => log::debug!("attributes of {p:?} during listing: {e}"),
            }
        }
        // Files being written for the first time exist only locally.
        for (name, kind) in pending {
            names.insert(name, Some(kind));
        }
        let names = (names.into_iter()).map(|(name, kind)| (name, kind.unwrap_or(Kind::File)));
        self.ns.number(path, names, &|i| self.is_open(i))
    }

    /// The entry of a file a listing found, from its HEAD (`None`: deleted since; `Err`: not
    /// known, so not cached).
    async fn listed_file_entry(
        &self,
        path: &str,
        obj: &crate::store::ObjectInfo,
    ) -> FsResult<Option<Entry>> {
        match self.store.head(&obj.key).await {
            Ok(info) => self.entry_headed(path, &info).map(Some),
            Err(StoreError::NotFound { .. }) => Ok(None),
            // Never attributes without the record: the stat that follows asks again.
            Err(e) => Err(e.into()),
        }
    }

    /// The entry of a subdirectory a listing found: its marker's attributes, or defaults for
    /// a directory that exists only through the keys below it.
    async fn listed_dir_entry(&self, path: &str) -> FsResult<Option<Entry>> {
        let marker = self.dir_prefix(path);
        match self.store.head(&marker).await {
            Ok(info) => self.dir_entry_from_head(&info).map(Some),
            Err(StoreError::NotFound { .. }) => Ok(Some(Entry::Dir {
                attrs: self.default_attrs(Kind::Dir, self.mounted_at),
            })),
            Err(e) => {
                log::warn!("HEAD {marker} during listing failed: {e}");
                Ok(Some(Entry::Dir {
                    attrs: self.default_attrs(Kind::Dir, self.mounted_at),
                }))
            }
        }
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
            content_salt: None,
        },
        attrs: st.attrs.clone(),
    }
}
