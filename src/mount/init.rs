//! `s3cryptfs init`: create a vault in a store, creating its key file when asked to.
//!
//! An existing vault is refused before a key file is created or a passphrase asked for, and a
//! key file created for a vault that then fails to be written is removed again.

use super::{MountError, MountResult, load_config, logging, open_store, runtime};
use crate::cli::{GlobalArgs, InitArgs};
use crate::store::StoreUrl;
use crate::vault::{self, SecretUse, VaultError};

pub(super) fn init(global: &GlobalArgs, args: &InitArgs) -> MountResult<()> {
    let config = load_config(args.config.as_deref())?.merge(&args.overrides(global))?;
    let s = config.init_settings()?;
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
    let created = vault::key_file_will_be_created(s.key_file.as_deref());
    let secret = vault::load_secret(
        s.key_file.as_deref(),
        s.passphrase_file.as_deref(),
        SecretUse::CreateVault,
        &url,
    )?;
    let (store, prefix) = match existing {
        Some(opened) => opened,
        None => open_store(&s.store_url, &s.store_options)?,
    };
    let result = rt.block_on(vault::init_vault(&*store, &prefix, &secret, s.block_size));
    drop(secret);
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
        "initialized an s3cryptfs vault at {url} (block size {} bytes)",
        s.block_size
    );
    Ok(())
}
