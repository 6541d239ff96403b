//! The upgrade of a vault written by the previous release (tests/vectors/pre-records/, made
//! before attribute records existed): this release reads it as it is, `s3cryptfs upgrade`
//! gives every object its record and marks the vault, every file, mode, owner and mtime is
//! identical afterwards, and a second upgrade changes nothing.

use std::ffi::OsStr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use s3cryptfs::crypto::Secret;
use s3cryptfs::fs::{Attr, Fs, Kind};
use s3cryptfs::store::{DirStore, DynStore, SseMode};
use s3cryptfs::vault::{RollbackGuard, open_vault};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::common::cli::run_cli;
use crate::common::memfs;

const VECTOR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/pre-records");

/// One line of manifest.tsv: what the previous release's mount showed.
struct Entry {
    path: String,
    kind: char,
    perm: u32,
    uid: u32,
    gid: u32,
    mtime: std::time::SystemTime,
    size: u64,
    /// SHA-256 of a file's contents, a symlink's target, `-` for a directory.
    extra: String,
}

fn manifest() -> Vec<Entry> {
    let text = std::fs::read_to_string(Path::new(VECTOR).join("manifest.tsv")).expect("manifest");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 9, "manifest line {l:?}");
            let n = |i: usize| f[i].parse::<u64>().expect("number in the manifest");
            Entry {
                path: f[0].to_owned(),
                kind: f[1].chars().next().expect("type"),
                perm: u32::from_str_radix(f[2], 8).expect("octal mode"),
                uid: n(3) as u32,
                gid: n(4) as u32,
                mtime: UNIX_EPOCH + Duration::new(n(5), n(6) as u32),
                size: n(7),
                extra: f[8].to_owned(),
            }
        })
        .collect()
}

/// Copies the vector's vault and key into `dir` (the key file 0600, as key files must be).
fn copy_vector(dir: &Path) {
    let status = std::process::Command::new("cp")
        .args([
            "-a",
            &format!("{VECTOR}/vault"),
            &format!("{VECTOR}/vault.key"),
        ])
        .arg(dir)
        .status()
        .expect("run cp");
    assert!(status.success(), "cp -a of the vector");
    let key = dir.join("vault.key");
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod the key");
}

async fn open_fs(dir: &Path, staging: &Path) -> (Arc<Fs>, bool) {
    let store = DirStore::open(&dir.join("vault")).expect("open the vector's store");
    let store: DynStore = Arc::new(store.with_sse(SseMode::None));
    let key: [u8; 32] = std::fs::read(dir.join("vault.key"))
        .expect("read the key")
        .try_into()
        .expect("a 32-byte key");
    let secret = Secret::KeyFile(Zeroizing::new(key));
    let keys = open_vault(&*store, "", &secret, &RollbackGuard::default())
        .await
        .expect("unlock the vector's vault");
    let requires_records = keys.requires_attribute_records();
    (
        memfs::fs_over(store, Arc::new(keys), staging),
        requires_records,
    )
}

async fn lookup_path(fs: &Arc<Fs>, path: &str) -> Attr {
    let mut attr = fs.getattr(1).await.expect("root");
    for name in path.split('/') {
        attr = fs
            .lookup(attr.ino, OsStr::new(name))
            .await
            .unwrap_or_else(|e| panic!("lookup {path}: {e}"));
    }
    attr
}

async fn read_all(fs: &Arc<Fs>, ino: u64) -> Vec<u8> {
    let fh = fs.open(ino, libc::O_RDONLY).await.expect("open");
    let mut out = Vec::new();
    loop {
        let chunk = fs
            .read(fh, out.len() as u64, 64 * 1024)
            .await
            .expect("read");
        if chunk.is_empty() {
            break;
        }
        out.extend_from_slice(&chunk);
    }
    fs.release(fh).await.expect("release");
    out
}

/// Every entry of the manifest, as `fs` shows it.
async fn assert_matches_manifest(fs: &Arc<Fs>, when: &str) {
    for e in manifest() {
        let a = lookup_path(fs, &e.path).await;
        let what = format!("{} {when}", e.path);
        let kind = match a.kind {
            Kind::File => 'f',
            Kind::Dir => 'd',
            Kind::Symlink => 'l',
            other => panic!("{what}: unexpected kind {other:?}"),
        };
        assert_eq!(kind, e.kind, "{what}: type");
        if e.kind != 'l' {
            assert_eq!(a.perm & 0o7777, e.perm, "{what}: mode");
        }
        assert_eq!((a.uid, a.gid), (e.uid, e.gid), "{what}: owner");
        assert_eq!(a.mtime, e.mtime, "{what}: mtime");
        match e.kind {
            'f' => {
                assert_eq!(a.size, e.size, "{what}: size");
                let data = read_all(fs, a.ino).await;
                assert_eq!(
                    hex::encode(Sha256::digest(&data)),
                    e.extra,
                    "{what}: contents"
                );
            }
            'l' => {
                let target = fs.readlink(a.ino).await.expect("readlink");
                assert_eq!(target, e.extra.as_bytes(), "{what}: target");
            }
            _ => {}
        }
    }
}

fn upgrade(dir: &Path, state: &Path) -> String {
    let url = format!("file://{}", dir.join("vault").display());
    let key = dir.join("vault.key");
    let out = run_cli(
        &[
            OsStr::new("upgrade"),
            OsStr::new("--key-file"),
            key.as_os_str(),
            OsStr::new(&url),
        ],
        &[("S3CRYPTFS_STATE_DIR", state.as_os_str())],
    );
    assert!(
        out.status.success(),
        "upgrade: {}\n{}",
        out.stdout,
        out.stderr
    );
    out.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn previous_release_vault_reads_then_upgrades_with_identical_attributes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = tempfile::tempdir().expect("state dir");
    let staging = tempfile::tempdir().expect("staging");
    copy_vector(dir.path());

    // As written: no marker, attributes from plaintext metadata, read as they are.
    let (fs, marked) = open_fs(dir.path(), staging.path()).await;
    assert!(!marked, "the vector predates the attribute_records marker");
    assert_matches_manifest(&fs, "before the upgrade").await;
    drop(fs);

    let first = upgrade(dir.path(), state.path());
    let objects = manifest().len();
    assert!(
        first.contains(&format!("{objects} given an attribute record"))
            && first.contains("now requires attribute records"),
        "first upgrade: {first}"
    );

    let (fs, marked) = open_fs(dir.path(), staging.path()).await;
    assert!(marked, "the upgrade marks the vault");
    assert_matches_manifest(&fs, "after the upgrade").await;
    drop(fs);

    // No plaintext attributes are left in the objects' metadata.
    for obj in walk(&dir.path().join("vault/objects")) {
        let bytes = std::fs::read(&obj).expect("read object file");
        for needle in [&b"\"mode\":"[..], b"\"uid\":", b"\"gid\":", b"\"mtime\":"] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{}: still holds plaintext attribute metadata",
                obj.display()
            );
        }
    }

    let second = upgrade(dir.path(), state.path());
    assert!(
        second.contains("0 given an attribute record"),
        "second upgrade: {second}"
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
