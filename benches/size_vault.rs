//! Fills a vault for the size benchmark (`scripts/bench-size.sh`): creating a million files
//! through a mount takes hours, so this writes the objects a mount would have written, straight
//! into the store, with the library's own store and sealing code.
//!
//! `cargo bench --profile dev --bench size_vault -- STORE_URL KEY_FILE DIRS FILES [BIG]` (the vault must
//! exist: `s3cryptfs init --key-file KEY_FILE STORE_URL`): `DIRS` directories `d0000`, ... of
//! `FILES` files each, and when `BIG` is given one directory `big` of `BIG` files. One small
//! file is written through the file system layer first; its object's bytes are stored under
//! every other name, each with the attribute record sealed again for its own key (names
//! encrypted or not, as the vault says), and each directory gets a marker with a directory
//! record. Not a benchmark itself: with no arguments it says how to run it and exits.

use std::ffi::OsStr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use futures::stream::{self, StreamExt};
use s3cryptfs::crypto::keyfile::read_key_file;
use s3cryptfs::fs::attr::record_for;
use s3cryptfs::fs::{Fs, FsOptions, Kind, StoredAttrs};
use s3cryptfs::sealed::SealedStore;
use s3cryptfs::store::{DynStore, Metadata, PutOptions, StoreOptions, open_store};
use s3cryptfs::vault::{RollbackGuard, open_vault};

/// Objects written at once (the directory store fsyncs each one).
const PARALLEL: usize = 64;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.len() < 4 {
        eprintln!(
            "usage: cargo bench --profile dev --bench size_vault -- STORE_URL KEY_FILE DIRS FILES [BIG]"
        );
        return;
    }
    let number = |i: usize| -> usize {
        args.get(i)
            .map(|a| a.parse().expect("a number of directories or files"))
            .unwrap_or(0)
    };
    let (dirs, files, big) = (number(2), number(3), number(4));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(fill(&args[0], &args[1], dirs, files, big));
}

async fn fill(url: &str, key_file: &str, dirs: usize, files: usize, big: usize) {
    let url = url.parse().expect("a store URL");
    let (store, prefix): (DynStore, String) =
        open_store(&url, &StoreOptions::default()).expect("open the store");
    let secret = read_key_file(std::path::Path::new(key_file)).expect("read the key file");
    let keys = open_vault(&*store, &prefix, &secret, &RollbackGuard::new(None, true))
        .await
        .expect("open the vault");
    let keys = Arc::new(keys);
    let staging = tempfile::tempdir().expect("staging dir");
    let opts = FsOptions::for_current_user(staging.path().to_path_buf());
    let fs = Fs::new(store.clone(), prefix, keys.clone(), opts).expect("fs");

    // The seed: a real file, written and closed through the file system layer.
    let (_, fh) = fs
        .create(1, OsStr::new("seed"), 0o644, libc::O_WRONLY, 0, 0)
        .await
        .expect("create seed");
    fs.write(fh, 0, b"seed\n").await.expect("write seed");
    fs.release(fh).await.expect("release seed");
    let seed_key = fs.key_of("seed");
    let body = store
        .get(&seed_key, None, None)
        .await
        .expect("the seed object")
        .data;
    let sealed = SealedStore::new(store.clone(), keys);
    let seed_meta = store.head(&seed_key).await.expect("head seed").metadata;
    let record = sealed
        .open_record(&seed_key, seed_meta.as_ref())
        .expect("seed record")
        .expect("the seed has a record");
    let now = SystemTime::now();
    let dir_attrs = StoredAttrs {
        perm: 0o755,
        uid: 0,
        gid: 0,
        mtime: now,
        xattrs: Default::default(),
        ctime: now,
    };
    let dir_record = record_for(Kind::Dir, &dir_attrs, None, [0; 32]);

    let mut objects: Vec<(String, bool)> = Vec::new();
    let mut names: Vec<String> = (0..dirs).map(|d| format!("d{d:04}")).collect();
    if big > 0 {
        names.push("big".into());
    }
    for (i, dir) in names.iter().enumerate() {
        objects.push((dir.clone(), true));
        let n = if i < dirs { files } else { big };
        objects.extend((0..n).map(|f| (format!("{dir}/f{f:06}"), false)));
    }
    let total = objects.len();
    let started = Instant::now();
    let written = std::sync::atomic::AtomicUsize::new(0);
    stream::iter(objects)
        .for_each_concurrent(PARALLEL, |(path, is_dir)| {
            let (fs, store, sealed, body) = (&fs, &store, &sealed, &body);
            let (seed_meta, record, dir_record, written) =
                (&seed_meta, &record, &dir_record, &written);
            async move {
                let (key, body, mut metadata, rec) = if is_dir {
                    let key = fs.dir_prefix(&path);
                    (key, bytes::Bytes::new(), Metadata::new(), dir_record)
                } else {
                    let key = fs.key_of(&path);
                    (
                        key,
                        body.clone(),
                        seed_meta.clone().unwrap_or_default(),
                        record,
                    )
                };
                let (k, v) = sealed.record_entry(&key, rec).expect("seal a record");
                metadata.insert(k, v);
                let opts = PutOptions {
                    metadata,
                    ..Default::default()
                };
                store.put(&key, body, opts).await.expect("put an object");
                let n = written.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if n % 100_000 == 0 {
                    eprintln!("{n} objects ({:.0} s)", started.elapsed().as_secs_f64());
                }
            }
        })
        .await;
    println!(
        "{total} objects ({dirs} x {files} files, big: {big}) in {:.0} s",
        started.elapsed().as_secs_f64()
    );
}
