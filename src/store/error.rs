//! The error every store returns, [`StoreError`], and [`StoreResult`].
//!
//! Messages say what failed and on which key or store, without naming command-line flags (the
//! front adds those hints). `is_transient` is the one place that says which errors a retry may
//! cure.

use std::fmt;

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
    /// An answer no honest server gives (a listing that does not move forward): refused,
    /// and not retried, since asking again gets the same.
    #[error("refusing the store's answer for {key}: {reason}")]
    Refused { key: String, reason: String },
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
    /// SSE-C asked for with a plain `http://` endpoint: every request would carry the key in
    /// clear text. Refused unless explicitly allowed.
    #[error(
        "SSE-C over plain http is refused: the endpoint {endpoint} is not https, and every SSE-C \
         request carries the key in clear text"
    )]
    SseCOverHttp { endpoint: String },
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
