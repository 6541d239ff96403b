//! The command line end to end where checking it takes a mount: a wrong key or passphrase is
//! refused before mounting and the right one then mounts, `init` never overwrites a vault, a
//! config file supplies store and key, `mount -f` ends on unmount and SIGTERM, `-o ro` refuses
//! writes, and a busy mount refuses to unmount. The refusals that need no mount are
//! `fast::cli_errors`.

use std::ffi::{OsStr, OsString};
use std::fs;

use crate::common;
use crate::common::cli::{CliOutput, args, daemon_pids, run_cli};
use crate::common::{CliMount, CliVault, is_mounted};
use crate::fast::cli_errors::{assert_not_mounted, mount_args, staging_for, write_private};

/// Exit status the CLI documents (`s3cryptfs --help`) for a wrong key.
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
    // The daemon took the passphrase out of its environment: /proc/PID/environ (readable by
    // root, and by the same user while the process is dumpable) shows neither the variable
    // nor the passphrase.
    let pids = daemon_pids(&mp);
    let environs: Vec<(u32, std::io::Result<Vec<u8>>)> = pids
        .iter()
        .map(|pid| (*pid, fs::read(format!("/proc/{pid}/environ"))))
        .collect();
    // And it cannot dump core (no --allow-core-dumps): both limits are 0.
    let limits: Vec<String> = pids
        .iter()
        .map(|pid| fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default())
        .collect();
    let read = fs::read(mp.join("hello.txt"));
    run_cli(&args([OsStr::new("unmount"), mp.as_os_str()]), &[]).assert_ok();
    assert_eq!(read.expect("read hello.txt"), b"hello");
    assert!(!environs.is_empty(), "no daemon serves {}", mp.display());
    for (pid, environ) in environs {
        let environ = environ.unwrap_or_else(|e| panic!("/proc/{pid}/environ: {e}"));
        let shown = String::from_utf8_lossy(&environ);
        assert!(
            !shown.contains("S3CRYPTFS_PASSPHRASE") && !shown.contains("battery staple"),
            "the passphrase is still in the environment of daemon {pid}: {shown:?}"
        );
        assert!(
            shown.contains("RUST_BACKTRACE=0"),
            "the rest of the environment is kept: {shown:?}"
        );
    }
    for text in limits {
        let core = text
            .lines()
            .find(|l| l.starts_with("Max core file size"))
            .unwrap_or_default();
        let fields: Vec<&str> = core.split_whitespace().collect();
        assert_eq!(fields.get(4..6), Some(&["0", "0"][..]), "{core:?}");
    }
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
            .env("S3CRYPTFS_STATE_DIR", common::state_dir())
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

/// The super options (the file system's own, after the source) of the mount on top of `mp`.
fn super_options(mp: &std::path::Path) -> Option<String> {
    let mp = mp.canonicalize().ok()?;
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut found = None;
    for line in info.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        // A mount point with a space would be escaped (\040); the test's has none.
        if fields.get(4).map(std::path::Path::new) == Some(mp.as_path()) {
            found = fields.get(sep + 3).map(|s| (*s).to_owned());
        }
    }
    found
}

/// s3cryptfs checks no permissions itself, so a mount other users may enter must have the
/// kernel check them: `-o allow_other` alone mounts with default_permissions.
#[test]
fn allow_other_mounts_with_default_permissions() {
    common::require_fuse();
    let v = CliVault::init();
    let mp = v.new_dir("mnt");
    let mut a = mount_args("--key-file", &v.key_file, &v.url, &mp);
    a.insert(1, OsString::from("-o"));
    a.insert(2, OsString::from("allow_other"));
    let mut m = CliMount::start(mp.clone(), a);
    let options = super_options(&mp);
    m.unmount();
    let options = options.expect("the mount in /proc/self/mountinfo");
    for wanted in ["allow_other", "default_permissions"] {
        assert!(
            options.split(',').any(|o| o == wanted),
            "{wanted} in {options}"
        );
    }
}
