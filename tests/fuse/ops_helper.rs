//! `mount.s3cryptfs`, the mount(8) helper: the built binary started through a symlink of that
//! name, directly and through `mount -t s3cryptfs` and an fstab line.
//!
//! mount(8) looks for helpers in /sbin only (see "EXTERNAL HELPERS" in mount(8)), not on
//! PATH, so the test of mount(8) itself installs the symlink `/sbin/mount.s3cryptfs` for its
//! duration and puts back whatever was there. That needs root; CI runs as root. As another
//! user it says so on stderr and checks only the direct calls (an unprivileged user cannot
//! run `mount -t` for a line that is not in /etc/fstab anyway). Its fstab line comes from a
//! temporary file through `LIBMOUNT_FSTAB`, never from /etc/fstab.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::cli::{args, bin, daemon_pids, run_cli};
use crate::common::{CliVault, force_unmount, is_mounted, require_fuse, wait_until};

/// What a helper or mount(8) run left behind. Output goes to files, not pipes: the daemon
/// the helper leaves running must not keep us waiting.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    command: String,
}

impl Run {
    #[track_caller]
    fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "`{}` should exit {code}:\nstdout: {}\nstderr: {}",
            self.command,
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    fn assert_stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.to_lowercase().contains(&needle.to_lowercase()),
            "`{}`: stderr should mention {needle:?}: {}",
            self.command,
            self.stderr
        );
        self
    }
}

fn read_back(mut f: File) -> String {
    let mut s = String::new();
    f.seek(SeekFrom::Start(0)).expect("seek");
    f.read_to_string(&mut s).expect("read output");
    s
}

fn run(program: &Path, argv: &[&OsStr], envs: &[(&str, &OsStr)]) -> Run {
    let out = tempfile::tempfile().expect("temp file");
    let err = tempfile::tempfile().expect("temp file");
    let mut cmd = Command::new(program);
    cmd.args(argv)
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("dup"))
        .stderr(err.try_clone().expect("dup"))
        .env("S3CRYPTFS_STATE_DIR", crate::common::state_dir())
        .env_remove("S3CRYPTFS_PASSPHRASE");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    Run {
        code: status.code(),
        stdout: read_back(out),
        stderr: read_back(err),
        command: format!(
            "{} {}",
            program.display(),
            argv.iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

/// A directory holding `mount.s3cryptfs` -> the built binary.
fn helper_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("s3cryptfs-helper-")
        .tempdir()
        .expect("temp dir");
    let link = dir.path().join("mount.s3cryptfs");
    std::os::unix::fs::symlink(bin(), &link).expect("symlink");
    (dir, link)
}

/// A config naming the vault's store, key file, staging dir and log file.
fn write_config(vault: &CliVault) -> PathBuf {
    let path = vault.dir().join("vault.toml");
    let text = format!(
        "[store]\nurl = {url:?}\n\n[encryption]\nkey_file = {key:?}\n\n[cache]\nstaging_dir = \
         {staging:?}\n\n[logging]\nfile = {log:?}\n",
        url = vault.url,
        key = vault.key_file.display().to_string(),
        staging = vault.staging_dir().display().to_string(),
        log = vault.log_file().display().to_string(),
    );
    std::fs::write(&path, text).expect("write config");
    path
}

/// Unmounts `mp` with `s3cryptfs unmount` (waiting for the daemon) when dropped, also when a
/// test fails half-way.
struct Mounted(PathBuf);

impl Mounted {
    fn unmount(&self) {
        run_cli(&args([OsStr::new("unmount"), self.0.as_os_str()]), &[]).assert_ok();
        assert!(!is_mounted(&self.0), "{} still mounted", self.0.display());
        assert!(
            wait_until(Duration::from_secs(20), || daemon_pids(&self.0).is_empty()),
            "the daemon of {} did not exit",
            self.0.display()
        );
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if is_mounted(&self.0) {
            let _ = run_cli(&args([OsStr::new("unmount"), self.0.as_os_str()]), &[]);
            force_unmount(&self.0);
        }
    }
}

/// The source of the mount at `mp`, from /proc/self/mountinfo.
fn mount_source(mp: &Path) -> Option<String> {
    let mp = mp.canonicalize().ok()?;
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().rev().find_map(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        let sep = fields.iter().position(|f| *f == "-")?;
        let point = fields.get(4)?.replace("\\040", " ");
        (Path::new(&point) == mp).then(|| fields.get(sep + 2).map(|s| s.to_string()))?
    })
}

#[test]
fn helper_mounts_with_fstab_style_options() {
    require_fuse();
    let vault = CliVault::init();
    let (_dir, helper) = helper_dir();
    let mp = vault.new_dir("mnt");
    let options = format!(
        "rw,_netdev,nofail,noauto,x-systemd.automount,x-systemd.idle-timeout=5min,\
         comment=test,defaults,key_file={},staging_dir={},log_file={}",
        vault.key_file.display(),
        vault.staging_dir().display(),
        vault.log_file().display()
    );
    let r = run(
        &helper,
        &[
            OsStr::new(&vault.url),
            mp.as_os_str(),
            OsStr::new("-o"),
            OsStr::new(&options),
        ],
        &[],
    );
    r.assert_code(0);
    let mounted = Mounted(mp.clone());
    // Returned only once ready: the mount answers right away.
    assert!(is_mounted(&mp), "not mounted after the helper returned");
    std::fs::write(mp.join("hello.txt"), b"through the helper").expect("write");
    assert_eq!(
        std::fs::read(mp.join("hello.txt")).expect("read"),
        b"through the helper"
    );
    assert_eq!(mount_source(&mp).as_deref(), Some(vault.url.as_str()));
    mounted.unmount();

    // A name as the source, with config=: the name is the mount table's source.
    let config = write_config(&vault);
    let r = run(
        &helper,
        &[
            OsStr::new("vault"),
            mp.as_os_str(),
            OsStr::new("-v"),
            OsStr::new("-o"),
            OsStr::new(&format!("config={},ro,_netdev", config.display())),
        ],
        &[],
    );
    r.assert_code(0)
        .assert_stderr_has("s3cryptfs mount --config");
    let mounted = Mounted(mp.clone());
    assert_eq!(mount_source(&mp).as_deref(), Some("vault"));
    assert_eq!(
        std::fs::read(mp.join("hello.txt")).expect("read"),
        b"through the helper"
    );
    let e = std::fs::write(mp.join("new.txt"), b"x").expect_err("read-only mount");
    assert_eq!(e.raw_os_error(), Some(libc::EROFS), "{e}");
    mounted.unmount();
}

#[test]
fn helper_failures_exit_like_mount8() {
    require_fuse();
    let vault = CliVault::init();
    let (dir, helper) = helper_dir();
    let mp = vault.new_dir("mnt");
    let config = write_config(&vault);
    let cfg_opt = format!("config={}", config.display());

    // -f: everything checked, nothing mounted.
    let r = run(
        &helper,
        &[
            OsStr::new(&vault.url),
            mp.as_os_str(),
            OsStr::new("-fv"),
            OsStr::new("-o"),
            OsStr::new(&cfg_opt),
        ],
        &[],
    );
    r.assert_code(0).assert_stderr_has("would mount");
    assert!(!is_mounted(&mp), "-f must not mount");

    // Bad options and command lines: 1.
    for (argv, needle) in [
        (vec![OsStr::new(&vault.url), mp.as_os_str()], "no key"),
        (
            vec![
                OsStr::new(&vault.url),
                mp.as_os_str(),
                OsStr::new("-o"),
                OsStr::new("compress=lz4"),
            ],
            "unknown mount option",
        ),
        (
            vec![
                OsStr::new("vault"),
                mp.as_os_str(),
                OsStr::new("-o"),
                OsStr::new("ro"),
            ],
            "not a store URL",
        ),
        (
            vec![OsStr::new(&vault.url)],
            "expected SOURCE and MOUNTPOINT",
        ),
        (
            vec![
                OsStr::new(&vault.url),
                mp.as_os_str(),
                OsStr::new("-o"),
                OsStr::new("config=/nonexistent/x.toml"),
            ],
            "/nonexistent/x.toml",
        ),
    ] {
        let r = run(&helper, &argv, &[]);
        // "no key": without a secret and without a terminal, the passphrase cannot be asked for.
        let code = if needle == "no key" { 32 } else { 1 };
        r.assert_code(code).assert_stderr_has(needle);
        assert!(!is_mounted(&mp));
    }
    // -s drops unknown options instead.
    let r = run(
        &helper,
        &[
            OsStr::new(&vault.url),
            mp.as_os_str(),
            OsStr::new("-sf"),
            OsStr::new("-o"),
            OsStr::new(&format!("{cfg_opt},compress=lz4")),
        ],
        &[],
    );
    r.assert_code(0).assert_stderr_has("compress=lz4");

    // A wrong key: 32, refused before anything is mounted.
    let wrong = dir.path().join("wrong.key");
    std::fs::write(&wrong, [7u8; 32]).expect("write key");
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let r = run(
        &helper,
        &[
            OsStr::new(&vault.url),
            mp.as_os_str(),
            OsStr::new("-o"),
            OsStr::new(&format!("{cfg_opt},key_file={}", wrong.display())),
        ],
        &[],
    );
    r.assert_code(32).assert_stderr_has("wrong key");
    assert!(!is_mounted(&mp));

    // A missing mount point: 32.
    let missing = vault.dir().join("no such dir");
    let r = run(
        &helper,
        &[
            OsStr::new(&vault.url),
            missing.as_os_str(),
            OsStr::new("-o"),
            OsStr::new(&cfg_opt),
        ],
        &[],
    );
    r.assert_code(32).assert_stderr_has("does not exist");
}

/// `/sbin/mount.s3cryptfs` -> the built binary while it lives; whatever was there before is
/// put back.
struct SbinHelper {
    path: PathBuf,
    saved: Option<PathBuf>,
}

impl SbinHelper {
    fn install() -> SbinHelper {
        let path = PathBuf::from("/sbin/mount.s3cryptfs");
        let mut saved = None;
        if path.symlink_metadata().is_ok() {
            let aside = PathBuf::from(format!(
                "/sbin/.mount.s3cryptfs.saved-{}",
                std::process::id()
            ));
            std::fs::rename(&path, &aside).expect("move the installed helper aside");
            saved = Some(aside);
        }
        std::os::unix::fs::symlink(bin(), &path).expect("install /sbin/mount.s3cryptfs");
        SbinHelper { path, saved }
    }
}

impl Drop for SbinHelper {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        if let Some(aside) = &self.saved {
            let _ = std::fs::rename(aside, &self.path);
        }
    }
}

/// Escapes a path for an fstab field (spaces and tabs as octal).
fn fstab_escape(p: &Path) -> String {
    p.display()
        .to_string()
        .replace('\\', "\\134")
        .replace(' ', "\\040")
        .replace('\t', "\\011")
}

#[test]
fn mount8_runs_the_helper_for_type_s3cryptfs_and_fstab_lines() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!(
            "mount8_runs_the_helper_for_type_s3cryptfs_and_fstab_lines: NOT RUN: it installs \
             /sbin/mount.s3cryptfs and runs mount(8), which needs root (CI runs it as root)"
        );
        return;
    }
    require_fuse();
    let vault = CliVault::init();
    let config = write_config(&vault);
    let mp = vault.new_dir("mount point");
    let _helper = SbinHelper::install();

    // mount -t s3cryptfs SOURCE DIR -o ...
    let opts = format!(
        "config={},_netdev,nofail,x-systemd.idle-timeout=1min",
        config.display()
    );
    let r = run(
        Path::new("mount"),
        &[
            OsStr::new("-t"),
            OsStr::new("s3cryptfs"),
            OsStr::new(&vault.url),
            mp.as_os_str(),
            OsStr::new("-o"),
            OsStr::new(&opts),
        ],
        &[],
    );
    r.assert_code(0);
    let mounted = Mounted(mp.clone());
    assert!(is_mounted(&mp), "mount(8) returned but nothing is mounted");
    std::fs::write(mp.join("via mount8.txt"), b"mount -t s3cryptfs").expect("write");
    // umount(8) ends the mount; the daemon then uploads what is left and exits.
    run(Path::new("umount"), &[mp.as_os_str()], &[]).assert_code(0);
    assert!(!is_mounted(&mp));
    assert!(
        wait_until(Duration::from_secs(20), || daemon_pids(&mp).is_empty()),
        "the daemon did not exit after umount"
    );
    drop(mounted);

    // An fstab line (with an escaped space in the mount point), mounted by its mount point.
    let fstab = vault.dir().join("fstab");
    std::fs::write(
        &fstab,
        format!(
            "# test fstab\n{}  {}  s3cryptfs  noauto,nofail,_netdev,x-systemd.automount,config={}  0  0\n",
            vault.url,
            fstab_escape(&mp),
            fstab_escape(&config)
        ),
    )
    .expect("write fstab");
    let r = run(
        Path::new("mount"),
        &[mp.as_os_str()],
        &[("LIBMOUNT_FSTAB", fstab.as_os_str())],
    );
    r.assert_code(0);
    let mounted = Mounted(mp.clone());
    assert_eq!(
        std::fs::read(mp.join("via mount8.txt")).expect("written before umount"),
        b"mount -t s3cryptfs"
    );
    // A second mount of the same line fails: the mount point is in use.
    let r = run(
        Path::new("mount"),
        &[mp.as_os_str()],
        &[("LIBMOUNT_FSTAB", fstab.as_os_str())],
    );
    assert_ne!(r.code, Some(0), "mounting twice should fail: {}", r.stderr);
    mounted.unmount();
}
