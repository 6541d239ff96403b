//! `ls`, `cat`, and what `get` (`get.rs`) and `put` (`put.rs`) share: files in and out of a
//! vault through the file system layer (`fs::Fs`, no kernel, no FUSE), so they see and write
//! exactly what a mount would.
//!
//! `get` and `put` are recursive and keep modification times, permission bits and symlinks;
//! `put` also records the local owner. A failure on one entry is reported and the rest
//! goes on (a restore should save what it can); the command then exits non-zero. Local files
//! are created private (0600/0700) and get their final mode only once complete, and an
//! existing destination entry is replaced, never written through: `get` works relative to
//! directories it holds open and follows no symlink below the destination, and a name from
//! the vault that is not one path component is refused.

use std::ffi::OsStr;
use std::io::Write;
use std::sync::Arc;
use std::time::SystemTime;

use crate::crypto::VaultKeys;
use crate::fs::{Attr, Fs, FsError, FsOptions, Kind};

use super::{Access, OpenedStore, Target, ToolError, ToolResult, format_bytes, open_target};

/// Bytes per read or write call through the file system layer.
pub(super) const CHUNK: usize = 1024 * 1024;

/// A file system over an opened vault, with its private staging directory (sealed staging
/// files only; removed on drop).
pub struct VaultFs {
    pub fs: Arc<Fs>,
    _staging: tempfile::TempDir,
}

impl VaultFs {
    pub fn open(opened: &OpenedStore, keys: VaultKeys, read_only: bool) -> ToolResult<VaultFs> {
        let staging = tempfile::Builder::new()
            .prefix("s3cryptfs-staging-")
            .tempdir()
            .map_err(ToolError::io("creating a staging directory"))?;
        let mut opts = FsOptions::for_current_user(staging.path().to_path_buf());
        opts.read_only = read_only;
        // A plain folder copy lost every object's metadata, attribute records included:
        // its contents still authenticate, its attributes are the defaults.
        let keys = if opened.plain {
            keys.with_attribute_records(false)
        } else {
            keys
        };
        opts.metadata_ttl = std::time::Duration::from_secs(60);
        let fs = Fs::new(
            opened.store.clone(),
            opened.prefix.clone(),
            Arc::new(keys),
            opts,
        )
        .map_err(ToolError::fs("file system"))?;
        Ok(VaultFs {
            fs,
            _staging: staging,
        })
    }
}

/// A vault path without leading or trailing slashes (`""` is the root); `.`/`..` and empty
/// components are refused.
pub fn vault_path(path: &str) -> ToolResult<String> {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    for c in trimmed.split('/') {
        if c.is_empty() || c == "." || c == ".." {
            return Err(ToolError::Usage(format!(
                "{path:?}: vault paths may not contain empty, `.` or `..` components"
            )));
        }
    }
    Ok(trimmed.to_owned())
}

pub(super) fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// The attributes (and inode) of the vault path `path` (normalized, see [`vault_path`]).
pub async fn resolve(fs: &Fs, path: &str) -> ToolResult<Attr> {
    let mut attr = fs
        .getattr(fs.root_ino())
        .await
        .map_err(ToolError::fs(path))?;
    if path.is_empty() {
        return Ok(attr);
    }
    for name in path.split('/') {
        attr = fs
            .lookup(attr.ino, OsStr::new(name))
            .await
            .map_err(ToolError::fs(path))?;
    }
    Ok(attr)
}

/// What [`list`] found in a directory: its entries with their attributes, by name, and the
/// entries whose attributes could not be had (a forged or damaged object), by vault path.
#[derive(Debug, Default)]
pub struct Listing {
    pub entries: Vec<(String, Attr)>,
    pub failures: Vec<(String, ToolError)>,
}

/// The entries of directory `path`; a file path lists itself. An entry that cannot be read
/// does not hide the others: it is a failure of its own.
pub async fn list(fs: &Fs, path: &str) -> ToolResult<Listing> {
    let attr = resolve(fs, path).await?;
    let mut out = Listing::default();
    if attr.kind != Kind::Dir {
        let name = path.rsplit('/').next().unwrap_or(path).to_owned();
        out.entries.push((name, attr));
        return Ok(out);
    }
    let entries = fs.list_dir(path).await.map_err(ToolError::fs(path))?;
    for e in entries {
        let child = join(path, &e.name);
        // A lookup, as the kernel's, not a getattr of the number the listing gave: the inode
        // table keeps a bounded number of inodes nobody looked up, so in a directory larger
        // than that the first entries' numbers would be gone by the time they are asked for.
        // Each entry's inode is held until the caller forgets it (`get` does, once copied).
        match fs.lookup(attr.ino, OsStr::new(&e.name)).await {
            Ok(a) => out.entries.push((e.name, a)),
            Err(source) => out
                .failures
                .push((child.clone(), ToolError::fs(&child)(source))),
        }
    }
    out.entries.sort_by(|a, b| a.0.cmp(&b.0));
    out.failures.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Copy the content of the regular file `ino` to `out`; returns the bytes copied.
pub async fn read_file(fs: &Arc<Fs>, ino: u64, path: &str, out: &mut dyn Write) -> ToolResult<u64> {
    let fh = fs
        .open(ino, libc::O_RDONLY)
        .await
        .map_err(ToolError::fs(path))?;
    let result = async {
        let mut offset = 0u64;
        loop {
            let data = fs
                .read(fh, offset, CHUNK as u32)
                .await
                .map_err(ToolError::fs(path))?;
            if data.is_empty() {
                return Ok::<u64, ToolError>(offset);
            }
            out.write_all(&data)
                .map_err(ToolError::io(format!("writing {path}")))?;
            offset += data.len() as u64;
        }
    }
    .await;
    let released = fs.release(fh).await.map_err(ToolError::fs(path));
    let n = result?;
    released?;
    Ok(n)
}

/// Counts of a `get` or `put`, and the entries that failed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransferReport {
    pub files: u64,
    pub directories: u64,
    pub symlinks: u64,
    pub bytes: u64,
    /// (path, reason)
    pub failures: Vec<(String, String)>,
}

impl TransferReport {
    pub(super) fn summary(&self, verb: &str) -> String {
        format!(
            "{verb} {} files ({}), {} directories, {} symlinks{}",
            self.files,
            format_bytes(self.bytes),
            self.directories,
            self.symlinks,
            if self.failures.is_empty() {
                String::new()
            } else {
                format!("; {} failed", self.failures.len())
            }
        )
    }
}

/// `ls -l`'s size column: `MAJOR, MINOR` for a device (glibc's `dev_t` encoding).
fn size_column(attr: &Attr) -> String {
    match attr.kind {
        Kind::CharDevice(d) | Kind::BlockDevice(d) => {
            let major = ((d >> 8) & 0xfff) | ((d >> 32) & !0xfff);
            let minor = (d & 0xff) | ((d >> 12) & !0xff);
            format!("{major}, {minor}")
        }
        _ => attr.size.to_string(),
    }
}

/// What `ls` and warnings call a kind.
pub(super) fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::File => "regular file",
        Kind::Dir => "directory",
        Kind::Symlink => "symlink",
        Kind::Fifo => "fifo",
        Kind::Socket => "socket",
        Kind::CharDevice(_) => "character device",
        Kind::BlockDevice(_) => "block device",
    }
}

/// `rwxr-xr-x`-style mode string with the type letter.
pub fn mode_string(kind: Kind, perm: u32) -> String {
    let mut s = String::with_capacity(10);
    s.push(match kind {
        Kind::Dir => 'd',
        Kind::Symlink => 'l',
        Kind::File => '-',
        Kind::Fifo => 'p',
        Kind::Socket => 's',
        Kind::CharDevice(_) => 'c',
        Kind::BlockDevice(_) => 'b',
    });
    for (shift, special, special_char) in [(6, 0o4000, 's'), (3, 0o2000, 's'), (0, 0o1000, 't')] {
        let bits = (perm >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        let x = bits & 1 != 0;
        s.push(match (perm & special != 0, x) {
            (true, true) => special_char,
            (true, false) => special_char.to_ascii_uppercase(),
            (false, true) => 'x',
            (false, false) => '-',
        });
    }
    s
}

/// `YYYY-MM-DD HH:MM` in UTC.
pub fn format_time(t: SystemTime) -> String {
    match jiff::Timestamp::try_from(t) {
        Ok(ts) => ts.strftime("%Y-%m-%d %H:%M").to_string(),
        // Beyond jiff's range (years -9999..=9999): no file carries such a time.
        Err(_) => "????-??-?? ??:??".to_owned(),
    }
}

pub(super) async fn unlocked_fs(
    t: &Target,
    opened: &OpenedStore,
    read_only: bool,
) -> ToolResult<VaultFs> {
    let unlocked = super::unlock(opened, t).await?;
    VaultFs::open(opened, unlocked.keys, read_only)
}

/// `ls [-l] [PATH]`.
pub async fn run_ls(t: &Target, path: Option<&str>, long: bool) -> ToolResult<()> {
    let opened = open_target(t, Access::ReadOnly)?;
    let path = vault_path(path.unwrap_or(""))?;
    let vfs = unlocked_fs(t, &opened, true).await?;
    let listing = list(&vfs.fs, &path).await?;
    let mut out = String::new();
    for (name, attr) in listing.entries {
        let suffix = if attr.kind == Kind::Dir { "/" } else { "" };
        if long {
            let link = if attr.kind == Kind::Symlink {
                match vfs.fs.readlink(attr.ino).await {
                    Ok(t) => format!(" -> {}", String::from_utf8_lossy(&t)),
                    Err(e) => format!(" -> ({e})"),
                }
            } else {
                String::new()
            };
            out.push_str(&format!(
                "{} {:>12} {} {name}{suffix}{link}\n",
                mode_string(attr.kind, attr.perm),
                size_column(&attr),
                format_time(attr.mtime)
            ));
        } else {
            out.push_str(&format!("{name}{suffix}\n"));
        }
    }
    print!("{out}");
    let failures: Vec<String> = listing
        .failures
        .iter()
        .map(|(_, e)| e.to_string())
        .collect();
    report_failures(&failures, "read")
}

/// `cat PATH...`.
pub async fn run_cat(t: &Target, paths: &[String]) -> ToolResult<()> {
    let opened = open_target(t, Access::ReadOnly)?;
    let paths = paths
        .iter()
        .map(|p| vault_path(p))
        .collect::<ToolResult<Vec<_>>>()?;
    let vfs = unlocked_fs(t, &opened, true).await?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for path in &paths {
        let attr = resolve(&vfs.fs, path).await?;
        match attr.kind {
            Kind::File => {
                read_file(&vfs.fs, attr.ino, path, &mut out).await?;
            }
            Kind::Dir => {
                return Err(ToolError::Fs {
                    path: path.clone(),
                    source: FsError::IsDir,
                });
            }
            Kind::Symlink => {
                let target = vfs
                    .fs
                    .readlink(attr.ino)
                    .await
                    .map_err(ToolError::fs(path))?;
                return Err(ToolError::Usage(format!(
                    "{path} is a symlink to {}; cat its target",
                    String::from_utf8_lossy(&target)
                )));
            }
            k => {
                return Err(ToolError::Usage(format!(
                    "{path} is a {}, which has no content to print",
                    kind_name(k)
                )));
            }
        }
    }
    out.flush()
        .map_err(ToolError::io("writing to standard output"))?;
    Ok(())
}

pub(super) fn finish(report: TransferReport) -> ToolResult<()> {
    let failures: Vec<String> = report
        .failures
        .iter()
        .map(|(path, reason)| format!("{path}: {reason}"))
        .collect();
    report_failures(&failures, "copied")
}

/// Each of `failures` on stderr, then the error that makes the command exit 1 saying how many
/// entries could not be `verb` (read, copied).
fn report_failures(failures: &[String], verb: &str) -> ToolResult<()> {
    if failures.is_empty() {
        return Ok(());
    }
    for f in failures {
        eprintln!("failed: {f}");
    }
    Err(ToolError::Problems(format!(
        "{} entries could not be {verb}",
        failures.len()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn paths_modes_and_times() {
        assert_eq!(vault_path("/").expect("root"), "");
        assert_eq!(vault_path("/a/b/").expect("a/b"), "a/b");
        assert!(vault_path("a/../b").is_err());
        assert!(vault_path("a//b").is_err());
        assert_eq!(mode_string(Kind::File, 0o644), "-rw-r--r--");
        assert_eq!(mode_string(Kind::Dir, 0o1777), "drwxrwxrwt");
        assert_eq!(mode_string(Kind::File, 0o4755), "-rwsr-xr-x");
        assert_eq!(mode_string(Kind::Fifo, 0o644), "prw-r--r--");
        assert_eq!(mode_string(Kind::Socket, 0o755), "srwxr-xr-x");
        assert_eq!(mode_string(Kind::CharDevice(0x103), 0o666), "crw-rw-rw-");
        assert_eq!(mode_string(Kind::BlockDevice(0x700), 0o660), "brw-rw----");
        assert_eq!(format_time(UNIX_EPOCH), "1970-01-01 00:00");
        assert_eq!(
            format_time(UNIX_EPOCH + Duration::from_secs(1_709_251_199)),
            "2024-02-29 23:59"
        );
        assert_eq!(
            format_time(UNIX_EPOCH - Duration::from_secs(86_400)),
            "1969-12-31 00:00"
        );
    }
}
