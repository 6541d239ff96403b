//! In-process store: a sorted map of objects behind a mutex, with S3's rules.
//!
//! Used by unit and property tests, and by `mem://name` URLs. Every request is counted (with
//! its body bytes) in [`RequestStats`], so tests can assert how many GETs a read took. The
//! `raw_*` helpers read and change objects without being counted, to tamper with data in tests.
//!
//! `MemoryStore::named` keeps a process-global registry, so every opener of `mem://x` sees the
//! same objects for the life of the process.
//!
//! Server-side encryption follows S3 (see [`SseMode::check_read`]): each store is one client
//! with its own [`SseMode`] ([`MemoryStore::with_sse`] opens another client of the same
//! objects); objects remember the SSE they were written with, SSE-S3/KMS are echoed in
//! [`ObjectInfo::sse`], and SSE-C objects answer only to their key.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::{Bound, Range};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};

use super::list::{ListCursor, Walk};
use super::rules;
use super::sse::{ObjectSse, SseMode};
use super::{
    CompletedPart, CopyOptions, DeleteFailure, GetOutput, ListPage, ListRequest, MAX_DELETE_BATCH,
    Metadata, MetadataDirective, ObjectInfo, ObjectStore, Op, PendingUpload, PutOptions, PutOutput,
    RequestStats, StatsSnapshot, StoreError, StoreResult,
};

/// An in-process object store with S3 semantics.
pub struct MemoryStore {
    name: String,
    shared: Arc<Shared>,
    /// What this client asks the "server" for.
    sse: SseMode,
}

/// The objects and counters every client of one store shares.
#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    stats: RequestStats,
}

#[derive(Default)]
struct State {
    objects: BTreeMap<String, StoredObject>,
    uploads: HashMap<String, Upload>,
}

#[derive(Clone)]
struct StoredObject {
    data: Bytes,
    etag: String,
    last_modified: SystemTime,
    metadata: Metadata,
    sse: ObjectSse,
}

impl StoredObject {
    fn new(data: Bytes, etag: String, metadata: Metadata, sse: ObjectSse) -> Self {
        StoredObject {
            data,
            etag,
            last_modified: SystemTime::now(),
            metadata,
            sse,
        }
    }

    fn info(&self, key: &str, with_metadata: bool) -> ObjectInfo {
        ObjectInfo {
            key: key.to_owned(),
            size: self.data.len() as u64,
            etag: self.etag.clone(),
            last_modified: self.last_modified,
            metadata: with_metadata.then(|| self.metadata.clone()),
            sse: with_metadata.then(|| self.sse.clone()),
        }
    }
}

struct Upload {
    key: String,
    /// Metadata and the conditions checked at completion.
    opts: PutOptions,
    /// The SSE given at create time; SSE-C parts must carry the same key.
    sse: ObjectSse,
    parts: BTreeMap<u32, Part>,
    initiated: SystemTime,
}

struct Part {
    data: Bytes,
    md5: [u8; 16],
}

impl MemoryStore {
    /// A fresh, private, empty store.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::with_name(""))
    }

    fn with_name(name: &str) -> Self {
        MemoryStore {
            name: name.to_owned(),
            shared: Arc::default(),
            sse: SseMode::None,
        }
    }

    /// Another client of the same objects (and counters) that applies `sse` to its requests,
    /// as an `S3Store` with that mode would.
    pub fn with_sse(&self, sse: SseMode) -> Arc<Self> {
        Arc::new(MemoryStore {
            name: self.name.clone(),
            shared: Arc::clone(&self.shared),
            sse,
        })
    }

    /// The SSE mode this client applies.
    pub fn sse(&self) -> &SseMode {
        &self.sse
    }

    /// The store named `name` in this process, created empty on first use. Stores live until the
    /// process exits, so `mem://x` opened twice (say by `init` then `mount`) is the same store.
    pub fn named(name: &str) -> Arc<Self> {
        static REGISTRY: OnceLock<Mutex<HashMap<String, Arc<MemoryStore>>>> = OnceLock::new();
        let registry = REGISTRY.get_or_init(Default::default);
        let mut registry = registry.lock().unwrap_or_else(|e| e.into_inner());
        registry
            .entry(name.to_owned())
            .or_insert_with(|| Arc::new(Self::with_name(name)))
            .clone()
    }

    /// Set every request and byte counter back to zero.
    pub fn reset_stats(&self) {
        self.shared.stats.reset();
    }

    /// The bytes of `key`, without counting a request.
    pub fn raw_get(&self, key: &str) -> Option<Vec<u8>> {
        self.state().objects.get(key).map(|o| o.data.to_vec())
    }

    /// Replace (or create) the bytes of `key` without counting a request, keeping its user
    /// metadata. The ETag becomes the MD5 of the new bytes, as a PUT would make it.
    pub fn raw_put(&self, key: &str, bytes: impl Into<Bytes>) {
        let data: Bytes = bytes.into();
        let mut state = self.state();
        let (metadata, sse) = state
            .objects
            .get(key)
            .map(|o| (o.metadata.clone(), o.sse.clone()))
            .unwrap_or_default();
        let etag = rules::md5_etag(&data);
        state
            .objects
            .insert(key.to_owned(), StoredObject::new(data, etag, metadata, sse));
    }

    /// Replace (or create) `key` with these bytes and this user metadata, as a PUT from
    /// another client would, without counting a request.
    pub fn raw_put_with_metadata(&self, key: &str, bytes: impl Into<Bytes>, metadata: Metadata) {
        let data: Bytes = bytes.into();
        let etag = rules::md5_etag(&data);
        self.state().objects.insert(
            key.to_owned(),
            StoredObject::new(data, etag, metadata, ObjectSse::default()),
        );
    }

    /// Every key, in order, without counting a request.
    pub fn keys(&self) -> Vec<String> {
        self.state().objects.keys().cloned().collect()
    }

    /// `(key, upload id)` of every multipart upload neither completed nor aborted.
    pub fn pending_uploads(&self) -> Vec<(String, String)> {
        let mut uploads: Vec<_> = self
            .state()
            .uploads
            .iter()
            .map(|(id, upload)| (upload.key.clone(), id.clone()))
            .collect();
        uploads.sort();
        uploads
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every mutation completes before the guard drops, so a panic elsewhere cannot leave
        // the map half-changed: recovering from poisoning is safe.
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a request that took `attempts` tries (one per SSE-C key tried).
    fn record_attempts(&self, op: Op, attempts: u64, bytes: u64) {
        for _ in 1..attempts {
            self.shared.stats.record(op, 0);
        }
        self.shared.stats.record(op, bytes);
    }

    fn upload<'s>(state: &'s mut State, key: &str, upload_id: &str) -> StoreResult<&'s mut Upload> {
        match state.uploads.get_mut(upload_id) {
            Some(upload) if upload.key == key => Ok(upload),
            _ => Err(StoreError::NoSuchUpload {
                key: key.into(),
                upload_id: upload_id.into(),
            }),
        }
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("MemoryStore")
            .field("name", &self.name)
            .field("sse", &self.sse.name())
            .field("objects", &state.objects.len())
            .field("uploads", &state.uploads.len())
            .finish()
    }
}

#[async_trait]
impl ObjectStore for MemoryStore {
    async fn head(&self, key: &str) -> StoreResult<ObjectInfo> {
        let (result, attempts) = (|| {
            rules::check_key(key)?;
            let state = self.state();
            let object = state
                .objects
                .get(key)
                .ok_or_else(|| StoreError::NotFound { key: key.into() })?;
            let (allowed, attempts) = self.sse.check_read("HeadObject", key, &object.sse);
            Ok((allowed.map(|()| object.info(key, true)), attempts))
        })()
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
        let mut attempts = 1;
        let result = (|| {
            rules::check_key(key)?;
            let state = self.state();
            let object = state
                .objects
                .get(key)
                .ok_or_else(|| StoreError::NotFound { key: key.into() })?;
            let (allowed, tries) = self.sse.check_read("GetObject", key, &object.sse);
            attempts = tries;
            allowed?;
            rules::check_read_condition(key, &object.etag, if_match)?;
            let range = rules::resolve_range(key, range, object.data.len() as u64)?;
            // Both ends are within the object, which is in memory, so they fit in usize.
            let data = object.data.slice(range.start as usize..range.end as usize);
            Ok(GetOutput {
                data,
                info: object.info(key, true),
            })
        })();
        let bytes = result.as_ref().map_or(0, |out| out.data.len() as u64);
        self.record_attempts(Op::Get, attempts, bytes);
        result
    }

    async fn put(&self, key: &str, body: Bytes, opts: PutOptions) -> StoreResult<PutOutput> {
        // Kept as a copy of its own: a caller's body may hold its memory budget until every
        // reference to it is gone, and a real store sends the bytes and drops them.
        let body = Bytes::copy_from_slice(&body);
        self.shared.stats.record(Op::Put, body.len() as u64);
        rules::check_key(key)?;
        rules::check_single_put_size(key, body.len() as u64)?;
        let etag = rules::md5_etag(&body);
        let mut state = self.state();
        let current = state.objects.get(key).map(|o| o.etag.as_str());
        rules::check_write_conditions(key, current, &opts)?;
        let metadata = rules::normalize_metadata(&opts.metadata);
        state.objects.insert(
            key.to_owned(),
            StoredObject::new(body, etag.clone(), metadata, self.sse.object_sse()),
        );
        Ok(PutOutput { etag })
    }

    async fn create_multipart(&self, key: &str, opts: PutOptions) -> StoreResult<String> {
        self.shared.stats.record(Op::CreateMultipart, 0);
        rules::check_key(key)?;
        let upload_id = rules::new_upload_id(key)?;
        let opts = PutOptions {
            metadata: rules::normalize_metadata(&opts.metadata),
            ..opts
        };
        self.state().uploads.insert(
            upload_id.clone(),
            Upload {
                key: key.to_owned(),
                opts,
                sse: self.sse.object_sse(),
                parts: BTreeMap::new(),
                initiated: SystemTime::now(),
            },
        );
        Ok(upload_id)
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Bytes,
    ) -> StoreResult<String> {
        self.shared.stats.record(Op::UploadPart, body.len() as u64);
        rules::check_part_number(key, part_number)?;
        rules::check_single_put_size(key, body.len() as u64)?;
        let md5 = rules::md5(&body);
        let mut state = self.state();
        let upload = Self::upload(&mut state, key, upload_id)?;
        rules::check_part_sse(key, &upload.sse, &self.sse.object_sse())?;
        // A copy of its own, as in `put`.
        let data = Bytes::copy_from_slice(&body);
        upload.parts.insert(part_number, Part { data, md5 });
        Ok(rules::etag_from_md5(&md5))
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> StoreResult<PutOutput> {
        self.shared.stats.record(Op::CompleteMultipart, 0);
        let mut state = self.state();
        let upload = Self::upload(&mut state, key, upload_id)?;
        rules::check_part_list(key, parts, |number| {
            Ok(upload.parts.get(&number).map(|part| rules::UploadedPart {
                etag: rules::etag_from_md5(&part.md5),
                size: part.data.len() as u64,
            }))
        })?;
        let current = state.objects.get(key).map(|o| o.etag.clone());
        let upload = Self::upload(&mut state, key, upload_id)?;
        rules::check_write_conditions(key, current.as_deref(), &upload.opts)?;

        let size = parts
            .iter()
            .filter_map(|p| upload.parts.get(&p.part_number))
            .map(|p| p.data.len())
            .sum();
        let mut data = BytesMut::with_capacity(size);
        let mut digests = Vec::with_capacity(parts.len());
        for part in parts
            .iter()
            .filter_map(|p| upload.parts.get(&p.part_number))
        {
            data.extend_from_slice(&part.data);
            digests.push(part.md5);
        }
        let etag = rules::multipart_etag(&digests);
        let metadata = std::mem::take(&mut upload.opts.metadata);
        let sse = std::mem::take(&mut upload.sse);
        state.uploads.remove(upload_id);
        state.objects.insert(
            key.to_owned(),
            StoredObject::new(data.freeze(), etag.clone(), metadata, sse),
        );
        Ok(PutOutput { etag })
    }

    async fn set_upload_if_match(
        &self,
        key: &str,
        upload_id: &str,
        if_match: Option<String>,
    ) -> StoreResult<()> {
        let mut state = self.state();
        let upload = Self::upload(&mut state, key, upload_id)?;
        upload.opts.if_match = if_match;
        upload.opts.if_none_match = false;
        Ok(())
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> StoreResult<()> {
        self.shared.stats.record(Op::AbortMultipart, 0);
        let mut state = self.state();
        Self::upload(&mut state, key, upload_id)?;
        state.uploads.remove(upload_id);
        Ok(())
    }

    async fn list_uploads(&self, prefix: &str) -> StoreResult<Vec<PendingUpload>> {
        self.shared.stats.record(Op::List, 0);
        let mut uploads: Vec<PendingUpload> = self
            .state()
            .uploads
            .iter()
            .filter(|(_, u)| u.key.starts_with(prefix))
            .map(|(id, u)| PendingUpload {
                key: u.key.clone(),
                upload_id: id.clone(),
                initiated: u.initiated,
            })
            .collect();
        uploads.sort_by(|a, b| (a.initiated, &a.key).cmp(&(b.initiated, &b.key)));
        Ok(uploads)
    }

    async fn list(&self, req: &ListRequest) -> StoreResult<ListPage> {
        self.shared.stats.record(Op::List, 0);
        let mut cursor = ListCursor::new(req)?;
        let state = self.state();
        let start = cursor.start_key().to_owned();
        for (key, object) in state
            .objects
            .range::<str, _>((Bound::Included(start.as_str()), Bound::Unbounded))
        {
            if cursor.offer_key(key, || Ok(Some(object.info(key, false))))? == Walk::Stop {
                break;
            }
        }
        Ok(cursor.finish())
    }

    async fn copy(&self, src: &str, dst: &str, opts: CopyOptions) -> StoreResult<PutOutput> {
        let mut attempts = 1;
        let result = self.copy_object(src, dst, &opts, &mut attempts);
        self.record_attempts(Op::Copy, attempts, 0);
        result
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        self.shared.stats.record(Op::Delete, 0);
        rules::check_key(key)?;
        self.state().objects.remove(key);
        Ok(())
    }

    async fn delete_if_match(&self, key: &str, etag: &str) -> StoreResult<()> {
        self.shared.stats.record(Op::Delete, 0);
        rules::check_key(key)?;
        let mut state = self.state();
        match state.objects.get(key) {
            None => Ok(()),
            Some(object) if !rules::etag_matches(etag, &object.etag) => {
                Err(StoreError::PreconditionFailed { key: key.into() })
            }
            Some(_) => {
                state.objects.remove(key);
                Ok(())
            }
        }
    }

    /// DeleteObjects as S3 answers it: one request per [`MAX_DELETE_BATCH`] keys, an invalid
    /// key failing alone.
    async fn delete_many(&self, keys: &[String]) -> StoreResult<Vec<DeleteFailure>> {
        let mut failed = Vec::new();
        for chunk in keys.chunks(MAX_DELETE_BATCH) {
            self.shared.stats.record(Op::DeleteBatch, 0);
            let mut state = self.state();
            for key in chunk {
                match rules::check_key(key) {
                    Ok(()) => {
                        state.objects.remove(key);
                    }
                    Err(error) => failed.push(DeleteFailure {
                        key: key.clone(),
                        error,
                    }),
                }
            }
        }
        Ok(failed)
    }

    fn stats(&self) -> Option<StatsSnapshot> {
        Some(self.shared.stats.snapshot())
    }
}

impl MemoryStore {
    /// CopyObject; `attempts` counts the tries with each SSE-C source key.
    fn copy_object(
        &self,
        src: &str,
        dst: &str,
        opts: &CopyOptions,
        attempts: &mut u64,
    ) -> StoreResult<PutOutput> {
        rules::check_key(src)?;
        rules::check_key(dst)?;
        let mut state = self.state();
        let source = state
            .objects
            .get(src)
            .ok_or_else(|| StoreError::NotFound { key: src.into() })?;
        // The copy source is read with the client's SSE-C keys (copy-source headers).
        let (allowed, tries) = self.sse.check_read("CopyObject", src, &source.sse);
        *attempts = tries;
        allowed?;
        if let Some(wanted) = &opts.source_if_match {
            if !rules::etag_matches(wanted, &source.etag) {
                return Err(StoreError::PreconditionFailed { key: src.into() });
            }
        }
        let metadata = match &opts.metadata {
            MetadataDirective::Copy if src == dst => {
                return Err(copy_onto_itself(src));
            }
            MetadataDirective::Copy => source.metadata.clone(),
            MetadataDirective::Replace(metadata) => rules::normalize_metadata(metadata),
        };
        let data = source.data.clone();
        // A copy is a new single-part object: its ETag is the MD5 of the whole body, even when
        // the source was uploaded in parts.
        let etag = match rules::md5_of_etag(&source.etag) {
            Some(_) => source.etag.clone(),
            None => rules::md5_etag(&data),
        };
        // The copy gets the SSE this request asks for, not the source's, as in S3.
        state.objects.insert(
            dst.to_owned(),
            StoredObject::new(data, etag.clone(), metadata, self.sse.object_sse()),
        );
        Ok(PutOutput { etag })
    }
}

/// S3 refuses a copy that would change nothing.
pub(crate) fn copy_onto_itself(key: &str) -> StoreError {
    StoreError::InvalidArgument(format!(
        "copying {key} onto itself without changing its metadata is not allowed \
         (use MetadataDirective::Replace)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn named_stores_are_shared() {
        let a = MemoryStore::named("memory-unit-shared");
        let b = MemoryStore::named("memory-unit-shared");
        a.put("k", Bytes::from_static(b"v"), PutOptions::default())
            .await
            .expect("put");
        assert_eq!(b.raw_get("k").as_deref(), Some(&b"v"[..]));
        assert!(MemoryStore::named("memory-unit-other").keys().is_empty());
    }

    #[tokio::test]
    async fn raw_helpers_are_not_counted_and_keep_metadata() {
        let store = MemoryStore::new();
        let opts = PutOptions {
            metadata: [("Mode".to_owned(), "33188".to_owned())].into(),
            ..PutOptions::default()
        };
        store
            .put("k", Bytes::from_static(b"abc"), opts)
            .await
            .expect("put");
        store.reset_stats();
        store.raw_put("k", b"xyz".to_vec());
        assert_eq!(store.raw_get("k").as_deref(), Some(&b"xyz"[..]));
        assert_eq!(store.keys(), vec!["k".to_owned()]);
        let counted = store.stats().expect("memory store counts");
        assert_eq!(counted.total_requests(), 0);
        let info = store.head("k").await.expect("head");
        assert_eq!(info.etag, rules::md5_etag(b"xyz"));
        let metadata = info.metadata.expect("head returns metadata");
        assert_eq!(metadata.get("mode").map(String::as_str), Some("33188"));
    }

    #[tokio::test]
    async fn pending_uploads_are_visible_until_completed_or_aborted() {
        let store = MemoryStore::new();
        let id = store
            .create_multipart("k", PutOptions::default())
            .await
            .expect("create");
        assert_eq!(store.pending_uploads(), vec![("k".to_owned(), id.clone())]);
        store.abort_multipart("k", &id).await.expect("abort");
        assert!(store.pending_uploads().is_empty());
        assert!(matches!(
            store.abort_multipart("k", &id).await,
            Err(StoreError::NoSuchUpload { .. })
        ));
    }
}
