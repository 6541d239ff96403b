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
//! - `control.rs`: the control socket a mount answers `s3cryptfs status` on (owner only);
//!   `status.rs` is that command's side. `metrics.rs`: the same counters in the Prometheus
//!   text format over HTTP (`--metrics-addr`), and `sd_notify` `STATUS=` lines from `serve.rs`.

pub mod control;
mod daemon;
mod error;
mod init;
pub mod logging;
pub mod metrics;
mod reload;
mod serve;
mod setup;
mod status;
mod table;
mod unmount;

pub use daemon::Failure;
pub use error::{MountError, MountResult};
pub use init::init;
pub use reload::ReloadSource;
pub use serve::{CheckedMountpoint, check_mountpoint, fuse_config, mount};
pub use status::{MountAnswer, render_text as render_status, status};
pub use table::{MountEntry, find_mount, parse_mountinfo_line, pid_file_name};
pub use unmount::{unmount, unmount_path};
