//! `verify` through the library API on the memory store: a clean vault is sound, and each kind
//! of damage is found and named by key.

use std::ffi::OsStr;
use std::sync::Arc;

use s3cryptfs::crypto::format::seal_all;
use s3cryptfs::crypto::{HEADER_LEN, Secret, VaultKeys};
use s3cryptfs::store::{DynStore, MemoryStore};
use s3cryptfs::tools::progress::Progress;
use s3cryptfs::tools::verify::{ProblemKind, VerifyReport, verify_objects};
use s3cryptfs::vault;
use zeroize::Zeroizing;

use crate::common::memfs::MemVault;

fn secret() -> Secret {
    Secret::KeyFile(Zeroizing::new([0x42; 32]))
}

/// The vault's store, and the vault (whose staging directory lives as long as it does).
async fn vault_with(files: &[(&str, usize)]) -> (Arc<MemoryStore>, MemVault) {
    let vault = MemVault::init(&secret(), 4096).await;
    let mem = vault.mem.clone();
    let fs = vault.fs();
    fs.mkdir(fs.root_ino(), OsStr::new("dir"), 0o755, 0, 0)
        .await
        .expect("mkdir");
    for (name, len) in files {
        let (_, fh) = fs
            .create(
                fs.root_ino(),
                OsStr::new(name),
                0o644,
                libc::O_WRONLY | libc::O_CREAT,
                0,
                0,
            )
            .await
            .expect("create");
        let data: Vec<u8> = (0..*len).map(|i| (i % 251) as u8).collect();
        fs.write(fh, 0, &data).await.expect("write");
        fs.release(fh).await.expect("release");
    }
    (mem, vault)
}

async fn keys(mem: &MemoryStore) -> VaultKeys {
    vault::open_vault(mem, "", &secret(), &Default::default())
        .await
        .expect("unlock")
}

async fn verify(mem: &Arc<MemoryStore>, deep: bool, path: Option<&str>) -> VerifyReport {
    let store: DynStore = mem.clone();
    verify_objects(
        &store,
        "",
        &keys(mem).await,
        path,
        deep,
        &Progress::hidden(),
    )
    .await
    .expect("verify")
}

fn problem_of(report: &VerifyReport, key: &str) -> Option<ProblemKind> {
    report
        .problems
        .iter()
        .find(|p| p.key == key)
        .map(|p| p.kind)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_vault_is_sound() {
    let (mem, _s) = vault_with(&[("a.txt", 10_000), ("b.txt", 5000), ("empty", 0)]).await;
    for deep in [false, true] {
        let report = verify(&mem, deep, None).await;
        assert!(report.ok, "{report:?}");
        assert_eq!(report.objects, 3);
        assert_eq!(report.directory_markers, 1);
        assert_eq!(report.plaintext_bytes, 15_000);
    }
    let one = verify(&mem, true, Some("/b.txt")).await;
    assert_eq!(one.objects, 1, "{one:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_damage_is_found() {
    let (mem, _s) = vault_with(&[
        ("flipped", 10_000),
        ("truncated", 5000),
        ("header", 300),
        ("fine", 7000),
    ])
    .await;

    // A flipped byte in a data block: only --deep reads blocks.
    let mut bytes = mem.raw_get("flipped").expect("object");
    bytes[HEADER_LEN + 5000] ^= 0x01;
    mem.raw_put("flipped", bytes);
    // One byte cut off the end.
    let mut bytes = mem.raw_get("truncated").expect("object");
    bytes.pop();
    mem.raw_put("truncated", bytes);
    // A flipped commitment byte in the header.
    let mut bytes = mem.raw_get("header").expect("object");
    bytes[100] ^= 0x80;
    mem.raw_put("header", bytes);
    // An object of another vault, copied in.
    let other = MemoryStore::new();
    let other_keys = vault::init_vault(&*other, "", &secret(), 4096)
        .await
        .expect("other vault");
    mem.raw_put(
        "dir/foreign",
        seal_all(&other_keys, b"from elsewhere").expect("seal"),
    );
    // Something that is not an s3cryptfs object at all.
    mem.raw_put("plain.txt", &b"hello"[..]);

    let shallow = verify(&mem, false, None).await;
    assert!(!shallow.ok);
    assert_eq!(problem_of(&shallow, "flipped"), None, "{shallow:?}");
    assert_eq!(
        problem_of(&shallow, "truncated"),
        Some(ProblemKind::Corrupt)
    );
    assert_eq!(problem_of(&shallow, "header"), Some(ProblemKind::Corrupt));
    assert_eq!(
        problem_of(&shallow, "dir/foreign"),
        Some(ProblemKind::Foreign)
    );
    assert_eq!(
        problem_of(&shallow, "plain.txt"),
        Some(ProblemKind::NotEncrypted)
    );
    assert_eq!(problem_of(&shallow, "fine"), None);

    let deep = verify(&mem, true, None).await;
    assert_eq!(problem_of(&deep, "flipped"), Some(ProblemKind::Corrupt));
    let reason = &deep
        .problems
        .iter()
        .find(|p| p.key == "flipped")
        .expect("flipped")
        .reason;
    assert!(reason.contains("block 1"), "{reason}");
    assert_eq!(deep.problems.len(), 5, "{deep:?}");
    assert_eq!(deep.objects, 6);

    // Only below a path.
    let sub = verify(&mem, true, Some("dir")).await;
    assert_eq!(sub.objects, 1);
    assert_eq!(problem_of(&sub, "dir/foreign"), Some(ProblemKind::Foreign));
}

#[tokio::test]
async fn a_missing_config_is_a_problem() {
    let mem = MemoryStore::new();
    let err = vault::load_config(&*mem, "").await.expect_err("no vault");
    let report = VerifyReport::config_problem(vault::config_key(""), &err);
    assert!(!report.ok);
    assert_eq!(report.problems[0].kind, ProblemKind::MissingConfig);
    assert_eq!(report.problems[0].key, ".s3cryptfs/config");
}

/// Fifos, sockets and devices (empty objects with their type in the record) are sound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn special_nodes_are_sound() {
    let (mem, vault) = vault_with(&[("a.txt", 10)]).await;
    let fs = vault.fs();
    for (name, mode, rdev) in [
        ("fifo", libc::S_IFIFO | 0o644, 0),
        ("sock", libc::S_IFSOCK | 0o755, 0),
        ("tty", libc::S_IFCHR | 0o620, 0x0401),
        ("sda", libc::S_IFBLK | 0o660, 0x0800),
    ] {
        fs.mknod(fs.root_ino(), OsStr::new(name), mode, rdev, 0, 0)
            .await
            .expect("mknod");
    }
    for deep in [false, true] {
        let report = verify(&mem, deep, None).await;
        assert!(report.ok, "{report:?}");
        assert_eq!(report.objects, 5);
    }
}
