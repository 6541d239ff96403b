//! Encrypted object format v1 (docs/FORMAT.md is the normative description).
//!
//! An object is a fixed [`HEADER_LEN`]-byte header followed by AES-256-GCM blocks of
//! `block_size` plaintext bytes (the last one possibly shorter, never empty unless the whole
//! object is empty), each followed by its 16-byte tag. Two decisions a reader must know:
//!
//! - Every object version gets a fresh random DEK and salt, and objects are only ever written
//!   whole, so the block nonce can simply be the block index plus a "last block" flag: a
//!   (key, nonce) pair never seals two plaintexts, and reordering, truncation at a block
//!   boundary and extension all fail authentication.
//! - The header is self-contained given the vault keys: it carries the key generation, the
//!   salt, the DEK wrapped under a key derived from that generation's key, and a commitment to
//!   the DEK and the plaintext length. The plaintext length is derived from the object size
//!   alone ([`plaintext_len`]), so a listing shows sizes without reading any object.
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

use std::collections::BTreeMap;
use std::ops::Range;

use aws_lc_rs::hkdf::Prk;
use zeroize::Zeroizing;

use super::aead::{Aead, DefaultAead, NONCE_LEN, TAG_LEN};
use super::kdf::{self, WRAPPED_KEY_LEN};
use super::{CryptoError, CryptoResult, VaultKeys};

/// Length of the fixed object header in bytes.
pub const HEADER_LEN: usize = 116;

/// `S3CF`.
pub const MAGIC: [u8; 4] = *b"S3CF";
/// The object format version this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// Suite 1: AES-256-GCM blocks, HKDF-SHA256 key schedule, AES-256 key wrap.
pub const SUITE_AES256GCM_HKDF_SHA256: u8 = 1;
/// Bytes of the authentication tag after every block.
pub const BLOCK_OVERHEAD: u64 = TAG_LEN as u64;
/// Smallest and largest block sizes (powers of two in between).
pub const MIN_BLOCK_SIZE: u32 = 4096;
pub const MAX_BLOCK_SIZE: u32 = 1 << 20;

/// Length of the fixed header prefix (magic .. key generation) that goes into `ctx`.
pub const PREFIX_LEN: usize = 12;
/// `ctx` = header prefix || vault id.
pub const CTX_LEN: usize = PREFIX_LEN + 16;

pub(super) const SALT_OFFSET: usize = 12;
pub(super) const WRAPPED_DEK_OFFSET: usize = 44;
pub(super) const COMMIT_OFFSET: usize = 84;

const INFO_WRAP: &[u8] = b"s3cryptfs v1 wrap";
const INFO_DATA: &[u8] = b"s3cryptfs v1 data";
const INFO_COMMIT: &[u8] = b"s3cryptfs v1 commit";

/// Whether `block_size` is one this format allows: a power of two from 4 KiB to 1 MiB.
pub fn is_valid_block_size(block_size: u32) -> bool {
    block_size.is_power_of_two() && (MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&block_size)
}

/// Guards the size math against a zero block size (which no valid vault has) without
/// panicking.
fn bs(block_size: u32) -> u64 {
    u64::from(block_size.max(1))
}

/// Number of blocks of an object with `plaintext_len` bytes (at least 1).
pub fn block_count(plaintext_len: u64, block_size: u32) -> u64 {
    plaintext_len.div_ceil(bs(block_size)).max(1)
}

/// Stored size of an object holding `plaintext_len` bytes: `H + P + 16 * max(1, ceil(P / B))`.
/// Saturates at `u64::MAX` (far beyond any object store's limit).
pub fn ciphertext_len(plaintext_len: u64, block_size: u32) -> u64 {
    let n = block_count(plaintext_len, block_size);
    (HEADER_LEN as u64)
        .saturating_add(plaintext_len)
        .saturating_add(n.saturating_mul(BLOCK_OVERHEAD))
}

/// Plaintext size of an object of `ciphertext_len` stored bytes, or `None` when no valid block
/// count fits that size.
pub fn plaintext_len(ciphertext_len: u64, block_size: u32) -> Option<u64> {
    let body = ciphertext_len.checked_sub(HEADER_LEN as u64)?;
    if body < BLOCK_OVERHEAD {
        return None;
    }
    let stride = bs(block_size).checked_add(BLOCK_OVERHEAD)?;
    let n = body.div_ceil(stride);
    let p = body.checked_sub(n.checked_mul(BLOCK_OVERHEAD)?)?;
    (block_count(p, block_size) == n && self::ciphertext_len(p, block_size) == ciphertext_len)
        .then_some(p)
}

/// Plaintext bytes in block `index` of an object of `plaintext_len` bytes (0 past the end).
pub fn block_plaintext_len(index: u64, plaintext_len: u64, block_size: u32) -> u64 {
    let start = index.saturating_mul(bs(block_size));
    plaintext_len.saturating_sub(start).min(bs(block_size))
}

/// Offset in the object of the first ciphertext byte of block `index`.
pub fn block_offset(index: u64, block_size: u32) -> u64 {
    (HEADER_LEN as u64).saturating_add(index.saturating_mul(bs(block_size) + BLOCK_OVERHEAD))
}

/// The blocks covering a plaintext range and where they are stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockSpan {
    pub first_block: u64,
    /// Inclusive.
    pub last_block: u64,
    /// Ciphertext byte range (in the object) holding exactly those blocks.
    pub ciphertext: Range<u64>,
}

/// Blocks covering the non-empty plaintext range `plain` (clipped to `plaintext_len`, which
/// must be > plain.start).
///
/// Never panics: a range outside the object is clipped to the last block, an empty range
/// covers the block holding `plain.start`, and an empty object yields its one empty block.
pub fn ciphertext_range_for(plain: Range<u64>, plaintext_len: u64, block_size: u32) -> BlockSpan {
    let b = bs(block_size);
    if plaintext_len == 0 {
        return BlockSpan {
            first_block: 0,
            last_block: 0,
            ciphertext: block_offset(0, block_size)..ciphertext_len(0, block_size),
        };
    }
    let start = plain.start.min(plaintext_len - 1);
    let end = plain.end.min(plaintext_len).max(start + 1);
    let first_block = start / b;
    let last_block = (end - 1) / b;
    let ct_start = block_offset(first_block, block_size);
    let ct_end = block_offset(last_block, block_size)
        + block_plaintext_len(last_block, plaintext_len, block_size)
        + BLOCK_OVERHEAD;
    BlockSpan {
        first_block,
        last_block,
        ciphertext: ct_start..ct_end,
    }
}

/// Nonce of block `index`: `BE64(index) || 00 00 00 || last`.
pub fn block_nonce(index: u64, last: bool) -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    nonce[..8].copy_from_slice(&index.to_be_bytes());
    nonce[11] = u8::from(last);
    nonce
}

/// The 12-byte header prefix: magic, version, suite, log2(block size), flags, generation.
fn header_prefix(block_size: u32, generation: u32) -> [u8; PREFIX_LEN] {
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

pub(super) fn context(prefix: &[u8; PREFIX_LEN], vault_id: &[u8; 16]) -> [u8; CTX_LEN] {
    let mut ctx = [0u8; CTX_LEN];
    ctx[..PREFIX_LEN].copy_from_slice(prefix);
    ctx[PREFIX_LEN..].copy_from_slice(vault_id);
    ctx
}

/// Key that wraps the DEK: `HKDF(ikm = generation key, salt, "s3cryptfs v1 wrap" || ctx)`.
pub(super) fn wrap_key(
    generation_key: &[u8; 32],
    salt: &[u8; 32],
    ctx: &[u8; CTX_LEN],
) -> kdf::SecretKey {
    kdf::hkdf_sha256(generation_key, salt, &[INFO_WRAP, ctx])
}

/// The fields of a v1 header that passed the format checks (magic, version, suite, flags and
/// the vault's block size).
pub(super) struct ParsedHeader {
    pub(super) generation: u32,
    pub(super) salt: [u8; 32],
    pub(super) wrapped_dek: [u8; WRAPPED_KEY_LEN],
    pub(super) commit: [u8; 32],
    /// Header prefix || vault id.
    pub(super) ctx: [u8; CTX_LEN],
}

impl ParsedHeader {
    pub(super) fn parse(keys: &VaultKeys, header: &[u8]) -> CryptoResult<Self> {
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

    /// The DEKs this object's wraps yield under `keys`, newest wrap first, each with the
    /// generation that unwrapped it. `WrongKey` when none unwraps.
    pub(super) fn dek_candidates(
        &self,
        keys: &VaultKeys,
        metadata_wrap: Option<&str>,
    ) -> CryptoResult<Vec<(kdf::SecretKey, u32)>> {
        let mut out = Vec::with_capacity(2);
        if let Some(found) =
            metadata_wrap.and_then(|v| super::rewrap::unwrap_metadata(keys, self, v))
        {
            out.push(found);
        }
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

/// Keys of one object version, derived from its DEK.
struct ObjectKeys {
    ctx: [u8; CTX_LEN],
    prk: Prk,
    aead: DefaultAead,
}

impl ObjectKeys {
    fn derive(dek: &[u8; 32], salt: &[u8; 32], ctx: [u8; CTX_LEN]) -> CryptoResult<Self> {
        let prk = kdf::hkdf_extract(dek, salt);
        let k_data = kdf::hkdf_expand(&prk, &[INFO_DATA, &ctx]);
        let aead = DefaultAead::new(&k_data)?;
        Ok(ObjectKeys { ctx, prk, aead })
    }

    fn commitment(&self, plaintext_len: u64) -> kdf::SecretKey {
        kdf::hkdf_expand(
            &self.prk,
            &[INFO_COMMIT, &self.ctx, &plaintext_len.to_be_bytes()],
        )
    }
}

/// Seals one object version: fresh DEK and salt, current key generation.
///
/// Use one sealer per object version and seal each block index with exactly one plaintext:
/// the nonce is the block index, so sealing *different* plaintext under the same index with
/// the same sealer would reuse a nonce. Re-sealing the same plaintext (a retried upload part)
/// is safe and yields identical bytes.
pub struct ObjectSealer {
    block_size: u32,
    generation: u32,
    prefix: [u8; PREFIX_LEN],
    salt: [u8; 32],
    wrapped_dek: [u8; WRAPPED_KEY_LEN],
    keys: ObjectKeys,
}

impl ObjectSealer {
    pub fn new(keys: &VaultKeys) -> CryptoResult<Self> {
        let dek = kdf::random_key()?;
        let salt = kdf::random_bytes::<32>()?;
        Self::build(keys, &dek, salt)
    }

    /// Test-vector seam: a sealer with a caller-chosen DEK and salt. Never use outside tests;
    /// a repeated DEK repeats nonces.
    #[doc(hidden)]
    pub fn with_fixed_material(
        keys: &VaultKeys,
        dek: [u8; 32],
        salt: [u8; 32],
    ) -> CryptoResult<Self> {
        let dek = Zeroizing::new(dek);
        Self::build(keys, &dek, salt)
    }

    fn build(keys: &VaultKeys, dek: &[u8; 32], salt: [u8; 32]) -> CryptoResult<Self> {
        let block_size = keys.block_size();
        if !is_valid_block_size(block_size) {
            return Err(CryptoError::Internal(format!(
                "vault block size {block_size} is not a power of two in 4096..=1048576"
            )));
        }
        let generation = keys.current_generation();
        let generation_key = keys.generation_key(generation).ok_or_else(|| {
            CryptoError::Internal(format!(
                "the unlocked vault lacks its current key generation {generation}"
            ))
        })?;
        let prefix = header_prefix(block_size, generation);
        let ctx = context(&prefix, &keys.vault_id());
        let wrapped_dek = kdf::wrap_key(&wrap_key(generation_key, &salt, &ctx), dek)?;
        Ok(ObjectSealer {
            block_size,
            generation,
            prefix,
            salt,
            wrapped_dek,
            keys: ObjectKeys::derive(dek, &salt, ctx)?,
        })
    }

    pub fn block_size(&self) -> u32 {
        self.block_size
    }

    /// The key generation this object is sealed under.
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// Ciphertext of block `index` (plaintext.len() == block size except for the last block).
    ///
    /// The last block may be empty only when it is block 0 (the empty object).
    pub fn seal_block(&self, index: u64, plaintext: &[u8], last: bool) -> CryptoResult<Vec<u8>> {
        let mut buf = Vec::with_capacity(plaintext.len() + TAG_LEN);
        buf.extend_from_slice(plaintext);
        let tag = self.seal_block_in_place(index, &mut buf, last)?;
        buf.extend_from_slice(&tag);
        Ok(buf)
    }

    /// [`ObjectSealer::seal_block`] without a copy: encrypts `in_out` (the plaintext of block
    /// `index`) in place and returns the tag that follows it in the object.
    pub fn seal_block_in_place(
        &self,
        index: u64,
        in_out: &mut [u8],
        last: bool,
    ) -> CryptoResult<[u8; TAG_LEN]> {
        let b = self.block_size as usize;
        let len_ok = if last {
            in_out.len() <= b && (index == 0 || !in_out.is_empty())
        } else {
            in_out.len() == b
        };
        if !len_ok {
            return Err(CryptoError::Internal(format!(
                "seal_block: block {index} (last: {last}) has {} bytes; blocks hold {b} bytes, \
                 only the last may be shorter and only block 0 may be empty",
                in_out.len()
            )));
        }
        self.keys
            .aead
            .seal_in_place(&block_nonce(index, last), &[], in_out)
    }

    /// The header, which commits to the final plaintext length; written at offset 0.
    pub fn header(&self, plaintext_len: u64) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[..PREFIX_LEN].copy_from_slice(&self.prefix);
        h[SALT_OFFSET..WRAPPED_DEK_OFFSET].copy_from_slice(&self.salt);
        h[WRAPPED_DEK_OFFSET..COMMIT_OFFSET].copy_from_slice(&self.wrapped_dek);
        h[COMMIT_OFFSET..].copy_from_slice(&self.keys.commitment(plaintext_len)[..]);
        h
    }
}

impl std::fmt::Debug for ObjectSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectSealer")
            .field("block_size", &self.block_size)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// Opens one object version after checking its header against the vault keys and its size.
pub struct ObjectOpener {
    block_size: u32,
    generation: u32,
    unwrapped_with: u32,
    plaintext_len: u64,
    block_count: u64,
    keys: ObjectKeys,
}

impl ObjectOpener {
    /// Checks the header (the first [`HEADER_LEN`] bytes of the object; a longer slice is
    /// accepted and the rest ignored) against the vault keys and the stored `object_size`.
    ///
    /// Errors: `Unsupported` for a foreign format, version, suite or flags; `WrongKey` when the
    /// DEK does not unwrap (another vault, a key generation this vault lacks); `Corrupt` when
    /// the size is impossible or the commitment does not match it (truncated, extended or
    /// replaced object) or the block size differs from the vault's.
    pub fn open(keys: &VaultKeys, header: &[u8], object_size: u64) -> CryptoResult<Self> {
        Self::open_with_metadata(keys, header, object_size, None)
    }

    /// [`ObjectOpener::open`] for an object whose user metadata may carry a rewrapped DEK
    /// (`s3cryptfs-wrap`, written by `key rotate --rewrap`; see [`super::rewrap`]).
    ///
    /// The metadata wrap is tried first (it names the newer generation), then the header's
    /// own wrap; the first DEK that matches the header's commitment wins, so a stale or
    /// foreign metadata wrap is ignored rather than trusted. `metadata` is the object's user
    /// metadata as HEAD or GET return it (keys without `x-amz-meta-`); `None` or a map without
    /// the wrap behaves exactly like [`ObjectOpener::open`].
    pub fn open_with_metadata(
        keys: &VaultKeys,
        header: &[u8],
        object_size: u64,
        metadata: Option<&BTreeMap<String, String>>,
    ) -> CryptoResult<Self> {
        let parsed = ParsedHeader::parse(keys, header)?;
        let block_size = keys.block_size();
        let wrap = metadata.and_then(super::rewrap::metadata_wrap_value);
        let candidates = parsed.dek_candidates(keys, wrap)?;
        let Some(plaintext_len) = plaintext_len(object_size, block_size) else {
            return Err(CryptoError::Corrupt(format!(
                "object size {object_size} is not a valid encrypted size for block size \
                 {block_size}: truncated or extended"
            )));
        };
        for (dek, unwrapped_with) in candidates {
            let object_keys = ObjectKeys::derive(&dek, &parsed.salt, parsed.ctx)?;
            let expected = object_keys.commitment(plaintext_len);
            if kdf::ct_eq(&expected[..], &parsed.commit) {
                return Ok(ObjectOpener {
                    block_size,
                    generation: parsed.generation,
                    unwrapped_with,
                    plaintext_len,
                    block_count: block_count(plaintext_len, block_size),
                    keys: object_keys,
                });
            }
        }
        Err(CryptoError::Corrupt(format!(
            "header commitment does not match an object of {plaintext_len} plaintext bytes \
             ({object_size} stored): truncated, extended or replaced"
        )))
    }

    /// The key generation whose key unwrapped the DEK: the header's generation, or the
    /// newer one of a metadata wrap.
    pub fn unwrapped_with(&self) -> u32 {
        self.unwrapped_with
    }

    pub fn plaintext_len(&self) -> u64 {
        self.plaintext_len
    }

    pub fn block_size(&self) -> u32 {
        self.block_size
    }

    /// Number of blocks (at least 1).
    pub fn block_count(&self) -> u64 {
        self.block_count
    }

    /// The key generation the object was sealed under.
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// Verifies and decrypts block `index` (`ciphertext` = the block's bytes including its
    /// tag, exactly as stored).
    pub fn open_block(&self, index: u64, ciphertext: &[u8]) -> CryptoResult<Vec<u8>> {
        let mut out = vec![0u8; ciphertext.len().saturating_sub(BLOCK_OVERHEAD as usize)];
        self.open_block_into(index, ciphertext, &mut out)?;
        Ok(out)
    }

    /// [`ObjectOpener::open_block`] into `out` (exactly the block's plaintext length), so a
    /// run of blocks decrypts straight from the fetched body into one buffer. On failure
    /// `out` holds unspecified bytes and must not be used.
    pub fn open_block_into(
        &self,
        index: u64,
        ciphertext: &[u8],
        out: &mut [u8],
    ) -> CryptoResult<()> {
        if index >= self.block_count {
            return Err(CryptoError::Corrupt(format!(
                "block {index} requested but the object has {} block(s)",
                self.block_count
            )));
        }
        let expected =
            block_plaintext_len(index, self.plaintext_len, self.block_size) + BLOCK_OVERHEAD;
        if ciphertext.len() as u64 != expected || out.len() as u64 + BLOCK_OVERHEAD != expected {
            return Err(CryptoError::Corrupt(format!(
                "block {index}: {} bytes of ciphertext where {expected} were expected",
                ciphertext.len()
            )));
        }
        let last = index + 1 == self.block_count;
        self.keys
            .aead
            .open_to(&block_nonce(index, last), &[], ciphertext, out)
            .map_err(|_| Self::auth_failed(index))
    }

    /// Verifies and decrypts the consecutive blocks `first..` stored back to back in `buf`
    /// (each with its tag, exactly as stored), moving the plaintext to the front of `buf`;
    /// returns its length. In place, so a fetched body becomes the plaintext without a
    /// second buffer. On failure `buf` holds unspecified bytes and must not be used.
    pub fn open_run_in_place(&self, first: u64, buf: &mut [u8]) -> CryptoResult<usize> {
        if buf.is_empty() {
            return Err(CryptoError::Corrupt(format!(
                "block {first}: no ciphertext where at least {BLOCK_OVERHEAD} bytes were expected"
            )));
        }
        let (mut read, mut written, mut index) = (0usize, 0usize, first);
        while read < buf.len() {
            if index >= self.block_count {
                return Err(CryptoError::Corrupt(format!(
                    "{} bytes past block {}, the object's last",
                    buf.len() - read,
                    self.block_count - 1
                )));
            }
            let plain = block_plaintext_len(index, self.plaintext_len, self.block_size) as usize;
            let stored = plain + BLOCK_OVERHEAD as usize;
            let Some(block) = buf.get_mut(read..read + stored) else {
                return Err(CryptoError::Corrupt(format!(
                    "block {index}: {} bytes of ciphertext where {stored} were expected",
                    buf.len() - read
                )));
            };
            let last = index + 1 == self.block_count;
            self.keys
                .aead
                .open_in_place(&block_nonce(index, last), &[], block)
                .map_err(|_| Self::auth_failed(index))?;
            buf.copy_within(read..read + plain, written);
            read += stored;
            written += plain;
            index += 1;
        }
        Ok(written)
    }

    fn auth_failed(index: u64) -> CryptoError {
        CryptoError::Corrupt(format!(
            "block {index} failed authentication (modified, reordered or from another object)"
        ))
    }
}

impl std::fmt::Debug for ObjectOpener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectOpener")
            .field("block_size", &self.block_size)
            .field("generation", &self.generation)
            .field("plaintext_len", &self.plaintext_len)
            .finish_non_exhaustive()
    }
}

/// Seal a whole small object in memory (symlink targets, tests).
pub fn seal_all(keys: &VaultKeys, plaintext: &[u8]) -> CryptoResult<Vec<u8>> {
    seal_all_with(&ObjectSealer::new(keys)?, plaintext)
}

/// [`seal_all`] with a given sealer (test vectors use a fixed-material sealer).
#[doc(hidden)]
pub fn seal_all_with(sealer: &ObjectSealer, plaintext: &[u8]) -> CryptoResult<Vec<u8>> {
    let b = sealer.block_size() as usize;
    let p = plaintext.len() as u64;
    let mut out =
        Vec::with_capacity(usize::try_from(ciphertext_len(p, sealer.block_size())).unwrap_or(0));
    out.extend_from_slice(&sealer.header(p));
    let n = block_count(p, sealer.block_size());
    if plaintext.is_empty() {
        out.extend_from_slice(&sealer.seal_block(0, &[], true)?);
    }
    for (i, chunk) in plaintext.chunks(b).enumerate() {
        let i = i as u64;
        out.extend_from_slice(&sealer.seal_block(i, chunk, i + 1 == n)?);
    }
    Ok(out)
}

/// Open a whole object in memory.
pub fn open_all(keys: &VaultKeys, object: &[u8]) -> CryptoResult<Vec<u8>> {
    open_all_with_metadata(keys, object, None)
}

/// [`open_all`] for an object whose metadata may carry a rewrapped DEK (symlink targets read
/// with GET, whose answer carries the metadata).
pub fn open_all_with_metadata(
    keys: &VaultKeys,
    object: &[u8],
    metadata: Option<&BTreeMap<String, String>>,
) -> CryptoResult<Vec<u8>> {
    let opener = ObjectOpener::open_with_metadata(keys, object, object.len() as u64, metadata)?;
    let mut out = Vec::with_capacity(usize::try_from(opener.plaintext_len()).unwrap_or(0));
    for i in 0..opener.block_count() {
        let span = ciphertext_range_for_block(i, opener.plaintext_len(), opener.block_size());
        let ct = usize::try_from(span.start)
            .ok()
            .zip(usize::try_from(span.end).ok())
            .and_then(|(s, e)| object.get(s..e))
            .ok_or_else(|| {
                CryptoError::Corrupt(format!("block {i} lies beyond the end of the object"))
            })?;
        out.extend_from_slice(&opener.open_block(i, ct)?);
    }
    Ok(out)
}

/// Ciphertext byte range of block `index` alone.
pub fn ciphertext_range_for_block(index: u64, plaintext_len: u64, block_size: u32) -> Range<u64> {
    let start = block_offset(index, block_size);
    start..start + block_plaintext_len(index, plaintext_len, block_size) + BLOCK_OVERHEAD
}

#[cfg(test)]
#[path = "format_tests.rs"]
mod tests;
