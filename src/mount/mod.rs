//! The lifecycles of `init`, `mount` and `unmount`, from resolved settings (never the command
//! line: the front, `app`, parses and resolves, and maps [`MountError`] to exit statuses).
//!
//! - `init.rs`: create a vault.
//! - `serve.rs`: `mount`: check the mount point, unlock, build the store and file system,
//!   mount through fuser, report readiness, serve until SIGTERM/SIGINT or an external
//!   unmount, flush.
//! - `reload.rs`: SIGHUP re-reads the log level and reopens the log file.
//! - `daemon.rs`: background mounts. They fork before any thread exists (before the tokio
//!   runtime); the parent waits on a pipe for one readiness byte, or an exit code and
//!   message, from the child, so `s3cryptfs mount` returns once the mount answers and fails
//!   with the real error otherwise. `daemonize` runs whatever closure it is given in the
//!   child. Also the systemd notify protocol (`READY=1` only once the mount answers,
//!   `STOPPING=1` while flushing).
//! - `table.rs`: the mount table (/proc/self/mountinfo) and the pid files that name each
//!   mount's daemon (`/run/s3cryptfs/` for root, `$XDG_RUNTIME_DIR/s3cryptfs/` otherwise).
//! - `unmount.rs`: `unmount` unmounts the kernel mount and then waits for the daemon to exit,
//!   which it does only after flushing every file.
//! - `logging.rs`: the logger, whose level SIGHUP can change.

mod daemon;
mod init;
pub mod logging;
mod reload;
mod serve;
mod table;
mod unmount;

use std::io;
use std::path::{Path, PathBuf};

use crate::config::ConfigError;
use crate::fs::FsError;
use crate::store::{self, StoreError, StoreUrl};
use crate::vault::VaultError;

pub use daemon::Failure;
pub use init::init;
pub use reload::ReloadSource;
pub use serve::{CheckedMountpoint, check_mountpoint, fuse_config, mount};
pub use table::{MountEntry, find_mount, parse_mountinfo_line, pid_file_name};
pub use unmount::{unmount, unmount_path};

/// The file system subtype (`fuse.s3cryptfs` in the mount table when fusermount3 mounts).
const SUBTYPE: &str = "s3cryptfs";

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
    /// A bad `mount.s3cryptfs` command line or option.
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Other(String),
}

impl MountError {
    fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> MountError {
        let what = what.into();
        move |source| MountError::Io { what, source }
    }

    fn mountpoint(path: &Path, reason: impl Into<String>) -> MountError {
        MountError::Mountpoint {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}

pub type MountResult<T> = Result<T, MountError>;

fn open_store(
    url: &StoreUrl,
    opts: &store::StoreOptions,
) -> MountResult<(store::DynStore, String)> {
    store::open_store(url, opts).map_err(|source| MountError::Store {
        url: url.to_string(),
        source,
    })
}

fn runtime(threads: usize) -> MountResult<tokio::runtime::Runtime> {
    let mut builder = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads).thread_name("s3cryptfs-io");
        b
    };
    builder
        .enable_all()
        .build()
        .map_err(MountError::io("cannot start the async runtime"))
}
