//! A fault-injecting wrapper around any store, for tests: fail every CopyObject after the
//! first N, fail every write while "the server is down", run a hook before each copy (to
//! change an object "concurrently"), run a hook before each LIST (to change local state
//! while a tool walks the vault), and record every GET with its range (to prove a tool
//! read only object headers), and hold every write until released (a slow upload).
//!
//! Everything else passes through unchanged, including the inner store's counters.

use std::fmt;
use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;

use super::{
    CompletedPart, CopyOptions, DeleteFailure, DynStore, GetOutput, ListPage, ListRequest,
    ObjectInfo, ObjectStore, PendingUpload, PutOptions, PutOutput, StatsSnapshot, StoreError,
    StoreResult,
};

type CopyHook = Box<dyn Fn(u64, &str) + Send + Sync>;
type ListHook = Box<dyn Fn(&ListRequest) + Send + Sync>;

/// One GET as the wrapper saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetRecord {
    pub key: String,
    pub range: Option<Range<u64>>,
    /// Bytes returned (0 for a failed GET).
    pub bytes: u64,
}

pub struct FaultyStore {
    inner: DynStore,
    copies: AtomicU64,
    /// Copies numbered above this fail (`u64::MAX`: none).
    fail_copies_after: AtomicU64,
    before_copy: Mutex<Option<CopyHook>>,
    after_copy: Mutex<Option<CopyHook>>,
    before_list: Mutex<Option<ListHook>>,
    gets: Mutex<Vec<GetRecord>>,
    /// While set, every write (PUT, multipart calls, copy) fails as if the server were down.
    writes_down: std::sync::atomic::AtomicBool,
    /// While `true`, every write waits (a slow upload, as long as a test needs it).
    writes_held: tokio::sync::watch::Sender<bool>,
}

impl FaultyStore {
    pub fn new(inner: DynStore) -> std::sync::Arc<FaultyStore> {
        std::sync::Arc::new(FaultyStore {
            inner,
            copies: AtomicU64::new(0),
            fail_copies_after: AtomicU64::new(u64::MAX),
            before_copy: Mutex::new(None),
            after_copy: Mutex::new(None),
            before_list: Mutex::new(None),
            gets: Mutex::new(Vec::new()),
            writes_down: std::sync::atomic::AtomicBool::new(false),
            writes_held: tokio::sync::watch::Sender::new(false),
        })
    }

    /// Make every write wait (`true`) until released (`false`): an upload that takes as long
    /// as the test wants, with nothing timed.
    pub fn hold_writes(&self, held: bool) {
        self.writes_held.send_replace(held);
    }

    /// Wait while writes are held, then fail if the server is "down".
    async fn gate_writes(&self, key: &str) -> StoreResult<()> {
        let mut held = self.writes_held.subscribe();
        let _ = held.wait_for(|h| !*h).await;
        self.check_writes(key)
    }

    /// Make every write fail (`true`) with a transient error, as an unreachable server
    /// would, or work again (`false`).
    pub fn set_writes_down(&self, down: bool) {
        self.writes_down.store(down, Ordering::SeqCst);
    }

    fn check_writes(&self, key: &str) -> StoreResult<()> {
        if self.writes_down.load(Ordering::SeqCst) {
            return Err(StoreError::Transient {
                key: key.to_owned(),
                reason: "injected: server unreachable".into(),
            });
        }
        Ok(())
    }

    /// From now on, every copy after the first `n` (counted from the wrapper's creation)
    /// fails with a transient error, as a dropped connection would.
    pub fn fail_copies_after(&self, n: u64) {
        self.fail_copies_after.store(n, Ordering::SeqCst);
    }

    /// Stop injecting copy failures.
    pub fn heal(&self) {
        self.fail_copies_after.store(u64::MAX, Ordering::SeqCst);
    }

    /// Run `hook(copy_number, source_key)` before each copy is forwarded (numbers from 1).
    pub fn before_copy(&self, hook: impl Fn(u64, &str) + Send + Sync + 'static) {
        *self.lock_hook() = Some(Box::new(hook));
    }

    /// Run `hook(copy_number, source_key)` after each copy succeeded (another client writing
    /// the source between a rename's copy and its delete, say).
    pub fn after_copy(&self, hook: impl Fn(u64, &str) + Send + Sync + 'static) {
        *self.after_copy.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(hook));
    }

    /// Run `hook(request)` before each LIST is forwarded.
    pub fn before_list(&self, hook: impl Fn(&ListRequest) + Send + Sync + 'static) {
        *self.before_list.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(hook));
    }

    /// Copies attempted so far.
    pub fn copies(&self) -> u64 {
        self.copies.load(Ordering::SeqCst)
    }

    /// Every GET so far, in order.
    pub fn gets(&self) -> Vec<GetRecord> {
        self.gets.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn clear_gets(&self) {
        self.gets.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    fn lock_hook(&self) -> std::sync::MutexGuard<'_, Option<CopyHook>> {
        self.before_copy.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl fmt::Debug for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyStore")
            .field("inner", &self.inner)
            .field("copies", &self.copies())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn head(&self, key: &str) -> StoreResult<ObjectInfo> {
        self.inner.head(key).await
    }

    async fn get(
        &self,
        key: &str,
        range: Option<Range<u64>>,
        if_match: Option<&str>,
    ) -> StoreResult<GetOutput> {
        let result = self.inner.get(key, range.clone(), if_match).await;
        let bytes = result.as_ref().map_or(0, |o| o.data.len() as u64);
        self.gets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(GetRecord {
                key: key.to_owned(),
                range,
                bytes,
            });
        result
    }

    async fn put(&self, key: &str, body: Bytes, opts: PutOptions) -> StoreResult<PutOutput> {
        self.gate_writes(key).await?;
        self.inner.put(key, body, opts).await
    }

    async fn create_multipart(&self, key: &str, opts: PutOptions) -> StoreResult<String> {
        self.gate_writes(key).await?;
        self.inner.create_multipart(key, opts).await
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Bytes,
    ) -> StoreResult<String> {
        self.gate_writes(key).await?;
        self.inner
            .upload_part(key, upload_id, part_number, body)
            .await
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> StoreResult<PutOutput> {
        self.gate_writes(key).await?;
        self.inner.complete_multipart(key, upload_id, parts).await
    }

    async fn set_upload_if_match(
        &self,
        key: &str,
        upload_id: &str,
        if_match: Option<String>,
    ) -> StoreResult<()> {
        self.inner
            .set_upload_if_match(key, upload_id, if_match)
            .await
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> StoreResult<()> {
        self.inner.abort_multipart(key, upload_id).await
    }

    async fn list_uploads(&self, prefix: &str) -> StoreResult<Vec<PendingUpload>> {
        self.inner.list_uploads(prefix).await
    }

    async fn list(&self, req: &ListRequest) -> StoreResult<ListPage> {
        if let Some(hook) = &*self.before_list.lock().unwrap_or_else(|p| p.into_inner()) {
            hook(req);
        }
        self.inner.list(req).await
    }

    async fn list_names(&self, req: &ListRequest) -> StoreResult<ListPage> {
        if let Some(hook) = &*self.before_list.lock().unwrap_or_else(|p| p.into_inner()) {
            hook(req);
        }
        self.inner.list_names(req).await
    }

    async fn copy(&self, src: &str, dst: &str, opts: CopyOptions) -> StoreResult<PutOutput> {
        self.gate_writes(dst).await?;
        let n = self.copies.fetch_add(1, Ordering::SeqCst) + 1;
        if n > self.fail_copies_after.load(Ordering::SeqCst) {
            return Err(StoreError::Transient {
                key: src.to_owned(),
                reason: format!("injected fault: copy number {n}"),
            });
        }
        if let Some(hook) = &*self.lock_hook() {
            hook(n, src);
        }
        let out = self.inner.copy(src, dst, opts).await?;
        if let Some(hook) = &*self.after_copy.lock().unwrap_or_else(|p| p.into_inner()) {
            hook(n, src);
        }
        Ok(out)
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        self.inner.delete(key).await
    }

    async fn delete_if_match(&self, key: &str, etag: &str) -> StoreResult<()> {
        self.inner.delete_if_match(key, etag).await
    }

    async fn delete_many(&self, keys: &[String]) -> StoreResult<Vec<DeleteFailure>> {
        self.inner.delete_many(keys).await
    }

    fn stats(&self) -> Option<StatsSnapshot> {
        self.inner.stats()
    }
}
