//! The commands that work on a vault without FUSE: key management (`key`), integrity checks
//! (`verify`), and file access for scripts and recovery (`ls`, `cat`, `get`, `put`).
//!
//! - `keycmd`: `key list|add|remove|passwd|rotate`; every config change is saved with
//!   If-Match on the ETag it was read at, so concurrent key changes cannot undo each other.
//! - `rewrap`: rewrap every object's DEK under the current generation server-side (header
//!   read, CopyObject onto itself with a metadata wrap), and the check that a generation can be
//!   retired.
//! - `verify`: walk the objects, check header, key, commitment and size (`--deep`: every
//!   block), report each problem by key.
//! - `files`: `ls`/`cat`/`get`/`put` through the file system layer (`fs::Fs`, no kernel), so
//!   they see exactly what a mount would.
//! - `progress`: a progress bar on a terminal, plain lines otherwise.
//! - `doctor`: check, before mounting, everything a mount needs, one line per check.
//!
//! A plain folder copy of a bucket (no metadata, no directory-store layout) opens read-only as
//! a [`PlainDirStore`] so `get` can recover from it.
//!
//! Every tool takes a [`Target`] (settings and secret source, resolved by the front from the
//! flags and the config file) and plain arguments; none sees the command line, and none knows
//! exit statuses: the front maps [`ToolError`] to them.

pub mod cleanup;
pub mod doctor;
pub mod files;
pub mod get;
pub mod keycmd;
pub mod progress;
pub mod put;
pub mod rewrap;
pub mod upgrade;
pub mod verify;
mod xattrs;

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;

use crate::config::{RollbackSettings, VaultSettings};
use crate::crypto::{CryptoError, Secret, VaultKeys};
use crate::fs::FsError;
use crate::store::dir::MARKER_FILE;
use crate::store::{self, DynStore, PlainDirStore, StoreError, StoreUrl};
use crate::vault::secret::SecretSource;
use crate::vault::{self, RollbackGuard, StoredConfig, VaultError};

/// What can go wrong in a tool; the front turns it into a message and an exit status.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error("store {url}: {source}")]
    Store {
        url: String,
        #[source]
        source: StoreError,
    },
    #[error("{path}: {source}")]
    Fs {
        path: String,
        #[source]
        source: FsError,
    },
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A bad argument the parser could not catch (a usage error).
    #[error("{0}")]
    Usage(String),
    /// A command that declined to act (unconfirmed, or unsafe).
    #[error("{0}")]
    Refused(String),
    /// The command ran, and found or left problems (already reported in detail).
    #[error("{0}")]
    Problems(String),
}

impl ToolError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ToolError {
        let what = what.into();
        move |source| ToolError::Io { what, source }
    }

    pub(crate) fn fs(path: &str) -> impl FnOnce(FsError) -> ToolError {
        let path = if path.is_empty() { "/" } else { path }.to_owned();
        move |source| ToolError::Fs { path, source }
    }
}

pub type ToolResult<T> = Result<T, ToolError>;

/// The vault a tool works on, as the front resolved it from the flags and the config file.
#[derive(Debug)]
pub struct Target {
    pub settings: VaultSettings,
    /// Read a `file://` folder as a plain copy of a bucket (`--plain`).
    pub plain: bool,
    /// Where the secret that unlocks the vault comes from (unused by `cleanup`).
    pub secret: SecretSource,
}

impl Target {
    /// The config rollback check of this target's settings.
    pub fn rollback_guard(&self) -> RollbackGuard {
        rollback_guard(&self.settings.rollback)
    }
}

/// The config rollback check `settings` ask for.
pub fn rollback_guard(settings: &RollbackSettings) -> RollbackGuard {
    RollbackGuard::new(settings.state_dir.clone(), settings.accept_config_rollback)
}

/// Whether a command only reads the store, or may change it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    ReadOnly,
    ReadWrite,
}

/// A store opened for a tool.
#[derive(Debug, Clone)]
pub struct OpenedStore {
    pub store: DynStore,
    pub prefix: String,
    /// The URL as the user gave it, for messages.
    pub url: String,
    /// Opened as a plain folder copy (read-only, no metadata).
    pub plain: bool,
}

/// Whether `path` looks like a plain folder copy of a vault: it has the vault config file
/// and is not a directory store.
pub fn is_plain_copy(path: &Path) -> bool {
    path.join(vault::VAULT_CONFIG_KEY).is_file() && !path.join(MARKER_FILE).exists()
}

/// Open the store `url` names. A `file://` folder is read as a plain copy when `plain` is set
/// or it looks like one ([`is_plain_copy`]); read-only commands never create a directory
/// store where none exists.
pub fn open_store(url: &str, plain: bool, access: Access) -> ToolResult<OpenedStore> {
    open_store_with(url, plain, access, &store::StoreOptions::default())
}

/// [`open_store`] with connection and SSE settings (`--endpoint`, `--sse`, ...).
pub fn open_store_with(
    url: &str,
    plain: bool,
    access: Access,
    opts: &store::StoreOptions,
) -> ToolResult<OpenedStore> {
    let parsed = StoreUrl::parse(url).map_err(|e| ToolError::Usage(e.to_string()))?;
    let store_err = |source| ToolError::Store {
        url: url.to_owned(),
        source,
    };
    if let StoreUrl::File { path } = &parsed {
        if !path.is_dir() && (access == Access::ReadOnly || plain) {
            return Err(ToolError::Usage(format!(
                "{url}: {} is not a directory",
                path.display()
            )));
        }
        if plain || is_plain_copy(path) {
            if access == Access::ReadWrite {
                return Err(ToolError::Refused(format!(
                    "{url} is a plain copy of a vault (no s3cryptfs-store.json): it opens \
                     read-only, for recovery; write to the real store instead"
                )));
            }
            let store = PlainDirStore::open(path).map_err(store_err)?;
            return Ok(OpenedStore {
                store: Arc::new(store),
                prefix: String::new(),
                url: url.to_owned(),
                plain: true,
            });
        }
    } else if plain {
        return Err(ToolError::Usage(format!(
            "--plain reads a file:///folder copy; {url} is not one"
        )));
    }
    let (store, prefix) = store::open_store(&parsed, opts).map_err(store_err)?;
    Ok(OpenedStore {
        store,
        prefix,
        url: url.to_owned(),
        plain: false,
    })
}

/// [`open_store_with`] for a resolved [`Target`].
pub fn open_target(t: &Target, access: Access) -> ToolResult<OpenedStore> {
    open_store_with(&t.settings.url, t.plain, access, &t.settings.store_options)
}

/// An unlocked vault: its config as read, its keys, and the secret that opened it (zeroized
/// on drop).
pub struct Unlocked {
    pub stored: StoredConfig,
    pub keys: VaultKeys,
    pub secret: Secret,
}

/// Read the vault config (a missing vault is reported before any secret is asked for), then
/// find the secret and unlock it (refusing a config older than one this machine has seen).
pub async fn unlock(opened: &OpenedStore, t: &Target) -> ToolResult<Unlocked> {
    let stored = vault::load_config(&*opened.store, &opened.prefix)
        .await
        .map_err(|e| e.with_location(&opened.url))?;
    let secret = t.secret.load_for(&stored.config, &opened.url)?;
    let unlocked = vault::unlock_config(&stored, &opened.prefix, &secret, &t.rollback_guard())
        .map_err(|e| e.with_location(&opened.url))?;
    Ok(Unlocked {
        stored,
        keys: unlocked,
        secret,
    })
}

/// Ask before destroying anything: `yes` skips the question; without a terminal the answer
/// is no.
pub fn confirm(question: &str, yes: bool) -> ToolResult<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(ToolError::Refused(format!(
            "{question} -- refusing: there is no terminal to confirm on; pass --yes to go ahead"
        )));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(ToolError::io("reading the answer"))?;
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(ToolError::Refused("cancelled; nothing was changed".into()))
    }
}

/// Whether `key` (a full object key) is a file object of the vault under `prefix`: not the
/// vault's own `.s3cryptfs/` objects and not a directory marker.
pub fn is_file_object(prefix: &str, key: &str) -> bool {
    let Some(rest) = key.strip_prefix(prefix) else {
        return false;
    };
    !rest.is_empty() && !rest.ends_with('/') && !rest.starts_with(".s3cryptfs/")
}

/// Whether `key` is the name object of a shortened encrypted name (docs/FORMAT.md §9): not a
/// sealed object, so the tools that rewrap, reseal or upgrade objects leave it alone.
pub fn is_name_object(keys: &VaultKeys, key: &str) -> bool {
    keys.encrypted_names()
        && matches!(
            crate::crypto::names::classify(key.rsplit('/').next().unwrap_or(key)),
            crate::crypto::names::Segment::NameObject(_)
        )
}

/// Human-readable byte count (binary units).
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_objects() {
        assert!(is_file_object("", "a/b"));
        assert!(!is_file_object("", "a/"));
        assert!(!is_file_object("", ".s3cryptfs/config"));
        assert!(is_file_object("", "x/.s3cryptfs/config"));
        assert!(is_file_object("p/", "p/a"));
        assert!(!is_file_object("p/", "q/a"));
        assert!(!is_file_object("p/", "p/"));
    }

    #[test]
    fn byte_counts() {
        assert_eq!(format_bytes(5), "5 B");
        assert_eq!(format_bytes(1536), "1.5 KiB");
        assert_eq!(format_bytes(3 << 30), "3.0 GiB");
    }

    #[test]
    fn plain_copies_are_read_only_and_detected() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join(".s3cryptfs")).expect("mkdir");
        std::fs::write(dir.path().join(".s3cryptfs/config"), b"{}").expect("write");
        let url = format!("file://{}", dir.path().display());
        let opened = open_store(&url, false, Access::ReadOnly).expect("open");
        assert!(opened.plain);
        assert!(matches!(
            open_store(&url, false, Access::ReadWrite),
            Err(ToolError::Refused(_))
        ));
        let missing = format!("file://{}/nope", dir.path().display());
        assert!(matches!(
            open_store(&missing, false, Access::ReadOnly),
            Err(ToolError::Usage(_))
        ));
        assert!(!dir.path().join("nope").exists());
        assert!(matches!(
            open_store("mem://x", true, Access::ReadOnly),
            Err(ToolError::Usage(_))
        ));
    }
}
