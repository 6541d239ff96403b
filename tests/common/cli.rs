//! Vaults on a local directory store, created and mounted through the built binary, exactly
//! as a user would: `s3cryptfs init`, `s3cryptfs mount` (returns once mounted), `s3cryptfs
//! unmount`.
//!
//! Every command runs with stdin closed and its output captured in unnamed temporary files
//! rather than pipes: the daemon `mount` leaves behind may keep them open, and a pipe would make
//! us wait for it forever. The daemon's stderr file is kept, so tests can read its log.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

#[cfg(feature = "fuse_tests")]
use super::{force_unmount, is_mounted, require_fuse, wait_until};

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_s3cryptfs"))
}

/// How long any one command may take before the test fails.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// What a finished command left behind.
pub struct CliOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// The stderr file, still written by a daemon the command may have left running.
    #[cfg(feature = "fuse_tests")]
    stderr_file: File,
    pub command: String,
}

impl CliOutput {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    #[track_caller]
    pub fn assert_ok(&self) -> &Self {
        assert!(
            self.success(),
            "`{}` failed: {}",
            self.command,
            self.describe()
        );
        self
    }

    #[track_caller]
    pub fn assert_failed(&self) -> &Self {
        assert!(
            !self.success(),
            "`{}` should have failed but succeeded: {}",
            self.command,
            self.describe()
        );
        assert_ne!(
            self.status.code(),
            None,
            "`{}` was killed by a signal instead of exiting with an error: {}",
            self.command,
            self.describe()
        );
        self
    }

    /// Asserts that stderr contains every one of `needles` (case-insensitive).
    #[track_caller]
    pub fn assert_stderr_has(&self, needles: &[&str]) -> &Self {
        self.assert_mentions("stderr", &self.stderr, needles)
    }

    /// Asserts that stdout and stderr together contain every one of `needles`
    /// (case-insensitive): for commands that report on stdout, as `verify` does.
    #[cfg(all(feature = "s3_tests", feature = "fuse_tests"))]
    #[track_caller]
    pub fn assert_output_has(&self, needles: &[&str]) -> &Self {
        self.assert_mentions(
            "its output",
            &format!("{}{}", self.stdout, self.stderr),
            needles,
        )
    }

    #[track_caller]
    fn assert_mentions(&self, what: &str, text: &str, needles: &[&str]) -> &Self {
        let lower = text.to_lowercase();
        for n in needles {
            assert!(
                lower.contains(&n.to_lowercase()),
                "`{}`: {what} should mention {n:?}: {}",
                self.command,
                self.describe()
            );
        }
        self
    }

    pub fn describe(&self) -> String {
        format!(
            "exit {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }

    /// Everything written to stderr so far (the daemon's log for `mount`).
    #[cfg(feature = "fuse_tests")]
    pub fn current_stderr(&self) -> String {
        read_all(&self.stderr_file)
    }
}

fn read_all(f: &File) -> String {
    let mut f = f.try_clone().expect("dup output file");
    let mut s = Vec::new();
    f.seek(SeekFrom::Start(0)).expect("seek output file");
    f.read_to_end(&mut s).expect("read output file");
    String::from_utf8_lossy(&s).into_owned()
}

/// What a command's environment changes from this process's, which the tests never change
/// (the tests of every tier share the process).
#[derive(Clone, Debug, Default)]
pub struct CliEnv {
    pub set: Vec<(OsString, OsString)>,
    pub remove: Vec<OsString>,
}

/// Runs `s3cryptfs ARGS` with `envs` added to a clean copy of the environment.
pub fn run_cli<S: AsRef<OsStr>>(args: &[S], envs: &[(&str, &OsStr)]) -> CliOutput {
    let env = CliEnv {
        set: envs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect(),
        remove: Vec::new(),
    };
    run_cli_env(args, &env)
}

/// Runs `s3cryptfs ARGS` with `env` applied to a clean copy of the environment.
pub fn run_cli_env<S: AsRef<OsStr>>(args: &[S], env: &CliEnv) -> CliOutput {
    let stdout_file = tempfile::tempfile().expect("temp file");
    let stderr_file = tempfile::tempfile().expect("temp file");
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .env_remove("S3CRYPTFS_PASSPHRASE")
        .env("S3CRYPTFS_STATE_DIR", super::state_dir())
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(stdout_file.try_clone().expect("dup"))
        .stderr(stderr_file.try_clone().expect("dup"));
    for k in &env.remove {
        cmd.env_remove(k);
    }
    for (k, v) in &env.set {
        cmd.env(k, v);
    }
    let command = format!(
        "s3cryptfs {}",
        args.iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin().display()));
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        match child.try_wait().expect("wait for s3cryptfs") {
            Some(s) => break s,
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "`{command}` did not finish within {COMMAND_TIMEOUT:?}; stderr so far:\n{}",
                    read_all(&stderr_file)
                );
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    CliOutput {
        status,
        stdout: read_all(&stdout_file),
        stderr: read_all(&stderr_file),
        #[cfg(feature = "fuse_tests")]
        stderr_file,
        command,
    }
}

/// `args` as owned strings, for building argument lists from paths.
pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(items: I) -> Vec<OsString> {
    items.into_iter().map(|s| s.as_ref().to_owned()).collect()
}

/// Pids of live processes whose command line holds `mountpoint` (the daemons serving it).
pub fn daemon_pids(mountpoint: &Path) -> Vec<u32> {
    let me = std::process::id();
    let needle = mountpoint.as_os_str().as_encoded_bytes();
    let bin_name = bin();
    let bin_name = bin_name
        .file_name()
        .expect("binary has a name")
        .as_encoded_bytes()
        .to_vec();
    let mut pids = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let parts: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let is_ours = parts.first().is_some_and(|p| p.ends_with(&bin_name));
        if is_ours && parts.contains(&needle) {
            // A zombie has an empty cmdline, so anything here is alive.
            pids.push(pid);
        }
    }
    pids
}

/// A vault on a DirStore in a fresh temporary directory, unlocked by a key file.
pub struct CliVault {
    dir: TempDir,
    #[cfg(feature = "fuse_tests")]
    pub store_dir: PathBuf,
    pub url: String,
    pub key_file: PathBuf,
}

impl CliVault {
    /// `s3cryptfs init --key-file KEY file:///…/store`, with KEY created by init.
    pub fn init() -> CliVault {
        CliVault::init_with(&[])
    }

    /// [`CliVault::init`] with plaintext names (`init --plain-names`), for tests that find
    /// objects by their file names.
    #[cfg(feature = "fuse_tests")]
    pub fn init_plain() -> CliVault {
        CliVault::init_with(&["--plain-names"])
    }

    fn init_with(extra: &[&str]) -> CliVault {
        let v = CliVault::uninitialized();
        let mut a = args([
            OsStr::new("init"),
            OsStr::new("--key-file"),
            v.key_file.as_os_str(),
        ]);
        a.extend(args(extra));
        a.push(v.url.clone().into());
        let out = run_cli(&a, &[]);
        out.assert_ok();
        let meta = std::fs::metadata(&v.key_file).unwrap_or_else(|e| {
            panic!(
                "init --key-file should create {}: {e}\n{}",
                v.key_file.display(),
                out.describe()
            )
        });
        assert_eq!(
            meta.permissions().mode() & 0o777,
            0o600,
            "a key file created by init must be private (0600)"
        );
        v
    }

    /// Paths for a vault, but nothing created yet.
    pub fn uninitialized() -> CliVault {
        let dir = tempfile::Builder::new()
            .prefix("s3cryptfs-cli-")
            .tempdir()
            .expect("temp dir");
        let store_dir = dir.path().join("store");
        let url = format!("file://{}", store_dir.display());
        let key_file = dir.path().join("vault.key");
        CliVault {
            dir,
            #[cfg(feature = "fuse_tests")]
            store_dir,
            url,
            key_file,
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A new empty directory `name` in the vault's temp dir.
    pub fn new_dir(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::create_dir_all(&p).expect("create dir");
        p
    }

    /// Mounts the vault with its key file at `<tempdir>/mnt`, staging in `<tempdir>/staging`
    /// and logging to `<tempdir>/mount.log`.
    #[cfg(feature = "fuse_tests")]
    pub fn mount(&self) -> CliMount {
        self.mount_with(&[])
    }

    /// [`CliVault::mount`] with `extra` arguments first (e.g. `-o allow_other`).
    #[cfg(feature = "fuse_tests")]
    pub fn mount_with(&self, extra: &[&str]) -> CliMount {
        let mp = self.new_dir("mnt");
        let staging = self.staging_dir();
        let log = self.log_file();
        let mut a = args([OsStr::new("mount")]);
        a.extend(args(extra));
        a.extend(args([
            OsStr::new("--key-file"),
            self.key_file.as_os_str(),
            OsStr::new("--staging-dir"),
            staging.as_os_str(),
            OsStr::new("--log-file"),
            log.as_os_str(),
            OsStr::new(&self.url),
            mp.as_os_str(),
        ]));
        let mut m = CliMount::start(mp, a);
        m.log_file = Some(log);
        m
    }

    /// Where `mount` stages open files.
    #[cfg(feature = "fuse_tests")]
    pub fn staging_dir(&self) -> PathBuf {
        self.new_dir("staging")
    }

    /// Where the daemon started by `mount` logs.
    #[cfg(feature = "fuse_tests")]
    pub fn log_file(&self) -> PathBuf {
        self.dir.path().join("mount.log")
    }
}

/// A mount made by `s3cryptfs mount`; unmounted (and its daemon awaited) on drop.
#[cfg(feature = "fuse_tests")]
pub struct CliMount {
    pub mountpoint: PathBuf,
    mount_args: Vec<OsString>,
    /// The last `mount` command, whose stderr file the daemon keeps writing.
    last: Option<CliOutput>,
    /// stderr of every earlier mount of this CliMount.
    earlier_logs: String,
    /// The daemon's `--log-file`, if it was given one.
    pub log_file: Option<PathBuf>,
    /// The environment every `mount` runs with.
    env: CliEnv,
}

#[cfg(feature = "fuse_tests")]
impl CliMount {
    /// Runs `s3cryptfs MOUNT_ARGS` (MOUNT_ARGS begins with `mount`) and checks that the mount
    /// answers as soon as the command returns.
    pub fn start(mountpoint: PathBuf, mount_args: Vec<OsString>) -> CliMount {
        CliMount::start_env(mountpoint, mount_args, CliEnv::default())
    }

    /// [`CliMount::start`] with `env` applied to every `mount`.
    pub fn start_env(mountpoint: PathBuf, mount_args: Vec<OsString>, env: CliEnv) -> CliMount {
        require_fuse();
        let mut m = CliMount {
            mountpoint,
            mount_args,
            last: None,
            earlier_logs: String::new(),
            log_file: None,
            env,
        };
        m.mount();
        m
    }

    fn mount(&mut self) {
        let out = run_cli_env(&self.mount_args, &self.env);
        out.assert_ok();
        assert!(
            is_mounted(&self.mountpoint),
            "`{}` returned success but {} is not mounted: {}",
            out.command,
            self.mountpoint.display(),
            out.describe()
        );
        std::fs::read_dir(&self.mountpoint).unwrap_or_else(|e| {
            panic!(
                "the mount at {} does not answer right after `mount` returned: {e}",
                self.mountpoint.display()
            )
        });
        if let Some(prev) = self.last.take() {
            self.earlier_logs.push_str(&prev.current_stderr());
        }
        self.last = Some(out);
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.mountpoint.join(rel)
    }

    /// What the daemon logged across every mount of this CliMount: its stderr, then its
    /// log file.
    pub fn log(&self) -> String {
        let mut s = self.earlier_logs.clone();
        if let Some(o) = &self.last {
            s.push_str(&o.current_stderr());
        }
        if let Some(f) = &self.log_file {
            s.push_str(&std::fs::read_to_string(f).unwrap_or_default());
        }
        s
    }

    /// `s3cryptfs unmount`; then the mount must be gone and its daemon exited.
    pub fn unmount(&mut self) {
        if self.last.is_none() {
            return;
        }
        let out = run_cli(
            &args([OsStr::new("unmount"), self.mountpoint.as_os_str()]),
            &[],
        );
        out.assert_ok();
        assert!(
            !is_mounted(&self.mountpoint),
            "`s3cryptfs unmount` returned but {} is still mounted",
            self.mountpoint.display()
        );
        assert!(
            wait_until(Duration::from_secs(20), || daemon_pids(&self.mountpoint)
                .is_empty()),
            "the daemon serving {} is still running 20 s after unmount: pids {:?}",
            self.mountpoint.display(),
            daemon_pids(&self.mountpoint)
        );
        if let Some(prev) = self.last.take() {
            self.earlier_logs.push_str(&prev.current_stderr());
        }
    }

    /// `s3cryptfs unmount EXTRA MOUNTPOINT`, whatever it answers. Once the mount is gone
    /// this CliMount counts as unmounted (`mount_again` mounts it again).
    #[cfg(feature = "s3_tests")]
    pub fn try_unmount(&mut self, extra: &[&str]) -> CliOutput {
        let mut a = args(["unmount"]);
        a.extend(args(extra));
        a.push(self.mountpoint.clone().into());
        let out = run_cli(&a, &[]);
        if !is_mounted(&self.mountpoint) {
            if let Some(prev) = self.last.take() {
                self.earlier_logs.push_str(&prev.current_stderr());
            }
        }
        out
    }

    /// Mounts again with the same arguments after [`CliMount::try_unmount`].
    #[cfg(feature = "s3_tests")]
    pub fn mount_again(&mut self) {
        self.mount();
    }

    /// Unmounts and mounts again with the same arguments.
    pub fn remount(&mut self) {
        self.unmount();
        self.mount();
    }

    /// Requests of `kind` (`head`, `list`, `put`, ...) this mount's daemon sent so far, as
    /// `s3cryptfs status --json` reports them.
    #[cfg(feature = "s3_tests")]
    pub fn requests(&self, kind: &str) -> u64 {
        let out = run_cli(
            &[
                OsStr::new("status"),
                OsStr::new("--json"),
                self.mountpoint.as_os_str(),
            ],
            &[],
        );
        out.assert_ok();
        let json: serde_json::Value =
            serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.describe()));
        (json["requests"].as_array().into_iter().flatten())
            .find(|r| r["kind"] == kind)
            .and_then(|r| r["requests"].as_u64())
            .unwrap_or_else(|| panic!("no {kind} count in {json:#}"))
    }

    /// Pids of the daemon(s) serving this mount.
    pub fn daemon_pids(&self) -> Vec<u32> {
        daemon_pids(&self.mountpoint)
    }
}

#[cfg(feature = "fuse_tests")]
impl Drop for CliMount {
    fn drop(&mut self) {
        if self.last.is_none() {
            return;
        }
        if std::thread::panicking() {
            let _ = run_cli(
                &args([OsStr::new("unmount"), self.mountpoint.as_os_str()]),
                &[],
            );
            force_unmount(&self.mountpoint);
            for pid in daemon_pids(&self.mountpoint) {
                // SAFETY: kill(2) with a pid we found serving our own mount point.
                unsafe {
                    libc::kill(pid as i32, libc::SIGTERM);
                }
            }
        } else {
            self.unmount();
        }
    }
}
