//! The commands' lifecycles: `init`, `mount` and `unmount`, and the `mount.s3cryptfs` helper
//! that mount(8) and /etc/fstab run.
//!
//! - `init.rs`: create a vault.
//! - `serve.rs`: `mount`: check the mount point, unlock, build the store and file system,
//!   mount through fuser, report readiness, serve until SIGTERM/SIGINT or an external
//!   unmount, flush. SIGHUP re-reads the log level and drops cached metadata.
//! - `daemon.rs`: background mounts. They fork before any thread exists (before the tokio
//!   runtime); the parent waits on a pipe for one readiness byte, or an exit code and
//!   message, from the child, so `s3cryptfs mount` returns once the mount answers and fails
//!   with the real error otherwise. Also the systemd notify protocol (`READY=1` only once
//!   the mount answers, `STOPPING=1` while flushing).
//! - `table.rs`: the mount table (/proc/self/mountinfo) and the pid files that name each
//!   mount's daemon (`/run/s3cryptfs/` for root, `$XDG_RUNTIME_DIR/s3cryptfs/` otherwise).
//! - `unmount.rs`: `unmount` unmounts the kernel mount and then waits for the daemon to exit,
//!   which it does only after flushing every file.
//! - `helper.rs`: `mount.s3cryptfs SOURCE DIR [-sfnv] [-o OPTS]`, translated to `mount`.
//! - `logging.rs`: the logger, whose level SIGHUP can change.
//!
//! The exit status of every command comes from [`MountError::exit_code`], the one mapping.

mod daemon;
pub mod helper;
mod init;
pub mod logging;
mod serve;
mod table;
mod unmount;

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::{Cli, Command};
use crate::config::{ConfigError, MountConfig};
use crate::fs::FsError;
use crate::store::{self, StoreError, StoreUrl};
use crate::vault::VaultError;

pub use serve::{CheckedMountpoint, check_mountpoint, fuse_config};
pub use table::{MountEntry, find_mount, parse_mountinfo_line, pid_file_name};
pub use unmount::{unmount, unmount_path};

/// Exit status for errors not covered below.
pub const EXIT_FAILURE: i32 = 1;
/// Exit status for a bad command line (clap) or config.
pub const EXIT_USAGE: i32 = 2;
/// Exit status when the key file or passphrase does not unlock the vault.
pub const EXIT_WRONG_KEY: i32 = 3;

/// The file system subtype (`fuse.s3cryptfs` in the mount table when fusermount3 mounts).
const SUBTYPE: &str = "s3cryptfs";

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
    /// The one mapping from errors to exit codes.
    pub fn exit_code(&self) -> i32 {
        match self {
            MountError::Config(_) | MountError::Usage(_) => EXIT_USAGE,
            MountError::Vault(v) if v.is_wrong_key() => EXIT_WRONG_KEY,
            MountError::Daemon { code, .. } => *code,
            _ => EXIT_FAILURE,
        }
    }

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

/// An error and its sources on one line, skipping sources whose text the message already
/// contains.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = s.source();
    }
    message
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> MountResult<()> {
    match &cli.command {
        Command::Init(args) => init::init(&cli.global, args),
        Command::Mount(args) => serve::mount(&cli.global, args, serve::Detach::AsAsked),
        Command::Unmount(args) => {
            logging::init(cli.global.log_level.unwrap_or_default(), true);
            unmount(&args.mountpoint, Duration::from_secs(args.timeout))
        }
        // `key`, `verify`, `ls`, ... have their own errors and exit codes: main.rs runs them.
        Command::Tools(_) => Err(MountError::Other(
            "internal error: tool subcommands are run by s3cryptfs::tools::run".to_owned(),
        )),
    }
}

fn load_config(path: Option<&Path>) -> Result<MountConfig, ConfigError> {
    path.map_or_else(|| Ok(MountConfig::default()), MountConfig::load)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        let wrong = MountError::Vault(VaultError::WrongKey {
            location: "x".into(),
            reason: "r".into(),
        });
        assert_eq!(wrong.exit_code(), EXIT_WRONG_KEY);
        let cfg = MountError::Config(ConfigError::Missing("m".into()));
        assert_eq!(cfg.exit_code(), EXIT_USAGE);
        assert_eq!(MountError::Usage("u".into()).exit_code(), EXIT_USAGE);
        assert_eq!(MountError::Other("x".into()).exit_code(), EXIT_FAILURE);
    }
}
