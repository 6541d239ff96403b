//! The mount over `s3://` against s3rver (npm; `common/s3server.rs` starts it through
//! scripts/s3rver-server.js, which leaves the ETag out of every ListObjects entry, as some S3
//! servers do): the FUSE scenarios of the local-store suite, and what used to fail on a server
//! without listing ETags — `ls -l`, `du -s`, `find` and `rm -rf` of a directory of files.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

use crate::common::run_ok;
use crate::common::s3server::MotoServer;
use crate::common::s3vault::{S3Target, S3Vault, aws_env, block_on};

/// The shared s3rver server, with its fixed credentials in the environment of every command.
fn s3rver() -> S3Target {
    let server = MotoServer::shared_s3rver();
    let (access_key, secret_key) = server.kind().credentials();
    S3Target {
        endpoint: server.endpoint().to_owned(),
        client: server.client(),
        env: aws_env(access_key, secret_key),
        server,
    }
}

crate::common::s3vault::fuse_scenario_suite!(s3rver);

#[test]
fn listings_without_etags_serve_ls_du_find_and_rm() {
    let v = S3Vault::init_plain(s3rver(), "no-etags", &[]);

    // The server really leaves the ETags out (else this test proves nothing).
    let mut m = v.mount();
    fs::create_dir(m.path("dir")).expect("mkdir");
    let sizes: Vec<usize> = (0..40).map(|i| i * 997).collect();
    for (i, len) in sizes.iter().enumerate() {
        fs::write(m.path(&format!("dir/f{i:02}")), vec![i as u8; *len]).expect("write");
    }
    let listing = block_on(
        v.client
            .list_objects_v2()
            .bucket(&v.bucket)
            .prefix("vault/dir/")
            .send(),
    )
    .expect("list the bucket");
    let contents = listing.contents();
    let files = contents
        .iter()
        .filter(|o| o.key().is_some_and(|k| !k.ends_with('/')))
        .count();
    assert_eq!(files, sizes.len(), "file objects under vault/dir/");
    assert!(
        contents.iter().all(|o| o.e_tag().is_none()),
        "the server was to omit listing ETags"
    );

    fs::set_permissions(m.path("dir/f03"), fs::Permissions::from_mode(0o600)).expect("chmod");
    let want_mode: Vec<u32> = (0..sizes.len())
        .map(|i| {
            fs::metadata(m.path(&format!("dir/f{i:02}")))
                .expect("stat")
                .mode()
        })
        .collect();
    assert_eq!(want_mode[3] & 0o7777, 0o600);

    // After a remount nothing is cached: every attribute comes from the store.
    m.remount();
    let out = Command::new("ls")
        .args(["-ln", m.path("dir").to_str().expect("utf-8 path")])
        .output()
        .expect("run ls");
    assert!(out.status.success(), "ls -l: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().filter(|l| l.starts_with('-')).count(),
        sizes.len()
    );
    for (i, len) in sizes.iter().enumerate() {
        let meta = fs::metadata(m.path(&format!("dir/f{i:02}"))).expect("stat");
        assert_eq!(meta.len(), *len as u64, "size of f{i:02}");
        assert_eq!(meta.mode(), want_mode[i], "mode of f{i:02}");
    }
    run_ok("du", &["-s", m.path("dir").to_str().expect("utf-8 path")]);
    let found = Command::new("find")
        .arg(m.path("dir"))
        .output()
        .expect("run find");
    assert!(found.status.success(), "find: {found:?}");
    assert_eq!(
        String::from_utf8_lossy(&found.stdout).lines().count(),
        sizes.len() + 1
    );
    assert_eq!(
        fs::read(m.path("dir/f07")).expect("read"),
        vec![7u8; 7 * 997]
    );

    run_ok("rm", &["-rf", m.path("dir").to_str().expect("utf-8 path")]);
    assert!(!m.path("dir").exists());
    m.remount();
    assert!(!m.path("dir").exists(), "rm -rf survived a remount");
}
