//! Metadata wraps: an object's DEK wrapped again under a newer key generation, kept in the
//! object's user metadata so that key rotation needs no data to move.
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

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::format::{COMMIT_OFFSET, CTX_LEN, HEADER_LEN, ParsedHeader};
use super::kdf::{self, WRAPPED_KEY_LEN};
use super::{CryptoError, CryptoResult, ObjectOpener, VaultKeys};

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
const INFO_METADATA_WRAP: &[u8] = b"s3cryptfs v1 metadata wrap";
/// BE32 generation + AES-KW output.
const WRAP_VALUE_LEN: usize = 4 + WRAPPED_KEY_LEN;

/// A decoded `s3cryptfs-wrap` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataWrap {
    pub generation: u32,
    pub wrapped_dek: [u8; WRAPPED_KEY_LEN],
}

impl MetadataWrap {
    /// Decodes a metadata value; `Corrupt` when it is not base64 of 44 bytes or names
    /// generation 0.
    pub fn parse(value: &str) -> CryptoResult<MetadataWrap> {
        let bad = || {
            CryptoError::Corrupt(format!(
                "{METADATA_WRAP_KEY} metadata {value:?} is not base64 of a 4-byte generation \
                 and a 40-byte key wrap"
            ))
        };
        let bytes = STANDARD.decode(value.trim()).map_err(|_| bad())?;
        if bytes.len() != WRAP_VALUE_LEN {
            return Err(bad());
        }
        let generation = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        if generation == 0 {
            return Err(bad());
        }
        let mut wrapped_dek = [0u8; WRAPPED_KEY_LEN];
        wrapped_dek.copy_from_slice(&bytes[4..]);
        Ok(MetadataWrap {
            generation,
            wrapped_dek,
        })
    }

    pub fn encode(&self) -> String {
        let mut bytes = [0u8; WRAP_VALUE_LEN];
        bytes[..4].copy_from_slice(&self.generation.to_be_bytes());
        bytes[4..].copy_from_slice(&self.wrapped_dek);
        STANDARD.encode(bytes)
    }
}

/// The metadata wrap value in an object's user metadata, if any.
pub fn metadata_wrap_value(metadata: &BTreeMap<String, String>) -> Option<&str> {
    metadata.get(METADATA_WRAP_KEY).map(String::as_str)
}

/// The generation a metadata wrap names, if the metadata holds a well-formed one (no key
/// needed: used to skip objects already rewrapped without reading them).
pub fn metadata_wrap_generation(metadata: &BTreeMap<String, String>) -> Option<u32> {
    metadata_wrap_value(metadata)
        .and_then(|v| MetadataWrap::parse(v).ok())
        .map(|w| w.generation)
}

fn metadata_wrap_key(
    generation_key: &[u8; 32],
    salt: &[u8; 32],
    ctx: &[u8; CTX_LEN],
    generation: u32,
) -> kdf::SecretKey {
    kdf::hkdf_sha256(
        generation_key,
        salt,
        &[INFO_METADATA_WRAP, ctx, &generation.to_be_bytes()],
    )
}

/// The DEK from a metadata wrap, with its generation; `None` when the value is malformed,
/// names a generation `keys` lacks, or does not unwrap.
pub(super) fn unwrap_metadata(
    keys: &VaultKeys,
    header: &ParsedHeader,
    value: &str,
) -> Option<(kdf::SecretKey, u32)> {
    let wrap = MetadataWrap::parse(value).ok()?;
    let generation_key = keys.generation_key(wrap.generation)?;
    let kek = metadata_wrap_key(generation_key, &header.salt, &header.ctx, wrap.generation);
    kdf::unwrap_key(&kek, &wrap.wrapped_dek).map(|dek| (dek, wrap.generation))
}

/// The [`METADATA_KEY_HEADER`] value for an object with this header (or header prefix).
pub fn key_header_value(header: &[u8]) -> String {
    STANDARD.encode(&header[..KEY_HEADER_LEN.min(header.len())])
}

/// The header prefix a [`METADATA_KEY_HEADER`] value holds, if well-formed.
fn parse_key_header(value: &str) -> Option<[u8; HEADER_LEN]> {
    let bytes = STANDARD.decode(value.trim()).ok()?;
    if bytes.len() != KEY_HEADER_LEN {
        return None;
    }
    // The commitment stays zero: only the key fields are used from here.
    let mut header = [0u8; HEADER_LEN];
    header[..KEY_HEADER_LEN].copy_from_slice(&bytes);
    Some(header)
}

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
    header: &[u8; HEADER_LEN],
    metadata: &BTreeMap<String, String>,
) -> CryptoResult<Rewrap> {
    let current = keys.current_generation();
    let parsed = ParsedHeader::parse(keys, header)?;
    let wrap = metadata_wrap_value(metadata);
    let candidates = parsed.dek_candidates(keys, wrap)?;
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
/// `header` is the object's first [`super::HEADER_LEN`] bytes, `object_size` its stored size
/// and `metadata` its user metadata. The object is fully checked first (header, unwrap and
/// commitment, as [`ObjectOpener::open_with_metadata`] does), so a corrupt or foreign object
/// is an error and never gets a wrap.
pub fn rewrap_for_metadata(
    keys: &VaultKeys,
    header: &[u8],
    object_size: u64,
    metadata: Option<&BTreeMap<String, String>>,
) -> CryptoResult<Rewrap> {
    let current = keys.current_generation();
    let opener = ObjectOpener::open_with_metadata(keys, header, object_size, metadata)?;
    if opener.generation() == current || opener.unwrapped_with() == current {
        return Ok(Rewrap::AlreadyCurrent);
    }
    // The opener checked the commitment for the DEK it kept; find that DEK again (the opener
    // holds only keys derived from it) among the same candidates, in the same order.
    let parsed = ParsedHeader::parse(keys, header)?;
    let wrap = metadata.and_then(metadata_wrap_value);
    let (dek, from) = parsed
        .dek_candidates(keys, wrap)?
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
    use crate::crypto::{Secret, VaultConfig};
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
