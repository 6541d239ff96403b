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
}

impl FuseAdapter {
    pub fn new(fs: Arc<Fs>, rt: tokio::runtime::Handle) -> Self {
        let ttl = fs.options().metadata_ttl;
        FuseAdapter { fs, rt, ttl }
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
        let wanted = fuser::InitFlags::FUSE_ATOMIC_O_TRUNC | fuser::InitFlags::FUSE_PARALLEL_DIROPS;
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
                let mode = (mode & libc::S_IFMT) | (mode & 0o7777 & !umask);
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
            async move { fs.mkdir(parent.0, &name, mode & !umask, uid, gid).await },
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
        let entries = match self.fs.readdir(fh.0) {
            Ok(e) => e,
            Err(e) => {
                reply.error(to_errno("readdir", &e));
                return;
            }
        };
        // Offsets: 1 = ".", 2 = "..", 3.. = entries; each entry carries the offset of the next.
        let mut idx = offset;
        loop {
            let full = match idx {
                0 => reply.add(ino, 1, FileType::Directory, "."),
                1 => reply.add(INodeNo(1), 2, FileType::Directory, ".."),
                n => match entries.get((n - 2) as usize) {
                    Some(e) => reply.add(INodeNo(e.ino), n + 1, file_type(e.kind), &e.name),
                    None => break,
                },
            };
            if full {
                break;
            }
            idx += 1;
        }
        reply.ok();
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
        _req: &Request,
        _ino: INodeNo,
        name: &OsStr,
        _value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let e = FsError::NotSupported("extended attributes".into());
        log::debug!("setxattr {name:?}: {e}");
        reply.error(Errno::from_i32(e.errno()));
    }

    fn getxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _size: u32,
        reply: fuser::ReplyXattr,
    ) {
        // Files carry no extended attributes.
        reply.error(Errno::from_i32(FsError::NoAttribute.errno()));
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, size: u32, reply: fuser::ReplyXattr) {
        if size == 0 {
            reply.size(0);
        } else {
            reply.data(&[]);
        }
    }

    fn removexattr(&self, _req: &Request, _ino: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::from_i32(FsError::NoAttribute.errno()));
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
                fs.create(parent.0, &name, mode & !umask, flags, uid, gid)
                    .await
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
