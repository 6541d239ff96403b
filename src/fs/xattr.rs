//! Extended attributes and POSIX ACLs: `user.*`, `trusted.*` (root), `security.*` and
//! `system.posix_acl_access`/`system.posix_acl_default`, kept in the object's sealed
//! attribute record, or in a sealed sidecar object the record names when they do not fit
//! (docs/FORMAT.md §2d). A change is written with the record (a metadata-only copy, the
//! directory marker's PUT, or the upload of a file being written) and is durable at return,
//! except for a file with unwritten content, whose change goes with that content at close.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;

use crate::crypto::CryptoError;
use crate::crypto::format::record::MAX_XATTR_AREA_LEN;
use crate::crypto::format::xattr::{
    self, MAX_ENTRIES_LEN, MAX_NAME_LEN, MAX_VALUE_LEN, SidecarRef, XattrArea, XattrMap,
};
use crate::store::PutOptions;

use super::Fs;
use super::acl::{self, Acl};
use super::attr::{Kind, StoredAttrs};
use super::error::{FsError, FsResult};
use super::namespace::Entry;
use super::xattr_cache::bounded_insert;

/// `setxattr(2)` flags.
pub const XATTR_CREATE: i32 = 1;
pub const XATTR_REPLACE: i32 = 2;
/// Opened sidecars kept in memory (each at most 64 KiB); the cache is emptied when full.
const SIDECAR_CACHE_ENTRIES: usize = 256;
/// Directories whose default ACL this mount remembers past `metadata_ttl`, so that creating
/// in them costs no request; emptied when full.
const DIR_ACL_MEMO_ENTRIES: usize = 65_536;

/// Whether `name` is one this file system keeps: `Ok(true)` for a name only root may set.
fn check_name(name: &[u8]) -> FsResult<bool> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(FsError::AttributeName);
    }
    let known = |p: &[u8]| name.starts_with(p) && name.len() > p.len();
    if known(b"user.") || known(b"security.") {
        Ok(false)
    } else if known(b"trusted.") {
        Ok(true)
    } else if name == acl::ACCESS || name == acl::DEFAULT {
        Ok(false)
    } else {
        Err(FsError::NotSupported(format!(
            "extended attribute namespace of {:?}",
            String::from_utf8_lossy(name)
        )))
    }
}

impl Fs {
    /// The stored attributes of `ino` (xattr area included) as this mount sees them.
    pub(super) async fn attrs_for_xattrs(&self, ino: u64) -> FsResult<(Kind, StoredAttrs)> {
        if let Some(of) = self.open_file(ino) {
            let st = of.state.lock().await;
            return Ok((st.kind, st.attrs.clone()));
        }
        let (path, _) = self.path_of(ino)?;
        match self.resolve(&path).await? {
            Entry::File { kind, attrs, .. } => Ok((kind, attrs)),
            Entry::Dir { attrs } => Ok((Kind::Dir, attrs)),
            Entry::Missing => Err(FsError::NotFound),
        }
    }

    /// The extended attributes an area holds (a sidecar is fetched once and cached by id).
    pub(crate) async fn xattr_map(&self, area: &XattrArea) -> FsResult<Arc<XattrMap>> {
        let r = match area {
            XattrArea::Empty => return Ok(Arc::default()),
            XattrArea::Inline(m) => return Ok(m.clone()),
            XattrArea::Sidecar(r) => r,
        };
        let cached = self
            .xattr_caches
            .sidecars
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&r.id)
            .cloned();
        if let Some(m) = cached {
            return Ok(m);
        }
        let key = self.sidecar_key(r);
        let corrupt = |source: CryptoError| FsError::Crypto {
            key: key.clone(),
            source,
        };
        // One byte more than the record names: a longer object is refused, never read whole.
        let got = match self
            .store
            .get(&key, Some(0..u64::from(r.len) + 1), None)
            .await
        {
            Ok(g) => g,
            Err(crate::store::StoreError::NotFound { .. }) => {
                return Err(corrupt(CryptoError::Corrupt(
                    "the extended attributes' sidecar its record names is missing".into(),
                )));
            }
            Err(e) => return Err(e.into()),
        };
        let map = xattr::open_sidecar(&self.keys.vault_id(), r, &got.data).map_err(corrupt)?;
        let map = Arc::new(map);
        bounded_insert(
            &self.xattr_caches.sidecars,
            SIDECAR_CACHE_ENTRIES,
            r.id,
            map.clone(),
        );
        Ok(map)
    }

    /// [`xattr_map`](Self::xattr_map) of the file `ino`: a damaged sidecar's error names the
    /// file's object too (its store key, so no plaintext name with encrypted names).
    async fn xattr_map_of(&self, ino: u64, area: &XattrArea) -> FsResult<Arc<XattrMap>> {
        self.xattr_map(area)
            .await
            .map_err(|e| match (e, self.path_of(ino)) {
                (FsError::Crypto { key, source }, Ok((path, _))) => FsError::Crypto {
                    key: format!("{key} (the extended attributes of {})", self.key_of(&path)),
                    source,
                },
                (e, _) => e,
            })
    }

    fn sidecar_key(&self, r: &SidecarRef) -> String {
        format!("{}{}", self.names.dir_prefix(""), r.object_name())
    }

    /// `getxattr(2)`: the value of `name`.
    pub async fn getxattr(&self, ino: u64, name: &[u8]) -> FsResult<Vec<u8>> {
        check_name(name)?;
        let (_, attrs) = self.attrs_for_xattrs(ino).await?;
        let map = self.xattr_map_of(ino, &attrs.xattrs).await?;
        map.get(name).cloned().ok_or(FsError::NoAttribute)
    }

    /// `listxattr(2)`: every name, each followed by a NUL; `trusted.*` only for root, as
    /// the kernel lists them on a local file system.
    pub async fn listxattr(&self, ino: u64, privileged: bool) -> FsResult<Vec<u8>> {
        let (_, attrs) = self.attrs_for_xattrs(ino).await?;
        let map = self.xattr_map_of(ino, &attrs.xattrs).await?;
        let mut out = Vec::new();
        for name in map.keys() {
            if privileged || !name.starts_with(b"trusted.") {
                out.extend_from_slice(name);
                out.push(0);
            }
        }
        Ok(out)
    }

    /// `setxattr(2)` by user `uid` with `flags` (`XATTR_CREATE`, `XATTR_REPLACE`). Setting
    /// the access ACL sets the permission bits from it (and stores no ACL the bits say all
    /// of); a default ACL is for directories only.
    pub async fn setxattr(
        &self,
        ino: u64,
        name: &[u8],
        value: &[u8],
        flags: i32,
        uid: u32,
    ) -> FsResult<()> {
        if check_name(name)? && uid != 0 {
            return Err(FsError::NotPermitted("trusted.* is for root only".into()));
        }
        if value.len() > MAX_VALUE_LEN {
            return Err(FsError::AttributeTooLarge);
        }
        let acl = if name == acl::ACCESS || name == acl::DEFAULT {
            Some(Acl::parse(value).map_err(FsError::InvalidArgument)?)
        } else {
            None
        };
        self.change_xattrs(ino, |kind, map, perm| {
            let exists = map.contains_key(name);
            if flags & XATTR_CREATE != 0 && exists {
                return Err(FsError::Exists);
            }
            if flags & XATTR_REPLACE != 0 && !exists {
                return Err(FsError::NoAttribute);
            }
            if name.starts_with(b"user.") && !matches!(kind, Kind::File | Kind::Dir) {
                return Err(FsError::NotPermitted(
                    "user.* extended attributes are for files and directories only".into(),
                ));
            }
            let stored = match &acl {
                Some(a) if name == acl::ACCESS => {
                    let (mode, keep) = a.apply_to_mode(*perm);
                    *perm = mode;
                    keep.map(|a| a.to_bytes())
                }
                Some(a) if kind != Kind::Dir && !a.is_empty() => {
                    return Err(FsError::InvalidArgument(
                        "a default ACL is for directories only".into(),
                    ));
                }
                Some(a) => (!a.is_empty()).then(|| a.to_bytes()),
                None => Some(value.to_vec()),
            };
            match stored {
                Some(v) => map.insert(name.to_vec(), v),
                None => map.remove(name),
            };
            Ok(())
        })
        .await
    }

    /// `removexattr(2)`: ENODATA when `name` is not set.
    pub async fn removexattr(&self, ino: u64, name: &[u8], uid: u32) -> FsResult<()> {
        if check_name(name)? && uid != 0 {
            return Err(FsError::NotPermitted("trusted.* is for root only".into()));
        }
        self.change_xattrs(ino, |_, map, _| {
            map.remove(name).map(|_| ()).ok_or(FsError::NoAttribute)
        })
        .await
    }

    /// The area for `map`: inline when it fits the record, otherwise a new sidecar, PUT
    /// before the record that names it is written. ENOSPC over 64 KiB.
    async fn area_for(&self, map: &XattrMap) -> FsResult<XattrArea> {
        if xattr::entries_len(map) > MAX_ENTRIES_LEN {
            return Err(FsError::NoSpace(format!(
                "extended attributes of a file take at most {MAX_ENTRIES_LEN} bytes"
            )));
        }
        if let Some(area) = xattr::inline_area(map, MAX_XATTR_AREA_LEN) {
            return Ok(area);
        }
        let (r, bytes) =
            xattr::seal_sidecar(&self.keys.vault_id(), map).map_err(|source| FsError::Crypto {
                key: "extended attributes".into(),
                source,
            })?;
        self.store
            .put(
                &self.sidecar_key(&r),
                Bytes::from(bytes),
                PutOptions::default(),
            )
            .await?;
        bounded_insert(
            &self.xattr_caches.sidecars,
            SIDECAR_CACHE_ENTRIES,
            r.id,
            Arc::new(map.clone()),
        );
        Ok(XattrArea::Sidecar(r))
    }

    /// Delete the sidecar an area names once no stored record names it any more (best
    /// effort: a sidecar left behind is sealed garbage nothing opens).
    pub(crate) async fn drop_sidecar(&self, area: &XattrArea) {
        if let Some(r) = area.sidecar() {
            let key = self.sidecar_key(r);
            if let Err(e) = self.store.delete(&key).await {
                log::warn!("deleting the extended attributes' sidecar {key} failed: {e}");
            }
        }
    }

    /// Change the extended attributes (and, for ACLs, the permission bits) of `ino` with
    /// `f` and write them.
    async fn change_xattrs<F>(&self, ino: u64, f: F) -> FsResult<()>
    where
        F: FnOnce(Kind, &mut XattrMap, &mut u32) -> FsResult<()>,
    {
        self.check_writable()?;
        let (path, kind) = self.path_of(ino)?;
        let update = async |attrs: &mut StoredAttrs, kind: Kind| -> FsResult<XattrArea> {
            let mut map = (*self.xattr_map_of(ino, &attrs.xattrs).await?).clone();
            f(kind, &mut map, &mut attrs.perm)?;
            let old = std::mem::replace(&mut attrs.xattrs, self.area_for(&map).await?);
            Ok(old)
        };
        if path.is_empty() {
            // The root has no object: as its mode, its xattrs last until unmount.
            let mut attrs = self.root_attrs();
            update(&mut attrs, Kind::Dir).await?;
            *self.root_attrs.lock().unwrap_or_else(|p| p.into_inner()) = Some(attrs);
            return Ok(());
        }
        if kind == Kind::File {
            let file = self.get_or_open_file(ino, &path).await?;
            let result = async {
                let mut st = file.state.lock().await;
                let old = update(&mut st.attrs, kind).await?;
                st.attrs.ctime = SystemTime::now();
                if st.dirty {
                    // Content not stored yet: the record goes with it at close or fsync.
                    return Ok(());
                }
                self.sync_attrs(&mut st).await?;
                drop(st);
                self.drop_sidecar(&old).await;
                Ok(())
            }
            .await;
            self.drop_handle_ref(ino, &file).await;
            return result;
        }
        let (entry, old) = match self.resolve(&path).await? {
            Entry::File {
                kind,
                version,
                mut attrs,
            } => {
                let old = update(&mut attrs, kind).await?;
                let version = self.replace_metadata(&version, kind, &attrs).await?;
                (
                    Entry::File {
                        kind,
                        version,
                        attrs,
                    },
                    old,
                )
            }
            Entry::Dir { mut attrs } => {
                let old = update(&mut attrs, Kind::Dir).await?;
                self.put_dir_marker(&path, &attrs).await?;
                self.remember_dir_area(ino, &attrs.xattrs);
                (Entry::Dir { attrs }, old)
            }
            Entry::Missing => return Err(FsError::NotFound),
        };
        self.ns.cache(&path, entry).await;
        self.drop_sidecar(&old).await;
        Ok(())
    }

    fn remember_dir_area(&self, ino: u64, area: &XattrArea) {
        bounded_insert(
            &self.xattr_caches.dir_areas,
            DIR_ACL_MEMO_ENTRIES,
            ino,
            area.clone(),
        );
    }

    /// The default ACL of directory `dir`, which new entries in it inherit. From the entry
    /// cache, else from what this mount last saw of the directory (so creating many files
    /// costs no request once the cache expired), else from the store.
    pub async fn default_acl(&self, dir: u64) -> FsResult<Option<Acl>> {
        let (path, _) = self.path_of(dir)?;
        let remembered = || {
            self.xattr_caches
                .dir_areas
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&dir)
                .cloned()
        };
        let area = if path.is_empty() {
            self.root_attrs().xattrs
        } else if let Some(Entry::Dir { attrs }) = self.ns.cached(&path).await {
            attrs.xattrs
        } else if let Some(area) = remembered() {
            return self.default_acl_in(&area).await;
        } else {
            match self.resolve(&path).await? {
                Entry::Dir { attrs } => attrs.xattrs,
                _ => return Ok(None),
            }
        };
        self.remember_dir_area(dir, &area);
        self.default_acl_in(&area).await
    }

    async fn default_acl_in(&self, area: &XattrArea) -> FsResult<Option<Acl>> {
        if *area == XattrArea::Empty {
            return Ok(None);
        }
        let map = self.xattr_map(area).await?;
        match map.get(acl::DEFAULT) {
            Some(v) => Ok(Some(Acl::parse(v).map_err(|e| FsError::Crypto {
                key: "default ACL".into(),
                source: CryptoError::Corrupt(e),
            })?)),
            None => Ok(None),
        }
    }

    /// The mode of a new entry in `parent` asked for with `mode` and `umask`: the umask
    /// applies only where no default ACL does (`FUSE_DONT_MASK` leaves both to us).
    pub async fn masked_mode(&self, parent: u64, mode: u32, umask: u32) -> FsResult<u32> {
        if self.default_acl(parent).await?.is_some() {
            Ok(mode)
        } else {
            Ok(mode & !(umask & 0o777))
        }
    }

    /// The attributes of a new entry of `kind` in directory `parent`, asked for with `mode`
    /// (the umask already applied unless the directory has a default ACL): the default ACL,
    /// if any, limits the mode and becomes the entry's access ACL, and a new directory's
    /// default ACL too (`posix_acl_create`).
    pub(crate) async fn new_entry_attrs(
        &self,
        parent: u64,
        kind: Kind,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> FsResult<StoredAttrs> {
        let now = SystemTime::now();
        let mut attrs = StoredAttrs {
            perm: mode & 0o7777,
            uid,
            gid,
            mtime: now,
            ctime: now,
            xattrs: XattrArea::Empty,
        };
        if kind == Kind::Symlink {
            return Ok(attrs);
        }
        let Some(default) = self.default_acl(parent).await? else {
            return Ok(attrs);
        };
        let (perm, access) = default.inherit(attrs.perm);
        attrs.perm = perm;
        let mut map = XattrMap::new();
        if let Some(a) = access {
            map.insert(acl::ACCESS.to_vec(), a.to_bytes());
        }
        if kind == Kind::Dir {
            map.insert(acl::DEFAULT.to_vec(), default.to_bytes());
        }
        // Two ACLs always fit the record (at most a few hundred bytes for real ones).
        attrs.xattrs = self.area_for(&map).await?;
        Ok(attrs)
    }

    /// The access ACL after `chmod(perm)` of an entry with `attrs`, when it has one: the
    /// new area to store with the new mode (`posix_acl_chmod`).
    pub(crate) async fn chmod_xattrs(
        &self,
        attrs: &StoredAttrs,
        perm: u32,
    ) -> FsResult<Option<XattrArea>> {
        if attrs.xattrs == XattrArea::Empty {
            return Ok(None);
        }
        let map = self.xattr_map(&attrs.xattrs).await?;
        let Some(v) = map.get(acl::ACCESS) else {
            return Ok(None);
        };
        let Ok(a) = Acl::parse(v) else {
            return Ok(None);
        };
        let mut map = (*map).clone();
        map.insert(acl::ACCESS.to_vec(), a.chmod(perm).to_bytes());
        Ok(Some(self.area_for(&map).await?))
    }
}
