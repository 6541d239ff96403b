//! The operations that add or remove names: mkdir/rmdir, create, unlink, symlinks (and the
//! refusal of hard links). Each checks the name against the store (through `resolve`), makes
//! the change in the store, then tells the namespace.
//!
//! A file created here exists only in the open-file table until its first close, so `create`
//! costs no request.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use bytes::Bytes;

use crate::crypto::CryptoError;
use crate::store::{ListRequest, PutOptions};

use super::attr::{self, Attr, Kind, StoredAttrs};
use super::error::{FsError, FsResult};
use super::inode::{is_below, parent_of};
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

    /// An entry was added to, removed from or renamed in directory `dir`: its mtime and ctime
    /// are now, kept in memory (the root's until unmount; others' until written, see
    /// `dir_times.rs`), so an entry operation costs no request for them.
    pub(super) fn entry_changed(&self, dir: &str) {
        self.dir_changed(dir, true);
    }

    /// Directory `dir` changed: its ctime is now, its mtime too when `mtime_too`.
    pub(super) fn dir_changed(&self, dir: &str, mtime_too: bool) {
        let now = SystemTime::now();
        if dir.is_empty() {
            let mut root = self.root_attrs.lock().unwrap_or_else(|p| p.into_inner());
            let mut attrs = root
                .take()
                .unwrap_or_else(|| self.default_attrs(Kind::Dir, self.mounted_at));
            attrs.ctime = now;
            if mtime_too {
                attrs.mtime = now;
            }
            *root = Some(attrs);
            return;
        }
        self.dir_times.changed(dir, mtime_too, now);
        if self.dir_times.claim_schedule() {
            self.schedule_dir_times();
        }
    }

    /// Write every directory's pending times in the background after `FLUSH_DELAY`.
    fn schedule_dir_times(&self) {
        let Some(fs) = self.me.upgrade() else {
            self.dir_times.unclaim_schedule();
            return;
        };
        tokio::spawn(async move {
            tokio::time::sleep(super::dir_times::FLUSH_DELAY).await;
            fs.dir_times.unclaim_schedule();
            if let Err(e) = fs.write_all_dir_times().await {
                log::warn!("writing directory times failed, retrying later: {e}");
                if fs.dir_times.claim_schedule() {
                    fs.schedule_dir_times();
                }
            }
        });
    }

    /// Write the pending times of directory `dir` into its marker (a directory that exists
    /// only through the keys below it gets one). Nothing to do for the root or a directory
    /// with none pending; a directory gone meanwhile forgets them.
    pub(super) async fn write_dir_times(&self, dir: &str) -> FsResult<()> {
        let Some(seen) = self.dir_times.get(dir) else {
            return Ok(());
        };
        if let Entry::Dir { attrs } = self.resolve(dir).await? {
            self.put_dir_marker(dir, &attrs).await?;
            self.ns.cache(dir, Entry::Dir { attrs }).await;
        }
        self.dir_times.written(dir, seen);
        Ok(())
    }

    /// [`Self::write_dir_times`] of every directory; the first error after trying them all.
    pub(super) async fn write_all_dir_times(&self) -> FsResult<()> {
        let mut first_err = None;
        for dir in self.dir_times.dirs() {
            if let Err(e) = self.write_dir_times(&dir).await {
                log::warn!("writing the times of directory {dir:?} failed: {e}");
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// What a new entry of `mode` made by group `gid` in directory `dir` gets: a setgid
    /// directory passes its group, and to a new directory its setgid bit, as on a local file
    /// system (the kernel leaves this to the file system).
    async fn inherit(&self, dir: &str, mode: u32, gid: u32, is_dir: bool) -> FsResult<(u32, u32)> {
        let (perm, dir_gid) = match self.dir_owners.get(dir) {
            Some(known) => known,
            None => match self.resolve(dir).await? {
                Entry::Dir { attrs } => (attrs.perm, attrs.gid),
                _ => return Err(FsError::NotFound),
            },
        };
        if perm & libc::S_ISGID == 0 {
            return Ok((mode, gid));
        }
        Ok((if is_dir { mode | libc::S_ISGID } else { mode }, dir_gid))
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
        let now = SystemTime::now();
        StoredAttrs {
            perm: mode & 0o7777,
            uid,
            gid,
            mtime: now,
            ctime: now,
            xattrs: Default::default(),
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
        let (mode, gid) = self.inherit(parent_of(&path), mode, gid, true).await?;
        let attrs = self
            .new_entry_attrs(parent, Kind::Dir, mode, uid, gid)
            .await?;
        self.put_dir_marker(&path, &attrs).await?;
        let entry = Entry::Dir { attrs };
        self.ns.made_dir(&path, entry.clone()).await;
        self.entry_changed(parent_of(&path));
        let ino = self.ns.remember(&path, Kind::Dir);
        self.attr_of_entry(ino, &entry)
    }

    /// Whether directory `path` holds anything besides its marker (stored or pending).
    pub(super) async fn dir_has_children(&self, path: &str) -> FsResult<bool> {
        let prefix = self.dir_prefix(path);
        let page = self
            .store
            .list_names(&ListRequest {
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
        let attrs = match self.resolve(&path).await? {
            Entry::Dir { attrs } => attrs,
            Entry::Missing => return Err(FsError::NotFound),
            Entry::File { .. } => return Err(FsError::NotDir),
        };
        if self.dir_has_children(&path).await? {
            return Err(FsError::NotEmpty);
        }
        self.store.delete(&self.dir_prefix(&path)).await?;
        self.delete_name_object(&path).await?;
        self.ns.removed(&path).await;
        self.drop_sidecar(&attrs.xattrs).await;
        self.dir_times.remove(&path);
        self.entry_changed(parent_of(&path));
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
        let (mode, gid) = self.inherit(parent_of(&path), mode, gid, false).await?;
        let ino = self.ns.remember(&path, Kind::File);
        let attrs = self
            .new_entry_attrs(parent, Kind::File, mode, uid, gid)
            .await?;
        let state = FileState::new_empty(path.clone(), attrs);
        let attr = self.attr_of_state(ino, &state);
        let file = Arc::new(OpenFile::new(state, 1));
        self.lock_open().insert(ino, file.clone());
        self.ns.added(&path, None).await;
        self.entry_changed(parent_of(&path));
        let acc = flags & libc::O_ACCMODE;
        let fh = self.new_fh(Handle::File {
            ino,
            file,
            writable: acc == libc::O_WRONLY || acc == libc::O_RDWR,
            append: flags & libc::O_APPEND != 0,
            seq: std::sync::Mutex::new(self.reader.read_ahead()),
        });
        Ok((attr, fh))
    }

    pub async fn unlink(&self, parent: u64, name: &std::ffi::OsStr) -> FsResult<()> {
        self.check_writable()?;
        let path = self.child_path(parent, name)?;
        let xattrs = match self.resolve(&path).await? {
            Entry::Missing => return Err(FsError::NotFound),
            Entry::Dir { .. } => return Err(FsError::IsDir),
            Entry::File { attrs, .. } => attrs.xattrs,
        };
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
            self.drop_sidecar(&xattrs).await;
            self.delete_name_object(&path).await?;
        }
        self.ns.removed(&path).await;
        self.entry_changed(parent_of(&path));
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
        let (_, gid) = self.inherit(parent_of(&path), 0o777, gid, false).await?;
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
        self.entry_changed(parent_of(&path));
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
        let (mode, gid) = self.inherit(parent_of(&path), mode, gid, false).await?;
        let attrs = self.new_entry_attrs(parent, kind, mode, uid, gid).await?;
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
        self.entry_changed(parent_of(&path));
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
