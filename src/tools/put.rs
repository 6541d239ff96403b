//! `put`: files into a vault, recursively, through the file system layer (see `files.rs`);
//! it records the local owner, mode, mtime and extended attributes (ACLs among them, `xattrs.rs`),
//! and symlinks as symlinks.

use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::files::{CHUNK, TransferReport, finish, join, resolve, unlocked_fs, vault_path};
use super::progress::Progress;
use super::xattrs;
use super::{Access, Target, ToolError, ToolResult, open_target};
use crate::fs::{Fs, FsError, Kind};

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
        let xattrs = xattrs::read_local(local).map_err(ToolError::io(format!(
            "reading the extended attributes of {}",
            local.display()
        )))?;
        xattrs::store(fs, attr.ino, vpath, &xattrs).await?;
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
    // The create's reference, let go as the kernel would: a tree of any size holds only its
    // directories' inodes.
    fs.forget(attr.ino, 1);
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
        Ok(old) => {
            fs.forget(old.ino, 1);
            fs.unlink(parent, OsStr::new(name))
                .await
                .map_err(ToolError::fs(vpath))?
        }
        Err(FsError::NotFound) => {}
        Err(e) => return Err(ToolError::fs(vpath)(e)),
    }
    let attr = fs
        .symlink(parent, OsStr::new(name), &target, meta.uid(), meta.gid())
        .await
        .map_err(ToolError::fs(vpath))?;
    let set = fs
        .setattr(attr.ino, None, None, None, None, Some(mtime_of(meta)))
        .await
        .map_err(ToolError::fs(vpath));
    fs.forget(attr.ino, 1);
    set.map(|_| ())
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
    put_with_progress(fs, src, dest, &Progress::hidden()).await
}

/// [`put`], counting each entry stored on `progress`.
pub async fn put_with_progress(
    fs: &Arc<Fs>,
    src: &Path,
    dest: &str,
    progress: &Progress,
) -> ToolResult<TransferReport> {
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
        let size = meta.len();
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
                            dirs.push((ino, vpath.clone(), meta, local.clone()));
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
        match result {
            Ok(()) => progress.inc(if ft.is_file() { size } else { 0 }),
            Err(e) => {
                progress.println(&format!("{}: {e}", local.display()));
                report
                    .failures
                    .push((local.display().to_string(), e.to_string()));
            }
        }
    }
    progress.finish();
    // Children first, as `get` does; a directory's extended attributes (a default ACL among
    // them) last, so the entries put into it did not inherit it: each has its own.
    for (ino, vpath, meta, local) in dirs.into_iter().rev() {
        let xattrs = xattrs::read_local(&local).map_err(ToolError::io(format!(
            "reading the extended attributes of {}",
            local.display()
        )));
        if let Err(e) = async { xattrs::store(fs, ino, &vpath, &xattrs?).await }.await {
            report.failures.push((vpath.clone(), e.to_string()));
        }
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

/// `put LOCAL_SRC DEST_PATH`.
pub async fn run_put(t: &Target, src: &Path, dest: &str) -> ToolResult<()> {
    let opened = open_target(t, Access::ReadWrite)?;
    let dest = vault_path(dest)?;
    let vfs = unlocked_fs(t, &opened, false).await?;
    let report = put_with_progress(&vfs.fs, src, &dest, &Progress::on_stderr("put")).await?;
    println!("{}", report.summary("stored"));
    finish(report)
}
