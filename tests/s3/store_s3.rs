//! What only `S3Store` has, over real HTTP against moto's S3 server (an independent
//! implementation, started on 127.0.0.1 by `common/s3server.rs`): the requests as S3 sees them
//! (metadata headers, URL-encoded copy sources), connection settings and the errors an operator
//! must act on, and the SSE headers on the wire for every mode. The behaviour every store shares
//! (ranges, listings, conditional writes, copy, multipart, SSE-C enforcement and key rotation)
//! is tested once for all backends in `store_conformance.rs`, where `common/store.rs` lists
//! where moto differs from S3.
//!
//! moto neither enforces nor echoes SSE-C: SSE-C writes verify only with `verify_sse = false`
//! here, and a GET without the key succeeds.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::config::SharedInterceptor;
use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};
use s3cryptfs::store::s3::{S3Retry, S3Settings, S3Store, S3Timeouts, UNSIGNED_PAYLOAD_MIN_BYTES};
use s3cryptfs::store::sse::{SseCKey, SseMode};
use s3cryptfs::store::{
    CompletedPart, CopyOptions, ListRequest, Metadata, MetadataDirective, ObjectStore, Op,
    PutOptions, StoreError,
};

use crate::common::s3server::{self, Capture, MotoServer};
use crate::common::s3test::store_settings;

// ---- fixtures ----

/// A store on a fresh bucket of the shared moto server; the server lives as long as this does.
struct Fixture {
    server: Arc<MotoServer>,
    bucket: String,
    store: S3Store,
}

async fn fixture(name: &str) -> Fixture {
    fixture_with(name, SseMode::None, |_| {}).await
}

async fn fixture_with(name: &str, sse: SseMode, tweak: impl FnOnce(&mut S3Settings)) -> Fixture {
    let server = MotoServer::shared();
    let bucket = server.bucket(name).await;
    let mut settings = server.settings(&bucket);
    tweak(&mut settings);
    let store = S3Store::connect(settings, sse)
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e}", server.endpoint()));
    Fixture {
        server,
        bucket,
        store,
    }
}

impl Fixture {
    /// Another store on the same bucket.
    async fn store_with(&self, sse: SseMode, tweak: impl FnOnce(&mut S3Settings)) -> S3Store {
        let mut settings = self.server.settings(&self.bucket);
        tweak(&mut settings);
        S3Store::connect(settings, sse).await.expect("connect")
    }
}

async fn put(store: &S3Store, key: &str, body: &[u8]) -> String {
    put_with(store, key, body, PutOptions::default())
        .await
        .unwrap_or_else(|e| panic!("put {key}: {e}"))
}

async fn put_with(
    store: &S3Store,
    key: &str,
    body: &[u8],
    opts: PutOptions,
) -> Result<String, StoreError> {
    store
        .put(key, Bytes::copy_from_slice(body), opts)
        .await
        .map(|o| o.etag)
}

async fn get(store: &S3Store, key: &str) -> Vec<u8> {
    store
        .get(key, None, None)
        .await
        .unwrap_or_else(|e| panic!("get {key}: {e}"))
        .data
        .to_vec()
}

fn metadata(pairs: &[(&str, &str)]) -> Metadata {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Every (object key, common prefix) of a listing, following continuation tokens; checks that
/// no page holds more than `max_keys` entries.
async fn list_all(
    store: &S3Store,
    prefix: &str,
    delimiter: Option<&str>,
    max_keys: usize,
) -> (Vec<String>, Vec<String>, usize) {
    let mut req = ListRequest {
        prefix: prefix.into(),
        delimiter: delimiter.map(Into::into),
        continuation_token: None,
        max_keys,
    };
    let (mut objects, mut prefixes, mut pages) = (Vec::new(), Vec::new(), 0);
    loop {
        let page = store.list(&req).await.expect("list");
        pages += 1;
        let limit = if max_keys == 0 { 1000 } else { max_keys };
        assert!(page.objects.len() + page.common_prefixes.len() <= limit);
        assert!(page.objects.iter().all(|o| o.metadata.is_none()));
        objects.extend(page.objects.into_iter().map(|o| o.key));
        prefixes.extend(page.common_prefixes);
        match page.next_continuation_token {
            Some(token) => req.continuation_token = Some(token),
            None => return (objects, prefixes, pages),
        }
    }
}

async fn multipart(
    store: &S3Store,
    key: &str,
    parts: &[Vec<u8>],
    opts: PutOptions,
) -> Result<String, StoreError> {
    let id = store.create_multipart(key, opts).await?;
    let uploads = parts.iter().enumerate().map(|(i, body)| {
        let id = id.clone();
        async move {
            let part_number = i as u32 + 1;
            let etag = store
                .upload_part(key, &id, part_number, Bytes::copy_from_slice(body))
                .await?;
            Ok::<_, StoreError>(CompletedPart { part_number, etag })
        }
    });
    let completed: Vec<CompletedPart> = stream::iter(uploads).buffered(3).try_collect().await?;
    store
        .complete_multipart(key, &id, &completed)
        .await
        .map(|o| o.etag)
}

fn sse_c_key(byte: u8, name: &str) -> SseCKey {
    SseCKey::from_bytes(&[byte; 32], name).expect("32 bytes")
}

// ---- requests as S3 sees them ----

#[tokio::test]
async fn metadata_round_trips_lowercase() {
    let f = fixture("meta").await;
    let s = &f.store;
    let sent = metadata(&[
        ("Mode", "33188"),
        ("uid", "1000"),
        ("mtime", "1700000000.5"),
    ]);
    let opts = PutOptions {
        metadata: sent,
        ..PutOptions::default()
    };
    let etag = put_with(s, "m", b"abc", opts).await.expect("put");
    let expected = metadata(&[
        ("mode", "33188"),
        ("uid", "1000"),
        ("mtime", "1700000000.5"),
    ]);
    let info = s.head("m").await.expect("head");
    assert_eq!(
        (info.key.as_str(), info.size, info.etag.as_str()),
        ("m", 3, etag.as_str())
    );
    assert_eq!(info.metadata, Some(expected.clone()));
    assert_eq!(
        s.get("m", None, None).await.expect("get").info.metadata,
        Some(expected)
    );
    // Seen from outside, they are x-amz-meta-* headers.
    let raw = f
        .server
        .client()
        .head_object()
        .bucket(&f.bucket)
        .key("m")
        .send()
        .await
        .expect("plain head");
    assert_eq!(
        raw.metadata()
            .and_then(|m| m.get("mode"))
            .map(String::as_str),
        Some("33188")
    );
    let (objects, _, _) = list_all(s, "", None, 0).await;
    assert_eq!(objects, strings(&["m"]));
}

#[tokio::test]
async fn unusual_keys_round_trip_list_and_copy() {
    let f = fixture("keys").await;
    let s = &f.store;
    let keys = [
        "ünïcödé/fïle ✓.txt",
        "with space/file name",
        "100%",
        "%41",
        "plus+equals=&amp;?#",
        "a//double",
        "tab\there",
    ];
    for key in keys {
        put(s, key, key.as_bytes()).await;
    }
    for key in keys {
        assert_eq!(get(s, key).await, key.as_bytes(), "{key:?}");
    }
    let mut sorted = strings(&keys);
    sorted.sort();
    assert_eq!(list_all(s, "", None, 0).await.0, sorted, "UTF-8 byte order");
    // The copy source header carries the key URL-encoded.
    for (i, key) in keys.iter().enumerate() {
        let dst = format!("copies/{i}");
        s.copy(key, &dst, CopyOptions::default())
            .await
            .unwrap_or_else(|e| panic!("copy {key:?}: {e}"));
        assert_eq!(get(s, &dst).await, key.as_bytes(), "{key:?}");
    }
    assert!(matches!(
        put_with(s, &"k".repeat(1025), b"", PutOptions::default()).await,
        Err(StoreError::InvalidArgument(_))
    ));
}

// ---- errors the operator must act on ----

#[tokio::test]
async fn missing_bucket_says_so() {
    let server = MotoServer::shared();
    let store = S3Store::connect(server.settings("no-such-bucket-here"), SseMode::None)
        .await
        .expect("connect sends nothing");
    let e = store
        .check_bucket()
        .await
        .expect_err("no bucket")
        .to_string();
    assert!(
        e.contains("no-such-bucket-here") && e.contains("does not exist"),
        "{e}"
    );
    let e = store
        .get("k", None, None)
        .await
        .expect_err("no bucket")
        .to_string();
    assert!(
        e.contains("NoSuchBucket") && e.contains(server.endpoint()),
        "{e}"
    );
    let f = fixture("exists").await;
    f.store.check_bucket().await.expect("the bucket exists");
}

#[tokio::test]
async fn settings_are_checked_and_secrets_not_shown() {
    let server = MotoServer::shared();
    let mut s = server.settings("b");
    s.secret_access_key = Some("very-secret-value".into());
    s.session_token = Some("session-secret".into());
    let shown = format!("{s:?}");
    assert!(
        !shown.contains("very-secret-value") && !shown.contains("session-secret"),
        "{shown}"
    );
    assert!(
        shown.contains("testing"),
        "the key id is not secret: {shown}"
    );

    let mut bad = server.settings("b");
    bad.endpoint = Some("127.0.0.1:9000".into());
    let e = S3Store::connect(bad, SseMode::None)
        .await
        .expect_err("no scheme");
    assert!(e.to_string().contains("http://"), "{e}");
    let mut bad = server.settings("b");
    bad.secret_access_key = None;
    assert!(S3Store::connect(bad, SseMode::None).await.is_err());
}

/// `store::open` connects from synchronous code: the store, built on a runtime of its own,
/// then serves requests on the caller's runtime.
#[tokio::test]
async fn connect_blocking_serves_the_callers_runtime() {
    let server = MotoServer::shared();
    let bucket = server.bucket("blocking").await;
    let store = S3Store::connect_blocking(server.settings(&bucket), SseMode::None)
        .expect("connect from sync code inside a runtime");
    put(&store, "k", b"value").await;
    assert_eq!(get(&store, "k").await, b"value");
    assert_eq!(store.bucket(), bucket);
}

/// Nothing listens: the store fails fast with a transient connection error.
#[tokio::test]
async fn unreachable_endpoint_fails_fast_and_transient() {
    let endpoint = format!("http://127.0.0.1:{}", s3server::free_port());
    let mut settings = store_settings(&endpoint, "bucket", "testing", "testing");
    settings.retry = S3Retry {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
    };
    settings.timeouts = S3Timeouts {
        connect: Duration::from_millis(500),
        read: Some(Duration::from_millis(500)),
        attempt: Some(Duration::from_secs(1)),
        operation: Some(Duration::from_secs(5)),
    };
    let store = S3Store::connect(settings.clone(), SseMode::None)
        .await
        .expect("connect");
    let started = Instant::now();
    let err = store.head("k").await.expect_err("nothing listens");
    let took = started.elapsed();
    assert!(err.is_transient(), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("cannot reach") && msg.contains("127.0.0.1"),
        "{msg}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");

    // Something accepts connections and never answers: the read timeout ends each attempt.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let holder = std::thread::spawn(move || {
        let mut held = Vec::new();
        for _ in 0..3 {
            match listener.accept() {
                Ok((conn, _)) => held.push(conn),
                Err(_) => break,
            }
        }
        std::thread::sleep(Duration::from_secs(3));
    });
    settings.endpoint = Some(format!("http://127.0.0.1:{port}"));
    let store = S3Store::connect(settings, SseMode::None)
        .await
        .expect("connect");
    let started = Instant::now();
    let err = store
        .put("k", Bytes::from_static(b"x"), PutOptions::default())
        .await;
    let took = started.elapsed();
    match err {
        Err(e) => assert!(
            e.is_transient() && e.to_string().contains("timed out"),
            "{e:?}"
        ),
        Ok(out) => panic!("a silent server acknowledged a PUT: {out:?}"),
    }
    assert!(took < Duration::from_secs(6), "took {took:?}");
    let _ = holder.join();
}

// ---- server-side encryption ----

#[tokio::test]
async fn sse_s3_and_kms_writes_are_confirmed() {
    let kms = SseMode::Kms {
        key_id: Some("test-key-id".into()),
        bucket_key: true,
    };
    for (mode, algorithm) in [(SseMode::S3, "AES256"), (kms, "aws:kms")] {
        let f = fixture_with("sse", mode.clone(), |_| {}).await;
        let s = &f.store;
        put(s, "put", b"x").await;
        multipart(s, "mp", &[b"y".to_vec()], PutOptions::default())
            .await
            .expect("multipart");
        s.copy("put", "copy", CopyOptions::default())
            .await
            .expect("copy");
        assert_eq!(get(s, "copy").await, b"x");
        let client = f.server.client();
        for key in ["put", "mp", "copy"] {
            let head = client
                .head_object()
                .bucket(&f.bucket)
                .key(key)
                .send()
                .await
                .expect("plain head");
            assert_eq!(
                head.server_side_encryption().map(|s| s.as_str()),
                Some(algorithm),
                "{key} in {}",
                mode.name()
            );
            if let SseMode::Kms { .. } = mode {
                assert_eq!(head.ssekms_key_id(), Some("test-key-id"));
            }
        }
    }
}

/// moto accepts SSE-C but neither enforces nor echoes it: a verifying store refuses the
/// unconfirmed PUT; with verification off the object round-trips (and, on moto only, reads
/// without the key too).
#[tokio::test]
async fn sse_c_unconfirmed_put_is_an_error() {
    let mode = SseMode::customer_keys(vec![sse_c_key(1, "k1")]).expect("key");
    let f = fixture_with("ssec", mode.clone(), |_| {}).await;
    let err = f
        .store
        .put("k", Bytes::from_static(b"secret"), PutOptions::default())
        .await
        .expect_err("moto does not confirm SSE-C");
    let msg = err.to_string();
    assert!(
        msg.contains("PutObject") && msg.contains("not confirmed"),
        "{msg}"
    );
    assert!(!err.is_transient());

    let lenient = f.store_with(mode, |s| s.verify_sse = false).await;
    put(&lenient, "k", b"secret").await;
    assert_eq!(get(&lenient, "k").await, b"secret");
    let plain = f
        .server
        .client()
        .get_object()
        .bucket(&f.bucket)
        .key("k")
        .send()
        .await;
    assert!(
        plain.is_ok(),
        "moto does not enforce SSE-C (S3 and Ceph answer 400 here)"
    );
}

/// Runs one request of every kind.
async fn every_request_kind(s: &S3Store) {
    put(s, "obj", b"data").await;
    s.head("obj").await.expect("head");
    s.get("obj", Some(0..2), None).await.expect("get");
    let etag = multipart(s, "mp", &[b"part".to_vec()], PutOptions::default())
        .await
        .expect("multipart");
    assert!(etag.ends_with("-1\""));
    let id = s
        .create_multipart("aborted", PutOptions::default())
        .await
        .expect("create");
    s.abort_multipart("aborted", &id).await.expect("abort");
    s.copy("obj", "copy", CopyOptions::default())
        .await
        .expect("copy");
    s.list(&ListRequest::default()).await.expect("list");
    s.delete("copy").await.expect("delete");
}

#[tokio::test]
async fn sse_headers_on_the_wire_for_every_mode() {
    const SSE: &str = "x-amz-server-side-encryption";
    const KMS_KEY: &str = "x-amz-server-side-encryption-aws-kms-key-id";
    const BUCKET_KEY: &str = "x-amz-server-side-encryption-bucket-key-enabled";
    const C_ALG: &str = "x-amz-server-side-encryption-customer-algorithm";
    const C_KEY: &str = "x-amz-server-side-encryption-customer-key";
    const C_MD5: &str = "x-amz-server-side-encryption-customer-key-md5";
    const SRC_ALG: &str = "x-amz-copy-source-server-side-encryption-customer-algorithm";
    const SRC_KEY: &str = "x-amz-copy-source-server-side-encryption-customer-key";
    const SRC_MD5: &str = "x-amz-copy-source-server-side-encryption-customer-key-md5";

    let writer = sse_c_key(1, "k1");
    let reader = sse_c_key(2, "k2");
    let kms = SseMode::Kms {
        key_id: Some("arn:aws:kms:us-east-1:123456789012:key/test".into()),
        bucket_key: true,
    };
    let c = SseMode::customer_keys(vec![writer.clone(), reader]).expect("keys");
    let operations = [
        "PutObject",
        "HeadObject",
        "GetObject",
        "CreateMultipartUpload",
        "UploadPart",
        "CompleteMultipartUpload",
        "AbortMultipartUpload",
        "CopyObject",
        "ListObjectsV2",
        "DeleteObject",
    ];
    for mode in [SseMode::None, SseMode::S3, kms, c] {
        let capture = Capture::default();
        let interceptor = SharedInterceptor::new(capture.clone());
        let verify = !matches!(mode, SseMode::C { .. }); // moto does not echo SSE-C
        let f = fixture_with("wire", mode.clone(), |s| {
            s.interceptors.push(interceptor);
            s.verify_sse = verify;
        })
        .await;
        every_request_kind(&f.store).await;
        let requests = capture.take();
        let seen: std::collections::BTreeSet<&str> =
            requests.iter().map(|(op, _)| op.as_str()).collect();
        for op in operations {
            assert!(seen.contains(op), "{}: no {op} captured", mode.name());
        }
        let c_headers = |prefix_alg: &str, prefix_key: &str, prefix_md5: &str| {
            BTreeMap::from([
                (prefix_alg.to_owned(), "AES256".to_owned()),
                (prefix_key.to_owned(), writer.key_base64().to_owned()),
                (prefix_md5.to_owned(), writer.key_md5_base64().to_owned()),
            ])
        };
        for (op, headers) in &requests {
            let creates = matches!(
                op.as_str(),
                "PutObject" | "CreateMultipartUpload" | "CopyObject"
            );
            let expected: BTreeMap<String, String> = match &mode {
                SseMode::None => BTreeMap::new(),
                SseMode::S3 if creates => BTreeMap::from([(SSE.into(), "AES256".into())]),
                SseMode::Kms { key_id, .. } if creates => BTreeMap::from([
                    (SSE.into(), "aws:kms".into()),
                    (KMS_KEY.into(), key_id.clone().unwrap_or_default()),
                    (BUCKET_KEY.into(), "true".into()),
                ]),
                SseMode::C { .. } => match op.as_str() {
                    "PutObject"
                    | "CreateMultipartUpload"
                    | "UploadPart"
                    | "GetObject"
                    | "HeadObject" => c_headers(C_ALG, C_KEY, C_MD5),
                    "CopyObject" => {
                        let mut both = c_headers(C_ALG, C_KEY, C_MD5);
                        both.extend(c_headers(SRC_ALG, SRC_KEY, SRC_MD5));
                        both
                    }
                    _ => BTreeMap::new(),
                },
                _ => BTreeMap::new(),
            };
            assert_eq!(headers, &expected, "{} mode, {op}", mode.name());
        }
    }
}

/// Sources above the single-copy limit (lowered here from 5 GiB to 6 MiB, parts of 5 MiB) go
/// through UploadPartCopy: the bytes arrive intact, metadata is copied or replaced, a stale
/// source ETag fails the copy, and no object data passes through the client.
#[tokio::test]
async fn copies_above_the_single_copy_limit_go_multipart() {
    let f = fixture_with("part-copy", SseMode::None, |s| {
        s.max_copy_object_bytes = 6 * 1024 * 1024;
        s.copy_part_bytes = 5 * 1024 * 1024;
    })
    .await;
    let s = &f.store;
    let body: Vec<u8> = (0..12 * 1024 * 1024 + 17u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let etag = put_with(
        s,
        "big",
        &body,
        PutOptions {
            metadata: metadata(&[("mode", "33188")]),
            ..PutOptions::default()
        },
    )
    .await
    .expect("put");
    let before = s.stats().expect("stats");
    // Told the size: straight to the multipart copy.
    let out = s
        .copy(
            "big",
            "copied",
            CopyOptions {
                source_if_match: Some(etag.clone()),
                source_size: Some(body.len() as u64),
                ..CopyOptions::default()
            },
        )
        .await
        .expect("multipart copy");
    assert!(out.etag.contains('-'), "a multipart ETag: {}", out.etag);
    let after = s.stats().expect("stats");
    assert_eq!(
        after.bytes(Op::Put) + after.bytes(Op::UploadPart),
        before.bytes(Op::Put) + before.bytes(Op::UploadPart),
        "no data sent by the client"
    );
    assert_eq!(after.bytes(Op::Get), before.bytes(Op::Get), "no data read");
    assert!(get(s, "copied").await == body, "copied bytes differ");
    let info = s.head("copied").await.expect("head");
    assert_eq!(
        info.metadata
            .as_ref()
            .and_then(|m| m.get("mode"))
            .map(String::as_str),
        Some("33188"),
        "metadata copied"
    );
    // Onto itself with new metadata (a rewrap or chmod of a huge file).
    s.copy(
        "big",
        "big",
        CopyOptions {
            metadata: MetadataDirective::Replace(metadata(&[("mode", "33152")])),
            source_if_match: Some(etag.clone()),
            source_size: Some(body.len() as u64),
        },
    )
    .await
    .expect("multipart copy onto itself");
    assert!(get(s, "big").await == body);
    let info = s.head("big").await.expect("head");
    assert_eq!(
        info.metadata
            .as_ref()
            .and_then(|m| m.get("mode"))
            .map(String::as_str),
        Some("33152")
    );
    // The source changed meanwhile: refused, nothing written.
    let err = s
        .copy(
            "big",
            "other",
            CopyOptions {
                source_if_match: Some(etag),
                source_size: Some(body.len() as u64),
                ..CopyOptions::default()
            },
        )
        .await
        .expect_err("stale source ETag");
    assert!(
        matches!(err, StoreError::PreconditionFailed { .. }),
        "{err:?}"
    );
    assert!(matches!(
        s.head("other").await,
        Err(StoreError::NotFound { .. })
    ));
}

/// Sealed file data (bodies from 1 MiB on) goes with UNSIGNED-PAYLOAD: hashing every byte into
/// the signature cost more CPU than encrypting it. Small bodies (configs, markers) stay signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_are_sent_with_unsigned_payload() {
    let capture = Capture::default();
    let interceptor = SharedInterceptor::new(capture.clone());
    let f = fixture_with("unsigned", SseMode::None, |s| {
        s.interceptors.push(interceptor)
    })
    .await;
    let big = Bytes::from(vec![7u8; UNSIGNED_PAYLOAD_MIN_BYTES]);
    let small = Bytes::from(vec![7u8; 1000]);
    f.store
        .put("big", big.clone(), PutOptions::default())
        .await
        .expect("put big");
    f.store
        .put("small", small.clone(), PutOptions::default())
        .await
        .expect("put small");
    let id = f
        .store
        .create_multipart("parts", PutOptions::default())
        .await
        .expect("create");
    let p1 = f
        .store
        .upload_part("parts", &id, 1, Bytes::from(vec![1u8; 5 * 1024 * 1024]))
        .await
        .expect("part 1");
    let p2 = f
        .store
        .upload_part("parts", &id, 2, small.clone())
        .await
        .expect("part 2");
    let parts = [
        CompletedPart {
            part_number: 1,
            etag: p1,
        },
        CompletedPart {
            part_number: 2,
            etag: p2,
        },
    ];
    f.store
        .complete_multipart("parts", &id, &parts)
        .await
        .expect("complete");
    let sent: Vec<(String, String)> = capture
        .take_payload_hashes()
        .into_iter()
        .filter(|(op, _)| op == "PutObject" || op == "UploadPart")
        .collect();
    let unsigned = "UNSIGNED-PAYLOAD".to_owned();
    assert_eq!(sent.len(), 4, "{sent:?}");
    assert_eq!(sent[0], ("PutObject".to_owned(), unsigned.clone()));
    assert!(
        sent[1].0 == "PutObject" && sent[1].1.len() == 64,
        "{sent:?}"
    );
    assert_eq!(sent[2], ("UploadPart".to_owned(), unsigned));
    assert!(
        sent[3].0 == "UploadPart" && sent[3].1.len() == 64,
        "{sent:?}"
    );
    // And the server took them as they were.
    let got = f.store.get("big", None, None).await.expect("get big");
    assert_eq!(got.data, big);
    let got = f.store.get("parts", None, None).await.expect("get parts");
    assert_eq!(got.data.len(), 5 * 1024 * 1024 + 1000);
}
