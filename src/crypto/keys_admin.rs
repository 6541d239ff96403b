//! Changing a vault's keys: which slot a secret opens, replacing a slot's secret (`key
//! passwd`), retiring a key generation, and key sets without a generation (to prove that
//! nothing still needs it before it is retired).
//!
//! A child of `keys` so it can reach the config's private fields; every change raises the
//! config counter and re-MACs the config under the VMK (`changed`), exactly as `add_slot` and
//! `add_generation` do.

use std::collections::BTreeMap;

use super::super::error::{CryptoError, CryptoResult};
use super::super::kdf::{self, PassphraseParams, SecretKey};
use super::{KeySlot, Secret, VaultConfig, VaultKeys};

impl VaultConfig {
    /// The index of the first slot `secret` opens, or `None`. (A KMS client remembers its
    /// answers, so after an unlock this asks KMS nothing more.)
    pub fn slot_index_for(&self, secret: &Secret) -> CryptoResult<Option<usize>> {
        for (i, slot) in self.slots.iter().enumerate() {
            match slot.open(secret, &self.vault_id) {
                Ok(Some(_)) => return Ok(Some(i)),
                // A KMS slot KMS refuses (e.g. an old, disabled key) is not the one.
                Ok(None) | Err(CryptoError::Kms { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// Replaces slot `index` with one that `new_secret` opens, keeping its label and position
    /// (`key passwd`). A passphrase slot keeps its argon2id costs when the new secret is a
    /// passphrase too; other changes use the defaults.
    pub fn replace_slot_secret(
        &mut self,
        keys: &VaultKeys,
        index: usize,
        new_secret: &Secret,
    ) -> CryptoResult<()> {
        self.replace_slot_secret_with_params(keys, index, new_secret, None)
    }

    /// [`VaultConfig::replace_slot_secret`] with chosen argon2id costs (tests use cheap ones).
    pub fn replace_slot_secret_with_params(
        &mut self,
        keys: &VaultKeys,
        index: usize,
        new_secret: &Secret,
        params: Option<PassphraseParams>,
    ) -> CryptoResult<()> {
        self.check_keys(keys)?;
        let Some(old) = self.slots.get(index) else {
            return Err(CryptoError::InvalidKeyMaterial(format!(
                "no key slot {index} (the vault has {})",
                self.slots.len()
            )));
        };
        let params = params.unwrap_or(match old {
            KeySlot::Passphrase {
                m_cost_kib,
                t_cost,
                p_cost,
                ..
            } => PassphraseParams {
                m_cost_kib: *m_cost_kib,
                t_cost: *t_cost,
                p_cost: *p_cost,
            },
            KeySlot::KeyFile { .. } | KeySlot::Kms { .. } => PassphraseParams::default(),
        });
        let label = old.label().to_owned();
        let slot = KeySlot::seal(
            new_secret,
            &label,
            params,
            kdf::random_bytes::<32>()?,
            &keys.vmk,
            &self.vault_id,
        )?;
        self.slots[index] = slot;
        self.changed(&keys.vmk);
        Ok(())
    }

    /// Removes key generation `generation` from the config and from `keys`. Refuses the
    /// current generation. The caller must first make sure no object needs it (see
    /// [`VaultKeys::without_generation`]): objects whose only wrap uses it become unreadable.
    pub fn remove_generation(&mut self, keys: &mut VaultKeys, generation: u32) -> CryptoResult<()> {
        self.check_keys(keys)?;
        if generation == self.current_generation {
            return Err(CryptoError::InvalidKeyMaterial(format!(
                "generation {generation} is the current generation; rotate to a new one first"
            )));
        }
        let Some(pos) = self
            .generations
            .iter()
            .position(|g| g.generation == generation)
        else {
            return Err(CryptoError::InvalidKeyMaterial(format!(
                "the vault has no key generation {generation} (it has {})",
                keys.generation_list()
            )));
        };
        self.generations.remove(pos);
        self.changed(&keys.vmk);
        keys.generations.remove(&generation);
        Ok(())
    }
}

impl VaultKeys {
    /// A copy of these keys without generation `generation` (which must not be the current
    /// one): what the vault would hold after retiring it.
    pub fn without_generation(&self, generation: u32) -> CryptoResult<VaultKeys> {
        if generation == self.current_generation {
            return Err(CryptoError::InvalidKeyMaterial(format!(
                "generation {generation} is the current generation"
            )));
        }
        let generations: BTreeMap<u32, SecretKey> = self
            .generations
            .iter()
            .filter(|(g, _)| **g != generation)
            .map(|(g, k)| (*g, k.clone()))
            .collect();
        Ok(VaultKeys {
            vault_id: self.vault_id,
            block_size: self.block_size,
            current_generation: self.current_generation,
            generations,
            vmk: self.vmk.clone(),
            attribute_records: self.attribute_records,
            encrypted_names: self.encrypted_names,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    fn key(b: u8) -> Secret {
        Secret::KeyFile(Zeroizing::new([b; 32]))
    }

    fn pass(s: &str) -> Secret {
        Secret::Passphrase(Zeroizing::new(s.to_owned()))
    }

    #[test]
    fn passwd_keeps_label_and_position() {
        let (mut config, keys) = VaultConfig::create_with_params(
            &pass("old"),
            4096,
            PassphraseParams::INSECURE_FOR_TESTS,
        )
        .expect("create");
        config.add_slot(&keys, &key(1), "backup").expect("add");
        assert_eq!(config.slot_index_for(&pass("old")).expect("find"), Some(0));
        assert_eq!(config.slot_index_for(&key(1)).expect("find"), Some(1));
        config
            .replace_slot_secret(&keys, 0, &pass("new"))
            .expect("passwd");
        assert_eq!(config.slots()[0].label(), "initial");
        assert!(matches!(
            config.slots()[0],
            KeySlot::Passphrase { m_cost_kib, .. }
                if m_cost_kib == PassphraseParams::INSECURE_FOR_TESTS.m_cost_kib
        ));
        assert!(config.unlock(&pass("old")).is_err());
        let reopened = VaultConfig::from_bytes(&config.to_bytes()).expect("parse");
        reopened.unlock(&pass("new")).expect("new passphrase");
        reopened.unlock(&key(1)).expect("other slot untouched");
        assert!(config.replace_slot_secret(&keys, 5, &pass("x")).is_err());
    }

    #[test]
    fn retiring_generations() {
        let (mut config, mut keys) = VaultConfig::create(&key(1), 4096).expect("create");
        let g2 = config.add_generation(&mut keys).expect("rotate");
        assert!(config.remove_generation(&mut keys, g2).is_err(), "current");
        assert!(keys.without_generation(g2).is_err());
        let fewer = keys.without_generation(1).expect("without");
        assert_eq!(fewer.generations(), vec![2]);
        assert!(config.remove_generation(&mut keys, 9).is_err(), "missing");
        config.remove_generation(&mut keys, 1).expect("retire");
        assert_eq!(config.generations(), vec![2]);
        assert_eq!(keys.generations(), vec![2]);
        let reopened = VaultConfig::from_bytes(&config.to_bytes()).expect("parse");
        assert_eq!(
            reopened.unlock(&key(1)).expect("unlock").generations(),
            vec![2]
        );
    }
}
