//! The daemon's side of the systemd notify protocol that `Type=notify` units rely on: `READY=1`
//! only once the mount answers, `RELOADING=1`/`READY=1` around SIGHUP (which reloads the log
//! level and keeps the mount), `STOPPING=1` on SIGTERM before it uploads and unmounts. And a mount
//! whose daemon was killed is mounted again by the next start, as `Restart=on-failure` needs.
//! (The units themselves are checked in `fast::ops_systemd`.)
//!
//! systemd need not run: the notify socket here is the test's own.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common;
use crate::common::cli::{args, bin, daemon_pids, run_cli};
use crate::common::{CliVault, is_mounted, require_fuse, wait_until};

/// A `s3cryptfs mount -f` child with a notify socket of our own, as systemd would run it.
struct Notified {
    child: Child,
    socket: UnixDatagram,
    stderr: File,
    mountpoint: PathBuf,
    _dir: tempfile::TempDir,
}

impl Notified {
    fn start(argv: &[&OsStr], mountpoint: &Path) -> Notified {
        let dir = tempfile::Builder::new()
            .prefix("s3cryptfs-notify-")
            .tempdir()
            .expect("temp dir");
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).expect("bind notify socket");
        let stderr = tempfile::tempfile().expect("temp file");
        let child = Command::new(bin())
            .args(argv)
            .env("NOTIFY_SOCKET", &path)
            .env("S3CRYPTFS_STATE_DIR", crate::common::state_dir())
            .env_remove("S3CRYPTFS_PASSPHRASE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr.try_clone().expect("dup"))
            .spawn()
            .expect("start s3cryptfs mount -f");
        Notified {
            child,
            socket,
            stderr,
            mountpoint: mountpoint.to_path_buf(),
            _dir: dir,
        }
    }

    /// The next notification, or a panic with the log after `timeout`.
    fn next(&mut self, timeout: Duration) -> String {
        self.socket
            .set_read_timeout(Some(timeout))
            .expect("socket timeout");
        let mut buf = [0u8; 4096];
        match self.socket.recv(&mut buf) {
            Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
            Err(e) => panic!(
                "no notification within {timeout:?} ({e}); log:\n{}",
                self.log()
            ),
        }
    }

    fn log(&self) -> String {
        let mut f = self.stderr.try_clone().expect("dup");
        let mut s = String::new();
        f.seek(SeekFrom::Start(0)).expect("seek");
        let _ = f.read_to_string(&mut s);
        s
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) of our own child.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0);
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }
}

impl Drop for Notified {
    fn drop(&mut self) {
        if self.is_running() {
            self.signal(libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(20);
            while self.is_running() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        common::force_unmount(&self.mountpoint);
    }
}

#[test]
fn notify_protocol_reload_and_stop() {
    require_fuse();
    let vault = CliVault::init();
    let mp = vault.new_dir("mnt");
    let config = vault.dir().join("vault.toml");
    let write_config = |level: &str| {
        let text = format!(
            "[store]\nurl = {:?}\n[encryption]\nkey_file = {:?}\n[mount]\nmountpoint = {:?}\n\
             [cache]\nstaging_dir = {:?}\n[logging]\nlevel = {level:?}\n",
            vault.url,
            vault.key_file.display().to_string(),
            mp.display().to_string(),
            vault.staging_dir().display().to_string(),
        );
        std::fs::write(&config, text).expect("write config");
    };
    write_config("info");
    // The unit's command line.
    let mut d = Notified::start(
        &[
            OsStr::new("mount"),
            OsStr::new("-f"),
            OsStr::new("--config"),
            config.as_os_str(),
        ],
        &mp,
    );

    // READY=1 comes only once the mount answers.
    let ready = d.next(Duration::from_secs(60));
    assert!(
        ready.lines().any(|l| l == "READY=1"),
        "first notification: {ready:?}"
    );
    assert!(is_mounted(&mp), "READY=1 before the mount exists");
    std::fs::read_dir(&mp).expect("the mount answers at READY=1");
    assert!(ready.contains("STATUS=mounted"), "{ready:?}");

    // At info, a lookup of a missing name logs nothing; after SIGHUP with level debug it does.
    assert!(!mp.join("missing-before").exists());
    assert!(
        !d.log().contains(" DEBUG "),
        "debug lines at info:\n{}",
        d.log()
    );
    write_config("debug");
    d.signal(libc::SIGHUP);
    assert!(d.next(Duration::from_secs(20)).contains("RELOADING=1"));
    assert!(d.next(Duration::from_secs(20)).contains("READY=1"));
    assert!(d.is_running(), "SIGHUP must not stop the mount");
    assert!(is_mounted(&mp));
    assert!(!mp.join("missing-after").exists());
    assert!(
        wait_until(Duration::from_secs(5), || d.log().contains(" DEBUG ")),
        "after the reload to debug, a failed lookup should be logged:\n{}",
        d.log()
    );
    let log = d.log();
    assert!(
        log.contains("log level debug (was info)"),
        "the reload should say what it changed:\n{log}"
    );

    // A broken config is reported, and the mount keeps its settings.
    std::fs::write(&config, "[logging]\nlevel = \"loud\"\n").expect("write config");
    d.signal(libc::SIGHUP);
    assert!(d.next(Duration::from_secs(20)).contains("RELOADING=1"));
    assert!(d.next(Duration::from_secs(20)).contains("READY=1"));
    assert!(
        wait_until(Duration::from_secs(5), || d.log().contains("not reloaded")),
        "{}",
        d.log()
    );
    assert!(d.is_running());

    // SIGTERM: STOPPING=1, then every file is stored and the mount is gone.
    std::fs::write(mp.join("written.txt"), b"before SIGTERM").expect("write");
    d.signal(libc::SIGTERM);
    assert!(d.next(Duration::from_secs(20)).contains("STOPPING=1"));
    let status = d.child.wait().expect("wait");
    assert!(
        status.success(),
        "exit after SIGTERM: {status}\n{}",
        d.log()
    );
    assert!(!is_mounted(&mp));
    let mut again = vault.mount();
    assert_eq!(
        std::fs::read(again.path("written.txt")).expect("read"),
        b"before SIGTERM"
    );
    again.unmount();
}

#[test]
fn a_mount_whose_daemon_was_killed_is_mounted_again() {
    require_fuse();
    let vault = CliVault::init();
    let m = vault.mount();
    std::fs::write(m.path("kept.txt"), b"closed before the crash").expect("write");
    let mp = m.mountpoint.clone();
    let pids = m.daemon_pids();
    assert_eq!(pids.len(), 1, "one daemon: {pids:?}");
    // SAFETY: kill(2) of the daemon serving our own mount.
    unsafe { libc::kill(pids[0] as i32, libc::SIGKILL) };
    assert!(wait_until(Duration::from_secs(10), || daemon_pids(&mp).is_empty()));
    let e = std::fs::metadata(&mp).expect_err("a dead mount");
    assert!(
        matches!(e.raw_os_error(), Some(libc::ENOTCONN | libc::ECONNABORTED)),
        "a dead mount should answer ENOTCONN: {e}"
    );
    // What systemd's Restart=on-failure does: start the same mount again.
    let log = vault.log_file();
    let out = run_cli(
        &args([
            OsStr::new("mount"),
            OsStr::new("--key-file"),
            vault.key_file.as_os_str(),
            OsStr::new("--staging-dir"),
            vault.staging_dir().as_os_str(),
            OsStr::new("--log-file"),
            log.as_os_str(),
            OsStr::new(&vault.url),
            mp.as_os_str(),
        ]),
        &[],
    );
    out.assert_ok();
    // The old CliMount's daemon is gone; the new mount is checked and unmounted below.
    std::mem::forget(m);
    assert!(is_mounted(&mp));
    assert_eq!(
        std::fs::read(mp.join("kept.txt")).expect("read"),
        b"closed before the crash"
    );
    let text = std::fs::read_to_string(&log).unwrap_or_default() + &out.stderr;
    assert!(text.contains("whose daemon is gone"), "{text}");
    run_cli(&args([OsStr::new("unmount"), mp.as_os_str()]), &[]).assert_ok();
    assert!(!is_mounted(&mp));
}

/// SIGHUP re-reads the vault config: a `key rotate` made meanwhile is remembered, and the
/// older config put back afterwards is refused (logged as a rollback; the mount goes on with
/// the keys it started with).
#[test]
fn sighup_refuses_a_config_rollback() {
    use s3cryptfs::store::{DirStore, ObjectStore, PutOptions};
    require_fuse();
    let vault = CliVault::init();
    let mp = vault.new_dir("mnt");
    let store = DirStore::open(&vault.store_dir).expect("dir store");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let config_key = ".s3cryptfs/config";
    let before = rt
        .block_on(store.get(config_key, None, None))
        .expect("get config")
        .data;
    let mut d = Notified::start(
        &[
            OsStr::new("mount"),
            OsStr::new("-f"),
            OsStr::new("--key-file"),
            vault.key_file.as_os_str(),
            OsStr::new("--staging-dir"),
            vault.staging_dir().as_os_str(),
            OsStr::new(&vault.url),
            mp.as_os_str(),
        ],
        &mp,
    );
    assert!(d.next(Duration::from_secs(60)).contains("READY=1"));

    run_cli(
        &args([
            OsStr::new("key"),
            OsStr::new("rotate"),
            OsStr::new("--key-file"),
            vault.key_file.as_os_str(),
            OsStr::new(&vault.url),
        ]),
        &[],
    )
    .assert_ok();
    d.signal(libc::SIGHUP);
    assert!(d.next(Duration::from_secs(20)).contains("RELOADING=1"));
    assert!(d.next(Duration::from_secs(20)).contains("READY=1"));
    assert!(
        wait_until(Duration::from_secs(5), || d
            .log()
            .contains("vault config of")
            && d.log().contains("checked (counter 1)")),
        "{}",
        d.log()
    );

    rt.block_on(store.put(config_key, before, PutOptions::default()))
        .expect("put the old config back");
    d.signal(libc::SIGHUP);
    assert!(d.next(Duration::from_secs(20)).contains("RELOADING=1"));
    assert!(d.next(Duration::from_secs(20)).contains("READY=1"));
    assert!(
        wait_until(Duration::from_secs(5), || d
            .log()
            .contains("config rollback detected")),
        "{}",
        d.log()
    );
    assert!(d.log().contains("(seen 1, got 0)"), "{}", d.log());
    assert!(d.is_running(), "a refused config does not stop the mount");
    std::fs::write(mp.join("after.txt"), b"still mounted").expect("write");
}
