//! `CryptoError`: what the encryption layer can fail with. Defined apart from `mod.rs` so that
//! every part of the layer depends on it without depending on the module that re-exports them.

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
    /// A KMS key slot could not be opened or sealed: KMS refused (`refused`: the key is
    /// disabled, pending deletion, not found, or these credentials may not use it; a wrong key
    /// for the exit status) or could not be reached. The message names the key and the fix.
    #[error("{message}")]
    Kms { refused: bool, message: String },
}

pub type CryptoResult<T> = Result<T, CryptoError>;
