//! Where the secret that unlocks (or creates) a vault comes from.
//!
//! The front decides the source from the flags, the config file, the environment and whether
//! there is a terminal; this module only reads it. Nothing here touches the terminal: a
//! passphrase to be asked for comes through the [`Prompt`] the front supplies, and a source
//! that cannot give anything carries the front's message, reported only when the secret is
//! needed (so a missing vault is reported before a missing key).

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::{VaultError, VaultResult};
use crate::crypto::keys::{KmsSecret, generate_key_file, read_key_file, read_passphrase_file};
use crate::crypto::{CryptoError, Secret, VaultConfig};

/// Asks the user for a passphrase with the given question (the front reads the terminal).
pub type Prompt = fn(&str) -> std::io::Result<Zeroizing<String>>;

/// What the secret is for: creating a vault (a missing key file is created, a prompted
/// passphrase is asked twice) or unlocking one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretUse {
    CreateVault,
    Unlock,
}

/// A secret to be had when it is needed.
#[derive(Clone)]
pub enum SecretSource {
    /// A 32-byte key file (mode 0600); created as a new random key for [`SecretUse::CreateVault`]
    /// when missing.
    KeyFile(PathBuf),
    /// A file holding the passphrase (mode 0600; a trailing newline is ignored).
    PassphraseFile(PathBuf),
    /// A passphrase the front already holds (e.g. from the environment).
    Passphrase(Zeroizing<String>),
    /// Ask the user, through the front's prompt.
    Ask(Prompt),
    /// No secret can be had; loading fails with this message.
    Unavailable(String),
    /// KMS opens the vault's KMS slot (`--kms`); with a key id, a new slot is sealed under it
    /// (`init --kms-key-id`, `key add --new-kms-key-id`).
    Kms(KmsSecret),
    /// No secret was named: KMS if the vault has a KMS slot ([`SecretSource::resolve_for`]),
    /// else the other source (the environment's passphrase, a prompt, or nothing).
    KmsOr(KmsSecret, Box<SecretSource>),
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::KeyFile(p) => f.debug_tuple("KeyFile").field(p).finish(),
            SecretSource::PassphraseFile(p) => f.debug_tuple("PassphraseFile").field(p).finish(),
            SecretSource::Passphrase(_) => f.write_str("Passphrase(..)"),
            SecretSource::Ask(_) => f.write_str("Ask"),
            SecretSource::Unavailable(m) => f.debug_tuple("Unavailable").field(m).finish(),
            SecretSource::Kms(k) => f.debug_tuple("Kms").field(&k.new_key_id).finish(),
            SecretSource::KmsOr(_, other) => f.debug_tuple("KmsOr").field(other).finish(),
        }
    }
}

impl SecretSource {
    /// Read the secret; `vault` names the vault in a prompt.
    pub fn load(&self, purpose: SecretUse, vault: &str) -> VaultResult<Secret> {
        match self {
            SecretSource::KeyFile(path) => {
                if purpose == SecretUse::CreateVault && !path.exists() {
                    return create_key_file(path);
                }
                Ok(read_key_file(path)?)
            }
            SecretSource::PassphraseFile(path) => Ok(read_passphrase_file(path)?),
            SecretSource::Passphrase(p) => Ok(Secret::Passphrase(p.clone())),
            SecretSource::Ask(prompt) => ask(*prompt, purpose, vault),
            SecretSource::Unavailable(message) => Err(VaultError::Passphrase(message.clone())),
            SecretSource::Kms(kms) => Ok(Secret::Kms(kms.clone())),
            // Without the vault config at hand: what was there before KMS slots.
            SecretSource::KmsOr(_, other) => other.load(purpose, vault),
        }
    }

    /// The source that unlocks the vault whose config is `config`: KMS when no secret was
    /// named and the vault has a KMS slot (so nothing is prompted for), else this one.
    pub fn resolve_for(&self, config: &VaultConfig) -> SecretSource {
        match self {
            SecretSource::KmsOr(kms, other) => {
                if config.slots().iter().any(|s| s.kms_key_id().is_some()) {
                    SecretSource::Kms(kms.clone())
                } else {
                    (**other).clone()
                }
            }
            other => other.clone(),
        }
    }

    /// Load the secret that unlocks the vault whose config is `config` ([`Self::resolve_for`]).
    pub fn load_for(&self, config: &VaultConfig, vault: &str) -> VaultResult<Secret> {
        self.resolve_for(config).load(SecretUse::Unlock, vault)
    }

    /// Whether the choice between KMS and another source waits for the vault config.
    pub fn depends_on_config(&self) -> bool {
        matches!(self, SecretSource::KmsOr(..))
    }

    /// The key file [`SecretSource::load`] will create for [`SecretUse::CreateVault`], if any.
    pub fn key_file_to_create(&self) -> Option<PathBuf> {
        match self {
            SecretSource::KeyFile(path) if !path.exists() => Some(path.clone()),
            _ => None,
        }
    }
}

fn create_key_file(path: &Path) -> VaultResult<Secret> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // e.g. ~/.config/s3cryptfs/ on first use; private like the key it will hold.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| CryptoError::Io {
                path: dir.display().to_string(),
                source,
            })?;
    }
    Ok(generate_key_file(path)?)
}

fn ask(prompt: Prompt, purpose: SecretUse, vault: &str) -> VaultResult<Secret> {
    let ask = |question: &str| {
        prompt(question).map_err(|e| {
            VaultError::Passphrase(format!("cannot read the passphrase from the terminal: {e}"))
        })
    };
    let first = ask(&format!("Passphrase for {vault}: "))?;
    if first.is_empty() {
        return Err(VaultError::Passphrase("the passphrase is empty".to_owned()));
    }
    if purpose == SecretUse::CreateVault {
        let again = ask("Repeat the passphrase: ")?;
        if *again != *first {
            return Err(VaultError::Passphrase(
                "the two passphrases differ".to_owned(),
            ));
        }
    }
    Ok(Secret::Passphrase(first))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn key_files_are_created_only_for_init() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("new/vault.key");
        let source = SecretSource::KeyFile(path.clone());
        let e = source.load(SecretUse::Unlock, "v").expect_err("missing");
        assert!(e.to_string().contains("vault.key"), "{e}");
        assert_eq!(source.key_file_to_create(), Some(path.clone()));
        source.load(SecretUse::CreateVault, "v").expect("created");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(source.key_file_to_create(), None);
        // An existing key file is used, not replaced.
        let before = std::fs::read(&path).expect("read");
        source.load(SecretUse::CreateVault, "v").expect("reused");
        assert_eq!(std::fs::read(&path).expect("read"), before);
    }

    #[test]
    fn prompted_passphrases_are_asked_twice_to_create() {
        fn same(_: &str) -> std::io::Result<Zeroizing<String>> {
            Ok(Zeroizing::new("pass".to_owned()))
        }
        fn empty(_: &str) -> std::io::Result<Zeroizing<String>> {
            Ok(Zeroizing::new(String::new()))
        }
        assert!(matches!(
            SecretSource::Ask(same).load(SecretUse::CreateVault, "v"),
            Ok(Secret::Passphrase(_))
        ));
        let e = SecretSource::Ask(empty)
            .load(SecretUse::Unlock, "v")
            .expect_err("empty");
        assert!(e.to_string().contains("empty"), "{e}");
        let e = SecretSource::Unavailable("no key".into())
            .load(SecretUse::Unlock, "v")
            .expect_err("unavailable");
        assert_eq!(e.to_string(), "no key");
    }
}
