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
    };

    /// What s3rver 3.7's server (behind scripts/s3rver-server.js) does.
    #[cfg(feature = "s3_tests")]
    pub const S3RVER: Quirks = Quirks {
        copy_source_if_match: true,
        if_match_at_completion: false,
        no_such_upload_everywhere: false,
        newline_in_keys: false,
        echoes_sse_c: false,
        upload_initiated: false,
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
