//! Extended attributes (and so POSIX ACLs, `system.posix_acl_*`) carried by `get` and `put`,
//! as `rsync -X`/`-A` carry them through a mount: `put` reads a local file's attributes and
//! stores them in its record, `get` writes a vault file's onto the restored copy.
//!
//! The namespaces are the mount's (`fs/xattr.rs`): `user.*`, `security.*`, `trusted.*` and the
//! two ACLs; others (a local `system.*` such as NFSv4 ACLs) are skipped. `trusted.*` is read
//! and written only as root, as the kernel allows. Symlinks carry none (Linux refuses `user.*`
//! on them). A local file system without extended attributes gives nothing to `put`, and to
//! `get` an error for each file that has some: the restore is not exact, and says so.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::fs::Fs;

use super::{ToolError, ToolResult};

/// One extended attribute: name (e.g. `user.note`) and value.
pub type Xattr = (Vec<u8>, Vec<u8>);

/// Largest value read from a local file (the kernel's own limit).
const MAX_VALUE: usize = 64 * 1024;
/// Largest list of names read from a local file (the kernel's own limit).
const MAX_LIST: usize = 64 * 1024;

fn carried(name: &[u8]) -> bool {
    [b"user.".as_slice(), b"security.", b"trusted."]
        .iter()
        .any(|p| name.starts_with(p))
        || name == b"system.posix_acl_access"
        || name == b"system.posix_acl_default"
}

fn privileged() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Reads into a buffer of `cap` bytes with `call`, which returns a length or -1 (errno).
fn read_sized(cap: usize, call: impl Fn(*mut libc::c_void, usize) -> isize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; cap];
    let n = call(buf.as_mut_ptr().cast(), buf.len());
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// The extended attributes of the local file at `path` (not following a symlink) that the
/// vault keeps.
pub fn read_local(path: &Path) -> io::Result<Vec<Xattr>> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let list = match read_sized(MAX_LIST, |buf, len| {
        // SAFETY: `c` is a NUL-terminated path, `buf` points to `len` writable bytes.
        unsafe { libc::llistxattr(c.as_ptr(), buf.cast(), len) }
    }) {
        Ok(l) => l,
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for name in list.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        if !carried(name) || (name.starts_with(b"trusted.") && !privileged()) {
            continue;
        }
        let cname = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
        match read_sized(MAX_VALUE, |buf, len| {
            // SAFETY: both names are NUL-terminated, `buf` points to `len` writable bytes.
            unsafe { libc::lgetxattr(c.as_ptr(), cname.as_ptr(), buf, len) }
        }) {
            Ok(value) => out.push((name.to_vec(), value)),
            // Removed since it was listed.
            Err(e) if e.raw_os_error() == Some(libc::ENODATA) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Store `xattrs` on the vault inode `ino` (`vpath` for messages).
pub async fn store(fs: &Fs, ino: u64, vpath: &str, xattrs: &[Xattr]) -> ToolResult<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    for (name, value) in xattrs {
        fs.setxattr(ino, name, value, 0, uid)
            .await
            .map_err(ToolError::fs(&format!(
                "{vpath} (extended attribute {})",
                String::from_utf8_lossy(name)
            )))?;
    }
    Ok(())
}

/// The extended attributes of the vault inode `ino`.
pub async fn load(fs: &Fs, ino: u64, vpath: &str) -> ToolResult<Vec<Xattr>> {
    let list = (fs.listxattr(ino, privileged()).await).map_err(ToolError::fs(vpath))?;
    let mut out = Vec::new();
    for name in list.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let value = (fs.getxattr(ino, name).await).map_err(ToolError::fs(vpath))?;
        out.push((name.to_vec(), value));
    }
    Ok(out)
}

/// The extended attributes of the vault entry at `vpath`, looked up afresh.
pub async fn load_path(fs: &Fs, vpath: &str) -> ToolResult<Vec<Xattr>> {
    let attr = super::files::resolve(fs, vpath).await?;
    load(fs, attr.ino, vpath).await
}

/// Write `xattrs` onto the local file or directory open at `fd` (`shown` for messages).
pub fn apply(fd: BorrowedFd<'_>, shown: &Path, xattrs: &[Xattr]) -> ToolResult<()> {
    for (name, value) in xattrs {
        let cname = CString::new(name.as_slice()).map_err(|_| {
            ToolError::Refused(format!(
                "{}: an attribute name holds a NUL",
                shown.display()
            ))
        })?;
        // SAFETY: `fd` is open, `cname` NUL-terminated, `value` is `value.len()` bytes.
        let r = unsafe {
            libc::fsetxattr(
                fd.as_raw_fd(),
                cname.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        };
        if r != 0 {
            let e = io::Error::last_os_error();
            return Err(ToolError::io(format!(
                "setting extended attribute {} on {}",
                String::from_utf8_lossy(name),
                shown.display()
            ))(e));
        }
    }
    Ok(())
}
