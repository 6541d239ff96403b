//! The S3 store's SSE refusals that need a server answer or an endpoint: a write the server
//! encrypted under another KMS key than the configured one (a scripted server on 127.0.0.1
//! names it), and SSE-C with a plain http:// endpoint.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::store::{ObjectStore, PutOptions, SseMode};

/// Answers every request with 200, an ETag, `x-amz-server-side-encryption: aws:kms` and the
/// KMS key id in `key_id`; returns the endpoint URL.
async fn kms_server(key_id: Arc<Mutex<String>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a port");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let key_id = key_id.clone();
            tokio::spawn(async move {
                loop {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        match conn.read(&mut byte).await {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let content_length = head
                        .lines()
                        .filter_map(|l| l.split_once(':'))
                        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    let mut body = vec![0u8; content_length];
                    if conn.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let key_id = key_id.lock().expect("key id").clone();
                    // CreateMultipartUpload (POST ?uploads) answers with its upload id.
                    let body = if head.starts_with("POST") {
                        "<InitiateMultipartUploadResult><Bucket>bucket</Bucket><Key>k</Key>\
                         <UploadId>u</UploadId></InitiateMultipartUploadResult>"
                    } else {
                        ""
                    };
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nETag: \"e\"\r\n\
                         x-amz-server-side-encryption: aws:kms\r\n\
                         x-amz-server-side-encryption-aws-kms-key-id: {key_id}\r\n\r\n{body}",
                        body.len()
                    );
                    if conn.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

fn settings_for(endpoint: Option<String>) -> S3Settings {
    let mut settings = S3Settings::new("bucket", "");
    settings.endpoint = endpoint;
    settings.region = Some("us-east-1".into());
    settings.path_style = true;
    settings.access_key_id = Some("test".into());
    settings.secret_access_key = Some("test".into());
    settings.retry = S3Retry {
        max_attempts: 1,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(1),
    };
    settings
}

#[tokio::test]
async fn a_put_under_another_kms_key_is_refused() {
    let configured = "1234abcd-12ab-34cd-56ef-1234567890ab";
    let named = Arc::new(Mutex::new(format!(
        "arn:aws:kms:us-east-1:111122223333:key/{configured}"
    )));
    let endpoint = kms_server(named.clone()).await;
    let kms = SseMode::Kms {
        key_id: Some(configured.to_owned()),
        bucket_key: false,
    };
    for verify_sse in [true, false] {
        let mut settings = settings_for(Some(endpoint.clone()));
        settings.verify_sse = verify_sse;
        let store = S3Store::connect(settings, kms.clone())
            .await
            .expect("connect");
        *named.lock().expect("key id") =
            format!("arn:aws:kms:us-east-1:111122223333:key/{configured}");
        store
            .put("k", Bytes::from_static(b"x"), PutOptions::default())
            .await
            .expect("the configured key, named by its ARN");
        store
            .create_multipart("k", PutOptions::default())
            .await
            .expect("the configured key");
        let other = "arn:aws:kms:us-east-1:111122223333:key/ffffffff-0000";
        *named.lock().expect("key id") = other.to_owned();
        let e = store
            .put("k", Bytes::from_static(b"x"), PutOptions::default())
            .await
            .expect_err("another key")
            .to_string();
        assert!(
            e.contains("PutObject") && e.contains(other) && e.contains(configured),
            "verify_sse = {verify_sse}: {e}"
        );
        let e = store
            .create_multipart("k", PutOptions::default())
            .await
            .expect_err("another key")
            .to_string();
        assert!(
            e.contains("CreateMultipartUpload") && e.contains(other),
            "{e}"
        );
    }
}

#[tokio::test]
async fn sse_c_over_plain_http_is_refused_unless_allowed() {
    let key = crate::store::sse::SseCKey::from_bytes(&[7u8; 32], "test").expect("key");
    let sse_c = SseMode::customer_keys(vec![key]).expect("one key");
    for endpoint in ["http://127.0.0.1:9", "HTTP://localhost:9000"] {
        let e = S3Store::connect(settings_for(Some(endpoint.into())), sse_c.clone())
            .await
            .expect_err("SSE-C over http");
        assert!(
            matches!(&e, StoreError::SseCOverHttp { endpoint: shown } if shown == endpoint),
            "{e:?}"
        );
        assert!(e.to_string().contains("clear text"), "{e}");
        let mut allowed = settings_for(Some(endpoint.into()));
        allowed.allow_sse_c_over_http = true;
        S3Store::connect(allowed, sse_c.clone())
            .await
            .expect("allowed explicitly");
        // Other modes do not send a key.
        S3Store::connect(settings_for(Some(endpoint.into())), SseMode::S3)
            .await
            .expect("SSE-S3 over http");
    }
    S3Store::connect(
        settings_for(Some("https://s3.example.com".into())),
        sse_c.clone(),
    )
    .await
    .expect("https");
}
