//! `get`/`put` through the library, and recovery from a plain copy: a vault whose objects were
//! copied to a folder by key, without any metadata (as `aws s3 sync` to a local folder does),
//! is fully restored by `get`, through the library and through the binary.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use s3cryptfs::crypto::Secret;
use s3cryptfs::fs::{Fs, FsOptions};
use s3cryptfs::store::MemoryStore;
use s3cryptfs::store::faulty::FaultyStore;
use s3cryptfs::tools::files::VaultFs;
use s3cryptfs::tools::get::get;
use s3cryptfs::tools::put::put;
use s3cryptfs::tools::{Access, open_store};
use s3cryptfs::vault;
use zeroize::Zeroizing;

use crate::common::memfs::MemVault;

const KEY: [u8; 32] = [0x17; 32];

fn secret() -> Secret {
    Secret::KeyFile(Zeroizing::new(KEY))
}

fn data(seed: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 13 + seed * 101) % 256) as u8)
        .collect()
}

/// The local tree the tests store and expect back.
fn make_tree(root: &Path) {
    std::fs::create_dir_all(root.join("docs/deep/er")).expect("mkdir");
    std::fs::create_dir_all(root.join("empty")).expect("mkdir");
    std::fs::write(root.join("docs/a.txt"), b"alpha\n").expect("write");
    std::fs::write(root.join("docs/deep/big.bin"), data(1, 300_000)).expect("write");
    std::fs::write(root.join("docs/deep/er/zero"), b"").expect("write");
    std::fs::write(root.join("top.bin"), data(2, 65_536)).expect("write");
    std::os::unix::fs::symlink("docs/a.txt", root.join("link")).expect("symlink");
    std::fs::set_permissions(
        root.join("docs/a.txt"),
        std::fs::Permissions::from_mode(0o600),
    )
    .expect("chmod");
    std::fs::set_permissions(root.join("top.bin"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    for f in ["docs/a.txt", "top.bin", "docs/deep/big.bin"] {
        std::fs::File::options()
            .write(true)
            .open(root.join(f))
            .expect("open")
            .set_modified(t)
            .expect("mtime");
    }
}

fn assert_same_content(a: &Path, b: &Path) {
    assert_same_files(a, b);
    assert_eq!(
        std::fs::read_link(b.join("link")).expect("link"),
        Path::new("docs/a.txt")
    );
}

/// What a plain copy restores: every file and directory. Symlinks are marked only in object
/// metadata, so without it a symlink comes back as a small file holding its target.
fn assert_same_files(a: &Path, b: &Path) {
    for rel in [
        "docs/a.txt",
        "docs/deep/big.bin",
        "docs/deep/er/zero",
        "top.bin",
    ] {
        assert_eq!(
            std::fs::read(a.join(rel)).expect("read a"),
            std::fs::read(b.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}")),
            "{rel}"
        );
    }
    assert!(b.join("empty").is_dir());
}

fn assert_plain_restore(a: &Path, b: &Path) {
    assert_same_files(a, b);
    assert_eq!(std::fs::read(b.join("link")).expect("link"), b"docs/a.txt");
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .expect("meta")
        .permissions()
        .mode()
        & 0o7777
}

fn mtime(p: &Path) -> SystemTime {
    std::fs::metadata(p)
        .expect("meta")
        .modified()
        .expect("mtime")
}

/// A memory-store vault holding `tree` (stored with `put`).
async fn vault_holding(tree: &Path) -> Arc<MemoryStore> {
    let vault = MemVault::init(&secret(), 65536).await;
    let fs = vault.fs();
    let report = put(&fs, tree, "").await.expect("put");
    assert!(report.failures.is_empty(), "{report:?}");
    assert_eq!(
        (report.files, report.symlinks, report.directories),
        (4, 1, 5)
    );
    // Files and links are let go once stored; the directories (and the root) are kept.
    assert!(
        fs.inode_count() <= 1 + 5,
        "{} inodes kept",
        fs.inode_count()
    );
    vault.mem.clone()
}

/// Every object's bytes, written to `dir` under its key; no metadata survives.
fn dump_plain(mem: &MemoryStore, dir: &Path) {
    for key in mem.keys() {
        let path = dir.join(&key);
        if key.ends_with('/') {
            std::fs::create_dir_all(&path).expect("mkdir");
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&path, mem.raw_get(&key).expect("bytes")).expect("write");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_then_get_keeps_content_modes_times_and_links() {
    let local = tempfile::tempdir().expect("tempdir");
    let tree = local.path().join("tree");
    make_tree(&tree);
    let mem = vault_holding(&tree).await;
    let staging = tempfile::tempdir().expect("tempdir");
    let fs = Fs::new(
        mem.clone(),
        String::new(),
        Arc::new(
            vault::open_vault(&*mem, "", &secret(), &Default::default())
                .await
                .expect("open"),
        ),
        FsOptions::for_current_user(staging.path().to_path_buf()),
    )
    .expect("fs");
    let out = local.path().join("out");
    let report = get(&fs, "tree", &out).await.expect("get");
    assert!(report.failures.is_empty(), "{report:?}");
    assert_same_content(&tree, &out);
    for rel in ["docs/a.txt", "top.bin", "docs/deep/big.bin"] {
        assert_eq!(mode(&out.join(rel)), mode(&tree.join(rel)), "{rel}");
        assert_eq!(mtime(&out.join(rel)), mtime(&tree.join(rel)), "{rel}");
    }
    assert_eq!(mode(&out.join("docs")), mode(&tree.join("docs")));
    assert_eq!(
        mtime(&out.join("docs/deep")),
        mtime(&tree.join("docs/deep"))
    );

    // Into an existing directory: by name. One file: as named.
    let into = local.path().join("into");
    std::fs::create_dir(&into).expect("mkdir");
    get(&fs, "tree/docs", &into).await.expect("get dir");
    assert!(into.join("docs/deep/big.bin").is_file());
    get(&fs, "tree/top.bin", &local.path().join("single"))
        .await
        .expect("get file");
    assert_eq!(
        std::fs::read(local.path().join("single")).expect("read"),
        data(2, 65_536)
    );
    // Replacing a file that is a symlink at the destination does not write through it.
    let victim = local.path().join("victim");
    std::fs::write(&victim, b"keep me").expect("write");
    std::os::unix::fs::symlink(&victim, local.path().join("trap")).expect("symlink");
    get(&fs, "tree/docs/a.txt", &local.path().join("trap"))
        .await
        .expect("get over a symlink");
    assert_eq!(std::fs::read(&victim).expect("read"), b"keep me");
    assert_eq!(
        std::fs::read(local.path().join("trap")).expect("read"),
        b"alpha\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_copy_without_metadata_is_fully_restored() {
    let local = tempfile::tempdir().expect("tempdir");
    let tree = local.path().join("tree");
    make_tree(&tree);
    let mem = vault_holding(&tree).await;
    let plain = local.path().join("mirror");
    dump_plain(&mem, &plain);

    let url = format!("file://{}", plain.display());
    let opened = open_store(&url, false, Access::ReadOnly).expect("open");
    assert!(
        opened.plain,
        "a folder with .s3cryptfs/config is read as a plain copy"
    );
    let keys = vault::open_vault(&*opened.store, "", &secret(), &Default::default())
        .await
        .expect("unlock the copied config");
    let vfs = VaultFs::open(&opened, keys, true).expect("fs");
    let out = local.path().join("restored");
    let report = get(&vfs.fs, "", &out).await.expect("get /");
    assert!(report.failures.is_empty(), "{report:?}");
    assert_eq!(report.files, 5, "4 files and a symlink that lost its mark");
    assert_plain_restore(&tree, &out.join("tree"));
    // Nothing of the vault's own directory is restored.
    assert!(!out.join(".s3cryptfs").exists());

    // The same through the binary, with a key file.
    let key_file = local.path().join("vault.key");
    std::fs::write(&key_file, KEY).expect("key");
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let out2 = local.path().join("restored2");
    let run = Command::new(env!("CARGO_BIN_EXE_s3cryptfs"))
        .env("S3CRYPTFS_STATE_DIR", crate::common::state_dir())
        .arg("get")
        .arg("--key-file")
        .arg(&key_file)
        .arg(&url)
        .arg("/")
        .arg(&out2)
        .env_remove("S3CRYPTFS_PASSPHRASE")
        .output()
        .expect("run");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("plain copy"),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_plain_restore(&tree, &out2.join("tree"));

    // Writing into a plain copy is refused.
    let run = Command::new(env!("CARGO_BIN_EXE_s3cryptfs"))
        .env("S3CRYPTFS_STATE_DIR", crate::common::state_dir())
        .arg("put")
        .arg("--key-file")
        .arg(&key_file)
        .arg(&url)
        .arg(tree.join("top.bin"))
        .arg("x")
        .output()
        .expect("run");
    assert_eq!(run.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("read-only"),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

/// `get` never writes outside its destination: not through a symlink the vault holds, not
/// through one already at the destination, and not through a directory it made that is
/// swapped for a symlink while it fills it (it works in the directory it opened, never
/// walking the path again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_writes_nothing_outside_its_destination() {
    let local = tempfile::tempdir().expect("tempdir");
    let outside = local.path().join("outside");
    std::fs::create_dir(&outside).expect("mkdir");
    let tree = local.path().join("tree");
    std::fs::create_dir_all(tree.join("d")).expect("mkdir");
    std::fs::write(tree.join("d/x"), b"inside").expect("write");
    std::fs::write(tree.join("pre"), b"file").expect("write");
    std::os::unix::fs::symlink(&outside, tree.join("link")).expect("symlink");
    let vault = MemVault::init(&secret(), 65536).await;
    let report = put(&vault.fs(), &tree, "").await.expect("put");
    assert!(report.failures.is_empty(), "{report:?}");

    let dest = local.path().join("dest");
    std::fs::create_dir_all(dest.join("tree")).expect("mkdir");
    // Already at the destination: a symlink out where the vault has a file.
    std::os::unix::fs::symlink(outside.join("pre"), dest.join("tree/pre")).expect("symlink");
    // Once `get` has made dest/tree/d, and lists it, dest/tree/d becomes a symlink out.
    let faulty = FaultyStore::new(vault.mem.clone());
    let d = dest.join("tree/d");
    let moved = dest.join("tree/d.moved");
    let target = outside.clone();
    faulty.before_list(move |req| {
        if req.prefix == "tree/d/" && std::fs::symlink_metadata(&d).is_ok_and(|m| m.is_dir()) {
            std::fs::rename(&d, &moved).expect("move d");
            std::os::unix::fs::symlink(&target, &d).expect("symlink d");
        }
    });
    let fs = vault.fs_over(faulty.clone());
    get(&fs, "tree", &dest).await.expect("get");
    let written: Vec<_> = std::fs::read_dir(&outside)
        .expect("outside")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(written.is_empty(), "written outside: {written:?}");
    assert_eq!(std::fs::read(dest.join("tree/pre")).expect("pre"), b"file");
    assert_eq!(
        std::fs::read_link(dest.join("tree/link")).expect("link"),
        outside
    );
    assert_eq!(
        std::fs::read(dest.join("tree/d.moved/x")).expect("x"),
        b"inside"
    );
}

fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("path");
    let n = std::ffi::CString::new(name).expect("name");
    // SAFETY: NUL-terminated strings, `value` is `value.len()` bytes.
    let r = unsafe {
        libc::setxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(
        r,
        0,
        "setxattr {name} on {} (the test needs a local file system with extended attributes \
         and ACLs, such as ext4 or tmpfs): {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

/// Every extended attribute of `path`, sorted, as `getfattr -d -m -` would dump them.
fn xattrs_of(path: &Path) -> Vec<(String, Vec<u8>)> {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("path");
    let mut list = vec![0u8; 65536];
    // SAFETY: NUL-terminated path, `list` is writable for its length.
    let n = unsafe { libc::llistxattr(p.as_ptr(), list.as_mut_ptr().cast(), list.len()) };
    assert!(n >= 0, "listxattr {}", path.display());
    list.truncate(n as usize);
    let mut out: Vec<(String, Vec<u8>)> = list
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .map(|name| {
            let cname = std::ffi::CString::new(name).expect("name");
            let mut v = vec![0u8; 65536];
            // SAFETY: NUL-terminated strings, `v` is writable for its length.
            let len = unsafe {
                libc::lgetxattr(p.as_ptr(), cname.as_ptr(), v.as_mut_ptr().cast(), v.len())
            };
            assert!(len >= 0, "getxattr {}", path.display());
            v.truncate(len as usize);
            (String::from_utf8_lossy(name).into_owned(), v)
        })
        .collect();
    out.sort();
    out
}

/// A POSIX ACL in the kernel's xattr form: owner rw-, user 1000 r--, group r--, mask r--,
/// other ---.
fn acl_xattr() -> Vec<u8> {
    let mut v = 2u32.to_le_bytes().to_vec();
    for (tag, perm, id) in [
        (0x01u16, 6u16, u32::MAX),
        (0x02, 4, 1000),
        (0x04, 4, u32::MAX),
        (0x10, 4, u32::MAX),
        (0x20, 0, u32::MAX),
    ] {
        v.extend_from_slice(&tag.to_le_bytes());
        v.extend_from_slice(&perm.to_le_bytes());
        v.extend_from_slice(&id.to_le_bytes());
    }
    v
}

/// `put` stores the extended attributes and ACLs of files and directories in their records,
/// and `get` writes them onto what it restores: the same names and values, and modes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_then_get_keeps_extended_attributes_and_acls() {
    let local = tempfile::tempdir().expect("tempdir");
    let tree = local.path().join("x");
    std::fs::create_dir_all(tree.join("sub")).expect("mkdir");
    let file = tree.join("sub/f.txt");
    std::fs::write(&file, b"with attributes").expect("write");
    std::fs::write(tree.join("plain.txt"), b"none").expect("write");
    set_xattr(&file, "user.note", b"kept\0with a NUL and \xff");
    set_xattr(&file, "system.posix_acl_access", &acl_xattr());
    set_xattr(&tree.join("sub"), "system.posix_acl_default", &acl_xattr());
    set_xattr(&tree.join("sub"), "user.dir", b"d");

    let vault = MemVault::init(&secret(), 65536).await;
    let fs = vault.fs();
    let report = put(&fs, &tree, "").await.expect("put");
    assert!(report.failures.is_empty(), "{report:?}");
    let out = local.path().join("out");
    let report = get(&fs, "x", &out).await.expect("get");
    assert!(report.failures.is_empty(), "{report:?}");

    for rel in ["sub/f.txt", "sub", "plain.txt"] {
        let want = xattrs_of(&tree.join(rel));
        assert_eq!(xattrs_of(&out.join(rel)), want, "{rel}");
        assert_eq!(mode(&out.join(rel)), mode(&tree.join(rel)), "{rel}");
    }
    let names = |rel: &str| -> Vec<String> {
        xattrs_of(&out.join(rel))
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    };
    assert_eq!(names("sub/f.txt"), ["system.posix_acl_access", "user.note"]);
    assert_eq!(names("sub"), ["system.posix_acl_default", "user.dir"]);
    assert!(names("plain.txt").is_empty());
}

/// `ls` and `get` of a directory larger than the inode table keeps unlooked-up numbers for
/// (16,384): every entry is listed with its attributes and restored, none "not known".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ls_and_get_of_a_directory_of_17000_files() {
    use s3cryptfs::tools::files::list;
    use std::ffi::OsStr;
    const FILES: usize = 17_000;
    let vault = MemVault::create(3, 65536);
    let fs = vault.fs();
    let uid = nix::unistd::getuid().as_raw();
    let gid = nix::unistd::getgid().as_raw();
    let dir = fs
        .mkdir(1, OsStr::new("big"), 0o755, uid, gid)
        .await
        .expect("mkdir");
    for i in 0..FILES {
        let name = format!("f{i:05}");
        let (_, fh) = fs
            .create(dir.ino, OsStr::new(&name), 0o644, libc::O_WRONLY, uid, gid)
            .await
            .expect("create");
        fs.write(fh, 0, name.as_bytes()).await.expect("write");
        fs.release(fh).await.expect("release");
    }
    // As a fresh `s3cryptfs ls` would: nothing numbered yet.
    let fs = vault.fs();
    let listing = list(&fs, "big").await.expect("ls");
    assert!(
        listing.failures.is_empty(),
        "{:?}",
        listing.failures.first()
    );
    assert_eq!(listing.entries.len(), FILES);
    assert!(
        listing
            .entries
            .iter()
            .all(|(name, a)| a.size == name.len() as u64)
    );
    // The listing holds each entry's inode, as a kernel lookup does, until it is forgotten.
    assert_eq!(fs.inode_count(), FILES + 2);
    for (_, a) in &listing.entries {
        fs.forget(a.ino, 1);
    }
    assert!(fs.inode_count() <= 2, "{} inodes kept", fs.inode_count());
    let out = tempfile::tempdir().expect("tempdir");
    let report = get(&fs, "big", &out.path().join("big")).await.expect("get");
    assert!(report.failures.is_empty(), "{:?}", report.failures.first());
    assert_eq!(report.files, FILES as u64);
    // Each file let go once copied: the root and `big` are left.
    assert!(fs.inode_count() <= 2, "{} inodes kept", fs.inode_count());
    for i in [0, FILES / 2, FILES - 1] {
        let name = format!("f{i:05}");
        let got = std::fs::read(out.path().join("big").join(&name)).expect("restored");
        assert_eq!(got, name.as_bytes());
    }
}
