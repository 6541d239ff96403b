//! The fs layer on the MemoryStore, without a kernel or a network: the ceiling of the code
//! itself for the workloads of `scripts/bench.sh`.
//!
//! `cargo bench --bench fs_memory`. Requests are shaped like the kernel's (128 KiB writes and
//! reads); every timed write ends with flush + release, which return once the object is in the
//! store, so "durable" means the same as through the mount.

use std::ffi::OsStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use s3cryptfs::crypto::{Secret, VaultConfig, VaultKeys};
use s3cryptfs::fs::{Fs, FsOptions};
use s3cryptfs::store::{DynStore, MemoryStore};
use tokio::runtime::Runtime;
use zeroize::Zeroizing;

const BLOCK_SIZE: u32 = 64 << 10;
const KERNEL_IO: usize = 128 << 10;
const BIG: usize = 64 << 20;
const SMALL_FILES: usize = 1000;

struct Env {
    fs: Arc<Fs>,
    store: DynStore,
    keys: Arc<VaultKeys>,
    staging: tempfile::TempDir,
}

impl Env {
    /// A second fs on the same store, as after a remount: nothing cached.
    fn remount(&self, block_cache_bytes: u64) -> Arc<Fs> {
        let mut opts = FsOptions::for_current_user(self.staging.path().to_path_buf());
        opts.block_cache_bytes = block_cache_bytes;
        Fs::new(self.store.clone(), String::new(), self.keys.clone(), opts).expect("fs")
    }
}

/// An fs on a fresh MemoryStore with `block_cache_bytes` of decrypted-block cache.
fn env(block_cache_bytes: u64) -> Env {
    let store: DynStore = MemoryStore::new();
    let (_cfg, keys) = VaultConfig::create(&Secret::KeyFile(Zeroizing::new([7u8; 32])), BLOCK_SIZE)
        .expect("vault");
    let keys = Arc::new(keys);
    let staging = tempfile::tempdir().expect("staging dir");
    let mut opts = FsOptions::for_current_user(staging.path().to_path_buf());
    opts.block_cache_bytes = block_cache_bytes;
    let fs = Fs::new(store.clone(), String::new(), keys.clone(), opts).expect("fs");
    Env {
        fs,
        store,
        keys,
        staging,
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

async fn write_file(fs: &Arc<Fs>, parent: u64, name: &str, data: &[u8]) -> u64 {
    let (attr, fh) = fs
        .create(parent, OsStr::new(name), 0o644, libc::O_WRONLY, 0, 0)
        .await
        .expect("create");
    for (i, chunk) in data.chunks(KERNEL_IO).enumerate() {
        fs.write(fh, (i * KERNEL_IO) as u64, chunk)
            .await
            .expect("write");
    }
    fs.flush(fh).await.expect("flush");
    fs.release(fh).await.expect("release");
    attr.ino
}

async fn read_file(fs: &Arc<Fs>, ino: u64) -> usize {
    let fh = fs.open(ino, libc::O_RDONLY).await.expect("open");
    let mut total = 0;
    loop {
        let chunk = fs
            .read(fh, total as u64, KERNEL_IO as u32)
            .await
            .expect("read");
        if chunk.is_empty() {
            break;
        }
        total += chunk.len();
    }
    fs.release(fh).await.expect("release");
    total
}

fn sequential(c: &mut Criterion) {
    let rt = runtime();
    let data: Vec<u8> = (0..BIG).map(|i| (i * 7 + i / 4096) as u8).collect();
    let mut g = c.benchmark_group("fs_memory");
    g.sample_size(10).throughput(Throughput::Bytes(BIG as u64));

    let w = env(64 << 20);
    g.bench_function("write_close_64MiB", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let t0 = Instant::now();
                rt.block_on(write_file(&w.fs, w.fs.root_ino(), "big", &data));
                timed += t0.elapsed();
                rt.block_on(w.fs.unlink(w.fs.root_ino(), OsStr::new("big")))
                    .expect("unlink");
            }
            timed
        })
    });

    // Cold, as after a remount, with the mount's default cache (256 MiB).
    let r = env(16 << 20);
    rt.block_on(write_file(&r.fs, r.fs.root_ino(), "big", &data));
    g.bench_function("read_64MiB_cold", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let fs = r.remount(256 << 20);
                let ino = rt
                    .block_on(fs.lookup(fs.root_ino(), OsStr::new("big")))
                    .expect("lookup")
                    .ino;
                let t0 = Instant::now();
                assert_eq!(rt.block_on(read_file(&fs, ino)), BIG);
                timed += t0.elapsed();
            }
            timed
        })
    });
    // A cache a quarter of the file (`--block-cache-mib 16` on a big file): each pass must fetch
    // and decrypt every block again, and read-ahead must not evict what is about to be read.
    let ino = rt
        .block_on(r.fs.lookup(r.fs.root_ino(), OsStr::new("big")))
        .expect("lookup")
        .ino;
    g.bench_function("read_64MiB_cache_16MiB", |b| {
        b.iter(|| assert_eq!(rt.block_on(read_file(&r.fs, ino)), BIG))
    });
    g.finish();
}

fn small_files(c: &mut Criterion) {
    let rt = runtime();
    let e = env(64 << 20);
    let root = e.fs.root_ino();
    let body = vec![0x5au8; 4096];
    let mut g = c.benchmark_group("fs_memory");
    g.sample_size(10);

    g.bench_function("create_1000x4KiB", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let dir = rt
                    .block_on(e.fs.mkdir(root, OsStr::new("small"), 0o755, 0, 0))
                    .expect("mkdir")
                    .ino;
                let t0 = Instant::now();
                rt.block_on(async {
                    for i in 0..SMALL_FILES {
                        write_file(&e.fs, dir, &format!("f{i:04}"), &body).await;
                    }
                });
                timed += t0.elapsed();
                rt.block_on(async {
                    for i in 0..SMALL_FILES {
                        let name = format!("f{i:04}");
                        e.fs.unlink(dir, OsStr::new(&name)).await.expect("unlink");
                    }
                    e.fs.rmdir(root, OsStr::new("small")).await.expect("rmdir");
                });
            }
            timed
        })
    });

    let dir = rt
        .block_on(e.fs.mkdir(root, OsStr::new("listed"), 0o755, 0, 0))
        .expect("mkdir")
        .ino;
    rt.block_on(async {
        for i in 0..SMALL_FILES {
            write_file(&e.fs, dir, &format!("f{i:04}"), &body).await;
        }
    });
    // `ls -l`: one listing, then a lookup (attributes) of every entry.
    let ls = || {
        rt.block_on(async {
            let fh = e.fs.opendir(dir).await.expect("opendir");
            let entries = e.fs.readdir(fh).await.expect("readdir");
            let mut files = 0;
            for entry in entries.iter().filter(|d| d.name != "." && d.name != "..") {
                e.fs.lookup(dir, OsStr::new(&entry.name))
                    .await
                    .expect("lookup");
                files += 1;
            }
            e.fs.releasedir(fh);
            assert_eq!(files, SMALL_FILES);
        })
    };
    g.bench_function("readdir_getattr_1000_cold", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                e.fs.invalidate_caches();
                let t0 = Instant::now();
                ls();
                timed += t0.elapsed();
            }
            timed
        })
    });
    g.bench_function("readdir_getattr_1000_warm", |b| b.iter(ls));
    g.finish();
}

criterion_group!(benches, sequential, small_files);
criterion_main!(benches);
