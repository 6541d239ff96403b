//! The one step from a command line (and the config file it names) to what a command runs
//! with: settings and a secret source.
//!
//! Every command resolves the same way: the config file (`--config`, the TOML of `mount`)
//! is read, the command-line values are applied on top (flags win), the result is checked,
//! and the command's settings are taken from it. `init`, `doctor` and the tools get
//! [`VaultSettings`], `mount` [`MountSettings`] and what SIGHUP re-reads.
//!
//! The secret source is decided here too: `--key-file`, else `--passphrase-file` (either one
//! also from `[encryption]`), else `$S3CRYPTFS_PASSPHRASE`, else a prompt on the terminal.
//! It is read only when the command needs it, so a missing vault is reported before a missing
//! key, and the prompt (the only terminal code for secrets) is this module's.
//! `$S3CRYPTFS_PASSPHRASE` is taken out of the environment by `main` before anything else runs
//! ([`keep_env_passphrase`]); the secret source takes it from there.
//!
//! Once the config is resolved, and before any secret is read, the process is hardened
//! (`harden`): whether core dumps stay allowed is a setting like the others.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::{Arc, Mutex};

use zeroize::Zeroizing;

use super::error::{AppError, AppResult};
use super::harden;
use crate::cli::{GlobalArgs, MountArgs};
use crate::config::{
    ConfigResult, KmsSettings, MountConfig, MountSettings, Overrides, VaultSettings,
};
use crate::crypto::keys::KmsSecret;
use crate::mount::ReloadSource;
use crate::vault::kms::{AwsKms, KmsTarget};
use crate::vault::secret::SecretSource;

/// Environment variable a passphrase may come from.
pub const PASSPHRASE_ENV: &str = "S3CRYPTFS_PASSPHRASE";

/// `$S3CRYPTFS_PASSPHRASE` as `main` found it, until the secret source takes it.
static ENV_PASSPHRASE: Mutex<Option<OsString>> = Mutex::new(None);

/// Keep the passphrase `main` took out of the environment for [`secret_source`].
pub(super) fn keep_env_passphrase(value: Option<OsString>) {
    if let Ok(mut slot) = ENV_PASSPHRASE.lock() {
        *slot = value;
    }
}

/// The passphrase from `$S3CRYPTFS_PASSPHRASE`, taken (a second call gets nothing).
fn take_env_passphrase() -> Option<OsString> {
    ENV_PASSPHRASE.lock().ok().and_then(|mut slot| slot.take())
}

/// The config file at `path` (or none) with `overrides` applied and checked.
pub fn config(path: Option<&Path>, overrides: &Overrides) -> ConfigResult<MountConfig> {
    path.map_or_else(|| Ok(MountConfig::default()), MountConfig::load)?
        .merge(overrides)
}

/// Settings and secret source of `init`, `doctor` and the tools; `command` names the command
/// in messages.
pub fn vault(
    config_path: Option<&Path>,
    overrides: &Overrides,
    command: &str,
) -> AppResult<(VaultSettings, SecretSource)> {
    let config = config(config_path, overrides)?;
    harden::apply(config.logging.allow_core_dumps);
    let settings = config.vault_settings(command)?;
    let secret = secret_source(
        settings.key_file.as_deref(),
        settings.passphrase_file.as_deref(),
        &settings.kms,
    );
    Ok((settings, secret))
}

/// What `init` runs with: the settings, the secret of the vault's first slot, and with
/// `--kms-key-id` plus a key or passphrase file, that file as a second, offline slot.
pub fn init(
    config_path: Option<&Path>,
    overrides: &Overrides,
) -> AppResult<(VaultSettings, SecretSource, Option<SecretSource>)> {
    let (settings, secret) = vault(config_path, overrides, "init")?;
    let Some(key_id) = settings.kms.key_id.clone() else {
        if settings.kms.unlock {
            return Err(AppError::Usage(
                "init through KMS needs the key to create the vault under: give --kms-key-id \
                 KEY_ID (or [encryption] kms_key_id)"
                    .into(),
            ));
        }
        return Ok((settings, secret, None));
    };
    let recovery = match (&settings.key_file, &settings.passphrase_file) {
        (Some(path), _) => Some(SecretSource::KeyFile(path.clone())),
        (None, Some(path)) => Some(SecretSource::PassphraseFile(path.clone())),
        (None, None) => None,
    };
    let kms = SecretSource::Kms(kms_secret(&settings.kms, Some(key_id)));
    Ok((settings, kms, recovery))
}

/// A KMS client for `kms`'s endpoint and region; `new_key_id` seals a new slot.
pub fn kms_secret(kms: &KmsSettings, new_key_id: Option<String>) -> KmsSecret {
    KmsSecret {
        client: Arc::new(AwsKms::new(KmsTarget {
            endpoint: kms.endpoint.clone(),
            region: kms.region.clone(),
        })),
        new_key_id,
    }
}

/// Whether `mount` may stay in the foreground.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detach {
    /// As `-f` / `[mount] foreground` say.
    AsAsked,
    /// Always detach: mount(8) waits for its helper to exit.
    Always,
}

/// Everything `mount` runs with.
#[derive(Debug)]
pub struct MountPlan {
    pub settings: MountSettings,
    pub secret: SecretSource,
    pub reload: ReloadSource,
}

/// Load, merge and resolve the settings of `mount`, without touching the mount point, the
/// secret or the store.
pub fn mount(global: &GlobalArgs, args: &MountArgs, detach: Detach) -> AppResult<MountPlan> {
    let overrides = args.overrides(global);
    let config = config(args.config.as_deref(), &overrides)?;
    harden::apply(config.logging.allow_core_dumps);
    let mut s = config.mount_settings()?;
    if detach == Detach::Always {
        s.foreground = false;
    }
    // The daemon changes its directory to /, so relative paths are resolved now.
    s.staging_dir = std::path::absolute(&s.staging_dir).map_err(AppError::io(format!(
        "staging dir {}",
        s.staging_dir.display()
    )))?;
    if let Some(dir) = &s.attr_cache_dir {
        s.attr_cache_dir = Some(
            std::path::absolute(dir)
                .map_err(AppError::io(format!("attribute cache {}", dir.display())))?,
        );
    }
    if let Some(dir) = &s.rollback.state_dir {
        s.rollback.state_dir = Some(
            std::path::absolute(dir)
                .map_err(AppError::io(format!("state dir {}", dir.display())))?,
        );
    }
    if let Some(file) = &s.log_file {
        s.log_file = Some(
            std::path::absolute(file)
                .map_err(AppError::io(format!("log file {}", file.display())))?,
        );
    }
    let config_path = match &args.config {
        Some(p) => {
            Some(std::path::absolute(p).map_err(AppError::io(format!("config {}", p.display())))?)
        }
        None => None,
    };
    let secret = secret_source(s.key_file.as_deref(), s.passphrase_file.as_deref(), &s.kms);
    let reload = ReloadSource {
        config_path,
        overrides,
        started_with: config,
        log_file: if s.foreground {
            None
        } else {
            s.log_file.clone()
        },
    };
    Ok(MountPlan {
        settings: s,
        secret,
        reload,
    })
}

/// The secret that unlocks (or creates) a vault: `key_file`, else `passphrase_file`, else KMS
/// when asked for (`--kms`, `[encryption] kms` or `kms_key_id`), else
/// `$S3CRYPTFS_PASSPHRASE`, else KMS if the vault has a KMS slot and otherwise a prompt when
/// stdin is a terminal.
pub fn secret_source(
    key_file: Option<&Path>,
    passphrase_file: Option<&Path>,
    kms: &KmsSettings,
) -> SecretSource {
    if let Some(path) = key_file {
        return SecretSource::KeyFile(path.to_path_buf());
    }
    if let Some(path) = passphrase_file {
        return SecretSource::PassphraseFile(path.to_path_buf());
    }
    if kms.unlock {
        return SecretSource::Kms(kms_secret(kms, None));
    }
    if let Some(value) = take_env_passphrase() {
        return match value.into_string() {
            Ok(v) if v.is_empty() => {
                SecretSource::Unavailable(format!("${PASSPHRASE_ENV} is set but empty"))
            }
            Ok(v) => SecretSource::Passphrase(Zeroizing::new(v)),
            Err(v) => {
                drop(Zeroizing::new(v.into_encoded_bytes()));
                SecretSource::Unavailable(format!("${PASSPHRASE_ENV} is not valid UTF-8"))
            }
        };
    }
    let otherwise = if std::io::stdin().is_terminal() {
        SecretSource::Ask(prompt)
    } else {
        SecretSource::Unavailable(format!(
            "no key or passphrase, and the vault has no KMS slot: give --key-file or \
             --passphrase-file, set ${PASSPHRASE_ENV}, or run on a terminal to be asked"
        ))
    };
    SecretSource::KmsOr(kms_secret(kms, None), Box::new(otherwise))
}

/// The *new* secret of `key add` / `key passwd`: `new_key_file` (created as a new random key
/// if missing), else `new_passphrase_file`, else a passphrase asked twice on the terminal.
/// `$S3CRYPTFS_PASSPHRASE` is never used here: it holds the secret that unlocks the vault.
pub fn new_secret_source(
    new_key_file: Option<&Path>,
    new_passphrase_file: Option<&Path>,
) -> SecretSource {
    if let Some(path) = new_key_file {
        return SecretSource::KeyFile(path.to_path_buf());
    }
    if let Some(path) = new_passphrase_file {
        return SecretSource::PassphraseFile(path.to_path_buf());
    }
    if !std::io::stdin().is_terminal() {
        return SecretSource::Unavailable(
            "no new key or passphrase: give --new-key-file or --new-passphrase-file, or run on \
             a terminal to be asked"
                .to_owned(),
        );
    }
    SecretSource::Ask(prompt)
}

/// Ask on the terminal, without echo.
fn prompt(question: &str) -> std::io::Result<Zeroizing<String>> {
    rpassword::prompt_password(question).map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_win_over_the_environment() {
        let kms = KmsSettings::default();
        let s = secret_source(Some(Path::new("/k")), Some(Path::new("/p")), &kms);
        assert!(matches!(s, SecretSource::KeyFile(p) if p == Path::new("/k")));
        let s = secret_source(None, Some(Path::new("/p")), &kms);
        assert!(matches!(s, SecretSource::PassphraseFile(p) if p == Path::new("/p")));
        let s = new_secret_source(None, Some(Path::new("/n")));
        assert!(matches!(s, SecretSource::PassphraseFile(p) if p == Path::new("/n")));
    }

    #[test]
    fn tools_take_their_vault_from_a_config_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vault.toml");
        std::fs::write(
            &path,
            "[store]\nurl = \"file:///srv/vault\"\n[encryption]\nkey_file = \"/k\"\n",
        )
        .expect("write");
        let (s, secret) = vault(Some(&path), &Overrides::default(), "ls").expect("resolved");
        assert_eq!(s.url, "file:///srv/vault");
        assert!(matches!(secret, SecretSource::KeyFile(p) if p == Path::new("/k")));
        // Flags win over the file.
        let o = Overrides {
            store_url: Some("mem://other".into()),
            passphrase_file: Some("/p".into()),
            ..Overrides::default()
        };
        let (s, secret) = vault(Some(&path), &o, "ls").expect("resolved");
        assert_eq!(s.url, "mem://other");
        assert!(matches!(secret, SecretSource::PassphraseFile(_)));
        let e = vault(None, &Overrides::default(), "ls").expect_err("no url");
        assert!(e.to_string().contains("s3cryptfs ls --help"), "{e}");
    }

    /// What the systemd unit runs with for a KMS vault: a config with no secret in it.
    #[test]
    fn a_config_with_kms_unlocks_through_kms_and_flags_still_win() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vault.toml");
        let write = |enc: &str| {
            std::fs::write(
                &path,
                format!("[store]\nurl = \"s3://b/v\"\n[encryption]\n{enc}\n"),
            )
            .expect("write")
        };
        write("kms = true\nkms_endpoint = \"http://127.0.0.1:4566\"");
        let (s, secret) = vault(Some(&path), &Overrides::default(), "ls").expect("resolved");
        assert!(matches!(secret, SecretSource::Kms(ref k) if k.new_key_id.is_none()));
        assert_eq!(s.kms.endpoint.as_deref(), Some("http://127.0.0.1:4566"));
        // A kms_key_id alone means KMS too; a key file named on the command line wins.
        write("kms_key_id = \"alias/vault\"");
        let (_, secret) = vault(Some(&path), &Overrides::default(), "ls").expect("resolved");
        assert!(matches!(secret, SecretSource::Kms(_)));
        let o = Overrides {
            key_file: Some("/k".into()),
            ..Overrides::default()
        };
        let (_, secret) = vault(Some(&path), &o, "ls").expect("resolved");
        assert!(matches!(secret, SecretSource::KeyFile(_)));
        // init: the KMS key makes the first slot, a key file the offline second one.
        let (_, first, recovery) = init(Some(&path), &o).expect("init");
        assert!(
            matches!(first, SecretSource::Kms(ref k) if k.new_key_id.as_deref() == Some("alias/vault"))
        );
        assert!(matches!(recovery, Some(SecretSource::KeyFile(_))));
        // KMS and a key file in one config contradict each other.
        write("kms = true\nkey_file = \"/k\"");
        let e = vault(Some(&path), &Overrides::default(), "ls").expect_err("both");
        assert!(e.to_string().contains("encryption.kms"), "{e}");
    }
}
