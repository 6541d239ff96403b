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
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use super::serve::{ReloadSource, serve};
use super::{MountError, MountResult, error_chain};
use crate::config::MountSettings;
use crate::crypto::Secret;

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
        sd_notify(&format!("READY=1\nSTATUS={status}"));
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
        // SAFETY: dup2 on descriptors we own onto the standard ones; nothing else holds raw
        // copies of 0/1/2 that could be invalidated.
        unsafe {
            if libc::dup2(devnull.as_raw_fd(), 0) < 0 || libc::dup2(devnull.as_raw_fd(), 1) < 0 {
                return Err(io::Error::last_os_error());
            }
            if let Some(log) = &log {
                if libc::dup2(log.as_raw_fd(), 2) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        if let Some(mut p) = pipe.take() {
            p.write_all(&[0])?;
        }
        Ok(())
    }

    /// Send the error to the waiting parent; false if nobody is waiting any more.
    pub(super) fn fail(&mut self, err: &MountError) -> bool {
        let Readiness::Daemon { pipe, .. } = self else {
            return false;
        };
        let Some(mut p) = pipe.take() else {
            return false;
        };
        let code = err.exit_code().clamp(1, 255) as u8;
        let mut msg = vec![code];
        msg.extend_from_slice(error_chain(err).as_bytes());
        let _ = p.write_all(&msg);
        true
    }
}

/// Whether stderr is the journal stream systemd connected us to (`$JOURNAL_STREAM` holds
/// its `device:inode`).
fn stderr_is_journal() -> bool {
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

/// Tell systemd (Type=notify) about our state, if it asked.
pub(super) fn sd_notify(state: &str) {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = UnixDatagram::unbound() else {
        return;
    };
    let bytes = path.as_bytes();
    let sent = match bytes.strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name)
            .and_then(|addr| sock.send_to_addr(state.as_bytes(), &addr)),
        None => sock.send_to(state.as_bytes(), &path),
    };
    if let Err(e) = sent {
        log::warn!("cannot notify systemd ({state}): {e}");
    }
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
    // SAFETY: dup2 of a descriptor we own onto stderr, which nothing holds a raw copy of.
    if unsafe { libc::dup2(f.as_raw_fd(), 2) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Fork; the child serves the mount, the parent returns once it is ready or failed.
pub(super) fn daemonize(
    s: &MountSettings,
    dev_before: u64,
    secret: Secret,
    reload: ReloadSource,
) -> MountResult<()> {
    let log = match &s.log_file {
        Some(path) => {
            Some(open_log(path).map_err(MountError::io(format!("log file {}", path.display())))?)
        }
        None => None,
    };
    let mut fds = [0; 2];
    // SAFETY: fds has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(MountError::io("pipe")(io::Error::last_os_error()));
    }
    // SAFETY: pipe2 succeeded, so both are fresh descriptors that only we own.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: the process is single-threaded here (no runtime or other thread has been
    // started), so the child's copy of memory holds no lock another thread owned.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(MountError::io("fork")(io::Error::last_os_error())),
        0 => {
            drop(read_end);
            // SAFETY: setsid has no memory-safety preconditions; it fails only if we already
            // lead a process group, which a fresh child does not.
            unsafe { libc::setsid() };
            let _ = std::env::set_current_dir("/");
            let mut readiness = Readiness::Daemon {
                pipe: Some(File::from(write_end)),
                log,
            };
            let code = match serve(s, dev_before, secret, &mut readiness, reload) {
                Ok(()) => 0,
                Err(e) => {
                    if !readiness.fail(&e) {
                        log::error!("{}", error_chain(&e));
                    }
                    e.exit_code()
                }
            };
            std::process::exit(code);
        }
        child => {
            drop(write_end);
            drop(secret);
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
            if let Some((&code, message)) = answer.split_first() {
                // The daemon exits right after saying why; wait for it, so that a failed mount
                // leaves no process behind when this one returns.
                let mut status = 0;
                // SAFETY: waiting for our own child; status is a valid out pointer.
                unsafe { libc::waitpid(child, &mut status, 0) };
                return Err(MountError::Daemon {
                    code: i32::from(code),
                    message: String::from_utf8_lossy(message).into_owned(),
                });
            }
            let mut status = 0;
            // SAFETY: waiting for our own child; status is a valid out pointer.
            unsafe { libc::waitpid(child, &mut status, 0) };
            Err(MountError::Other(format!(
                "the mount process (pid {child}) exited before the mount was ready (wait \
                 status {status}); run with -f to see its log"
            )))
        }
    }
}
