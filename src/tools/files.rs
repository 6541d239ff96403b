//! `ls`, `cat`, `get`, `put`: files in and out of a vault through the file system layer
//! (`fs::Fs`, no kernel, no FUSE), so they see and write exactly what a mount would.
//!
//! `get` and `put` are recursive and keep modification times, permission bits and symlinks;
//! `put` also records the local owner. A failure on one entry is reported and the rest
//! goes on (a restore should save what it can); the command then exits non-zero. Local files
//! are created private (0600/0700) and get their final mode only once complete, and an
//! existing destination entry is replaced, never written through: `get` works relative to
//! directories it holds open and follows no symlink below the destination, and a name from
//! the vault that is not one path component is refused.

use std::ffi::{OsStr, OsString};
use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{Mode, UtimensatFlags, fchmod, fstatat, futimens, mkdirat, utimensat};
use nix::sys::time::TimeSpec;
use nix::unistd::{UnlinkatFlags, symlinkat, unlinkat};

use crate::crypto::VaultKeys;
use crate::fs::{Attr, Fs, FsError, FsOptions, Kind};

use super::{Access, OpenedStore, Target, ToolError, ToolResult, format_bytes, open_target};

/// Bytes per read or write call through the file system layer.
const CHUNK: usize = 1024 * 1024;

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

fn join(dir: &str, name: &str) -> String {
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

/// The entries of directory `path` with their attributes, by name; a file path lists itself.
pub async fn list(fs: &Fs, path: &str) -> ToolResult<Vec<(String, Attr)>> {
    let attr = resolve(fs, path).await?;
    if attr.kind != Kind::Dir {
        let name = path.rsplit('/').next().unwrap_or(path).to_owned();
        return Ok(vec![(name, attr)]);
    }
    let entries = fs.list_dir(path).await.map_err(ToolError::fs(path))?;
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let a = fs
            .getattr(e.ino)
            .await
            .map_err(ToolError::fs(&join(path, &e.name)))?;
        out.push((e.name, a));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
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
    fn summary(&self, verb: &str) -> String {
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

/// Where `get` puts one entry: a name in a local directory it holds open. Every change is
/// made relative to that directory (`openat`, `mkdirat`, `symlinkat`, `unlinkat`, never
/// following a symlink in the last component), so neither a symlink found at the destination
/// nor one put in place of a directory `get` made (by the vault's own symlinks being restored,
/// or by anyone meanwhile) is ever walked through.
struct Place {
    dir: Arc<OwnedFd>,
    name: OsString,
    /// The local path, for messages only.
    shown: PathBuf,
}

fn errno_io(what: String) -> impl FnOnce(Errno) -> ToolError {
    move |e| ToolError::Io {
        what,
        source: e.into(),
    }
}

fn timespec(t: SystemTime) -> TimeSpec {
    let (secs, nsec) = crate::fs::attr::split_time(t);
    TimeSpec::new(secs, i64::from(nsec))
}

/// Whether `name`, as the vault's listing gave it, is one local path component. The file
/// system layer skips other names already; this holds whatever the layer below hands over.
fn is_one_component(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

/// Open `path`, a directory the user named (a symlink to one is fine: the user chose it).
fn open_user_dir(path: &Path) -> ToolResult<OwnedFd> {
    let path = if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    };
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(path)
        .map(OwnedFd::from)
        .map_err(ToolError::io(format!(
            "opening the directory {}",
            path.display()
        )))
}

impl Place {
    /// Remove whatever non-directory entry is here, so it is replaced rather than written
    /// through.
    fn clear(&self) -> ToolResult<()> {
        match fstatat(
            &*self.dir,
            self.name.as_os_str(),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {
                Err(ToolError::Refused(format!(
                    "{} is a directory; refusing to replace it with a file",
                    self.shown.display()
                )))
            }
            Ok(_) => unlinkat(
                &*self.dir,
                self.name.as_os_str(),
                UnlinkatFlags::NoRemoveDir,
            )
            .map_err(errno_io(format!("replacing {}", self.shown.display()))),
            Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(errno_io(format!("{}", self.shown.display()))(e)),
        }
    }

    /// The directory here, made (0700) if missing; anything else here (a symlink included)
    /// is refused.
    fn open_or_make_dir(&self) -> ToolResult<OwnedFd> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let open = || openat(&*self.dir, self.name.as_os_str(), flags, Mode::empty());
        let not_dir = || {
            ToolError::Refused(format!(
                "{} exists and is not a directory",
                self.shown.display()
            ))
        };
        match open() {
            Ok(fd) => Ok(fd),
            Err(Errno::ENOENT) => {
                match mkdirat(&*self.dir, self.name.as_os_str(), Mode::S_IRWXU) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => {
                        return Err(errno_io(format!("creating {}", self.shown.display()))(e));
                    }
                }
                open().map_err(|e| match e {
                    Errno::ENOTDIR | Errno::ELOOP => not_dir(),
                    e => errno_io(format!("opening {}", self.shown.display()))(e),
                })
            }
            Err(Errno::ENOTDIR | Errno::ELOOP) => Err(not_dir()),
            Err(e) => Err(errno_io(format!("opening {}", self.shown.display()))(e)),
        }
    }

    /// A place for the entry `name` of the directory `dir` holds.
    fn child(dir: &Arc<OwnedFd>, shown: &Path, name: &str) -> Place {
        Place {
            dir: dir.clone(),
            name: OsString::from(name),
            shown: shown.join(name),
        }
    }
}

async fn get_file(fs: &Arc<Fs>, vpath: &str, attr: &Attr, place: &Place) -> ToolResult<u64> {
    place.clear()?;
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = openat(
        &*place.dir,
        place.name.as_os_str(),
        flags,
        Mode::S_IRUSR | Mode::S_IWUSR,
    )
    .map_err(errno_io(format!("creating {}", place.shown.display())))?;
    let mut file = fs::File::from(fd);
    let shown = place.shown.display();
    let mut out = std::io::BufWriter::with_capacity(CHUNK, &mut file);
    let n = read_file(fs, attr.ino, vpath, &mut out).await?;
    out.flush()
        .map_err(ToolError::io(format!("writing {shown}")))?;
    drop(out);
    file.set_permissions(fs::Permissions::from_mode(attr.perm & 0o7777))
        .map_err(ToolError::io(format!("chmod {shown}")))?;
    let ts = timespec(attr.mtime);
    futimens(&file, &ts, &ts).map_err(errno_io(format!("setting the time of {shown}")))?;
    Ok(n)
}

async fn get_symlink(fs: &Fs, vpath: &str, attr: &Attr, place: &Place) -> ToolResult<()> {
    let target = fs.readlink(attr.ino).await.map_err(ToolError::fs(vpath))?;
    place.clear()?;
    let shown = place.shown.display();
    symlinkat(
        OsStr::from_bytes(&target),
        &*place.dir,
        place.name.as_os_str(),
    )
    .map_err(errno_io(format!("creating symlink {shown}")))?;
    let ts = timespec(attr.mtime);
    utimensat(
        &*place.dir,
        place.name.as_os_str(),
        &ts,
        &ts,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(errno_io(format!("setting the time of {shown}")))
}

/// Queue the entries of the vault directory `vpath` for the local directory `dir` holds.
async fn queue_children(
    fs: &Fs,
    vpath: &str,
    dir: &Arc<OwnedFd>,
    shown: &Path,
    stack: &mut Vec<(String, Attr, Place)>,
    report: &mut TransferReport,
) -> ToolResult<()> {
    let entries = list(fs, vpath).await?;
    for (name, a) in entries.into_iter().rev() {
        let child = join(vpath, &name);
        if !is_one_component(&name) {
            report.failures.push((
                child,
                format!("refusing the name {name:?}: not one path component"),
            ));
            continue;
        }
        stack.push((child, a, Place::child(dir, shown, &name)));
    }
    Ok(())
}

/// Copy the vault path `src` (normalized) to the local `dest`: an existing directory receives
/// it by its name; the root's contents go into `dest` itself. Nothing is written outside
/// `dest`, and no symlink below it is followed (see [`Place`]).
pub async fn get(fs: &Arc<Fs>, src: &str, dest: &Path) -> ToolResult<TransferReport> {
    let attr = resolve(fs, src).await?;
    let dest_is_dir = fs::metadata(dest).map(|m| m.is_dir()).unwrap_or(false);
    let mut report = TransferReport::default();
    let mut stack = Vec::new();
    let mut dirs: Vec<(Arc<OwnedFd>, Attr, PathBuf)> = Vec::new();
    match src.rsplit('/').next() {
        Some(name) if !src.is_empty() && dest_is_dir => {
            let dir = Arc::new(open_user_dir(dest)?);
            stack.push((src.to_owned(), attr, Place::child(&dir, dest, name)));
        }
        _ => match (dest.parent(), dest.file_name()) {
            (Some(parent), Some(name)) => {
                let place = Place {
                    dir: Arc::new(open_user_dir(parent)?),
                    name: name.to_owned(),
                    shown: dest.to_path_buf(),
                };
                stack.push((src.to_owned(), attr, place));
            }
            // `.`, `..`, `/`: a directory that can only be the vault directory's copy.
            _ if attr.kind == Kind::Dir => {
                let dir = Arc::new(open_user_dir(dest)?);
                queue_children(fs, src, &dir, dest, &mut stack, &mut report).await?;
                report.directories += 1;
                dirs.push((dir, attr, dest.to_path_buf()));
            }
            _ => {
                return Err(ToolError::Usage(format!(
                    "{}: name a file to write {src} to",
                    dest.display()
                )));
            }
        },
    }
    while let Some((vpath, attr, place)) = stack.pop() {
        let shown = if vpath.is_empty() { "/" } else { &vpath };
        let result = match attr.kind {
            Kind::File => get_file(fs, &vpath, &attr, &place).await.map(|n| {
                report.files += 1;
                report.bytes += n;
            }),
            Kind::Symlink => get_symlink(fs, &vpath, &attr, &place)
                .await
                .map(|()| report.symlinks += 1),
            Kind::Dir => match place.open_or_make_dir() {
                Ok(fd) => {
                    let dir = Arc::new(fd);
                    let r = queue_children(fs, &vpath, &dir, &place.shown, &mut stack, &mut report)
                        .await;
                    if r.is_ok() {
                        report.directories += 1;
                        dirs.push((dir, attr, place.shown.clone()));
                    }
                    r
                }
                Err(e) => Err(e),
            },
            // As `put` skips them: a node has no content to copy, and making devices needs
            // root. rsync through the mount copies them.
            k => {
                log::warn!(
                    "{shown}: a {} node, not a regular file, directory or symlink; skipped",
                    kind_name(k)
                );
                Ok(())
            }
        };
        if let Err(e) = result {
            log::warn!("{shown}: {e}");
            report.failures.push((shown.to_owned(), e.to_string()));
        }
    }
    // Children first: a directory's time would change as entries are added to it. Through
    // the descriptors opened above, so a directory renamed or replaced meanwhile is not
    // looked up again by path.
    for (dir, attr, shown) in dirs.into_iter().rev() {
        let ts = timespec(attr.mtime);
        let r = fchmod(&*dir, Mode::from_bits_truncate(attr.perm & 0o7777))
            .map_err(errno_io(format!("chmod {}", shown.display())))
            .and_then(|()| {
                futimens(&*dir, &ts, &ts)
                    .map_err(errno_io(format!("setting the time of {}", shown.display())))
            });
        if let Err(e) = r {
            report
                .failures
                .push((shown.display().to_string(), e.to_string()));
        }
    }
    Ok(report)
}

fn name_of(path: &Path) -> ToolResult<String> {
    path.file_name()
        .and_then(OsStr::to_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            ToolError::Usage(format!(
                "{}: the name must be valid UTF-8 (object keys are)",
                path.display()
            ))
        })
}

fn mtime_of(meta: &fs::Metadata) -> SystemTime {
    meta.modified().unwrap_or(UNIX_EPOCH)
}

async fn put_file(
    fs: &Arc<Fs>,
    parent: u64,
    name: &str,
    vpath: &str,
    local: &Path,
    meta: &fs::Metadata,
) -> ToolResult<u64> {
    let mut file =
        fs::File::open(local).map_err(ToolError::io(format!("opening {}", local.display())))?;
    let perm = meta.mode() & 0o7777;
    let (attr, fh) = fs
        .create(
            parent,
            OsStr::new(name),
            perm,
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
            meta.uid(),
            meta.gid(),
        )
        .await
        .map_err(ToolError::fs(vpath))?;
    let result = async {
        let mut buf = vec![0u8; CHUNK];
        let mut offset = 0u64;
        loop {
            let n = file
                .read(&mut buf)
                .map_err(ToolError::io(format!("reading {}", local.display())))?;
            if n == 0 {
                break;
            }
            fs.write(fh, offset, &buf[..n])
                .await
                .map_err(ToolError::fs(vpath))?;
            offset += n as u64;
        }
        // While the file is open and dirty, attributes ride along with the upload.
        fs.setattr(
            attr.ino,
            None,
            Some(perm),
            Some(meta.uid()),
            Some(meta.gid()),
            Some(mtime_of(meta)),
        )
        .await
        .map_err(ToolError::fs(vpath))?;
        fs.flush(fh).await.map_err(ToolError::fs(vpath))?;
        Ok::<u64, ToolError>(offset)
    }
    .await;
    let released = fs.release(fh).await.map_err(ToolError::fs(vpath));
    let n = result?;
    released?;
    Ok(n)
}

async fn put_symlink(
    fs: &Arc<Fs>,
    parent: u64,
    name: &str,
    vpath: &str,
    local: &Path,
    meta: &fs::Metadata,
) -> ToolResult<()> {
    let target =
        fs::read_link(local).map_err(ToolError::io(format!("reading link {}", local.display())))?;
    match fs.lookup(parent, OsStr::new(name)).await {
        Ok(a) if a.kind == Kind::Dir => {
            return Err(ToolError::Refused(format!(
                "{vpath} is a directory in the vault; refusing to replace it with a symlink"
            )));
        }
        Ok(_) => fs
            .unlink(parent, OsStr::new(name))
            .await
            .map_err(ToolError::fs(vpath))?,
        Err(FsError::NotFound) => {}
        Err(e) => return Err(ToolError::fs(vpath)(e)),
    }
    let attr = fs
        .symlink(parent, OsStr::new(name), &target, meta.uid(), meta.gid())
        .await
        .map_err(ToolError::fs(vpath))?;
    fs.setattr(attr.ino, None, None, None, None, Some(mtime_of(meta)))
        .await
        .map_err(ToolError::fs(vpath))?;
    Ok(())
}

/// The inode of directory `name` in `parent`, created if missing.
async fn ensure_dir(
    fs: &Fs,
    parent: u64,
    name: &str,
    vpath: &str,
    meta: &fs::Metadata,
) -> ToolResult<u64> {
    match fs.lookup(parent, OsStr::new(name)).await {
        Ok(a) if a.kind == Kind::Dir => Ok(a.ino),
        Ok(_) => Err(ToolError::Refused(format!(
            "{vpath} exists in the vault and is not a directory"
        ))),
        Err(FsError::NotFound) => fs
            .mkdir(
                parent,
                OsStr::new(name),
                meta.mode() & 0o7777,
                meta.uid(),
                meta.gid(),
            )
            .await
            .map(|a| a.ino)
            .map_err(ToolError::fs(vpath)),
        Err(e) => Err(ToolError::fs(vpath)(e)),
    }
}

/// Copy the local `src` into the vault at `dest` (normalized): an existing directory receives
/// it by its name, anything else is created or replaced.
pub async fn put(fs: &Arc<Fs>, src: &Path, dest: &str) -> ToolResult<TransferReport> {
    let meta = fs::symlink_metadata(src).map_err(ToolError::io(format!("{}", src.display())))?;
    let (parent_path, name) = match resolve(fs, dest).await {
        Ok(a) if a.kind == Kind::Dir => (dest.to_owned(), name_of(src)?),
        _ if dest.is_empty() => (String::new(), name_of(src)?),
        _ => match dest.rsplit_once('/') {
            Some((p, n)) => (p.to_owned(), n.to_owned()),
            None => (String::new(), dest.to_owned()),
        },
    };
    let parent = resolve(fs, &parent_path).await?;
    if parent.kind != Kind::Dir {
        return Err(ToolError::Fs {
            path: parent_path,
            source: FsError::NotDir,
        });
    }
    let mut report = TransferReport::default();
    let mut stack: Vec<(PathBuf, fs::Metadata, u64, String, String)> = vec![(
        src.to_path_buf(),
        meta,
        parent.ino,
        name.clone(),
        join(&parent_path, &name),
    )];
    let mut dirs = Vec::new();
    while let Some((local, meta, parent, name, vpath)) = stack.pop() {
        let ft = meta.file_type();
        let result = if ft.is_file() {
            put_file(fs, parent, &name, &vpath, &local, &meta)
                .await
                .map(|n| {
                    report.files += 1;
                    report.bytes += n;
                })
        } else if ft.is_symlink() {
            put_symlink(fs, parent, &name, &vpath, &local, &meta)
                .await
                .map(|()| report.symlinks += 1)
        } else if ft.is_dir() {
            match ensure_dir(fs, parent, &name, &vpath, &meta).await {
                Ok(ino) => {
                    report.directories += 1;
                    let children = read_local_dir(&local);
                    match children {
                        Ok(children) => {
                            for (child, child_meta) in children.into_iter().rev() {
                                match name_of(&child) {
                                    Ok(n) => {
                                        let v = join(&vpath, &n);
                                        stack.push((child, child_meta, ino, n, v));
                                    }
                                    Err(e) => report
                                        .failures
                                        .push((child.display().to_string(), e.to_string())),
                                }
                            }
                            dirs.push((ino, vpath.clone(), meta));
                            Ok(())
                        }
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            }
        } else {
            Err(ToolError::Refused(format!(
                "{}: not a regular file, directory or symlink; skipped",
                local.display()
            )))
        };
        if let Err(e) = result {
            log::warn!("{}: {e}", local.display());
            report
                .failures
                .push((local.display().to_string(), e.to_string()));
        }
    }
    for (ino, vpath, meta) in dirs.into_iter().rev() {
        let r = fs
            .setattr(
                ino,
                None,
                Some(meta.mode() & 0o7777),
                Some(meta.uid()),
                Some(meta.gid()),
                Some(mtime_of(&meta)),
            )
            .await;
        if let Err(e) = r {
            report.failures.push((vpath, e.to_string()));
        }
    }
    fs.flush_all().await.map_err(ToolError::fs(dest))?;
    Ok(report)
}

fn read_local_dir(dir: &Path) -> ToolResult<Vec<(PathBuf, fs::Metadata)>> {
    let what = || format!("reading {}", dir.display());
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(ToolError::io(what()))? {
        let entry = entry.map_err(ToolError::io(what()))?;
        let path = entry.path();
        let meta = fs::symlink_metadata(&path).map_err(ToolError::io(what()))?;
        out.push((path, meta));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
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
fn kind_name(kind: Kind) -> &'static str {
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

async fn unlocked_fs(t: &Target, opened: &OpenedStore, read_only: bool) -> ToolResult<VaultFs> {
    let unlocked = super::unlock(opened, t).await?;
    VaultFs::open(opened, unlocked.keys, read_only)
}

/// `ls [-l] [PATH]`.
pub async fn run_ls(t: &Target, path: Option<&str>, long: bool) -> ToolResult<()> {
    let opened = open_target(t, Access::ReadOnly)?;
    let path = vault_path(path.unwrap_or(""))?;
    let vfs = unlocked_fs(t, &opened, true).await?;
    let entries = list(&vfs.fs, &path).await?;
    let mut out = String::new();
    for (name, attr) in entries {
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
    Ok(())
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

/// `get SRC_PATH DEST`.
pub async fn run_get(t: &Target, src: &str, dest: &Path) -> ToolResult<()> {
    let opened = open_target(t, Access::ReadOnly)?;
    let src = vault_path(src)?;
    if opened.plain {
        eprintln!(
            "reading {} as a plain copy: object metadata is gone, so modes fall back to \
             0644/0755 and times to the copy's file times",
            opened.url
        );
    }
    let vfs = unlocked_fs(t, &opened, true).await?;
    let report = get(&vfs.fs, &src, dest).await?;
    println!("{}", report.summary("restored"));
    finish(report)
}

/// `put LOCAL_SRC DEST_PATH`.
pub async fn run_put(t: &Target, src: &Path, dest: &str) -> ToolResult<()> {
    let opened = open_target(t, Access::ReadWrite)?;
    let dest = vault_path(dest)?;
    let vfs = unlocked_fs(t, &opened, false).await?;
    let report = put(&vfs.fs, src, &dest).await?;
    println!("{}", report.summary("stored"));
    finish(report)
}

fn finish(report: TransferReport) -> ToolResult<()> {
    if report.failures.is_empty() {
        return Ok(());
    }
    for (path, reason) in &report.failures {
        eprintln!("failed: {path}: {reason}");
    }
    Err(ToolError::Problems(format!(
        "{} entries could not be copied",
        report.failures.len()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
