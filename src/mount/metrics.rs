//! `--metrics-addr`: the counters of [`MountStatus`] in the Prometheus text format, over a
//! minimal HTTP/1.1 server on the mount's tokio runtime. `GET /metrics` only; a request head
//! larger than [`MAX_HEAD`] bytes or slower than [`HEAD_TIMEOUT`] is dropped, and one answer
//! per connection (`Connection: close`). Off by default, and loopback only unless the settings
//! allow another address (the metrics name files nowhere, but say how busy the mount is).

use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::control::{MountStatus, Report};
use crate::fs::{MetadataCache, RequestCount};

/// Largest request head read.
const MAX_HEAD: usize = 8 * 1024;
/// How long a client may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Bind `addr` and serve on the current tokio runtime; returns the bound address.
pub async fn serve(addr: SocketAddr, report: Report) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let report = report.clone();
                    tokio::spawn(async move { answer(stream, report).await });
                }
                Err(e) => {
                    log::warn!("metrics: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(bound)
}

async fn answer(mut stream: TcpStream, report: Report) {
    let head = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream)).await {
        Ok(Ok(head)) => head,
        Ok(Err(_)) | Err(_) => {
            let _ = respond(
                &mut stream,
                "400 Bad Request",
                "text/plain",
                "bad request\n",
            )
            .await;
            return;
        }
    };
    let request_line = head.lines().next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let _ = match (method, path) {
        ("GET", "/metrics") => {
            let body = render(&report().await);
            respond(
                &mut stream,
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                &body,
            )
            .await
        }
        ("GET", _) => respond(&mut stream, "404 Not Found", "text/plain", "see /metrics\n").await,
        _ => {
            respond(
                &mut stream,
                "405 Method Not Allowed",
                "text/plain",
                "GET only\n",
            )
            .await
        }
    };
}

/// The request head up to the blank line, at most [`MAX_HEAD`] bytes.
async fn read_head(stream: &mut TcpStream) -> io::Result<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::other("closed before the end of the head"));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.truncate(end);
            return Ok(String::from_utf8_lossy(&buf).into_owned());
        }
        if buf.len() > MAX_HEAD {
            return Err(io::Error::other("request head too large"));
        }
    }
}

async fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &str,
) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

/// A label value with `\`, `"` and newlines escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The Prometheus text format of `s`; every metric carries the mount point as a label.
pub fn render(s: &MountStatus) -> String {
    let mp = format!("mountpoint=\"{}\"", label(&s.mountpoint));
    let f = &s.fs;
    let c = &f.counts;
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
        let _ = writeln!(out, "# HELP s3cryptfs_{name} {help}");
        let _ = writeln!(out, "# TYPE s3cryptfs_{name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "s3cryptfs_{name}{{{mp}{labels}}} {value}");
        }
    };
    let one = |v: u64| vec![(String::new(), v)];
    metric(
        "info",
        "gauge",
        "The mount: store URL and vault id as labels.",
        &[(
            format!(
                ",store_url=\"{}\",vault_id=\"{}\"",
                label(&s.store_url),
                label(&s.vault_id)
            ),
            1,
        )],
    );
    // Metrics of one sample each, by (name, type, help, value), in the order shown.
    for (name, kind, help, value) in [
        (
            "uptime_seconds",
            "gauge",
            "Seconds since the mount started.",
            s.uptime_secs,
        ),
        (
            "open_files",
            "gauge",
            "Files open now, or kept open until their upload succeeds.",
            f.open_files,
        ),
    ] {
        metric(name, kind, help, &one(value));
    }
    metric(
        "files_pending",
        "gauge",
        "Files with data not yet in the store, by state (dirty, uploading, failed).",
        &[
            (",state=\"dirty\"".to_owned(), f.files_dirty),
            (",state=\"uploading\"".to_owned(), f.files_uploading),
            (",state=\"failed\"".to_owned(), f.files_failed),
        ],
    );
    for (name, kind, help, value) in [
        (
            "pending_bytes",
            "gauge",
            "Plaintext bytes of the files not yet in the store.",
            f.bytes_pending,
        ),
        (
            "staged_bytes",
            "gauge",
            "Bytes of sealed staging files on local disk.",
            f.staged_bytes,
        ),
        (
            "uploads_total",
            "counter",
            "Files stored in the store.",
            c.uploads_completed,
        ),
        (
            "uploaded_bytes_total",
            "counter",
            "Plaintext bytes of the files stored.",
            c.uploaded_bytes,
        ),
        (
            "upload_failures_total",
            "counter",
            "Uploads that failed (each is retried).",
            c.upload_failures,
        ),
        (
            "conflict_copies_total",
            "counter",
            "Conflict copies made because another client replaced a file being written.",
            c.conflict_copies,
        ),
    ] {
        metric(name, kind, help, &one(value));
    }
    // Samples labelled `name="value"`, one per (value, sample).
    let labelled = |name: &str, samples: Vec<(&str, u64)>| -> Vec<(String, u64)> {
        (samples.into_iter())
            .map(|(value, v)| (format!(",{name}=\"{}\"", label(value)), v))
            .collect()
    };
    let by_kind = |bytes: bool| {
        let pick = |r: &RequestCount| if bytes { r.bytes } else { r.requests };
        labelled(
            "kind",
            f.requests
                .iter()
                .map(|r| (r.kind.as_str(), pick(r)))
                .collect(),
        )
    };
    metric(
        "requests_total",
        "counter",
        "Requests sent to the store, by kind.",
        &by_kind(false),
    );
    metric(
        "request_bytes_total",
        "counter",
        "Body bytes of store requests by kind (sent for put and upload_part, received for get).",
        &by_kind(true),
    );
    for (name, kind, help, value) in [
        (
            "cache_bytes",
            "gauge",
            "Bytes of decrypted blocks in the cache.",
            f.cache.bytes,
        ),
        (
            "cache_capacity_bytes",
            "gauge",
            "The most the block cache holds.",
            f.cache.capacity,
        ),
        (
            "memory_limit_bytes",
            "gauge",
            "The memory budget of the block cache, reads in flight and upload buffers.",
            f.memory.limit,
        ),
        (
            "memory_bytes",
            "gauge",
            "Bytes the block cache, reads in flight and upload buffers hold now.",
            f.memory.in_use,
        ),
        (
            "memory_high_water_bytes",
            "gauge",
            "The most bytes they held at once since the mount.",
            f.memory.high_water,
        ),
    ] {
        metric(name, kind, help, &one(value));
    }
    let by_cache = |bytes: bool| {
        let pick = |c: &MetadataCache| if bytes { c.bytes } else { c.entries };
        labelled(
            "cache",
            f.metadata
                .iter()
                .map(|c| (c.name.as_str(), pick(c)))
                .collect(),
        )
    };
    metric(
        "metadata_cache_entries",
        "gauge",
        "Entries of the metadata caches (inodes, entries, settled, listings, attr_cache).",
        &by_cache(false),
    );
    metric(
        "metadata_cache_bytes",
        "gauge",
        "Bytes the metadata caches hold, about.",
        &by_cache(true),
    );
    for (name, kind, help, value) in [
        (
            "cache_hits_total",
            "counter",
            "Reads of a chunk answered from the block cache.",
            f.cache.hits,
        ),
        (
            "cache_misses_total",
            "counter",
            "Reads of a chunk that fetched blocks from the store.",
            f.cache.misses,
        ),
    ] {
        metric(name, kind, help, &one(value));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::FsStatus;

    #[test]
    fn labels_are_escaped_and_every_sample_names_the_mount() {
        let s = MountStatus {
            mountpoint: "/mnt/a \"b\"\\c".into(),
            store_url: "file:///srv/v".into(),
            vault_id: "00ff".into(),
            pid: 1,
            uptime_secs: 5,
            socket: String::new(),
            fs: FsStatus {
                files_failed: 2,
                requests: vec![RequestCount {
                    kind: "put".into(),
                    requests: 3,
                    bytes: 300,
                }],
                metadata: vec![MetadataCache {
                    name: "inodes".into(),
                    entries: 7,
                    bytes: 700,
                }],
                ..FsStatus::default()
            },
        };
        let text = render(&s);
        let mp = r#"mountpoint="/mnt/a \"b\"\\c""#;
        assert!(
            text.contains(&format!(
                "s3cryptfs_files_pending{{{mp},state=\"failed\"}} 2"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "s3cryptfs_request_bytes_total{{{mp},kind=\"put\"}} 300"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "s3cryptfs_metadata_cache_bytes{{{mp},cache=\"inodes\"}} 700"
            )),
            "{text}"
        );
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.contains(mp), "{line}");
        }
    }
}
