//! Encrypted file and directory names (docs/FORMAT.md §9).
//!
//! Every path segment is encrypted on its own with AES-SIV (RFC 5297, AES-256-SIV: a 64-byte
//! key), deterministic so a lookup can compute the store key of a name without listing its
//! directory, and authenticated so a forged or garbled name never decrypts to something. The
//! parent directory's plaintext path (relative to the vault root, `""` for the root) is the
//! associated data: a name moved (or copied) into another directory does not decrypt there.
//!
//! ```text
//! K_names = HKDF-SHA256(ikm = VMK, salt = vault_id, "s3cryptfs v1 names"), 64 bytes
//! padded   = name || PKCS#7 padding to a multiple of 16 bytes (1..=16 bytes added)
//! segment  = base64url-nopad( AES-SIV(K_names, ad = [parent path], padded) )
//! ```
//!
//! The padding hides a name's exact length (to 16 bytes). A segment longer than
//! [`MAX_SEGMENT_LEN`] bytes is stored shortened, as gocryptfs does: the entry is
//! `H.long` with `H = base64url-nopad(SHA-256(segment))`, and an object `H.name` next to it
//! holds the full segment. Base64url never holds a `.`, so the three forms cannot collide.
//!
//! This layer knows no store: it maps one name to its stored form and back.

use aes_siv::KeyInit;
use aes_siv::siv::{Aes128Siv, Aes256Siv};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

use super::kdf;

const INFO_NAMES: &[u8] = b"s3cryptfs v1 names";
/// Longest stored path segment: NAME_MAX of the local file systems a directory store or a
/// plain copy of the bucket puts each segment on.
pub const MAX_SEGMENT_LEN: usize = 255;
/// Suffix of a shortened entry (`H.long`).
pub const LONG_SUFFIX: &str = ".long";
/// Suffix of the object holding a shortened entry's full segment (`H.name`).
pub const NAME_OBJECT_SUFFIX: &str = ".name";
/// Length of `H`: base64url of a SHA-256 digest.
const HASH_LEN: usize = 43;
/// Longest plaintext name (NAME_MAX).
const MAX_NAME_LEN: usize = 255;
/// Longest full segment a name can give: 256 padded bytes + the 16-byte SIV, in base64url.
pub const MAX_FULL_SEGMENT_LEN: usize = (256 + 16) * 4 / 3 + 1;

/// Why a stored name does not decrypt.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error("not base64url")]
    Encoding,
    #[error("{0} bytes is not the length of an encrypted name")]
    Length(usize),
    #[error("does not authenticate in this directory (edited, moved, or from another vault)")]
    Authentication,
    #[error("bad padding")]
    Padding,
    #[error("not UTF-8")]
    Utf8,
}

/// How a name is stored in its directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoredName {
    /// The encrypted segment itself.
    Short(String),
    /// `entry` (`H.long`) stands for `full`, which the object `H.name` holds.
    Long { entry: String, full: String },
}

impl StoredName {
    /// The segment of the store key.
    pub fn segment(&self) -> &str {
        match self {
            StoredName::Short(s) => s,
            StoredName::Long { entry, .. } => entry,
        }
    }
}

/// What a segment of a listed store key is.
#[derive(Debug, PartialEq, Eq)]
pub enum Segment<'a> {
    /// An encrypted name (to decrypt with its directory's path).
    Encrypted(&'a str),
    /// A shortened entry: its hash `H`; the full segment is in `H.name`.
    Long(&'a str),
    /// The object holding the full segment of `H.long` (not an entry itself).
    NameObject(&'a str),
    /// Nothing an s3cryptfs writer stores.
    Foreign,
}

fn is_b64url(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Classify a segment of a store key of a vault with encrypted names.
pub fn classify(segment: &str) -> Segment<'_> {
    let hash_of = |s: &'_ str| (s.len() == HASH_LEN && is_b64url(s)).then_some(());
    if let Some(h) = segment.strip_suffix(LONG_SUFFIX)
        && hash_of(h).is_some()
    {
        return Segment::Long(h);
    }
    if let Some(h) = segment.strip_suffix(NAME_OBJECT_SUFFIX)
        && hash_of(h).is_some()
    {
        return Segment::NameObject(h);
    }
    if segment.len() <= MAX_SEGMENT_LEN && is_b64url(segment) {
        return Segment::Encrypted(segment);
    }
    Segment::Foreign
}

/// `H` of a full segment: base64url-nopad(SHA-256(segment)).
pub fn long_hash(full: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, full.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// The name key of a vault, zeroized on drop.
#[derive(Clone)]
pub struct NameCipher {
    key: Zeroizing<[u8; 64]>,
}

impl std::fmt::Debug for NameCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NameCipher { .. }")
    }
}

impl NameCipher {
    /// `K_names` of the vault with master key `vmk` and id `vault_id`.
    pub fn derive(vmk: &[u8; 32], vault_id: &[u8; 16]) -> NameCipher {
        NameCipher {
            key: kdf::hkdf_sha256_64(vmk, vault_id, &[INFO_NAMES]),
        }
    }

    /// A cipher over a given 64-byte key (test vectors).
    #[doc(hidden)]
    pub fn from_key(key: [u8; 64]) -> NameCipher {
        NameCipher {
            key: Zeroizing::new(key),
        }
    }

    fn siv(&self) -> Aes256Siv {
        Aes256Siv::new((&*self.key).into())
    }

    /// The full encrypted segment of `name` in the directory `parent`.
    pub fn encrypt_segment(&self, parent: &str, name: &str) -> String {
        let pad = 16 - name.len() % 16;
        let mut padded = Zeroizing::new(Vec::with_capacity(name.len() + pad));
        padded.extend_from_slice(name.as_bytes());
        padded.extend(std::iter::repeat_n(pad as u8, pad));
        let ct = self
            .siv()
            .encrypt([parent.as_bytes()], &padded)
            // AES-SIV fails only for more than 126 headers; there is one.
            .expect("AES-SIV of one header cannot fail");
        URL_SAFE_NO_PAD.encode(ct)
    }

    /// How `name` in `parent` is stored: the encrypted segment, or its shortened form.
    pub fn encrypt(&self, parent: &str, name: &str) -> StoredName {
        let full = self.encrypt_segment(parent, name);
        if full.len() <= MAX_SEGMENT_LEN {
            StoredName::Short(full)
        } else {
            StoredName::Long {
                entry: format!("{}{LONG_SUFFIX}", long_hash(&full)),
                full,
            }
        }
    }

    /// The name a full encrypted segment stands for in `parent`.
    pub fn decrypt(&self, parent: &str, segment: &str) -> Result<String, NameError> {
        if segment.len() > MAX_FULL_SEGMENT_LEN || !is_b64url(segment) {
            return Err(NameError::Encoding);
        }
        let ct = URL_SAFE_NO_PAD
            .decode(segment)
            .map_err(|_| NameError::Encoding)?;
        if ct.len() < 32 || ct.len() % 16 != 0 {
            return Err(NameError::Length(ct.len()));
        }
        let padded = Zeroizing::new(
            self.siv()
                .decrypt([parent.as_bytes()], &ct)
                .map_err(|_| NameError::Authentication)?,
        );
        let pad = *padded.last().ok_or(NameError::Padding)? as usize;
        if pad == 0
            || pad > 16
            || padded[padded.len() - pad..]
                .iter()
                .any(|&b| b as usize != pad)
        {
            return Err(NameError::Padding);
        }
        let name = &padded[..padded.len() - pad];
        if name.len() > MAX_NAME_LEN {
            return Err(NameError::Length(name.len()));
        }
        String::from_utf8(name.to_vec()).map_err(|_| NameError::Utf8)
    }

    /// The name a shortened entry `H.long` stands for, given the content of `H.name`: the
    /// content must hash to `H` and decrypt in `parent`.
    pub fn decrypt_long(&self, parent: &str, hash: &str, full: &[u8]) -> Result<String, NameError> {
        let full = std::str::from_utf8(full).map_err(|_| NameError::Encoding)?;
        if full.len() <= MAX_SEGMENT_LEN || !kdf::ct_eq(long_hash(full).as_bytes(), hash.as_bytes())
        {
            // A short name is never stored shortened; a body of another entry does not hash.
            return Err(NameError::Authentication);
        }
        self.decrypt(parent, full)
    }
}

/// AES-SIV (RFC 5297) with the 32-byte key of the RFC's vectors: only for the unit test that
/// checks the implementation against them.
#[doc(hidden)]
pub fn rfc5297_siv(key: &[u8; 32], headers: &[&[u8]], plaintext: &[u8]) -> Vec<u8> {
    Aes128Siv::new(key.into())
        .encrypt(headers, plaintext)
        .expect("AES-SIV of a few headers cannot fail")
}

#[cfg(test)]
#[path = "names_tests.rs"]
mod tests;
