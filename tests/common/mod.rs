//! Shared helpers of the integration tests.
//!
//! - `inproc`: a real kernel mount of any `ObjectStore` (usually a `MemoryStore`) served by
//!   this test process, which can be unmounted and mounted again over the same store.
//! - `cli`: vaults on a `DirStore` created and mounted through the built `s3cryptfs` binary.
//! - `data`: deterministic, random-access byte streams and file comparison without holding
//!   big files in memory.
//! - `scenarios`: file-system checks shared by every kind of mount (files, trees, POSIX,
//!   tamper).
//!
//! FUSE tests never skip: a machine without `/dev/fuse` fails them with a message saying what
//! to install. Every test builds its own temporary directories and mount points, so the tests
//! of one binary run in parallel.

#![allow(dead_code)]

pub mod cli;
pub mod data;
pub mod inproc;
pub mod scenarios;

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

#[allow(unused_imports)]
pub use cli::{CliMount, CliVault};
#[allow(unused_imports)]
pub use inproc::{MountedFs, mount_in_process};

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

/// Decodes the octal escapes (`\040` for a space) of a /proc/self/mountinfo field.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            if let Some(v) = std::str::from_utf8(&bytes[i + 1..i + 4])
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The file system type (e.g. `fuse.s3cryptfs`) mounted exactly at `path`, if any.
pub fn mount_type(path: &Path) -> Option<String> {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut found = None;
    for line in info.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        if fields.len() < 5 || sep + 1 >= fields.len() {
            continue;
        }
        if Path::new(&unescape_mountinfo(fields[4])) == path {
            // The last match is the one on top.
            found = Some(fields[sep + 1].to_string());
        }
    }
    found
}

pub fn is_mounted(path: &Path) -> bool {
    mount_type(path).is_some()
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
