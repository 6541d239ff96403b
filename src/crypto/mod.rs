//! Client-side encryption: the object format, the vault's keys, and local sealing.
//!
//! - `format`: object body layout (header + AES-256-GCM blocks), size and range math,
//!   [`format::ObjectSealer`] / [`format::ObjectOpener`].
//! - `keys`: the vault config object, key slots (key file, passphrase via argon2id), unlock,
//!   key generations (rotation), and the key hierarchy from secret to generation keys.
//! - `aead`: the one seam to the AES-256-GCM implementation (aws-lc-rs).
//! - `kdf`: HKDF-SHA256, argon2id, AES key wrap, HMAC, randomness (thin wrappers that hand
//!   out zeroizing fixed-size keys).
//! - `keyfile`: key files and passphrase files on disk (owner-only permissions enforced).
//! - `rewrap`: metadata wraps, the DEK of an existing object wrapped under a newer key
//!   generation and kept in its user metadata (key rotation without moving data).
//! - `ephemeral`: an in-memory key that seals local staging and cache files, so no plaintext
//!   file data touches the local disk.
//!
//! This layer knows nothing of object stores or FUSE.

pub mod aead;
pub mod ephemeral;
pub mod format;
pub mod kdf;
pub mod keyfile;
pub mod keys;
pub mod rewrap;

pub use ephemeral::EphemeralKey;
pub use format::{HEADER_LEN, ObjectOpener, ObjectSealer};
pub use keys::{PassphraseParams, Secret, VaultConfig, VaultKeys};

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The key file or passphrase does not unlock this vault, or an object's data key does not
    /// unwrap under the vault's keys.
    #[error("wrong key: {0}")]
    WrongKey(String),
    /// Authentication failed: the object was modified, truncated, extended or its blocks
    /// reordered.
    #[error("corrupt or tampered data: {0}")]
    Corrupt(String),
    /// The bytes are not in a format or version this build reads.
    #[error("unsupported format: {0}")]
    Unsupported(String),
    /// A key file, passphrase or config value is unusable (with the reason).
    #[error("{0}")]
    InvalidKeyMaterial(String),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("crypto library failure: {0}")]
    Internal(String),
}

pub type CryptoResult<T> = Result<T, CryptoError>;
