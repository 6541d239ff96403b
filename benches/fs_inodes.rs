//! Memory of a mount walking a large tree: the fs layer on the MemoryStore walks 200 directories
//! of 1,000 files each (200,000 files) the way the kernel does for `find` or `ls -lR` (lookup
//! of the directory, opendir + readdir, lookup + getattr of every entry), and sends `forget`
//! for what it looked up once a directory is done, as the kernel does when it drops dentries.
//! It reports the process's resident memory and the live inodes before, during and after;
//! a second walk of the same tree shows that nothing accumulates, and the last line gives
//! the memory once the caches (entries for `metadata_ttl`, listings for ten of them) are
//! dropped and freed pages are handed back.
//!
//! `cargo bench --bench fs_inodes` (not a timed benchmark: one run, numbers printed).
//! `FS_INODES_DIRS` and `FS_INODES_FILES` change the tree's shape; `FS_INODES_NO_FORGET=1`
//! walks without forgets, for comparison.

use std::ffi::OsStr;
use std::sync::Arc;
use std::time::Instant;

use s3cryptfs::crypto::{Secret, VaultConfig, VaultKeys};
use s3cryptfs::fs::attr::record_for;
use s3cryptfs::fs::{Fs, FsOptions, Kind, StoredAttrs};
use s3cryptfs::sealed::SealedStore;
use s3cryptfs::store::{DynStore, MemoryStore, Metadata};
use zeroize::Zeroizing;

const BLOCK_SIZE: u32 = 64 << 10;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Resident memory of this process (VmRSS), in MiB.
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

fn report(stage: &str, fs: &Fs, files: usize) {
    println!(
        "{stage:<28} files walked {files:>7}  RSS {:>7.1} MiB  live inodes {:>6}",
        rss_mib(),
        fs.inode_count()
    );
}

/// One small encrypted file written through the fs; its object's bytes are then stored under
/// every name of the tree (the walk reads no content, only names and attributes), each with
/// the seed's attribute record sealed again for its own name, as the vault requires, and each
/// directory with a marker carrying a directory record.
async fn populate(
    fs: &Arc<Fs>,
    mem: &Arc<MemoryStore>,
    keys: &Arc<VaultKeys>,
    dirs: usize,
    files: usize,
) {
    let (_, fh) = fs
        .create(1, OsStr::new("seed"), 0o644, libc::O_WRONLY, 0, 0)
        .await
        .expect("create seed");
    fs.write(fh, 0, b"seed").await.expect("write seed");
    fs.release(fh).await.expect("release seed");
    let body = bytes::Bytes::from(mem.raw_get("seed").expect("seed object"));
    let store: DynStore = mem.clone();
    let sealed = SealedStore::new(store.clone(), keys.clone());
    let seed_meta = store.head("seed").await.expect("head seed").metadata;
    let record = sealed
        .open_record("seed", seed_meta.as_ref())
        .expect("seed record")
        .expect("the seed has a record");
    let dir_attrs = StoredAttrs {
        perm: 0o755,
        uid: 0,
        gid: 0,
        mtime: std::time::SystemTime::now(),
        xattrs: Default::default(),
        ctime: std::time::SystemTime::now(),
    };
    let dir_record = record_for(Kind::Dir, &dir_attrs, None, [0; 32]);
    let with_record = |key: &str, rec| {
        let mut m: Metadata = seed_meta.clone().unwrap_or_default();
        let (k, v) = sealed.record_entry(key, rec).expect("seal record");
        m.insert(k, v);
        m
    };
    for d in 0..dirs {
        let marker = format!("d{d:04}/");
        let mut m = Metadata::new();
        let (k, v) = sealed
            .record_entry(&marker, &dir_record)
            .expect("seal record");
        m.insert(k, v);
        mem.raw_put_with_metadata(&marker, bytes::Bytes::new(), m);
        for f in 0..files {
            let key = format!("d{d:04}/f{f:05}");
            mem.raw_put_with_metadata(&key, body.clone(), with_record(&key, &record));
        }
    }
}

fn main() {
    let dirs = env_usize("FS_INODES_DIRS", 200);
    let files = env_usize("FS_INODES_FILES", 1000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mem = MemoryStore::new();
    let store: DynStore = mem.clone();
    let (_cfg, keys) = VaultConfig::create(&Secret::KeyFile(Zeroizing::new([7u8; 32])), BLOCK_SIZE)
        .expect("vault");
    let keys: Arc<VaultKeys> = Arc::new(keys);
    let staging = tempfile::tempdir().expect("staging dir");
    let opts = FsOptions::for_current_user(staging.path().to_path_buf());
    let fs = Fs::new(store, String::new(), keys.clone(), opts).expect("fs");

    rt.block_on(populate(&fs, &mem, &keys, dirs, files));
    let forgets = std::env::var_os("FS_INODES_NO_FORGET").is_none();
    println!(
        "tree: {dirs} directories x {files} files = {} files; forgets: {forgets}",
        dirs * files
    );
    report("before the walk", &fs, 0);
    walk(&rt, &fs, dirs, forgets, true);
    report("after the walk", &fs, dirs * files);
    walk(&rt, &fs, dirs, forgets, false);
    report("after a second walk", &fs, 2 * dirs * files);
    fs.invalidate_caches();
    // SAFETY: malloc_trim only returns free heap pages to the kernel; no pointer is involved.
    unsafe { libc::malloc_trim(0) };
    report("caches dropped, heap trimmed", &fs, 2 * dirs * files);
}

/// One walk of the tree as the kernel does it; `verbose` reports along the way.
fn walk(rt: &tokio::runtime::Runtime, fs: &Arc<Fs>, dirs: usize, forgets: bool, verbose: bool) {
    let started = Instant::now();
    let mut walked = 0;
    let mut peak_inodes = 0;
    let checkpoints = 10.min(dirs).max(1);
    rt.block_on(async {
        for d in 0..dirs {
            let name = format!("d{d:04}");
            let dir = fs.lookup(1, OsStr::new(&name)).await.expect("lookup dir");
            let fh = fs.opendir(dir.ino).await.expect("opendir");
            let entries = fs.readdir(fh).await.expect("readdir");
            fs.releasedir(fh);
            let mut looked_up = Vec::with_capacity(entries.len());
            for e in &entries {
                let a = fs
                    .lookup(dir.ino, OsStr::new(&e.name))
                    .await
                    .expect("lookup file");
                fs.getattr(a.ino).await.expect("getattr");
                looked_up.push((a.ino, 1));
            }
            walked += entries.len();
            peak_inodes = peak_inodes.max(fs.inode_count());
            // The kernel drops the dentries of a directory it is done with: one forget per
            // reference, in batches.
            if forgets {
                fs.batch_forget(looked_up);
                fs.forget(dir.ino, 1);
            }
            if verbose && (d + 1) % (dirs / checkpoints).max(1) == 0 && d + 1 < dirs {
                report("during the walk", fs, walked);
            }
        }
    });
    let elapsed = started.elapsed();
    println!(
        "walk of {walked} files took {:.1} s ({:.0} files/s); peak live inodes {peak_inodes}",
        elapsed.as_secs_f64(),
        walked as f64 / elapsed.as_secs_f64()
    );
}
