//! Key rotation without moving data: an object's DEK wrapped again under the current key
//! generation, kept in the object's user metadata.
//!
//! This module decides and produces wraps; the bytes (the value's layout, its key schedule,
//! the metadata names) are in `format::header` and `format::metadata`, where the opener finds
//! them too, so reading an object never depends on this module.
//!
//! `key rotate --rewrap` reads each object's 116-byte header (never a data block), unwraps the
//! DEK under the generation the header names, and stores
//!
//! ```text
//! x-amz-meta-s3cryptfs-wrap: base64( BE32(g) || AES-KW(K_meta, DEK) )      (60 characters)
//! K_meta = HKDF(ikm = G_g, salt = header salt, "s3cryptfs v1 metadata wrap" || ctx || BE32(g))
//! ```
//!
//! with a server-side CopyObject of the object onto itself (docs/FORMAT.md §2a). `ctx` is the
//! object's own context (header bytes 0..12 || vault id), so the wrap is bound to this object
//! and this vault; `g` is in the info so the number in the metadata cannot be swapped for
//! another. Readers try the metadata wrap first and the header's wrap second and keep the DEK
//! that matches the header's commitment: a wrong, stale or foreign metadata value can make an
//! object no more readable than its header alone, never read as something else.
//!
//! The header is untouched, so the object stays readable by anyone holding the old generation
//! (and by copies that dropped the metadata). Rewrapping is what lets an old generation be
//! *retired* from the config once no object needs it; it does not re-encrypt anything.

use std::collections::BTreeMap;

use super::error::{CryptoError, CryptoResult};
use super::format::header::{MetadataWrap, ParsedHeader, metadata_wrap_key};
use super::format::metadata::{metadata_wraps, parse_key_header};
use super::format::seal::ObjectOpener;
use super::kdf;
use super::keys::VaultKeys;

// The metadata names and values a rotation works with, where callers have always found them.
pub use super::format::metadata::{
    CRYPTO_METADATA_PREFIX, KEY_HEADER_LEN, METADATA_KEY_HEADER, METADATA_WRAP_KEY,
    key_header_value, metadata_wrap_generation, metadata_wrap_value,
};

/// Rewraps an object's DEK from the header copy in its metadata, without any object bytes.
///
/// `None` when the metadata has no well-formed copy (the caller then reads the header). The
/// commitment cannot be checked without the object, so a copy that does not match the object
/// yields a wrap bound to the copy's salt and context: readers find it does not unwrap for the
/// real header and fall back to the header's own wrap (an object is never read as something
/// else), and `--retire` checks real headers before it drops a generation.
pub fn rewrap_from_metadata(
    keys: &VaultKeys,
    metadata: &BTreeMap<String, String>,
) -> Option<CryptoResult<Rewrap>> {
    let header = parse_key_header(metadata.get(METADATA_KEY_HEADER)?)?;
    Some(rewrap_parsed(keys, &header, metadata))
}

fn rewrap_parsed(
    keys: &VaultKeys,
    header: &[u8],
    metadata: &BTreeMap<String, String>,
) -> CryptoResult<Rewrap> {
    let current = keys.current_generation();
    let parsed = ParsedHeader::parse(keys, header)?;
    let candidates = parsed.dek_candidates(keys, &metadata_wraps(Some(metadata)))?;
    if parsed.generation == current || candidates.iter().any(|(_, g)| *g == current) {
        return Ok(Rewrap::AlreadyCurrent);
    }
    let Some((dek, from)) = candidates.into_iter().next() else {
        return Err(CryptoError::WrongKey(
            "no wrap of the object's data key opens with this vault's keys".into(),
        ));
    };
    wrap_for_current(keys, &parsed, &dek, from)
}

fn wrap_for_current(
    keys: &VaultKeys,
    parsed: &ParsedHeader,
    dek: &kdf::SecretKey,
    from: u32,
) -> CryptoResult<Rewrap> {
    let current = keys.current_generation();
    let generation_key = keys.generation_key(current).ok_or_else(|| {
        CryptoError::Internal(format!(
            "the unlocked vault lacks its current key generation {current}"
        ))
    })?;
    let kek = metadata_wrap_key(generation_key, &parsed.salt, &parsed.ctx, current);
    let wrapped_dek = kdf::wrap_key(&kek, dek)?;
    let value = MetadataWrap {
        generation: current,
        wrapped_dek,
    }
    .encode();
    Ok(Rewrap::Wrapped { value, from })
}

/// What [`rewrap_for_metadata`] decided for one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rewrap {
    /// The header or a valid metadata wrap already uses the current generation.
    AlreadyCurrent,
    /// Store this value under [`METADATA_WRAP_KEY`]; `from` is the generation whose key
    /// unwrapped the DEK.
    Wrapped { value: String, from: u32 },
}

/// Rewraps one object's DEK under `keys`' current generation.
///
/// `header` is the object's first [`super::format::HEADER_LEN`] bytes, `object_size` its
/// stored size and `metadata` its user metadata. The object is fully checked first (header, unwrap and
/// commitment, as [`ObjectOpener::open_with_metadata`] does), so a corrupt or foreign object
/// is an error and never gets a wrap.
pub fn rewrap_for_metadata(
    keys: &VaultKeys,
    header: &[u8],
    object_size: u64,
    metadata: Option<&BTreeMap<String, String>>,
) -> CryptoResult<Rewrap> {
    let current = keys.current_generation();
    let wraps = metadata_wraps(metadata);
    let opener = ObjectOpener::open_with_wraps(keys, header, object_size, &wraps)?;
    if opener.generation() == current || opener.unwrapped_with() == current {
        return Ok(Rewrap::AlreadyCurrent);
    }
    // The opener checked the commitment for the DEK it kept; find that DEK again (the opener
    // holds only keys derived from it) among the same candidates, in the same order.
    let parsed = ParsedHeader::parse(keys, header)?;
    let (dek, from) = parsed
        .dek_candidates(keys, &wraps)?
        .into_iter()
        .find(|(_, g)| *g == opener.unwrapped_with())
        .ok_or_else(|| {
            CryptoError::Internal("the DEK the opener used is no longer a candidate".into())
        })?;
    wrap_for_current(keys, &parsed, &dek, from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::format::{open_all, open_all_with_metadata, seal_all};
    use crate::crypto::kdf::WRAPPED_KEY_LEN;
    use crate::crypto::keys::{Secret, VaultConfig};
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use zeroize::Zeroizing;

    fn vault() -> (VaultConfig, VaultKeys) {
        VaultConfig::create(&Secret::KeyFile(Zeroizing::new([7u8; 32])), 4096).expect("vault")
    }

    fn meta(value: &str) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        m.insert("mode".to_owned(), "33188".to_owned());
        m.insert(METADATA_WRAP_KEY.to_owned(), value.to_owned());
        m
    }

    #[test]
    fn wrap_values_roundtrip_and_reject_garbage() {
        let w = MetadataWrap {
            generation: 7,
            wrapped_dek: [3u8; WRAPPED_KEY_LEN],
        };
        let v = w.encode();
        assert_eq!(v.len(), 60);
        assert_eq!(MetadataWrap::parse(&v).expect("parse"), w);
        for bad in [
            "",
            "abc",
            "!!!!",
            &STANDARD.encode([0u8; 44]),
            &STANDARD.encode([1u8; 43]),
        ] {
            assert!(MetadataWrap::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rewrap_from_the_metadata_header_copy_matches_the_header() {
        let (mut config, mut keys) = vault();
        let object = seal_all(&keys, b"data under generation 1").expect("seal");
        let other = seal_all(&keys, b"x").expect("seal");
        let mut m = BTreeMap::new();
        m.insert(METADATA_KEY_HEADER.to_owned(), key_header_value(&object));
        config.add_generation(&mut keys).expect("rotate");
        let Some(Ok(Rewrap::Wrapped { value, from })) = rewrap_from_metadata(&keys, &m) else {
            panic!("expected a wrap from the metadata copy");
        };
        assert_eq!(from, 1);
        m.insert(METADATA_WRAP_KEY.to_owned(), value);
        let only_new = keys.without_generation(1).expect("without 1");
        let plain = open_all_with_metadata(&only_new, &object, Some(&m)).expect("open");
        assert_eq!(plain, b"data under generation 1");
        assert!(matches!(
            rewrap_from_metadata(&keys, &m),
            Some(Ok(Rewrap::AlreadyCurrent))
        ));
        // A copy from another object gives a wrap that this object ignores.
        let mut forged = BTreeMap::new();
        forged.insert(METADATA_KEY_HEADER.to_owned(), key_header_value(&other));
        let Some(Ok(Rewrap::Wrapped { value, .. })) = rewrap_from_metadata(&keys, &forged) else {
            panic!("expected a wrap");
        };
        forged.insert(METADATA_WRAP_KEY.to_owned(), value);
        assert!(open_all_with_metadata(&only_new, &object, Some(&forged)).is_err());
        assert_eq!(
            open_all_with_metadata(&keys, &object, Some(&forged)).expect("header wrap"),
            b"data under generation 1"
        );
        // No copy, or a malformed one: the caller reads the header.
        assert!(rewrap_from_metadata(&keys, &BTreeMap::new()).is_none());
        let mut bad = BTreeMap::new();
        bad.insert(METADATA_KEY_HEADER.to_owned(), "AAAA".to_owned());
        assert!(rewrap_from_metadata(&keys, &bad).is_none());
    }

    #[test]
    fn rewrapped_object_reads_without_its_old_generation() {
        let (mut config, mut keys) = vault();
        let object = seal_all(&keys, b"old data under generation 1").expect("seal");
        config.add_generation(&mut keys).expect("rotate");
        let Rewrap::Wrapped { value, from } =
            rewrap_for_metadata(&keys, &object, object.len() as u64, None).expect("rewrap")
        else {
            panic!("expected a wrap");
        };
        assert_eq!(from, 1);
        let m = meta(&value);
        assert_eq!(metadata_wrap_generation(&m), Some(2));
        // Rewrapping again is a no-op.
        assert_eq!(
            rewrap_for_metadata(&keys, &object, object.len() as u64, Some(&m)).expect("again"),
            Rewrap::AlreadyCurrent
        );
        // Without generation 1, only the metadata wrap opens it.
        let only_new = keys.without_generation(1).expect("without 1");
        assert!(matches!(
            open_all(&only_new, &object),
            Err(CryptoError::WrongKey(_))
        ));
        let plain = open_all_with_metadata(&only_new, &object, Some(&m)).expect("open");
        assert_eq!(plain, b"old data under generation 1");
        let opener =
            ObjectOpener::open_with_metadata(&only_new, &object, object.len() as u64, Some(&m))
                .expect("opener");
        assert_eq!((opener.generation(), opener.unwrapped_with()), (1, 2));
    }

    #[test]
    fn a_wrap_from_another_object_is_ignored() {
        let (mut config, mut keys) = vault();
        let a = seal_all(&keys, b"a").expect("seal");
        let b = seal_all(&keys, b"b").expect("seal");
        config.add_generation(&mut keys).expect("rotate");
        let Rewrap::Wrapped { value, .. } =
            rewrap_for_metadata(&keys, &a, a.len() as u64, None).expect("rewrap")
        else {
            panic!("expected a wrap");
        };
        // b with a's wrap: the header wrap still opens it.
        assert_eq!(
            open_all_with_metadata(&keys, &b, Some(&meta(&value))).expect("b"),
            b"b"
        );
        // Without generation 1, a's wrap does not unwrap b's DEK: wrong key, not garbage.
        let only_new = keys.without_generation(1).expect("without 1");
        assert!(matches!(
            open_all_with_metadata(&only_new, &b, Some(&meta(&value))),
            Err(CryptoError::WrongKey(_))
        ));
        // A malformed value is ignored.
        assert_eq!(
            open_all_with_metadata(&keys, &b, Some(&meta("garbage"))).expect("b"),
            b"b"
        );
    }

    #[test]
    fn corrupt_objects_get_no_wrap() {
        let (mut config, mut keys) = vault();
        let mut object = seal_all(&keys, b"some bytes").expect("seal");
        config.add_generation(&mut keys).expect("rotate");
        object.pop();
        let e = rewrap_for_metadata(&keys, &object, object.len() as u64, None).expect_err("cut");
        assert!(matches!(e, CryptoError::Corrupt(_)), "{e}");
    }

    #[test]
    fn new_objects_are_already_current() {
        let (mut config, mut keys) = vault();
        config.add_generation(&mut keys).expect("rotate");
        let object = seal_all(&keys, b"new").expect("seal");
        assert_eq!(
            rewrap_for_metadata(&keys, &object, object.len() as u64, None).expect("rewrap"),
            Rewrap::AlreadyCurrent
        );
    }
}
