//! Two mounts of one vault (two `Fs` over one `MemoryStore`) writing the same file: both
//! versions are kept, one at the name and one as `NAME.conflict-HOST-TIME` next to it; nothing
//! acknowledged is lost and nothing is left unstored (fs/conflict.rs).

use std::ffi::OsStr;
use std::sync::Arc;

use s3cryptfs::fs::{Fs, FsError};

use crate::common::memfs::MemVault;

async fn put(fs: &Arc<Fs>, name: &str, data: &[u8]) {
    let (_, fh) = fs
        .create(1, OsStr::new(name), 0o644, libc::O_WRONLY, 0, 0)
        .await
        .expect("create");
    fs.write(fh, 0, data).await.expect("write");
    fs.flush(fh).await.expect("flush");
    fs.release(fh).await.expect("release");
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
