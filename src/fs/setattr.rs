//! Attribute changes: `setattr` (truncate, chmod, chown, utimes) and the deferred write of
//! attribute-only changes with a metadata copy, so that rsync's chmod + utimes + rename after
//! close cost one copy instead of three.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use super::attr::{Attr, Kind, StoredAttrs, record_for};
use super::error::{FsError, FsResult};
use super::read::RemoteVersion;
use super::upload::FileState;
use super::{ATTR_FLUSH_DELAY, Entry, Fs, MAX_FILE_SIZE, OpenFile};

impl Fs {
    /// setattr: any of size, mode, uid, gid, mtime.
    #[allow(clippy::too_many_arguments)]
    pub async fn setattr(
        &self,
        ino: u64,
        size: Option<u64>,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        mtime: Option<SystemTime>,
    ) -> FsResult<Attr> {
        self.check_writable()?;
        let (path, kind) = self.path_of(ino)?;
        if size.is_some() && kind == Kind::Dir {
            return Err(FsError::IsDir);
        }
        if size.is_some() && kind.is_special() {
            return Err(FsError::InvalidArgument(
                "a fifo, socket or device has no size to set".into(),
            ));
        }
        // chmod also changes an access ACL's owner, mask and other entries.
        let acl_area = match mode {
            Some(m) => {
                let (_, current) = self.attrs_for_xattrs(ino).await?;
                self.chmod_xattrs(&current, m & 0o7777).await?
            }
            None => None,
        };
        let apply = |a: &mut StoredAttrs| {
            if let Some(m) = mode {
                a.perm = m & 0o7777;
            }
            if let Some(area) = &acl_area {
                a.xattrs = area.clone();
            }
            if let Some(u) = uid {
                a.uid = u;
            }
            if let Some(g) = gid {
                a.gid = g;
            }
            if let Some(t) = mtime {
                a.mtime = t;
            }
            // Every change of attributes is one of the ctime.
            a.ctime = SystemTime::now();
        };
        if kind == Kind::File {
            // Through the open-file state: truncation needs it, an open file's pending
            // attributes must not be overwritten by a metadata copy, and attribute-only
            // changes are deferred so that rsync's chmod + utimes + rename cost one copy.
            let file = self.get_or_open_file(ino, &path).await?;
            let result = async {
                let mut st = file.state.lock().await;
                if let Some(sz) = size {
                    if sz > MAX_FILE_SIZE {
                        return Err(FsError::TooLarge);
                    }
                    if sz != st.size {
                        self.truncate_locked(&mut st, sz).await?;
                    } else if mtime.is_none() {
                        st.attrs.mtime = SystemTime::now();
                        st.dirty = true;
                    }
                }
                let before = st.attrs.clone();
                apply(&mut st.attrs);
                if mtime.is_some() {
                    st.mtime_explicit = true;
                }
                if st.attrs != before && !st.dirty {
                    if st.base.is_some() {
                        st.attrs_dirty = true;
                    } else {
                        st.dirty = true;
                    }
                }
                Ok((self.attr_of_state(ino, &st), st.attrs_dirty && !st.dirty))
            }
            .await;
            // A truncate through a path (no open handle) must be durable at return.
            let synced = if size.is_some() && file.handles.load(Ordering::SeqCst) == 1 {
                self.sync_file(&file).await
            } else {
                Ok(())
            };
            let deferred = matches!(result, Ok((_, true)));
            self.drop_handle_ref(ino, &file).await;
            let (attr, _) = result?;
            synced?;
            if deferred {
                self.schedule_attr_flush(ino, file);
            }
            return Ok(attr);
        }
        if path.is_empty() {
            // The root has no object: its attributes live in this mount until unmount.
            let mut attrs = self.root_attrs();
            apply(&mut attrs);
            *self.root_attrs.lock().unwrap_or_else(|p| p.into_inner()) = Some(attrs.clone());
            return self.attr_of_entry(ino, &Entry::Dir { attrs });
        }
        let entry = self.resolve(&path).await?;
        match entry {
            Entry::File {
                kind,
                version,
                mut attrs,
            } => {
                apply(&mut attrs);
                let version = self.replace_metadata(&version, kind, &attrs).await?;
                let entry = Entry::File {
                    kind,
                    version,
                    attrs,
                };
                self.ns.cache(&path, entry.clone()).await;
                self.attr_of_entry(ino, &entry)
            }
            Entry::Dir { mut attrs } => {
                apply(&mut attrs);
                self.put_dir_marker(&path, &attrs).await?;
                // The marker holds every time pending for it now.
                self.dir_times.remove(&path);
                let entry = Entry::Dir { attrs };
                self.ns.cache(&path, entry.clone()).await;
                self.attr_of_entry(ino, &entry)
            }
            Entry::Missing => Err(FsError::NotFound),
        }
    }

    /// Write pending attributes of a clean file with a metadata copy (no data moves).
    /// Truncate the open file `st` to `size`: the one way content is cut, for `setattr` and
    /// `open(O_TRUNC)` alike. A streamed upload whose sent blocks the new size would drop or
    /// turn into the last block is completed first; truncating under it would let those
    /// parts reappear at completion, or make the completion fail for good.
    pub(super) async fn truncate_locked(&self, st: &mut FileState, size: u64) -> FsResult<()> {
        let bs = self.reader.block_size() as u64;
        if st
            .stream
            .as_ref()
            .is_some_and(|s| s.pins_truncate(size, bs))
        {
            self.settle_stream(st).await?;
        }
        st.truncate(size, &self.reader, &self.staging).await?;
        Ok(())
    }

    pub(super) async fn sync_attrs(&self, st: &mut FileState) -> FsResult<()> {
        let Some(base) = st.base.clone() else {
            return Ok(());
        };
        let version = self.replace_metadata(&base, st.kind, &st.attrs).await?;
        st.base = Some(version.clone());
        st.attrs_dirty = false;
        self.ns
            .cache(
                &st.path,
                Entry::File {
                    kind: st.kind,
                    version,
                    attrs: st.attrs.clone(),
                },
            )
            .await;
        Ok(())
    }

    /// Write deferred attributes after `ATTR_FLUSH_DELAY` unless a rename, close or fsync
    /// wrote them first; retried with backoff on failure.
    pub(super) fn schedule_attr_flush(&self, ino: u64, file: Arc<OpenFile>) {
        let Some(fs) = self.me.upgrade() else {
            return;
        };
        tokio::spawn(async move {
            tokio::time::sleep(ATTR_FLUSH_DELAY).await;
            match fs.sync_file(&file).await {
                Ok(()) => fs.forget_if_idle(ino, &file).await,
                Err(e) => {
                    log::warn!("writing attributes of inode {ino} failed, retrying: {e}");
                    fs.spawn_retry(ino, file);
                }
            }
        });
    }

    /// Drop an open-file entry that has no handles and nothing left to write.
    async fn forget_if_idle(&self, ino: u64, file: &Arc<OpenFile>) {
        let st = file.state.lock().await;
        if st.needs_sync() || file.handles.load(Ordering::SeqCst) > 0 {
            return;
        }
        drop(st);
        let mut open = self.lock_open();
        if open.get(&ino).is_some_and(|c| Arc::ptr_eq(c, file)) {
            open.remove(&ino);
        }
    }

    /// CopyObject onto itself with a new attribute record (and `v`'s crypto metadata), only
    /// if the object is still `v`; the version the copy made.
    pub(super) async fn replace_metadata(
        &self,
        v: &RemoteVersion,
        kind: Kind,
        attrs: &StoredAttrs,
    ) -> FsResult<RemoteVersion> {
        let record = record_for(kind, attrs, None, [0; 32]);
        Ok(self.sealed.copy(v, &v.key, None, Some(record)).await?)
    }
}
