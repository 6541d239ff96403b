//! Object stores: one async trait with S3 semantics, and its implementations.
//!
//! `MemoryStore` (in-process, counts requests and bytes for tests) and `DirStore` (a local
//! directory, the embedded default). Both follow S3's rules: ranged GETs, ETags, If-Match /
//! If-None-Match, ListObjectsV2 pagination with delimiter, multipart limits, copy with a
//! metadata directive. The store knows nothing of files or encryption.
//!
//! How the parts fit: `rules` holds the S3 rules both local stores apply (so they refuse the
//! same requests), `list` the ListObjectsV2 paging both use, `url` the store URLs `open`
//! accepts. `tests/fast/store_conformance.rs` runs one suite against every implementation.

pub mod dir;
pub mod faulty;
mod list;
pub mod memory;
mod options;
pub mod plain;
mod rules;
pub mod s3;
pub mod sse;
mod url;

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;

pub use dir::DirStore;
pub use memory::MemoryStore;
pub use options::{StoreOptions, open_store};
pub use plain::PlainDirStore;
pub use s3::{S3Settings, S3Store};
pub use sse::{ObjectSse, SseCKey, SseMode};
pub use url::StoreUrl;

/// User metadata of an object, keys lowercase and without the `x-amz-meta-` prefix.
pub type Metadata = BTreeMap<String, String>;

/// Smallest size S3 accepts for a multipart part other than the last.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Largest number of parts in one multipart upload.
pub const MAX_PARTS: u32 = 10_000;
/// Largest object a single PUT or CopyObject may create.
pub const MAX_SINGLE_PUT: u64 = 5 * 1024 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("object not found: {key}")]
    NotFound { key: String },
    #[error("precondition failed on {key} (object changed or already exists)")]
    PreconditionFailed { key: String },
    #[error("invalid range {start}..{end} for {key} of {size} bytes")]
    InvalidRange {
        key: String,
        start: u64,
        end: u64,
        size: u64,
    },
    #[error("no such multipart upload {upload_id} for {key}")]
    NoSuchUpload { key: String, upload_id: String },
    #[error(
        "multipart part {part_number} of {key} is {size} bytes; parts other than the last must be at least 5 MiB"
    )]
    EntityTooSmall {
        key: String,
        part_number: u32,
        size: u64,
    },
    #[error("invalid part list for {key}: {reason}")]
    InvalidPart { key: String, reason: String },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("access denied to {key}: {reason}")]
    AccessDenied { key: String, reason: String },
    #[error("I/O error on {key}: {source}")]
    Io {
        key: String,
        #[source]
        source: std::io::Error,
    },
    /// A failure that may succeed when tried again (5xx, timeouts, connection resets).
    #[error("transient store error on {key}: {reason}")]
    Transient { key: String, reason: String },
    /// The endpoint did not answer (refused, unresolvable, timed out connecting); the SDK has
    /// already retried. Transient: a server coming back makes the request work.
    #[error("transient store error on {key}: {reason}")]
    Unreachable {
        key: String,
        /// The request, what failed and the endpoint, e.g. "GetObject: cannot reach URL (...)".
        reason: String,
    },
    /// No credentials could be found for an s3:// store (nothing was sent).
    #[error("access denied to {store}: no AWS credentials found ({reason})")]
    NoCredentials { store: String, reason: String },
    /// The bucket does not exist at the endpoint.
    #[error("bucket {bucket} does not exist at {endpoint} (NoSuchBucket)")]
    NoSuchBucket { bucket: String, endpoint: String },
    /// The bucket is in another region than the one requests are signed for.
    #[error(
        "{detail}{}",
        bucket_region.as_ref().map(|r| format!("; the bucket is in {r}")).unwrap_or_default()
    )]
    WrongRegion {
        /// The bucket, the region used and what the server said.
        detail: String,
        /// The region the server named (`x-amz-bucket-region`), when it did.
        bucket_region: Option<String>,
    },
    /// Server-side encryption or connection settings given for a store that has none.
    #[error("{setting} applies to s3:// stores; {url} is not one")]
    S3Only { url: String, setting: S3Setting },
}

/// The settings only s3:// stores take, for [`StoreError::S3Only`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum S3Setting {
    /// Server-side encryption.
    Sse,
    /// Endpoint, region, path-style addressing.
    Connection,
}

impl fmt::Display for S3Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            S3Setting::Sse => "SSE",
            S3Setting::Connection => "the endpoint, region and path-style settings",
        })
    }
}

impl StoreError {
    /// Whether trying the same request again may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Transient { .. } | StoreError::Unreachable { .. }
        )
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

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
    async fn abort_multipart(&self, key: &str, upload_id: &str) -> StoreResult<()>;
    /// Multipart uploads of keys under `prefix` that were neither completed nor aborted (all
    /// of them, however many pages the server takes), oldest first.
    async fn list_uploads(&self, prefix: &str) -> StoreResult<Vec<PendingUpload>>;
    async fn list(&self, req: &ListRequest) -> StoreResult<ListPage>;
    /// Server-side copy (objects up to `MAX_SINGLE_PUT`). A missing source is `NotFound`, a
    /// source whose ETag is not `source_if_match` is `PreconditionFailed`, and copying an
    /// object onto itself needs `MetadataDirective::Replace` (`InvalidArgument` otherwise), as
    /// in S3. The copy's ETag is the MD5 of its body, even for a multipart source (except
    /// where `S3Store` copies through the client because the server refused: above one part,
    /// that copy is a multipart upload with a multipart ETag).
    async fn copy(&self, src: &str, dst: &str, opts: CopyOptions) -> StoreResult<PutOutput>;
    /// Deleting a missing key succeeds, as in S3.
    async fn delete(&self, key: &str) -> StoreResult<()>;
    /// Request counters, where the store keeps them (the memory store does).
    fn stats(&self) -> Option<StatsSnapshot> {
        None
    }
}

pub type DynStore = Arc<dyn ObjectStore>;

/// The operations counted by [`RequestStats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Head,
    Get,
    Put,
    CreateMultipart,
    UploadPart,
    CompleteMultipart,
    AbortMultipart,
    List,
    Copy,
    Delete,
}

impl Op {
    pub const ALL: [Op; 10] = [
        Op::Head,
        Op::Get,
        Op::Put,
        Op::CreateMultipart,
        Op::UploadPart,
        Op::CompleteMultipart,
        Op::AbortMultipart,
        Op::List,
        Op::Copy,
        Op::Delete,
    ];
    fn index(self) -> usize {
        self as usize
    }
}

/// Lock-free per-operation counters of requests and body bytes (sent for PUT/part, received
/// for GET).
#[derive(Debug, Default)]
pub struct RequestStats {
    requests: [AtomicU64; 10],
    bytes: [AtomicU64; 10],
}

impl RequestStats {
    pub fn record(&self, op: Op, bytes: u64) {
        self.requests[op.index()].fetch_add(1, Ordering::Relaxed);
        self.bytes[op.index()].fetch_add(bytes, Ordering::Relaxed);
    }
    pub fn snapshot(&self) -> StatsSnapshot {
        let mut s = StatsSnapshot::default();
        for op in Op::ALL {
            s.requests[op.index()] = self.requests[op.index()].load(Ordering::Relaxed);
            s.bytes[op.index()] = self.bytes[op.index()].load(Ordering::Relaxed);
        }
        s
    }
    pub fn reset(&self) {
        for op in Op::ALL {
            self.requests[op.index()].store(0, Ordering::Relaxed);
            self.bytes[op.index()].store(0, Ordering::Relaxed);
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    requests: [u64; 10],
    bytes: [u64; 10],
}

impl StatsSnapshot {
    pub fn requests(&self, op: Op) -> u64 {
        self.requests[op.index()]
    }
    pub fn bytes(&self, op: Op) -> u64 {
        self.bytes[op.index()]
    }
    pub fn total_requests(&self) -> u64 {
        self.requests.iter().sum()
    }
    /// Counters since `earlier`.
    pub fn since(&self, earlier: &StatsSnapshot) -> StatsSnapshot {
        let mut s = *self;
        for i in 0..10 {
            s.requests[i] -= earlier.requests[i];
            s.bytes[i] -= earlier.bytes[i];
        }
        s
    }
}

/// Open the store a URL names: `file:///path` (DirStore), `mem://name` (a MemoryStore
/// shared by every opener of the same name in this process) or `s3://bucket/prefix` (an
/// S3Store configured from the environment, without SSE; [`open_store`] takes settings). Returns the store and the key prefix
/// the vault lives under (empty for the local stores, the URL's prefix for S3).
pub fn open(url: &StoreUrl) -> StoreResult<(DynStore, String)> {
    open_store(url, &StoreOptions::default())
}
