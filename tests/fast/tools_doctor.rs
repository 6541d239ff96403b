//! `s3cryptfs doctor` through the built binary against a directory store: every check passes on
//! a healthy vault (exit 0, and the scratch object is gone), and each failure (missing store,
//! missing vault, wrong key) is named on its line, the checks after it skipped, and the exit
//! status is 1. The same against moto's S3 server is `s3::tools_doctor`, with these helpers.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The environment every run gets: test credentials for moto, and never the EC2 metadata
/// service.
const AWS_ENV: [(&str, &str); 4] = [
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_REGION", "us-east-1"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
];

pub(crate) struct Run {
    pub(crate) args: String,
    pub(crate) out: Output,
}

impl Run {
    pub(crate) fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "`s3cryptfs {}` ({:?}):\n{}{}",
            self.args,
            self.out.status.code(),
            self.stdout(),
            String::from_utf8_lossy(&self.out.stderr)
        )
    }

    #[track_caller]
    pub(crate) fn ok(&self) -> &Self {
        assert!(self.out.status.success(), "{}", self.describe());
        self
    }

    /// The line of `check`: its status word and text.
    #[track_caller]
    pub(crate) fn line(&self, check: &str) -> (String, String) {
        let stdout = self.stdout();
        let line = stdout
            .lines()
            .find(|l| l.get(6..).is_some_and(|rest| rest.starts_with(check)))
            .unwrap_or_else(|| panic!("no {check:?} line: {}", self.describe()));
        let status = line
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned();
        (status, line.to_owned())
    }

    /// Asserts the status word of every check, in order, and that each line holds its needle.
    #[track_caller]
    pub(crate) fn checks(&self, expected: &[(&str, &str, &str)]) -> &Self {
        let stdout = self.stdout();
        let names: Vec<&str> = stdout
            .lines()
            .filter(|l| matches!(l.split_whitespace().next(), Some("ok" | "FAIL" | "skip")))
            .map(|l| {
                l.get(6..)
                    .unwrap_or_default()
                    .split("  ")
                    .next()
                    .unwrap_or("")
            })
            .collect();
        let wanted: Vec<&str> = expected.iter().map(|(check, _, _)| *check).collect();
        assert_eq!(names, wanted, "checks in order: {}", self.describe());
        for (check, status, needle) in expected {
            let (got, line) = self.line(check);
            assert_eq!(&got, status, "{check}: {}", self.describe());
            assert!(
                line.to_lowercase().contains(&needle.to_lowercase()),
                "{check} should mention {needle:?}: {}",
                self.describe()
            );
        }
        let all_ok = expected.iter().all(|(_, status, _)| *status == "ok");
        assert_eq!(
            self.out.status.code(),
            Some(if all_ok { 0 } else { 1 }),
            "exit status: {}",
            self.describe()
        );
        self
    }
}

pub(crate) fn run(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_s3cryptfs"));
    cmd.args(args)
        .env("S3CRYPTFS_STATE_DIR", crate::common::state_dir())
        .env_remove("S3CRYPTFS_PASSPHRASE")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_PROFILE")
        .stdin(std::process::Stdio::null());
    for (name, value) in AWS_ENV.iter().chain(env) {
        cmd.env(name, value);
    }
    Run {
        args: args.join(" "),
        out: cmd.output().expect("run s3cryptfs"),
    }
}

pub(crate) fn key_file(dir: &Path, name: &str, byte: u8) -> String {
    let path = dir.join(name);
    std::fs::write(&path, [byte; 32]).expect("write key");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    path.display().to_string()
}

/// Object files of a directory store, relative to its root.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).expect("below").to_path_buf());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn directory_store_all_checks_pass_and_each_failure_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = key_file(dir.path(), "vault.key", 1);
    let wrong = key_file(dir.path(), "wrong.key", 2);
    let url = format!("file://{}", dir.path().join("vault").display());
    run(&["init", "--key-file", &key, &url], &[]).ok();
    let before = files_below(&dir.path().join("vault"));

    run(&["doctor", "--key-file", &key, &url], &[]).checks(&[
        ("store", "ok", "directory store"),
        ("vault config", "ok", ".s3cryptfs/config"),
        ("key", "ok", "unlocks"),
        ("test object", "ok", "PUT, GET and DELETE"),
    ]);
    assert_eq!(
        files_below(&dir.path().join("vault")),
        before,
        "the scratch object is removed"
    );

    run(&["doctor", "--key-file", &wrong, &url], &[]).checks(&[
        ("store", "ok", ""),
        ("vault config", "ok", ""),
        ("key", "FAIL", "wrong key"),
        ("test object", "ok", ""),
    ]);

    // A directory store without a vault: the vault is missing, the store works.
    let empty = format!("file://{}", dir.path().join("empty").display());
    run(&["init", "--key-file", &key, &empty], &[]).ok();
    std::fs::remove_dir_all(dir.path().join("empty/objects/%2Es3cryptfs.d")).expect("rm config");
    run(&["doctor", "--key-file", &key, &empty], &[]).checks(&[
        ("store", "ok", ""),
        ("vault config", "FAIL", "s3cryptfs init"),
        ("key", "skip", ""),
        ("test object", "ok", ""),
    ]);

    // No store at all: nothing is created.
    let nowhere = dir.path().join("nowhere");
    let missing = format!("file://{}", nowhere.display());
    run(&["doctor", "--key-file", &key, &missing], &[]).checks(&[
        ("store", "FAIL", "not a directory store"),
        ("vault config", "skip", ""),
        ("key", "skip", ""),
        ("test object", "skip", ""),
    ]);
    assert!(!nowhere.exists(), "doctor must not create a store");
}
