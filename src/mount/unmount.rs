//! `s3cryptfs unmount`: unmount the kernel mount, then wait for the daemon (which uploads
//! whatever is still dirty before exiting) to be gone.
//!
//! Only s3cryptfs mounts are unmounted (see `table::is_our_mount`); a mount whose daemon
//! died (ENOTCONN) is cleaned up as well.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::mount::{MntFlags, umount2};

use super::control::query;
use super::error::{MountError, MountResult};
use super::table::{find_daemon, find_mount, is_our_mount};

pub(super) fn is_busy(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EBUSY) || e.to_string().contains("busy")
}

/// Unmount `mp` (lazily: detach it now, end it when the last file closes): umount2 as root,
/// else the setuid `fusermount3 -u`.
pub fn unmount_path(mp: &Path, lazy: bool) -> io::Result<()> {
    if nix::unistd::geteuid().is_root() {
        let flags = if lazy {
            MntFlags::MNT_DETACH
        } else {
            MntFlags::empty()
        };
        return umount2(mp, flags).map_err(io::Error::from);
    }
    let mut last = io::Error::other("fusermount3 not found");
    for tool in ["fusermount3", "fusermount"] {
        let mut cmd = std::process::Command::new(tool);
        cmd.arg("-u");
        if lazy {
            cmd.arg("-z");
        }
        match cmd.arg("--").arg(mp).output() {
            Ok(out) if out.status.success() => return Ok(()),
            Ok(out) => {
                let text = String::from_utf8_lossy(&out.stderr).trim().to_owned();
                return Err(io::Error::other(if text.is_empty() {
                    format!("{tool} -u failed ({})", out.status)
                } else {
                    text
                }));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!(
        "cannot run fusermount3 ({last}); install the fuse3 package"
    )))
}

/// The absolute mount point without touching the mount itself (its daemon may be gone):
/// the canonical parent plus the last component.
pub(super) fn mountpoint_path(path: &Path) -> MountResult<PathBuf> {
    let abs = std::path::absolute(path).map_err(|e| MountError::mountpoint(path, e.to_string()))?;
    let (Some(parent), Some(name)) = (abs.parent(), abs.file_name()) else {
        return Err(MountError::mountpoint(path, "is not a mount point"));
    };
    let parent = parent
        .canonicalize()
        .map_err(|e| MountError::mountpoint(path, format!("{}: {e}", parent.display())))?;
    Ok(parent.join(name))
}

/// How long an unmount refused as busy is tried again: the kernel sends the release of a
/// file closed just before asynchronously, so a script's `close` then `unmount` can find the
/// mount busy for a moment.
const BUSY_GRACE: Duration = Duration::from_secs(3);

/// Unmount `mp`, trying again for [`BUSY_GRACE`] while it is busy.
fn unmount_retrying_busy(mp: &Path) -> io::Result<()> {
    let deadline = Instant::now() + BUSY_GRACE;
    loop {
        match unmount_path(mp, false) {
            Err(e) if is_busy(&e) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

/// `s3cryptfs unmount`: unmount, then wait for the daemon (which uploads whatever is still
/// dirty before exiting) to be gone.
pub fn unmount(path: &Path, timeout: Duration) -> MountResult<()> {
    let mp = mountpoint_path(path)?;
    let entry = find_mount(&mp).map_err(MountError::io("cannot read /proc/self/mountinfo"))?;
    let daemon = find_daemon(&mp);
    let still_to_upload = || {
        let socket = daemon.as_ref()?.socket.as_path();
        query(socket).ok().and_then(|s| s.pending_summary())
    };
    if let Some(pending) = still_to_upload() {
        log::warn!(
            "{} has data to upload before its daemon exits: {pending}",
            mp.display()
        );
    }
    match (&entry, &daemon) {
        (None, None) => {
            return Err(MountError::mountpoint(&mp, "is not mounted"));
        }
        (Some(e), d) if !is_our_mount(e, d.is_some()) => {
            return Err(MountError::mountpoint(
                &mp,
                format!(
                    "is a {} mount of {} that s3cryptfs did not make; unmount it with umount \
                     or fusermount3 -u",
                    e.fstype, e.source
                ),
            ));
        }
        (Some(_), _) => unmount_retrying_busy(&mp).map_err(|e| {
            if is_busy(&e) {
                MountError::mountpoint(
                    &mp,
                    format!(
                        "is busy: a process has a file open or its working directory in it \
                         (see `fuser -vm {}`); close them and retry",
                        mp.display()
                    ),
                )
            } else {
                MountError::mountpoint(&mp, format!("cannot unmount: {e}"))
            }
        })?,
        // The mount is gone (or detached) but its daemon still runs: wait for it.
        (None, Some(_)) => {}
    }
    let Some(daemon) = daemon.as_ref() else {
        log::warn!(
            "{} is unmounted, but no pid file names its daemon, so this did not wait for it",
            mp.display()
        );
        return Ok(());
    };
    let deadline = Instant::now() + timeout;
    while daemon.is_alive() {
        if Instant::now() >= deadline {
            return Err(MountError::Other(format!(
                "{} is unmounted, but its daemon (pid {}) is still running after {} s: files \
                 may still be open in the detached mount or uploading ({}); it exits when done",
                mp.display(),
                daemon.pid,
                timeout.as_secs(),
                still_to_upload().unwrap_or_else(|| "none reported".to_owned())
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmount_of_a_plain_directory_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = unmount(dir.path(), Duration::from_secs(1)).expect_err("not mounted");
        assert!(e.to_string().contains("is not mounted"), "{e}");
    }
}
