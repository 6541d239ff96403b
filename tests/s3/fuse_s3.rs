//! The mount over `s3://` against moto's S3 server (started on 127.0.0.1 by
//! `common/s3server.rs`; a missing moto fails the test): `init` and `mount` through the
//! command line with `--endpoint` and `--path-style`, files small and large (200 MiB, streamed),
//! directories, rename over a file, attributes across a remount, `cp -r` + `diff -r`, a
//! mount with `--sse s3` whose objects then carry SSE-S3, and the attribute cache on disk
//! sparing a remount's no-change rsync its HEADs; and the whole FUSE scenario suite.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime};

use crate::common;
use crate::common::data::{self, MIB};
use crate::common::proxy::Proxy;
use crate::common::run_ok;
use crate::common::s3server::MotoServer;
use crate::common::s3vault::{S3Target, S3Vault, aws_env, block_on};
use crate::common::scenarios;

/// The shared moto server (any credentials pass).
pub(super) fn moto() -> S3Target {
    let server = MotoServer::shared();
    S3Target {
        endpoint: server.endpoint().to_owned(),
        client: server.client(),
        server,
        env: aws_env("test", "test"),
    }
}

// The FUSE scenario suite, as on s3rver and Ceph RGW: the three servers CI runs it against.
crate::common::s3vault::fuse_scenario_suite!(moto);

#[test]
fn s3_mount_files_dirs_rename_attributes_and_copy() {
    let v = S3Vault::init_plain(moto(), "fuse-s3", &[]);
    let mut m = v.mount();

    // Small files of edge sizes, read back.
    let sizes = [0usize, 1, 4095, 65536, 65537, 3 * MIB as usize + 7];
    for (i, &len) in sizes.iter().enumerate() {
        fs::write(
            m.path(&format!("small-{len}")),
            data::stream_bytes(i as u64, 0, len),
        )
        .expect("write small file");
    }
    for (i, &len) in sizes.iter().enumerate() {
        let got = fs::read(m.path(&format!("small-{len}"))).expect("read small file");
        assert!(
            got == data::stream_bytes(i as u64, 0, len),
            "small-{len} differs"
        );
    }

    // A large file (several multipart parts), streamed in and compared by hash; the 200 MiB
    // one is `s3_mount_200_mib_file`.
    const BIG: u64 = 40 * MIB;
    data::write_stream_file(&m.path("big.bin"), 77, BIG);
    assert_eq!(fs::metadata(m.path("big.bin")).expect("stat").len(), BIG);
    assert_eq!(
        data::sha256_file(&m.path("big.bin")),
        data::sha256_stream(77, BIG)
    );

    // mkdir, rename over an existing file.
    fs::create_dir(m.path("d")).expect("mkdir");
    fs::create_dir_all(m.path("d/e/f")).expect("mkdir -p");
    fs::write(m.path("d/old"), b"old contents").expect("write");
    fs::write(m.path("d/new"), b"new contents").expect("write");
    fs::rename(m.path("d/new"), m.path("d/old")).expect("rename over a file");
    assert_eq!(fs::read(m.path("d/old")).expect("read"), b"new contents");
    assert!(!m.path("d/new").exists());

    // chmod + touch -d.
    fs::write(m.path("d/attrs"), b"attributes").expect("write");
    fs::set_permissions(m.path("d/attrs"), fs::Permissions::from_mode(0o640)).expect("chmod");
    run_ok(
        "touch",
        &[
            "-d",
            "2001-02-03 04:05:06.123456789 UTC",
            m.path("d/attrs").to_str().unwrap(),
        ],
    );
    let want_mtime = SystemTime::UNIX_EPOCH + Duration::new(981_173_106, 123_456_789);

    // cp -r of a small tree, diff -r.
    let src = v.dir.path().join("tree");
    for (rel, len) in [
        ("a.txt", 10usize),
        ("sub/b.bin", 70_000),
        ("sub/deeper/c", 0),
    ] {
        let p = src.join(rel);
        fs::create_dir_all(p.parent().unwrap()).expect("mkdir src");
        fs::write(&p, data::stream_bytes(len as u64, 0, len)).expect("write src");
    }
    fs::create_dir_all(src.join("empty")).expect("mkdir src");
    let dst = m.path("tree");
    run_ok("cp", &["-r", src.to_str().unwrap(), dst.to_str().unwrap()]);
    run_ok(
        "diff",
        &["-r", src.to_str().unwrap(), dst.to_str().unwrap()],
    );

    // Everything survives unmount + remount.
    m.remount();
    let meta = fs::metadata(m.path("d/attrs")).expect("stat after remount");
    assert_eq!(
        meta.permissions().mode() & 0o7777,
        0o640,
        "mode after remount"
    );
    assert_eq!(
        meta.modified().expect("mtime"),
        want_mtime,
        "mtime after remount"
    );
    assert_eq!(fs::read(m.path("d/old")).expect("read"), b"new contents");
    assert!(m.path("d/e/f").is_dir());
    for (i, &len) in sizes.iter().enumerate() {
        let got = fs::read(m.path(&format!("small-{len}"))).expect("read after remount");
        assert!(
            got == data::stream_bytes(i as u64, 0, len),
            "small-{len} differs after remount"
        );
    }
    run_ok(
        "diff",
        &["-r", src.to_str().unwrap(), dst.to_str().unwrap()],
    );
    assert_eq!(
        data::sha256_file(&m.path("big.bin")),
        data::sha256_stream(77, BIG),
        "large file after remount"
    );
    m.unmount();

    // The bucket holds the files as objects under the prefix, their contents only as
    // ciphertext.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let keys = rt.block_on(v.keys());
    assert!(keys.iter().any(|k| k == "vault/d/old"), "{keys:?}");
    let stored = rt.block_on(async {
        let out = v
            .client
            .get_object()
            .bucket(&v.bucket)
            .key("vault/d/old")
            .send()
            .await
            .expect("get vault/d/old");
        out.body.collect().await.expect("body").into_bytes()
    });
    assert!(!stored.is_empty());
    assert!(
        !common::contains_bytes(&stored, b"new contents"),
        "plaintext in the stored object"
    );
}

/// Directory times, ctime and `touch` of the root over S3 (issue 14).
#[test]
fn s3_mount_keeps_entry_times_and_ctime() {
    let v = S3Vault::init(moto(), "fuse-s3-times", &[]);
    let mut m = v.mount();
    let root = m.mountpoint.clone();
    crate::common::scenarios::entry_times(&root, &mut || m.remount());
}

#[test]
fn s3_mount_with_sse_s3_stores_every_object_with_sse() {
    let v = S3Vault::init(moto(), "fuse-sse", &["--sse", "s3"]);
    let mut m = v.mount();
    fs::create_dir(m.path("dir")).expect("mkdir");
    fs::write(m.path("dir/file"), data::stream_bytes(5, 0, 100_000)).expect("write");
    fs::write(m.path("big"), data::stream_bytes(6, 0, 20 * MIB as usize)).expect("write");
    fs::rename(m.path("dir/file"), m.path("dir/renamed")).expect("rename");
    m.unmount();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let keys = v.keys().await;
        assert!(keys.len() >= 3, "{keys:?}");
        let client = &v.client;
        for key in &keys {
            let head = client
                .head_object()
                .bucket(&v.bucket)
                .key(key)
                .send()
                .await
                .unwrap_or_else(|e| panic!("head {key}: {e:?}"));
            assert_eq!(
                head.server_side_encryption().map(|s| s.as_str()),
                Some("AES256"),
                "{key} is not stored with SSE-S3"
            );
        }
    });

    let m = v.mount();
    assert_eq!(
        fs::read(m.path("dir/renamed")).expect("read back"),
        data::stream_bytes(5, 0, 100_000)
    );
    drop(m);
}

/// The server stops answering mid-upload (a proxy in front of moto cuts every connection):
/// the parts already streamed stay in the incomplete upload, `fsync` and `close` fail with EIO
/// once the SDK's retries are spent, nothing is lost, and once the server is back a later
/// `s3cryptfs unmount` never reports success while a closed file is not stored: with the
/// server down it fails after its timeout and the daemon keeps the data and retries; once the
/// server is back the file is stored and the daemon exits.
#[test]
fn unmount_does_not_report_success_while_data_is_unstored() {
    use std::io::Write;
    let base = moto();
    let proxy = Proxy::start(base.endpoint.trim_start_matches("http://"));
    let target = S3Target {
        endpoint: proxy.endpoint(),
        ..base
    };
    let v = S3Vault::init_plain(target, "fuse-s3-unmount-down", &[]);
    let mut m = v.mount();
    let mut f = fs::File::create(m.path("late.txt")).expect("create");
    proxy.set_up(false);
    f.write_all(b"stored after the outage").expect("write");
    let err = f.sync_all().expect_err("fsync while down");
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    drop(f);
    let out = m.try_unmount(&["--timeout", "3"]);
    out.assert_failed();
    out.assert_stderr_has(&["still running"]);
    assert!(
        !m.daemon_pids().is_empty(),
        "the daemon exited with unstored data:\n{}",
        m.log()
    );
    proxy.set_up(true);
    assert!(
        common::wait_until(Duration::from_secs(90), || m.daemon_pids().is_empty()),
        "the daemon did not store the file and exit once the server was back:\n{}",
        m.log()
    );
    assert!(block_on(v.keys()).contains(&"vault/late.txt".to_owned()));
    m.mount_again();
    assert_eq!(
        fs::read(m.path("late.txt")).expect("read"),
        b"stored after the outage"
    );
}

/// `fsync` (open file) and the background retry (closed file) store everything.
#[test]
fn server_down_mid_upload_loses_nothing() {
    use std::io::Write;
    let base = moto();
    let proxy = Proxy::start(base.endpoint.trim_start_matches("http://"));
    let target = S3Target {
        endpoint: proxy.endpoint(),
        ..base
    };
    let v = S3Vault::init_plain(target, "fuse-s3-down", &[]);
    let mut m = v.mount();
    const BIG: u64 = 24 * MIB;
    let big = data::stream_bytes(31, 0, BIG as usize);
    let mut f = fs::File::create(m.path("big.bin")).expect("create");
    f.write_all(&big[..(BIG / 2) as usize]).expect("first half");
    // Created while the server answers (creating checks that the name is free, which needs
    // the server), written while it is down.
    let mut small = fs::File::create(m.path("small.txt")).expect("create");
    proxy.set_up(false);
    f.write_all(&big[(BIG / 2) as usize..])
        .expect("writes are local while the server is down");
    let err = f
        .sync_all()
        .expect_err("fsync must fail while the server is down");
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    // A small file closed while the server is down: close reports the failure.
    small
        .write_all(b"written during the outage")
        .expect("write");
    let err = small.sync_all().expect_err("fsync while down");
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    drop(small);
    proxy.set_up(true);
    f.sync_all().expect("fsync once the server is back");
    drop(f);
    // The closed file is uploaded by the background retry (backoff 1 s doubling).
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while !block_on(v.keys()).contains(&"vault/small.txt".to_owned()) {
        assert!(
            std::time::Instant::now() < deadline,
            "the failed upload was not retried: {:?}\n{}",
            block_on(v.keys()),
            m.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    m.remount();
    assert!(
        fs::read(m.path("big.bin")).expect("read") == big,
        "big.bin differs"
    );
    assert_eq!(
        fs::read(m.path("small.txt")).expect("read"),
        b"written during the outage"
    );
}

#[test]
fn s3_xattrs_acls_and_rsync_aax() {
    let v = S3Vault::init(moto(), "fuse-s3-xattrs", &[]);
    let mut m = v.mount();
    let root = m.mountpoint.clone();
    scenarios::xattrs_and_acls(&root, &mut || m.remount());
    let scratch = tempfile::tempdir().expect("scratch");
    scenarios::rsync_aax_roundtrip(&root, scratch.path(), &mut || m.remount());
}

/// The permission table of `fuse::permissions` on an `allow_other` mount of an s3:// vault:
/// other uids get the answers a local file system gives, before and after a remount.
#[test]
fn s3_mount_gives_other_users_the_access_checks_of_a_local_file_system() {
    use std::os::unix::fs::PermissionsExt;
    let v = S3Vault::init_plain(moto(), "fuse-s3-perms", &[]);
    // Other users must reach both directories.
    fs::set_permissions(v.dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    let local = v.dir.path().join("local");
    fs::create_dir(&local).expect("mkdir");
    let mut m = v.mount_named("perm-mnt", &["-o", "allow_other"]);
    let mp = m.mountpoint.clone();
    crate::fuse::permissions::mount_answers_as_the_local_file_system(&local, &mp, || {
        m.remount();
        m.mountpoint.clone()
    });
}

/// The attribute cache on disk: once a mount has HEADed files whose objects had settled, a
/// later mount's `ls -l` and no-change `rsync -a` of them send no HEAD and re-send nothing,
/// and show the same attributes.
#[test]
fn remount_rsync_heads_no_unchanged_file() {
    const FILES: u64 = 40;
    let v = S3Vault::init(moto(), "attr-cache", &[]);
    // Every change is this mount's: an hour's TTL keeps the HEAD counts below from depending
    // on how fast the machine runs `ls` and rsync (after the default 1 s, each lookup of
    // `tree` HEADs its name and its marker again).
    let mut m = v.mount_named("mnt", &["--metadata-ttl", "3600"]);
    let src = tempfile::tempdir().expect("source dir");
    for i in 0..FILES {
        fs::write(src.path().join(format!("f{i:02}")), format!("file {i}")).expect("write");
    }
    let src_arg = format!("{}/", src.path().display());
    let dest = format!("{}/", m.path("tree").display());
    run_ok("rsync", &["-a", &src_arg, &dest]);
    // Objects are kept once last modified 5 s (and the second of rounding) before a HEAD.
    std::thread::sleep(Duration::from_millis(6500));
    let ls = |m: &common::cli::CliMount| {
        let out = run_ok(
            "ls",
            &[
                "-l",
                "--time-style=full-iso",
                &m.path("tree").to_string_lossy(),
            ],
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    m.remount();
    let first = ls(&m);
    let heads = m.requests("head");
    assert!(heads >= FILES, "the first mount HEADs every file: {heads}");

    for _ in 0..2 {
        m.remount();
        let again = ls(&m);
        assert_eq!(again, first);
        let out = run_ok("rsync", &["-a", "--itemize-changes", &src_arg, &dest]);
        let out = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.trim().is_empty(), "the no-change rsync sent: {out}");
        // What is left are the lookups of the directory itself (its name, its marker), once.
        let heads = m.requests("head");
        assert!(heads <= 2, "{heads} HEADs after remount");
        assert_eq!(m.requests("put") + m.requests("copy"), 0);
    }
}
