//! The object header: its bytes, the wraps of the object's data key (DEK), and the commitment.
//!
//! Header layout (all integers big-endian):
//!
//! | offset | len | field                                  |
//! |-------:|----:|----------------------------------------|
//! |      0 |   4 | magic `S3CF`                           |
//! |      4 |   1 | format version (1)                     |
//! |      5 |   1 | suite (1 = AES-256-GCM, HKDF-SHA256, AES-KW) |
//! |      6 |   1 | log2(block size)                       |
//! |      7 |   1 | flags (0)                              |
//! |      8 |   4 | key generation                         |
//! |     12 |  32 | salt                                   |
//! |     44 |  40 | AES-KW(wrap key, DEK)                  |
//! |     84 |  32 | key commitment                         |
//!
//! Two decisions a reader must know:
//!
//! - The header is self-contained given the vault keys: it names the key generation, carries
//!   the salt and the DEK wrapped under a key derived from that generation's key and the
//!   object's context (`ctx` = header bytes 0..12 || vault id), and commits to the DEK and the
//!   plaintext length.
//! - A DEK may also be wrapped outside the header, in the object's metadata
//!   ([`MetadataWrap`], `key rotate --rewrap`). Such wraps are *candidates* handed in by the
//!   caller: [`ParsedHeader::dek_candidates`] tries them before the header's own wrap, and the
//!   opener keeps the first DEK that matches the commitment, so a stale or foreign wrap can
//!   make an object no more readable than its header alone, never read as something else.

use aws_lc_rs::hkdf::Prk;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::crypto::error::{CryptoError, CryptoResult};
use crate::crypto::kdf::{self, WRAPPED_KEY_LEN};
use crate::crypto::keys::VaultKeys;

use super::layout::HEADER_LEN;

/// `S3CF`.
pub const MAGIC: [u8; 4] = *b"S3CF";
/// The object format version this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// Suite 1: AES-256-GCM blocks, HKDF-SHA256 key schedule, AES-256 key wrap.
pub const SUITE_AES256GCM_HKDF_SHA256: u8 = 1;

/// Length of the fixed header prefix (magic .. key generation) that goes into `ctx`.
pub const PREFIX_LEN: usize = 12;
/// `ctx` = header prefix || vault id.
pub const CTX_LEN: usize = PREFIX_LEN + 16;

pub(in crate::crypto) const SALT_OFFSET: usize = 12;
pub(in crate::crypto) const WRAPPED_DEK_OFFSET: usize = 44;
pub(in crate::crypto) const COMMIT_OFFSET: usize = 84;

const INFO_WRAP: &[u8] = b"s3cryptfs v1 wrap";
const INFO_METADATA_WRAP: &[u8] = b"s3cryptfs v1 metadata wrap";
const INFO_COMMIT: &[u8] = b"s3cryptfs v1 commit";

/// BE32 generation + AES-KW output.
const WRAP_VALUE_LEN: usize = 4 + WRAPPED_KEY_LEN;

/// The 12-byte header prefix: magic, version, suite, log2(block size), flags, generation.
pub(in crate::crypto) fn header_prefix(block_size: u32, generation: u32) -> [u8; PREFIX_LEN] {
    let mut p = [0u8; PREFIX_LEN];
    p[..4].copy_from_slice(&MAGIC);
    p[4] = FORMAT_VERSION;
    p[5] = SUITE_AES256GCM_HKDF_SHA256;
    // trailing_zeros of a u32 is at most 32, so it fits a byte.
    p[6] = block_size.trailing_zeros() as u8;
    p[7] = 0;
    p[8..12].copy_from_slice(&generation.to_be_bytes());
    p
}

pub(in crate::crypto) fn context(prefix: &[u8; PREFIX_LEN], vault_id: &[u8; 16]) -> [u8; CTX_LEN] {
    let mut ctx = [0u8; CTX_LEN];
    ctx[..PREFIX_LEN].copy_from_slice(prefix);
    ctx[PREFIX_LEN..].copy_from_slice(vault_id);
    ctx
}

/// The header bytes: prefix, salt, wrapped DEK and commitment in their places.
pub(in crate::crypto) fn serialize(
    prefix: &[u8; PREFIX_LEN],
    salt: &[u8; 32],
    wrapped_dek: &[u8; WRAPPED_KEY_LEN],
    commit: &[u8; 32],
) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..PREFIX_LEN].copy_from_slice(prefix);
    h[SALT_OFFSET..WRAPPED_DEK_OFFSET].copy_from_slice(salt);
    h[WRAPPED_DEK_OFFSET..COMMIT_OFFSET].copy_from_slice(wrapped_dek);
    h[COMMIT_OFFSET..].copy_from_slice(commit);
    h
}

/// The commitment to the DEK (through `prk`, extracted from it) and the plaintext length:
/// `HKDF-Expand(prk, "s3cryptfs v1 commit" || ctx || BE64(plaintext_len))`.
pub(in crate::crypto) fn commitment(
    prk: &Prk,
    ctx: &[u8; CTX_LEN],
    plaintext_len: u64,
) -> kdf::SecretKey {
    kdf::hkdf_expand(prk, &[INFO_COMMIT, ctx, &plaintext_len.to_be_bytes()])
}

/// Key that wraps the DEK in the header: `HKDF(ikm = generation key, salt, "s3cryptfs v1
/// wrap" || ctx)`.
pub(in crate::crypto) fn wrap_key(
    generation_key: &[u8; 32],
    salt: &[u8; 32],
    ctx: &[u8; CTX_LEN],
) -> kdf::SecretKey {
    kdf::hkdf_sha256(generation_key, salt, &[INFO_WRAP, ctx])
}

/// Key that wraps the DEK in the metadata under generation `generation`:
/// `HKDF(ikm = G_g, salt, "s3cryptfs v1 metadata wrap" || ctx || BE32(g))`. `g` is in the info
/// so the number in the metadata cannot be swapped for another.
pub(in crate::crypto) fn metadata_wrap_key(
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

/// A DEK wrapped outside the header under a (newer) key generation: the decoded value of an
/// object's `s3cryptfs-wrap` metadata, `base64( BE32(g) || AES-KW(K_meta, DEK) )`.
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
                "metadata wrap {value:?} is not base64 of a 4-byte generation and a 40-byte \
                 key wrap"
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

/// The fields of a v1 header that passed the format checks (magic, version, suite, flags and
/// the vault's block size).
pub(in crate::crypto) struct ParsedHeader {
    pub(in crate::crypto) generation: u32,
    pub(in crate::crypto) salt: [u8; 32],
    pub(in crate::crypto) wrapped_dek: [u8; WRAPPED_KEY_LEN],
    pub(in crate::crypto) commit: [u8; 32],
    /// Header prefix || vault id.
    pub(in crate::crypto) ctx: [u8; CTX_LEN],
}

impl ParsedHeader {
    pub(in crate::crypto) fn parse(keys: &VaultKeys, header: &[u8]) -> CryptoResult<Self> {
        if header.len() < 4 || header[..4] != MAGIC {
            return Err(CryptoError::Unsupported(
                "not an s3cryptfs object (no S3CF magic at offset 0)".into(),
            ));
        }
        let Some(header) = header.get(..HEADER_LEN) else {
            return Err(CryptoError::Corrupt(format!(
                "header is {} bytes, shorter than the {HEADER_LEN}-byte v1 header",
                header.len()
            )));
        };
        if header[4] != FORMAT_VERSION {
            return Err(CryptoError::Unsupported(format!(
                "object format version {} (this build reads version {FORMAT_VERSION})",
                header[4]
            )));
        }
        if header[5] != SUITE_AES256GCM_HKDF_SHA256 {
            return Err(CryptoError::Unsupported(format!(
                "cipher suite {} (this build reads suite {SUITE_AES256GCM_HKDF_SHA256})",
                header[5]
            )));
        }
        if header[7] != 0 {
            return Err(CryptoError::Unsupported(format!(
                "header flags {:#04x} (this build knows none)",
                header[7]
            )));
        }
        let block_size = keys.block_size();
        let log2 = header[6];
        if u32::from(log2) != block_size.trailing_zeros() {
            let theirs = 1u64.checked_shl(u32::from(log2)).unwrap_or(0);
            return Err(CryptoError::Corrupt(format!(
                "object block size {theirs} (2^{log2}) differs from the vault's {block_size}; \
                 the object belongs to another vault or its header was modified"
            )));
        }
        let mut prefix = [0u8; PREFIX_LEN];
        prefix.copy_from_slice(&header[..PREFIX_LEN]);
        let mut salt = [0u8; 32];
        salt.copy_from_slice(&header[SALT_OFFSET..WRAPPED_DEK_OFFSET]);
        let mut wrapped_dek = [0u8; WRAPPED_KEY_LEN];
        wrapped_dek.copy_from_slice(&header[WRAPPED_DEK_OFFSET..COMMIT_OFFSET]);
        let mut commit = [0u8; 32];
        commit.copy_from_slice(&header[COMMIT_OFFSET..]);
        Ok(ParsedHeader {
            generation: u32::from_be_bytes([header[8], header[9], header[10], header[11]]),
            salt,
            wrapped_dek,
            commit,
            ctx: context(&prefix, &keys.vault_id()),
        })
    }

    /// The DEK a metadata wrap yields for this header, with its generation; `None` when it
    /// names a generation `keys` lacks or does not unwrap (bound to another object).
    fn unwrap_metadata(
        &self,
        keys: &VaultKeys,
        wrap: &MetadataWrap,
    ) -> Option<(kdf::SecretKey, u32)> {
        let generation_key = keys.generation_key(wrap.generation)?;
        let kek = metadata_wrap_key(generation_key, &self.salt, &self.ctx, wrap.generation);
        kdf::unwrap_key(&kek, &wrap.wrapped_dek).map(|dek| (dek, wrap.generation))
    }

    /// The DEKs this object's wraps yield under `keys`: the candidate `wraps` (from the
    /// object's metadata) first, in order, then the header's own wrap; each with the
    /// generation that unwrapped it. `WrongKey` when none unwraps.
    pub(in crate::crypto) fn dek_candidates(
        &self,
        keys: &VaultKeys,
        wraps: &[MetadataWrap],
    ) -> CryptoResult<Vec<(kdf::SecretKey, u32)>> {
        let mut out: Vec<_> = wraps
            .iter()
            .filter_map(|w| self.unwrap_metadata(keys, w))
            .collect();
        let generation = self.generation;
        match keys.generation_key(generation) {
            Some(generation_key) => {
                let kek = wrap_key(generation_key, &self.salt, &self.ctx);
                if let Some(dek) = kdf::unwrap_key(&kek, &self.wrapped_dek) {
                    out.push((dek, generation));
                } else if out.is_empty() {
                    return Err(CryptoError::WrongKey(format!(
                        "object data key does not unwrap under key generation {generation}: \
                         the object was sealed with another key or belongs to another vault"
                    )));
                }
            }
            None if out.is_empty() => {
                return Err(CryptoError::WrongKey(format!(
                    "object was sealed with key generation {generation}, which this vault \
                     does not have (vault generations: {}), and carries no usable rewrapped \
                     key; it belongs to another vault, a newer config, or its generation was \
                     retired before it was rewrapped",
                    keys.generation_list()
                )));
            }
            None => {}
        }
        Ok(out)
    }
}

/// Why an object of `object_size` stored bytes, `start` being its first bytes, cannot even
/// hold a header: `Corrupt` (truncated) when it starts like one, `Unsupported` otherwise.
pub fn short_object_error(start: &[u8], object_size: u64) -> CryptoError {
    if object_size == 0 {
        CryptoError::Unsupported(
            "empty object: not an s3cryptfs object (no S3CF magic at offset 0), or truncated \
             to nothing"
                .into(),
        )
    } else if start.starts_with(&MAGIC) {
        CryptoError::Corrupt(format!(
            "{object_size} bytes, shorter than the {HEADER_LEN}-byte header: truncated"
        ))
    } else {
        CryptoError::Unsupported(format!(
            "{object_size} bytes, shorter than the {HEADER_LEN}-byte header: not an s3cryptfs \
             object (no S3CF magic at offset 0)"
        ))
    }
}
