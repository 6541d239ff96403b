//! Encrypted names on the file system layer (docs/FORMAT.md §9): nothing of a name reaches the
//! store's keys, a directory rename re-encrypts what is below, and a fresh `Fs` reads it back.

use std::ffi::OsStr;
use std::sync::Arc;

use s3cryptfs::fs::Fs;

use crate::common::memfs::{self, MemVault};

async fn put(fs: &Arc<Fs>, dir: u64, name: &str, data: &[u8]) {
    let (_, fh) = fs
        .create(dir, OsStr::new(name), 0o644, libc::O_WRONLY, 0, 0)
        .await
        .expect("create");
    fs.write(fh, 0, data).await.expect("write");
    fs.release(fh).await.expect("release");
}

async fn get(fs: &Arc<Fs>, dir: u64, name: &str) -> Vec<u8> {
    let ino = fs.lookup(dir, OsStr::new(name)).await.expect("lookup").ino;
    let fh = fs.open(ino, libc::O_RDONLY).await.expect("open");
    let data = fs.read(fh, 0, 1 << 20).await.expect("read").to_vec();
    fs.release(fh).await.expect("release");
    data
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_never_reach_the_store_and_read_back_after_a_directory_rename() {
    let vault = MemVault::create(7, 4096);
    let keys = Arc::new((*vault.keys).clone().with_encrypted_names(true));
    let fs = memfs::fs_over(vault.mem.clone(), keys.clone(), vault.staging());
    let long = format!("{}-long", "l".repeat(235));
    assert_eq!(long.len(), 240);
    let utf8 = "Grüße aus Köln ✓.txt";
    let spaced = "2026 tax return.pdf";
    let top = fs
        .mkdir(1, OsStr::new("patients"), 0o755, 0, 0)
        .await
        .expect("mkdir");
    let jane = fs
        .mkdir(top.ino, OsStr::new("jane-doe"), 0o755, 0, 0)
        .await
        .expect("mkdir");
    put(&fs, jane.ino, spaced, b"return").await;
    put(&fs, jane.ino, utf8, b"gruss").await;
    put(&fs, jane.ino, &long, b"long").await;
    fs.rename(
        top.ino,
        OsStr::new("jane-doe"),
        1,
        OsStr::new("moved dir"),
        0,
    )
    .await
    .expect("rename dir");
    let stored = vault.mem.keys();
    for part in [
        "patients", "jane", "doe", "tax", "return", "Grüße", "Köln", "moved", "llll",
    ] {
        for key in &stored {
            assert!(!key.contains(part), "{key} shows {part:?}");
        }
    }
    assert!(
        stored.iter().any(|k| k.ends_with(".name")),
        "a shortened name: {stored:?}"
    );

    let fresh = memfs::fs_over(vault.mem.clone(), keys, vault.staging());
    let mut root: Vec<String> = fresh
        .list_dir("")
        .await
        .expect("ls")
        .into_iter()
        .map(|e| e.name)
        .collect();
    root.sort();
    assert_eq!(root, ["moved dir", "patients"]);
    let mut below: Vec<String> = fresh
        .list_dir("moved dir")
        .await
        .expect("ls")
        .into_iter()
        .map(|e| e.name)
        .collect();
    below.sort();
    let mut want = vec![spaced.to_owned(), utf8.to_owned(), long.clone()];
    want.sort();
    assert_eq!(below, want);
    let dir = fresh
        .lookup(1, OsStr::new("moved dir"))
        .await
        .expect("lookup")
        .ino;
    assert_eq!(get(&fresh, dir, spaced).await, b"return");
    assert_eq!(get(&fresh, dir, utf8).await, b"gruss");
    assert_eq!(get(&fresh, dir, &long).await, b"long");
    assert!(fresh.list_dir("patients").await.expect("ls").is_empty());
}
