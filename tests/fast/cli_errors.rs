//! The command line end to end: bad input is refused with a message naming what is wrong and
//! a non-zero exit, before anything is mounted; the documented ways of giving a secret work.
//! What needs a mount to check (a wrong key refused, then the right one mounting; `-f`, `-o ro`,
//! a busy unmount) is `fuse::cli_mount`, which shares these helpers.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::common::cli::{CliOutput, args, daemon_pids, run_cli};
use crate::common::{CliVault, is_mounted};

/// `mount KEY_FLAG KEY URL MOUNTPOINT`, staging next to the mount point (never in the
/// machine-wide default).
pub(crate) fn mount_args(
    key_flag: &str,
    key: &Path,
    url: &str,
    mountpoint: &Path,
) -> Vec<OsString> {
    let staging = staging_for(mountpoint);
    args([
        OsStr::new("mount"),
        OsStr::new(key_flag),
        key.as_os_str(),
        OsStr::new("--staging-dir"),
        staging.as_os_str(),
        OsStr::new(url),
        mountpoint.as_os_str(),
    ])
}

pub(crate) fn staging_for(mountpoint: &Path) -> std::path::PathBuf {
    let mut name = mountpoint.file_name().unwrap_or_default().to_owned();
    name.push(".staging");
    let p = mountpoint.with_file_name(name);
    fs::create_dir_all(&p).expect("create staging dir");
    p
}

/// A failed mount left nothing behind: no mount, no daemon.
#[track_caller]
pub(crate) fn assert_not_mounted(mp: &Path, out: &CliOutput) {
    assert!(
        !is_mounted(mp),
        "{} is mounted after a failed mount: {}",
        mp.display(),
        out.describe()
    );
    assert!(
        daemon_pids(mp).is_empty(),
        "a daemon for {} is running after a failed mount",
        mp.display()
    );
}

pub(crate) fn write_private(path: &Path, contents: &[u8]) {
    fs::write(path, contents).expect("write");
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).expect("chmod 600");
}

/// Exit statuses the CLI documents (`s3cryptfs --help`).
const EXIT_USAGE: i32 = 2;

#[test]
fn init_with_passphrase_from_env() {
    let v = CliVault::uninitialized();
    let out = run_cli(
        &args([OsStr::new("init"), OsStr::new(&v.url)]),
        &[("S3CRYPTFS_PASSPHRASE", OsStr::new("from the environment"))],
    );
    out.assert_ok();
    assert!(
        !out.stdout.contains("from the environment")
            && !out.stderr.contains("from the environment"),
        "the passphrase must never be printed"
    );
}

#[test]
fn init_without_any_secret_fails_without_a_terminal() {
    let v = CliVault::uninitialized();
    let out = run_cli(&args([OsStr::new("init"), OsStr::new(&v.url)]), &[]);
    out.assert_failed();
    assert!(
        !out.stderr.trim().is_empty(),
        "says why: {}",
        out.describe()
    );
}

#[test]
fn missing_mountpoint_is_refused() {
    let v = CliVault::init();
    let mp = v.dir().join("no-such-dir");
    let out = run_cli(&mount_args("--key-file", &v.key_file, &v.url, &mp), &[]);
    out.assert_failed()
        .assert_stderr_has(&[&mp.display().to_string()]);
    assert!(!mp.exists(), "mount must not create the mount point");
}

#[test]
fn non_empty_mountpoint_is_refused() {
    let v = CliVault::init();
    let mp = v.new_dir("busy");
    fs::write(mp.join("existing.txt"), b"do not hide me").expect("write");
    let out = run_cli(&mount_args("--key-file", &v.key_file, &v.url, &mp), &[]);
    out.assert_failed()
        .assert_stderr_has(&[&mp.display().to_string(), "not empty"]);
    assert_not_mounted(&mp, &out);
    assert_eq!(
        fs::read(mp.join("existing.txt")).expect("read"),
        b"do not hide me"
    );
}

#[test]
fn mountpoint_that_is_a_file_is_refused() {
    let v = CliVault::init();
    let mp = v.dir().join("a-file");
    fs::write(&mp, b"x").expect("write");
    let out = run_cli(&mount_args("--key-file", &v.key_file, &v.url, &mp), &[]);
    out.assert_failed()
        .assert_stderr_has(&[&mp.display().to_string()]);
}

#[test]
fn malformed_store_urls_are_refused() {
    let v = CliVault::init();
    let mp = v.new_dir("mnt");
    for url in [
        "not-a-url",
        "bogus://bucket",
        "file://relative/path",
        "file:",
        "/absolute/path/without/scheme",
    ] {
        let out = run_cli(&mount_args("--key-file", &v.key_file, url, &mp), &[]);
        out.assert_failed().assert_stderr_has(&[url]);
        assert_not_mounted(&mp, &out);
        let init_key = v.dir().join("init.key");
        let out = run_cli(
            &args([
                OsStr::new("init"),
                OsStr::new("--key-file"),
                init_key.as_os_str(),
                OsStr::new(url),
            ]),
            &[],
        );
        out.assert_failed().assert_stderr_has(&[url]);
    }
}

#[test]
fn missing_vault_is_refused() {
    let v = CliVault::init();
    let empty = v.new_dir("empty-store");
    let url = format!("file://{}", empty.display());
    let mp = v.new_dir("mnt");
    let out = run_cli(&mount_args("--key-file", &v.key_file, &url, &mp), &[]);
    out.assert_failed().assert_stderr_has(&["vault", "init"]);
    assert_not_mounted(&mp, &out);

    let nowhere = v.dir().join("no/such/store");
    let url = format!("file://{}", nowhere.display());
    let out = run_cli(&mount_args("--key-file", &v.key_file, &url, &mp), &[]);
    out.assert_failed();
    assert_not_mounted(&mp, &out);
    assert!(!nowhere.exists(), "mount must not create a store");
}

#[test]
fn world_readable_key_file_is_refused() {
    let v = CliVault::init();
    fs::set_permissions(&v.key_file, fs::Permissions::from_mode(0o644)).expect("chmod 644");
    let mp = v.new_dir("mnt");
    let out = run_cli(&mount_args("--key-file", &v.key_file, &v.url, &mp), &[]);
    out.assert_failed()
        .assert_stderr_has(&[&v.key_file.display().to_string()]);
    assert_not_mounted(&mp, &out);

    // The same through the config file.
    let config = v.dir().join("s3cryptfs.toml");
    write_private(
        &config,
        format!(
            "[store]\nurl = \"{}\"\n\n[encryption]\nkey_file = \"{}\"\n",
            v.url,
            v.key_file.display()
        )
        .as_bytes(),
    );
    let out = run_cli(
        &args([
            OsStr::new("mount"),
            OsStr::new("--config"),
            config.as_os_str(),
            OsStr::new("--staging-dir"),
            staging_for(&mp).as_os_str(),
            OsStr::new(&v.url),
            mp.as_os_str(),
        ]),
        &[],
    );
    out.assert_failed()
        .assert_stderr_has(&[&v.key_file.display().to_string()]);
    assert_not_mounted(&mp, &out);

    // And init refuses an existing world-readable key file.
    let v2 = CliVault::uninitialized();
    write_private(&v2.key_file, &[9u8; 32]);
    fs::set_permissions(&v2.key_file, fs::Permissions::from_mode(0o604)).expect("chmod");
    let out = run_cli(
        &args([
            OsStr::new("init"),
            OsStr::new("--key-file"),
            v2.key_file.as_os_str(),
            OsStr::new(&v2.url),
        ]),
        &[],
    );
    out.assert_failed()
        .assert_stderr_has(&[&v2.key_file.display().to_string()]);
}

fn mount_with_config(v: &CliVault, toml: &str) -> (CliOutput, std::path::PathBuf) {
    let config = v.dir().join("bad.toml");
    write_private(&config, toml.as_bytes());
    let mp = v.new_dir("mnt");
    let out = run_cli(
        &args([
            OsStr::new("mount"),
            OsStr::new("--config"),
            config.as_os_str(),
            OsStr::new("--key-file"),
            v.key_file.as_os_str(),
            OsStr::new("--staging-dir"),
            staging_for(&mp).as_os_str(),
            OsStr::new(&v.url),
            mp.as_os_str(),
        ]),
        &[],
    );
    (out, mp)
}

#[test]
fn config_with_unknown_field_is_refused_naming_it() {
    let v = CliVault::init();
    for (toml, field) in [
        ("[mount]\nfrobnicate_level = 3\n", "frobnicate_level"),
        ("[cache]\nnot_a_cache_option = true\n", "not_a_cache_option"),
        ("[bogus_section]\nx = 1\n", "bogus_section"),
    ] {
        let (out, mp) = mount_with_config(&v, toml);
        out.assert_failed().assert_stderr_has(&[field]);
        assert_eq!(out.status.code(), Some(EXIT_USAGE), "{}", out.describe());
        assert_not_mounted(&mp, &out);
    }
}

#[test]
fn config_with_wrong_type_is_refused_naming_the_field() {
    let v = CliVault::init();
    let (out, mp) = mount_with_config(&v, "[store]\nurl = 42\n");
    out.assert_failed().assert_stderr_has(&["url"]);
    assert_eq!(out.status.code(), Some(EXIT_USAGE), "{}", out.describe());
    assert_not_mounted(&mp, &out);
}

#[test]
fn unmount_of_something_not_mounted_fails() {
    let v = CliVault::uninitialized();
    let dir = v.new_dir("plain-dir");
    let out = run_cli(&args([OsStr::new("unmount"), dir.as_os_str()]), &[]);
    out.assert_failed()
        .assert_stderr_has(&[&dir.display().to_string()]);
}

#[test]
fn help_lists_the_implemented_subcommands() {
    let out = run_cli(&["--help"], &[]);
    out.assert_ok();
    for sub in ["init", "mount", "unmount"] {
        assert!(
            out.stdout.contains(sub),
            "--help mentions {sub}:\n{}",
            out.stdout
        );
    }
    for sub in ["init", "mount", "unmount"] {
        run_cli(&[sub, "--help"], &[]).assert_ok();
    }
}

/// Server-side encryption exists only for `s3://` stores: asking a local directory store for
/// it must fail, never silently mount without it.
#[test]
fn sse_on_a_directory_store_is_refused() {
    let v = CliVault::init();
    let mp = v.new_dir("mnt");
    for mode in ["s3", "kms", "c"] {
        let mut a = mount_args("--key-file", &v.key_file, &v.url, &mp);
        a.insert(1, OsString::from("--sse"));
        a.insert(2, OsString::from(mode));
        let out = run_cli(&a, &[]);
        out.assert_failed().assert_stderr_has(&["sse"]);
        assert_not_mounted(&mp, &out);
    }
}
