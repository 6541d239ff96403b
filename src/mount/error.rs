//! [`MountError`]: what `init`, `mount` and `unmount` can fail with. The front (`app`) maps it
//! to an exit status; nothing here knows one.

use std::io;
use std::path::{Path, PathBuf};

use crate::config::ConfigError;
use crate::fs::FsError;
use crate::store::StoreError;
use crate::vault::VaultError;

/// What can go wrong in `init`, `mount` and `unmount`.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error("store {url}: {source}")]
    Store {
        url: String,
        #[source]
        source: StoreError,
    },
    #[error("file system: {0}")]
    Fs(#[from] FsError),
    #[error("mount point {}: {reason}", path.display())]
    Mountpoint { path: PathBuf, reason: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    /// The background mount process failed before it was ready and said why.
    #[error("{message}")]
    Daemon { code: i32, message: String },
    #[error("{0}")]
    Other(String),
}

impl MountError {
    pub(super) fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> MountError {
        let what = what.into();
        move |source| MountError::Io { what, source }
    }

    pub(super) fn mountpoint(path: &Path, reason: impl Into<String>) -> MountError {
        MountError::Mountpoint {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}

pub type MountResult<T> = Result<T, MountError>;
