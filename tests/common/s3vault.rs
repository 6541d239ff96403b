//! Vaults on a bucket of a test S3 server (moto, Ceph RGW), created and mounted through the
//! built binary as a user would: `s3cryptfs init s3://BUCKET/vault --endpoint URL --path-style
//! ...` and `s3cryptfs mount` with the same flags. Include next to `common` and `s3server`.

#![allow(dead_code)]

use std::any::Any;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, Once};

use crate::common::cli::{CliMount, CliOutput, args, run_cli};
use crate::common::require_fuse;
use crate::s3server::create_bucket;

/// Sets the AWS environment every `s3cryptfs` the tests start inherits: the server's
/// credentials, a region, and IMDS off (169.254.169.254 must never be contacted). The first
/// call wins; a test binary talks to one kind of server.
pub fn aws_env(access_key: &str, secret_key: &str) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: set once, before the tests of this binary start any s3cryptfs process or
        // read these variables (every test calls this before either).
        unsafe {
            std::env::set_var("AWS_ACCESS_KEY_ID", access_key);
            std::env::set_var("AWS_SECRET_ACCESS_KEY", secret_key);
            std::env::set_var("AWS_REGION", "us-east-1");
            std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
            std::env::remove_var("AWS_PROFILE");
            std::env::remove_var("AWS_ENDPOINT_URL");
        }
    });
}

/// A running test server, as a vault needs it.
pub struct S3Target {
    pub endpoint: String,
    /// A plain SDK client of the server with its credentials, independent of `s3cryptfs`.
    pub client: aws_sdk_s3::Client,
    /// Keeps the server running while a vault on it lives.
    pub server: Arc<dyn Any + Send + Sync>,
}

/// A vault under `s3://BUCKET/vault/` of a fresh bucket, in a temporary directory of its own
/// (key file, mount point, staging, log).
pub struct S3Vault {
    pub dir: tempfile::TempDir,
    pub bucket: String,
    pub url: String,
    pub key_file: PathBuf,
    /// `--endpoint URL --path-style`, then the SSE flags ([`S3Vault::set_sse_args`]); given to
    /// init and mount.
    pub bucket_args: Vec<OsString>,
    endpoint: String,
    pub client: aws_sdk_s3::Client,
    _server: Arc<dyn Any + Send + Sync>,
}

impl S3Vault {
    /// A fresh bucket on `target` and the vault's temporary directory; nothing initialized.
    pub fn new(target: S3Target, hint: &str) -> S3Vault {
        require_fuse();
        let bucket = block_on(create_bucket(&target.client, hint))
            .unwrap_or_else(|e| panic!("the test S3 server at {}: {e}", target.endpoint));
        let dir = tempfile::Builder::new()
            .prefix("s3cryptfs-s3-vault-")
            .tempdir()
            .expect("temp dir");
        S3Vault {
            key_file: dir.path().join("vault.key"),
            url: format!("s3://{bucket}/vault"),
            dir,
            bucket,
            bucket_args: args(["--endpoint", &target.endpoint, "--path-style"]),
            endpoint: target.endpoint,
            client: target.client,
            _server: target.server,
        }
    }

    /// [`S3Vault::new`], then `s3cryptfs init` with `extra` (SSE flags) added to the bucket
    /// arguments.
    pub fn init(target: S3Target, hint: &str, extra: &[&str]) -> S3Vault {
        let mut v = S3Vault::new(target, hint);
        v.set_sse_args(args(extra));
        v.run_init();
        v
    }

    /// Replaces the SSE flags given to later commands (e.g. to add an SSE-C key).
    pub fn set_sse_args(&mut self, sse_args: Vec<OsString>) {
        self.bucket_args = args(["--endpoint", &self.endpoint, "--path-style"]);
        self.bucket_args.extend(sse_args);
    }

    /// `s3cryptfs init --key-file KEY BUCKET_ARGS URL`.
    pub fn run_init(&self) {
        let mut a = args(["init", "--key-file"]);
        a.push(self.key_file.clone().into());
        a.extend(self.bucket_args.iter().cloned());
        a.push(self.url.clone().into());
        run_cli(&a, &[]).assert_ok();
    }

    /// `s3cryptfs COMMAND... --key-file KEY BUCKET_ARGS URL`, for the commands that open the
    /// store (`key rotate`, `verify`, `ls`, ...).
    pub fn run(&self, command: &[&str]) -> CliOutput {
        let mut a = args(command);
        a.extend(args([OsStr::new("--key-file"), self.key_file.as_os_str()]));
        a.extend(self.bucket_args.iter().cloned());
        a.push(self.url.clone().into());
        run_cli(&a, &[])
    }

    /// `s3cryptfs mount` with the bucket arguments, at `<tempdir>/mnt`.
    pub fn mount(&self) -> CliMount {
        let mp = self.dir.path().join("mnt");
        let staging = self.dir.path().join("staging");
        fs::create_dir_all(&mp).expect("mountpoint");
        fs::create_dir_all(&staging).expect("staging");
        let log = self.dir.path().join("mount.log");
        let mut a = args([OsStr::new("mount"), OsStr::new("--key-file")]);
        a.push(self.key_file.clone().into());
        a.extend(args([OsStr::new("--staging-dir"), staging.as_os_str()]));
        a.extend(args([OsStr::new("--log-file"), log.as_os_str()]));
        a.extend(self.bucket_args.iter().cloned());
        a.push(self.url.clone().into());
        a.push(mp.clone().into());
        let mut m = CliMount::start(mp, a);
        m.log_file = Some(log);
        m
    }

    /// Every object key under the vault prefix.
    pub async fn keys(&self) -> Vec<String> {
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix("vault/")
            .send()
            .await
            .expect("list");
        out.contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect()
    }
}

/// Runs `f` on a runtime of its own (the tests themselves are synchronous).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}
