//! Vaults unlocked through AWS KMS (issue 15), against moto's KMS (on the same port as its S3)
//! through `common::kmsproxy`, which refuses disabled keys and denied actions as AWS does and
//! counts KMS requests: `init --kms-key-id` with an offline recovery slot, every tool with
//! `--kms` and with no secret flag at all, `key add --new-kms-key-id` / `key list` / `key
//! remove`, a disabled key, access denied, KMS unreachable, `doctor`; and, with FUSE, a mount
//! through KMS that costs exactly one KMS request.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::common::cli::{CliEnv, CliOutput, args, run_cli_env};
use crate::common::kmsproxy::KmsProxy;
use crate::common::s3server::MotoServer;
use crate::common::s3vault::{aws_env, block_on};

/// A bucket on moto, a KMS proxy in front of moto, and a temporary directory.
pub struct KmsVault {
    pub server: std::sync::Arc<MotoServer>,
    pub proxy: KmsProxy,
    pub kms: aws_sdk_kms::Client,
    pub url: String,
    pub bucket: String,
    pub dir: tempfile::TempDir,
    pub env: CliEnv,
}

impl KmsVault {
    pub fn new(hint: &str) -> KmsVault {
        let server = MotoServer::shared();
        let bucket = block_on(server.bucket(hint));
        let endpoint = server.endpoint().to_owned();
        let proxy = KmsProxy::start(endpoint.trim_start_matches("http://"));
        let config = aws_sdk_kms::Config::builder()
            .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
            .region(aws_sdk_kms::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_kms::config::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .endpoint_url(&endpoint)
            .build();
        KmsVault {
            server,
            proxy,
            kms: aws_sdk_kms::Client::from_conf(config),
            url: format!("s3://{bucket}/vault"),
            bucket,
            dir: tempfile::tempdir().expect("tempdir"),
            env: aws_env("test", "test"),
        }
    }

    /// A new symmetric KMS key on moto; its id.
    pub fn create_key(&self) -> String {
        let out = block_on(self.kms.create_key().description("s3cryptfs test").send())
            .expect("CreateKey");
        out.key_metadata()
            .expect("key metadata")
            .key_id()
            .to_owned()
    }

    /// The ARN of key `key` (moto's: `arn:aws:kms:us-east-1:ACCOUNT:key/ID`).
    pub fn key_arn(&self, key: &str) -> String {
        let out = block_on(self.kms.describe_key().key_id(key).send()).expect("DescribeKey");
        let arn = out.key_metadata().and_then(|m| m.arn()).expect("a key ARN");
        arn.to_owned()
    }

    pub fn set_enabled(&self, key: &str, enabled: bool) {
        if enabled {
            block_on(self.kms.enable_key().key_id(key).send()).expect("EnableKey");
        } else {
            block_on(self.kms.disable_key().key_id(key).send()).expect("DisableKey");
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `--endpoint MOTO --path-style --kms-endpoint PROXY`.
    pub fn store_args(&self) -> Vec<OsString> {
        args([
            "--endpoint",
            self.server.endpoint(),
            "--path-style",
            "--kms-endpoint",
            &self.proxy.endpoint(),
        ])
    }

    /// `s3cryptfs COMMAND... STORE_ARGS` then `operands` (the URL first, as the tools take it).
    pub fn run(&self, command: &[&str], operands: &[&str]) -> CliOutput {
        let mut a = args(command);
        a.extend(self.store_args());
        a.extend(args(operands));
        run_cli_env(&a, &self.env)
    }
}

/// The exit status of a finished command.
pub fn code(out: &CliOutput) -> Option<i32> {
    out.status.code()
}

#[test]
fn kms_vault_tools_key_slots_and_refusals() {
    let v = KmsVault::new("kms-tools");
    let k1 = v.create_key();
    let k2 = v.create_key();
    let url = v.url.as_str();
    let recovery = v.path("recovery.key");
    let recovery = recovery.to_str().unwrap();

    let out = v.run(
        &["init", "--kms-key-id", &k1, "--key-file", recovery],
        &[url],
    );
    out.assert_ok();
    assert!(out.stdout.contains(&k1), "{}", out.describe());
    assert_eq!(
        v.proxy.counts().get("Encrypt"),
        Some(&1),
        "{:?}",
        v.proxy.counts()
    );

    // Tools with --kms, and with no secret flag at all (stdin is not a terminal: without the
    // KMS slot this would fail for want of a key).
    let src = v.path("hello.txt");
    std::fs::write(&src, b"hello through KMS").unwrap();
    v.run(
        &["put", "--kms"],
        &[url, src.to_str().unwrap(), "/hello.txt"],
    )
    .assert_ok();
    let ls = v.run(&["ls", "--kms"], &[url]);
    ls.assert_ok();
    assert!(ls.stdout.contains("hello.txt"), "{}", ls.describe());
    v.proxy.reset_counts();
    let cat = v.run(&["cat"], &[url, "/hello.txt"]);
    cat.assert_ok();
    assert_eq!(cat.stdout, "hello through KMS");
    let counts = v.proxy.counts();
    assert_eq!(
        counts.values().sum::<u64>(),
        1,
        "one KMS request per run: {counts:?}"
    );
    assert_eq!(counts.get("Decrypt"), Some(&1), "{counts:?}");
    let got = v.path("got.txt");
    v.run(&["get"], &[url, "/hello.txt", got.to_str().unwrap()])
        .assert_ok();
    assert_eq!(std::fs::read(&got).unwrap(), b"hello through KMS");
    v.run(&["verify", "--deep", "--kms"], &[url]).assert_ok();
    v.run(&["upgrade", "--kms"], &[url]).assert_ok();
    v.run(&["cleanup", "--kms"], &[url]).assert_ok();
    let doctor = v.run(&["doctor", "--kms"], &[url]);
    doctor.assert_ok();
    assert!(
        doctor.stdout.contains("KMS") && doctor.stdout.contains(&k1),
        "{}",
        doctor.describe()
    );

    // key list shows the KMS slot with its key id, next to the recovery slot.
    let list = v.run(&["key", "list"], &[url]);
    list.assert_ok();
    assert!(
        list.stdout.contains("kms") && list.stdout.contains(&k1),
        "{}",
        list.describe()
    );
    assert!(list.stdout.contains("key_file"), "{}", list.describe());

    // Move to a new KMS key: add, then remove the old slot.
    v.run(&["key", "add", "--new-kms-key-id", &k2], &[url])
        .assert_ok();
    let list = v.run(&["key", "list", "--json"], &[url]);
    list.assert_ok();
    let json: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    let ids: Vec<&str> = json["slots"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["kms_key_id"].as_str())
        .collect();
    assert_eq!(ids, [k1.as_str(), k2.as_str()], "{}", list.stdout);
    v.run(&["key", "remove", "--slot", "0", "--yes", "--kms"], &[url])
        .assert_ok();
    let list = v.run(&["key", "list"], &[url]);
    list.assert_ok();
    assert!(
        !list.stdout.contains(&k1) && list.stdout.contains(&k2),
        "{}",
        list.describe()
    );
    // The old key no longer matters: disabling it changes nothing.
    v.set_enabled(&k1, false);
    v.run(&["ls", "--kms"], &[url]).assert_ok();

    // A disabled key is refused, naming KMS and the key, exit 3 as a wrong key; the offline
    // slot still opens the vault.
    v.set_enabled(&k2, false);
    let out = v.run(&["ls", "--kms"], &[url]);
    out.assert_failed()
        .assert_stderr_has(&["KMS", &k2, "disabled", "enable-key"]);
    assert_eq!(code(&out), Some(3), "{}", out.describe());
    let out = v.run(&["ls"], &[url]);
    out.assert_failed()
        .assert_stderr_has(&["KMS", &k2, "disabled"]);
    v.run(&["ls", "--key-file", recovery], &[url]).assert_ok();
    v.set_enabled(&k2, true);

    // Access denied names the action and the key.
    v.proxy.deny("kms:Decrypt", true);
    let out = v.run(&["ls", "--kms"], &[url]);
    out.assert_failed()
        .assert_stderr_has(&["access denied", "kms:Decrypt", &k2, "key policy"]);
    assert_eq!(code(&out), Some(3), "{}", out.describe());
    v.proxy.deny("kms:Decrypt", false);

    // KMS unreachable: a distinct exit status, and the way out.
    let closed = crate::common::s3server::free_port();
    let mut a = args([
        "ls",
        "--kms",
        "--endpoint",
        v.server.endpoint(),
        "--path-style",
    ]);
    a.extend(args([
        "--kms-endpoint",
        &format!("http://127.0.0.1:{closed}"),
        url,
    ]));
    let out = run_cli_env(&a, &v.env);
    out.assert_failed()
        .assert_stderr_has(&["cannot reach KMS", &k2, "--key-file"]);
    assert_eq!(code(&out), Some(4), "{}", out.describe());
    v.run(&["ls", "--kms"], &[url]).assert_ok();
}

#[test]
fn kms_init_refusals_name_the_key() {
    let v = KmsVault::new("kms-init");
    let k = v.create_key();
    v.set_enabled(&k, false);
    let out = v.run(&["init", "--kms-key-id", &k], &[&v.url]);
    out.assert_failed()
        .assert_stderr_has(&["KMS", &k, "disabled", "kms:Encrypt"]);
    assert_eq!(code(&out), Some(3), "{}", out.describe());
    let out = v.run(&["init", "--kms-key-id", "alias/no-such-key"], &[&v.url]);
    out.assert_failed()
        .assert_stderr_has(&["alias/no-such-key"]);
    // Nothing was written: a working key can still create the vault.
    v.set_enabled(&k, true);
    v.run(&["init", "--kms-key-id", &k], &[&v.url]).assert_ok();
    // Without a KMS key id, `init --kms` says what is missing.
    let out = v.run(&["init", "--kms"], &[&format!("{}-2", v.url)]);
    out.assert_failed().assert_stderr_has(&["--kms-key-id"]);
}

/// A key whose ARN names another region than the one KMS is asked in (AWS KMS answers
/// NotFoundException "Invalid arn REGION", played by the proxy): `init` and a tool run on a
/// machine set to another region are refused as a wrong key would be, naming the key, both
/// regions and the fix.
#[test]
fn kms_key_of_another_region_names_both_regions_and_the_fix() {
    let v = KmsVault::new("kms-region");
    let arn = v.key_arn(&v.create_key());
    let eu = arn.replacen(":us-east-1:", ":eu-west-1:", 1);
    assert_ne!(eu, arn, "moto's key ARN is in us-east-1: {arn}");
    let out = v.run(&["init", "--kms-key-id", &eu], &[&v.url]);
    out.assert_failed().assert_stderr_has(&[
        &eu,
        "in region eu-west-1",
        "asked in region us-east-1",
        "--region eu-west-1",
    ]);
    assert_eq!(code(&out), Some(3), "{}", out.describe());

    v.run(&["init", "--kms-key-id", &arn], &[&v.url])
        .assert_ok();
    let out = v.run(&["ls", "--kms", "--region", "eu-west-1"], &[&v.url]);
    out.assert_failed().assert_stderr_has(&[
        &arn,
        "in region us-east-1",
        "asked in region eu-west-1",
        "--region us-east-1",
    ]);
    assert_eq!(code(&out), Some(3), "{}", out.describe());
    v.run(&["ls", "--kms"], &[&v.url]).assert_ok();
}
