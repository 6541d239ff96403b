//! Process hardening, done by the front before any secret is read: no core dumps, no
//! `/proc/PID/mem` for other processes of the same user, no passphrase left in the environment.
//!
//! - Core dumps would write keys to disk, and a dumpable process can be read through
//!   `ptrace` and `/proc/PID/mem` by any process of the same user. Both are turned off
//!   (`PR_SET_DUMPABLE` 0, soft and hard `RLIMIT_CORE` 0) unless `--allow-core-dumps` or
//!   `[logging] allow_core_dumps` asks to keep them for debugging. The forked daemon inherits
//!   both. Whether to keep them is known only once the config is read, but the passphrase
//!   from the environment is in memory from the start: so `main` first turns them off
//!   reversibly ([`suspend_core_dumps`]: not dumpable, soft limit 0, hard limit kept), and
//!   [`apply`] then either makes that final (hard limit 0) or restores what the process
//!   started with.
//! - `$S3CRYPTFS_PASSPHRASE` is taken out of the environment first thing in `main`, while the
//!   process has one thread, and its bytes in the initial environment block are overwritten:
//!   `unsetenv` alone only drops the pointer, and `/proc/PID/environ` shows that block.

use std::ffi::{CStr, OsString};
use std::io;
use std::sync::OnceLock;

use nix::sys::prctl;
use nix::sys::resource::{Resource, getrlimit, rlim_t, setrlimit};

/// `RLIMIT_CORE` (soft, hard) as the process started with, for [`apply`] to restore.
static STARTED_WITH: OnceLock<(rlim_t, rlim_t)> = OnceLock::new();

/// First thing in `main`: no core dump and no same-user ptrace until [`apply`] decides, in a
/// way [`apply`] can undo (the hard limit is kept, so the soft one can be raised again).
/// Failures are ignored here; [`apply`] reports them.
pub(super) fn suspend_core_dumps() {
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_CORE) {
        let _ = STARTED_WITH.set((soft, hard));
        let _ = setrlimit(Resource::RLIMIT_CORE, 0, hard);
    }
    let _ = prctl::set_dumpable(false);
}

/// Turn core dumps and same-user ptrace access off for this process and its children.
pub fn forbid_core_dumps() -> io::Result<()> {
    prctl::set_dumpable(false).map_err(io::Error::from)?;
    setrlimit(Resource::RLIMIT_CORE, 0, 0).map_err(io::Error::from)?;
    Ok(())
}

/// Undo [`suspend_core_dumps`]: the limits the process started with, dumpable again.
fn allow_core_dumps_again() -> io::Result<()> {
    if let Some(&(soft, hard)) = STARTED_WITH.get() {
        setrlimit(Resource::RLIMIT_CORE, soft, hard).map_err(io::Error::from)?;
    }
    prctl::set_dumpable(true).map_err(io::Error::from)?;
    Ok(())
}

/// Harden the process unless core dumps are asked for; a failure is reported, not fatal (the
/// mount works without it). Both messages go to stderr: a mount has no logger yet here.
pub fn apply(allow_core_dumps: bool) {
    if allow_core_dumps {
        eprintln!("s3cryptfs: warning: core dumps allowed: a crash may write keys to disk");
        if let Err(e) = allow_core_dumps_again() {
            eprintln!("s3cryptfs: warning: cannot allow core dumps again: {e}");
        }
        return;
    }
    if let Err(e) = forbid_core_dumps() {
        eprintln!("s3cryptfs: warning: cannot turn core dumps off: {e}");
    }
}

/// Read the environment variable `name`, remove it from the environment and overwrite its
/// bytes in the process's environment block.
///
/// Must be called while the process has a single thread (first thing in `main`): it changes
/// the environment, which no other thread may read or write at the same time.
pub(super) fn take_env_secret(name: &str) -> Option<OsString> {
    let value = std::env::var_os(name)?;
    let prefix = format!("{name}=");
    let mut entries: Vec<(*mut u8, usize)> = Vec::new();
    // SAFETY: called while the process is single-threaded (see above), so nothing changes
    // `environ` while it is walked; `environ` is a null-terminated array of pointers to
    // NUL-terminated strings, as POSIX specifies.
    unsafe {
        let mut p = nix::libc::environ;
        while !p.is_null() && !(*p).is_null() {
            let entry = CStr::from_ptr(*p);
            if entry.to_bytes().starts_with(prefix.as_bytes()) {
                entries.push(((*p).cast::<u8>(), entry.to_bytes().len()));
            }
            p = p.add(1);
        }
    }
    // SAFETY: the process is single-threaded here (the caller's contract), so no other
    // thread reads or writes the environment concurrently.
    unsafe { std::env::remove_var(name) };
    for (ptr, len) in entries {
        // SAFETY: `ptr` points to `len` writable bytes of a string that was in the
        // environment: strings of the initial block live on the stack, those added by
        // `setenv` are never freed by glibc. `unsetenv` dropped only the pointer to it, so
        // nothing reads the string any more; the volatile writes are not optimised away.
        unsafe {
            for i in 0..len {
                std::ptr::write_volatile(ptr.add(i), 0);
            }
        }
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::resource::getrlimit;

    /// One test for the whole sequence: the limits and the dumpable flag are the process's,
    /// shared by every test thread.
    #[test]
    fn core_dumps_are_suspended_then_allowed_or_turned_off() {
        let (_, hard) = getrlimit(Resource::RLIMIT_CORE).expect("getrlimit");
        // Something other than 0 to restore, whatever the test runner started with (the
        // tests run as root, who may raise a hard limit of 0).
        let hard = if hard == 0 { 4096 } else { hard };
        setrlimit(Resource::RLIMIT_CORE, hard.min(4096), hard).expect("setrlimit");
        let started = getrlimit(Resource::RLIMIT_CORE).expect("getrlimit");
        assert_ne!(started.0, 0);
        suspend_core_dumps();
        assert!(!prctl::get_dumpable().expect("PR_GET_DUMPABLE"));
        assert_eq!(
            getrlimit(Resource::RLIMIT_CORE).expect("getrlimit"),
            (0, hard)
        );
        // --allow-core-dumps: as the process started.
        apply(true);
        assert!(prctl::get_dumpable().expect("PR_GET_DUMPABLE"));
        assert_eq!(
            getrlimit(Resource::RLIMIT_CORE).expect("getrlimit"),
            started
        );
        // Without it: off for good.
        suspend_core_dumps();
        apply(false);
        assert!(!prctl::get_dumpable().expect("PR_GET_DUMPABLE"));
        assert_eq!(getrlimit(Resource::RLIMIT_CORE).expect("getrlimit"), (0, 0));
        let status = std::fs::read_to_string("/proc/self/limits").expect("limits");
        let line = status
            .lines()
            .find(|l| l.starts_with("Max core file size"))
            .expect("core line");
        assert!(line.split_whitespace().nth(4) == Some("0"), "{line}");
    }
}
