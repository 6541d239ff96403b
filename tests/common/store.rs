//! The stores the conformance suite runs against, and what each one legitimately does
//! differently ([`Quirks`]). Adding a backend = one constructor here and one
//! `conformance_tests!` line (`fast::store_conformance`, or the tier its server belongs to).
//!
//! A backend that cannot be set up fails the test (saying how to install what is missing); it
//! is never skipped.

#[cfg(any(feature = "s3_tests", feature = "ceph_tests"))]
use std::any::Any;
use std::sync::Arc;

#[cfg(feature = "s3_tests")]
use aws_sdk_s3::config::SharedInterceptor;
#[cfg(any(feature = "s3_tests", feature = "ceph_tests"))]
use s3cryptfs::store::S3Store;
#[cfg(any(feature = "s3_tests", feature = "ceph_tests"))]
use s3cryptfs::store::s3::S3Settings;
use s3cryptfs::store::{DirStore, DynStore, MemoryStore, SseMode};

#[cfg(feature = "ceph_tests")]
use super::ceph::{CephServer, KMS_KEY_ID};
#[cfg(feature = "s3_tests")]
use super::s3server::{EnforceSseC, MotoServer};

/// The KMS key id the SSE-KMS tests ask for where the server takes any id.
const ANY_KMS_KEY_ID: &str = "test-key-id";

/// Where a backend's behaviour differs from S3's for a reason outside this project (the test
/// server's limits). Every field is `true` for S3 itself; the suite asserts S3's behaviour
/// where a field is `true` and the backend's documented behaviour where it is `false`, never
/// nothing.
#[derive(Clone, Copy, Debug)]
pub struct Quirks {
    /// `x-amz-copy-source-if-match` is honoured. moto, s3rver and Ceph RGW 16.2 ignore it, but
    /// S3Store checks the copy's ETag against it where ETags are MD5s
    /// (`src/store/s3/copy_check.rs`), so a stale copy fails on them too.
    pub copy_source_if_match: bool,
    /// PutObject with If-Match on a missing key is 404 (Ceph RGW 16.2 answers 412; s3cryptfs
    /// takes either as "the object changed").
    pub if_match_on_missing_is_404: bool,
    /// UploadPart and CompleteMultipartUpload of an unknown, aborted or foreign upload id are
    /// 404 NoSuchUpload (moto answers 500, which the store reports as transient; Ceph RGW 16.2
    /// answers 500 "This multipart completion is already in progress" to the completion).
    pub no_such_upload_everywhere: bool,
    /// CompleteMultipartUpload may leave out parts that were uploaded; they are dropped (Ceph
    /// RGW 16.2 answers InvalidPart unless every uploaded part is listed). s3cryptfs completes
    /// with every part it uploaded.
    pub complete_with_part_subset: bool,
    /// Keys may hold a newline (moto's routes do not match `\n`).
    pub newline_in_keys: bool,
    /// HEAD and GET echo the SSE-C key MD5, and writes confirm it (moto does neither; its
    /// SSE-C clients run with `verify_sse` off, and `EnforceSseC` plays the server's refusals).
    pub echoes_sse_c: bool,
    /// A read or copy with the wrong SSE-C key is 403 AccessDenied (Ceph RGW 16.2 answers 400
    /// InvalidArgument, "The calculated MD5 hash of the key did not match", as to one without
    /// a key; the store tries the next key on either).
    pub wrong_sse_c_key_is_403: bool,
    /// A read that sends an SSE-C key for an object stored without SSE-C is refused with 400
    /// (Ceph RGW 16.2 ignores the key and serves the object, saying it has no SSE).
    pub sse_c_key_on_plain_object_refused: bool,
    /// CopyObject copies SSE-C and SSE-KMS objects (Ceph RGW 16.2 answers 501 NotImplemented:
    /// S3Store then copies through the client, GET + PUT, `src/store/s3/client_copy.rs`).
    pub copies_sse_objects: bool,
    /// The copy of a multipart object is a single-part object with an MD5 ETag (Ceph RGW 16.2
    /// gives the copy the source's `-N` ETag).
    pub copy_etags_are_md5: bool,
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
    /// A continuation token the server did not issue is refused (Ceph RGW 16.2 takes any
    /// token as the key to list after).
    pub checks_continuation_tokens: bool,
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
    /// SSE-S3 is supported (s3rver and Ceph RGW 16.2, which has no SSE-S3, store the object
    /// without it and do not confirm it).
    pub sse_s3: bool,
    /// SSE-KMS is supported (s3rver stores the object without it and does not confirm it).
    pub sse_kms: bool,
}

impl Quirks {
    /// What S3 does.
    pub const S3: Quirks = Quirks {
        copy_source_if_match: true,
        if_match_on_missing_is_404: true,
        no_such_upload_everywhere: true,
        complete_with_part_subset: true,
        newline_in_keys: true,
        echoes_sse_c: true,
        wrong_sse_c_key_is_403: true,
        sse_c_key_on_plain_object_refused: true,
        copies_sse_objects: true,
        copy_etags_are_md5: true,
        upload_initiated: true,
        conditional_writes: true,
        conditional_deletes: true,
        range_ending_at_byte_0: true,
        max_keys_with_delimiter: true,
        checks_continuation_tokens: true,
        sorted_listings: true,
        other_delimiters: true,
        deep_common_prefixes: true,
        verbatim_key_segments: true,
        max_key_segment: 1024,
        multipart_checks: true,
        multipart_etags: true,
        listing_etags: true,
        sse_s3: true,
        sse_kms: true,
    };

    /// What moto 5.1's server does.
    #[cfg(feature = "s3_tests")]
    pub const MOTO: Quirks = Quirks {
        copy_source_if_match: true,
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
        sse_s3: false,
        sse_kms: false,
        ..Quirks::S3
    };

    /// What Ceph 16.2's RADOS Gateway (scripts/ceph-test-server.sh) does.
    #[cfg(feature = "ceph_tests")]
    pub const CEPH: Quirks = Quirks {
        if_match_on_missing_is_404: false,
        no_such_upload_everywhere: false,
        complete_with_part_subset: false,
        wrong_sse_c_key_is_403: false,
        sse_c_key_on_plain_object_refused: false,
        copies_sse_objects: false,
        copy_etags_are_md5: false,
        conditional_deletes: false,
        checks_continuation_tokens: false,
        sse_s3: false,
        ..Quirks::S3
    };
}

/// How to open more clients of a backend's objects.
enum Clients {
    Memory(Arc<MemoryStore>),
    Dir(DirStore),
    #[cfg(any(feature = "s3_tests", feature = "ceph_tests"))]
    S3 {
        /// The settings of every client (bucket, endpoint, credentials, interceptors).
        settings: Box<S3Settings>,
        /// [`Quirks::echoes_sse_c`] of the server.
        echoes_sse_c: bool,
        /// Keeps the server running while the backend lives.
        _server: Arc<dyn Any + Send + Sync>,
    },
}

/// A store under test, with whatever must live as long as it does.
pub struct Backend {
    /// A client without SSE.
    pub store: DynStore,
    pub quirks: Quirks,
    /// The KMS key id SSE-KMS clients ask for (one the server knows).
    pub kms_key_id: &'static str,
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
            #[cfg(any(feature = "s3_tests", feature = "ceph_tests"))]
            Clients::S3 {
                settings,
                echoes_sse_c,
                _server,
            } => {
                let mut settings = S3Settings::clone(settings);
                if matches!(sse, SseMode::C { .. }) && !echoes_sse_c {
                    settings.verify_sse = false;
                }
                let endpoint = settings.endpoint.clone().unwrap_or_default();
                let store = S3Store::connect(settings, sse)
                    .await
                    .unwrap_or_else(|e| panic!("connect to {endpoint}: {e}"));
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
        kms_key_id: ANY_KMS_KEY_ID,
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
        kms_key_id: ANY_KMS_KEY_ID,
        clients: Clients::Dir(store),
        _dir: Some(dir),
    }
}

/// An `S3Store` on a fresh bucket of the moto server the tests share (started on first use;
/// the test fails saying how to install moto if it cannot start).
#[cfg(feature = "s3_tests")]
pub async fn s3() -> Backend {
    moto_backend(MotoServer::shared(), Quirks::MOTO).await
}

/// An `S3Store` on a fresh bucket of the s3rver server the tests share, whose listings carry no
/// ETags (started on first use; the test fails saying how to install s3rver if it cannot).
#[cfg(feature = "s3_tests")]
pub async fn s3rver() -> Backend {
    moto_backend(MotoServer::shared_s3rver(), Quirks::S3RVER).await
}

/// moto and s3rver do not enforce SSE-C: `EnforceSseC` refuses what S3 would.
#[cfg(feature = "s3_tests")]
async fn moto_backend(server: Arc<MotoServer>, quirks: Quirks) -> Backend {
    let bucket = server.bucket("conformance").await;
    let mut settings = server.settings(&bucket);
    settings
        .interceptors
        .push(SharedInterceptor::new(EnforceSseC::default()));
    s3_backend(settings, server, quirks, ANY_KMS_KEY_ID).await
}

/// An `S3Store` on a fresh bucket of the Ceph RADOS Gateway the tests share (started on first
/// use; the test fails saying how to install Ceph if it cannot start). RGW enforces SSE-C and
/// does SSE-KMS with the test cluster's keys itself.
#[cfg(feature = "ceph_tests")]
pub async fn ceph() -> Backend {
    let server = CephServer::shared();
    let bucket = server.bucket("conformance").await;
    let settings = server.settings(&bucket);
    s3_backend(settings, server, Quirks::CEPH, KMS_KEY_ID).await
}

#[cfg(any(feature = "s3_tests", feature = "ceph_tests"))]
async fn s3_backend(
    settings: S3Settings,
    server: Arc<dyn Any + Send + Sync>,
    quirks: Quirks,
    kms_key_id: &'static str,
) -> Backend {
    let clients = Clients::S3 {
        settings: Box::new(settings),
        echoes_sse_c: quirks.echoes_sse_c,
        _server: server,
    };
    Backend {
        store: clients.open(SseMode::None).await,
        quirks,
        kms_key_id,
        clients,
        _dir: None,
    }
}
