//! The AEAD seam: AES-256-GCM behind one small trait.
//!
//! Everything that encrypts data (object blocks, ephemeral staging records) goes through
//! [`Aead`]; the implementation in use is [`DefaultAead`] (aws-lc-rs, about twice as fast as
//! the pure-Rust `aes-gcm` crate on this kind of machine). The bytes on the wire are plain
//! AES-256-GCM either way, so swapping the implementation is a one-line change here that
//! the format test vectors (checked against the independent `aes-gcm` crate) will vouch for.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

use super::error::{CryptoError, CryptoResult};

/// AES-256 key length in bytes.
pub const KEY_LEN: usize = 32;
/// GCM nonce length in bytes.
pub const NONCE_LEN: usize = 12;
/// GCM tag length in bytes.
pub const TAG_LEN: usize = 16;

/// Authentication failed: wrong key, wrong nonce/AAD, or modified ciphertext. Callers turn
/// it into a [`CryptoError`] that says which record failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthFailed;

/// An AEAD with 32-byte keys, 12-byte nonces and 16-byte tags (AES-256-GCM).
///
/// The caller owns nonce uniqueness: a (key, nonce) pair must never seal two different
/// plaintexts.
pub trait Aead: Send + Sync {
    /// Encrypts `in_out` in place and returns the 16-byte tag (stored after the ciphertext).
    fn seal_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> CryptoResult<[u8; TAG_LEN]>;

    /// Verifies and decrypts `ciphertext || tag` in place; returns the plaintext prefix of
    /// `in_out`. On failure the contents of `in_out` are unspecified.
    fn open_in_place<'a>(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &'a mut [u8],
    ) -> Result<&'a mut [u8], AuthFailed>;

    /// Verifies `ciphertext || tag` and decrypts it into `out` (exactly the ciphertext's
    /// length): one pass over the data, where a copy then [`Aead::open_in_place`] takes two.
    /// On failure the contents of `out` are unspecified.
    fn open_to(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        ciphertext_and_tag: &[u8],
        out: &mut [u8],
    ) -> Result<(), AuthFailed>;
}

/// The AES-256-GCM implementation used by the rest of the crate.
pub type DefaultAead = AwsLcAes256Gcm;

/// AES-256-GCM from aws-lc-rs. The key schedule lives inside aws-lc and is cleared when the
/// value is dropped.
pub struct AwsLcAes256Gcm {
    key: LessSafeKey,
}

impl AwsLcAes256Gcm {
    pub fn new(key: &[u8; KEY_LEN]) -> CryptoResult<Self> {
        let unbound = UnboundKey::new(&AES_256_GCM, key)
            .map_err(|_| CryptoError::Internal("AES-256-GCM key setup failed".into()))?;
        Ok(AwsLcAes256Gcm {
            key: LessSafeKey::new(unbound),
        })
    }
}

impl std::fmt::Debug for AwsLcAes256Gcm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AwsLcAes256Gcm { .. }")
    }
}

impl Aead for AwsLcAes256Gcm {
    fn seal_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> CryptoResult<[u8; TAG_LEN]> {
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(aad),
                in_out,
            )
            .map_err(|_| CryptoError::Internal("AES-256-GCM seal failed".into()))?;
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    fn open_in_place<'a>(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &'a mut [u8],
    ) -> Result<&'a mut [u8], AuthFailed> {
        if in_out.len() < TAG_LEN {
            return Err(AuthFailed);
        }
        self.key
            .open_in_place(Nonce::assume_unique_for_key(*nonce), Aad::from(aad), in_out)
            .map_err(|_| AuthFailed)
    }

    fn open_to(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        ciphertext_and_tag: &[u8],
        out: &mut [u8],
    ) -> Result<(), AuthFailed> {
        let Some(split) = ciphertext_and_tag.len().checked_sub(TAG_LEN) else {
            return Err(AuthFailed);
        };
        if out.len() != split {
            return Err(AuthFailed);
        }
        let (ciphertext, tag) = ciphertext_and_tag.split_at(split);
        self.key
            .open_separate_gather(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(aad),
                ciphertext,
                tag,
                out,
            )
            .map_err(|_| AuthFailed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_roundtrip_and_tamper() {
        let aead = DefaultAead::new(&[7u8; 32]).unwrap();
        let nonce = [1u8; 12];
        let mut buf = b"hello world".to_vec();
        let tag = aead.seal_in_place(&nonce, b"aad", &mut buf).unwrap();
        buf.extend_from_slice(&tag);
        assert_eq!(buf.len(), 11 + TAG_LEN);

        let mut ok = buf.clone();
        assert_eq!(
            aead.open_in_place(&nonce, b"aad", &mut ok).unwrap(),
            b"hello world"
        );

        let mut bad_aad = buf.clone();
        assert_eq!(
            aead.open_in_place(&nonce, b"aaX", &mut bad_aad),
            Err(AuthFailed)
        );
        let mut bad_nonce = buf.clone();
        assert_eq!(
            aead.open_in_place(&[2u8; 12], b"aad", &mut bad_nonce),
            Err(AuthFailed)
        );
        let mut flipped = buf.clone();
        flipped[0] ^= 1;
        assert_eq!(
            aead.open_in_place(&nonce, b"aad", &mut flipped),
            Err(AuthFailed)
        );
        let mut short = [0u8; 5];
        assert_eq!(aead.open_in_place(&nonce, b"", &mut short), Err(AuthFailed));

        let mut out = [0u8; 11];
        aead.open_to(&nonce, b"aad", &buf, &mut out).unwrap();
        assert_eq!(&out, b"hello world");
        assert_eq!(
            aead.open_to(&nonce, b"aaX", &buf, &mut out),
            Err(AuthFailed)
        );
        assert_eq!(
            aead.open_to(&nonce, b"aad", &flipped, &mut out),
            Err(AuthFailed)
        );
        assert_eq!(
            aead.open_to(&nonce, b"aad", &buf, &mut [0u8; 10]),
            Err(AuthFailed)
        );
        assert_eq!(aead.open_to(&nonce, b"", &short, &mut []), Err(AuthFailed));
    }

    #[test]
    fn is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<DefaultAead>();
    }
}
