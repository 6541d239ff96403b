//! Key slots: the ways to unlock a vault, each holding the vault master key (VMK) sealed
//! under one secret. A key file or passphrase slot wraps the VMK with AES-KW under a key
//! derived from the secret; a KMS slot holds the VMK encrypted by AWS KMS under a named KMS key
//! with the encryption context {"s3cryptfs-vault": vault id} (`kms.rs`). Every field of every
//! slot is covered by the vault config's MAC (`mac_input`), so a key id or blob changed in the
//! bucket is refused once the VMK is known.

use serde::{Deserialize, Serialize};

use super::error::{CryptoError, CryptoResult};
use super::kdf::{self, PassphraseParams, SecretKey, WRAPPED_KEY_LEN};
use super::keyfile::Secret;
use super::kms::{MAX_KMS_BLOB, MAX_KMS_KEY_ID};

const INFO_KEY_FILE_SLOT: &[u8] = b"s3cryptfs v1 key-file slot";

/// Serde helper: fixed-size byte arrays as lowercase hex strings.
pub(super) mod hex_array {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer, const N: usize>(v: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        let s = String::deserialize(d)?;
        let mut out = [0u8; N];
        hex::decode_to_slice(s.as_bytes(), &mut out)
            .map_err(|e| D::Error::custom(format!("expected {} hex digits: {e}", 2 * N)))?;
        Ok(out)
    }
}

/// Serde helper: byte strings as lowercase hex strings (a KMS ciphertext blob).
mod hex_vec {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s.as_bytes()).map_err(|e| D::Error::custom(format!("expected hex digits: {e}")))
    }
}

/// One way to unlock the vault: the VMK wrapped under a key derived from a secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum KeySlot {
    /// KEK = HKDF-SHA256(ikm = the 32 key-file bytes, salt, "s3cryptfs v1 key-file slot").
    KeyFile {
        #[serde(default)]
        label: String,
        #[serde(with = "hex_array")]
        salt: [u8; 32],
        #[serde(with = "hex_array")]
        wrapped_vmk: [u8; WRAPPED_KEY_LEN],
    },
    /// KEK = argon2id(passphrase, salt, m_cost_kib, t_cost, p_cost), 32-byte output.
    Passphrase {
        #[serde(default)]
        label: String,
        #[serde(with = "hex_array")]
        salt: [u8; 32],
        m_cost_kib: u32,
        t_cost: u32,
        p_cost: u32,
        #[serde(with = "hex_array")]
        wrapped_vmk: [u8; WRAPPED_KEY_LEN],
    },
    /// The VMK encrypted by KMS under `key_id` (id, alias or ARN as given when the slot was
    /// made), with the encryption context {"s3cryptfs-vault": vault id in hex}.
    Kms {
        #[serde(default)]
        label: String,
        key_id: String,
        #[serde(with = "hex_vec")]
        ciphertext: Vec<u8>,
    },
}

impl KeySlot {
    pub fn label(&self) -> &str {
        match self {
            KeySlot::KeyFile { label, .. }
            | KeySlot::Passphrase { label, .. }
            | KeySlot::Kms { label, .. } => label,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            KeySlot::KeyFile { .. } => "key_file",
            KeySlot::Passphrase { .. } => "passphrase",
            KeySlot::Kms { .. } => "kms",
        }
    }

    /// The KMS key a KMS slot names.
    pub fn kms_key_id(&self) -> Option<&str> {
        match self {
            KeySlot::Kms { key_id, .. } => Some(key_id),
            _ => None,
        }
    }

    /// Whether `secret` is of the kind this slot opens with.
    pub(super) fn takes(&self, secret: &Secret) -> bool {
        matches!(
            (self, secret),
            (KeySlot::KeyFile { .. }, Secret::KeyFile(_))
                | (KeySlot::Passphrase { .. }, Secret::Passphrase(_))
                | (KeySlot::Kms { .. }, Secret::Kms(_))
        )
    }

    /// Bounds of what a config read from the bucket may hold in a slot (`index` names it).
    pub(super) fn validate(&self, index: usize) -> CryptoResult<()> {
        let bad = |msg: String| CryptoError::Corrupt(format!("vault config: slot {index}: {msg}"));
        match self {
            KeySlot::Passphrase {
                m_cost_kib,
                t_cost,
                p_cost,
                ..
            } => PassphraseParams {
                m_cost_kib: *m_cost_kib,
                t_cost: *t_cost,
                p_cost: *p_cost,
            }
            .validate()
            .map_err(|e| bad(e.to_string())),
            KeySlot::Kms {
                key_id, ciphertext, ..
            } => {
                if key_id.is_empty() || key_id.len() > MAX_KMS_KEY_ID {
                    return Err(bad(format!(
                        "KMS key id of {} bytes (1 to {MAX_KMS_KEY_ID})",
                        key_id.len()
                    )));
                }
                if ciphertext.is_empty() || ciphertext.len() > MAX_KMS_BLOB {
                    return Err(bad(format!(
                        "KMS ciphertext of {} bytes (1 to {MAX_KMS_BLOB})",
                        ciphertext.len()
                    )));
                }
                Ok(())
            }
            KeySlot::KeyFile { .. } => Ok(()),
        }
    }

    /// A slot that `secret` opens, holding `vmk` (`salt` and `params` for key file and
    /// passphrase slots; a KMS secret must name the key to encrypt under).
    pub(super) fn seal(
        secret: &Secret,
        label: &str,
        params: PassphraseParams,
        salt: [u8; 32],
        vmk: &[u8; 32],
        vault_id: &[u8; 16],
    ) -> CryptoResult<KeySlot> {
        Ok(match secret {
            Secret::KeyFile(bytes) => {
                let kek = key_file_kek(bytes, &salt);
                KeySlot::KeyFile {
                    label: label.to_owned(),
                    salt,
                    wrapped_vmk: kdf::wrap_key(&kek, vmk)?,
                }
            }
            Secret::Passphrase(pass) => {
                if pass.is_empty() {
                    return Err(CryptoError::InvalidKeyMaterial(
                        "the passphrase is empty".into(),
                    ));
                }
                let kek = kdf::argon2id(pass.as_bytes(), &salt, &params)?;
                KeySlot::Passphrase {
                    label: label.to_owned(),
                    salt,
                    m_cost_kib: params.m_cost_kib,
                    t_cost: params.t_cost,
                    p_cost: params.p_cost,
                    wrapped_vmk: kdf::wrap_key(&kek, vmk)?,
                }
            }
            Secret::Kms(kms) => {
                let Some(key_id) = kms.new_key_id.as_deref() else {
                    return Err(CryptoError::InvalidKeyMaterial(
                        "a KMS slot needs the KMS key to encrypt under: give --kms-key-id \
                         (init) or --new-kms-key-id (key add)"
                            .into(),
                    ));
                };
                let ciphertext = kms.client.encrypt(key_id, &hex::encode(vault_id), vmk)?;
                KeySlot::Kms {
                    label: label.to_owned(),
                    key_id: key_id.to_owned(),
                    ciphertext,
                }
            }
        })
    }

    /// The VMK if `secret` opens this slot; `Ok(None)` for a wrong secret or another kind. A
    /// KMS slot asks KMS (one call; the client remembers the answer for the run), and what KMS
    /// refuses is an error naming the key.
    pub(super) fn open(
        &self,
        secret: &Secret,
        vault_id: &[u8; 16],
    ) -> CryptoResult<Option<SecretKey>> {
        match (self, secret) {
            (
                KeySlot::KeyFile {
                    salt, wrapped_vmk, ..
                },
                Secret::KeyFile(bytes),
            ) => Ok(kdf::unwrap_key(&key_file_kek(bytes, salt), wrapped_vmk)),
            (
                KeySlot::Passphrase {
                    salt,
                    m_cost_kib,
                    t_cost,
                    p_cost,
                    wrapped_vmk,
                    ..
                },
                Secret::Passphrase(pass),
            ) => {
                let params = PassphraseParams {
                    m_cost_kib: *m_cost_kib,
                    t_cost: *t_cost,
                    p_cost: *p_cost,
                };
                let kek = kdf::argon2id(pass.as_bytes(), salt, &params)?;
                Ok(kdf::unwrap_key(&kek, wrapped_vmk))
            }
            (
                KeySlot::Kms {
                    key_id, ciphertext, ..
                },
                Secret::Kms(kms),
            ) => {
                let plain = kms
                    .client
                    .decrypt(key_id, &hex::encode(vault_id), ciphertext)?;
                let vmk: [u8; 32] = plain.as_slice().try_into().map_err(|_| {
                    CryptoError::Corrupt(format!(
                        "vault config: the KMS slot of key {key_id} decrypts to {} bytes, not \
                         a 32-byte vault master key",
                        plain.len()
                    ))
                })?;
                Ok(Some(zeroize::Zeroizing::new(vmk)))
            }
            _ => Ok(None),
        }
    }

    pub(super) fn mac_input(&self, out: &mut Vec<u8>) {
        let put_label = |out: &mut Vec<u8>, label: &str| {
            out.extend_from_slice(&(label.len() as u64).to_be_bytes());
            out.extend_from_slice(label.as_bytes());
        };
        match self {
            KeySlot::KeyFile {
                label,
                salt,
                wrapped_vmk,
            } => {
                out.push(1);
                put_label(out, label);
                out.extend_from_slice(salt);
                out.extend_from_slice(wrapped_vmk);
            }
            KeySlot::Passphrase {
                label,
                salt,
                m_cost_kib,
                t_cost,
                p_cost,
                wrapped_vmk,
            } => {
                out.push(2);
                put_label(out, label);
                out.extend_from_slice(salt);
                out.extend_from_slice(&m_cost_kib.to_be_bytes());
                out.extend_from_slice(&t_cost.to_be_bytes());
                out.extend_from_slice(&p_cost.to_be_bytes());
                out.extend_from_slice(wrapped_vmk);
            }
            KeySlot::Kms {
                label,
                key_id,
                ciphertext,
            } => {
                out.push(3);
                put_label(out, label);
                put_label(out, key_id);
                out.extend_from_slice(&(ciphertext.len() as u64).to_be_bytes());
                out.extend_from_slice(ciphertext);
            }
        }
    }
}

fn key_file_kek(key_file: &[u8; 32], salt: &[u8; 32]) -> SecretKey {
    kdf::hkdf_sha256(key_file, salt, &[INFO_KEY_FILE_SLOT])
}

#[cfg(test)]
#[path = "slots_tests.rs"]
mod tests;
