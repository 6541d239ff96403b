//! Ephemeral in-memory key for sealing local staging and cache data.
//!
//! The key is random, lives only in this process and is never written anywhere, so sealed
//! local files are unreadable once the process is gone. Nonces are `00 00 00 00 || BE64(n)`
//! with `n` from an atomic counter: they never repeat for the life of the key, whatever the
//! number of threads, and the counter refuses to wrap.

use std::sync::atomic::{AtomicU64, Ordering};

use super::aead::{Aead, DefaultAead, NONCE_LEN, TAG_LEN};
use super::error::{CryptoError, CryptoResult};
use super::kdf;

/// Bytes `seal` adds to each sealed record (nonce + tag).
pub const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// A random key that lives only in memory; counter nonces, so a nonce never repeats.
pub struct EphemeralKey {
    aead: DefaultAead,
    next_nonce: AtomicU64,
}

impl EphemeralKey {
    pub fn generate() -> CryptoResult<Self> {
        let key = kdf::random_key()?;
        Ok(EphemeralKey {
            aead: DefaultAead::new(&key)?,
            next_nonce: AtomicU64::new(0),
        })
    }

    fn next_nonce(&self) -> CryptoResult<[u8; NONCE_LEN]> {
        let n = self
            .next_nonce
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_add(1))
            .map_err(|_| CryptoError::Internal("ephemeral key nonce counter exhausted".into()))?;
        let mut nonce = [0u8; NONCE_LEN];
        nonce[4..].copy_from_slice(&n.to_be_bytes());
        Ok(nonce)
    }

    /// nonce || ciphertext || tag, authenticated with `aad`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> CryptoResult<Vec<u8>> {
        let nonce = self.next_nonce()?;
        let mut out = Vec::with_capacity(SEAL_OVERHEAD + plaintext.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let tag = self
            .aead
            .seal_in_place(&nonce, aad, &mut out[NONCE_LEN..])?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Verifies and decrypts a record made by [`EphemeralKey::seal`] with the same `aad`;
    /// `Corrupt` when it was modified, truncated, or sealed under another key or AAD.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> CryptoResult<Vec<u8>> {
        if sealed.len() < SEAL_OVERHEAD {
            return Err(CryptoError::Corrupt(format!(
                "sealed local record is {} bytes, shorter than its {SEAL_OVERHEAD}-byte overhead",
                sealed.len()
            )));
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let mut nonce_arr = [0u8; NONCE_LEN];
        nonce_arr.copy_from_slice(nonce);
        let mut buf = body.to_vec();
        let len = self
            .aead
            .open_in_place(&nonce_arr, aad, &mut buf)
            .map_err(|_| {
                CryptoError::Corrupt(
                    "sealed local record failed authentication (modified, moved, or written by \
                     another process)"
                        .into(),
                )
            })?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

impl std::fmt::Debug for EphemeralKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EphemeralKey { .. }")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_roundtrip() {
        let key = EphemeralKey::generate().unwrap();
        for len in [0usize, 1, 100, 65536] {
            let pt: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let sealed = key.seal(b"aad", &pt).unwrap();
            assert_eq!(sealed.len(), len + SEAL_OVERHEAD);
            assert_eq!(key.open(b"aad", &sealed).unwrap(), pt);
        }
    }

    #[test]
    fn nonces_never_repeat() {
        let key = EphemeralKey::generate().unwrap();
        let a = key.seal(b"", b"same").unwrap();
        let b = key.seal(b"", b"same").unwrap();
        assert_ne!(a[..NONCE_LEN], b[..NONCE_LEN]);
        assert_ne!(a, b);
    }

    #[test]
    fn tamper_wrong_aad_and_other_key_fail() {
        let key = EphemeralKey::generate().unwrap();
        let sealed = key.seal(b"slot 1", b"secret data").unwrap();
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(matches!(
                key.open(b"slot 1", &bad),
                Err(CryptoError::Corrupt(_))
            ));
        }
        assert!(matches!(
            key.open(b"slot 2", &sealed),
            Err(CryptoError::Corrupt(_))
        ));
        assert!(matches!(
            key.open(b"slot 1", &sealed[..sealed.len() - 1]),
            Err(CryptoError::Corrupt(_))
        ));
        assert!(matches!(
            key.open(b"slot 1", &sealed[..5]),
            Err(CryptoError::Corrupt(_))
        ));
        let other = EphemeralKey::generate().unwrap();
        assert!(matches!(
            other.open(b"slot 1", &sealed),
            Err(CryptoError::Corrupt(_))
        ));
    }

    #[test]
    fn exhausted_counter_refuses_instead_of_wrapping() {
        let key = EphemeralKey::generate().unwrap();
        key.next_nonce.store(u64::MAX - 1, Ordering::Relaxed);
        assert!(key.seal(b"", b"x").is_ok());
        assert!(matches!(key.seal(b"", b"x"), Err(CryptoError::Internal(_))));
        assert!(matches!(key.seal(b"", b"x"), Err(CryptoError::Internal(_))));
    }

    #[test]
    fn is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<EphemeralKey>();
    }
}
