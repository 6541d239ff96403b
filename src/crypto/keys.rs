//! The vault config object, key slots, unlock and key generations.
//!
//! Key hierarchy (docs/FORMAT.md has the details):
//! key file / passphrase → slot KEK → vault master key (VMK) → generation keys → per-object
//! wrap key → DEK. The config stores every key only wrapped (AES-KW, whose integrity check is
//! what turns a wrong secret into [`CryptoError::WrongKey`]), plus an HMAC under a key derived
//! from the VMK over all its fields, so nobody without the VMK can change the block size, swap
//! generations or roll `current_generation` back to an old generation unnoticed.
//!
//! Secrets and key files on disk are handled in `keyfile.rs` and re-exported here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub use super::kdf::PassphraseParams;
pub use super::keyfile::{
    KmsSecret, Secret, generate_key_file, read_key_file, read_passphrase_file,
};

pub use super::slots::KeySlot;

use super::error::{CryptoError, CryptoResult};
use super::format::layout::is_valid_block_size;
use super::kdf::{self, SecretKey, WRAPPED_KEY_LEN};
use super::names::NameCipher;
use super::slots::hex_array;

/// The vault config format version this build writes and reads.
pub const CONFIG_FORMAT_VERSION: u32 = 1;
/// Default block size: 64 KiB (0.024% tag overhead).
pub const DEFAULT_BLOCK_SIZE: u32 = 65536;

const INFO_GENERATION_WRAP: &[u8] = b"s3cryptfs v1 generation wrap";
const INFO_CONFIG_MAC: &[u8] = b"s3cryptfs v1 config mac";
/// HKDF info of the key of a machine's local attribute cache of the vault.
const INFO_LOCAL_CACHE: &[u8] = b"s3cryptfs v1 local attribute cache";
const MAC_DOMAIN: &[u8] = b"s3cryptfs v1 config";
/// Tag of the config counter in the MAC input (only when the counter is above 0).
const MAC_COUNTER_TAG: &[u8] = b"counter";
/// Appended to the MAC input of a config whose `attribute_records` marker is true.
const MAC_ATTRIBUTE_RECORDS: &[u8] = b"attribute records";
/// Appended to the MAC input of a config whose `encrypted_names` marker is true.
const MAC_ENCRYPTED_NAMES: &[u8] = b"encrypted names";

const WRONG_SECRET: &str = "the key file or passphrase does not unlock this vault";

/// One key generation: its 32-byte key, AES-KW-wrapped under the generation-wrap key derived
/// from the VMK.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenerationEntry {
    pub generation: u32,
    #[serde(with = "hex_array")]
    pub wrapped_key: [u8; WRAPPED_KEY_LEN],
}

fn generation_wrap_key(vmk: &[u8; 32], vault_id: &[u8; 16]) -> SecretKey {
    kdf::hkdf_sha256(vmk, vault_id, &[INFO_GENERATION_WRAP])
}

fn config_mac_key(vmk: &[u8; 32], vault_id: &[u8; 16]) -> SecretKey {
    kdf::hkdf_sha256(vmk, vault_id, &[INFO_CONFIG_MAC])
}

/// The vault config object (`PREFIX/.s3cryptfs/config`), serialized as JSON.
///
/// Field names are stable (docs/FORMAT.md): `format_version`, `vault_id` (32 hex digits),
/// `block_size`, `current_generation`, `generations` (`generation`, `wrapped_key`), `slots`
/// (`kind` = `key_file` | `passphrase`, `label`, `salt`, argon2 costs, `wrapped_vmk`),
/// `config_counter` (absent when 0), `mac`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaultConfig {
    format_version: u32,
    #[serde(with = "hex_array")]
    vault_id: [u8; 16],
    block_size: u32,
    current_generation: u32,
    generations: Vec<GenerationEntry>,
    slots: Vec<KeySlot>,
    /// Raised by one at every change of the config, so that a machine that saw a newer config
    /// can refuse an older one put back (`vault::rollback`). Configs written before it existed
    /// have none: 0, absent from the JSON and from the MAC input.
    #[serde(default, skip_serializing_if = "is_zero")]
    config_counter: u64,
    /// Every object of this vault carries an attribute record (docs/FORMAT.md §2c): one
    /// without is refused. Absent (false) in vaults made before records existed; in the MAC
    /// input only when true, so their configs still verify.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    attribute_records: bool,
    /// File and directory names are stored encrypted (docs/FORMAT.md §9). Absent (false):
    /// plaintext names, as vaults made before encrypted names and `init --plain-names` store
    /// them. In the MAC input only when true, so the bucket's owner cannot switch it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    encrypted_names: bool,
    #[serde(with = "hex_array")]
    mac: [u8; 32],
}

impl VaultConfig {
    /// Most key slots a config may hold (`key add` stops there; a bigger config is refused
    /// before any slot is tried, since a hostile one could hold thousands of argon2 runs).
    pub const MAX_SLOTS: usize = 32;

    /// A new vault with a random vault id, key generation 1 and one slot for `secret`
    /// (passphrases use [`PassphraseParams::default`]).
    pub fn create(secret: &Secret, block_size: u32) -> CryptoResult<(VaultConfig, VaultKeys)> {
        Self::create_with_params(secret, block_size, PassphraseParams::default())
    }

    /// [`VaultConfig::create`] with chosen argon2id costs for a passphrase slot (tests use
    /// [`PassphraseParams::INSECURE_FOR_TESTS`]). Names stay plaintext: `s3cryptfs init`
    /// chooses with [`VaultConfig::create_with_names`] (encrypted unless `--plain-names`).
    pub fn create_with_params(
        secret: &Secret,
        block_size: u32,
        params: PassphraseParams,
    ) -> CryptoResult<(VaultConfig, VaultKeys)> {
        Self::create_with_names(secret, block_size, params, false)
    }

    /// [`VaultConfig::create_with_params`] with encrypted (`true`, the default of new vaults)
    /// or plaintext names (`init --plain-names`).
    pub fn create_with_names(
        secret: &Secret,
        block_size: u32,
        params: PassphraseParams,
        encrypted_names: bool,
    ) -> CryptoResult<(VaultConfig, VaultKeys)> {
        let vault_id = kdf::random_bytes::<16>()?;
        let vmk = kdf::random_key()?;
        let generation_key = kdf::random_key()?;
        let slot_salt = kdf::random_bytes::<32>()?;
        let (mut config, mut keys) = Self::create_from_parts(
            secret,
            params,
            slot_salt,
            vault_id,
            &vmk,
            &generation_key,
            block_size,
        )?;
        // Every object of a new vault carries an attribute record from the start. Part of
        // creating the config, not a change of it: the config counter stays 0.
        config.attribute_records = true;
        config.encrypted_names = encrypted_names;
        config.mac = config.compute_mac(&vmk);
        keys.attribute_records = true;
        keys.encrypted_names = encrypted_names;
        Ok((config, keys))
    }

    /// Test-vector seam: a vault from fixed material, without the `attribute_records` marker
    /// (so the vectors of docs/FORMAT.md keep their bytes). Never use outside tests.
    #[doc(hidden)]
    pub fn create_from_parts(
        secret: &Secret,
        params: PassphraseParams,
        slot_salt: [u8; 32],
        vault_id: [u8; 16],
        vmk: &[u8; 32],
        generation_key: &[u8; 32],
        block_size: u32,
    ) -> CryptoResult<(VaultConfig, VaultKeys)> {
        check_block_size(block_size)?;
        let slot = KeySlot::seal(secret, "initial", params, slot_salt, vmk, &vault_id)?;
        let mut config = VaultConfig {
            format_version: CONFIG_FORMAT_VERSION,
            vault_id,
            block_size,
            current_generation: 1,
            generations: vec![GenerationEntry {
                generation: 1,
                wrapped_key: kdf::wrap_key(&generation_wrap_key(vmk, &vault_id), generation_key)?,
            }],
            slots: vec![slot],
            config_counter: 0,
            attribute_records: false,
            encrypted_names: false,
            mac: [0u8; 32],
        };
        config.mac = config.compute_mac(vmk);
        let keys =
            VaultKeys::from_raw_parts(vault_id, block_size, 1, vec![(1, *generation_key)], *vmk)?;
        Ok((config, keys))
    }

    /// Pretty-printed JSON.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self)
            // Serializing plain structs of integers, strings and vectors cannot fail.
            .expect("VaultConfig serializes to JSON");
        out.push(b'\n');
        out
    }

    /// Parses and sanity-checks a config (the MAC is checked by [`VaultConfig::unlock`],
    /// which has the key for it).
    pub fn from_bytes(bytes: &[u8]) -> CryptoResult<VaultConfig> {
        #[derive(Deserialize)]
        struct VersionOnly {
            format_version: u32,
        }
        let version: VersionOnly = serde_json::from_slice(bytes).map_err(|e| {
            CryptoError::Unsupported(format!("vault config is not s3cryptfs config JSON: {e}"))
        })?;
        if version.format_version != CONFIG_FORMAT_VERSION {
            return Err(CryptoError::Unsupported(format!(
                "vault config format_version {} (this build reads {CONFIG_FORMAT_VERSION})",
                version.format_version
            )));
        }
        let config: VaultConfig = serde_json::from_slice(bytes)
            .map_err(|e| CryptoError::Corrupt(format!("vault config: {e}")))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> CryptoResult<()> {
        let bad = |msg: String| Err(CryptoError::Corrupt(format!("vault config: {msg}")));
        if self.format_version != CONFIG_FORMAT_VERSION {
            return Err(CryptoError::Unsupported(format!(
                "vault config format_version {} (this build reads {CONFIG_FORMAT_VERSION})",
                self.format_version
            )));
        }
        if !is_valid_block_size(self.block_size) {
            return bad(format!(
                "block_size {} is not a power of two in 4096..=1048576",
                self.block_size
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for g in &self.generations {
            if g.generation == 0 || !seen.insert(g.generation) {
                return bad(format!(
                    "generation {} is zero or listed twice",
                    g.generation
                ));
            }
        }
        if !seen.contains(&self.current_generation) {
            return bad(format!(
                "current_generation {} is not among the generations",
                self.current_generation
            ));
        }
        if self.slots.is_empty() {
            return bad("no key slots".into());
        }
        if self.slots.len() > Self::MAX_SLOTS {
            return bad(format!(
                "{} key slots, more than the {} a vault may hold",
                self.slots.len(),
                Self::MAX_SLOTS
            ));
        }
        for (i, slot) in self.slots.iter().enumerate() {
            slot.validate(i)?;
        }
        Ok(())
    }

    /// `WrongKey` when no slot opens with `secret`.
    pub fn unlock(&self, secret: &Secret) -> CryptoResult<VaultKeys> {
        self.validate()?;
        let mut vmk = None;
        // A KMS slot that fails is reported only if no other slot opens: while a vault moves
        // to a new KMS key, the old key may already be disabled.
        let mut kms_error = None;
        for slot in &self.slots {
            match slot.open(secret, &self.vault_id) {
                Ok(Some(k)) => {
                    vmk = Some(k);
                    break;
                }
                Ok(None) => {}
                Err(e @ CryptoError::Kms { .. }) => {
                    kms_error.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        let Some(vmk) = vmk else {
            if let Some(e) = kms_error {
                return Err(e);
            }
            let has_kind = self.slots.iter().any(|s| s.takes(secret));
            return Err(CryptoError::WrongKey(if has_kind {
                WRONG_SECRET.to_owned()
            } else {
                format!("{WRONG_SECRET} (it has no {} slot)", secret.kind())
            }));
        };
        self.verify_mac(&vmk)?;
        let wrap = generation_wrap_key(&vmk, &self.vault_id);
        let mut generations = Vec::with_capacity(self.generations.len());
        for g in &self.generations {
            let key = kdf::unwrap_key(&wrap, &g.wrapped_key).ok_or_else(|| {
                CryptoError::Corrupt(format!(
                    "vault config: key of generation {} does not unwrap under the vault master key",
                    g.generation
                ))
            })?;
            generations.push((g.generation, key));
        }
        Ok(VaultKeys {
            vault_id: self.vault_id,
            block_size: self.block_size,
            current_generation: self.current_generation,
            generations: generations.into_iter().collect(),
            vmk,
            attribute_records: self.attribute_records,
            encrypted_names: self.encrypted_names,
        })
    }

    pub fn format_version(&self) -> u32 {
        self.format_version
    }

    pub fn vault_id(&self) -> [u8; 16] {
        self.vault_id
    }

    pub fn block_size(&self) -> u32 {
        self.block_size
    }

    pub fn current_generation(&self) -> u32 {
        self.current_generation
    }

    /// Generation numbers, ascending as stored.
    pub fn generations(&self) -> Vec<u32> {
        self.generations.iter().map(|g| g.generation).collect()
    }

    pub fn slots(&self) -> &[KeySlot] {
        &self.slots
    }

    /// The config counter: 0 for a config never changed since `init` (or written before the
    /// counter existed), raised by one at every change.
    pub fn config_counter(&self) -> u64 {
        self.config_counter
    }

    /// After a change: raise the config counter and MAC the result under `vmk`. Every method
    /// that changes the config ends with this, so no change leaves the counter where it was.
    fn changed(&mut self, vmk: &[u8; 32]) {
        // 2^64 changes cannot happen; saturating keeps the counter from ever going down.
        self.config_counter = self.config_counter.saturating_add(1);
        self.mac = self.compute_mac(vmk);
    }

    /// Whether every object must carry an attribute record (docs/FORMAT.md §2c, §6).
    pub fn attribute_records(&self) -> bool {
        self.attribute_records
    }

    /// Whether names are stored encrypted (docs/FORMAT.md §9).
    pub fn encrypted_names(&self) -> bool {
        self.encrypted_names
    }

    /// Mark the vault as one whose every object carries an attribute record (after `upgrade`
    /// added them), and re-MAC. `keys` must be this vault's unlocked keys.
    pub fn set_attribute_records(&mut self, keys: &mut VaultKeys) -> CryptoResult<()> {
        self.check_keys(keys)?;
        self.attribute_records = true;
        self.changed(&keys.vmk);
        keys.attribute_records = true;
        Ok(())
    }

    /// Adds a slot that `secret` opens (passphrases with default argon2id costs); returns its
    /// index. `keys` must be this vault's unlocked keys.
    pub fn add_slot(
        &mut self,
        keys: &VaultKeys,
        secret: &Secret,
        label: &str,
    ) -> CryptoResult<usize> {
        self.add_slot_with_params(keys, secret, label, PassphraseParams::default())
    }

    pub fn add_slot_with_params(
        &mut self,
        keys: &VaultKeys,
        secret: &Secret,
        label: &str,
        params: PassphraseParams,
    ) -> CryptoResult<usize> {
        self.check_keys(keys)?;
        if self.slots.len() >= Self::MAX_SLOTS {
            return Err(CryptoError::InvalidKeyMaterial(format!(
                "the vault already has {} key slots, the most it may hold; remove one first",
                self.slots.len()
            )));
        }
        let salt = kdf::random_bytes::<32>()?;
        let slot = KeySlot::seal(secret, label, params, salt, &keys.vmk, &self.vault_id)?;
        self.slots.push(slot);
        self.changed(&keys.vmk);
        Ok(self.slots.len() - 1)
    }

    /// Removes slot `index`; refuses to remove the last one (that would lock the vault for
    /// good).
    pub fn remove_slot(&mut self, keys: &VaultKeys, index: usize) -> CryptoResult<()> {
        self.check_keys(keys)?;
        if index >= self.slots.len() {
            return Err(CryptoError::InvalidKeyMaterial(format!(
                "no key slot {index} (the vault has {})",
                self.slots.len()
            )));
        }
        if self.slots.len() == 1 {
            return Err(CryptoError::InvalidKeyMaterial(
                "refusing to remove the only key slot: nothing could unlock the vault".into(),
            ));
        }
        self.slots.remove(index);
        self.changed(&keys.vmk);
        Ok(())
    }

    /// Adds a new random key generation, makes it current (in the config and in `keys`) and
    /// returns its number. Objects sealed under older generations stay readable.
    pub fn add_generation(&mut self, keys: &mut VaultKeys) -> CryptoResult<u32> {
        self.check_keys(keys)?;
        let max = self
            .generations
            .iter()
            .map(|g| g.generation)
            .max()
            .unwrap_or(0);
        let generation = max.checked_add(1).ok_or_else(|| {
            CryptoError::InvalidKeyMaterial("no key generation numbers left".into())
        })?;
        let key = kdf::random_key()?;
        let wrapped_key = kdf::wrap_key(&generation_wrap_key(&keys.vmk, &self.vault_id), &key)?;
        self.generations.push(GenerationEntry {
            generation,
            wrapped_key,
        });
        self.current_generation = generation;
        self.changed(&keys.vmk);
        keys.generations.insert(generation, key);
        keys.current_generation = generation;
        Ok(generation)
    }

    /// Whether this config is MAC'd under the vault master key `keys` hold (the config of a
    /// vault open with `keys`, re-read later): `WrongKey` for another vault, `Corrupt` for a
    /// MAC mismatch.
    pub fn verify_with(&self, keys: &VaultKeys) -> CryptoResult<()> {
        self.validate()?;
        self.check_keys(keys)
    }

    fn check_keys(&self, keys: &VaultKeys) -> CryptoResult<()> {
        if keys.vault_id != self.vault_id {
            return Err(CryptoError::WrongKey(
                "these keys belong to another vault".into(),
            ));
        }
        self.verify_mac(&keys.vmk)
    }

    fn verify_mac(&self, vmk: &[u8; 32]) -> CryptoResult<()> {
        if kdf::ct_eq(&self.compute_mac(vmk), &self.mac) {
            Ok(())
        } else {
            Err(CryptoError::Corrupt(
                "vault config MAC mismatch: the config was modified by someone without the \
                 vault key"
                    .into(),
            ))
        }
    }

    /// HMAC-SHA256 over a fixed binary encoding of every field but `mac` (docs/FORMAT.md).
    fn compute_mac(&self, vmk: &[u8; 32]) -> [u8; 32] {
        let mut m = Vec::with_capacity(256);
        m.extend_from_slice(MAC_DOMAIN);
        m.extend_from_slice(&self.format_version.to_be_bytes());
        m.extend_from_slice(&self.vault_id);
        m.extend_from_slice(&self.block_size.to_be_bytes());
        m.extend_from_slice(&self.current_generation.to_be_bytes());
        m.extend_from_slice(&(self.generations.len() as u64).to_be_bytes());
        for g in &self.generations {
            m.extend_from_slice(&g.generation.to_be_bytes());
            m.extend_from_slice(&g.wrapped_key);
        }
        m.extend_from_slice(&(self.slots.len() as u64).to_be_bytes());
        for s in &self.slots {
            s.mac_input(&mut m);
        }
        if self.config_counter != 0 {
            m.extend_from_slice(MAC_COUNTER_TAG);
            m.extend_from_slice(&self.config_counter.to_be_bytes());
        }
        if self.attribute_records {
            m.extend_from_slice(MAC_ATTRIBUTE_RECORDS);
        }
        if self.encrypted_names {
            m.extend_from_slice(MAC_ENCRYPTED_NAMES);
        }
        kdf::hmac_sha256(&config_mac_key(vmk, &self.vault_id), &m)
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn check_block_size(block_size: u32) -> CryptoResult<()> {
    if is_valid_block_size(block_size) {
        Ok(())
    } else {
        Err(CryptoError::InvalidKeyMaterial(format!(
            "block size {block_size} is not a power of two from 4096 (4 KiB) to 1048576 (1 MiB)"
        )))
    }
}

/// Unlocked key material of a vault; zeroized on drop (a clone too: each copy of a key is
/// zeroizing memory of its own).
#[derive(Clone)]
pub struct VaultKeys {
    vault_id: [u8; 16],
    block_size: u32,
    current_generation: u32,
    generations: BTreeMap<u32, SecretKey>,
    vmk: SecretKey,
    /// The config's `attribute_records` marker: objects without a record are refused.
    attribute_records: bool,
    /// The config's `encrypted_names` marker.
    encrypted_names: bool,
}

impl VaultKeys {
    /// Whether the vault requires an attribute record on every object (its config carries the
    /// MAC'd `attribute_records` marker). Without it, objects without a record are read with
    /// the unauthenticated attributes of their plaintext metadata.
    pub fn requires_attribute_records(&self) -> bool {
        self.attribute_records
    }

    /// Keys that do (or do not) require attribute records: tests of vaults made before
    /// records existed. The vault config is what says it for a real vault.
    #[doc(hidden)]
    pub fn with_attribute_records(mut self, required: bool) -> VaultKeys {
        self.attribute_records = required;
        self
    }

    /// Whether the vault stores names encrypted (docs/FORMAT.md §9).
    pub fn encrypted_names(&self) -> bool {
        self.encrypted_names
    }

    /// The name key when the vault stores names encrypted (its config carries the MAC'd
    /// `encrypted_names` marker); `None` for plaintext names.
    pub fn name_cipher(&self) -> Option<NameCipher> {
        self.encrypted_names
            .then(|| NameCipher::derive(&self.vmk, &self.vault_id))
    }

    /// Keys of a vault with encrypted (or plaintext) names: tests. The vault config is what
    /// says it for a real vault.
    #[doc(hidden)]
    pub fn with_encrypted_names(mut self, encrypted: bool) -> VaultKeys {
        self.encrypted_names = encrypted;
        self
    }

    pub fn vault_id(&self) -> [u8; 16] {
        self.vault_id
    }

    /// The key of this machine's attribute cache of the vault (`fs/attr_cache.rs`): it names
    /// the cache's entries and authenticates its file. Never stored.
    pub(crate) fn local_cache_key(&self) -> SecretKey {
        kdf::hkdf_sha256(&*self.vmk, &self.vault_id, &[INFO_LOCAL_CACHE])
    }

    pub fn block_size(&self) -> u32 {
        self.block_size
    }

    pub fn current_generation(&self) -> u32 {
        self.current_generation
    }

    /// Generation numbers whose keys are held, ascending.
    pub fn generations(&self) -> Vec<u32> {
        self.generations.keys().copied().collect()
    }

    pub(crate) fn generation_key(&self, generation: u32) -> Option<&[u8; 32]> {
        self.generations.get(&generation).map(|k| &**k)
    }

    pub(crate) fn generation_list(&self) -> String {
        self.generations
            .keys()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Test-vector seam: keys from fixed material. Never use outside tests.
    #[doc(hidden)]
    pub fn from_raw_parts(
        vault_id: [u8; 16],
        block_size: u32,
        current_generation: u32,
        generations: Vec<(u32, [u8; 32])>,
        vmk: [u8; 32],
    ) -> CryptoResult<VaultKeys> {
        check_block_size(block_size)?;
        let generations: BTreeMap<u32, SecretKey> = generations
            .into_iter()
            .map(|(g, k)| (g, Zeroizing::new(k)))
            .collect();
        if !generations.contains_key(&current_generation) {
            return Err(CryptoError::InvalidKeyMaterial(format!(
                "current generation {current_generation} has no key"
            )));
        }
        Ok(VaultKeys {
            vault_id,
            block_size,
            current_generation,
            generations,
            vmk: Zeroizing::new(vmk),
            attribute_records: false,
            encrypted_names: false,
        })
    }
}

impl std::fmt::Debug for VaultKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultKeys")
            .field("vault_id", &hex::encode(self.vault_id))
            .field("block_size", &self.block_size)
            .field("current_generation", &self.current_generation)
            .field("generations", &self.generations.keys().collect::<Vec<_>>())
            .field("attribute_records", &self.attribute_records)
            .field("encrypted_names", &self.encrypted_names)
            .finish_non_exhaustive()
    }
}

// Slot replacement, generation retirement: `key passwd` and `key rotate --retire`.
#[path = "keys_admin.rs"]
mod admin;

#[cfg(test)]
#[path = "keys_tests.rs"]
mod tests;
