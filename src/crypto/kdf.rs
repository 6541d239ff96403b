//! Key derivation and key wrapping primitives: HKDF-SHA256, argon2id, AES-256 key wrap
//! (RFC 3394), HMAC-SHA256, randomness and constant-time comparison.
//!
//! Thin wrappers so the rest of `crypto` deals in fixed-size, zeroizing arrays and
//! [`CryptoError`]s rather than library types. Every derived secret comes back as
//! `Zeroizing<[u8; 32]>`.

use aws_lc_rs::hkdf::{self, HKDF_SHA256, KeyType};
use aws_lc_rs::hmac;
use aws_lc_rs::key_wrap::{AES_256, AesKek, KeyWrap};
use zeroize::Zeroizing;

use super::error::{CryptoError, CryptoResult};

/// Length of an AES-KW wrap of a 32-byte key (key + 8-byte integrity block).
pub const WRAPPED_KEY_LEN: usize = 40;

/// A 32-byte secret that is wiped when dropped.
pub type SecretKey = Zeroizing<[u8; 32]>;

struct Len(usize);

impl KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// `HKDF-Expand(HKDF-Extract(salt, ikm), info_parts concatenated, 32)`.
pub fn hkdf_sha256(ikm: &[u8], salt: &[u8], info: &[&[u8]]) -> SecretKey {
    let prk = hkdf::Salt::new(HKDF_SHA256, salt).extract(ikm);
    hkdf_expand(&prk, info)
}

/// `HKDF-Extract(salt, ikm)`, to expand several keys from one PRK.
pub fn hkdf_extract(ikm: &[u8], salt: &[u8]) -> hkdf::Prk {
    hkdf::Salt::new(HKDF_SHA256, salt).extract(ikm)
}

/// `HKDF-Expand(prk, info_parts concatenated, 32)`.
pub fn hkdf_expand(prk: &hkdf::Prk, info: &[&[u8]]) -> SecretKey {
    let mut out = Zeroizing::new([0u8; 32]);
    prk.expand(info, Len(32))
        .and_then(|okm| okm.fill(&mut out[..]))
        // HKDF-SHA256 fails only for outputs longer than 255 * 32 bytes; ours is 32.
        .expect("HKDF-SHA256 expand of 32 bytes cannot fail");
    out
}

/// `HKDF-SHA256(ikm, salt, info)` with a 64-byte output (two AES-256 keys: the name key of
/// AES-SIV, docs/FORMAT.md §9).
pub fn hkdf_sha256_64(ikm: &[u8], salt: &[u8], info: &[&[u8]]) -> Zeroizing<[u8; 64]> {
    let prk = hkdf::Salt::new(HKDF_SHA256, salt).extract(ikm);
    let mut out = Zeroizing::new([0u8; 64]);
    prk.expand(info, Len(64))
        .and_then(|okm| okm.fill(&mut out[..]))
        // HKDF-SHA256 fails only for outputs longer than 255 * 32 bytes; ours is 64.
        .expect("HKDF-SHA256 expand of 64 bytes cannot fail");
    out
}

/// AES-256 key wrap (RFC 3394) of a 32-byte key.
pub fn wrap_key(kek: &[u8; 32], key: &[u8; 32]) -> CryptoResult<[u8; WRAPPED_KEY_LEN]> {
    let kek = AesKek::new(&AES_256, kek)
        .map_err(|_| CryptoError::Internal("AES-KW key setup failed".into()))?;
    let mut out = [0u8; WRAPPED_KEY_LEN];
    let len = kek
        .wrap(key, &mut out)
        .map_err(|_| CryptoError::Internal("AES-KW wrap failed".into()))?
        .len();
    if len != WRAPPED_KEY_LEN {
        return Err(CryptoError::Internal(format!(
            "AES-KW wrap produced {len} bytes, expected {WRAPPED_KEY_LEN}"
        )));
    }
    Ok(out)
}

/// Unwraps an AES-KW wrapped 32-byte key; `None` when the integrity check fails (wrong KEK
/// or modified bytes).
pub fn unwrap_key(kek: &[u8; 32], wrapped: &[u8; WRAPPED_KEY_LEN]) -> Option<SecretKey> {
    let kek = AesKek::new(&AES_256, kek).ok()?;
    let mut out = Zeroizing::new([0u8; 32]);
    let len = kek.unwrap(wrapped, &mut out[..]).ok()?.len();
    (len == 32).then_some(out)
}

/// Argon2id cost parameters of a passphrase key slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PassphraseParams {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Passes over memory.
    pub t_cost: u32,
    /// Lanes (parallelism).
    pub p_cost: u32,
}

impl PassphraseParams {
    /// Upper bounds checked on every config read, before any slot is tried: the config comes
    /// from the bucket and its MAC needs the VMK a slot gives, so a hostile config could
    /// otherwise make `unlock` allocate and compute at will. 1 GiB, 16 passes, 16 lanes:
    /// 16 times the memory and 5 times the passes `init` and `key add` use (docs/FORMAT.md §6).
    pub const MAX_M_COST_KIB: u32 = 1024 * 1024;
    pub const MAX_T_COST: u32 = 16;
    pub const MAX_P_COST: u32 = 16;

    /// Cheap parameters for tests only (64 KiB, 1 pass): NOT for real vaults.
    pub const INSECURE_FOR_TESTS: PassphraseParams = PassphraseParams {
        m_cost_kib: 64,
        t_cost: 1,
        p_cost: 1,
    };

    pub fn validate(&self) -> CryptoResult<()> {
        let bad = |what: String| {
            Err(CryptoError::InvalidKeyMaterial(format!(
                "passphrase slot: {what}"
            )))
        };
        if self.p_cost == 0 || self.p_cost > Self::MAX_P_COST {
            return bad(format!(
                "p_cost {} is outside 1..={}",
                self.p_cost,
                Self::MAX_P_COST
            ));
        }
        if self.t_cost == 0 || self.t_cost > Self::MAX_T_COST {
            return bad(format!(
                "t_cost {} is outside 1..={}",
                self.t_cost,
                Self::MAX_T_COST
            ));
        }
        let min_m = 8 * self.p_cost;
        if self.m_cost_kib < min_m || self.m_cost_kib > Self::MAX_M_COST_KIB {
            return bad(format!(
                "m_cost_kib {} is outside {min_m}..={}",
                self.m_cost_kib,
                Self::MAX_M_COST_KIB
            ));
        }
        Ok(())
    }
}

impl Default for PassphraseParams {
    /// argon2id with 64 MiB, 3 passes, 1 lane (about a quarter second on a laptop core).
    fn default() -> Self {
        PassphraseParams {
            m_cost_kib: 64 * 1024,
            t_cost: 3,
            p_cost: 1,
        }
    }
}

/// `argon2id(passphrase, salt, params)` → 32 bytes.
pub fn argon2id(
    passphrase: &[u8],
    salt: &[u8],
    params: &PassphraseParams,
) -> CryptoResult<SecretKey> {
    params.validate()?;
    let p = argon2::Params::new(params.m_cost_kib, params.t_cost, params.p_cost, Some(32))
        .map_err(|e| {
            CryptoError::InvalidKeyMaterial(format!("passphrase slot: argon2 parameters: {e}"))
        })?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p);
    let mut out = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase, salt, &mut out[..])
        .map_err(|e| CryptoError::Internal(format!("argon2id failed: {e}")))?;
    Ok(out)
}

/// HMAC-SHA256 tag of `data`.
pub fn hmac_sha256(key: &[u8; 32], data: &[u8]) -> [u8; 32] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let tag = hmac::sign(&key, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// HMAC-SHA256 of the concatenation of `parts`, without copying them into one buffer.
pub fn hmac_sha256_parts(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&key);
    for part in parts {
        ctx.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.sign().as_ref());
    out
}

/// Constant-time equality of two byte strings (length is not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

/// Fills `N` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> CryptoResult<[u8; N]> {
    let mut out = [0u8; N];
    aws_lc_rs::rand::fill(&mut out)
        .map_err(|_| CryptoError::Internal("the system random generator failed".into()))?;
    Ok(out)
}

/// A fresh random 32-byte secret key.
pub fn random_key() -> CryptoResult<SecretKey> {
    let mut out = Zeroizing::new([0u8; 32]);
    aws_lc_rs::rand::fill(&mut out[..])
        .map_err(|_| CryptoError::Internal("the system random generator failed".into()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hkdf_matches_rfc5869_case_1() {
        let ikm = [0x0bu8; 22];
        let salt: Vec<u8> = (0u8..=0x0c).collect();
        let info: Vec<u8> = (0xf0u8..=0xf9).collect();
        let okm = hkdf_sha256(&ikm, &salt, &[&info[..5], &info[5..]]);
        assert_eq!(
            hex::encode(&okm[..]),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
        );
    }

    #[test]
    fn key_wrap_matches_rfc3394_4_6() {
        let kek: [u8; 32] =
            hex::decode("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F")
                .unwrap()
                .try_into()
                .unwrap();
        let key: [u8; 32] =
            hex::decode("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F")
                .unwrap()
                .try_into()
                .unwrap();
        let wrapped = wrap_key(&kek, &key).unwrap();
        assert_eq!(
            hex::encode_upper(wrapped),
            "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21"
        );
        assert_eq!(*unwrap_key(&kek, &wrapped).unwrap(), key);
        let mut bad = wrapped;
        bad[3] ^= 0x80;
        assert!(unwrap_key(&kek, &bad).is_none());
        assert!(unwrap_key(&[0u8; 32], &wrapped).is_none());
    }

    #[test]
    fn argon2id_params_are_validated() {
        let salt = [1u8; 32];
        assert!(argon2id(b"pw", &salt, &PassphraseParams::INSECURE_FOR_TESTS).is_ok());
        let huge = PassphraseParams {
            m_cost_kib: u32::MAX,
            ..PassphraseParams::INSECURE_FOR_TESTS
        };
        assert!(matches!(
            argon2id(b"pw", &salt, &huge),
            Err(CryptoError::InvalidKeyMaterial(_))
        ));
        let zero = PassphraseParams {
            t_cost: 0,
            ..PassphraseParams::INSECURE_FOR_TESTS
        };
        assert!(zero.validate().is_err());
        assert!(PassphraseParams::default().validate().is_ok());
    }

    #[test]
    fn ct_eq_works() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
