//! The user-metadata entries of the encryption layer (`x-amz-meta-s3cryptfs-*`).
//!
//! Two entries, both optional and both only ever *helping* a reader (docs/FORMAT.md §2a):
//!
//! - `s3cryptfs-wrap`: the DEK wrapped again under a newer key generation ([`MetadataWrap`]),
//!   written by `key rotate --rewrap` so that an old generation can be retired without moving
//!   data. Readers hand the well-formed ones to the opener as candidate wraps
//!   ([`metadata_wraps`]); a malformed value is ignored, never an error.
//! - `s3cryptfs-key`: a copy of the header's key part (bytes 0..84: format, generation, salt,
//!   wrapped DEK), written with every upload so that a rewrap reads no object bytes.
//!
//! Whoever replaces an object's metadata (a chmod, a rename with new attributes, a rewrap)
//! must keep these entries: [`crypto_metadata`] picks them out.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::header::{COMMIT_OFFSET, MetadataWrap};
use super::layout::HEADER_LEN;
use super::record::ATTR_RECORD_KEY;

/// Every user-metadata key of the encryption layer starts with this.
pub const CRYPTO_METADATA_PREFIX: &str = "s3cryptfs-";
/// The user-metadata key (without `x-amz-meta-`) that holds a metadata wrap.
pub const METADATA_WRAP_KEY: &str = "s3cryptfs-wrap";
/// The user-metadata key of a copy of the header's key part (bytes 0..84: format, generation,
/// salt, wrapped DEK), written with every upload so that a rewrap reads no object bytes.
pub const METADATA_KEY_HEADER: &str = "s3cryptfs-key";
/// Bytes of the header copied into [`METADATA_KEY_HEADER`] (everything but the commitment,
/// which depends on the final size and is not known when a streamed upload starts).
pub const KEY_HEADER_LEN: usize = COMMIT_OFFSET;

/// The metadata wrap value in an object's user metadata, if any.
pub fn metadata_wrap_value(metadata: &BTreeMap<String, String>) -> Option<&str> {
    metadata.get(METADATA_WRAP_KEY).map(String::as_str)
}

/// The well-formed metadata wraps in an object's user metadata (none, or one): the candidate
/// wraps an opener tries before the header's own.
pub fn metadata_wraps(metadata: Option<&BTreeMap<String, String>>) -> Vec<MetadataWrap> {
    metadata
        .and_then(metadata_wrap_value)
        .and_then(|v| MetadataWrap::parse(v).ok())
        .into_iter()
        .collect()
}

/// The generation a metadata wrap names, if the metadata holds a well-formed one (no key
/// needed: used to skip objects already rewrapped without reading them).
pub fn metadata_wrap_generation(metadata: &BTreeMap<String, String>) -> Option<u32> {
    metadata_wrap_value(metadata)
        .and_then(|v| MetadataWrap::parse(v).ok())
        .map(|w| w.generation)
}

/// The entries of object metadata that belong to the encryption (`s3cryptfs-*`), which a
/// metadata-replacing copy must carry over: all but the attribute record, which is bound to
/// the object's key and sealed anew by every writer.
pub fn crypto_metadata(metadata: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    metadata
        .iter()
        .filter(|(k, _)| k.starts_with(CRYPTO_METADATA_PREFIX) && *k != ATTR_RECORD_KEY)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The [`METADATA_KEY_HEADER`] value for an object with this header (or header prefix).
pub fn key_header_value(header: &[u8]) -> String {
    STANDARD.encode(&header[..KEY_HEADER_LEN.min(header.len())])
}

/// The header a [`METADATA_KEY_HEADER`] value holds, commitment zeroed, if well-formed.
pub(in crate::crypto) fn parse_key_header(value: &str) -> Option<[u8; HEADER_LEN]> {
    let bytes = STANDARD.decode(value.trim()).ok()?;
    if bytes.len() != KEY_HEADER_LEN {
        return None;
    }
    // The commitment stays zero: only the key fields are used from here.
    let mut header = [0u8; HEADER_LEN];
    header[..KEY_HEADER_LEN].copy_from_slice(&bytes);
    Some(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_wraps_are_candidates() {
        let wrap = MetadataWrap {
            generation: 3,
            wrapped_dek: [9u8; 40],
        };
        let mut m = BTreeMap::new();
        assert!(metadata_wraps(Some(&m)).is_empty());
        assert!(metadata_wraps(None).is_empty());
        m.insert(METADATA_WRAP_KEY.to_owned(), "garbage".to_owned());
        assert!(metadata_wraps(Some(&m)).is_empty());
        assert_eq!(metadata_wrap_generation(&m), None);
        m.insert(METADATA_WRAP_KEY.to_owned(), wrap.encode());
        assert_eq!(metadata_wraps(Some(&m)), vec![wrap]);
        assert_eq!(metadata_wrap_generation(&m), Some(3));
    }

    #[test]
    fn crypto_metadata_is_the_s3cryptfs_entries() {
        let mut m = BTreeMap::new();
        m.insert("mode".to_owned(), "33188".to_owned());
        m.insert(METADATA_WRAP_KEY.to_owned(), "w".to_owned());
        m.insert(METADATA_KEY_HEADER.to_owned(), "k".to_owned());
        m.insert(ATTR_RECORD_KEY.to_owned(), "r".to_owned());
        let kept = crypto_metadata(&m);
        assert_eq!(kept.len(), 2);
        assert!(!kept.contains_key(ATTR_RECORD_KEY));
        assert!(!kept.contains_key("mode"));
    }
}
