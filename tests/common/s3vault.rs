//! Vaults on a bucket of a test S3 server (moto, Ceph RGW), created and mounted through the
//! built binary as a user would: `s3cryptfs init s3://BUCKET/vault --endpoint URL --path-style
//! ...` and `s3cryptfs mount` with the same flags, with the server's credentials in their
//! environment.

use std::any::Any;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::PathBuf;
use std::sync::Arc;

use super::cli::{CliEnv, CliMount, args, run_cli_env};
use super::require_fuse;
use super::s3test::create_bucket;

/// The AWS environment of every `s3cryptfs` a vault on the server runs: the server's
/// credentials, a region, and IMDS off (169.254.169.254 must never be contacted). It is given
/// to each command, never set in this process: moto's and Ceph's tests share the process, with
/// different credentials.
pub fn aws_env(access_key: &str, secret_key: &str) -> CliEnv {
    CliEnv {
        set: vec![
            ("AWS_ACCESS_KEY_ID".into(), access_key.into()),
            ("AWS_SECRET_ACCESS_KEY".into(), secret_key.into()),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ],
        remove: vec!["AWS_PROFILE".into(), "AWS_ENDPOINT_URL".into()],
    }
}

/// A running test server, as a vault needs it.
pub struct S3Target {
    pub endpoint: String,
    /// A plain SDK client of the server with its credentials, independent of `s3cryptfs`.
    pub client: aws_sdk_s3::Client,
    /// Keeps the server running while a vault on it lives.
    pub server: Arc<dyn Any + Send + Sync>,
    /// The environment of every `s3cryptfs` run against it ([`aws_env`]).
    pub env: CliEnv,
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
    /// `init --plain-names`: for the tests that find objects by their file names.
    pub plain_names: bool,
    pub client: aws_sdk_s3::Client,
    _server: Arc<dyn Any + Send + Sync>,
    env: CliEnv,
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
            plain_names: false,
            client: target.client,
            _server: target.server,
            env: target.env,
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

    /// [`S3Vault::init`] of a vault with plaintext names (`init --plain-names`), for tests
    /// that look at or edit objects by their file names.
    pub fn init_plain(target: S3Target, hint: &str, extra: &[&str]) -> S3Vault {
        let mut v = S3Vault::new(target, hint);
        v.plain_names = true;
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
        if self.plain_names {
            a.push("--plain-names".into());
        }
        a.extend(self.bucket_args.iter().cloned());
        a.push(self.url.clone().into());
        run_cli_env(&a, &self.env).assert_ok();
    }

    /// `s3cryptfs COMMAND... --key-file KEY BUCKET_ARGS URL`, for the commands that open the
    /// store (`key rotate`, `verify`, `ls`, ...).
    pub fn run(&self, command: &[&str]) -> super::cli::CliOutput {
        self.run_with::<&str>(command, &[])
    }

    /// [`S3Vault::run`] with `after` following the URL (`ls URL PATH`, `get URL SRC DEST`).
    pub fn run_with<S: AsRef<OsStr>>(
        &self,
        command: &[&str],
        after: &[S],
    ) -> super::cli::CliOutput {
        let mut a = args(command);
        a.extend(args([OsStr::new("--key-file"), self.key_file.as_os_str()]));
        a.extend(self.bucket_args.iter().cloned());
        a.push(self.url.clone().into());
        a.extend(args(after));
        run_cli_env(&a, &self.env)
    }

    /// `s3cryptfs mount` with the bucket arguments, at `<tempdir>/mnt`.
    pub fn mount(&self) -> CliMount {
        self.mount_with("mnt", "staging", "mount.log", &[])
    }

    /// Another mount of the same vault, as another machine would have it: at
    /// `<tempdir>/NAME`, with its own staging directory and log, and `extra` mount flags.
    #[cfg(feature = "s3_tests")]
    pub fn mount_named(&self, name: &str, extra: &[&str]) -> CliMount {
        self.mount_with(
            name,
            &format!("{name}-staging"),
            &format!("{name}.log"),
            extra,
        )
    }

    fn mount_with(&self, name: &str, staging: &str, log: &str, extra: &[&str]) -> CliMount {
        let (mp, log, a) = self.mount_args(name, staging, log, extra);
        let mut m = CliMount::start_env(mp, a, self.env.clone());
        m.log_file = Some(log);
        m
    }

    /// The `s3cryptfs mount` command line with the bucket arguments and `extra` flags, at
    /// `<tempdir>/NAME` (made), staging in `<tempdir>/STAGING`, logging to `<tempdir>/LOG`.
    fn mount_args(
        &self,
        name: &str,
        staging: &str,
        log: &str,
        extra: &[&str],
    ) -> (PathBuf, PathBuf, Vec<OsString>) {
        let mp = self.dir.path().join(name);
        let staging = self.dir.path().join(staging);
        fs::create_dir_all(&mp).expect("mountpoint");
        fs::create_dir_all(&staging).expect("staging");
        let log = self.dir.path().join(log);
        let mut a = args([OsStr::new("mount"), OsStr::new("--key-file")]);
        a.push(self.key_file.clone().into());
        a.extend(args(extra));
        a.extend(args([OsStr::new("--staging-dir"), staging.as_os_str()]));
        a.extend(args([OsStr::new("--log-file"), log.as_os_str()]));
        a.extend(self.bucket_args.iter().cloned());
        a.push(self.url.clone().into());
        a.push(mp.clone().into());
        (mp, log, a)
    }

    /// The same `s3cryptfs mount` where it must fail: what it answered.
    #[cfg(feature = "s3_tests")]
    pub fn mount_fails(&self) -> super::cli::CliOutput {
        let (mp, _, a) = self.mount_args("mnt", "staging", "mount.log", &[]);
        let out = run_cli_env(&a, &self.env);
        assert!(
            !super::is_mounted(&mp),
            "`{}` mounted: {}",
            out.command,
            out.describe()
        );
        out.assert_failed();
        out
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

/// The FUSE scenarios of the local-store suite (`common/scenarios.rs`, as
/// tests/fuse/fuse_dirstore.rs runs them), each on a vault of a fresh bucket of the server
/// `$target()` returns (an [`S3Target`]), mounted through the command line.
macro_rules! fuse_scenario_suite {
    ($target:ident) => {
        mod scenario_suite {
            use std::fs;
            use std::path::PathBuf;

            use crate::common::cli::CliMount;
            use crate::common::s3vault::S3Vault;
            use crate::common::scenarios::{self, EDGE_SIZES};

            /// A mounted vault on a fresh bucket, and a scratch directory.
            fn suite_vault(hint: &str) -> (S3Vault, CliMount, PathBuf) {
                let v = S3Vault::init(super::$target(), hint, &[]);
                let m = v.mount();
                let scratch = v.dir.path().join("scratch");
                fs::create_dir_all(&scratch).expect("scratch dir");
                (v, m, scratch)
            }

            #[test]
            fn suite_edge_sizes_roundtrip_and_survive_remount() {
                let (_v, mut m, scratch) = suite_vault("suite-sizes");
                let root = m.mountpoint.clone();
                scenarios::sizes_roundtrip(&root, &scratch, &EDGE_SIZES, &mut || m.remount());
            }

            #[test]
            fn suite_random_reads_and_writes_match_a_local_file() {
                let (_v, mut m, scratch) = suite_vault("suite-random");
                let root = m.mountpoint.clone();
                let seed = scenarios::test_seed(0x5EED_00C3);
                scenarios::random_ops_against_local(
                    &root,
                    &scratch,
                    seed,
                    scenarios::test_ops(300),
                    3,
                    &mut || m.remount(),
                );
            }

            #[test]
            fn suite_cp_r_diff_r_and_rsync() {
                let (_v, mut m, scratch) = suite_vault("suite-trees");
                let root = m.mountpoint.clone();
                scenarios::tree_copy_and_diff(&root, &scratch, 10, &mut || m.remount());
                let rsync_root = root.join("rsync");
                fs::create_dir_all(&rsync_root).expect("mkdir");
                let rsync_scratch = scratch.join("rsync");
                fs::create_dir_all(&rsync_scratch).expect("mkdir");
                scenarios::rsync_tree(&rsync_root, &rsync_scratch, 8, &mut || m.remount());
            }

            #[test]
            fn suite_concurrent_writers_and_a_lister() {
                let (_v, mut m, _scratch) = suite_vault("suite-concurrent");
                let root = m.mountpoint.clone();
                scenarios::concurrent_writers(&root, 4, &mut || m.remount());
            }

            /// mkdir/rmdir and errors, rename over an existing file, truncate, chmod + touch -d
            /// across remounts, hard links refused, symlinks.
            #[test]
            fn suite_posix_semantics() {
                let (_v, mut m, _scratch) = suite_vault("suite-posix");
                let root = m.mountpoint.clone();
                scenarios::dir_ops_and_errors(&root, &mut || m.remount());
                scenarios::rename_over_existing(&root, &mut || m.remount());
                scenarios::truncate_up_and_down(&root, &mut || m.remount());
                scenarios::attrs_survive_remount(&root, &mut || m.remount());
                scenarios::hard_link_refused(&root);
                scenarios::symlinks(&root, &mut || m.remount());
            }
        }
    };
}

#[cfg(feature = "fuse_tests")]
pub(crate) use fuse_scenario_suite;
