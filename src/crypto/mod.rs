//! Client-side encryption: the object format, the vault's keys, and local sealing.
//!
//! - `format`: the object format v1, split by concern: `layout` (size, offset and range
//!   math), `header` (parse, serialize, DEK wraps, commitment), `metadata` (the `s3cryptfs-*`
//!   metadata entries) and `seal` ([`format::ObjectSealer`] / [`format::ObjectOpener`]).
//! - `keys`: the vault config object, key slots (key file, passphrase via argon2id), unlock,
//!   key generations (rotation), and the key hierarchy from secret to generation keys.
//! - `aead`: the one seam to the AES-256-GCM implementation (aws-lc-rs).
//! - `kdf`: HKDF-SHA256, argon2id, AES key wrap, HMAC, randomness (thin wrappers that hand
//!   out zeroizing fixed-size keys).
//! - `slots`: key slots (key file, passphrase, KMS): sealing and opening the VMK, their MAC
//!   input. `kms`: the [`kms::KmsWrap`] seam a KMS slot calls (the network client is
//!   `vault::kms`).
//! - `keyfile`: the [`Secret`] that unlocks a vault, and key files and passphrase files on
//!   disk (owner-only permissions enforced).
//! - `rewrap`: key rotation without moving data: the DEK of an existing object wrapped under
//!   the current key generation for its user metadata (the opener takes such wraps as
//!   candidates from its caller; it never calls back into `rewrap`).
//! - `ephemeral`: an in-memory key that seals local staging and cache files, so no plaintext
//!   file data touches the local disk.
//! - `error`: [`CryptoError`].
//!
//! This layer knows nothing of object stores or FUSE. Its parts import what they use from the
//! file that defines it, not through this module's re-exports, so no two files depend on each
//! other.

pub mod aead;
pub mod ephemeral;
mod error;
pub mod format;
pub mod kdf;
pub mod keyfile;
pub mod keys;
pub mod kms;
pub mod names;
pub mod rewrap;
mod slots;

pub use ephemeral::EphemeralKey;
pub use error::{CryptoError, CryptoResult};
pub use format::{HEADER_LEN, ObjectOpener, ObjectSealer};
pub use keys::{PassphraseParams, Secret, VaultConfig, VaultKeys};
pub use kms::KmsWrap;
