//! The seam to a key management service for KMS key slots: the two operations a slot needs,
//! encrypting the vault master key under a KMS key and decrypting it again, both bound to the
//! vault by an encryption context. The network client is `vault::kms` (AWS KMS); this layer
//! only calls the trait, so it still knows nothing of the network, and tests use a fake.

use zeroize::Zeroizing;

use super::error::CryptoResult;

/// Name of the encryption context pair every KMS call of s3cryptfs carries; its value is the
/// vault id as 32 lowercase hex digits. KMS authenticates the context with the ciphertext, so
/// a blob copied into another vault's config does not decrypt there, and a key policy can
/// allow only requests that carry it (`kms:EncryptionContext:s3cryptfs-vault`).
pub const KMS_CONTEXT_KEY: &str = "s3cryptfs-vault";

/// Longest ciphertext blob AWS KMS returns (its documented maximum, 6144 bytes); a slot
/// holding more is refused when the config is read.
pub const MAX_KMS_BLOB: usize = 6144;

/// Longest key id, alias or ARN a slot may name (AWS: 2048 characters).
pub const MAX_KMS_KEY_ID: usize = 2048;

/// What unlocks a KMS key slot. Errors are [`CryptoError::Kms`](super::CryptoError::Kms),
/// saying whether KMS refused (a wrong key for the exit status) or could not be reached.
pub trait KmsWrap: Send + Sync {
    /// The ciphertext blob of `plaintext` under `key_id`, with the encryption context
    /// {[`KMS_CONTEXT_KEY`]: `vault_id`}.
    fn encrypt(&self, key_id: &str, vault_id: &str, plaintext: &[u8; 32]) -> CryptoResult<Vec<u8>>;

    /// The plaintext of `blob`, which must have been encrypted under `key_id` with the same
    /// encryption context.
    fn decrypt(
        &self,
        key_id: &str,
        vault_id: &str,
        blob: &[u8],
    ) -> CryptoResult<Zeroizing<Vec<u8>>>;

    /// Where the calls go (endpoint and region), for messages.
    fn describe(&self) -> String;
}
