//! `get`: files out of a vault, recursively, through the file system layer (see `files.rs`).
//! Local files are created private (0600/0700) and get their final mode only once complete,
//! and an existing destination entry is replaced, never written through: `get` works
//! relative to directories it holds open and follows no symlink below the destination, and a
//! name from the vault that is not one path component is refused. Extended attributes (ACLs
//! among them) are written onto files before their mode, onto directories last (`xattrs.rs`).

use std::ffi::{OsStr, OsString};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{Mode, UtimensatFlags, fchmod, fstatat, futimens, mkdirat, utimensat};
use nix::sys::time::TimeSpec;
use nix::unistd::{UnlinkatFlags, symlinkat, unlinkat};

use super::files::{
    CHUNK, TransferReport, finish, join, kind_name, list, read_file, resolve, unlocked_fs,
    vault_path,
};
use super::progress::Progress;
use super::xattrs;
use super::{Access, Target, ToolError, ToolResult, open_target};
use crate::fs::{Attr, Fs, Kind};

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
    // While the listing's inode is known (a release may forget it).
    let xattrs = xattrs::load(fs, attr.ino, vpath).await?;
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
    let copied = match read_file(fs, attr.ino, vpath, &mut out).await {
        Ok(n) => out
            .flush()
            .map(|()| n)
            .map_err(ToolError::io(format!("writing {shown}"))),
        Err(e) => Err(e),
    };
    drop(out);
    // A file that could not be read whole (a forged or damaged object) leaves nothing behind
    // that could pass for a restored copy.
    let n = copied.inspect_err(|_| {
        let _ = unlinkat(
            &*place.dir,
            place.name.as_os_str(),
            UnlinkatFlags::NoRemoveDir,
        );
    })?;
    // Before the mode: an access ACL sets the group bits, the chmod after it the same mask.
    xattrs::apply(file.as_fd(), &place.shown, &xattrs)?;
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
    let listing = list(fs, vpath).await?;
    report.failures.extend(
        listing
            .failures
            .into_iter()
            .map(|(child, e)| (child, e.to_string())),
    );
    for (name, a) in listing.entries.into_iter().rev() {
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
    get_with_progress(fs, src, dest, &Progress::hidden()).await
}

/// [`get`], counting each entry restored on `progress`.
pub async fn get_with_progress(
    fs: &Arc<Fs>,
    src: &str,
    dest: &Path,
    progress: &Progress,
) -> ToolResult<TransferReport> {
    let attr = resolve(fs, src).await?;
    let dest_is_dir = fs::metadata(dest).map(|m| m.is_dir()).unwrap_or(false);
    let mut report = TransferReport::default();
    let mut stack = Vec::new();
    let mut dirs: Vec<(Arc<OwnedFd>, Attr, PathBuf, String)> = Vec::new();
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
                dirs.push((dir, attr, dest.to_path_buf(), src.to_owned()));
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
                        dirs.push((dir, attr, place.shown.clone(), vpath.clone()));
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
        match result {
            Ok(()) => progress.inc(if attr.kind == Kind::File {
                attr.size
            } else {
                0
            }),
            Err(e) => {
                progress.println(&format!("{shown}: {e}"));
                report.failures.push((shown.to_owned(), e.to_string()));
            }
        }
        // Its listing looked it up; copied, it is let go, so a tree of any size holds only
        // the inodes of the entries still queued.
        fs.forget(attr.ino, 1);
    }
    progress.finish();
    // Children first: a directory's time would change as entries are added to it. Through
    // the descriptors opened above, so a directory renamed or replaced meanwhile is not
    // looked up again by path.
    // Their extended attributes (a default ACL among them) last too, so entries restored
    // into them did not inherit it: each entry got its own.
    for (dir, attr, shown, vpath) in dirs.into_iter().rev() {
        let ts = timespec(attr.mtime);
        let xattrs = match xattrs::load_path(fs, &vpath).await {
            Ok(x) => x,
            Err(e) => {
                report
                    .failures
                    .push((shown.display().to_string(), e.to_string()));
                Vec::new()
            }
        };
        let r = xattrs::apply(dir.as_fd(), &shown, &xattrs)
            .and_then(|()| {
                fchmod(&*dir, Mode::from_bits_truncate(attr.perm & 0o7777))
                    .map_err(errno_io(format!("chmod {}", shown.display())))
            })
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
    let report = get_with_progress(&vfs.fs, &src, dest, &Progress::on_stderr("get")).await?;
    println!("{}", report.summary("restored"));
    finish(report)
}
