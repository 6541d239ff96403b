//! The [`S3Store`] itself: its SDK client, settings and per-store state, how it is built
//! ([`S3Store::connect`]) and the small helpers every request file shares.
//!
//! The request files (`super` and its children) `impl S3Store` and import it from here; this
//! file imports none of them, so the S3 backend has no import cycle. Fields are `pub(super)`
//! for those files and private to everything outside the S3 backend.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, MutexGuard, PoisonError};

use aws_sdk_s3::Client;

use super::copy_refusal::CopyRefusal;
use super::settings::{self, S3Settings};
use crate::store::sse::SseMode;
use crate::store::{Op, RequestStats, StoreError, StoreResult};

/// An S3 bucket (on AWS or an S3-compatible server) as an
/// [`ObjectStore`](crate::store::ObjectStore).
pub struct S3Store {
    pub(super) client: Client,
    pub(super) bucket: String,
    pub(super) prefix: String,
    pub(super) region: String,
    pub(super) endpoint: String,
    pub(super) sse: SseMode,
    pub(super) verify_sse: bool,
    pub(super) stats: RequestStats,
    pub(super) uploads: Mutex<HashMap<String, UploadState>>,
    /// The kinds of copy refusal already logged (each is logged once per store).
    pub(super) copy_refusals_logged: Mutex<HashSet<CopyRefusal>>,
    /// Whether the server takes a PUT's If-Match only unquoted (see `conditional_put`).
    pub(super) unquoted_if_match: AtomicBool,
    /// Whether the server answered DeleteObjects with NotImplemented (`batch_delete`).
    pub(super) no_delete_objects: AtomicBool,
    /// Sources above this are copied with UploadPartCopy (`part_copy`).
    pub(super) max_copy_object_bytes: u64,
    pub(super) copy_part_bytes: u64,
}

/// What the store remembers of a multipart upload it created.
pub(super) struct UploadState {
    pub(super) key: String,
    pub(super) if_match: Option<String>,
    pub(super) if_none_match: bool,
    pub(super) part_sizes: BTreeMap<u32, u64>,
}

impl S3Store {
    /// Builds the SDK client for `settings` and the store that applies `sse` to its requests.
    /// No request is sent: a wrong bucket or credentials show on first use (or in
    /// [`S3Store::check_bucket`]).
    /// SSE-C over a plain `http://` endpoint (whichever setting or variable named it) is
    /// refused unless [`S3Settings::allow_sse_c_over_http`] is set.
    pub async fn connect(settings: S3Settings, sse: SseMode) -> StoreResult<S3Store> {
        let conn = settings::connect(&settings).await?;
        if matches!(sse, SseMode::C { .. })
            && !settings.allow_sse_c_over_http
            && is_plain_http(&conn.endpoint)
        {
            return Err(StoreError::SseCOverHttp {
                endpoint: conn.endpoint,
            });
        }
        Ok(S3Store {
            client: conn.client,
            bucket: settings.bucket,
            prefix: settings.prefix,
            region: conn.region,
            endpoint: conn.endpoint,
            sse,
            verify_sse: settings.verify_sse,
            stats: RequestStats::default(),
            uploads: Mutex::new(HashMap::new()),
            copy_refusals_logged: Mutex::new(HashSet::new()),
            unquoted_if_match: AtomicBool::new(false),
            no_delete_objects: AtomicBool::new(false),
            max_copy_object_bytes: settings.max_copy_object_bytes,
            copy_part_bytes: settings.copy_part_bytes.max(crate::store::MIN_PART_SIZE),
        })
    }

    /// [`S3Store::connect`] from synchronous code, on a thread of its own (so it also works
    /// when called from inside a tokio runtime).
    pub fn connect_blocking(settings: S3Settings, sse: SseMode) -> StoreResult<S3Store> {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|source| StoreError::Io {
                            key: format!("s3://{}", settings.bucket),
                            source,
                        })?;
                    runtime.block_on(S3Store::connect(settings, sse))
                })
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The vault prefix of the settings (the store itself takes full keys).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn sse(&self) -> &SseMode {
        &self.sse
    }

    pub(super) fn lock_uploads(&self) -> MutexGuard<'_, HashMap<String, UploadState>> {
        self.uploads.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn record_attempts(&self, op: Op, attempts: u64, bytes: u64) {
        for _ in 1..attempts {
            self.stats.record(op, 0);
        }
        self.stats.record(op, bytes);
    }
}

impl fmt::Debug for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Store")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("sse", &self.sse.name())
            .field("verify_sse", &self.verify_sse)
            .finish_non_exhaustive()
    }
}

/// Whether `endpoint` is a plain (unencrypted) `http://` URL.
pub(super) fn is_plain_http(endpoint: &str) -> bool {
    endpoint
        .get(..7)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"))
}

/// Bodies from this size on are sent with `UNSIGNED-PAYLOAD` instead of their SHA-256 in the
/// request signature. They are sealed file data (vault configs and directory markers are far
/// smaller): AES-GCM under the file's key authenticates every block when it is read back, and a
/// SHA-256 pass over every byte written was the largest CPU cost of a large write (36 % of the
/// daemon's CPU, more than the encryption). Over plain HTTP the signature of a body protects
/// little anyway: nothing authenticates the server's answers. Headers (SSE-C key, metadata,
/// conditions) stay signed.
pub const UNSIGNED_PAYLOAD_MIN_BYTES: usize = 1024 * 1024;

/// Whether a body of `len` bytes is sent unsigned (see [`UNSIGNED_PAYLOAD_MIN_BYTES`]).
pub(super) fn unsigned_payload(len: usize) -> bool {
    len >= UNSIGNED_PAYLOAD_MIN_BYTES
}
