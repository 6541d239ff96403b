//! Two mounts of one vault (two `Fs` over one `MemoryStore`) writing the same file: both
//! versions are kept, one at the name and one as `NAME.conflict-HOST-TIME` next to it; nothing
//! acknowledged is lost and nothing is left unstored (fs/conflict.rs).

use std::ffi::OsStr;
use std::sync::Arc;

use s3cryptfs::fs::{Fs, FsError};
use s3cryptfs::store::{DynStore, faulty::FaultyStore};

use crate::common::memfs::MemVault;

async fn put(fs: &Arc<Fs>, name: &str, data: &[u8]) {
    put_in(fs, 1, name, data).await;
}

/// Create `name` in directory `parent` with `data`, closed.
async fn put_in(fs: &Arc<Fs>, parent: u64, name: &str, data: &[u8]) {
    let (_, fh) = fs
        .create(parent, OsStr::new(name), 0o644, libc::O_WRONLY, 0, 0)
        .await
        .expect("create");
    fs.write(fh, 0, data).await.expect("write");
    fs.flush(fh).await.expect("flush");
    fs.release(fh).await.expect("release");
}

/// Make directory `dir` with one file `f` holding `data`; its inode.
async fn dir_with_file(fs: &Arc<Fs>, dir: &str, data: &[u8]) -> u64 {
    let d = fs
        .mkdir(1, OsStr::new(dir), 0o755, 0, 0)
        .await
        .expect("mkdir");
    put_in(fs, d.ino, "f", data).await;
    d.ino
}

async fn open_w(fs: &Arc<Fs>, name: &str) -> u64 {
    let attr = fs.lookup(1, OsStr::new(name)).await.expect("lookup");
    fs.open(attr.ino, libc::O_WRONLY | libc::O_TRUNC)
        .await
        .expect("open")
}

async fn read(fs: &Arc<Fs>, name: &str) -> Vec<u8> {
    let attr = fs.lookup(1, OsStr::new(name)).await.expect("lookup");
    let fh = fs.open(attr.ino, libc::O_RDONLY).await.expect("open");
    let mut out = Vec::new();
    loop {
        let chunk = fs.read(fh, out.len() as u64, 1 << 20).await.expect("read");
        if chunk.is_empty() {
            break;
        }
        out.extend_from_slice(&chunk);
    }
    fs.release(fh).await.expect("release");
    out
}

async fn names(fs: &Arc<Fs>) -> Vec<String> {
    fs.invalidate_caches();
    let fh = fs.opendir(1).await.expect("opendir");
    let entries = fs.readdir(fh).await.expect("readdir");
    fs.releasedir(fh);
    let mut v: Vec<String> = entries
        .into_iter()
        .map(|e| e.name)
        .filter(|n| n != "." && n != "..")
        .collect();
    v.sort();
    v
}

/// Both mounts open `s.txt` and write `len` bytes; the first close wins. A small file: the
/// second close gets ESTALE and its bytes land in `s.txt.conflict-<host>-<time>`. A streamed
/// file (its parts left while written): the first version moves to the conflict copy and the
/// second close succeeds. Either way both versions are there, once each, in both mounts.
async fn both_write(len: usize, streamed: bool) {
    let vault = MemVault::create(9, 65536);
    let (one, two) = (vault.fs(), vault.fs());
    put(&one, "s.txt", b"base").await;
    let a: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let b: Vec<u8> = (0..len).map(|i| (i % 241) as u8 ^ 0x5a).collect();
    let (fa, fb) = (open_w(&one, "s.txt").await, open_w(&two, "s.txt").await);
    for (i, chunk) in a.chunks(1 << 20).enumerate() {
        one.write(fa, (i << 20) as u64, chunk)
            .await
            .expect("write one");
    }
    for (i, chunk) in b.chunks(1 << 20).enumerate() {
        two.write(fb, (i << 20) as u64, chunk)
            .await
            .expect("write two");
    }
    one.flush(fa).await.expect("the first close wins");
    one.release(fa).await.expect("release one");
    let second = two.flush(fb).await;
    if streamed {
        second.expect("the streamed second close stores its data at the name");
        two.release(fb).await.expect("release two");
    } else {
        let lost = second.expect_err("the second close must fail");
        assert!(
            matches!(lost, FsError::Conflict { .. }),
            "second close: {lost:?}"
        );
        assert_eq!(lost.errno(), libc::ESTALE);
        // Every later flush and fsync of the stale handle says so too: the close that was
        // told may have been a forked child's, and the application's fsync comes after it.
        assert_eq!(
            two.fsync(fb).await.map_err(|e| e.errno()),
            Err(libc::ESTALE)
        );
        assert_eq!(
            two.flush(fb).await.map_err(|e| e.errno()),
            Err(libc::ESTALE)
        );
        // A write through the stale handle must not overwrite the winner either.
        assert!(
            two.write(fb, 0, b"late").await.is_err(),
            "stale handle wrote"
        );
        let _ = two.release(fb).await;
    }
    two.flush_all().await.expect("nothing is left unstored");
    assert_eq!(two.dirty_count().await, 0);

    let listed = names(&one).await;
    let copies: Vec<&String> = listed
        .iter()
        .filter(|n| n.starts_with("s.txt.conflict-"))
        .collect();
    assert_eq!(copies.len(), 1, "one conflict copy expected in {listed:?}");
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(names(&two).await, listed, "both mounts list the same names");
    let fresh = vault.fs();
    let (at_name, in_copy) = if streamed { (&b, &a) } else { (&a, &b) };
    assert!(read(&fresh, "s.txt").await == *at_name, "bytes at the name");
    assert!(
        read(&fresh, copies[0]).await == *in_copy,
        "bytes in the conflict copy"
    );
    assert!(
        vault.mem.pending_uploads().is_empty(),
        "an upload was left open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_close_keeps_a_conflict_copy() {
    both_write(100_000, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_close_of_a_streamed_file_keeps_a_conflict_copy() {
    // 40 MiB written front to back: both uploads stream their parts while written.
    both_write(40 << 20, true).await;
}

/// Another client writes `key` (as `hook_key` names it) right after the rename's copy of it,
/// before the source is deleted: `rename` runs through `fs`, whose store calls the hook.
fn write_after_copy(v: &MemVault, n: u64) -> (Arc<Fs>, Arc<std::sync::Mutex<Option<String>>>) {
    let faulty = FaultyStore::new(v.mem.clone());
    let mem = v.mem.clone();
    let written = Arc::new(std::sync::Mutex::new(None));
    let seen = written.clone();
    faulty.after_copy(move |copy, key| {
        if copy == n {
            mem.raw_put(key, b"written by another client since the copy".to_vec());
            *seen.lock().expect("lock") = Some(key.to_owned());
        }
    });
    let store: DynStore = faulty;
    (v.fs_over(store), written)
}

/// The key the hook of [`write_after_copy`] wrote, checked to still hold what it wrote.
fn kept(v: &MemVault, written: &std::sync::Mutex<Option<String>>) -> String {
    let key = written.lock().expect("lock").clone().expect("the hook ran");
    assert_eq!(
        v.mem.raw_get(&key).as_deref(),
        Some(&b"written by another client since the copy"[..]),
        "the version written after the copy was deleted with the source(s)"
    );
    key
}

/// A file rename copies, then deletes the source only if it is still the version copied: what
/// another client wrote in between stays under the old name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_between_a_file_renames_copy_and_delete_is_kept() {
    let v = MemVault::create(7, 4096);
    let (fs, written) = write_after_copy(&v, 1);
    put(&fs, "a", b"renamed").await;
    fs.rename(1, OsStr::new("a"), 1, OsStr::new("b"), 0)
        .await
        .expect("rename");
    kept(&v, &written);
    assert_eq!(read(&fs, "b").await, b"renamed");
}

/// The same for a directory rename: the sources are listed again before their batch delete,
/// and one written since its copy stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_between_a_directory_renames_copy_and_delete_is_kept() {
    let v = MemVault::create(7, 4096);
    let (fs, written) = write_after_copy(&v, 2);
    let d = dir_with_file(&fs, "d", b"f").await;
    for name in ["x", "y"] {
        put_in(&fs, d, name, name.as_bytes()).await;
    }
    fs.rename(1, OsStr::new("d"), 1, OsStr::new("e"), 0)
        .await
        .expect("rename");
    let key = kept(&v, &written);
    let left: Vec<String> = v
        .mem
        .keys()
        .into_iter()
        .filter(|k| k.starts_with("d/"))
        .collect();
    assert_eq!(left, vec![key], "every other source is deleted");
}

/// A directory renamed onto a name this mount last saw absent, which another mount has made
/// and filled since: `ENOTEMPTY`, as `rename(2)` answers for a non-empty target, and the other
/// mount's file is untouched (the rename's copies used to replace it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_is_not_renamed_onto_one_another_mount_filled() {
    let v = MemVault::create(7, 4096);
    let (a, b) = (v.fs(), v.fs());
    dir_with_file(&a, "src", b"mount a").await;
    // `a` lists the root: it now knows `dst` as absent.
    assert_eq!(names(&a).await, vec!["src".to_owned()]);
    let dst = dir_with_file(&b, "dst", b"mount b").await;
    let r = a
        .rename(1, OsStr::new("src"), 1, OsStr::new("dst"), 0)
        .await;
    assert!(matches!(r, Err(FsError::NotEmpty)), "{r:?}");
    b.invalidate_caches();
    let attr = b.lookup(dst, OsStr::new("f")).await.expect("lookup");
    let fh = b.open(attr.ino, libc::O_RDONLY).await.expect("open");
    assert_eq!(&b.read(fh, 0, 100).await.expect("read")[..], b"mount b");
    b.release(fh).await.expect("release");
}

/// Another client rewrites a file between the rename's look at it and its copy: the rename
/// moves the version there now, as if it came just after that write, instead of failing. On
/// a server that ignores `x-amz-copy-source-if-match` the target was already replaced by the
/// time the store saw the wrong version copied, so failing lost the target's old content.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_rewritten_before_its_renames_copy_moves_as_rewritten() {
    let v = MemVault::create(7, 4096);
    let faulty = FaultyStore::new(v.mem.clone());
    let store: DynStore = faulty.clone();
    let fs = v.fs_over(store);
    put(&fs, "a", b"first").await;
    put(&fs, "b", b"target").await;
    let other = v.fs();
    faulty.before_copy(move |copy, _| {
        if copy != 1 {
            return;
        }
        let other = other.clone();
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(async move {
                let fh = open_w(&other, "a").await;
                other.write(fh, 0, b"second").await.expect("write");
                other.flush(fh).await.expect("the other client's close");
                other.release(fh).await.expect("release");
            })
        });
    });
    fs.rename(1, OsStr::new("a"), 1, OsStr::new("b"), 0)
        .await
        .expect("the rename moves the version written meanwhile");
    let fresh = v.fs();
    assert_eq!(read(&fresh, "b").await, b"second");
    assert!(
        matches!(
            fresh.lookup(1, OsStr::new("a")).await,
            Err(FsError::NotFound)
        ),
        "the source is left"
    );
}
