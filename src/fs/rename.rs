//! rename(2): files by server-side copy + delete (never-uploaded files by a local rename,
//! pending attribute changes folded into the copy), directories by copying every object below
//! them and then deleting the sources (in DeleteObjects batches), so an interruption leaves
//! every object under the old or the new name (or both) and renaming again finishes the job.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::Bytes;
use futures::stream::{self, StreamExt};

use crate::crypto::format::metadata::crypto_metadata;
use crate::crypto::format::record::AttrRecord;
use crate::crypto::names::{MAX_FULL_SEGMENT_LEN, Segment, classify};
use crate::store::{
    CopyOptions, ListRequest, MetadataDirective, ObjectInfo, Pager, PutOptions, StoreError,
};

use super::attr::{StoredAttrs, record_for};
use super::inode::{is_below, parent_of};
use super::lookup::VAULT_DIR;
use super::read::RemoteVersion;
use super::{Entry, Fs, FsError, FsResult, OpenFile};

/// Copies a file rename tries while its source keeps changing under it.
const COPY_ATTEMPTS: u32 = 3;

/// The copies of a directory move (source key, destination key) and the name objects to PUT.
type DirMove = (Vec<(String, String)>, Vec<(String, Bytes)>);

impl Fs {
    /// rename(2) with flags `RENAME_NOREPLACE` (others are refused).
    pub async fn rename(
        &self,
        parent: u64,
        name: &std::ffi::OsStr,
        newparent: u64,
        newname: &std::ffi::OsStr,
        flags: u32,
    ) -> FsResult<()> {
        self.check_writable()?;
        if flags & !libc::RENAME_NOREPLACE != 0 {
            return Err(FsError::InvalidArgument(
                "only RENAME_NOREPLACE is supported".into(),
            ));
        }
        let from = self.child_path(parent, name)?;
        let to = self.child_path(newparent, newname)?;
        if Self::is_reserved(&to) || Self::is_reserved(&from) {
            return Err(FsError::NotPermitted(format!("{VAULT_DIR} is reserved")));
        }
        if from == to {
            return match self.resolve(&from).await? {
                Entry::Missing => Err(FsError::NotFound),
                _ => Ok(()),
            };
        }
        let src = self.resolve(&from).await?;
        let dst = self.resolve(&to).await?;
        if flags & libc::RENAME_NOREPLACE != 0 && !matches!(dst, Entry::Missing) {
            return Err(FsError::Exists);
        }
        match (&src, &dst) {
            (Entry::Missing, _) => return Err(FsError::NotFound),
            (Entry::Dir { .. }, Entry::File { .. }) => return Err(FsError::NotDir),
            (Entry::File { .. }, Entry::Dir { .. }) => return Err(FsError::IsDir),
            (Entry::Dir { .. }, Entry::Dir { .. }) if self.dir_has_children(&to).await? => {
                return Err(FsError::NotEmpty);
            }
            // What this mount remembers as absent may be a directory another mount made
            // since, with files in it: the store is asked (the copies would replace them).
            (Entry::Dir { .. }, Entry::Missing) if self.dir_has_children(&to).await? => {
                return Err(FsError::NotEmpty);
            }
            _ => {}
        }
        if matches!(src, Entry::Dir { .. }) && is_below(&to, &from) {
            return Err(FsError::InvalidArgument(
                "cannot move a directory into itself".into(),
            ));
        }
        match src {
            Entry::Dir { attrs } => {
                self.rename_dir(&from, &to, &attrs, &dst).await?;
                self.dir_times.renamed(&from, &to);
                self.dir_owners.clear();
                // The moved directory's ctime (its `..` changed, as ext4 counts it).
                self.dir_changed(&to, false);
            }
            _ => self.rename_file(&from, &to).await?,
        }
        self.entry_changed(parent_of(&from));
        self.entry_changed(parent_of(&to));
        Ok(())
    }

    async fn rename_file(&self, from: &str, to: &str) -> FsResult<()> {
        let to_key = self.key_of(to);
        let src_ino = self.ns.ino_of(from);
        let dst_ino = self.ns.ino_of(to);
        // A file open under the target name is detached: it keeps its content, loses its name.
        if let Some(of) = dst_ino.and_then(|i| self.open_file(i)) {
            let mut st = of.state.lock().await;
            if of.handles.load(Ordering::SeqCst) > 0 {
                self.settle_stream(&mut st).await?;
                st.materialize(&self.reader, &self.staging).await?;
            } else if let Some(stream) = st.stream.take() {
                stream.abort(&self.store);
            }
            st.unlinked = true;
        }
        if let Some(of) = src_ino.and_then(|i| self.open_file(i)) {
            let mut st = of.state.lock().await;
            // A rename changes the file's ctime.
            st.attrs.ctime = std::time::SystemTime::now();
            if st.base.is_none() && st.stream.is_none() {
                // Never uploaded: the rename is local, the first upload goes to the new name.
                st.path = to.to_string();
                if matches!(
                    self.resolve_cached(to).await,
                    Some(Entry::File { .. }) | None
                ) {
                    // Whatever the store holds at the target is replaced now.
                    self.store.delete(&to_key).await?;
                }
                drop(st);
                self.finish_rename(from, to).await;
                return Ok(());
            }
            if st.dirty && !st.unlinked {
                drop(st);
                self.sync_file(&of).await?;
                st = of.state.lock().await;
            }
            let base = st.base.clone().ok_or(FsError::NotFound)?;
            // The copy carries a record sealed for the new name (the old one does not open
            // there), with the current attributes: changes since the last upload (rsync:
            // utimes + chmod of the temp file) ride along instead of costing copies of their
            // own.
            let record = record_for(st.kind, &st.attrs, None, [0; 32]);
            self.put_name_object(to).await?;
            let (moved, version) = self
                .copy_latest(from, base.clone(), record, &to_key)
                .await?;
            self.delete_moved_source(from, &moved.etag).await?;
            // Another client's version moved instead of this one: the handles keep their base,
            // so their next upload to the new name conflicts rather than replacing it.
            st.base = Some(if moved.etag == base.etag {
                version
            } else {
                base
            });
            st.path = to.to_string();
            st.attrs_dirty = false;
            drop(st);
            self.finish_rename(from, to).await;
            return Ok(());
        }
        let Entry::File {
            kind,
            version,
            mut attrs,
        } = self.resolve(from).await?
        else {
            return Err(FsError::NotFound);
        };
        attrs.ctime = std::time::SystemTime::now();
        let record = record_for(kind, &attrs, None, [0; 32]);
        self.put_name_object(to).await?;
        let (moved, copied) = self.copy_latest(from, version, record, &to_key).await?;
        self.delete_moved_source(from, &moved.etag).await?;
        let version = copied;
        self.finish_rename(from, to).await;
        self.ns
            .cache(
                to,
                Entry::File {
                    kind,
                    version,
                    attrs,
                },
            )
            .await;
        Ok(())
    }

    /// Copy the object at `key` to `dest` for a directory rename. A listing carries no
    /// metadata, so a HEAD fetches the object's attribute record; a record that opens for
    /// `key` is sealed again for `dest` into the copy. An object without a valid record is
    /// copied as it is: it stays unreadable (or, in a vault without the records marker,
    /// legacy) under its new name, never vouched for.
    /// Copy `key` to `dest` with its record sealed for `dest`; the ETag of the source copied.
    async fn copy_resealed(&self, key: &str, dest: &str) -> FsResult<String> {
        let info = self.store.head(key).await?;
        let metadata = self.resealed_metadata(key, dest, &info)?;
        let opts = CopyOptions {
            source_if_match: Some(info.etag.clone()),
            source_size: Some(info.size),
            metadata,
        };
        self.store
            .copy(key, dest, opts)
            .await
            .map_err(|e| match e {
                StoreError::PreconditionFailed { key } => FsError::Conflict { key },
                e => e.into(),
            })?;
        Ok(info.etag)
    }

    /// The metadata of a server-side copy of `key` (as `info`, a HEAD, shows it) to `dest`:
    /// its crypto entries and its attribute record sealed again for `dest` when the record
    /// opens for `key`; else the metadata as it is (never vouched for under the new name).
    pub(super) fn resealed_metadata(
        &self,
        key: &str,
        dest: &str,
        info: &ObjectInfo,
    ) -> FsResult<MetadataDirective> {
        Ok(match self.sealed.open_record(key, info.metadata.as_ref()) {
            Ok(Some(record)) => {
                let mut m = info
                    .metadata
                    .as_ref()
                    .map(crypto_metadata)
                    .unwrap_or_default();
                let (k, v) = self.sealed.record_entry(dest, &record)?;
                m.insert(k, v);
                MetadataDirective::Replace(m)
            }
            Ok(None) => MetadataDirective::Copy,
            Err(e) => {
                log::warn!("copying {key} to {dest} without a new attribute record: {e}");
                MetadataDirective::Copy
            }
        })
    }

    /// Where each object below directory `from` goes when it moves to `to` (`keys`: what a
    /// LIST of its prefix gave), and the name objects the new names need. With plaintext names
    /// only the prefix changes. With encrypted names every name below is encrypted again,
    /// since its parent's path is its associated data: the stored path is decrypted (the name
    /// objects of shortened names below are read for it) and the plaintext path encrypted
    /// under `to`. The old name objects are not copied (they are deleted with the rest); an
    /// object whose path does not decrypt is moved with its stored path unchanged (it stays
    /// hidden there, never shown as garbage).
    async fn plan_dir_move(
        &self,
        from: &str,
        to: &str,
        keys: &[(String, String, u64)],
    ) -> FsResult<DirMove> {
        let from_prefix = self.dir_prefix(from);
        let to_prefix = self.dir_prefix(to);
        let raw = |key: &str| format!("{to_prefix}{}", &key[from_prefix.len()..]);
        if !self.encrypted_names() {
            let moves = keys.iter().map(|(k, _, _)| (k.clone(), raw(k))).collect();
            return Ok((moves, Vec::new()));
        }
        let is_name_object = |key: &str| {
            matches!(
                classify(super::keymap::last_segment(key)),
                Segment::NameObject(_)
            )
        };
        let mut contents = HashMap::new();
        for (key, _, _) in keys.iter().filter(|(k, _, _)| is_name_object(k)) {
            let range = Some(0..MAX_FULL_SEGMENT_LEN as u64 + 1);
            match self.store.get(key, range, None).await {
                Ok(out) => {
                    contents.insert(key.clone(), out.data);
                }
                Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let long = |dir: &str, hash: &str| {
            contents
                .get(&self.names.name_object_key(dir, hash))
                .cloned()
        };
        let mut moves = Vec::new();
        let mut names = BTreeMap::new();
        for (key, _, _) in keys.iter().filter(|(k, _, _)| !is_name_object(k)) {
            let rel = &key[from_prefix.len()..];
            match self.names.decode_below(from, rel, &long) {
                Ok(path) => {
                    let moved = format!("{to}{}", &path[from.len()..]);
                    let dest = if rel.ends_with('/') || rel.is_empty() {
                        self.dir_prefix(&moved)
                    } else {
                        self.key_of(&moved)
                    };
                    // Every shortened name on the way down needs its name object.
                    let mut p = moved.as_str();
                    while p.len() > to.len() {
                        if let Some((k, v)) = self.names.name_object(p) {
                            names.insert(k, v);
                        }
                        p = parent_of(p);
                    }
                    moves.push((key.clone(), dest));
                }
                Err(why) => {
                    log::warn!(
                        "moving {key} with its stored name: its path does not decrypt ({why:?})"
                    );
                    moves.push((key.clone(), raw(key)));
                }
            }
        }
        Ok((moves, names.into_iter().collect()))
    }

    /// The copies of a directory move: when one failed (another client changed or removed a
    /// source meanwhile), the copies made are deleted again, so the tree stays whole under
    /// its old name and nothing is stored twice, and the rename fails with that error.
    async fn undo_failed_copies(
        &self,
        from: &str,
        to: &str,
        copies: Vec<(String, String, FsResult<String>)>,
    ) -> FsResult<HashMap<String, String>> {
        let mut made = Vec::new();
        let mut copied = HashMap::new();
        let mut first_error = None;
        for (source, dest, r) in copies {
            match r {
                Ok(etag) => {
                    made.push(dest);
                    copied.insert(source, etag);
                }
                Err(e) => first_error = first_error.or(Some(e)),
            }
        }
        let Some(error) = first_error else {
            return Ok(copied);
        };
        log::warn!(
            "renaming {from} to {to} failed ({error}): removing the {} copies made",
            made.len()
        );
        match self.store.delete_many(&made).await {
            Ok(failed) => {
                for f in failed {
                    log::error!("cannot remove the copy {} again: {}", f.key, f.error);
                }
            }
            Err(e) => log::error!("cannot remove the copies under {to} again: {e}"),
        }
        Err(error)
    }

    /// Copy the file at `from`, as `version` with attribute record `record`, to `to_key`.
    /// When `from` is no longer that version (another client wrote it since), the version it
    /// holds now is copied instead, with its own attributes, as if the rename came just after
    /// that write: S3 refuses the first copy and leaves the target alone, but a server that
    /// ignores `x-amz-copy-source-if-match` has already replaced the target by then (and the
    /// store deleted that copy again, `store/s3/copy_check.rs`), so failing the rename would
    /// lose the target's old content for nothing. Returns the version copied and the copy.
    async fn copy_latest(
        &self,
        from: &str,
        mut version: RemoteVersion,
        mut record: AttrRecord,
        to_key: &str,
    ) -> FsResult<(RemoteVersion, RemoteVersion)> {
        let key = self.key_of(from);
        for _ in 0..COPY_ATTEMPTS {
            match self
                .sealed
                .copy(&version, to_key, None, Some(record.clone()))
                .await
            {
                Ok(copy) => return Ok((version, copy)),
                Err(e) => match FsError::from(e) {
                    FsError::Conflict { .. } => {}
                    other => return Err(other),
                },
            }
            let info = self.store.head(&key).await?;
            let Entry::File {
                kind,
                version: latest,
                mut attrs,
            } = self.entry_headed(from, &info)?
            else {
                return Err(FsError::NotFound);
            };
            // Still the version copied: the server's answer misled the store's check (s3rver
            // sometimes answers a copy with another ETag than the copy has), so the same copy
            // is tried again, with this mount's attributes.
            if latest.etag != version.etag {
                log::warn!("{key} changed while it was renamed: moving its latest version");
                attrs.ctime = std::time::SystemTime::now();
                record = record_for(kind, &attrs, None, [0; 32]);
                version = latest;
            }
        }
        Err(FsError::Conflict { key })
    }

    /// The source of a file rename, once copied as the version with `etag`: deleted only if
    /// it still is that version. One another client wrote since the copy stays (under the old
    /// name, as if written just after the rename), so no acknowledged write is lost.
    async fn delete_moved_source(&self, from: &str, etag: &str) -> FsResult<()> {
        match self.store.delete_if_match(&self.key_of(from), etag).await {
            Ok(()) => self.delete_name_object(from).await,
            Err(StoreError::PreconditionFailed { key }) => {
                log::warn!(
                    "renamed {from}, but another client wrote it since the copy: its new version \
                     stays at {key}"
                );
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Every object below `prefix` (key, listed ETag or "" where the server gave none, size).
    async fn list_below(&self, prefix: &str) -> FsResult<Vec<(String, String, u64)>> {
        let mut keys = Vec::new();
        let mut token = None;
        let mut pager = Pager::new(prefix);
        loop {
            let page = self
                .store
                .list_names(&ListRequest {
                    prefix: prefix.to_owned(),
                    delimiter: None,
                    continuation_token: token.take(),
                    max_keys: 1000,
                })
                .await?;
            pager.check(&page)?;
            keys.extend(page.objects.into_iter().map(|o| (o.key, o.etag, o.size)));
            match page.next_continuation_token {
                Some(t) => token = Some(t),
                None => return Ok(keys),
            }
        }
    }

    /// The sources of a directory move to delete once copied: the keys first listed (`keys`)
    /// that are still there, less those another client wrote since their copy (`copied`: the
    /// ETag each copy read), which stay under the old name. Listed again just before the
    /// delete, so the window for a write to be lost is this listing's, not the copies'; a
    /// server whose listing gives no ETag cannot narrow it (docs/SEMANTICS.md).
    async fn unchanged_sources(
        &self,
        from: &str,
        from_prefix: &str,
        keys: &[(String, String, u64)],
        copied: &HashMap<String, String>,
    ) -> FsResult<Vec<String>> {
        let first: HashSet<&str> = keys.iter().map(|(k, _, _)| k.as_str()).collect();
        let mut sources = Vec::new();
        for (key, etag, _) in self.list_below(from_prefix).await? {
            if !first.contains(key.as_str()) {
                continue;
            }
            // An empty ETag: the server's listing gives none (s3rver), nothing to compare.
            let changed = copied
                .get(&key)
                .is_some_and(|read| !etag.is_empty() && unquoted(read) != unquoted(&etag));
            if changed {
                log::warn!(
                    "renamed {from}, but another client wrote {key} since its copy: that \
                     version stays under the old name"
                );
            } else {
                sources.push(key);
            }
        }
        Ok(sources)
    }

    async fn resolve_cached(&self, path: &str) -> Option<Entry> {
        self.ns.cached(path).await
    }

    async fn finish_rename(&self, from: &str, to: &str) {
        self.ns.moved_file(from, to).await;
    }

    /// Move a directory: every key below it is copied server-side, then the sources deleted.
    /// Interrupted half-way, both trees hold complete copies of what was copied; running the
    /// rename again finishes it. Files open below it are uploaded first.
    async fn rename_dir(
        &self,
        from: &str,
        to: &str,
        attrs: &StoredAttrs,
        dst: &Entry,
    ) -> FsResult<()> {
        let pending: Vec<Arc<OpenFile>> = self.lock_open().values().cloned().collect();
        for of in &pending {
            let below = {
                let st = of.state.lock().await;
                // Content and deferred attribute changes both: the copies below carry what
                // the store holds, so a chmod made just before must be written first.
                is_below(&st.path, from) && st.needs_sync()
            };
            if below {
                self.sync_file(of).await?;
            }
        }
        let from_prefix = self.dir_prefix(from);
        let to_prefix = self.dir_prefix(to);
        let keys = self.list_below(&from_prefix).await?;
        if matches!(dst, Entry::Dir { .. }) {
            self.store.delete(&to_prefix).await?;
        }
        let has_marker = keys.iter().any(|(k, _, _)| *k == from_prefix);
        let (moves, name_objects) = self.plan_dir_move(from, to, &keys).await?;
        // Names first (only shortened names have objects of their own), then the entries.
        self.put_name_object(to).await?;
        for (key, content) in name_objects {
            self.store.put(&key, content, PutOptions::default()).await?;
        }
        let copies: Vec<(String, String, FsResult<String>)> = stream::iter(moves)
            .map(|(key, dest)| async move {
                let r = self.copy_resealed(&key, &dest).await;
                (key, dest, r)
            })
            .buffer_unordered(16)
            .collect()
            .await;
        let copied = self.undo_failed_copies(from, to, copies).await?;
        if !has_marker {
            self.put_dir_marker(to, attrs).await?;
        }
        // The sources go in DeleteObjects batches of up to 1,000 keys (single deletes on a
        // server without it). A key left behind is still a complete copy: the rename fails and
        // running it again finishes it.
        let sources = self
            .unchanged_sources(from, &from_prefix, &keys, &copied)
            .await?;
        let failed = self.store.delete_many(&sources).await?;
        if let Some(first) = failed.into_iter().next() {
            log::error!(
                "renaming {from} to {to}: cannot delete the old {}: {}",
                first.key,
                first.error
            );
            return Err(first.error.into());
        }
        self.delete_name_object(from).await?;
        // Open files below follow the move.
        for of in &pending {
            let mut st = of.state.lock().await;
            if is_below(&st.path, from) {
                st.path = format!("{to}{}", &st.path[from.len()..]);
                let new_key = self.key_of(&st.path);
                if let Some(b) = st.base.as_mut() {
                    if b.key.starts_with(&from_prefix) {
                        b.key = new_key;
                        // ETag may differ after copy: refresh lazily from the store.
                        if let Ok(info) = self.store.head(&b.key).await {
                            b.etag = info.etag;
                        }
                    }
                }
            }
        }
        self.ns.moved_dir(from, to);
        Ok(())
    }
}

/// An ETag without the quotes S3 puts around it (listings and HEADs may differ in that).
fn unquoted(etag: &str) -> &str {
    etag.trim().trim_matches('"')
}
