//! The FUSE adapter, the only implementation of `fuser::Filesystem`: decode a request, run
//! the matching `Fs` operation on the tokio runtime, reply with data or errno. The fs layer
//! knows nothing of it.
//!
//! FUSE threads never wait on the network: each request is handed to the runtime and
//! answered from there. Errors are mapped to errno in one place ([`FsError::errno`]) and
//! logged here, at `error` for what an operator must see (corrupt objects, failed uploads,
//! objects changed remotely) and `debug` for ordinary results such as ENOENT.
//!
//! Every reply that hands the kernel an entry (lookup, create, mkdir, symlink) comes from an
//! `Fs` call that counted it; `forget` (and `batch_forget`, split into forgets) gives the
//! counts back, so the fs frees inodes the kernel no longer holds.

use std::ffi::OsStr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, FopenFlags, Generation, INodeNo, KernelConfig,
    LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use crate::fs::{Attr, Fs, FsError, Kind};

pub struct FuseAdapter {
    pub fs: Arc<Fs>,
    pub rt: tokio::runtime::Handle,
    ttl: Duration,
    /// Ask the kernel for `FUSE_POSIX_ACL` (it enforces ACLs, which needs
    /// `default_permissions`, and leaves the umask to the file system).
    posix_acl: bool,
}

impl FuseAdapter {
    pub fn new(fs: Arc<Fs>, rt: tokio::runtime::Handle) -> Self {
        let ttl = fs.options().metadata_ttl;
        FuseAdapter {
            fs,
            rt,
            ttl,
            posix_acl: false,
        }
    }

    /// Have the kernel enforce POSIX ACLs (only with `default_permissions`, which it then
    /// turns on anyway): without it ACLs are kept, but nothing checks them.
    pub fn with_posix_acl(mut self, on: bool) -> Self {
        self.posix_acl = on;
        self
    }

    /// Run `op` on the runtime and hand its result to `reply`.
    fn spawn<T, F, R>(&self, what: &'static str, op: F, reply: R)
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<T, FsError>> + Send + 'static,
        R: FnOnce(Result<T, Errno>) + Send + 'static,
    {
        self.rt.spawn(async move {
            let res = op.await.map_err(|e| to_errno(what, &e));
            reply(res);
        });
    }
}

fn to_errno(what: &str, e: &FsError) -> Errno {
    if e.is_serious() {
        log::error!("{what}: {e}");
    } else {
        log::debug!("{what}: {e}");
    }
    Errno::from_i32(e.errno())
}

fn file_attr(a: &Attr) -> FileAttr {
    let kind = file_type(a.kind);
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.size.div_ceil(512),
        atime: a.mtime,
        mtime: a.mtime,
        ctime: a.ctime,
        crtime: a.mtime,
        kind,
        perm: (a.perm & 0o7777) as u16,
        nlink: if a.kind == Kind::Dir { 2 } else { 1 },
        uid: a.uid,
        gid: a.gid,
        // The kernel's rdev is 32 bits (new_encode_dev); a larger stored number is cut.
        rdev: a.kind.rdev() as u32,
        blksize: 128 * 1024,
        flags: 0,
    }
}

fn file_type(k: Kind) -> FileType {
    match k {
        Kind::File => FileType::RegularFile,
        Kind::Dir => FileType::Directory,
        Kind::Symlink => FileType::Symlink,
        Kind::Fifo => FileType::NamedPipe,
        Kind::Socket => FileType::Socket,
        Kind::CharDevice(_) => FileType::CharDevice,
        Kind::BlockDevice(_) => FileType::BlockDevice,
    }
}

/// getxattr/listxattr: with `size` 0 the length, else the bytes, or ERANGE when they do not
/// fit `size`.
fn reply_xattr(r: Result<Vec<u8>, Errno>, size: u32, reply: fuser::ReplyXattr) {
    match r {
        Ok(v) if size == 0 => reply.size(v.len() as u32),
        Ok(v) if v.len() > size as usize => reply.error(Errno::from_i32(libc::ERANGE)),
        Ok(v) => reply.data(&v),
        Err(e) => reply.error(e),
    }
}

fn time_of(t: TimeOrNow) -> SystemTime {
    match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => SystemTime::now(),
    }
}

impl fuser::Filesystem for FuseAdapter {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // Bigger writes mean fewer round trips through the kernel; ignore if refused.
        let _ = config.set_max_write(1024 * 1024);
        let _ = config.set_max_readahead(1024 * 1024);
        // O_TRUNC arrives with open() instead of a separate setattr(size=0): one upload, not
        // two, for `cp` over an existing file. Parallel dirops: lookups in one directory need
        // not wait for each other.
        let mut wanted =
            fuser::InitFlags::FUSE_ATOMIC_O_TRUNC | fuser::InitFlags::FUSE_PARALLEL_DIROPS;
        if self.posix_acl {
            // The kernel checks ACLs and sends the umask apart from the mode, so that a
            // directory's default ACL, not the umask, limits what is created in it.
            wanted |= fuser::InitFlags::FUSE_POSIX_ACL | fuser::InitFlags::FUSE_DONT_MASK;
        }
        let _ = config.add_capabilities(wanted & config.capabilities());
        Ok(())
    }

    fn destroy(&mut self) {
        let fs = self.fs.clone();
        let res = self.rt.block_on(async move { fs.flush_all().await });
        if let Err(e) = res {
            log::error!("flushing dirty files at unmount failed: {e}");
        }
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let fs = self.fs.clone();
        let name = name.to_owned();
        let ttl = self.ttl;
        self.spawn(
            "lookup",
            async move { fs.lookup(parent.0, &name).await },
            move |r| match r {
                Ok(a) => reply.entry(&ttl, &file_attr(&a), Generation(0)),
                Err(e) => reply.error(e),
            },
        );
    }

    /// Also serves `batch_forget`: fuser's default splits a batch into `forget` calls (its
    /// 0.18 does not export the batch's element type, so the batch cannot be taken whole).
    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        // No store request and no reply: done on the FUSE thread.
        self.fs.forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let fs = self.fs.clone();
        let ttl = self.ttl;
        self.spawn(
            "getattr",
            async move { fs.getattr(ino.0).await },
            move |r| match r {
                Ok(a) => reply.attr(&ttl, &file_attr(&a)),
                Err(e) => reply.error(e),
            },
        );
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let fs = self.fs.clone();
        let ttl = self.ttl;
        let mtime = mtime.map(time_of);
        self.spawn(
            "setattr",
            async move {
                if mode.is_none()
                    && uid.is_none()
                    && gid.is_none()
                    && size.is_none()
                    && mtime.is_none()
                {
                    // atime only: not stored (the mount behaves as noatime).
                    return fs.getattr(ino.0).await;
                }
                fs.setattr(ino.0, size, mode, uid, gid, mtime).await
            },
            move |r| match r {
                Ok(a) => reply.attr(&ttl, &file_attr(&a)),
                Err(e) => reply.error(e),
            },
        );
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let fs = self.fs.clone();
        self.spawn(
            "readlink",
            async move { fs.readlink(ino.0).await },
            move |r| match r {
                Ok(d) => reply.data(&d),
                Err(e) => reply.error(e),
            },
        );
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let fs = self.fs.clone();
        let name = name.to_owned();
        let (uid, gid) = (req.uid(), req.gid());
        let ttl = self.ttl;
        self.spawn(
            "mknod",
            async move {
                let mode = fs.masked_mode(parent.0, mode, umask).await?;
                fs.mknod(parent.0, &name, mode, u64::from(rdev), uid, gid)
                    .await
            },
            move |r| match r {
                Ok(a) => reply.entry(&ttl, &file_attr(&a), Generation(0)),
                Err(e) => reply.error(e),
            },
        );
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let fs = self.fs.clone();
        let name = name.to_owned();
        let (uid, gid) = (req.uid(), req.gid());
        let ttl = self.ttl;
        self.spawn(
            "mkdir",
            async move {
                let mode = fs.masked_mode(parent.0, mode, umask).await?;
                fs.mkdir(parent.0, &name, mode, uid, gid).await
            },
            move |r| match r {
                Ok(a) => reply.entry(&ttl, &file_attr(&a), Generation(0)),
                Err(e) => reply.error(e),
            },
        );
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let fs = self.fs.clone();
        let name = name.to_owned();
        self.spawn(
            "unlink",
            async move { fs.unlink(parent.0, &name).await },
            move |r| match r {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(e),
            },
        );
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let fs = self.fs.clone();
        let name = name.to_owned();
        self.spawn(
            "rmdir",
            async move { fs.rmdir(parent.0, &name).await },
            move |r| match r {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(e),
            },
        );
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let fs = self.fs.clone();
        let name = link_name.to_owned();
        let target = target.to_owned();
        let (uid, gid) = (req.uid(), req.gid());
        let ttl = self.ttl;
        self.spawn(
            "symlink",
            async move { fs.symlink(parent.0, &name, &target, uid, gid).await },
            move |r| match r {
                Ok(a) => reply.entry(&ttl, &file_attr(&a), Generation(0)),
                Err(e) => reply.error(e),
            },
        );
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let fs = self.fs.clone();
        let name = name.to_owned();
        let newname = newname.to_owned();
        self.spawn(
            "rename",
            async move {
                fs.rename(parent.0, &name, newparent.0, &newname, flags.bits())
                    .await
            },
            move |r| match r {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(e),
            },
        );
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        _newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let e = self
            .fs
            .link()
            .err()
            .unwrap_or(FsError::NotPermitted(String::new()));
        log::info!("link of inode {} as {newname:?} refused: {e}", ino.0);
        reply.error(Errno::from_i32(e.errno()));
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let fs = self.fs.clone();
        self.spawn(
            "open",
            async move { fs.open(ino.0, flags.0).await },
            move |r| match r {
                Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
                Err(e) => reply.error(e),
            },
        );
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let fs = self.fs.clone();
        self.spawn(
            "read",
            async move { fs.read(fh.0, offset, size).await },
            move |r| match r {
                Ok(d) => reply.data(&d),
                Err(e) => reply.error(e),
            },
        );
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let fs = self.fs.clone();
        let data = data.to_vec();
        self.spawn(
            "write",
            async move { fs.write(fh.0, offset, &data).await },
            move |r| match r {
                Ok(n) => reply.written(n),
                Err(e) => reply.error(e),
            },
        );
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        let fs = self.fs.clone();
        self.spawn(
            "flush",
            async move { fs.flush(fh.0).await },
            move |r| match r {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(e),
            },
        );
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let fs = self.fs.clone();
        self.spawn(
            "release",
            async move { fs.release(fh.0).await },
            move |r| match r {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(e),
            },
        );
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let fs = self.fs.clone();
        self.spawn(
            "fsync",
            async move { fs.fsync(fh.0).await },
            move |r| match r {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(e),
            },
        );
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let fs = self.fs.clone();
        self.spawn(
            "opendir",
            async move { fs.opendir(ino.0).await },
            move |r| match r {
                Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
                Err(e) => reply.error(e),
            },
        );
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        // Offsets: 1 = ".", 2 = "..", 3.. = entries; each entry carries the offset of the next.
        // The page holding the entries asked for may have to be listed first.
        let from = offset.saturating_sub(2) as usize;
        let fs = self.fs.clone();
        self.spawn(
            "readdir",
            async move { fs.readdir_page(fh.0, from).await },
            move |r| {
                let (start, page) = match r {
                    Ok(p) => p,
                    Err(e) => return reply.error(e),
                };
                if offset == 0 && reply.add(ino, 1, FileType::Directory, ".") {
                    return reply.ok();
                }
                if offset <= 1 && reply.add(INodeNo(1), 2, FileType::Directory, "..") {
                    return reply.ok();
                }
                for (i, e) in page.iter().enumerate().skip(from.saturating_sub(start)) {
                    let next = (start + i) as u64 + 3;
                    if reply.add(INodeNo(e.ino), next, file_type(e.kind), &e.name) {
                        break;
                    }
                }
                reply.ok();
            },
        );
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.fs.releasedir(fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        // Entries are durable when their operation returns; the directory's times they
        // changed are written now.
        let fs = self.fs.clone();
        self.spawn(
            "fsyncdir",
            async move { fs.fsync_dir(ino.0).await },
            move |r| match r {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(e),
            },
        );
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let s = self.fs.statfs();
        reply.statfs(
            s.blocks,
            s.blocks_free,
            s.blocks_free,
            s.files,
            s.files_free,
            s.block_size,
            s.name_max,
            s.block_size,
        );
    }

    fn setxattr(
        &self,
        req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let fs = self.fs.clone();
        let name = name.as_encoded_bytes().to_vec();
        let value = value.to_vec();
        let uid = req.uid();
        self.spawn(
            "setxattr",
            async move { fs.setxattr(ino.0, &name, &value, flags, uid).await },
            move |r| match r {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(e),
            },
        );
    }

    fn getxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        size: u32,
        reply: fuser::ReplyXattr,
    ) {
        let fs = self.fs.clone();
        let name = name.as_encoded_bytes().to_vec();
        self.spawn(
            "getxattr",
            async move { fs.getxattr(ino.0, &name).await },
            move |r| reply_xattr(r, size, reply),
        );
    }

    fn listxattr(&self, req: &Request, ino: INodeNo, size: u32, reply: fuser::ReplyXattr) {
        let fs = self.fs.clone();
        let privileged = req.uid() == 0;
        self.spawn(
            "listxattr",
            async move { fs.listxattr(ino.0, privileged).await },
            move |r| reply_xattr(r, size, reply),
        );
    }

    fn removexattr(&self, req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let fs = self.fs.clone();
        let name = name.as_encoded_bytes().to_vec();
        let uid = req.uid();
        self.spawn(
            "removexattr",
            async move { fs.removexattr(ino.0, &name, uid).await },
            move |r| match r {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(e),
            },
        );
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let fs = self.fs.clone();
        let name = name.to_owned();
        let (uid, gid) = (req.uid(), req.gid());
        let ttl = self.ttl;
        self.spawn(
            "create",
            async move {
                let mode = fs.masked_mode(parent.0, mode, umask).await?;
                fs.create(parent.0, &name, mode, flags, uid, gid).await
            },
            move |r| match r {
                Ok((a, fh)) => reply.created(
                    &ttl,
                    &file_attr(&a),
                    Generation(0),
                    FileHandle(fh),
                    FopenFlags::empty(),
                ),
                Err(e) => reply.error(e),
            },
        );
    }
}
