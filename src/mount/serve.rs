//! `s3cryptfs mount`: check the mount point, unlock the vault, build the store and file
//! system, mount through fuser, report readiness and serve until unmounted.
//!
//! Signals: SIGTERM and SIGINT upload every dirty file, then unmount (detaching the mount if
//! it is busy, in which case the process exits once the last open file is closed and
//! uploaded). SIGHUP does not stop the mount: it re-reads `[logging] level` from the config
//! file the mount started with (unless `--log-level` was given, which wins), reopens the log
//! file (for log rotation) and drops cached attributes and listings, and logs what it did.
//! Every other setting needs a new mount; a reload says which sections changed.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use fuser::MountOption;

use sd_notify::NotifyState;

use super::control::{ControlSocket, MountStatus, Report};
use super::daemon::{Failure, Readiness, daemonize, log_file, notify};
use super::error::{MountError, MountResult};
use super::logging;
use super::metrics;
use super::reload::ReloadSource;
use super::setup::{open_store, runtime};
use super::table::{PidFile, SUBTYPE, find_daemon, find_mount, is_our_mount, socket_path};
use super::unmount::{is_busy, mountpoint_path, unmount_path};
use crate::config::MountSettings;
use crate::crypto::{Secret, VaultKeys};
use crate::fs::{Fs, FsError, FsOptions};
use crate::fuse::FuseAdapter;
use crate::store::{ObjectStore, StoreUrl};
use crate::vault::secret::{SecretSource, SecretUse};
use crate::vault::{self, RollbackGuard, VaultError};

/// FUSE request reader threads; the work itself runs on the tokio runtime.
const FUSE_THREADS: usize = 2;
/// How long a new mount may take to answer its first stat.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Mount: check the mount point, read the secret (possibly asking on the terminal, before
/// detaching), then serve in the foreground or in a daemon. `failure` turns an error of the
/// daemon into the exit status and message its parent ends with.
pub fn mount(
    settings: &MountSettings,
    secret: &SecretSource,
    reload: ReloadSource,
    failure: impl FnOnce(MountError) -> Failure,
) -> MountResult<()> {
    let mut s = settings.clone();
    // No colors in a daemon's log: env_logger decides once, while stderr is still the
    // terminal.
    logging::init(s.log_level, s.foreground);
    clean_up_dead_mount(&s.mountpoint, &s.fsname);
    let checked = check_mountpoint(&s.mountpoint)?;
    s.mountpoint = checked.path.clone();
    let secret = if secret.depends_on_config() {
        choose_secret(&s, secret)
    } else {
        secret.clone()
    };
    let secret = secret.load(SecretUse::Unlock, &s.store_url.to_string())?;
    if s.foreground {
        serve(&s, checked.dev, secret, &mut Readiness::Foreground, reload)
    } else {
        let log = log_file(s.log_file.as_deref())?;
        daemonize(log, move |readiness| {
            serve(&s, checked.dev, secret, readiness, reload).map_err(failure)
        })
    }
}

/// No secret was named: read the vault config to know whether KMS unlocks it (then nothing
/// is prompted for) before the terminal is left behind. Anything wrong with the store or the
/// vault is reported by the unlock that follows, not here.
fn choose_secret(s: &MountSettings, secret: &SecretSource) -> SecretSource {
    let peek = || -> MountResult<SecretSource> {
        let rt = runtime(1)?;
        let (store, prefix) = open_store(&s.store_url, &s.store_options)?;
        let stored = rt.block_on(vault::load_config(&*store, &prefix))?;
        Ok(secret.resolve_for(&stored.config))
    };
    peek().unwrap_or_else(|_| secret.clone())
}

/// Unmount what a dead daemon of the same vault left at `mp` (it answers ENOTCONN after a
/// crash, SIGKILL or the OOM killer), so that a new mount, such as systemd's
/// `Restart=on-failure`, can take its place. Anything else is left for [`check_mountpoint`]
/// to refuse.
fn clean_up_dead_mount(mp: &Path, fsname: &str) {
    // ENOTCONN once the connection is gone; ECONNABORTED for a request caught by its end.
    match std::fs::metadata(mp).map_err(|e| e.raw_os_error()) {
        Err(Some(libc::ENOTCONN | libc::ECONNABORTED)) => {}
        _ => return,
    }
    let Ok(path) = mountpoint_path(mp) else {
        return;
    };
    let Some(entry) = find_mount(&path).ok().flatten() else {
        return;
    };
    // Mounted as root through mount(2) the type is plain `fuse`; the source names the vault.
    let same_vault = entry.source == fsname.replace(',', "%2C")
        && (entry.fstype == "fuse" || is_our_mount(&entry, false));
    if !same_vault || find_daemon(&path).is_some() {
        return;
    }
    log::warn!(
        "{} is a mount of {} whose daemon is gone (it crashed or was killed; writes not yet \
         closed or synced there are lost): unmounting it to mount again",
        path.display(),
        entry.source
    );
    if let Err(e) = unmount_path(&path, true) {
        log::warn!("cannot unmount the dead mount at {}: {e}", path.display());
    }
}

/// A mount point that passed [`check_mountpoint`].
#[derive(Debug)]
pub struct CheckedMountpoint {
    /// Canonical path.
    pub path: PathBuf,
    /// Device of the directory before mounting; a different one afterwards means mounted.
    pub dev: u64,
}

/// The mount point must exist, be a directory, not be a mount point already and be empty.
pub fn check_mountpoint(path: &Path) -> MountResult<CheckedMountpoint> {
    let bad = |reason: String| MountError::mountpoint(path, reason);
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(bad(format!(
                "does not exist; create it with `mkdir -p {}`",
                path.display()
            )));
        }
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTCONN | libc::ECONNABORTED)) => {
            return Err(bad(format!(
                "is a mount whose daemon is gone (transport endpoint not connected); clean it \
                 up with `s3cryptfs unmount {}`",
                path.display()
            )));
        }
        Err(e) => return Err(bad(e.to_string())),
    };
    if !meta.is_dir() {
        return Err(bad("is not a directory".to_owned()));
    }
    let canonical = path.canonicalize().map_err(|e| bad(e.to_string()))?;
    let Some(parent) = canonical.parent() else {
        return Err(bad("cannot mount on /".to_owned()));
    };
    if let Some(entry) = find_mount(&canonical).ok().flatten() {
        return Err(bad(format!(
            "is already a mount point ({} from {}); unmount it first",
            entry.fstype, entry.source
        )));
    }
    let parent_dev = std::fs::metadata(parent)
        .map_err(|e| bad(format!("{}: {e}", parent.display())))?
        .dev();
    if parent_dev != meta.dev() {
        return Err(bad("is already a mount point; unmount it first".to_owned()));
    }
    let mut entries = std::fs::read_dir(&canonical).map_err(|e| bad(e.to_string()))?;
    if entries.next().is_some() {
        return Err(bad(
            "is not empty (a mount would hide its files); use an empty directory".to_owned(),
        ));
    }
    Ok(CheckedMountpoint {
        path: canonical,
        dev: meta.dev(),
    })
}

fn fs_options(s: &MountSettings) -> FsOptions {
    FsOptions {
        uid: s.uid,
        gid: s.gid,
        file_mode: s.file_mode,
        dir_mode: s.dir_mode,
        metadata_ttl: s.metadata_ttl,
        settled_after: crate::fs::DEFAULT_SETTLED_AFTER,
        block_cache_bytes: s.block_cache_bytes,
        memory_limit: s.memory_limit,
        staging_dir: s.staging_dir.clone(),
        attr_cache_dir: s.attr_cache_dir.clone(),
        read_only: s.read_only,
    }
}

/// The fuser session configuration for `s`.
pub fn fuse_config(s: &MountSettings) -> fuser::Config {
    // Commas separate mount options, so none may appear inside the source name.
    let mut options = vec![
        MountOption::FSName(s.fsname.replace(',', "%2C")),
        MountOption::Subtype(SUBTYPE.to_owned()),
        if s.read_only {
            MountOption::RO
        } else {
            MountOption::RW
        },
    ];
    // The file system checks no permissions of its own (every request of the users the ACL
    // lets in is served), so with allow_other the kernel must check them, or any user could
    // read every file.
    if s.default_permissions || s.allow_other {
        options.push(MountOption::DefaultPermissions);
    }
    for flag in &s.kernel_flags {
        options.push(match flag.as_str() {
            "dev" => MountOption::Dev,
            "nodev" => MountOption::NoDev,
            "suid" => MountOption::Suid,
            "nosuid" => MountOption::NoSuid,
            "exec" => MountOption::Exec,
            "noexec" => MountOption::NoExec,
            "atime" => MountOption::Atime,
            "noatime" => MountOption::NoAtime,
            "sync" => MountOption::Sync,
            "async" => MountOption::Async,
            "dirsync" => MountOption::DirSync,
            other => MountOption::CUSTOM(other.to_owned()),
        });
    }
    let mut config = fuser::Config::default();
    config.mount_options = options;
    config.acl = if s.allow_other {
        fuser::SessionACL::All
    } else if s.allow_root {
        fuser::SessionACL::RootAndOwner
    } else {
        fuser::SessionACL::Owner
    };
    config.n_threads = Some(FUSE_THREADS);
    config
}

enum Event {
    /// SIGTERM or SIGINT: flush and unmount.
    Stop(&'static str),
    /// SIGHUP.
    Reload,
    SessionEnded(io::Result<()>),
}

/// Open the vault (a `mem://` store starts empty in every process, so its vault is created).
async fn unlock(
    store: &dyn ObjectStore,
    prefix: &str,
    secret: &Secret,
    s: &MountSettings,
) -> MountResult<VaultKeys> {
    let url = &s.store_url;
    let location = url.to_string();
    let guard = RollbackGuard::new(
        s.rollback.state_dir.clone(),
        s.rollback.accept_config_rollback,
    );
    match vault::open_vault(store, prefix, secret, &guard).await {
        Ok(keys) => Ok(keys),
        Err(VaultError::Missing { .. }) if matches!(url, StoreUrl::Memory { .. }) => {
            log::info!(
                "{location} is a new in-memory store: creating its vault (all data vanishes when the mount ends)"
            );
            let bs = crate::crypto::keys::DEFAULT_BLOCK_SIZE;
            Ok(vault::init_vault(store, prefix, secret, bs)
                .await
                .map_err(|e| e.with_location(&location))?)
        }
        Err(e) => Err(e.with_location(&location).into()),
    }
}

/// SIGHUP: re-read the vault config. Its MAC must verify under the mount's keys, and a config
/// older than one this machine has seen is refused (logged; the mount keeps the keys it
/// started with either way); a newer one is remembered.
fn recheck_vault_config(
    rt: &tokio::runtime::Runtime,
    store: &dyn ObjectStore,
    prefix: &str,
    keys: &VaultKeys,
    s: &MountSettings,
) {
    let guard = RollbackGuard::new(
        s.rollback.state_dir.clone(),
        s.rollback.accept_config_rollback,
    );
    let location = s.store_url.to_string();
    match rt.block_on(vault::recheck_config(store, prefix, keys, &guard)) {
        Ok(counter) => {
            log::info!("SIGHUP: the vault config of {location} checked (counter {counter})")
        }
        Err(e) => log::error!(
            "SIGHUP: refusing the vault config now in the store: {}; this mount keeps the keys it \
             started with",
            e.with_location(&location)
        ),
    }
}

/// Build everything, mount, report readiness and serve until unmounted.
fn serve(
    s: &MountSettings,
    dev_before: u64,
    secret: Secret,
    readiness: &mut Readiness,
    reload: ReloadSource,
) -> MountResult<()> {
    let rt = runtime(4)?;
    let url = s.store_url.to_string();
    let mp = s.mountpoint.as_path();
    if let StoreUrl::File { path } = &s.store_url {
        // Opening a directory store creates a missing directory; mount must not.
        if !path.exists() {
            return Err(VaultError::Missing { location: url }.into());
        }
    }
    let (store, prefix) = open_store(&s.store_url, &s.store_options)?;
    let keys = Arc::new(rt.block_on(unlock(&*store, &prefix, &secret, s))?);
    drop(secret);
    // What SIGHUP needs to re-check the vault config.
    let recheck = (store.clone(), prefix.clone(), keys.clone());
    let vault_id = hex::encode(keys.vault_id());
    let fs = Fs::new(store, prefix, keys, fs_options(s))?;
    let report = reporter(&fs, s, vault_id);
    if let Some(addr) = s.metrics_addr {
        let bound = rt
            .block_on(metrics::serve(addr, report.clone()))
            .map_err(MountError::io(format!("cannot serve metrics on {addr}")))?;
        log::info!("Prometheus metrics at http://{bound}/metrics");
    }

    let (events, rx) = mpsc::channel();
    {
        let events = events.clone();
        rt.spawn(async move { watch_signals(events).await });
    }
    let adapter = FuseAdapter::new(fs.clone(), rt.handle().clone())
        .with_posix_acl(s.default_permissions || s.allow_other);
    let session = fuser::Session::new(adapter, mp, &fuse_config(s)).map_err(MountError::io(
        format!("cannot mount {url} on {}", mp.display()),
    ))?;
    // From here on a mount exists; every way out below ends it.
    let pid_file = match PidFile::create(mp, &url) {
        Ok(p) => Some(p),
        Err(e) => {
            log::warn!(
                "cannot write a pid file for {}: {e}; `s3cryptfs unmount` will not wait for this process",
                mp.display()
            );
            None
        }
    };
    let control = control_socket(&rt, mp, &report);
    let session_thread = {
        let events = events.clone();
        std::thread::Builder::new()
            .name("fuse-session".into())
            .spawn(move || {
                let result = session.run();
                let _ = events.send(Event::SessionEnded(result));
            })
            .map_err(MountError::io("cannot start the FUSE session thread"))?
    };
    if let Err(e) = wait_until_mounted(mp, dev_before, READY_TIMEOUT) {
        let _ = unmount_path(mp, true);
        drop(pid_file);
        return Err(e);
    }
    let status = format!("mounted {url} at {}", mp.display());
    if let Err(e) = readiness.ready(&status) {
        log::warn!("cannot detach from the terminal: {e}");
    }
    log::info!("{status}");
    if std::env::var_os("NOTIFY_SOCKET").is_some() {
        rt.spawn(notify_status(report.clone(), status.clone()));
    }

    loop {
        match rx.recv() {
            Ok(Event::Stop(name)) => {
                log::info!(
                    "{name}: uploading open files and unmounting {}{}",
                    mp.display(),
                    rt.block_on(report())
                        .pending_summary()
                        .map(|p| format!("; still to upload: {p}"))
                        .unwrap_or_default()
                );
                notify(&[
                    NotifyState::Stopping,
                    NotifyState::Status(&format!("{name}: uploading open files")),
                ]);
                if let Err(e) = rt.block_on(fs.flush_all()) {
                    log::error!("upload before unmount failed: {e}");
                }
                match unmount_path(mp, false) {
                    Ok(()) => {}
                    Err(e) if is_busy(&e) => {
                        log::warn!(
                            "{} is busy; detaching it: open files keep working and are uploaded \
                             when closed, then this process exits",
                            mp.display()
                        );
                        if let Err(e) = unmount_path(mp, true) {
                            log::error!("cannot detach {}: {e}", mp.display());
                        }
                    }
                    Err(e) => log::error!("cannot unmount {}: {e}", mp.display()),
                }
            }
            Ok(Event::Reload) => {
                // systemd 253+ wants the monotonic time with RELOADING=1.
                let mut states = vec![NotifyState::Reloading, NotifyState::Status("reloading")];
                states.extend(NotifyState::monotonic_usec_now().ok());
                notify(&states);
                reload.apply(mp);
                let (store, prefix, keys) = &recheck;
                recheck_vault_config(&rt, &**store, prefix, keys, s);
                fs.invalidate_caches();
                log::info!(
                    "SIGHUP: dropped cached attributes and listings of {}",
                    mp.display()
                );
                notify(&[NotifyState::Ready, NotifyState::Status(&status)]);
            }
            Ok(Event::SessionEnded(result)) => {
                if let Err(e) = result {
                    log::error!("the FUSE session ended with an error: {e}");
                }
                break;
            }
            Err(mpsc::RecvError) => break,
        }
    }
    notify(&[
        NotifyState::Stopping,
        NotifyState::Status("uploading open files"),
    ]);
    let flushed = store_before_exit(&rt, &fs, &rx, &report);
    let _ = session_thread.join();
    drop(control);
    drop(report);
    drop(fs);
    rt.shutdown_timeout(Duration::from_secs(5));
    drop(pid_file);
    match flushed {
        Ok(()) => {
            log::info!("unmounted {}", mp.display());
            Ok(())
        }
        Err(e) => {
            log::error!("some files could not be uploaded at unmount: {e}");
            Err(e.into())
        }
    }
}

/// Upload every file not yet stored, and keep trying (backoff 1 s doubling to 60 s) while
/// some are not: staged data lives only in this process (its staging key is never stored), so
/// exiting would lose it, and `s3cryptfs unmount` waits for this process to report success.
/// A second SIGTERM or SIGINT gives up (logged, with how many files are lost).
fn store_before_exit(
    rt: &tokio::runtime::Runtime,
    fs: &Arc<Fs>,
    events: &mpsc::Receiver<Event>,
    report: &Report,
) -> Result<(), FsError> {
    let mut delay = Duration::from_secs(1);
    loop {
        let err = match rt.block_on(fs.flush_all()) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let unstored = rt.block_on(fs.dirty_count());
        if unstored == 0 {
            // What failed was stored meanwhile (a background retry got there first).
            return Ok(());
        }
        let status = format!("{unstored} file(s) not stored yet, retrying");
        notify(&[NotifyState::Status(&status)]);
        log::error!(
            "{unstored} file(s) are not stored yet ({err}): {}; retrying in {} s. Their data \
             exists only in this process: a second SIGTERM or SIGINT gives up and loses it",
            rt.block_on(report()).pending_summary().unwrap_or_default(),
            delay.as_secs()
        );
        match events.recv_timeout(delay) {
            Ok(Event::Stop(name)) => {
                log::error!("{name} again: exiting with {unstored} file(s) not stored");
                return Err(err);
            }
            Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            // No signal can arrive any more; keep trying.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                std::thread::sleep(delay);
            }
        }
        delay = (delay * 2).min(Duration::from_secs(60));
    }
}

/// The status report of this mount, for the control socket and the metrics.
fn reporter(fs: &Arc<Fs>, s: &MountSettings, vault_id: String) -> Report {
    let fs = fs.clone();
    let started = Instant::now();
    let mountpoint = s.mountpoint.display().to_string();
    let store_url = s.store_url.to_string();
    let socket = socket_path(&s.mountpoint).display().to_string();
    Arc::new(move || {
        let fs = fs.clone();
        let head = MountStatus {
            mountpoint: mountpoint.clone(),
            store_url: store_url.clone(),
            vault_id: vault_id.clone(),
            pid: std::process::id(),
            uptime_secs: started.elapsed().as_secs(),
            socket: socket.clone(),
            fs: Default::default(),
        };
        Box::pin(async move {
            MountStatus {
                fs: fs.status().await,
                ..head
            }
        })
    })
}

/// Bind and serve the control socket (`status`); a mount without one still works.
fn control_socket(
    rt: &tokio::runtime::Runtime,
    mp: &Path,
    report: &Report,
) -> Option<ControlSocket> {
    let path = socket_path(mp);
    let _context = rt.enter();
    match ControlSocket::bind(&path).and_then(|mut c| c.serve(report.clone()).map(|()| c)) {
        Ok(c) => Some(c),
        Err(e) => {
            log::warn!(
                "cannot open the control socket {}: {e}; `s3cryptfs status` will not reach this mount",
                path.display()
            );
            None
        }
    }
}

/// How often systemd's `STATUS=` line is brought up to date.
const NOTIFY_INTERVAL: Duration = Duration::from_secs(5);

/// Keep systemd's `STATUS=` line (`systemctl status`) saying what is pending or failing.
async fn notify_status(report: Report, mounted: String) {
    let mut last = String::new();
    loop {
        tokio::time::sleep(NOTIFY_INTERVAL).await;
        let s = report().await;
        let f = &s.fs;
        let line = if f.pending.is_empty() {
            format!("{mounted}; all files stored")
        } else {
            format!(
                "{mounted}; {} file(s) to upload ({} bytes), {} failing",
                f.pending.len(),
                f.bytes_pending,
                f.files_failed
            )
        };
        if line != last {
            notify(&[NotifyState::Status(&line)]);
            last = line;
        }
    }
}

async fn watch_signals(events: mpsc::Sender<Event>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (mut term, mut int, mut hup) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) {
        (Ok(t), Ok(i), Ok(h)) => (t, i, h),
        _ => {
            log::warn!("cannot install signal handlers; SIGTERM will not flush before exit");
            return;
        }
    };
    loop {
        let event = tokio::select! {
            _ = term.recv() => Event::Stop("SIGTERM"),
            _ = int.recv() => Event::Stop("SIGINT"),
            _ = hup.recv() => Event::Reload,
        };
        if events.send(event).is_err() {
            return;
        }
    }
}

/// Wait until a stat of `mp`, from another thread, reaches the new mount (its device
/// differs from `dev_before`).
fn wait_until_mounted(mp: &Path, dev_before: u64, timeout: Duration) -> MountResult<()> {
    let (tx, rx) = mpsc::channel();
    let path = mp.to_path_buf();
    let deadline = Instant::now() + timeout;
    std::thread::Builder::new()
        .name("mount-ready".into())
        .spawn(move || {
            loop {
                let result = match std::fs::metadata(&path) {
                    Ok(m) if m.dev() != dev_before => Ok(()),
                    Ok(_) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                    Ok(_) => Err(io::Error::other("still the plain directory")),
                    Err(e) => Err(e),
                };
                let _ = tx.send(result);
                return;
            }
        })
        .map_err(MountError::io("cannot start the readiness check"))?;
    match rx.recv_timeout(timeout + Duration::from_secs(1)) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(MountError::mountpoint(
            mp,
            format!("the new mount does not answer: {e}"),
        )),
        Err(_) => Err(MountError::mountpoint(
            mp,
            format!(
                "the new mount did not answer within {} s",
                timeout.as_secs()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MountConfig;

    #[test]
    fn mountpoint_checks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope");
        let e = check_mountpoint(&missing).expect_err("missing").to_string();
        assert!(e.contains("does not exist"), "{e}");
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").expect("write");
        let e = check_mountpoint(&file).expect_err("file").to_string();
        assert!(e.contains("not a directory"), "{e}");
        let e = check_mountpoint(dir.path())
            .expect_err("not empty")
            .to_string();
        assert!(e.contains("not empty"), "{e}");
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).expect("mkdir");
        let ok = check_mountpoint(&empty).expect("empty dir");
        assert_eq!(ok.path, empty.canonicalize().expect("canonical"));
        let e = check_mountpoint(Path::new("/proc"))
            .expect_err("mount")
            .to_string();
        assert!(e.contains("already a mount point"), "{e}");
    }

    #[test]
    fn fuse_config_from_settings() {
        let c = MountConfig::parse(
            "[store]\nurl = \"file:///a,b\"\n[mount]\nmountpoint = \"/m\"\noptions = [\"ro\", \"allow_other\", \"noexec\", \"default_permissions\"]\n",
            Path::new("t.toml"),
        )
        .expect("config")
        .merge(&Default::default())
        .expect("merge");
        let s = c.mount_settings().expect("settings");
        let f = fuse_config(&s);
        assert_eq!(f.acl, fuser::SessionACL::All);
        for o in [
            MountOption::RO,
            MountOption::NoExec,
            MountOption::DefaultPermissions,
            MountOption::Subtype("s3cryptfs".into()),
            MountOption::FSName("file:///a%2Cb".into()),
        ] {
            assert!(
                f.mount_options.contains(&o),
                "{o:?} in {:?}",
                f.mount_options
            );
        }
    }

    #[test]
    fn allow_other_implies_default_permissions() {
        let settings = |options: &str| {
            MountConfig::parse(
                &format!(
                    "[store]\nurl = \"file:///a\"\n[mount]\nmountpoint = \"/m\"\noptions = [{options}]\n"
                ),
                Path::new("t.toml"),
            )
            .expect("config")
            .merge(&Default::default())
            .expect("merge")
            .mount_settings()
            .expect("settings")
        };
        let shared = fuse_config(&settings("\"allow_other\""));
        assert_eq!(shared.acl, fuser::SessionACL::All);
        assert!(
            shared
                .mount_options
                .contains(&MountOption::DefaultPermissions),
            "{:?}",
            shared.mount_options
        );
        for private in ["", "\"allow_root\""] {
            let f = fuse_config(&settings(private));
            assert!(
                !f.mount_options.contains(&MountOption::DefaultPermissions),
                "{private}: {:?}",
                f.mount_options
            );
        }
    }
}
