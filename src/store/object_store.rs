//! The [`ObjectStore`] trait and the requests and answers it speaks in (S3's vocabulary).
//!
//! These types name nothing of any implementation, so every store, and everything above the
//! store layer, imports them from here without closing a cycle.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;

use super::error::StoreResult;
use super::sse::ObjectSse;
use super::stats::StatsSnapshot;

/// User metadata of an object, keys lowercase and without the `x-amz-meta-` prefix.
pub type Metadata = BTreeMap<String, String>;

/// Smallest size S3 accepts for a multipart part other than the last.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Largest number of parts in one multipart upload.
pub const MAX_PARTS: u32 = 10_000;
/// Largest object a single PUT or CopyObject may create.
pub const MAX_SINGLE_PUT: u64 = 5 * 1024 * 1024 * 1024;
/// Most keys one DeleteObjects request may name.
pub const MAX_DELETE_BATCH: usize = 1000;

/// What HEAD (and GET) say about an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    /// Stored (ciphertext) size in bytes.
    pub size: u64,
    /// Quoted ETag as S3 returns it, e.g. `"9b2cf535f27731c974343645a3985328"`.
    pub etag: String,
    pub last_modified: SystemTime,
    /// User metadata; `None` in listings (S3's LIST does not return it).
    pub metadata: Option<Metadata>,
    /// The server-side encryption the object is stored with, as HEAD and GET report it;
    /// `None` in listings.
    pub sse: Option<ObjectSse>,
}

/// The result of a GET: the bytes of the requested range and the object they came from.
#[derive(Clone, Debug)]
pub struct GetOutput {
    pub data: Bytes,
    /// Info of the whole object (size is the whole object's size, not the range's).
    pub info: ObjectInfo,
}

/// Conditions and metadata for PUT and CreateMultipartUpload.
#[derive(Clone, Debug, Default)]
pub struct PutOptions {
    pub metadata: Metadata,
    /// Succeed only if the current object has this ETag (412 otherwise, 404 if missing).
    pub if_match: Option<String>,
    /// Succeed only if no object exists at the key (`If-None-Match: *`).
    pub if_none_match: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutOutput {
    pub etag: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompletedPart {
    pub part_number: u32,
    pub etag: String,
}

#[derive(Clone, Debug, Default)]
pub enum MetadataDirective {
    /// Keep the source object's metadata.
    #[default]
    Copy,
    /// Replace it with this metadata.
    Replace(Metadata),
}

#[derive(Clone, Debug, Default)]
pub struct CopyOptions {
    pub metadata: MetadataDirective,
    /// `x-amz-copy-source-if-match`: copy only if the source still has this ETag.
    pub source_if_match: Option<String>,
    /// The source's stored size, when the caller knows it: a store whose single copy is
    /// limited (S3: 5 GiB) then goes straight to a multipart copy for larger sources. Copies
    /// of any size work without it; it only saves the failed first attempt.
    pub source_size: Option<u64>,
}

/// A ListObjectsV2 request.
#[derive(Clone, Debug, Default)]
pub struct ListRequest {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub continuation_token: Option<String>,
    /// 1..=1000; 0 means 1000.
    pub max_keys: usize,
}

/// One page of a ListObjectsV2 answer, keys in UTF-8 binary order.
#[derive(Clone, Debug, Default)]
pub struct ListPage {
    pub objects: Vec<ObjectInfo>,
    pub common_prefixes: Vec<String>,
    /// Present when the listing was truncated; pass it back to get the next page.
    pub next_continuation_token: Option<String>,
}

/// A key [`ObjectStore::delete_many`] did not delete, and why.
#[derive(Debug)]
pub struct DeleteFailure {
    pub key: String,
    pub error: super::StoreError,
}

/// A multipart upload neither completed nor aborted (a crash while a large file was being
/// written leaves one; its parts are stored, and billed, until it is aborted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingUpload {
    pub key: String,
    pub upload_id: String,
    pub initiated: SystemTime,
}

/// The S3 operations s3cryptfs needs. Keys are full object keys (prefix included).
#[async_trait]
pub trait ObjectStore: Send + Sync + fmt::Debug {
    async fn head(&self, key: &str) -> StoreResult<ObjectInfo>;
    /// GET `range` (end exclusive; `None` = whole object). A range past the end is clipped as
    /// S3 does; a range starting at or past the end of a non-empty object is `InvalidRange`;
    /// any range of an empty object gives an empty body. An empty range (`start >= end`) cannot
    /// be expressed in HTTP and is `InvalidArgument`.
    /// `if_match`: fail with `PreconditionFailed` unless the object has this ETag.
    async fn get(
        &self,
        key: &str,
        range: Option<Range<u64>>,
        if_match: Option<&str>,
    ) -> StoreResult<GetOutput>;
    async fn put(&self, key: &str, body: Bytes, opts: PutOptions) -> StoreResult<PutOutput>;
    /// Returns the upload id.
    async fn create_multipart(&self, key: &str, opts: PutOptions) -> StoreResult<String>;
    /// Returns the part's ETag. Part numbers are 1..=10000; uploading a number again replaces it.
    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Bytes,
    ) -> StoreResult<String>;
    /// Parts must be in ascending order; all but the last at least `MIN_PART_SIZE`.
    /// Conditions given at create time (if_match / if_none_match) are checked here. A failed
    /// completion leaves the upload open (abort it, or complete it again), as in S3.
    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> StoreResult<PutOutput>;
    /// Replace the `If-Match` condition an open multipart upload's completion is checked
    /// against (`None`: unconditional; any If-None-Match goes). Bookkeeping only, no request:
    /// S3 takes conditions with CompleteMultipartUpload. Used when another client replaced
    /// the object while this upload was open (`fs/conflict.rs`).
    async fn set_upload_if_match(
        &self,
        key: &str,
        upload_id: &str,
        if_match: Option<String>,
    ) -> StoreResult<()>;
    async fn abort_multipart(&self, key: &str, upload_id: &str) -> StoreResult<()>;
    /// Multipart uploads of keys under `prefix` that were neither completed nor aborted (all
    /// of them, however many pages the server takes), oldest first.
    async fn list_uploads(&self, prefix: &str) -> StoreResult<Vec<PendingUpload>>;
    async fn list(&self, req: &ListRequest) -> StoreResult<ListPage>;
    /// [`Self::list`] for a caller that needs keys and sizes but not ETags: an entry the
    /// server listed without ETag keeps an empty one instead of costing a HEAD (S3Store; the
    /// other stores list ETags anyway). The file system lists directories this way and takes
    /// an empty ETag as "unknown".
    async fn list_names(&self, req: &ListRequest) -> StoreResult<ListPage> {
        self.list(req).await
    }
    /// Server-side copy (objects up to `MAX_SINGLE_PUT`). A missing source is `NotFound`, a
    /// source whose ETag is not `source_if_match` is `PreconditionFailed`, and copying an
    /// object onto itself needs `MetadataDirective::Replace` (`InvalidArgument` otherwise), as
    /// in S3. The copy's ETag is the MD5 of its body, even for a multipart source (except
    /// where `S3Store` copies through the client because the server refused: above one part,
    /// that copy is a multipart upload with a multipart ETag).
    async fn copy(&self, src: &str, dst: &str, opts: CopyOptions) -> StoreResult<PutOutput>;
    /// Deleting a missing key succeeds, as in S3.
    async fn delete(&self, key: &str) -> StoreResult<()>;
    /// Delete `key` only while its ETag is `etag` (DeleteObject with If-Match): another
    /// ETag is `PreconditionFailed` and the object stays; a missing key succeeds. Used by
    /// renames, so that a version another client wrote between the copy and the delete of
    /// the source is kept. A server that ignores the condition deletes unconditionally
    /// (docs/SERVERS.md says which).
    async fn delete_if_match(&self, key: &str, etag: &str) -> StoreResult<()>;
    /// Delete `keys`: in requests of at most [`MAX_DELETE_BATCH`] keys where the store has a
    /// batch request (S3's DeleteObjects), else one [`Self::delete`] per key (this default).
    /// A missing key counts as deleted. Returns the keys that were not deleted, each with its
    /// error; `Err` when a whole request failed, after which any key asked for may or may not
    /// be gone (deleting again is safe).
    async fn delete_many(&self, keys: &[String]) -> StoreResult<Vec<DeleteFailure>> {
        let mut failed = Vec::new();
        for key in keys {
            if let Err(error) = self.delete(key).await {
                failed.push(DeleteFailure {
                    key: key.clone(),
                    error,
                });
            }
        }
        Ok(failed)
    }
    /// Request counters, where the store keeps them (the memory store does).
    fn stats(&self) -> Option<StatsSnapshot> {
        None
    }
}

pub type DynStore = Arc<dyn ObjectStore>;
