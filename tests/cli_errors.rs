//! The command line end to end: bad input is refused with a message naming what is wrong and
//! a non-zero exit, before anything is mounted; the documented ways of giving a secret work.

mod common;

use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::cli::{CliOutput, args, daemon_pids, run_cli};
use common::{CliMount, CliVault, is_mounted};

/// `mount KEY_FLAG KEY URL MOUNTPOINT`, staging next to the mount point (never in the
/// machine-wide default).
fn mount_args(key_flag: &str, key: &Path, url: &str, mountpoint: &Path) -> Vec<OsString> {
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

fn staging_for(mountpoint: &Path) -> std::path::PathBuf {
    let mut name = mountpoint.file_name().unwrap_or_default().to_owned();
    name.push(".staging");
    let p = mountpoint.with_file_name(name);
    fs::create_dir_all(&p).expect("create staging dir");
    p
}

/// Exit statuses the CLI documents (`s3cryptfs --help`).
const EXIT_USAGE: i32 = 2;
const EXIT_WRONG_KEY: i32 = 3;

#[track_caller]
fn assert_wrong_key(out: &CliOutput) {
    out.assert_failed().assert_stderr_has(&["wrong key"]);
    assert_eq!(
        out.status.code(),
        Some(EXIT_WRONG_KEY),
        "exit status for a wrong key: {}",
        out.describe()
    );
}

/// A failed mount left nothing behind: no mount, no daemon.
#[track_caller]
fn assert_not_mounted(mp: &Path, out: &CliOutput) {
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

fn write_private(path: &Path, contents: &[u8]) {
    fs::write(path, contents).expect("write");
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).expect("chmod 600");
}

#[test]
fn wrong_key_file_is_refused_before_mounting() {
    common::require_fuse();
    let v = CliVault::init();
    let other_key = v.dir().join("other.key");
    write_private(&other_key, &[0x42u8; 32]);
    let mp = v.new_dir("mnt");
    let out = run_cli(&mount_args("--key-file", &other_key, &v.url, &mp), &[]);
    assert_wrong_key(&out);
    assert_not_mounted(&mp, &out);
    // The right key still works afterwards.
    let mut m = v.mount();
    fs::write(m.path("ok.txt"), b"ok").expect("write");
    m.unmount();
}

#[test]
fn wrong_passphrase_is_refused_and_passphrase_from_env_works() {
    common::require_fuse();
    let v = CliVault::uninitialized();
    let pass = v.dir().join("pass.txt");
    write_private(&pass, b"correct horse battery staple\n");
    run_cli(
        &args([
            OsStr::new("init"),
            OsStr::new("--passphrase-file"),
            pass.as_os_str(),
            OsStr::new(&v.url),
        ]),
        &[],
    )
    .assert_ok();

    let wrong = v.dir().join("wrong.txt");
    write_private(&wrong, b"incorrect horse\n");
    let mp = v.new_dir("mnt");
    let out = run_cli(&mount_args("--passphrase-file", &wrong, &v.url, &mp), &[]);
    assert_wrong_key(&out);
    assert_not_mounted(&mp, &out);

    // The same passphrase from the environment (no file, no prompt: stdin is not a terminal).
    let staging = staging_for(&mp);
    let env_args = args([
        OsStr::new("mount"),
        OsStr::new("--staging-dir"),
        staging.as_os_str(),
        OsStr::new(&v.url),
        mp.as_os_str(),
    ]);
    let out = run_cli(
        &env_args,
        &[("S3CRYPTFS_PASSPHRASE", OsStr::new("incorrect horse"))],
    );
    assert_wrong_key(&out);
    assert_not_mounted(&mp, &out);

    let mut m = CliMount::start(
        mp.clone(),
        mount_args("--passphrase-file", &pass, &v.url, &mp),
    );
    fs::write(m.path("hello.txt"), b"hello").expect("write");
    m.unmount();
    let out = run_cli(
        &env_args,
        &[(
            "S3CRYPTFS_PASSPHRASE",
            OsStr::new("correct horse battery staple"),
        )],
    );
    out.assert_ok();
    assert!(
        is_mounted(&mp),
        "mounted with the passphrase from S3CRYPTFS_PASSPHRASE"
    );
    let read = fs::read(mp.join("hello.txt"));
    run_cli(&args([OsStr::new("unmount"), mp.as_os_str()]), &[]).assert_ok();
    assert_eq!(read.expect("read hello.txt"), b"hello");
}

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
fn init_refuses_to_overwrite_an_existing_vault() {
    common::require_fuse();
    let v = CliVault::init();
    let other_key = v.dir().join("other.key");
    let out = run_cli(
        &args([
            OsStr::new("init"),
            OsStr::new("--key-file"),
            other_key.as_os_str(),
            OsStr::new(&v.url),
        ]),
        &[],
    );
    out.assert_failed();
    // The original key still opens the vault.
    let mut m = v.mount();
    m.unmount();
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
fn config_file_supplies_store_and_key() {
    common::require_fuse();
    let v = CliVault::init();
    let config = v.dir().join("good.toml");
    write_private(
        &config,
        format!(
            "[store]\nurl = \"{}\"\n\n[encryption]\nkey_file = \"{}\"\n",
            v.url,
            v.key_file.display()
        )
        .as_bytes(),
    );
    let mp = v.new_dir("mnt");
    let mut m = CliMount::start(
        mp.clone(),
        args([
            OsStr::new("mount"),
            OsStr::new("--config"),
            config.as_os_str(),
            OsStr::new("--staging-dir"),
            staging_for(&mp).as_os_str(),
            OsStr::new(&v.url),
            mp.as_os_str(),
        ]),
    );
    fs::write(m.path("via-config.txt"), b"yes").expect("write");
    m.remount();
    assert_eq!(fs::read(m.path("via-config.txt")).expect("read"), b"yes");
    m.unmount();
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

/// Waits up to `timeout` for `child` to exit; kills it and panics otherwise.
fn wait_exit(
    child: &mut std::process::Child,
    timeout: std::time::Duration,
) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            return s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the foreground mount did not exit within {timeout:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// `mount -f` serves in the foreground until `unmount`, or until SIGTERM, and in both cases
/// exits 0 with every written file stored.
#[test]
fn foreground_mount_ends_on_unmount_and_on_sigterm() {
    use std::process::{Command, Stdio};
    use std::time::Duration;
    common::require_fuse();
    let v = CliVault::init();
    let mp = v.new_dir("mnt");
    let mut fg_args = mount_args("--key-file", &v.key_file, &v.url, &mp);
    fg_args.insert(1, OsString::from("-f"));
    let spawn = || {
        Command::new(common::cli::bin())
            .args(&fg_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn s3cryptfs mount -f")
    };

    let mut child = spawn();
    assert!(
        common::wait_until(Duration::from_secs(30), || is_mounted(&mp)),
        "mount -f did not mount within 30 s"
    );
    fs::write(mp.join("one.txt"), b"first").expect("write");
    run_cli(&args([OsStr::new("unmount"), mp.as_os_str()]), &[]).assert_ok();
    let status = wait_exit(&mut child, Duration::from_secs(30));
    assert!(
        status.success(),
        "mount -f after unmount exited with {status}"
    );
    assert!(!is_mounted(&mp));

    let mut child = spawn();
    assert!(
        common::wait_until(Duration::from_secs(30), || is_mounted(&mp)),
        "mount -f did not mount within 30 s"
    );
    {
        // Written, closed, then SIGTERM: the daemon unmounts and exits cleanly.
        let mut f = fs::File::create(mp.join("two.txt")).expect("create");
        std::io::Write::write_all(&mut f, b"second").expect("write");
    }
    // SAFETY: kill(2) on the child we spawned.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = wait_exit(&mut child, Duration::from_secs(30));
    assert!(
        status.success(),
        "mount -f after SIGTERM exited with {status}"
    );
    assert!(
        common::wait_until(Duration::from_secs(10), || !is_mounted(&mp)),
        "still mounted after SIGTERM"
    );

    let mut m = v.mount();
    assert_eq!(fs::read(m.path("one.txt")).expect("read one"), b"first");
    assert_eq!(fs::read(m.path("two.txt")).expect("read two"), b"second");
    m.unmount();
}

/// `-o ro` mounts read-only: reads work, every kind of write fails with EROFS.
#[test]
fn read_only_mount_refuses_writes() {
    common::require_fuse();
    let v = CliVault::init();
    let mut m = v.mount();
    fs::write(m.path("existing.txt"), b"data").expect("write");
    m.unmount();
    let mp = v.new_dir("ro-mnt");
    let mut ro_args = mount_args("--key-file", &v.key_file, &v.url, &mp);
    ro_args.insert(1, OsString::from("-o"));
    ro_args.insert(2, OsString::from("ro"));
    let mut ro = CliMount::start(mp.clone(), ro_args);
    assert_eq!(fs::read(mp.join("existing.txt")).expect("read"), b"data");
    common::assert_errno("create", fs::write(mp.join("new.txt"), b"x"), libc::EROFS);
    common::assert_errno(
        "write",
        fs::OpenOptions::new()
            .write(true)
            .open(mp.join("existing.txt")),
        libc::EROFS,
    );
    common::assert_errno("mkdir", fs::create_dir(mp.join("d")), libc::EROFS);
    common::assert_errno(
        "unlink",
        fs::remove_file(mp.join("existing.txt")),
        libc::EROFS,
    );
    ro.unmount();
}

/// `unmount` while a file is open fails with a message saying the mount is busy, and leaves
/// the mount working; once the file is closed, `unmount` succeeds and the data is stored.
#[test]
fn unmount_of_a_busy_mount_fails_and_keeps_it() {
    common::require_fuse();
    let v = CliVault::init();
    let mut m = v.mount();
    let mut open = fs::File::create(m.path("open.txt")).expect("create");
    std::io::Write::write_all(&mut open, b"still open").expect("write");
    let out = run_cli(
        &args([OsStr::new("unmount"), m.mountpoint.as_os_str()]),
        &[],
    );
    out.assert_failed().assert_stderr_has(&["busy"]);
    assert!(
        is_mounted(&m.mountpoint),
        "a failed unmount keeps the mount"
    );
    assert_eq!(fs::read(m.path("open.txt")).expect("read"), b"still open");
    drop(open);
    m.remount();
    assert_eq!(fs::read(m.path("open.txt")).expect("read"), b"still open");
}
