//! Conversions between the SDK's answers and the store's types, and the small encodings S3
//! requests need.

use std::collections::HashMap;
use std::time::SystemTime;

use aws_sdk_s3::primitives::{ByteStream, ByteStreamError, DateTime};
use bytes::{Bytes, BytesMut};

use crate::store::rules;
use crate::store::{Metadata, ObjectInfo, StoreError, StoreResult};

/// Most a GET body reserves up front from its Content-Length: a wrong header must not make
/// the client allocate gigabytes before a byte arrives (larger bodies grow as they come).
const MAX_BODY_RESERVE_BYTES: u64 = 64 << 20;

/// Why a GET body was not taken.
#[derive(Debug)]
pub(super) enum BodyError {
    /// The connection failed while the body arrived.
    Stream(ByteStreamError),
    /// The server sent more bytes than the request allows: a hostile or broken server must not
    /// make the client hold more than it asked for.
    TooLong { limit: u64 },
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::Stream(e) => write!(f, "reading the body failed: {e}"),
            BodyError::TooLong { limit } => {
                write!(f, "the body is longer than the {limit} bytes asked for")
            }
        }
    }
}

/// A GET body in one buffer, copied piece by piece as it arrives into a buffer sized from
/// Content-Length. One copy of data still in the CPU cache, where collecting the pieces and
/// joining them at the end reads the whole body a second time and holds it twice; and the
/// buffer is the caller's alone, so the read path decrypts it in place.
///
/// The body may hold at most `limit` bytes (the requested range, or the size the server
/// announced): reading stops with [`BodyError::TooLong`] at the first byte beyond it. With a
/// limit of 0 there is nothing to read, and the body is not read at all.
pub(super) async fn collect_body(
    mut body: ByteStream,
    expected_len: Option<u64>,
    limit: u64,
) -> Result<Bytes, BodyError> {
    if limit == 0 {
        return Ok(Bytes::new());
    }
    let reserve = expected_len
        .unwrap_or(0)
        .min(limit)
        .min(MAX_BODY_RESERVE_BYTES);
    let mut buf = BytesMut::with_capacity(usize::try_from(reserve).unwrap_or(0));
    while let Some(piece) = body.try_next().await.map_err(BodyError::Stream)? {
        if buf.len() as u64 + piece.len() as u64 > limit {
            return Err(BodyError::TooLong { limit });
        }
        buf.extend_from_slice(&piece);
    }
    Ok(buf.freeze())
}

pub(super) fn object_info(
    key: &str,
    size: Option<i64>,
    etag: Option<&str>,
    last_modified: Option<&DateTime>,
    metadata: Option<&HashMap<String, String>>,
) -> StoreResult<ObjectInfo> {
    let size = size
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| malformed("response", key, "no valid object size"))?;
    Ok(ObjectInfo {
        key: key.to_owned(),
        size,
        etag: required_etag("response", key, etag)?,
        last_modified: last_modified
            .and_then(|t| SystemTime::try_from(*t).ok())
            .unwrap_or(SystemTime::UNIX_EPOCH),
        metadata: metadata.map(|m| {
            m.iter()
                .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
                .collect()
        }),
        sse: None,
    })
}

/// `info` with the SSE a HEAD or GET answer reports.
pub(super) fn sdk_metadata(metadata: &Metadata) -> HashMap<String, String> {
    rules::normalize_metadata(metadata).into_iter().collect()
}

/// S3 ETags are quoted; some servers leave the quotes out.
pub(super) fn required_etag(operation: &str, key: &str, etag: Option<&str>) -> StoreResult<String> {
    match etag.map(str::trim).filter(|e| !e.is_empty()) {
        Some(e) if e.starts_with('"') => Ok(e.to_owned()),
        Some(e) => Ok(format!("\"{e}\"")),
        None => Err(malformed(operation, key, "no ETag")),
    }
}

pub(super) fn malformed(operation: &str, key: &str, what: &str) -> StoreError {
    StoreError::Transient {
        key: key.to_owned(),
        reason: format!("{operation}: the server's response has {what}"),
    }
}

/// The object size in a `Content-Range: bytes a-b/size` header.
pub(super) fn content_range_total(header: &str) -> Option<u64> {
    header.rsplit_once('/')?.1.trim().parse().ok()
}

/// The byte range `a..b+1` a `Content-Range: bytes a-b/size` header says the body holds.
pub(super) fn content_range_span(header: &str) -> Option<std::ops::Range<u64>> {
    let (span, _) = header.trim().strip_prefix("bytes ")?.split_once('/')?;
    let (first, last) = span.split_once('-')?;
    let (first, last): (u64, u64) = (first.trim().parse().ok()?, last.trim().parse().ok()?);
    if first > last {
        return None;
    }
    Some(first..last.checked_add(1)?)
}

/// `x-amz-copy-source` names the source as `bucket/key` with the key URL-encoded (`/` kept).
pub(super) fn encode_copy_source_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_source_keys_are_url_encoded() {
        assert_eq!(encode_copy_source_key("a/b c.txt"), "a/b%20c.txt");
        assert_eq!(encode_copy_source_key("100%+?#"), "100%25%2B%3F%23");
        assert_eq!(encode_copy_source_key("ü"), "%C3%BC");
        assert_eq!(encode_copy_source_key("tab\t"), "tab%09");
    }

    #[test]
    fn content_range_gives_the_object_size() {
        assert_eq!(content_range_total("bytes 90-99/100"), Some(100));
        assert_eq!(content_range_total("bytes 0-0/*"), None);
        assert_eq!(content_range_total("garbage"), None);
    }

    #[test]
    fn content_range_gives_the_span_of_the_body() {
        assert_eq!(content_range_span("bytes 90-99/100"), Some(90..100));
        assert_eq!(content_range_span("bytes 0-0/*"), Some(0..1));
        assert_eq!(content_range_span("bytes 9-3/100"), None);
        assert_eq!(content_range_span("bytes 0-18446744073709551615/*"), None);
        assert_eq!(content_range_span("items 0-1/2"), None);
        assert_eq!(content_range_span("garbage"), None);
    }

    #[test]
    fn etags_are_quoted() {
        assert_eq!(
            required_etag("op", "k", Some("\"ab\"")).ok(),
            Some("\"ab\"".into())
        );
        assert_eq!(
            required_etag("op", "k", Some("ab")).ok(),
            Some("\"ab\"".into())
        );
        assert!(required_etag("op", "k", Some("")).is_err());
        assert!(required_etag("op", "k", None).is_err());
    }
}
