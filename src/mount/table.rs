//! The mount table and pid files: which mounts are ours, and which process serves each.
//!
//! Mounting as root through mount(2) records the type as plain `fuse` (the subtype survives
//! only through fusermount3), so a `fuse` mount counts as ours when a pid file names its
//! daemon or its source is a store URL. A pid file (`/run/s3cryptfs/` for root, else
//! `$XDG_RUNTIME_DIR/s3cryptfs/`, else `/tmp/s3cryptfs-UID/`) holds three lines: the pid and
//! its start time (which together name one process even after the pid is reused), the mount
//! point and the store URL. `scripts/backup.sh` reads them too.

use std::ffi::OsStr;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};

use crate::store::StoreUrl;

/// The file system subtype (`fuse.s3cryptfs` in the mount table when fusermount3 mounts).
pub(super) const SUBTYPE: &str = "s3cryptfs";

/// Whether a mount table entry is an s3cryptfs mount (see the module docs).
pub(super) fn is_our_mount(entry: &MountEntry, has_daemon: bool) -> bool {
    entry.fstype == format!("fuse.{SUBTYPE}")
        || (entry.fstype == "fuse" && (has_daemon || StoreUrl::parse(&entry.source).is_ok()))
}

/// One line of /proc/self/mountinfo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountEntry {
    pub mountpoint: PathBuf,
    pub fstype: String,
    pub source: String,
}

/// Undo the octal escapes (`\040` for a space) of mountinfo fields.
fn unescape_mountinfo(field: &str) -> Vec<u8> {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

pub fn parse_mountinfo_line(line: &str) -> Option<MountEntry> {
    let fields: Vec<&str> = line.split(' ').collect();
    let sep = fields.iter().position(|f| *f == "-")?;
    let mountpoint = fields.get(4)?;
    Some(MountEntry {
        mountpoint: PathBuf::from(OsStr::from_bytes(&unescape_mountinfo(mountpoint))),
        fstype: (*fields.get(sep + 1)?).to_owned(),
        source: String::from_utf8_lossy(&unescape_mountinfo(fields.get(sep + 2)?)).into_owned(),
    })
}

/// The topmost mount at `mp`, if any.
pub fn find_mount(mp: &Path) -> io::Result<Option<MountEntry>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(text
        .lines()
        .filter_map(parse_mountinfo_line)
        .rfind(|e| e.mountpoint == mp))
}

// pid files

/// Where pid files live: `/run/s3cryptfs` for root, else `$XDG_RUNTIME_DIR/s3cryptfs`, else
/// `/tmp/s3cryptfs-UID`.
fn runtime_dir() -> PathBuf {
    let uid = nix::unistd::geteuid().as_raw();
    if uid == 0 {
        return PathBuf::from("/run/s3cryptfs");
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("s3cryptfs"),
        None => PathBuf::from(format!("/tmp/s3cryptfs-{uid}")),
    }
}

/// `<readable part of the path>-<hash of the path>.pid`: unique per mount point, and still
/// recognizable by an operator.
pub fn pid_file_name(mp: &Path) -> String {
    let bytes = mp.as_os_str().as_bytes();
    let readable: String = String::from_utf8_lossy(bytes)
        .trim_start_matches('/')
        .chars()
        .map(|c| match c {
            '/' => '-',
            c if c.is_ascii_alphanumeric() || c == '.' || c == '_' => c,
            _ => '_',
        })
        .take(64)
        .collect();
    let hash = Md5::digest(bytes);
    format!("{readable}-{}.pid", hex::encode(&hash[..8]))
}

/// Start time of a live process in clock ticks since boot (field 22 of /proc/PID/stat):
/// with the pid it names one process, even after the pid is reused. `None` once the process
/// has exited, including while it is a zombie waiting to be reaped.
fn process_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses; it ends at the last ')'.
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?;
    if matches!(state, "Z" | "X" | "x") {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// The running daemon of a mount, from its pid file.
#[derive(Debug)]
pub(super) struct Daemon {
    pub(super) pid: i32,
    start_time: u64,
    /// Its control socket (`control.rs`), next to its pid file.
    pub(super) socket: PathBuf,
}

impl Daemon {
    pub(super) fn is_alive(&self) -> bool {
        process_start_time(self.pid) == Some(self.start_time)
    }
}

pub(super) fn find_daemon(mp: &Path) -> Option<Daemon> {
    let name = pid_file_name(mp);
    let mut candidates = vec![runtime_dir().join(&name)];
    if nix::unistd::geteuid().is_root() {
        // Root may unmount other users' mounts; their pid files are in their runtime dirs.
        if let Ok(users) = std::fs::read_dir("/run/user") {
            candidates.extend(
                users
                    .flatten()
                    .map(|u| u.path().join("s3cryptfs").join(&name)),
            );
        }
    }
    candidates.into_iter().find_map(|path| {
        let text = std::fs::read_to_string(&path).ok()?;
        let mut first = text.lines().next()?.split_whitespace();
        let daemon = Daemon {
            pid: first.next()?.parse().ok()?,
            start_time: first.next()?.parse().ok()?,
            socket: path.with_file_name(socket_name(mp)),
        };
        let for_mp = text.lines().nth(1)? == mp.as_os_str().to_string_lossy();
        (for_mp && daemon.is_alive()).then_some(daemon)
    })
}

/// The control socket of the mount at `mp` (`control.rs`): in the runtime directory, named
/// by a hash of the path alone, since a socket path may not exceed 107 bytes.
pub(super) fn socket_path(mp: &Path) -> PathBuf {
    runtime_dir().join(socket_name(mp))
}

fn socket_name(mp: &Path) -> String {
    let hash = Md5::digest(mp.as_os_str().as_bytes());
    format!("{}.sock", hex::encode(&hash[..8]))
}

/// The mount points of this user's running daemons (from their pid files) and their control
/// sockets, sorted.
pub(super) fn live_mounts() -> Vec<(PathBuf, PathBuf)> {
    let Ok(dir) = std::fs::read_dir(runtime_dir()) else {
        return Vec::new();
    };
    let mut mounts: Vec<(PathBuf, PathBuf)> = dir
        .flatten()
        .filter(|e| e.file_name().as_bytes().ends_with(b".pid"))
        .filter_map(|e| {
            let text = std::fs::read_to_string(e.path()).ok()?;
            let mp = PathBuf::from(text.lines().nth(1)?);
            find_daemon(&mp).map(|d| (mp, d.socket))
        })
        .collect();
    mounts.sort();
    mounts
}

/// This process's pid file; removed when dropped.
pub(super) struct PidFile {
    path: PathBuf,
}

impl PidFile {
    pub(super) fn create(mp: &Path, url: &str) -> io::Result<PidFile> {
        let dir = runtime_dir();
        match std::fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(&dir)
        {
            Ok(()) => {}
            Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", dir.display()))),
        }
        let meta = std::fs::metadata(&dir)?;
        let uid = nix::unistd::geteuid().as_raw();
        if meta.uid() != uid || meta.permissions().mode() & 0o022 != 0 {
            return Err(io::Error::other(format!(
                "{} is not a private directory of uid {uid}",
                dir.display()
            )));
        }
        let pid = std::process::id() as i32;
        let start = process_start_time(pid).unwrap_or(0);
        let path = dir.join(pid_file_name(mp));
        let tmp = dir.join(format!(".{pid}.tmp"));
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)?;
        writeln!(f, "{pid} {start}\n{}\n{url}", mp.display())?;
        drop(f);
        std::fs::rename(&tmp, &path)?;
        Ok(PidFile { path })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_parse() {
        let line = "36 35 0:40 / /mnt/my\\040vault rw,nosuid,nodev shared:1 - fuse.s3cryptfs \
                    file:///srv/v rw,user_id=0,group_id=0";
        let e = parse_mountinfo_line(line).expect("parses");
        assert_eq!(e.mountpoint, PathBuf::from("/mnt/my vault"));
        assert_eq!(e.fstype, "fuse.s3cryptfs");
        assert_eq!(e.source, "file:///srv/v");
        // No optional fields.
        let e = parse_mountinfo_line("22 1 8:1 / / rw - ext4 /dev/sda1 rw").expect("root");
        assert_eq!(
            (e.mountpoint, e.fstype.as_str()),
            (PathBuf::from("/"), "ext4")
        );
        assert!(parse_mountinfo_line("garbage").is_none());
        assert!(find_mount(Path::new("/")).expect("mountinfo").is_some());
    }

    #[test]
    fn pid_file_names_are_distinct_and_readable() {
        let a = pid_file_name(Path::new("/mnt/vault"));
        let b = pid_file_name(Path::new("/mnt-vault"));
        assert!(a.starts_with("mnt-vault-") && a.ends_with(".pid"), "{a}");
        assert_ne!(a, b);
        let long = PathBuf::from(format!("/{}", "x".repeat(500)));
        assert!(pid_file_name(&long).len() < 100);
    }

    #[test]
    fn own_start_time_is_found() {
        let me = Daemon {
            pid: std::process::id() as i32,
            start_time: process_start_time(std::process::id() as i32).expect("stat"),
            socket: PathBuf::new(),
        };
        assert!(me.is_alive());
        let other = Daemon {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!other.is_alive());
    }

    #[test]
    fn our_mounts_are_recognised() {
        let entry = |fstype: &str, source: &str| MountEntry {
            mountpoint: PathBuf::from("/m"),
            fstype: fstype.to_owned(),
            source: source.to_owned(),
        };
        assert!(is_our_mount(&entry("fuse.s3cryptfs", "anything"), false));
        assert!(is_our_mount(&entry("fuse", "file:///srv/v"), false));
        assert!(is_our_mount(&entry("fuse", "vault"), true));
        assert!(!is_our_mount(&entry("fuse", "sshfs#host"), false));
        assert!(!is_our_mount(&entry("fuse.sshfs", "host:/x"), true));
    }
}
