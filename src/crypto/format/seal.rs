//! Sealing and opening the blocks of one object version: [`ObjectSealer`] and
//! [`ObjectOpener`].
//!
//! Every object version gets a fresh random DEK and salt, and objects are only ever written
//! whole, so the block nonce can simply be the block index plus a "last block" flag
//! ([`block_nonce`]): a (key, nonce) pair never seals two plaintexts, and reordering,
//! truncation at a block boundary and extension all fail authentication. The opener checks the
//! header against the vault keys and the stored size first (the commitment binds the DEK to
//! the plaintext length), so a block is only ever decrypted under a DEK that belongs to an
//! object of exactly this size.

use std::collections::BTreeMap;

use aws_lc_rs::hkdf::Prk;
use zeroize::Zeroizing;

use crate::crypto::aead::{Aead, DefaultAead, NONCE_LEN, TAG_LEN};
use crate::crypto::error::{CryptoError, CryptoResult};
use crate::crypto::kdf::{self, WRAPPED_KEY_LEN};
use crate::crypto::keys::VaultKeys;

use super::header::{
    self, CTX_LEN, MetadataWrap, PREFIX_LEN, ParsedHeader, context, header_prefix, wrap_key,
};
use super::layout::{
    BLOCK_OVERHEAD, HEADER_LEN, block_count, block_plaintext_len, ciphertext_len,
    ciphertext_range_for_block, is_valid_block_size, plaintext_len,
};
use super::metadata::{METADATA_KEY_HEADER, key_header_value, metadata_wraps};

const INFO_DATA: &[u8] = b"s3cryptfs v1 data";

/// Nonce of block `index`: `BE64(index) || 00 00 00 || last`.
pub fn block_nonce(index: u64, last: bool) -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    nonce[..8].copy_from_slice(&index.to_be_bytes());
    nonce[11] = u8::from(last);
    nonce
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
        header::commitment(&self.prk, &self.ctx, plaintext_len)
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
        self.seal_block_onto(index, plaintext, last, &mut buf)?;
        Ok(buf)
    }

    /// [`ObjectSealer::seal_block`] appended to `out` (a part body being assembled): the
    /// block's ciphertext and its tag, as stored. On failure `out` is left as it was.
    pub fn seal_block_onto(
        &self,
        index: u64,
        plaintext: &[u8],
        last: bool,
        out: &mut Vec<u8>,
    ) -> CryptoResult<()> {
        let at = out.len();
        out.extend_from_slice(plaintext);
        match self.seal_block_in_place(index, &mut out[at..], last) {
            Ok(tag) => {
                out.extend_from_slice(&tag);
                Ok(())
            }
            Err(e) => {
                out.truncate(at);
                Err(e)
            }
        }
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

    /// The header's salt (bytes 12..44), known before any byte is sealed: the content binding
    /// of the object's attribute record.
    pub fn salt(&self) -> &[u8; 32] {
        &self.salt
    }

    /// The header, which commits to the final plaintext length; written at offset 0.
    pub fn header(&self, plaintext_len: u64) -> [u8; HEADER_LEN] {
        let commit = self.keys.commitment(plaintext_len);
        header::serialize(&self.prefix, &self.salt, &self.wrapped_dek, &commit)
    }

    /// The crypto metadata an object sealed by this sealer is stored with: a copy of its
    /// header's key fields ([`METADATA_KEY_HEADER`]), so that `key rotate --rewrap` needs no
    /// GET. Known before the size is, so a multipart upload can be created with it.
    pub fn crypto_metadata(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        m.insert(
            METADATA_KEY_HEADER.to_string(),
            key_header_value(&self.header(0)),
        );
        m
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
    /// The header's salt (bytes 12..44): what an attribute record's content binding names.
    salt: [u8; 32],
    block_size: u32,
    generation: u32,
    unwrapped_with: u32,
    plaintext_len: u64,
    block_count: u64,
    keys: ObjectKeys,
}

impl ObjectOpener {
    /// Checks the header (the first [`HEADER_LEN`] bytes of the object; a longer slice is
    /// accepted and the rest ignored) against the vault keys and the stored `object_size`,
    /// unwrapping the DEK from the header.
    ///
    /// Errors: `Unsupported` for a foreign format, version, suite or flags; `WrongKey` when the
    /// DEK does not unwrap (another vault, a key generation this vault lacks); `Corrupt` when
    /// the size is impossible or the commitment does not match it (truncated, extended or
    /// replaced object) or the block size differs from the vault's.
    pub fn open(keys: &VaultKeys, header: &[u8], object_size: u64) -> CryptoResult<Self> {
        Self::open_with_wraps(keys, header, object_size, &[])
    }

    /// [`ObjectOpener::open`] with candidate wraps of the DEK kept outside the header (the
    /// object's metadata wraps, written by `key rotate --rewrap`).
    ///
    /// The candidates are tried first (they name newer generations), then the header's own
    /// wrap; the first DEK that matches the header's commitment wins, so a stale or foreign
    /// candidate is ignored rather than trusted.
    pub fn open_with_wraps(
        keys: &VaultKeys,
        header: &[u8],
        object_size: u64,
        wraps: &[MetadataWrap],
    ) -> CryptoResult<Self> {
        let parsed = ParsedHeader::parse(keys, header)?;
        let block_size = keys.block_size();
        let candidates = parsed.dek_candidates(keys, wraps)?;
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
                    salt: parsed.salt,
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

    /// [`ObjectOpener::open_with_wraps`] with the well-formed wraps found in `metadata`, the
    /// object's user metadata as HEAD or GET return it (keys without `x-amz-meta-`); `None` or
    /// a map without a wrap behaves exactly like [`ObjectOpener::open`].
    pub fn open_with_metadata(
        keys: &VaultKeys,
        header: &[u8],
        object_size: u64,
        metadata: Option<&BTreeMap<String, String>>,
    ) -> CryptoResult<Self> {
        Self::open_with_wraps(keys, header, object_size, &metadata_wraps(metadata))
    }

    /// The key generation whose key unwrapped the DEK: the header's generation, or the
    /// newer one of a metadata wrap.
    pub fn unwrapped_with(&self) -> u32 {
        self.unwrapped_with
    }

    pub fn plaintext_len(&self) -> u64 {
        self.plaintext_len
    }

    /// The header's salt (bytes 12..44), which an attribute record binds.
    pub fn salt(&self) -> &[u8; 32] {
        &self.salt
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
        sealer.seal_block_onto(0, &[], true, &mut out)?;
    }
    for (i, chunk) in plaintext.chunks(b).enumerate() {
        let i = i as u64;
        sealer.seal_block_onto(i, chunk, i + 1 == n, &mut out)?;
    }
    Ok(out)
}

/// Open a whole object in memory.
pub fn open_all(keys: &VaultKeys, object: &[u8]) -> CryptoResult<Vec<u8>> {
    open_all_with_wraps(keys, object, &[])
}

/// [`open_all`] for an object whose metadata may carry a rewrapped DEK (symlink targets read
/// with GET, whose answer carries the metadata).
pub fn open_all_with_metadata(
    keys: &VaultKeys,
    object: &[u8],
    metadata: Option<&BTreeMap<String, String>>,
) -> CryptoResult<Vec<u8>> {
    open_all_with_wraps(keys, object, &metadata_wraps(metadata))
}

/// [`open_all`] with candidate wraps (see [`ObjectOpener::open_with_wraps`]).
pub fn open_all_with_wraps(
    keys: &VaultKeys,
    object: &[u8],
    wraps: &[MetadataWrap],
) -> CryptoResult<Vec<u8>> {
    let opener = ObjectOpener::open_with_wraps(keys, object, object.len() as u64, wraps)?;
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
