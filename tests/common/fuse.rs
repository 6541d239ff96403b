//! Helpers of the tests that mount (the FUSE tier): checking that this machine can mount,
//! waiting for and tearing down mounts, running tools, errnos, looking at stored bytes.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::is_mounted;

/// Panics, with what to do about it, unless this machine can mount FUSE file systems.
pub fn require_fuse() {
    let dev = Path::new("/dev/fuse");
    if !dev.exists() {
        panic!(
            "/dev/fuse is missing: these tests mount real FUSE file systems. Load the module \
             (`modprobe fuse`) or run the container with `--device /dev/fuse --cap-add \
             SYS_ADMIN`; scripts/test.sh installs the fuse3 package."
        );
    }
    if let Err(e) = std::fs::OpenOptions::new().read(true).write(true).open(dev) {
        panic!("/dev/fuse cannot be opened ({e}): FUSE tests need read-write access to it");
    }
    if find_in_path("fusermount3").is_none() {
        panic!("fusermount3 is not installed: run scripts/test.sh, or `apt-get install fuse3`");
    }
}

pub fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Detaches whatever is mounted at `path` (last resort of the Drop impls).
pub fn force_unmount(path: &Path) {
    if !is_mounted(path) {
        return;
    }
    let _ = Command::new("fusermount3")
        .arg("-u")
        .arg("-z")
        .arg(path)
        .output();
    if is_mounted(path) {
        let _ = Command::new("umount").arg("-l").arg(path).output();
    }
}

/// Runs a tool, panicking with its output unless it succeeds.
pub fn run_ok(program: &str, args: &[&str]) -> Output {
    run_ok_in(None, program, args)
}

pub fn run_ok_in(dir: Option<&Path>, program: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(program);
    cmd.args(args);
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "`{program} {}` failed ({}):\nstdout: {}\nstderr: {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The errno of a failed call; panics (naming `what`) if it succeeded.
pub fn errno_of<T: std::fmt::Debug>(what: &str, r: io::Result<T>) -> i32 {
    match r {
        Ok(v) => panic!("{what}: expected an error, got Ok({v:?})"),
        Err(e) => e
            .raw_os_error()
            .unwrap_or_else(|| panic!("{what}: error without errno: {e}")),
    }
}

/// Asserts that `r` failed with `errno`.
#[track_caller]
pub fn assert_errno<T: std::fmt::Debug>(what: &str, r: io::Result<T>, errno: i32) {
    let got = errno_of(what, r);
    assert_eq!(
        got,
        errno,
        "{what}: expected {} ({errno}), got {} ({got})",
        errno_name(errno),
        errno_name(got)
    );
}

/// A row of an errno table ([`assert_errnos`]): an operation, what it does, and the errno it
/// must fail with.
pub struct MustFail<'a> {
    what: &'a str,
    errno: i32,
    op: Box<dyn FnOnce() -> io::Result<String> + 'a>,
}

/// The row "`op` (`what`) fails with `errno`"; `op` runs when the table is checked.
pub fn fails<'a, T: std::fmt::Debug>(
    what: &'a str,
    errno: i32,
    op: impl FnOnce() -> io::Result<T> + 'a,
) -> MustFail<'a> {
    MustFail {
        what,
        errno,
        op: Box::new(move || op().map(|v| format!("{v:?}"))),
    }
}

/// Runs the operations of `rows` in order, asserting each one's errno as [`assert_errno`] does.
#[track_caller]
pub fn assert_errnos<'a>(rows: impl IntoIterator<Item = MustFail<'a>>) {
    for row in rows {
        assert_errno(row.what, (row.op)(), row.errno);
    }
}

pub fn errno_name(e: i32) -> String {
    io::Error::from_raw_os_error(e).to_string()
}

/// Whether `needle` occurs anywhere in `haystack`.
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    if needle.is_empty() {
        return true;
    }
    let first = needle[0];
    haystack
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == first)
        .any(|(i, _)| haystack[i..].starts_with(needle))
}

/// Every regular file below `dir` (recursively, symlinks not followed).
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}
