//! The file system layer on the MemoryStore, without a kernel: request counts, tampering,
//! no plaintext in the store, namespace errors.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::sync::Arc;

use s3cryptfs::crypto::HEADER_LEN;
use s3cryptfs::crypto::format::ciphertext_len;
use s3cryptfs::fs::{Fs, FsError, Kind};
use s3cryptfs::store::{MemoryStore, ObjectStore, Op};

use crate::common::memfs::{self, MemVault};

const B: u64 = 65536;

struct Env {
    fs: Arc<Fs>,
    mem: Arc<MemoryStore>,
    _vault: MemVault,
}

fn env() -> Env {
    let vault = MemVault::create(7, B as u32);
    Env {
        fs: vault.fs(),
        mem: vault.mem.clone(),
        _vault: vault,
    }
}

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

async fn write_file(fs: &Arc<Fs>, name: &str, data: &[u8]) -> u64 {
    let (attr, fh) = fs
        .create(1, OsStr::new(name), 0o644, libc::O_WRONLY, 0, 0)
        .await
        .expect("create");
    for (i, chunk) in data.chunks(1 << 20).enumerate() {
        fs.write(fh, (i << 20) as u64, chunk).await.expect("write");
    }
    fs.flush(fh).await.expect("flush");
    fs.release(fh).await.expect("release");
    attr.ino
}

async fn read_file(fs: &Arc<Fs>, ino: u64) -> Result<Vec<u8>, FsError> {
    let fh = fs.open(ino, libc::O_RDONLY).await?;
    let mut out = Vec::new();
    loop {
        let chunk = fs.read(fh, out.len() as u64, 128 * 1024).await?;
        if chunk.is_empty() {
            break;
        }
        out.extend_from_slice(&chunk);
    }
    fs.release(fh).await?;
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roundtrip_sizes_including_multipart() {
    let e = env();
    for (i, len) in [
        0usize,
        1,
        B as usize - 1,
        B as usize,
        B as usize + 1,
        17 << 20,
    ]
    .into_iter()
    .enumerate()
    {
        let data = pattern(len, i as u64);
        let name = format!("f{len}");
        let ino = write_file(&e.fs, &name, &data).await;
        e.fs.invalidate_caches();
        let attr = e.fs.lookup(1, OsStr::new(&name)).await.expect("lookup");
        assert_eq!(attr.ino, ino);
        assert_eq!(attr.size, len as u64);
        assert_eq!(
            read_file(&e.fs, ino).await.expect("read"),
            data,
            "size {len}"
        );
        let stored = e.mem.raw_get(&name).expect("object");
        assert_eq!(stored.len() as u64, ciphertext_len(len as u64, B as u32));
    }
    // The 17 MiB file went out as a multipart upload.
    assert!(e.mem.stats().expect("stats").requests(Op::UploadPart) >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_4k_read_of_200mib_fetches_at_most_covering_blocks() {
    let e = env();
    let len = 200usize << 20;
    let data = pattern(len, 42);
    let ino = write_file(&e.fs, "big", &data).await;
    let mut rng = 12345u64;
    for _ in 0..20 {
        rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1);
        let offset = (rng >> 11) % (len as u64 - 4096);
        e.mem.reset_stats();
        let fh = e.fs.open(ino, libc::O_RDONLY).await.expect("open");
        let got = e.fs.read(fh, offset, 4096).await.expect("read");
        e.fs.release(fh).await.expect("release");
        assert_eq!(got, &data[offset as usize..offset as usize + 4096]);
        let s = e.mem.stats().expect("stats");
        let blocks = (offset + 4095) / B - offset / B + 1;
        // The covering blocks and, the first time, the 116-byte header; nothing else.
        assert!(
            s.bytes(Op::Get) <= blocks * (B + 16) + HEADER_LEN as u64,
            "offset {offset}: fetched {} bytes for {blocks} block(s)",
            s.bytes(Op::Get)
        );
        assert!(blocks <= 2);
        assert!(s.requests(Op::Get) <= 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_never_holds_plaintext() {
    let e = env();
    let marker = b"PLAINTEXT-MARKER-0123456789";
    let data: Vec<u8> = marker.iter().copied().cycle().take(300_000).collect();
    write_file(&e.fs, "secret.txt", &data).await;
    write_file(&e.fs, "small.txt", marker).await;
    for key in e.mem.keys() {
        let body = e.mem.raw_get(&key).expect("object");
        assert!(
            !body.windows(marker.len()).any(|w| w == marker),
            "object {key} holds plaintext"
        );
    }
}

async fn tamper_case(edit: impl Fn(&mut Vec<u8>)) {
    let e = env();
    let data = pattern(3 * B as usize + 100, 9);
    let ino = write_file(&e.fs, "victim", &data).await;
    let ok_ino = write_file(&e.fs, "bystander", b"still fine").await;
    let mut body = e.mem.raw_get("victim").expect("object");
    edit(&mut body);
    e.mem.raw_put("victim", body);
    e.fs.invalidate_caches();
    let ino2 = e.fs.lookup(1, OsStr::new("victim")).await.map(|a| a.ino);
    let err = match ino2 {
        Ok(i) => read_file(&e.fs, i)
            .await
            .expect_err("tampered read must fail"),
        Err(err) => err,
    };
    assert_eq!(err.errno(), libc::EIO, "{err}");
    let _ = ino;
    assert_eq!(
        read_file(&e.fs, ok_ino).await.expect("bystander"),
        b"still fine"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_objects_give_eio() {
    let h = HEADER_LEN;
    let blk = (B + 16) as usize;
    // A flipped byte in the second block.
    tamper_case(|b| b[h + blk + 10] ^= 1).await;
    // A flipped byte in the header.
    tamper_case(|b| b[20] ^= 0x80).await;
    // Truncated tail (the last block cut short).
    tamper_case(|b| {
        let n = b.len();
        b.truncate(n - 7)
    })
    .await;
    // The last block dropped entirely (still a valid-looking size).
    tamper_case(|b| {
        let n = b.len();
        b.truncate(n - (100 + 16))
    })
    .await;
    // Two blocks swapped.
    tamper_case(|b| {
        let (first, second) = (h..h + blk, h + blk..h + 2 * blk);
        let a = b[first.clone()].to_vec();
        let c = b[second.clone()].to_vec();
        b[first].copy_from_slice(&c);
        b[second].copy_from_slice(&a);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_rules() {
    let e = env();
    let fs = &e.fs;
    let d = fs
        .mkdir(1, OsStr::new("d"), 0o755, 0, 0)
        .await
        .expect("mkdir");
    assert_eq!(d.kind, Kind::Dir);
    assert_eq!(
        fs.mkdir(1, OsStr::new("d"), 0o755, 0, 0)
            .await
            .map(|_| ())
            .unwrap_err()
            .errno(),
        libc::EEXIST
    );
    let (f, fh) = fs
        .create(d.ino, OsStr::new("f"), 0o600, libc::O_WRONLY, 0, 0)
        .await
        .expect("create");
    fs.write(fh, 0, b"hello").await.expect("write");
    // Before the first close the file is listed and the directory is not empty.
    let names: Vec<String> = fs
        .list_dir("d")
        .await
        .expect("list")
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, vec!["f".to_string()]);
    assert_eq!(
        fs.rmdir(1, OsStr::new("d")).await.unwrap_err().errno(),
        libc::ENOTEMPTY
    );
    fs.release(fh).await.expect("release");
    assert_eq!(
        fs.rmdir(1, OsStr::new("d")).await.unwrap_err().errno(),
        libc::ENOTEMPTY
    );
    assert_eq!(
        fs.unlink(1, OsStr::new("d")).await.unwrap_err().errno(),
        libc::EISDIR
    );
    assert_eq!(
        fs.rmdir(d.ino, OsStr::new("f")).await.unwrap_err().errno(),
        libc::ENOTDIR
    );
    // Rename over an existing file replaces it.
    write_file(fs, "g", b"other").await;
    fs.rename(d.ino, OsStr::new("f"), 1, OsStr::new("g"), 0)
        .await
        .expect("rename");
    let g = fs.lookup(1, OsStr::new("g")).await.expect("lookup g");
    assert_eq!(g.ino, f.ino, "the renamed inode keeps its number");
    assert_eq!(read_file(fs, g.ino).await.expect("read"), b"hello");
    assert!(e.mem.raw_get("d/f").is_none());
    fs.invalidate_caches();
    assert_eq!(
        fs.lookup(d.ino, OsStr::new("f")).await.unwrap_err().errno(),
        libc::ENOENT
    );
    fs.rmdir(1, OsStr::new("d")).await.expect("rmdir");
    assert_eq!(fs.link().unwrap_err().errno(), libc::EPERM);
    // The vault's own directory is hidden and protected.
    assert_eq!(
        fs.mkdir(1, OsStr::new(".s3cryptfs"), 0o755, 0, 0)
            .await
            .unwrap_err()
            .errno(),
        libc::EPERM
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ls_l_of_many_files_costs_one_list_and_parallel_heads() {
    let vault = MemVault::create(7, B as u32);
    // Every change is this Fs's own: an hour's TTL keeps the listing and the HEADs' attributes
    // for every lookup below, however slowly they run (after the default 1 s, a lookup would
    // list the directory again).
    let fs = vault.fs_with_ttl(std::time::Duration::from_secs(3600));
    for i in 0..200 {
        write_file(&fs, &format!("f{i:04}"), b"x").await;
    }
    fs.invalidate_caches();
    vault.mem.reset_stats();
    let entries = fs.list_dir("").await.expect("list");
    assert_eq!(entries.len(), 200);
    for ent in &entries {
        fs.lookup(1, OsStr::new(&ent.name)).await.expect("lookup");
    }
    let s = vault.mem.stats().expect("stats");
    assert_eq!(s.requests(Op::List), 1);
    assert_eq!(
        s.requests(Op::Head),
        200,
        "one HEAD per file, issued by the listing"
    );
    assert_eq!(s.requests(Op::Get), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncate_and_sparse_writes_match_a_model() {
    let e = env();
    let mut model = pattern(200_000, 3);
    let ino = write_file(&e.fs, "t", &model).await;
    let fh = e.fs.open(ino, libc::O_RDWR).await.expect("open");
    e.fs.setattr(ino, Some(70_000), None, None, None, None)
        .await
        .expect("truncate down");
    model.truncate(70_000);
    e.fs.write(fh, 300_000, b"tail")
        .await
        .expect("sparse write");
    model.resize(300_000, 0);
    model.extend_from_slice(b"tail");
    e.fs.setattr(ino, Some(400_000), None, None, None, None)
        .await
        .expect("truncate up");
    model.resize(400_000, 0);
    e.fs.flush(fh).await.expect("flush");
    e.fs.release(fh).await.expect("release");
    e.fs.invalidate_caches();
    assert_eq!(read_file(&e.fs, ino).await.expect("read"), model);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_read_fetches_every_byte_once() {
    let e = env();
    // Larger than the default 64 MiB block cache, so read-ahead blocks must survive eviction
    // pressure until they are read.
    let len = 160usize << 20;
    let data = pattern(len, 77);
    let ino = write_file(&e.fs, "seq", &data).await;
    e.fs.invalidate_caches();
    e.mem.reset_stats();
    let fh = e.fs.open(ino, libc::O_RDONLY).await.expect("open");
    let mut pos = 0usize;
    while pos < len {
        if pos % (2 << 20) == 0 {
            // Every 2 MiB, let the read-ahead catch up: its blocks are then cached
            // well before the reader reaches them, and older than the chunks it reads meanwhile.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        // The kernel's read size with FUSE big writes/reads.
        let chunk = e.fs.read(fh, pos as u64, 128 * 1024).await.expect("read");
        assert_eq!(chunk, data[pos..pos + chunk.len()], "at {pos}");
        pos += chunk.len();
    }
    e.fs.release(fh).await.expect("release");
    let s = e.mem.stats().expect("stats");
    let stored = ciphertext_len(len as u64, B as u32);
    let fetched = s.bytes(Op::Get);
    assert!(
        fetched >= stored - HEADER_LEN as u64 && fetched <= stored + stored / 50,
        "fetched {fetched} bytes for a {stored}-byte object ({} GETs)",
        s.requests(Op::Get)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rereading_cached_blocks_costs_no_request() {
    let e = env();
    let len = 20usize << 20;
    let data = pattern(len, 9);
    let ino = write_file(&e.fs, "again", &data).await;
    e.fs.invalidate_caches();
    let fh = e.fs.open(ino, libc::O_RDONLY).await.expect("open");
    // Two random reads in one chunk: two runs of one block each in its cache entry.
    for offset in [5 * B + 100, 9 * B + 7] {
        e.fs.read(fh, offset, 4096).await.expect("read");
    }
    e.mem.reset_stats();
    for (offset, n) in [
        (9 * B + 7, 4096),
        (5 * B + 100, 4096),
        (5 * B, B),
        (9 * B, B),
    ] {
        let got = e.fs.read(fh, offset, n as u32).await.expect("re-read");
        assert_eq!(
            got,
            data[offset as usize..(offset + n) as usize],
            "at {offset}"
        );
    }
    e.fs.release(fh).await.expect("release");
    assert_eq!(e.mem.stats().expect("stats").requests(Op::Get), 0);
}

/// A directory listed while a new file in it was still only local must not hide that file
/// once it is uploaded and its cached entry is gone (a directory rename drops every entry).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_taken_before_an_upload_does_not_hide_the_file() {
    let e = env();
    let fs = &e.fs;
    let d = fs
        .mkdir(1, OsStr::new("d"), 0o755, 0, 0)
        .await
        .expect("mkdir d");
    fs.mkdir(1, OsStr::new("x"), 0o755, 0, 0)
        .await
        .expect("mkdir x");
    let (_, fh) = fs
        .create(d.ino, OsStr::new("f"), 0o600, libc::O_WRONLY, 0, 0)
        .await
        .expect("create");
    fs.write(fh, 0, b"hello").await.expect("write");
    let listed = fs.list_dir("d").await.expect("list while pending");
    assert_eq!(listed.len(), 1);
    fs.release(fh).await.expect("release uploads");
    fs.rename(1, OsStr::new("x"), 1, OsStr::new("y"), 0)
        .await
        .expect("rename a directory");
    let f = fs.lookup(d.ino, OsStr::new("f")).await.expect("lookup f");
    assert_eq!(f.size, 5);
    // And a name never made is still absent.
    assert_eq!(
        fs.lookup(d.ino, OsStr::new("g")).await.unwrap_err().errno(),
        libc::ENOENT
    );
}

/// Names a listing hands over are checked as the kernel's are: a key whose part below the
/// directory is empty, `.`, `..`, longer than 255 bytes or holds a NUL is skipped, and the
/// rest of the directory is still listed.
#[tokio::test]
async fn hostile_listed_names_are_skipped() {
    let e = env();
    let long = "n".repeat(256);
    let max = "k".repeat(255);
    for key in [
        "d/good".to_owned(),
        "d/sub/x".to_owned(),
        format!("d/{max}"),
        "d/../escape".to_owned(),
        "d/./dot".to_owned(),
        "d//empty".to_owned(),
        format!("d/{long}"),
        format!("d/{long}/below"),
        "d/nul\0name".to_owned(),
        "../up".to_owned(),
        "./here".to_owned(),
        "top".to_owned(),
    ] {
        e.mem.raw_put(&key, b"junk".to_vec());
    }
    let names = |entries: Vec<s3cryptfs::fs::DirEntry>| -> BTreeSet<String> {
        entries.into_iter().map(|d| d.name).collect()
    };
    let listed = names(e.fs.list_dir("d").await.expect("list d"));
    let want: BTreeSet<String> = ["good".to_owned(), "sub".to_owned(), max.clone()].into();
    assert_eq!(listed, want);
    let listed = names(e.fs.list_dir("").await.expect("list root"));
    let want: BTreeSet<String> = ["d".to_owned(), "top".to_owned()].into();
    assert_eq!(listed, want);
    // What is listed resolves by name (the junk objects themselves are EIO: 4 bytes is no
    // valid encrypted size, see tests/fast/hostile_bucket.rs).
    let d = e.fs.lookup(1, OsStr::new("d")).await.expect("d");
    for name in ["good", max.as_str()] {
        match e.fs.lookup(d.ino, OsStr::new(name)).await {
            Ok(_) => {}
            Err(err) => assert_ne!(err.errno(), libc::ENOENT, "{name}: {err:?}"),
        }
    }
}

/// Fifos, sockets and devices (issue 14): made by `mknod`, stored as empty objects whose
/// attribute record holds the type and device number, found again by a fresh mount, renamed
/// and chmod'ed as files are, and never opened by the file system.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn special_files_are_kept_with_their_type_and_rdev() {
    let e = env();
    let fs = &e.fs;
    let nodes = [
        ("fifo", libc::S_IFIFO | 0o640, 0, Kind::Fifo),
        ("sock", libc::S_IFSOCK | 0o755, 0, Kind::Socket),
        (
            "null",
            libc::S_IFCHR | 0o666,
            0x103,
            Kind::CharDevice(0x103),
        ),
        (
            "loop0",
            libc::S_IFBLK | 0o660,
            0x700,
            Kind::BlockDevice(0x700),
        ),
    ];
    for (name, mode, rdev, kind) in nodes {
        let a = fs
            .mknod(1, OsStr::new(name), mode, rdev, 1000, 100)
            .await
            .expect("mknod");
        assert_eq!(
            (a.kind, a.perm, a.uid, a.size),
            (kind, mode & 0o7777, 1000, 0)
        );
        assert_eq!(
            fs.mknod(1, OsStr::new(name), mode, rdev, 0, 0)
                .await
                .unwrap_err()
                .errno(),
            libc::EEXIST
        );
        assert!(fs.open(a.ino, libc::O_RDONLY).await.is_err(), "{name}");
    }
    assert_eq!(
        fs.mknod(1, OsStr::new("x"), libc::S_IFDIR | 0o755, 0, 0, 0)
            .await
            .unwrap_err()
            .errno(),
        libc::EINVAL
    );
    // chmod, chown and rename keep type and device number.
    let null = fs.lookup(1, OsStr::new("null")).await.expect("lookup");
    fs.setattr(null.ino, None, Some(0o600), Some(7), None, None)
        .await
        .expect("chmod");
    fs.rename(1, OsStr::new("null"), 1, OsStr::new("null2"), 0)
        .await
        .expect("rename");
    assert!(e.mem.raw_get("null").is_none());
    fs.unlink(1, OsStr::new("sock")).await.expect("unlink");
    fs.flush_all().await.expect("flush");

    let fresh = e._vault.fs();
    let mut found = Vec::new();
    for ent in fresh.list_dir("").await.expect("list") {
        let a = fresh
            .lookup(1, OsStr::new(&ent.name))
            .await
            .expect("lookup");
        assert_eq!(ent.kind, a.kind);
        found.push((ent.name, a.kind, a.perm, a.uid, a.gid));
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        found,
        vec![
            ("fifo".to_string(), Kind::Fifo, 0o640, 1000, 100),
            (
                "loop0".to_string(),
                Kind::BlockDevice(0x700),
                0o660,
                1000,
                100
            ),
            ("null2".to_string(), Kind::CharDevice(0x103), 0o600, 7, 100),
        ]
    );
    assert_eq!(Kind::BlockDevice(0x700).rdev(), 0x700);
    assert_eq!(fs.link().unwrap_err().errno(), libc::EPERM);
}

/// `touch`, `chmod` and `chown` of the mount root work (the root has no object: the change
/// lasts until unmount, docs/SEMANTICS.md); they used to fail with EIO.
#[tokio::test]
async fn setattr_on_the_mount_root_works() {
    let e = env();
    let root = e.fs.root_ino();
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
    let a =
        e.fs.setattr(root, None, Some(0o700), Some(12), Some(34), Some(when))
            .await
            .expect("setattr of the root");
    assert_eq!((a.perm, a.uid, a.gid, a.mtime), (0o700, 12, 34, when));
    e.fs.invalidate_caches();
    let a = e.fs.getattr(root).await.expect("getattr of the root");
    assert_eq!((a.perm, a.uid, a.gid, a.mtime), (0o700, 12, 34, when));
    assert_eq!(a.kind, Kind::Dir);
}

/// After the TTL, a fresh listing that shows a file's object unchanged since a HEAD of it
/// reuses that HEAD's attributes (fs/settled.rs): `ls -l` again costs the LIST and no HEAD per
/// file. A file another mount changed meanwhile (a chmod: a metadata-only copy, same ETag and
/// size) is HEADed again and shows the change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ls_l_after_the_ttl_heads_only_the_files_that_changed() {
    use std::time::Duration;
    let vault = MemVault::create(7, B as u32);
    let mut opts = s3cryptfs::fs::FsOptions::for_current_user(vault.staging().to_path_buf());
    // Each `ls -l` below must run within the TTL (a lookup after it would list again), and
    // the second must start after it: 2 s, not a few hundred ms, lets a loaded machine stall.
    let ttl = Duration::from_secs(2);
    opts.metadata_ttl = ttl;
    opts.settled_after = Duration::ZERO;
    let fs = crate::common::memfs::fs_with(vault.mem.clone(), vault.keys.clone(), opts.clone());
    let other = crate::common::memfs::fs_with(vault.mem.clone(), vault.keys.clone(), opts);
    for i in 0..50 {
        write_file(&fs, &format!("f{i:04}"), b"x").await;
    }
    // Settled: Last-Modified (to the second, as listings give it) lies before the HEADs.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let ls_l = |fs: Arc<Fs>| async move {
        let mut perms = Vec::new();
        for ent in fs.list_dir("").await.expect("list") {
            let a = fs.lookup(1, OsStr::new(&ent.name)).await.expect("lookup");
            perms.push((ent.name, a.perm));
        }
        perms
    };
    fs.invalidate_caches();
    vault.mem.reset_stats();
    let first = ls_l(fs.clone()).await;
    assert_eq!(first.len(), 50);
    let s = vault.mem.stats().expect("stats");
    assert_eq!((s.requests(Op::List), s.requests(Op::Head)), (1, 50));

    // Another mount changes one file's mode: a copy onto itself with a new record.
    let ino = other
        .lookup(1, OsStr::new("f0007"))
        .await
        .expect("lookup")
        .ino;
    vault.mem.reset_stats();
    other
        .setattr(ino, None, Some(0o600), None, None, None)
        .await
        .expect("chmod");
    for _ in 0..100 {
        if vault.mem.stats().expect("stats").requests(Op::Copy) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(vault.mem.stats().expect("stats").requests(Op::Copy), 1);
    tokio::time::sleep(ttl + Duration::from_millis(100)).await; // past the TTL

    vault.mem.reset_stats();
    let second = ls_l(fs.clone()).await;
    let s = vault.mem.stats().expect("stats");
    assert_eq!(
        (s.requests(Op::List), s.requests(Op::Head)),
        (1, 1),
        "only the changed file is HEADed"
    );
    for ((name, before), (name2, after)) in first.iter().zip(&second) {
        assert_eq!(name, name2);
        let want = if name == "f0007" { 0o600 } else { *before };
        assert_eq!(*after, want, "{name}");
    }
}

/// Four sequential readers at once under a memory limit smaller than their read-ahead windows
/// together: they share the cache's room for read-ahead, and a read-ahead that starts after
/// its reader has passed its blocks skips them, so every byte is still fetched about once
/// (1.6 to 1.7 times without both; a fetched block evicted before it is read is fetched again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sequential_readers_under_a_small_limit_fetch_every_byte_about_once() {
    const MIB: usize = 1 << 20;
    let vault = MemVault::create(7, B as u32);
    let mut opts = memfs::options(vault.staging().to_path_buf());
    opts.memory_limit = 32 * MIB as u64;
    let fs = memfs::fs_with(vault.mem.clone(), vault.keys.clone(), opts);
    let len = 40 * MIB;
    let mut files = Vec::new();
    for seed in 0..4u64 {
        let data = pattern(len, 100 + seed);
        let ino = write_file(&fs, &format!("r{seed}"), &data).await;
        files.push((ino, data));
    }
    fs.invalidate_caches();
    vault.mem.reset_stats();
    let readers = files.into_iter().map(|(ino, data)| {
        let fs = fs.clone();
        tokio::spawn(async move {
            let fh = fs.open(ino, libc::O_RDONLY).await.expect("open");
            let mut pos = 0usize;
            while pos < data.len() {
                let chunk = fs.read(fh, pos as u64, 128 * 1024).await.expect("read");
                assert_eq!(chunk, data[pos..pos + chunk.len()], "at {pos}");
                pos += chunk.len();
            }
            fs.release(fh).await.expect("release");
        })
    });
    for r in futures::future::join_all(readers).await {
        r.expect("reader");
    }
    let s = vault.mem.stats().expect("stats");
    let stored = 4 * ciphertext_len(len as u64, B as u32);
    let fetched = s.bytes(Op::Get);
    assert!(
        fetched <= stored + stored / 10,
        "fetched {fetched} bytes for {stored} stored ({} GETs)",
        s.requests(Op::Get)
    );
}
