//! The S3 store against a hostile server: a small HTTP server on 127.0.0.1 that answers every
//! request with what a test scripts (too long a body, bytes from the wrong offset, keys outside
//! the prefix, a pagination loop). Every answer must be refused or cleaned, never passed on.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::store::SseMode;

/// What the scripted server sends back: status line, headers and body. `Endless` streams a
/// chunked body until the client hangs up.
enum Answer {
    Fixed {
        status: &'static str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    Endless,
}

type Script = Arc<dyn Fn(&str) -> Answer + Send + Sync>;

/// Serves `script` (given the request line) on a free port; returns the endpoint URL.
async fn hostile_server(script: Script) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a port");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            let script = script.clone();
            tokio::spawn(async move {
                let _ = serve(conn, script).await;
            });
        }
    });
    format!("http://{addr}")
}

async fn serve(mut conn: TcpStream, script: Script) -> std::io::Result<()> {
    loop {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if conn.read(&mut byte).await? == 0 {
                return Ok(());
            }
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let request_line = head.lines().next().unwrap_or_default().to_owned();
        let content_length = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; content_length];
        conn.read_exact(&mut body).await?;
        match script(&request_line) {
            Answer::Fixed {
                status,
                headers,
                body,
            } => {
                let mut out = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
                for (name, value) in headers {
                    out.push_str(&format!("{name}: {value}\r\n"));
                }
                out.push_str("\r\n");
                conn.write_all(out.as_bytes()).await?;
                conn.write_all(&body).await?;
            }
            Answer::Endless => {
                conn.write_all(
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nETag: \"e\"\r\n\r\n",
                )
                .await?;
                let chunk = vec![b'x'; 1 << 20];
                loop {
                    conn.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                        .await?;
                    conn.write_all(&chunk).await?;
                    conn.write_all(b"\r\n").await?;
                }
            }
        }
    }
}

async fn store_at(endpoint: String) -> S3Store {
    let mut settings = S3Settings::new("bucket", "");
    settings.endpoint = Some(endpoint);
    settings.region = Some("us-east-1".into());
    settings.path_style = true;
    settings.access_key_id = Some("test".into());
    settings.secret_access_key = Some("test".into());
    settings.retry = S3Retry {
        max_attempts: 1,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(1),
    };
    S3Store::connect(settings, SseMode::None)
        .await
        .expect("connect to the scripted server")
}

fn object_answer(status: &'static str, body: Vec<u8>, range: Option<&str>) -> Answer {
    let mut headers = vec![
        ("ETag".to_owned(), "\"e\"".to_owned()),
        (
            "Last-Modified".to_owned(),
            "Thu, 01 Jan 2026 00:00:00 GMT".to_owned(),
        ),
    ];
    if let Some(range) = range {
        headers.push(("Content-Range".to_owned(), range.to_owned()));
    }
    Answer::Fixed {
        status,
        headers,
        body,
    }
}

fn listing(keys: &[&str], prefixes: &[&str], truncated_with: Option<&str>) -> Answer {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
         <Name>bucket</Name><Prefix>p/</Prefix><Delimiter>/</Delimiter><MaxKeys>1000</MaxKeys>",
    );
    match truncated_with {
        Some(token) => xml.push_str(&format!(
            "<IsTruncated>true</IsTruncated><NextContinuationToken>{token}</NextContinuationToken>"
        )),
        None => xml.push_str("<IsTruncated>false</IsTruncated>"),
    }
    for key in keys {
        xml.push_str(&format!(
            "<Contents><Key>{key}</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified>\
             <ETag>&quot;e&quot;</ETag><Size>3</Size><StorageClass>STANDARD</StorageClass></Contents>"
        ));
    }
    for prefix in prefixes {
        xml.push_str(&format!(
            "<CommonPrefixes><Prefix>{prefix}</Prefix></CommonPrefixes>"
        ));
    }
    xml.push_str("</ListBucketResult>");
    Answer::Fixed {
        status: "200 OK",
        headers: vec![("Content-Type".to_owned(), "application/xml".to_owned())],
        body: xml.into_bytes(),
    }
}

#[tokio::test]
async fn a_body_longer_than_the_range_is_refused() {
    let endpoint = hostile_server(Arc::new(|_| {
        object_answer("200 OK", vec![7u8; 1 << 20], None)
    }))
    .await;
    let store = store_at(endpoint).await;
    let err = store
        .get("k", Some(0..100), None)
        .await
        .expect_err("a 1 MiB body for 100 bytes asked");
    assert!(err.to_string().contains("longer than"), "{err}");
}

#[tokio::test]
async fn bytes_from_another_offset_are_refused() {
    // 206 whose Content-Range starts elsewhere than asked.
    let endpoint = hostile_server(Arc::new(|_| {
        object_answer(
            "206 Partial Content",
            vec![1u8; 100],
            Some("bytes 0-99/1000"),
        )
    }))
    .await;
    let store = store_at(endpoint).await;
    let err = store
        .get("k", Some(100..200), None)
        .await
        .expect_err("bytes 0-99 for 100..200");
    assert!(err.to_string().contains("Content-Range"), "{err}");

    // 200 with the whole object for a range that does not start at 0.
    let endpoint = hostile_server(Arc::new(|_| object_answer("200 OK", vec![1u8; 50], None))).await;
    let store = store_at(endpoint).await;
    let err = store
        .get("k", Some(10..100), None)
        .await
        .expect_err("the whole object for 10..100");
    assert!(err.to_string().contains("no Content-Range"), "{err}");
}

#[tokio::test]
async fn an_honest_range_answer_is_taken() {
    let endpoint = hostile_server(Arc::new(|_| {
        object_answer("206 Partial Content", vec![5u8; 40], Some("bytes 10-49/50"))
    }))
    .await;
    let store = store_at(endpoint).await;
    let out = store
        .get("k", Some(10..100), None)
        .await
        .expect("bytes 10-49 of a 50-byte object for 10..100");
    assert_eq!(out.data.len(), 40);
    assert_eq!(out.info.size, 50);
}

#[tokio::test]
async fn an_endless_body_is_cut_off() {
    let endpoint = hostile_server(Arc::new(|_| Answer::Endless)).await;
    let store = store_at(endpoint).await;
    let err = store
        .get("k", None, None)
        .await
        .expect_err("an endless body without Content-Length");
    assert!(err.to_string().contains("longer than"), "{err}");
}

#[tokio::test]
async fn listings_skip_keys_the_request_did_not_ask_for() {
    let endpoint = hostile_server(Arc::new(|_| {
        listing(
            &[
                "p/good",
                "q/outside",
                "p/sub/rolled-up",
                "p/",
                "p/also-good",
            ],
            &["p/dir/", "p/a/b/", "elsewhere/", "p/nodelim"],
            None,
        )
    }))
    .await;
    let store = store_at(endpoint).await;
    let req = ListRequest {
        prefix: "p/".into(),
        delimiter: Some("/".into()),
        ..ListRequest::default()
    };
    let page = store.list(&req).await.expect("the listing itself is fine");
    let keys: Vec<&str> = page.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, ["p/good", "p/", "p/also-good"]);
    assert_eq!(page.common_prefixes, ["p/dir/"]);
}

#[tokio::test]
async fn a_pagination_loop_is_refused() {
    let endpoint = hostile_server(Arc::new(|_| listing(&["p/a"], &[], Some("same")))).await;
    let store = store_at(endpoint).await;
    let first = ListRequest {
        prefix: "p/".into(),
        delimiter: Some("/".into()),
        ..ListRequest::default()
    };
    let page = store.list(&first).await.expect("the first page");
    assert_eq!(page.next_continuation_token.as_deref(), Some("same"));
    let again = ListRequest {
        continuation_token: page.next_continuation_token,
        ..first
    };
    let err = store
        .list(&again)
        .await
        .expect_err("a page that hands back its own token");
    assert!(err.to_string().contains("NextContinuationToken"), "{err}");
}

#[tokio::test]
async fn listing_entries_without_etag_are_completed_by_a_head() {
    // A server that leaves ETag out of ListObjectsV2 entries (the field is optional in
    // practice): the listing asks HEAD for those entries instead of failing.
    let endpoint = hostile_server(Arc::new(|request_line| {
        if request_line.starts_with("HEAD /bucket/p/gone") {
            return Answer::Fixed {
                status: "404 Not Found",
                headers: Vec::new(),
                body: Vec::new(),
            };
        }
        if request_line.starts_with("HEAD ") {
            return Answer::Fixed {
                status: "200 OK",
                headers: vec![
                    ("ETag".to_owned(), "\"from-head\"".to_owned()),
                    (
                        "Last-Modified".to_owned(),
                        "Thu, 01 Jan 2026 00:00:00 GMT".to_owned(),
                    ),
                ],
                body: Vec::new(),
            };
        }
        let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
            <ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
            <Name>bucket</Name><Prefix>p/</Prefix><IsTruncated>false</IsTruncated>\
            <Contents><Key>p/a</Key><Size>3</Size></Contents>\
            <Contents><Key>p/gone</Key><Size>3</Size></Contents>\
            <Contents><Key>p/b</Key><ETag>&quot;listed&quot;</ETag><Size>4</Size></Contents>\
            </ListBucketResult>";
        Answer::Fixed {
            status: "200 OK",
            headers: vec![("Content-Type".to_owned(), "application/xml".to_owned())],
            body: xml.as_bytes().to_vec(),
        }
    }))
    .await;
    let store = store_at(endpoint).await;
    let req = ListRequest {
        prefix: "p/".into(),
        ..ListRequest::default()
    };
    let page = store.list(&req).await.expect("a listing without ETags");
    let got: Vec<(&str, &str)> = page
        .objects
        .iter()
        .map(|o| (o.key.as_str(), o.etag.as_str()))
        .collect();
    assert_eq!(got, [("p/a", "\"from-head\""), ("p/b", "\"listed\"")]);
    assert!(page.objects.iter().all(|o| o.metadata.is_none()));
}

fn delete_result(errors: &[(&str, &str)]) -> Answer {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
    );
    for (key, code) in errors {
        xml.push_str(&format!(
            "<Error><Key>{key}</Key><Code>{code}</Code><Message>no</Message></Error>"
        ));
    }
    xml.push_str("</DeleteResult>");
    Answer::Fixed {
        status: "200 OK",
        headers: vec![("Content-Type".to_owned(), "application/xml".to_owned())],
        body: xml.into_bytes(),
    }
}

#[tokio::test]
async fn batch_delete_errors_count_only_for_keys_asked_for() {
    let script: Script = Arc::new(|line: &str| {
        assert!(line.starts_with("POST /bucket/?delete"), "{line}");
        delete_result(&[
            ("p/b", "AccessDenied"),
            ("p/c", "NoSuchKey"),
            ("p/never-asked", "InternalError"),
            ("", "InternalError"),
        ])
    });
    let store = store_at(hostile_server(script).await).await;
    let keys: Vec<String> = ["p/a", "p/b", "p/c"].map(String::from).to_vec();
    let failed = store.delete_many(&keys).await.expect("the request worked");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].key, "p/b");
    assert!(
        matches!(failed[0].error, StoreError::AccessDenied { .. }),
        "{failed:?}"
    );
}

#[tokio::test]
async fn a_server_without_batch_delete_gets_single_deletes_from_then_on() {
    let batches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let singles = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (b, s) = (batches.clone(), singles.clone());
    let script: Script = Arc::new(move |line: &str| {
        use std::sync::atomic::Ordering::SeqCst;
        if line.starts_with("POST ") {
            b.fetch_add(1, SeqCst);
            return Answer::Fixed {
                status: "501 Not Implemented",
                headers: vec![("Content-Type".to_owned(), "application/xml".to_owned())],
                body: b"<Error><Code>NotImplemented</Code><Message>no</Message></Error>".to_vec(),
            };
        }
        assert!(line.starts_with("DELETE /bucket/p/"), "{line}");
        s.fetch_add(1, SeqCst);
        Answer::Fixed {
            status: "204 No Content",
            headers: Vec::new(),
            body: Vec::new(),
        }
    });
    let store = store_at(hostile_server(script).await).await;
    let keys: Vec<String> = (0..5).map(|i| format!("p/{i}")).collect();
    assert!(store.delete_many(&keys).await.expect("fallback").is_empty());
    assert!(store.delete_many(&keys).await.expect("fallback").is_empty());
    let seen = |c: &std::sync::atomic::AtomicUsize| c.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!((seen(&batches), seen(&singles)), (1, 10));
    let stats = store.stats().expect("stats");
    assert_eq!(stats.requests(Op::DeleteBatch), 1);
    assert_eq!(stats.requests(Op::Delete), 10);
}
