//! Reference-model property test: random operation sequences applied to the file system layer
//! (on the MemoryStore) and to a plain local directory; results, contents and sizes must agree
//! after every step. `S3CRYPTFS_PROPTEST_CASES` raises the case count for long runs.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;
use s3cryptfs::crypto::{Secret, VaultConfig};
use s3cryptfs::fs::{Fs, FsOptions, Kind};
use s3cryptfs::store::{DynStore, MemoryStore};
use zeroize::Zeroizing;

const NAMES: [&str; 4] = ["a", "b", "d/c", "d/e"];

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
    Unlink {
        file: usize,
    },
    Reopen,
    Rmdir,
    Mkdir,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..4usize, 0..300_000u32, 0..20_000u16, any::<u8>())
            .prop_map(|(file, offset, len, seed)| Op::Write { file, offset, len, seed }),
        2 => (0..4usize, 0..300_000u32).prop_map(|(file, size)| Op::Truncate { file, size }),
        2 => (0..4usize, 0..4usize).prop_map(|(from, to)| Op::Rename { from, to }),
        1 => (0..4usize).prop_map(|file| Op::Unlink { file }),
        1 => Just(Op::Reopen),
        1 => Just(Op::Rmdir),
        1 => Just(Op::Mkdir),
    ]
}

struct Subject {
    fs: Arc<Fs>,
}

impl Subject {
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

    async fn apply(&self, op: &Op) -> Result<(), i32> {
        let fs = &self.fs;
        match op {
            Op::Write {
                file,
                offset,
                len,
                seed,
            } => {
                let (dir, name) = self.split(NAMES[*file]).await?;
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
                let (dir, name) = self.split(NAMES[*file]).await?;
                let ino = fs
                    .lookup(dir, OsStr::new(&name))
                    .await
                    .map_err(|e| e.errno())?
                    .ino;
                fs.setattr(ino, Some(*size as u64), None, None, None, None)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.errno())
            }
            Op::Rename { from, to } => {
                let (d1, n1) = self.split(NAMES[*from]).await?;
                let (d2, n2) = self.split(NAMES[*to]).await?;
                fs.rename(d1, OsStr::new(&n1), d2, OsStr::new(&n2), 0)
                    .await
                    .map_err(|e| e.errno())
            }
            Op::Unlink { file } => {
                let (dir, name) = self.split(NAMES[*file]).await?;
                fs.unlink(dir, OsStr::new(&name))
                    .await
                    .map_err(|e| e.errno())
            }
            Op::Reopen => {
                fs.invalidate_caches();
                Ok(())
            }
            Op::Rmdir => fs.rmdir(1, OsStr::new("d")).await.map_err(|e| e.errno()),
            Op::Mkdir => fs
                .mkdir(1, OsStr::new("d"), 0o755, 0, 0)
                .await
                .map(|_| ())
                .map_err(|e| e.errno()),
        }
    }

    async fn snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut dirs = vec![String::new()];
        while let Some(d) = dirs.pop() {
            for e in self.fs.list_dir(&d).await.expect("list") {
                let p = if d.is_empty() {
                    e.name.clone()
                } else {
                    format!("{d}/{}", e.name)
                };
                match e.kind {
                    Kind::Dir => {
                        out.insert(format!("{p}/"), Vec::new());
                        dirs.push(p);
                    }
                    _ => {
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
                        out.insert(p, data);
                    }
                }
            }
        }
        out
    }
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
                .open(root.join(NAMES[*file]))
                .map_err(errno_of)?;
            f.write_all_at(&vec![*seed; *len as usize], *offset as u64)
                .map_err(errno_of)
        }
        Op::Truncate { file, size } => {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(root.join(NAMES[*file]))
                .map_err(errno_of)?;
            f.set_len(*size as u64).map_err(errno_of)
        }
        Op::Rename { from, to } => {
            std::fs::rename(root.join(NAMES[*from]), root.join(NAMES[*to])).map_err(errno_of)
        }
        Op::Unlink { file } => std::fs::remove_file(root.join(NAMES[*file])).map_err(errno_of),
        Op::Reopen => Ok(()),
        Op::Rmdir => std::fs::remove_dir(root.join("d")).map_err(errno_of),
        Op::Mkdir => std::fs::create_dir(root.join("d")).map_err(errno_of),
    }
}

fn snapshot_model(root: &Path) -> BTreeMap<String, Vec<u8>> {
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
            if e.file_type().expect("type").is_dir() {
                out.insert(format!("{rel}/"), Vec::new());
                dirs.push(e.path());
            } else {
                out.insert(rel, std::fs::read(e.path()).expect("read"));
            }
        }
    }
    out
}

fn cases() -> u32 {
    std::env::var("S3CRYPTFS_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]
    #[test]
    fn fs_matches_local_directory(ops in proptest::collection::vec(op(), 1..30)) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let model = tempfile::tempdir().expect("model dir");
        let staging = tempfile::tempdir().expect("staging");
        let mem = MemoryStore::new();
        let store: DynStore = mem;
        let (_c, keys) = VaultConfig::create(&Secret::KeyFile(Zeroizing::new([1u8; 32])), 4096)
            .expect("vault");
        let fs = Fs::new(store, String::new(), Arc::new(keys),
            FsOptions::for_current_user(staging.path().to_path_buf())).expect("fs");
        let subject = Subject { fs };
        std::fs::create_dir(model.path().join("d")).expect("mkdir model");
        rt.block_on(subject.apply(&Op::Mkdir)).expect("mkdir subject");
        for (i, op) in ops.iter().enumerate() {
            let want = apply_model(model.path(), op);
            let got = rt.block_on(subject.apply(op));
            prop_assert_eq!(got, want, "step {} {:?}", i, op);
            let want_tree = snapshot_model(model.path());
            let got_tree = rt.block_on(subject.snapshot());
            prop_assert_eq!(got_tree.keys().collect::<Vec<_>>(), want_tree.keys().collect::<Vec<_>>(),
                "names after step {} {:?}", i, op);
            for (k, v) in &want_tree {
                prop_assert!(got_tree.get(k) == Some(v), "content of {} after step {} {:?}", k, i, op);
            }
        }
    }
}
