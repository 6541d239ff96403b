//! Inode lifetime through the fs layer: what the kernel is handed it gives back with
//! `forget`, and the table returns to its size before; an open file keeps its inode.

use std::ffi::OsStr;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::{Fs, FsOptions};
use crate::crypto::{Secret, VaultConfig};
use crate::store::{DynStore, MemoryStore};

pub(super) fn fs() -> (Arc<Fs>, tempfile::TempDir) {
    let store: DynStore = MemoryStore::new();
    let (_cfg, keys) =
        VaultConfig::create(&Secret::KeyFile(Zeroizing::new([3u8; 32])), 4096).expect("vault");
    let staging = tempfile::tempdir().expect("staging dir");
    let opts = FsOptions::for_current_user(staging.path().to_path_buf());
    let fs = Fs::new(store, String::new(), Arc::new(keys), opts).expect("fs");
    (fs, staging)
}

pub(super) async fn write_file(fs: &Arc<Fs>, parent: u64, name: &str) -> u64 {
    let (attr, fh) = fs
        .create(parent, OsStr::new(name), 0o644, libc::O_WRONLY, 0, 0)
        .await
        .expect("create");
    fs.write(fh, 0, name.as_bytes()).await.expect("write");
    fs.release(fh).await.expect("release");
    attr.ino
}

#[tokio::test]
async fn lookups_then_forgets_leave_the_table_as_it_was() {
    let (fs, _staging) = fs();
    let initial = fs.inode_count();
    let d = fs
        .mkdir(1, OsStr::new("d"), 0o755, 0, 0)
        .await
        .expect("mkdir");
    let sub = fs
        .mkdir(d.ino, OsStr::new("sub"), 0o755, 0, 0)
        .await
        .expect("mkdir sub");
    let mut made = vec![(d.ino, 1), (sub.ino, 1)];
    for i in 0..10 {
        made.push((write_file(&fs, sub.ino, &format!("f{i}")).await, 1));
    }
    assert_eq!(fs.inode_count(), initial + 12);
    // The kernel forgets a directory only after what is below it; any order must do.
    fs.batch_forget(made);
    assert_eq!(fs.inode_count(), initial);

    // A walk as the kernel does it, twice over: lookups (each counted), a listing, getattr.
    fs.invalidate_caches();
    let mut counts = std::collections::HashMap::new();
    for _ in 0..2 {
        let d = fs.lookup(1, OsStr::new("d")).await.expect("lookup d");
        let sub = fs
            .lookup(d.ino, OsStr::new("sub"))
            .await
            .expect("lookup sub");
        for e in fs.list_dir("d/sub").await.expect("list") {
            let a = fs
                .lookup(sub.ino, OsStr::new(&e.name))
                .await
                .expect("lookup");
            assert_eq!(a.ino, e.ino, "a listed entry keeps its number at lookup");
            fs.getattr(a.ino).await.expect("getattr");
            *counts.entry(a.ino).or_insert(0) += 1;
        }
        *counts.entry(d.ino).or_insert(0) += 1;
        *counts.entry(sub.ino).or_insert(0) += 1;
    }
    assert_eq!(counts.len(), 12);
    assert!(
        counts
            .iter()
            .all(|(ino, n)| fs.lookup_count(*ino) == Some(*n))
    );
    for (ino, n) in counts {
        fs.forget(ino, n);
    }
    assert_eq!(fs.inode_count(), initial);
    // Paths still resolve afresh, with new numbers.
    let again = fs.lookup(1, OsStr::new("d")).await.expect("lookup again");
    assert!(again.ino > d.ino);
}

#[tokio::test]
async fn an_open_file_keeps_its_inode_until_release() {
    let (fs, _staging) = fs();
    let initial = fs.inode_count();
    let (attr, fh) = fs
        .create(1, OsStr::new("open"), 0o644, libc::O_RDWR, 0, 0)
        .await
        .expect("create");
    fs.write(fh, 0, b"still here").await.expect("write");
    fs.forget(attr.ino, 1);
    assert_eq!(fs.inode_count(), initial + 1);
    assert_eq!(fs.getattr(attr.ino).await.expect("getattr").size, 10);
    fs.flush(fh).await.expect("flush");
    assert_eq!(&fs.read(fh, 0, 64).await.expect("read")[..], b"still here");
    fs.release(fh).await.expect("release");
    assert_eq!(fs.inode_count(), initial);
    assert!(fs.getattr(attr.ino).await.is_err());
}

#[tokio::test]
async fn a_directory_rename_moves_one_inode() {
    let (fs, _staging) = fs();
    let d = fs
        .mkdir(1, OsStr::new("a"), 0o755, 0, 0)
        .await
        .expect("mkdir");
    let f = write_file(&fs, d.ino, "f").await;
    let count = fs.inode_count();
    fs.rename(1, OsStr::new("a"), 1, OsStr::new("b"), 0)
        .await
        .expect("rename");
    assert_eq!(fs.inode_count(), count);
    let looked = fs.lookup(d.ino, OsStr::new("f")).await.expect("lookup");
    assert_eq!(looked.ino, f);
    let b = fs.lookup(1, OsStr::new("b")).await.expect("lookup b");
    assert_eq!(b.ino, d.ino);
}

#[tokio::test]
async fn renames_and_removals_then_forgets_leave_the_table_as_it_was() {
    let (fs, _staging) = fs();
    let initial = fs.inode_count();
    let mut held: Vec<u64> = Vec::new();
    let a = fs.mkdir(1, OsStr::new("a"), 0o755, 0, 0).await.expect("a");
    let b = fs
        .mkdir(a.ino, OsStr::new("b"), 0o755, 0, 0)
        .await
        .expect("b");
    held.extend([a.ino, b.ino]);
    for name in ["x", "y", "z"] {
        held.push(write_file(&fs, b.ino, name).await);
    }
    let c = fs.mkdir(1, OsStr::new("c"), 0o755, 0, 0).await.expect("c");
    held.push(c.ino);
    // Over an existing name, across directories, a whole directory, then removals.
    fs.rename(b.ino, OsStr::new("x"), b.ino, OsStr::new("y"), 0)
        .await
        .expect("rename over y");
    fs.rename(b.ino, OsStr::new("z"), c.ino, OsStr::new("z"), 0)
        .await
        .expect("rename to c");
    fs.rename(a.ino, OsStr::new("b"), c.ino, OsStr::new("b2"), 0)
        .await
        .expect("rename dir");
    let y = fs.lookup(b.ino, OsStr::new("y")).await.expect("y below b2");
    held.push(y.ino);
    fs.unlink(b.ino, OsStr::new("y")).await.expect("unlink");
    fs.rmdir(c.ino, OsStr::new("b2")).await.expect("rmdir");
    fs.rmdir(1, OsStr::new("a")).await.expect("rmdir a");
    let z = fs.lookup(c.ino, OsStr::new("z")).await.expect("z in c");
    held.push(z.ino);
    // Any order: parents before children too.
    for ino in held {
        fs.forget(ino, 1);
    }
    assert_eq!(fs.inode_count(), initial);
}
