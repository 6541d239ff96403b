//! `s3cryptfs doctor` through the built binary against moto's S3 server over HTTP: every check
//! passes on a healthy vault (exit 0, and the scratch object is gone), and each failure (missing
//! bucket, missing vault, wrong key, no credentials) is named on its line, the checks after it
//! skipped, and the exit status is 1. The directory-store half, and the helpers, are
//! `fast::tools_doctor`.

use std::process::Command;

use crate::common::s3server::MotoServer;
use crate::fast::tools_doctor::{Run, key_file, run};

#[tokio::test]
async fn s3_all_checks_pass_and_each_failure_is_named() {
    let server = MotoServer::shared();
    let bucket = server.bucket("doctor").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let key = key_file(dir.path(), "vault.key", 1);
    let wrong = key_file(dir.path(), "wrong.key", 2);
    let endpoint = server.endpoint().to_owned();
    let with = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        args.extend([
            "--endpoint".to_owned(),
            endpoint.clone(),
            "--path-style".into(),
        ]);
        args
    };
    let url = format!("s3://{bucket}/vault");
    let init = with(&["init", "--key-file", &key, &url]);
    run(&init.iter().map(String::as_str).collect::<Vec<_>>(), &[]).ok();

    let doctor = |key: &str, url: &str, sse: &[&str], env: &[(&str, &str)]| {
        let mut args = with(&["doctor", "--key-file", key]);
        args.extend(sse.iter().map(|s| (*s).to_owned()));
        args.push(url.to_owned());
        run(&args.iter().map(String::as_str).collect::<Vec<_>>(), env)
    };

    doctor(&key, &url, &[], &[]).checks(&[
        ("credentials", "ok", "access key testing"),
        ("bucket", "ok", &endpoint),
        ("vault config", "ok", "vault/.s3cryptfs/config"),
        ("key", "ok", "unlocks"),
        ("test object", "ok", "no SSE requested"),
    ]);
    // moto echoes SSE-S3, so the doctor can confirm it.
    doctor(&key, &url, &["--sse", "s3"], &[]).checks(&[
        ("credentials", "ok", ""),
        ("bucket", "ok", ""),
        ("vault config", "ok", ""),
        ("key", "ok", ""),
        ("test object", "ok", "confirmed sse s3"),
    ]);
    let listed = server
        .client()
        .list_objects_v2()
        .bucket(&bucket)
        .send()
        .await
        .expect("list");
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(
        keys,
        ["vault/.s3cryptfs/config"],
        "scratch objects are removed"
    );

    doctor(&wrong, &url, &[], &[]).checks(&[
        ("credentials", "ok", ""),
        ("bucket", "ok", ""),
        ("vault config", "ok", ""),
        ("key", "FAIL", "wrong key"),
        ("test object", "ok", ""),
    ]);

    let elsewhere = format!("s3://{bucket}/no-vault-here");
    doctor(&key, &elsewhere, &[], &[]).checks(&[
        ("credentials", "ok", ""),
        ("bucket", "ok", ""),
        ("vault config", "FAIL", "s3cryptfs init"),
        ("key", "skip", ""),
        ("test object", "ok", ""),
    ]);

    let no_bucket = "s3://no-such-bucket-for-doctor/vault";
    doctor(&key, no_bucket, &[], &[]).checks(&[
        ("credentials", "ok", ""),
        ("bucket", "FAIL", "does not exist"),
        ("vault config", "skip", ""),
        ("key", "skip", ""),
        ("test object", "skip", ""),
    ]);

    // No credentials anywhere in the chain (and never the EC2 metadata service).
    let home = dir.path().display().to_string();
    let none = dir.path().join("none").display().to_string();
    let mut args = with(&["doctor", "--key-file", &key]);
    args.push(url.clone());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_s3cryptfs"));
    cmd.args(&args)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
        .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        .env_remove("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_REGION", "us-east-1")
        .env("HOME", &home)
        .env("AWS_CONFIG_FILE", &none)
        .env("AWS_SHARED_CREDENTIALS_FILE", &none)
        .stdin(std::process::Stdio::null());
    let no_credentials = Run {
        args: args.join(" "),
        out: cmd.output().expect("run s3cryptfs"),
    };
    no_credentials.checks(&[
        ("credentials", "FAIL", "AWS_ACCESS_KEY_ID"),
        ("bucket", "skip", ""),
        ("vault config", "skip", ""),
        ("key", "skip", ""),
        ("test object", "skip", ""),
    ]);
}
