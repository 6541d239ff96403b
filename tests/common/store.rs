//! The stores the conformance suite runs against, and what each one legitimately does
//! differently ([`Quirks`]). Adding a backend = one constructor here and one
//! `conformance_tests!` line (`fast::store_conformance`, or the tier its server belongs to).
//!
//! A backend that cannot be set up fails the test (saying how to install what is missing); it
//! is never skipped.

use std::sync::Arc;

#[cfg(feature = "s3_tests")]
use aws_sdk_s3::config::SharedInterceptor;
#[cfg(feature = "s3_tests")]
use s3cryptfs::store::S3Store;
use s3cryptfs::store::{DirStore, DynStore, MemoryStore, SseMode};

#[cfg(feature = "s3_tests")]
use super::s3server::{EnforceSseC, MotoServer};

/// Where a backend's behaviour differs from S3's for a reason outside this project (the test
/// server's limits). Every field is `true` for S3 itself; the suite asserts S3's behaviour
/// where a field is `true` and the backend's documented behaviour where it is `false`, never
/// nothing.
#[derive(Clone, Copy, Debug)]
pub struct Quirks {
    /// `x-amz-copy-source-if-match` is honoured. moto and s3rver ignore it, but S3Store checks
    /// the copy's ETag against it where ETags are MD5s (`src/store/s3/copy_check.rs`), so a
    /// stale copy fails on them too.
    pub copy_source_if_match: bool,
    /// If-Match is checked at CompleteMultipartUpload (moto checks only If-None-Match there).
    pub if_match_at_completion: bool,
    /// UploadPart and CompleteMultipartUpload of an unknown, aborted or foreign upload id are
    /// 404 NoSuchUpload (moto answers 500, which the store reports as transient).
    pub no_such_upload_everywhere: bool,
    /// Keys may hold a newline (moto's routes do not match `\n`).
    pub newline_in_keys: bool,
    /// HEAD and GET echo the SSE-C key MD5, and writes confirm it (moto does neither; its
    /// SSE-C clients run with `verify_sse` off, and `EnforceSseC` plays the server's refusals).
    pub echoes_sse_c: bool,
    /// ListMultipartUploads reports when each upload began (moto reports one fixed date,
    /// 2010-11-10, for every upload).
    pub upload_initiated: bool,
    /// `If-None-Match: *` and `If-Match` are honoured on PutObject and at
    /// CompleteMultipartUpload (s3rver ignores both: the write happens).
    pub conditional_writes: bool,
    /// If-Match is honoured on DeleteObject (s3rver, and Ceph RGW 16.2, ignore it: the
    /// delete happens).
    pub conditional_deletes: bool,
    /// A range whose last byte is byte 0 is answered right: `bytes=0-0` is one byte, and any
    /// range of an empty object is refused or empty (s3rver answers `bytes=0-0` with the whole
    /// object, and cuts a range of an empty object to byte 0, announcing a byte it never sends).
    pub range_ending_at_byte_0: bool,
    /// ListObjectsV2 with a delimiter counts common prefixes against max-keys and lists each
    /// once (s3rver counts objects only, and repeats a common prefix on every page that
    /// reaches into it).
    pub max_keys_with_delimiter: bool,
    /// Listings are in UTF-8 byte order (s3rver lists the keys below `a/` before `a`, and its
    /// continuation then skips `a`).
    pub sorted_listings: bool,
    /// A delimiter rolls up keys with more than one delimiter after the prefix (s3rver rolls
    /// up only keys one level down: `x/` is missing from the listing of `""` when `x/` holds
    /// nothing but `x/y/z`).
    pub deep_common_prefixes: bool,
    /// A delimiter other than `/` rolls keys up right (s3rver: `c/` rolls up at `a/c`, `b`
    /// misses `b`). s3cryptfs lists with `/` only.
    pub other_delimiters: bool,
    /// Keys are kept as they are (s3rver stores each key as a file path: `a/./b` is `a/b`, a
    /// key with an empty segment is refused).
    pub verbatim_key_segments: bool,
    /// The longest segment (between slashes) a key can end with: S3 has no limit but the
    /// key's 1,024 bytes; s3rver stores it as a file name with a 22-byte suffix, so 233.
    pub max_key_segment: usize,
    /// CompleteMultipartUpload checks part sizes, order and ETags (s3rver checks none of
    /// them), and AbortMultipartUpload and ListMultipartUploads are implemented (s3rver
    /// answers 405 and 501).
    pub multipart_checks: bool,
    /// A multipart object's ETag ends in `-N`, its part count (s3rver gives the MD5 of the
    /// whole body, as for a single PUT).
    pub multipart_etags: bool,
    /// ListObjectsV2 entries carry ETags (s3rver's, behind scripts/s3rver-server.js, do not:
    /// the store HEADs each such entry).
    pub listing_etags: bool,
    /// SSE-S3 and SSE-KMS are supported (s3rver stores the object without them and does not
    /// confirm them).
    pub sse_s3_kms: bool,
}

impl Quirks {
    /// What S3 does.
    pub const S3: Quirks = Quirks {
        copy_source_if_match: true,
        if_match_at_completion: true,
        no_such_upload_everywhere: true,
        newline_in_keys: true,
        echoes_sse_c: true,
        upload_initiated: true,
        conditional_writes: true,
        conditional_deletes: true,
        range_ending_at_byte_0: true,
        max_keys_with_delimiter: true,
        sorted_listings: true,
        other_delimiters: true,
        deep_common_prefixes: true,
        verbatim_key_segments: true,
        max_key_segment: 1024,
        multipart_checks: true,
        multipart_etags: true,
        listing_etags: true,
        sse_s3_kms: true,
    };

    /// What moto 5.1's server does.
    #[cfg(feature = "s3_tests")]
    pub const MOTO: Quirks = Quirks {
        copy_source_if_match: true,
        if_match_at_completion: false,
        no_such_upload_everywhere: false,
        newline_in_keys: false,
        echoes_sse_c: false,
        upload_initiated: false,
        ..Quirks::S3
    };

    /// What s3rver 3.7's server (behind scripts/s3rver-server.js) does.
    #[cfg(feature = "s3_tests")]
    pub const S3RVER: Quirks = Quirks {
        copy_source_if_match: true,
        if_match_at_completion: false,
        no_such_upload_everywhere: false,
        newline_in_keys: true,
        echoes_sse_c: false,
        upload_initiated: false,
        conditional_writes: false,
        conditional_deletes: false,
        range_ending_at_byte_0: false,
        max_keys_with_delimiter: false,
        sorted_listings: false,
        other_delimiters: false,
        deep_common_prefixes: false,
        verbatim_key_segments: false,
        max_key_segment: 233,
        multipart_checks: false,
        multipart_etags: false,
        listing_etags: false,
        sse_s3_kms: false,
    };
}

/// How to open more clients of a backend's objects.
enum Clients {
    Memory(Arc<MemoryStore>),
    Dir(DirStore),
    #[cfg(feature = "s3_tests")]
    S3 {
        server: Arc<MotoServer>,
        bucket: String,
        enforce: SharedInterceptor,
        /// [`Quirks::echoes_sse_c`] of the server.
        echoes_sse_c: bool,
    },
}

/// A store under test, with whatever must live as long as it does.
pub struct Backend {
    /// A client without SSE.
    pub store: DynStore,
    pub quirks: Quirks,
    clients: Clients,
    _dir: Option<tempfile::TempDir>,
}

impl Backend {
    /// Another client of the same objects that applies `sse` to its requests.
    pub async fn client(&self, sse: SseMode) -> DynStore {
        self.clients.open(sse).await
    }
}

impl Clients {
    async fn open(&self, sse: SseMode) -> DynStore {
        match self {
            Clients::Memory(store) => store.with_sse(sse),
            Clients::Dir(store) => Arc::new(store.with_sse(sse)),
            #[cfg(feature = "s3_tests")]
            Clients::S3 {
                server,
                bucket,
                enforce,
                echoes_sse_c,
            } => {
                let mut settings = server.settings(bucket);
                settings.interceptors.push(enforce.clone());
                if matches!(sse, SseMode::C { .. }) && !echoes_sse_c {
                    settings.verify_sse = false;
                }
                let store = S3Store::connect(settings, sse)
                    .await
                    .unwrap_or_else(|e| panic!("connect to {}: {e}", server.endpoint()));
                Arc::new(store)
            }
        }
    }
}

/// A fresh in-process store.
pub async fn memory() -> Backend {
    let store = MemoryStore::new();
    Backend {
        store: store.clone(),
        quirks: Quirks::S3,
        clients: Clients::Memory(store),
        _dir: None,
    }
}

/// A fresh directory store in a temporary directory (removed when the backend drops).
pub async fn dir() -> Backend {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let store = DirStore::open(dir.path()).expect("open a directory store in an empty dir");
    Backend {
        store: Arc::new(store.with_sse(SseMode::None)),
        quirks: Quirks::S3,
        clients: Clients::Dir(store),
        _dir: Some(dir),
    }
}

/// An `S3Store` on a fresh bucket of the moto server the tests share (started on first use;
/// the test fails saying how to install moto if it cannot start).
#[cfg(feature = "s3_tests")]
pub async fn s3() -> Backend {
    s3_backend(MotoServer::shared(), Quirks::MOTO).await
}

/// An `S3Store` on a fresh bucket of the s3rver server the tests share, whose listings carry no
/// ETags (started on first use; the test fails saying how to install s3rver if it cannot).
#[cfg(feature = "s3_tests")]
pub async fn s3rver() -> Backend {
    s3_backend(MotoServer::shared_s3rver(), Quirks::S3RVER).await
}

#[cfg(feature = "s3_tests")]
async fn s3_backend(server: Arc<MotoServer>, quirks: Quirks) -> Backend {
    let bucket = server.bucket("conformance").await;
    let enforce = SharedInterceptor::new(EnforceSseC::default());
    let clients = Clients::S3 {
        server,
        bucket,
        enforce,
        echoes_sse_c: quirks.echoes_sse_c,
    };
    Backend {
        store: clients.open(SseMode::None).await,
        quirks,
        clients,
        _dir: None,
    }
}
