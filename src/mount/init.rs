//! `s3cryptfs init`: create a vault in a store, creating its key file when asked to.
//!
//! An existing vault is refused before a key file is created or a passphrase asked for, and a
//! key file created for a vault that then fails to be written is removed again.

use super::error::{MountError, MountResult};
use super::logging;
use super::setup::{open_store, runtime};
use crate::config::VaultSettings;
use crate::crypto::PassphraseParams;
use crate::store::StoreUrl;
use crate::vault::secret::{SecretSource, SecretUse};
use crate::vault::{self, VaultError};

/// Create the vault `s` names, unlocked by what `secret` gives and, when given, by
/// `recovery` too (a second slot: the offline key of a KMS vault), with encrypted or plaintext
/// file names.
pub fn init(
    s: &VaultSettings,
    secret: &SecretSource,
    recovery: Option<&SecretSource>,
    encrypted_names: bool,
) -> MountResult<()> {
    logging::init(s.log_level, true);
    let url = s.store_url.to_string();
    if let StoreUrl::Memory { .. } = s.store_url {
        return Err(MountError::Other(format!(
            "{url}: a mem:// store lives inside one process and vanishes with it, so there is \
             nothing to initialize; `s3cryptfs mount {url} MOUNTPOINT` creates its vault itself"
        )));
    }
    let rt = runtime(1)?;
    // An existing vault is refused before a key file is created or a passphrase asked for.
    // A directory store that does not exist yet holds no vault, and is created only once the
    // secret is at hand.
    let existing = match &s.store_url {
        StoreUrl::File { path } if !path.exists() => None,
        _ => Some(open_store(&s.store_url, &s.store_options)?),
    };
    if let Some((store, prefix)) = &existing {
        if rt
            .block_on(vault::vault_exists(&**store, prefix))
            .map_err(|e| e.with_location(&url))?
        {
            return Err(VaultError::AlreadyExists { location: url }.into());
        }
    }
    let created = recovery.unwrap_or(secret).key_file_to_create();
    let secret = secret.load(SecretUse::CreateVault, &url)?;
    let recovery = match recovery {
        Some(r) => Some(r.load(SecretUse::CreateVault, &url)?),
        None => None,
    };
    let (store, prefix) = match existing {
        Some(opened) => opened,
        None => open_store(&s.store_url, &s.store_options)?,
    };
    let result = rt.block_on(async {
        match &recovery {
            Some(r) => {
                vault::init_vault_with_recovery(
                    &*store,
                    &prefix,
                    &secret,
                    r,
                    s.block_size,
                    encrypted_names,
                )
                .await
            }
            None => {
                vault::init_vault_with(
                    &*store,
                    &prefix,
                    &secret,
                    s.block_size,
                    PassphraseParams::default(),
                    encrypted_names,
                )
                .await
            }
        }
    });
    drop(secret);
    drop(recovery);
    if let Err(e) = result {
        if let Some(path) = &created {
            // It never protected anything; leaving it would suggest it did.
            let _ = std::fs::remove_file(path);
        }
        return Err(e.with_location(&url).into());
    }
    if let Some(path) = &created {
        println!(
            "created key file {} (mode 0600): keep a copy in a safe place; without it the \
             vault cannot be opened",
            path.display()
        );
    }
    println!(
        "initialized an s3cryptfs vault at {url} (block size {} bytes, {} names)",
        s.block_size,
        if encrypted_names {
            "encrypted"
        } else {
            "plaintext"
        }
    );
    if let Some(key_id) = &s.kms.key_id {
        println!(
            "it opens through the KMS key {key_id}{}",
            if created.is_some() || s.key_file.is_some() || s.passphrase_file.is_some() {
                ", and offline with the recovery key file or passphrase"
            } else {
                " only: add an offline recovery slot with `s3cryptfs key add` (docs/KEYS.md)"
            }
        );
    }
    Ok(())
}
