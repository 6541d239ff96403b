//! The operations that add or remove names: mkdir/rmdir, create, unlink, symlinks (and the
//! refusal of hard links). Each checks the name against the store (through `resolve`), makes
//! the change in the store, then tells the namespace.
//!
//! A file created here exists only in the open-file table until its first close, so `create`
//! costs no request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use bytes::Bytes;

use crate::crypto::CryptoError;
use crate::store::{ListRequest, PutOptions};

use super::attr::{self, Attr, Kind, StoredAttrs};
use super::error::{FsError, FsResult};
use super::inode::is_below;
use super::lookup::VAULT_DIR;
use super::namespace::Entry;
use super::upload::FileState;
use super::{Fs, Handle, OpenFile};

/// Longest symlink target (PATH_MAX).
const MAX_SYMLINK_TARGET_BYTES: u64 = 4096;

impl Fs {
    /// PUT the marker of directory `path` with its attribute record (a directory's: no
    /// content, so an all-zero content binding).
    pub(crate) async fn put_dir_marker(&self, path: &str, attrs: &StoredAttrs) -> FsResult<()> {
        self.put_name_object(path).await?;
        let key = self.dir_prefix(path);
        let record = attr::record_for(Kind::Dir, attrs, Some(0), [0; 32]);
        let (k, v) = self.sealed.record_entry(&key, &record)?;
        let mut opts = PutOptions::default();
        opts.metadata.insert(k, v);
        self.store.put(&key, Bytes::new(), opts).await?;
        Ok(())
    }

    /// PUT the name object of `path` when its encrypted name is stored shortened
    /// (docs/FORMAT.md §9); nothing otherwise. Before the entry itself, so a listing never
    /// finds the entry without it.
    pub(super) async fn put_name_object(&self, path: &str) -> FsResult<()> {
        if let Some((key, content)) = self.names.name_object(path) {
            self.store.put(&key, content, PutOptions::default()).await?;
        }
        Ok(())
    }

    /// DELETE the name object of `path` (after its entry), if its name has one.
    pub(super) async fn delete_name_object(&self, path: &str) -> FsResult<()> {
        if let Some((key, _)) = self.names.name_object(path) {
            self.store.delete(&key).await?;
        }
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
        let entry = Entry::Dir { attrs };
        self.ns.made_dir(&path, entry.clone()).await;
        let ino = self.ns.remember(&path, Kind::Dir);
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
        self.delete_name_object(&path).await?;
        self.ns.removed(&path).await;
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
                let ino = self.ns.remember(&path, kind);
                let opened = match self.open(ino, flags).await {
                    Ok(fh) => self.getattr(ino).await.map(|attr| (attr, fh)),
                    Err(e) => Err(e),
                };
                if opened.is_err() {
                    // The kernel gets no entry: it will not forget this reference.
                    self.forget(ino, 1);
                }
                return opened;
            }
        }
        let ino = self.ns.remember(&path, Kind::File);
        let state = FileState::new_empty(path.clone(), self.new_attrs(mode, uid, gid));
        let attr = self.attr_of_state(ino, &state);
        let file = Arc::new(OpenFile {
            state: tokio::sync::Mutex::new(state),
            handles: AtomicU64::new(1),
        });
        self.lock_open().insert(ino, file.clone());
        self.ns.added(&path, None).await;
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
        let ino = self.ns.ino_of(&path);
        let mut remote = matches!(self.ns.cached(&path).await, Some(Entry::File { .. }) | None);
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
            self.delete_name_object(&path).await?;
        }
        self.ns.removed(&path).await;
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
        self.put_name_object(&path).await?;
        let key = self.key_of(&path);
        let attrs = self.new_attrs(0o777, uid, gid);
        let version = self
            .sealed
            .put_all(
                &key,
                target,
                PutOptions::default(),
                // Size and content binding are filled in by the seam.
                Some(attr::record_for(Kind::Symlink, &attrs, None, [0; 32])),
            )
            .await?;
        let entry = Entry::File {
            kind: Kind::Symlink,
            version,
            attrs,
        };
        self.ns.added(&path, Some(entry.clone())).await;
        let ino = self.ns.remember(&path, Kind::Symlink);
        self.attr_of_entry(ino, &entry)
    }

    /// `mknod(2)`: a fifo, socket, character or block device (with its device number
    /// `rdev`), or an empty regular file. A node has no content: it is stored as an empty
    /// sealed object (header and the empty final block's tag) whose attribute record holds
    /// its type and `rdev` (docs/FORMAT.md §2c), so it is looked up, renamed, chmod'ed and
    /// verified as any file is. The kernel opens it; the file system only keeps it.
    #[allow(clippy::too_many_arguments)]
    pub async fn mknod(
        &self,
        parent: u64,
        name: &std::ffi::OsStr,
        mode: u32,
        rdev: u64,
        uid: u32,
        gid: u32,
    ) -> FsResult<Attr> {
        self.check_writable()?;
        let kind = Kind::from_mknod(mode, rdev).ok_or_else(|| {
            FsError::InvalidArgument(format!("mknod of file type {:o}", mode & attr::S_IFMT))
        })?;
        let path = self.child_path(parent, name)?;
        self.check_absent(&path).await?;
        self.put_name_object(&path).await?;
        let key = self.key_of(&path);
        let attrs = self.new_attrs(mode, uid, gid);
        let version = self
            .sealed
            .put_all(
                &key,
                &[],
                PutOptions::default(),
                // Size and content binding are filled in by the seam.
                Some(attr::record_for(kind, &attrs, None, [0; 32])),
            )
            .await?;
        let entry = Entry::File {
            kind,
            version,
            attrs,
        };
        self.ns.added(&path, Some(entry.clone())).await;
        let ino = self.ns.remember(&path, kind);
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
        // A symlink target is at most PATH_MAX bytes: a larger object marked as a symlink
        // is refused before any byte of it is fetched.
        if version.plaintext_len > MAX_SYMLINK_TARGET_BYTES {
            return Err(FsError::Crypto {
                key: version.key.clone(),
                source: CryptoError::Corrupt(format!(
                    "a symlink of {} bytes (at most {MAX_SYMLINK_TARGET_BYTES})",
                    version.plaintext_len
                )),
            });
        }
        Ok(self.sealed.read_all(&version).await?)
    }

    /// Hard links cannot be represented in an object store.
    pub fn link(&self) -> FsResult<Attr> {
        Err(FsError::NotPermitted(
            "hard links are not supported by s3cryptfs (objects have one name)".into(),
        ))
    }
}
