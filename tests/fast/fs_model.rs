//! Reference-model property test: random operation sequences applied to the file system layer
//! (on the MemoryStore) and to a plain local directory; results, names, contents, symlink
//! targets, permission bits and explicitly set mtimes must agree after every step.
//! `S3CRYPTFS_PROPTEST_CASES` raises the case count for long (nightly) runs.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;
use s3cryptfs::crypto::{Secret, VaultConfig, VaultKeys};
use s3cryptfs::fs::{Fs, FsOptions, Kind};
use s3cryptfs::store::{DynStore, MemoryStore};
use zeroize::Zeroizing;

use crate::common::memfs;

/// Regular files. Symlinks get names of their own: following links is the kernel's job, not
/// the file system's, so the model never opens a path that is a symlink.
const FILES: [&str; 5] = ["a", "b", "d/c", "d/e", "f/g"];
const LINKS: [&str; 2] = ["s", "d/t"];
const DIRS: [&str; 2] = ["d", "f"];

#[derive(Clone, Debug)]
enum Op {
    Write {
        file: usize,
        offset: u32,
        len: u16,
        seed: u8,
    },
    Truncate {
        file: usize,
        size: u32,
    },
    Rename {
        from: usize,
        to: usize,
    },
    RenameLink {
        from: usize,
        to: usize,
    },
    RenameDir {
        from: usize,
        to: usize,
    },
    Unlink {
        file: usize,
    },
    Symlink {
        link: usize,
        target: u8,
    },
    UnlinkLink {
        link: usize,
    },
    Chmod {
        file: usize,
        mode: u16,
    },
    SetMtime {
        file: usize,
        secs: u32,
        nanos: u32,
    },
    Mkdir {
        dir: usize,
    },
    Rmdir {
        dir: usize,
    },
    /// Drop caches and build a new `Fs` on the same store: what a remount sees.
    Remount,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0..FILES.len(), 0..300_000u32, 0..20_000u16, any::<u8>())
            .prop_map(|(file, offset, len, seed)| Op::Write { file, offset, len, seed }),
        2 => (0..FILES.len(), 0..300_000u32).prop_map(|(file, size)| Op::Truncate { file, size }),
        2 => (0..FILES.len(), 0..FILES.len()).prop_map(|(from, to)| Op::Rename { from, to }),
        1 => (0..LINKS.len(), 0..LINKS.len()).prop_map(|(from, to)| Op::RenameLink { from, to }),
        1 => (0..DIRS.len(), 0..DIRS.len()).prop_map(|(from, to)| Op::RenameDir { from, to }),
        1 => (0..FILES.len()).prop_map(|file| Op::Unlink { file }),
        1 => (0..LINKS.len(), any::<u8>()).prop_map(|(link, target)| Op::Symlink { link, target }),
        1 => (0..LINKS.len()).prop_map(|link| Op::UnlinkLink { link }),
        1 => (0..FILES.len(), 0..0o1000u16).prop_map(|(file, mode)| Op::Chmod { file, mode }),
        1 => (0..FILES.len(), 0..2_000_000_000u32, 0..1_000_000_000u32)
            .prop_map(|(file, secs, nanos)| Op::SetMtime { file, secs, nanos }),
        1 => (0..DIRS.len()).prop_map(|dir| Op::Mkdir { dir }),
        1 => (0..DIRS.len()).prop_map(|dir| Op::Rmdir { dir }),
        1 => Just(Op::Remount),
    ]
}

fn link_target(t: u8) -> String {
    format!("../target-{t}/x y")
}

struct Subject {
    store: DynStore,
    keys: Arc<VaultKeys>,
    staging: std::path::PathBuf,
    fs: Arc<Fs>,
}

impl Subject {
    fn new(store: DynStore, keys: Arc<VaultKeys>, staging: &Path) -> Self {
        let fs = Self::mount(&store, &keys, staging);
        Subject {
            store,
            keys,
            staging: staging.to_path_buf(),
            fs,
        }
    }

    fn mount(store: &DynStore, keys: &Arc<VaultKeys>, staging: &Path) -> Arc<Fs> {
        let mut opts = FsOptions::for_current_user(staging.to_path_buf());
        opts.file_mode = 0o644;
        memfs::fs_with(store.clone(), keys.clone(), opts)
    }

    async fn dir_ino(&self, path: &str) -> Result<u64, i32> {
        let mut ino = 1;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            ino = self
                .fs
                .lookup(ino, OsStr::new(part))
                .await
                .map_err(|e| e.errno())?
                .ino;
        }
        Ok(ino)
    }

    async fn split(&self, path: &str) -> Result<(u64, String), i32> {
        let (dir, name) = match path.rsplit_once('/') {
            Some((d, n)) => (d, n),
            None => ("", path),
        };
        Ok((self.dir_ino(dir).await?, name.to_string()))
    }

    async fn ino_of(&self, path: &str) -> Result<u64, i32> {
        let (dir, name) = self.split(path).await?;
        Ok(self
            .fs
            .lookup(dir, OsStr::new(&name))
            .await
            .map_err(|e| e.errno())?
            .ino)
    }

    async fn rename(&self, from: &str, to: &str) -> Result<(), i32> {
        let (d1, n1) = self.split(from).await?;
        let (d2, n2) = self.split(to).await?;
        self.fs
            .rename(d1, OsStr::new(&n1), d2, OsStr::new(&n2), 0)
            .await
            .map_err(|e| e.errno())
    }

    async fn apply(&mut self, op: &Op) -> Result<(), i32> {
        let fs = self.fs.clone();
        match op {
            Op::Write {
                file,
                offset,
                len,
                seed,
            } => {
                let (dir, name) = self.split(FILES[*file]).await?;
                let (_, fh) = fs
                    .create(dir, OsStr::new(&name), 0o644, libc::O_RDWR, 0, 0)
                    .await
                    .map_err(|e| e.errno())?;
                let data = vec![*seed; *len as usize];
                let r = fs.write(fh, *offset as u64, &data).await.map(|_| ());
                let f = fs.flush(fh).await;
                fs.release(fh).await.map_err(|e| e.errno())?;
                r.and(f).map_err(|e| e.errno())
            }
            Op::Truncate { file, size } => {
                let ino = self.ino_of(FILES[*file]).await?;
                fs.setattr(ino, Some(*size as u64), None, None, None, None)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.errno())
            }
            Op::Rename { from, to } => self.rename(FILES[*from], FILES[*to]).await,
            Op::RenameLink { from, to } => self.rename(LINKS[*from], LINKS[*to]).await,
            Op::RenameDir { from, to } => self.rename(DIRS[*from], DIRS[*to]).await,
            Op::Unlink { file } => {
                let (dir, name) = self.split(FILES[*file]).await?;
                fs.unlink(dir, OsStr::new(&name))
                    .await
                    .map_err(|e| e.errno())
            }
            Op::UnlinkLink { link } => {
                let (dir, name) = self.split(LINKS[*link]).await?;
                fs.unlink(dir, OsStr::new(&name))
                    .await
                    .map_err(|e| e.errno())
            }
            Op::Symlink { link, target } => {
                let (dir, name) = self.split(LINKS[*link]).await?;
                fs.symlink(
                    dir,
                    OsStr::new(&name),
                    Path::new(&link_target(*target)),
                    0,
                    0,
                )
                .await
                .map(|_| ())
                .map_err(|e| e.errno())
            }
            Op::Chmod { file, mode } => {
                let ino = self.ino_of(FILES[*file]).await?;
                fs.setattr(ino, None, Some(*mode as u32), None, None, None)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.errno())
            }
            Op::SetMtime { file, secs, nanos } => {
                let ino = self.ino_of(FILES[*file]).await?;
                let t = UNIX_EPOCH + Duration::new(*secs as u64, *nanos);
                fs.setattr(ino, None, None, None, None, Some(t))
                    .await
                    .map(|_| ())
                    .map_err(|e| e.errno())
            }
            Op::Mkdir { dir } => fs
                .mkdir(1, OsStr::new(DIRS[*dir]), 0o755, 0, 0)
                .await
                .map(|_| ())
                .map_err(|e| e.errno()),
            Op::Rmdir { dir } => fs
                .rmdir(1, OsStr::new(DIRS[*dir]))
                .await
                .map_err(|e| e.errno()),
            Op::Remount => {
                fs.flush_all().await.map_err(|e| e.errno())?;
                self.fs = Self::mount(&self.store, &self.keys, &self.staging);
                Ok(())
            }
        }
    }

    async fn snapshot(&self) -> BTreeMap<String, Node> {
        let mut out = BTreeMap::new();
        let mut dirs = vec![String::new()];
        while let Some(d) = dirs.pop() {
            for e in self.fs.list_dir(&d).await.expect("list") {
                let p = if d.is_empty() {
                    e.name.clone()
                } else {
                    format!("{d}/{}", e.name)
                };
                let attr = self.fs.getattr(e.ino).await.expect("getattr");
                match e.kind {
                    Kind::Dir => {
                        out.insert(format!("{p}/"), Node::Dir);
                        dirs.push(p);
                    }
                    Kind::Symlink => {
                        let t = self.fs.readlink(e.ino).await.expect("readlink");
                        out.insert(p, Node::Link(String::from_utf8(t).expect("utf-8")));
                    }
                    Kind::File => {
                        let fh = self.fs.open(e.ino, libc::O_RDONLY).await.expect("open");
                        let mut data = Vec::new();
                        loop {
                            let c = self
                                .fs
                                .read(fh, data.len() as u64, 1 << 20)
                                .await
                                .expect("read");
                            if c.is_empty() {
                                break;
                            }
                            data.extend_from_slice(&c);
                        }
                        self.fs.release(fh).await.expect("release");
                        assert_eq!(attr.size, data.len() as u64, "size of {p}");
                        out.insert(
                            p,
                            Node::File {
                                data,
                                perm: attr.perm & 0o7777,
                                mtime: attr.mtime,
                            },
                        );
                    }
                    other => panic!("{p}: the model makes no {other:?}"),
                }
            }
        }
        out
    }
}

#[derive(Debug, PartialEq)]
enum Node {
    Dir,
    Link(String),
    File {
        data: Vec<u8>,
        perm: u32,
        mtime: SystemTime,
    },
}

fn errno_of(e: std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

fn apply_model(root: &Path, op: &Op) -> Result<(), i32> {
    match op {
        Op::Write {
            file,
            offset,
            len,
            seed,
        } => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .mode(0o644)
                .open(root.join(FILES[*file]))
                .map_err(errno_of)?;
            f.write_all_at(&vec![*seed; *len as usize], *offset as u64)
                .map_err(errno_of)
        }
        Op::Truncate { file, size } => {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(root.join(FILES[*file]))
                .map_err(errno_of)?;
            f.set_len(*size as u64).map_err(errno_of)
        }
        Op::Rename { from, to } => {
            std::fs::rename(root.join(FILES[*from]), root.join(FILES[*to])).map_err(errno_of)
        }
        Op::RenameLink { from, to } => {
            std::fs::rename(root.join(LINKS[*from]), root.join(LINKS[*to])).map_err(errno_of)
        }
        Op::RenameDir { from, to } => {
            std::fs::rename(root.join(DIRS[*from]), root.join(DIRS[*to])).map_err(errno_of)
        }
        Op::Unlink { file } => std::fs::remove_file(root.join(FILES[*file])).map_err(errno_of),
        Op::UnlinkLink { link } => std::fs::remove_file(root.join(LINKS[*link])).map_err(errno_of),
        Op::Symlink { link, target } => {
            std::os::unix::fs::symlink(link_target(*target), root.join(LINKS[*link]))
                .map_err(errno_of)
        }
        Op::Chmod { file, mode } => {
            let p = root.join(FILES[*file]);
            std::fs::symlink_metadata(&p).map_err(errno_of)?;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode as u32))
                .map_err(errno_of)
        }
        Op::SetMtime { file, secs, nanos } => {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(root.join(FILES[*file]))
                .map_err(errno_of)?;
            f.set_modified(UNIX_EPOCH + Duration::new(*secs as u64, *nanos))
                .map_err(errno_of)
        }
        Op::Mkdir { dir } => std::fs::create_dir(root.join(DIRS[*dir])).map_err(errno_of),
        Op::Rmdir { dir } => std::fs::remove_dir(root.join(DIRS[*dir])).map_err(errno_of),
        Op::Remount => Ok(()),
    }
}

fn snapshot_model(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let e = e.expect("entry");
            let rel = e
                .path()
                .strip_prefix(root)
                .expect("rel")
                .to_string_lossy()
                .into_owned();
            let meta = std::fs::symlink_metadata(e.path()).expect("lstat");
            if meta.is_dir() {
                out.insert(format!("{rel}/"), Node::Dir);
                dirs.push(e.path());
            } else if meta.file_type().is_symlink() {
                let t = std::fs::read_link(e.path()).expect("readlink");
                out.insert(rel, Node::Link(t.to_string_lossy().into_owned()));
            } else {
                out.insert(
                    rel,
                    Node::File {
                        data: std::fs::read(e.path()).expect("read"),
                        perm: meta.permissions().mode() & 0o7777,
                        mtime: meta.modified().expect("mtime"),
                    },
                );
            }
        }
    }
    out
}

/// Paths whose mtime was set explicitly and not changed by a write since; only those are
/// compared (a write stamps "now", which differs between the two sides by a few µs).
fn track_mtimes(known: &mut BTreeMap<String, SystemTime>, op: &Op, ok: bool) {
    if !ok {
        return;
    }
    match op {
        Op::SetMtime { file, secs, nanos } => {
            known.insert(
                FILES[*file].to_string(),
                UNIX_EPOCH + Duration::new(*secs as u64, *nanos),
            );
        }
        Op::Write { file, .. } | Op::Truncate { file, .. } | Op::Unlink { file } => {
            known.remove(FILES[*file]);
        }
        Op::Rename { from, to } => {
            let t = known.remove(FILES[*from]);
            known.remove(FILES[*to]);
            if let Some(t) = t {
                known.insert(FILES[*to].to_string(), t);
            }
        }
        Op::RenameDir { from, to } => {
            let (from, to) = (DIRS[*from], DIRS[*to]);
            let moved: Vec<(String, SystemTime)> = known
                .iter()
                .filter(|(k, _)| k.starts_with(&format!("{from}/")))
                .map(|(k, v)| (k.clone(), *v))
                .collect();
            known.retain(|k, _| !k.starts_with(&format!("{to}/")));
            for (k, v) in moved {
                known.remove(&k);
                known.insert(format!("{to}{}", &k[from.len()..]), v);
            }
        }
        _ => {}
    }
}

fn cases() -> u32 {
    std::env::var("S3CRYPTFS_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]
    #[test]
    fn fs_matches_local_directory(ops in proptest::collection::vec(op(), 1..40)) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let model = tempfile::tempdir().expect("model dir");
        let staging = tempfile::tempdir().expect("staging");
        let store: DynStore = MemoryStore::new();
        let (_c, keys) = VaultConfig::create(&Secret::KeyFile(Zeroizing::new([1u8; 32])), 4096)
            .expect("vault");
        let mut subject = Subject::new(store, Arc::new(keys), staging.path());
        let mut mtimes = BTreeMap::new();
        for (i, op) in ops.iter().enumerate() {
            let want = apply_model(model.path(), op);
            let got = rt.block_on(subject.apply(op));
            prop_assert_eq!(got, want, "step {} {:?}", i, op);
            track_mtimes(&mut mtimes, op, want.is_ok());
            let want_tree = snapshot_model(model.path());
            let got_tree = rt.block_on(subject.snapshot());
            prop_assert_eq!(got_tree.keys().collect::<Vec<_>>(), want_tree.keys().collect::<Vec<_>>(),
                "names after step {} {:?}", i, op);
            for (k, want) in &want_tree {
                let got = &got_tree[k];
                match (got, want) {
                    (Node::File { data: d1, perm: p1, mtime: m1 },
                     Node::File { data: d2, perm: p2, mtime: m2 }) => {
                        prop_assert!(d1 == d2, "content of {} after step {} {:?}", k, i, op);
                        prop_assert_eq!(p1, p2, "mode of {} after step {} {:?}", k, i, op);
                        if mtimes.contains_key(k) {
                            prop_assert_eq!(m1, m2, "mtime of {} after step {} {:?}", k, i, op);
                        }
                    }
                    _ => prop_assert_eq!(got, want, "{} after step {} {:?}", k, i, op),
                }
            }
        }
    }
}
