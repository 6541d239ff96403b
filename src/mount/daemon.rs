//! Background mounts and readiness: fork into a daemon that tells the waiting parent (or
//! systemd) when the mount answers.
//!
//! The fork happens before any thread exists (before the tokio runtime). The parent waits on
//! a pipe for one byte: 0 once the mount answers, else an exit code followed by the error
//! message, so `s3cryptfs mount` and `mount.s3cryptfs` return only once the mount is ready
//! and fail with the daemon's own error otherwise. systemd (`Type=notify`, with `-f`) gets
//! `READY=1` at the same moment, `RELOADING=1`/`READY=1` around a SIGHUP reload, and
//! `STOPPING=1` while the last files are uploaded.
//!
//! Once detached, the daemon's stderr goes to the log file, else stays connected to the
//! journal when it already was (`$JOURNAL_STREAM`: a mount started by a systemd unit), else
//! to /dev/null.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, dup2_stderr, dup2_stdin, dup2_stdout, fork, pipe2, setsid};
use sd_notify::NotifyState;

use super::error::{MountError, MountResult};

/// What a daemon that failed before its mount was ready tells the process waiting for it:
/// the exit status that process ends with, and the message it prints.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

/// How the serving process tells whoever started it that the mount is ready (or failed).
pub(super) enum Readiness {
    Foreground,
    /// The forked daemon: the pipe to the waiting parent, and where stderr goes once
    /// detached.
    Daemon {
        pipe: Option<File>,
        log: Option<File>,
    },
}

impl Readiness {
    /// Detach from the terminal (daemon) and report success.
    pub(super) fn ready(&mut self, status: &str) -> io::Result<()> {
        notify(&[NotifyState::Ready, NotifyState::Status(status)]);
        let Readiness::Daemon { pipe, log } = self else {
            return Ok(());
        };
        let devnull = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")?;
        let log = match log.take() {
            Some(f) => Some(f),
            None if stderr_is_journal() => None,
            None => Some(devnull.try_clone()?),
        };
        dup2_stdin(&devnull)?;
        dup2_stdout(&devnull)?;
        if let Some(log) = &log {
            dup2_stderr(log)?;
        }
        if let Some(mut p) = pipe.take() {
            p.write_all(&[0])?;
        }
        Ok(())
    }

    /// Send the failure to the waiting parent; false if nobody is waiting any more.
    fn fail(&mut self, failure: &Failure) -> bool {
        let Readiness::Daemon { pipe, .. } = self else {
            return false;
        };
        let Some(mut p) = pipe.take() else {
            return false;
        };
        let code = failure.code.clamp(1, 255) as u8;
        let mut msg = vec![code];
        msg.extend_from_slice(failure.message.as_bytes());
        let _ = p.write_all(&msg);
        true
    }
}

/// Whether stderr is the journal stream systemd connected us to (`$JOURNAL_STREAM` holds
/// its `device:inode`).
pub(super) fn stderr_is_journal() -> bool {
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = std::str::from_utf8(value.as_bytes())
        .ok()
        .and_then(|v| v.split_once(':'))
    else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    // fstat through /proc: stderr may be a socket, which std::fs::metadata on the path
    // follows to the socket inode, exactly what the variable names.
    std::fs::metadata("/proc/self/fd/2").is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

/// Tell systemd (Type=notify) about our state, if it asked (`$NOTIFY_SOCKET`).
pub(super) fn notify(states: &[NotifyState]) {
    let sent = match std::env::var_os("NOTIFY_SOCKET") {
        None => return,
        // sd-notify connects to a path; an abstract socket (`@name`, as some containers set)
        // is sent to here.
        Some(path) if path.as_bytes().starts_with(b"@") => notify_abstract(&path, states),
        Some(_) => sd_notify::notify(states),
    };
    if let Err(e) = sent {
        let text: Vec<String> = states.iter().map(ToString::to_string).collect();
        log::warn!("cannot notify systemd ({}): {e}", text.join(", "));
    }
}

fn notify_abstract(path: &std::ffi::OsStr, states: &[NotifyState]) -> io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let message: String = states.iter().map(|s| format!("{s}\n")).collect();
    let addr = SocketAddr::from_abstract_name(&path.as_bytes()[1..])?;
    UnixDatagram::unbound()?
        .send_to_addr(message.as_bytes(), &addr)
        .map(drop)
}

fn open_log(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// Point stderr at `path` again, for log rotation (SIGHUP after the file was moved away).
pub(super) fn reopen_log(path: &Path) -> io::Result<()> {
    let f = open_log(path)?;
    dup2_stderr(&f)?;
    Ok(())
}

/// Open the log file a detached daemon appends to.
pub(super) fn log_file(path: Option<&Path>) -> MountResult<Option<File>> {
    path.map(|path| open_log(path).map_err(MountError::io(format!("log file {}", path.display()))))
        .transpose()
}

/// Fork; the child runs `serve` (which reports readiness through the [`Readiness`] it is
/// given), the parent returns once the child is ready or failed. `log` is where the child's
/// stderr goes once detached.
pub(super) fn daemonize<F>(log: Option<File>, serve: F) -> MountResult<()>
where
    F: FnOnce(&mut Readiness) -> Result<(), Failure>,
{
    let (read_end, write_end) =
        pipe2(OFlag::O_CLOEXEC).map_err(|e| MountError::io("pipe")(e.into()))?;
    // SAFETY: the process is single-threaded here (no runtime or other thread has been
    // started), so the child's copy of memory holds no lock another thread owned.
    match unsafe { fork() } {
        Err(e) => Err(MountError::io("fork")(e.into())),
        Ok(ForkResult::Child) => {
            drop(read_end);
            // Fails only if we already lead a process group, which a fresh child does not.
            let _ = setsid();
            let _ = std::env::set_current_dir("/");
            let mut readiness = Readiness::Daemon {
                pipe: Some(File::from(write_end)),
                log,
            };
            let code = match serve(&mut readiness) {
                Ok(()) => 0,
                Err(failure) => {
                    if !readiness.fail(&failure) {
                        log::error!("{}", failure.message);
                    }
                    failure.code
                }
            };
            std::process::exit(code);
        }
        Ok(ForkResult::Parent { child }) => {
            drop(write_end);
            // The closure holds the secret; the parent has no use for it.
            drop(serve);
            let mut answer = Vec::new();
            let mut pipe = File::from(read_end);
            let mut byte = [0u8; 1];
            // read_exact retries when interrupted; EOF means the child died without a word.
            if pipe.read_exact(&mut byte).is_ok() {
                if byte[0] == 0 {
                    return Ok(());
                }
                answer.push(byte[0]);
                let _ = pipe.read_to_end(&mut answer);
            }
            // The daemon exits right after saying why; wait for it, so that a failed mount
            // leaves no process behind when this one returns.
            let status = waitpid(child, None);
            if let Some((&code, message)) = answer.split_first() {
                return Err(MountError::Daemon {
                    code: i32::from(code),
                    message: String::from_utf8_lossy(message).into_owned(),
                });
            }
            Err(MountError::Other(format!(
                "the mount process (pid {child}) exited before the mount was ready ({}); run \
                 with -f to see its log",
                match status {
                    Ok(s) => format!("{s:?}"),
                    Err(e) => format!("wait failed: {e}"),
                }
            )))
        }
    }
}
