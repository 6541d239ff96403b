//! S3's rules, shared by the stores that implement them locally (memory and directory): key
//! limits, ETags, conditional requests, ranges and multipart part lists.
//!
//! Keeping them in one place means both local stores refuse exactly the same requests, and the
//! conformance tests (which also run against a real S3 server) keep them honest.

use std::ops::Range;

use md5::{Digest, Md5};

use super::sse::ObjectSse;
use super::{
    CompletedPart, MAX_PARTS, MAX_SINGLE_PUT, MIN_PART_SIZE, Metadata, PutOptions, StoreError,
    StoreResult,
};

/// Longest key S3 accepts, in UTF-8 bytes.
pub(crate) const MAX_KEY_BYTES: usize = 1024;

/// Refuse keys S3 refuses: empty or longer than 1024 bytes.
pub(crate) fn check_key(key: &str) -> StoreResult<()> {
    if key.is_empty() {
        return Err(StoreError::InvalidArgument("object key is empty".into()));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(StoreError::InvalidArgument(format!(
            "object key is {} bytes; S3 allows at most {MAX_KEY_BYTES}: {key}",
            key.len()
        )));
    }
    Ok(())
}

/// Refuse single PUT / CopyObject bodies larger than S3 allows.
pub(crate) fn check_single_put_size(key: &str, size: u64) -> StoreResult<()> {
    if size > MAX_SINGLE_PUT {
        return Err(StoreError::InvalidArgument(format!(
            "{key}: {size} bytes is more than a single PUT or copy may write (5 GiB); use multipart"
        )));
    }
    Ok(())
}

/// Raw MD5 digest of `data`.
pub(crate) fn md5(data: &[u8]) -> [u8; 16] {
    Md5::digest(data).into()
}

/// The quoted ETag S3 gives a single-PUT object (or a part): the hex MD5 of its body.
pub(crate) fn etag_from_md5(digest: &[u8; 16]) -> String {
    format!("\"{}\"", hex::encode(digest))
}

pub(crate) fn md5_etag(data: &[u8]) -> String {
    etag_from_md5(&md5(data))
}

/// The ETag of a completed multipart upload: MD5 of the concatenated binary part MD5s, then
/// `-<number of parts>`, quoted.
pub(crate) fn multipart_etag(part_digests: &[[u8; 16]]) -> String {
    let mut hasher = Md5::new();
    for digest in part_digests {
        hasher.update(digest);
    }
    format!(
        "\"{}-{}\"",
        hex::encode(hasher.finalize()),
        part_digests.len()
    )
}

/// The MD5 a single-part ETag carries, if it is one (`"<32 hex>"`).
pub(crate) fn md5_of_etag(etag: &str) -> Option<[u8; 16]> {
    let mut digest = [0u8; 16];
    hex::decode_to_slice(strip_quotes(etag), &mut digest).ok()?;
    Some(digest)
}

pub(crate) fn strip_quotes(etag: &str) -> &str {
    let etag = etag.trim();
    etag.strip_prefix('"')
        .and_then(|e| e.strip_suffix('"'))
        .unwrap_or(etag)
}

/// Whether an `If-Match` value names `actual`. Quotes are optional on the wanted side and `*`
/// matches any existing object, as in RFC 7232.
pub(crate) fn etag_matches(wanted: &str, actual: &str) -> bool {
    let wanted = wanted.trim();
    wanted == "*" || strip_quotes(wanted) == strip_quotes(actual)
}

/// Conditional-write rules of PutObject / CompleteMultipartUpload. `current` is the ETag of
/// the object now at `key`, if any. If-Match on a missing key is 404 in S3, not 412.
pub(crate) fn check_write_conditions(
    key: &str,
    current: Option<&str>,
    opts: &PutOptions,
) -> StoreResult<()> {
    if opts.if_none_match && current.is_some() {
        return Err(StoreError::PreconditionFailed { key: key.into() });
    }
    if let Some(wanted) = &opts.if_match {
        match current {
            None => return Err(StoreError::NotFound { key: key.into() }),
            Some(actual) if !etag_matches(wanted, actual) => {
                return Err(StoreError::PreconditionFailed { key: key.into() });
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// GET's If-Match.
pub(crate) fn check_read_condition(
    key: &str,
    actual: &str,
    if_match: Option<&str>,
) -> StoreResult<()> {
    match if_match {
        Some(wanted) if !etag_matches(wanted, actual) => {
            Err(StoreError::PreconditionFailed { key: key.into() })
        }
        _ => Ok(()),
    }
}

/// The byte range a GET returns from an object of `size` bytes: past-the-end ends are clipped,
/// a start at or past the end of a non-empty object is `InvalidRange`, an empty object yields
/// an empty body for any range. An empty or reversed range cannot be said in HTTP's `Range`
/// header and is refused as an invalid argument.
pub(crate) fn resolve_range(
    key: &str,
    range: Option<Range<u64>>,
    size: u64,
) -> StoreResult<Range<u64>> {
    let Some(range) = range else {
        return Ok(0..size);
    };
    if range.start >= range.end {
        return Err(StoreError::InvalidArgument(format!(
            "{key}: empty or reversed range {}..{}",
            range.start, range.end
        )));
    }
    if size == 0 {
        return Ok(0..0);
    }
    if range.start >= size {
        return Err(StoreError::InvalidRange {
            key: key.into(),
            start: range.start,
            end: range.end,
            size,
        });
    }
    Ok(range.start..range.end.min(size))
}

/// Part numbers S3 accepts: 1..=10000.
pub(crate) fn check_part_number(key: &str, part_number: u32) -> StoreResult<()> {
    if part_number == 0 || part_number > MAX_PARTS {
        return Err(StoreError::InvalidArgument(format!(
            "{key}: part number {part_number} is outside 1..={MAX_PARTS}"
        )));
    }
    Ok(())
}

/// UploadPart of an SSE-C upload must carry the key given at create time, as in S3 (400).
/// `sent` is the SSE the part's request asks for.
pub(crate) fn check_part_sse(key: &str, upload: &ObjectSse, sent: &ObjectSse) -> StoreResult<()> {
    match (upload, sent) {
        (ObjectSse::C { key_md5 }, ObjectSse::C { key_md5: sent }) if sent == key_md5 => Ok(()),
        (ObjectSse::C { key_md5 }, _) => Err(StoreError::InvalidArgument(format!(
            "UploadPart {key}: the upload was created with the SSE-C key of MD5 {key_md5}; every \
             part must carry the same key (InvalidRequest, HTTP 400)"
        ))),
        _ => Ok(()),
    }
}

/// What a store knows about an uploaded part when completing.
pub(crate) struct UploadedPart {
    pub etag: String,
    pub size: u64,
}

/// CompleteMultipartUpload's checks, in S3's order: a non-empty list of at most 10000 parts in
/// ascending order (InvalidPartOrder), each uploaded with the given ETag (InvalidPart), every part
/// but the last at least 5 MiB (EntityTooSmall). `lookup` finds an uploaded part by number.
pub(crate) fn check_part_list(
    key: &str,
    parts: &[CompletedPart],
    lookup: impl Fn(u32) -> StoreResult<Option<UploadedPart>>,
) -> StoreResult<Vec<UploadedPart>> {
    let invalid = |reason: String| StoreError::InvalidPart {
        key: key.into(),
        reason,
    };
    if parts.is_empty() {
        return Err(invalid("the part list is empty".into()));
    }
    if parts.len() > MAX_PARTS as usize {
        return Err(invalid(format!(
            "{} parts; at most {MAX_PARTS} allowed",
            parts.len()
        )));
    }
    if let Some(pair) = parts
        .windows(2)
        .find(|pair| pair[0].part_number >= pair[1].part_number)
    {
        return Err(invalid(format!(
            "parts must be listed in ascending order (part {} follows part {})",
            pair[1].part_number, pair[0].part_number
        )));
    }
    let mut found = Vec::with_capacity(parts.len());
    for part in parts {
        match lookup(part.part_number)? {
            Some(uploaded) if etag_matches(&part.etag, &uploaded.etag) => found.push(uploaded),
            Some(uploaded) => {
                return Err(invalid(format!(
                    "part {} has ETag {}, not {}",
                    part.part_number, uploaded.etag, part.etag
                )));
            }
            None => {
                return Err(invalid(format!(
                    "part {} was not uploaded",
                    part.part_number
                )));
            }
        }
    }
    let last = found.len() - 1;
    for (i, (part, uploaded)) in parts.iter().zip(&found).enumerate() {
        if i < last && uploaded.size < MIN_PART_SIZE {
            return Err(StoreError::EntityTooSmall {
                key: key.into(),
                part_number: part.part_number,
                size: uploaded.size,
            });
        }
    }
    Ok(found)
}

/// S3 stores user metadata names in lowercase.
pub(crate) fn normalize_metadata(metadata: &Metadata) -> Metadata {
    metadata
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
        .collect()
}

/// A fresh multipart upload id: 32 lowercase hex digits of randomness.
pub(crate) fn new_upload_id(key: &str) -> StoreResult<String> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| StoreError::Io {
        key: key.into(),
        source: std::io::Error::other("the system random number generator failed"),
    })?;
    Ok(hex::encode(bytes))
}

/// Whether `id` has the shape [`new_upload_id`] gives (so it is safe as a file name).
pub(crate) fn is_upload_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_of_empty_body_is_the_md5_of_nothing() {
        assert_eq!(md5_etag(b""), "\"d41d8cd98f00b204e9800998ecf8427e\"");
    }

    #[test]
    fn multipart_etag_counts_parts() {
        let a = md5(b"a");
        let b = md5(b"b");
        let etag = multipart_etag(&[a, b]);
        assert!(etag.starts_with('"') && etag.ends_with("-2\""), "{etag}");
        let mut joined = Vec::new();
        joined.extend_from_slice(&a);
        joined.extend_from_slice(&b);
        assert_eq!(etag, format!("\"{}-2\"", hex::encode(md5(&joined))));
    }

    #[test]
    fn etag_matching_ignores_quotes_and_accepts_star() {
        let actual = md5_etag(b"x");
        assert!(etag_matches(&actual, &actual));
        assert!(etag_matches(actual.trim_matches('"'), &actual));
        assert!(etag_matches("*", &actual));
        assert!(!etag_matches("\"00\"", &actual));
        assert_eq!(md5_of_etag(&actual), Some(md5(b"x")));
        assert_eq!(md5_of_etag("\"abc-2\""), None);
    }

    #[test]
    fn ranges_follow_s3() {
        assert_eq!(resolve_range("k", None, 10).ok(), Some(0..10));
        assert_eq!(resolve_range("k", Some(2..5), 10).ok(), Some(2..5));
        assert_eq!(resolve_range("k", Some(8..50), 10).ok(), Some(8..10));
        assert!(matches!(
            resolve_range("k", Some(10..11), 10),
            Err(StoreError::InvalidRange { .. })
        ));
        assert_eq!(resolve_range("k", Some(0..10), 0).ok(), Some(0..0));
        assert!(matches!(
            resolve_range("k", Some(3..3), 10),
            Err(StoreError::InvalidArgument(_))
        ));
    }

    #[test]
    fn conditions_follow_s3() {
        let etag = md5_etag(b"x");
        let create_only = PutOptions {
            if_none_match: true,
            ..PutOptions::default()
        };
        assert!(check_write_conditions("k", None, &create_only).is_ok());
        assert!(matches!(
            check_write_conditions("k", Some(&etag), &create_only),
            Err(StoreError::PreconditionFailed { .. })
        ));
        let swap = PutOptions {
            if_match: Some(etag.clone()),
            ..PutOptions::default()
        };
        assert!(check_write_conditions("k", Some(&etag), &swap).is_ok());
        assert!(matches!(
            check_write_conditions("k", Some("\"other\""), &swap),
            Err(StoreError::PreconditionFailed { .. })
        ));
        assert!(matches!(
            check_write_conditions("k", None, &swap),
            Err(StoreError::NotFound { .. })
        ));
    }

    #[test]
    fn keys_and_part_numbers_are_bounded() {
        assert!(check_key("").is_err());
        assert!(check_key(&"k".repeat(1024)).is_ok());
        assert!(check_key(&"k".repeat(1025)).is_err());
        assert!(check_part_number("k", 0).is_err());
        assert!(check_part_number("k", 1).is_ok());
        assert!(check_part_number("k", 10_000).is_ok());
        assert!(check_part_number("k", 10_001).is_err());
    }

    #[test]
    fn upload_ids_are_recognized() {
        let id = new_upload_id("k").expect("rng works in tests");
        assert!(is_upload_id(&id));
        assert!(!is_upload_id("../../etc"));
        assert!(!is_upload_id(&id.to_uppercase()));
    }
}
