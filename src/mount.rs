//! The commands' lifecycles: `init`, `mount` (check the mount point, unlock, build store and
//! file system, mount through fuser, signal readiness, serve until SIGTERM/SIGINT or an
//! external unmount, flush) and `unmount`.
//!
//! Background mounts fork before any thread exists (before the tokio runtime): the parent
//! waits on a pipe for one readiness byte, or an exit code and message, from the child, so
//! `s3cryptfs mount` returns once the mount answers and fails with the real error otherwise.
//! The daemon writes a pid file named after its mount point (`/run/s3cryptfs/` for root,
//! `$XDG_RUNTIME_DIR/s3cryptfs/` otherwise); `unmount` unmounts the kernel mount and then
//! waits for that process to exit, which it does only after flushing every file.

use std::ffi::{CString, OsStr};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use fuser::MountOption;
use md5::{Digest, Md5};

use crate::cli::{Cli, Command, GlobalArgs, InitArgs, MountArgs};
use crate::config::{ConfigError, LogLevel, MountConfig, MountSettings};
use crate::crypto::{Secret, VaultKeys};
use crate::fs::fuse::FuseAdapter;
use crate::fs::{Fs, FsError, FsOptions};
use crate::store::{self, ObjectStore, StoreError, StoreUrl};
use crate::vault::{self, SecretUse, VaultError};

/// Exit status for errors not covered below.
pub const EXIT_FAILURE: i32 = 1;
/// Exit status for a bad command line (clap) or config.
pub const EXIT_USAGE: i32 = 2;
/// Exit status when the key file or passphrase does not unlock the vault.
pub const EXIT_WRONG_KEY: i32 = 3;

/// FUSE request reader threads; the work itself runs on the tokio runtime.
const FUSE_THREADS: usize = 2;
/// How long a new mount may take to answer its first stat.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const SUBTYPE: &str = "s3cryptfs";

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error("store {url}: {source}")]
    Store {
        url: String,
        #[source]
        source: StoreError,
    },
    #[error("file system: {0}")]
    Fs(#[from] FsError),
    #[error("mount point {}: {reason}", path.display())]
    Mountpoint { path: PathBuf, reason: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    /// The background mount process failed before it was ready and said why.
    #[error("{message}")]
    Daemon { code: i32, message: String },
    #[error("{0}")]
    Other(String),
}

impl MountError {
    /// The one mapping from errors to exit codes.
    pub fn exit_code(&self) -> i32 {
        match self {
            MountError::Config(_) => EXIT_USAGE,
            MountError::Vault(v) if v.is_wrong_key() => EXIT_WRONG_KEY,
            MountError::Daemon { code, .. } => *code,
            _ => EXIT_FAILURE,
        }
    }

    fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> MountError {
        let what = what.into();
        move |source| MountError::Io { what, source }
    }

    fn mountpoint(path: &Path, reason: impl Into<String>) -> MountError {
        MountError::Mountpoint {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}

pub type MountResult<T> = Result<T, MountError>;

/// An error and its sources on one line, skipping sources whose text the message already
/// contains.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = s.source();
    }
    message
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> MountResult<()> {
    match &cli.command {
        Command::Init(args) => init(&cli.global, args),
        Command::Mount(args) => mount(&cli.global, args),
        Command::Unmount(args) => {
            init_logging(cli.global.log_level.unwrap_or_default(), true);
            unmount(&args.mountpoint, Duration::from_secs(args.timeout))
        }
    }
}

fn load_config(path: Option<&Path>) -> Result<MountConfig, ConfigError> {
    path.map_or_else(|| Ok(MountConfig::default()), MountConfig::load)
}

fn init_logging(level: LogLevel, colors: bool) {
    // fuser's info lines ("Mounting ...") are noise unless debugging, and it warns about
    // unmounting an already unmounted file system after every external unmount.
    let fuser_level = if level >= LogLevel::Debug {
        level
    } else {
        LogLevel::Error
    };
    let _ = env_logger::Builder::new()
        .filter_level(level.to_filter())
        .filter_module("fuser", fuser_level.to_filter())
        .format_timestamp_millis()
        .write_style(if colors {
            env_logger::WriteStyle::Auto
        } else {
            env_logger::WriteStyle::Never
        })
        .try_init();
}

fn open_store(url: &StoreUrl) -> MountResult<(store::DynStore, String)> {
    store::open(url).map_err(|source| MountError::Store {
        url: url.to_string(),
        source,
    })
}

fn runtime(threads: usize) -> MountResult<tokio::runtime::Runtime> {
    let mut builder = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads).thread_name("s3cryptfs-io");
        b
    };
    builder
        .enable_all()
        .build()
        .map_err(MountError::io("cannot start the async runtime"))
}

// ---------------------------------------------------------------------------------------
// init

fn init(global: &GlobalArgs, args: &InitArgs) -> MountResult<()> {
    let config = load_config(args.config.as_deref())?.merge(&args.overrides(global))?;
    let s = config.init_settings()?;
    init_logging(s.log_level, true);
    let url = s.store_url.to_string();
    if let StoreUrl::Memory { .. } = s.store_url {
        return Err(MountError::Other(format!(
            "{url}: a mem:// store lives inside one process and vanishes with it, so there is \
             nothing to initialize; `s3cryptfs mount {url} MOUNTPOINT` creates its vault itself"
        )));
    }
    let rt = runtime(1)?;
    // An existing vault is refused before a key file is created or a passphrase asked for.
    // A directory store that does not exist yet holds no vault, and is created only once the
    // secret is at hand.
    let existing = match &s.store_url {
        StoreUrl::File { path } if !path.exists() => None,
        _ => Some(open_store(&s.store_url)?),
    };
    if let Some((store, prefix)) = &existing {
        if rt
            .block_on(vault::vault_exists(&**store, prefix))
            .map_err(|e| e.with_location(&url))?
        {
            return Err(VaultError::AlreadyExists { location: url }.into());
        }
    }
    let created = vault::key_file_will_be_created(s.key_file.as_deref());
    let secret = vault::load_secret(
        s.key_file.as_deref(),
        s.passphrase_file.as_deref(),
        SecretUse::CreateVault,
        &url,
    )?;
    let (store, prefix) = match existing {
        Some(opened) => opened,
        None => open_store(&s.store_url)?,
    };
    let result = rt.block_on(vault::init_vault(&*store, &prefix, &secret, s.block_size));
    drop(secret);
    if let Err(e) = result {
        if let Some(path) = &created {
            // It never protected anything; leaving it would suggest it did.
            let _ = std::fs::remove_file(path);
        }
        return Err(e.with_location(&url).into());
    }
    if let Some(path) = &created {
        println!(
            "created key file {} (mode 0600): keep a copy in a safe place; without it the \
             vault cannot be opened",
            path.display()
        );
    }
    println!(
        "initialized an s3cryptfs vault at {url} (block size {} bytes)",
        s.block_size
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// mount

fn mount(global: &GlobalArgs, args: &MountArgs) -> MountResult<()> {
    let config = load_config(args.config.as_deref())?.merge(&args.overrides(global))?;
    let mut s = config.mount_settings()?;
    init_logging(s.log_level, s.foreground);
    let checked = check_mountpoint(&s.mountpoint)?;
    s.mountpoint = checked.path.clone();
    // The daemon changes its directory to /, so relative paths are resolved now.
    s.staging_dir = std::path::absolute(&s.staging_dir).map_err(MountError::io(format!(
        "staging dir {}",
        s.staging_dir.display()
    )))?;
    if let Some(file) = &s.log_file {
        s.log_file = Some(
            std::path::absolute(file)
                .map_err(MountError::io(format!("log file {}", file.display())))?,
        );
    }
    let secret = vault::load_secret(
        s.key_file.as_deref(),
        s.passphrase_file.as_deref(),
        SecretUse::Unlock,
        &s.store_url.to_string(),
    )?;
    if s.foreground {
        serve(&s, checked.dev, secret, &mut Readiness::Foreground)
    } else {
        daemonize(&s, checked.dev, secret)
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
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
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
        block_cache_bytes: s.block_cache_bytes,
        staging_dir: s.staging_dir.clone(),
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
    if s.default_permissions {
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

/// How the serving process tells whoever started it that the mount is ready (or failed).
enum Readiness {
    Foreground,
    /// The forked daemon: the pipe to the waiting parent, and where stderr goes once
    /// detached.
    Daemon {
        pipe: Option<File>,
        log: Option<File>,
    },
}

impl Readiness {
    /// Detach from the terminal (daemon) and report success.
    fn ready(&mut self) -> io::Result<()> {
        sd_notify("READY=1");
        let Readiness::Daemon { pipe, log } = self else {
            return Ok(());
        };
        let devnull = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")?;
        let log = match log.take() {
            Some(f) => f,
            None => devnull.try_clone()?,
        };
        // SAFETY: dup2 on descriptors we own onto the standard ones; nothing else holds raw
        // copies of 0/1/2 that could be invalidated.
        unsafe {
            if libc::dup2(devnull.as_raw_fd(), 0) < 0
                || libc::dup2(devnull.as_raw_fd(), 1) < 0
                || libc::dup2(log.as_raw_fd(), 2) < 0
            {
                return Err(io::Error::last_os_error());
            }
        }
        if let Some(mut p) = pipe.take() {
            p.write_all(&[0])?;
        }
        Ok(())
    }

    /// Send the error to the waiting parent; false if nobody is waiting any more.
    fn fail(&mut self, err: &MountError) -> bool {
        let Readiness::Daemon { pipe, .. } = self else {
            return false;
        };
        let Some(mut p) = pipe.take() else {
            return false;
        };
        let code = err.exit_code().clamp(1, 255) as u8;
        let mut msg = vec![code];
        msg.extend_from_slice(error_chain(err).as_bytes());
        let _ = p.write_all(&msg);
        true
    }
}

/// Tell systemd (Type=notify) about our state, if it asked.
fn sd_notify(state: &str) {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = UnixDatagram::unbound() else {
        return;
    };
    let bytes = path.as_bytes();
    let sent = match bytes.strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name)
            .and_then(|addr| sock.send_to_addr(state.as_bytes(), &addr)),
        None => sock.send_to(state.as_bytes(), &path),
    };
    if let Err(e) = sent {
        log::warn!("cannot notify systemd ({state}): {e}");
    }
}

/// Fork; the child serves the mount, the parent returns once it is ready or failed.
fn daemonize(s: &MountSettings, dev_before: u64, secret: Secret) -> MountResult<()> {
    let log = match &s.log_file {
        Some(path) => Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(path)
                .map_err(MountError::io(format!("log file {}", path.display())))?,
        ),
        None => None,
    };
    let mut fds = [0; 2];
    // SAFETY: fds has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(MountError::io("pipe")(io::Error::last_os_error()));
    }
    // SAFETY: pipe2 succeeded, so both are fresh descriptors that only we own.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: the process is single-threaded here (no runtime or other thread has been
    // started), so the child's copy of memory holds no lock another thread owned.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(MountError::io("fork")(io::Error::last_os_error())),
        0 => {
            drop(read_end);
            // SAFETY: setsid has no memory-safety preconditions; it fails only if we already
            // lead a process group, which a fresh child does not.
            unsafe { libc::setsid() };
            let _ = std::env::set_current_dir("/");
            let mut readiness = Readiness::Daemon {
                pipe: Some(File::from(write_end)),
                log,
            };
            let code = match serve(s, dev_before, secret, &mut readiness) {
                Ok(()) => 0,
                Err(e) => {
                    if !readiness.fail(&e) {
                        log::error!("{}", error_chain(&e));
                    }
                    e.exit_code()
                }
            };
            std::process::exit(code);
        }
        child => {
            drop(write_end);
            drop(secret);
            let mut answer = Vec::new();
            let mut pipe = File::from(read_end);
            let mut byte = [0u8; 1];
            // read_exact retries when interrupted; EOF means the child died without a word.
            if pipe.read_exact(&mut byte).is_ok() {
                if byte[0] == 0 {
                    return Ok(());
                }
                answer.push(byte[0]);
                let _ = pipe.read_to_end(&mut answer);
            }
            if let Some((&code, message)) = answer.split_first() {
                return Err(MountError::Daemon {
                    code: i32::from(code),
                    message: String::from_utf8_lossy(message).into_owned(),
                });
            }
            let mut status = 0;
            // SAFETY: waiting for our own child; status is a valid out pointer.
            unsafe { libc::waitpid(child, &mut status, 0) };
            Err(MountError::Other(format!(
                "the mount process (pid {child}) exited before the mount was ready (wait \
                 status {status}); run with -f to see its log"
            )))
        }
    }
}

enum Event {
    Signal(&'static str),
    SessionEnded(io::Result<()>),
}

/// Open the vault (a `mem://` store starts empty in every process, so its vault is created).
async fn unlock(
    store: &dyn ObjectStore,
    prefix: &str,
    secret: &Secret,
    url: &StoreUrl,
) -> MountResult<VaultKeys> {
    let location = url.to_string();
    match vault::open_vault(store, prefix, secret).await {
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

/// Build everything, mount, report readiness and serve until unmounted.
fn serve(
    s: &MountSettings,
    dev_before: u64,
    secret: Secret,
    readiness: &mut Readiness,
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
    let (store, prefix) = open_store(&s.store_url)?;
    let keys = rt.block_on(unlock(&*store, &prefix, &secret, &s.store_url))?;
    drop(secret);
    let fs = Fs::new(store, prefix, Arc::new(keys), fs_options(s))?;

    let (events, rx) = mpsc::channel();
    {
        let events = events.clone();
        rt.spawn(async move { watch_signals(events).await });
    }
    let adapter = FuseAdapter::new(fs.clone(), rt.handle().clone());
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
    if let Err(e) = readiness.ready() {
        log::warn!("cannot detach from the terminal: {e}");
    }
    log::info!("mounted {url} at {}", mp.display());

    loop {
        match rx.recv() {
            Ok(Event::Signal(name)) => {
                log::info!(
                    "{name}: uploading open files and unmounting {}",
                    mp.display()
                );
                sd_notify("STOPPING=1");
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
            Ok(Event::SessionEnded(result)) => {
                if let Err(e) = result {
                    log::error!("the FUSE session ended with an error: {e}");
                }
                break;
            }
            Err(mpsc::RecvError) => break,
        }
    }
    let flushed = rt.block_on(fs.flush_all());
    let _ = session_thread.join();
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
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
            _ = hup.recv() => "SIGHUP",
        };
        if events.send(Event::Signal(name)).is_err() {
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

// ---------------------------------------------------------------------------------------
// unmount

fn is_busy(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EBUSY) || e.to_string().contains("busy")
}

/// Unmount `mp` (lazily: detach it now, end it when the last file closes): umount2 as root,
/// else the setuid `fusermount3 -u`.
pub fn unmount_path(mp: &Path, lazy: bool) -> io::Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        let c = CString::new(mp.as_os_str().as_bytes())
            .map_err(|_| io::Error::other("mount point contains a NUL byte"))?;
        let flags = if lazy { libc::MNT_DETACH } else { 0 };
        // SAFETY: c is a valid NUL-terminated path.
        if unsafe { libc::umount2(c.as_ptr(), flags) } == 0 {
            return Ok(());
        }
        return Err(io::Error::last_os_error());
    }
    let mut last = io::Error::other("fusermount3 not found");
    for tool in ["fusermount3", "fusermount"] {
        let mut cmd = std::process::Command::new(tool);
        cmd.arg("-u");
        if lazy {
            cmd.arg("-z");
        }
        match cmd.arg("--").arg(mp).output() {
            Ok(out) if out.status.success() => return Ok(()),
            Ok(out) => {
                let text = String::from_utf8_lossy(&out.stderr).trim().to_owned();
                return Err(io::Error::other(if text.is_empty() {
                    format!("{tool} -u failed ({})", out.status)
                } else {
                    text
                }));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!(
        "cannot run fusermount3 ({last}); install the fuse3 package"
    )))
}

/// Whether a mount table entry is an s3cryptfs mount. Mounting as root through mount(2)
/// records the type as plain `fuse` (the subtype only survives through fusermount3), so a
/// `fuse` mount counts when a pid file names its daemon or its source is a store URL.
fn is_our_mount(entry: &MountEntry, has_daemon: bool) -> bool {
    entry.fstype == format!("fuse.{SUBTYPE}")
        || (entry.fstype == "fuse" && (has_daemon || StoreUrl::parse(&entry.source).is_ok()))
}

/// The absolute mount point without touching the mount itself (its daemon may be gone):
/// the canonical parent plus the last component.
fn mountpoint_path(path: &Path) -> MountResult<PathBuf> {
    let abs = std::path::absolute(path).map_err(|e| MountError::mountpoint(path, e.to_string()))?;
    let (Some(parent), Some(name)) = (abs.parent(), abs.file_name()) else {
        return Err(MountError::mountpoint(path, "is not a mount point"));
    };
    let parent = parent
        .canonicalize()
        .map_err(|e| MountError::mountpoint(path, format!("{}: {e}", parent.display())))?;
    Ok(parent.join(name))
}

/// `s3cryptfs unmount`: unmount, then wait for the daemon (which uploads whatever is still
/// dirty before exiting) to be gone.
pub fn unmount(path: &Path, timeout: Duration) -> MountResult<()> {
    let mp = mountpoint_path(path)?;
    let entry = find_mount(&mp).map_err(MountError::io("cannot read /proc/self/mountinfo"))?;
    let daemon = find_daemon(&mp);
    match (&entry, &daemon) {
        (None, None) => {
            return Err(MountError::mountpoint(&mp, "is not mounted"));
        }
        (Some(e), d) if !is_our_mount(e, d.is_some()) => {
            return Err(MountError::mountpoint(
                &mp,
                format!(
                    "is a {} mount of {} that s3cryptfs did not make; unmount it with umount                      or fusermount3 -u",
                    e.fstype, e.source
                ),
            ));
        }
        (Some(_), _) => unmount_path(&mp, false).map_err(|e| {
            if is_busy(&e) {
                MountError::mountpoint(
                    &mp,
                    format!(
                        "is busy: a process has a file open or its working directory in it \
                         (see `fuser -vm {}`); close them and retry",
                        mp.display()
                    ),
                )
            } else {
                MountError::mountpoint(&mp, format!("cannot unmount: {e}"))
            }
        })?,
        // The mount is gone (or detached) but its daemon still runs: wait for it.
        (None, Some(_)) => {}
    }
    let Some(daemon) = daemon else {
        log::warn!(
            "{} is unmounted, but no pid file names its daemon, so this did not wait for it",
            mp.display()
        );
        return Ok(());
    };
    let deadline = Instant::now() + timeout;
    while daemon.is_alive() {
        if Instant::now() >= deadline {
            return Err(MountError::Other(format!(
                "{} is unmounted, but its daemon (pid {}) is still running after {} s: files \
                 may still be open in the detached mount or uploading; it exits when done",
                mp.display(),
                daemon.pid,
                timeout.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// mount table

/// One line of /proc/self/mountinfo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountEntry {
    pub mountpoint: PathBuf,
    pub fstype: String,
    pub source: String,
}

/// Undo the octal escapes (`\040` for a space) of mountinfo fields.
fn unescape_mountinfo(field: &str) -> Vec<u8> {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

pub fn parse_mountinfo_line(line: &str) -> Option<MountEntry> {
    let fields: Vec<&str> = line.split(' ').collect();
    let sep = fields.iter().position(|f| *f == "-")?;
    let mountpoint = fields.get(4)?;
    Some(MountEntry {
        mountpoint: PathBuf::from(OsStr::from_bytes(&unescape_mountinfo(mountpoint))),
        fstype: (*fields.get(sep + 1)?).to_owned(),
        source: String::from_utf8_lossy(&unescape_mountinfo(fields.get(sep + 2)?)).into_owned(),
    })
}

/// The topmost mount at `mp`, if any.
pub fn find_mount(mp: &Path) -> io::Result<Option<MountEntry>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(text
        .lines()
        .filter_map(parse_mountinfo_line)
        .rfind(|e| e.mountpoint == mp))
}

// ---------------------------------------------------------------------------------------
// pid files

/// Where pid files live: `/run/s3cryptfs` for root, else `$XDG_RUNTIME_DIR/s3cryptfs`, else
/// `/tmp/s3cryptfs-UID`.
fn runtime_dir() -> PathBuf {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if uid == 0 {
        return PathBuf::from("/run/s3cryptfs");
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("s3cryptfs"),
        None => PathBuf::from(format!("/tmp/s3cryptfs-{uid}")),
    }
}

/// `<readable part of the path>-<hash of the path>.pid`: unique per mount point, and still
/// recognizable by an operator.
pub fn pid_file_name(mp: &Path) -> String {
    let bytes = mp.as_os_str().as_bytes();
    let readable: String = String::from_utf8_lossy(bytes)
        .trim_start_matches('/')
        .chars()
        .map(|c| match c {
            '/' => '-',
            c if c.is_ascii_alphanumeric() || c == '.' || c == '_' => c,
            _ => '_',
        })
        .take(64)
        .collect();
    let hash = Md5::digest(bytes);
    format!("{readable}-{}.pid", hex::encode(&hash[..8]))
}

/// Start time of a live process in clock ticks since boot (field 22 of /proc/PID/stat):
/// with the pid it names one process, even after the pid is reused. `None` once the process
/// has exited, including while it is a zombie waiting to be reaped.
fn process_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses; it ends at the last ')'.
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?;
    if matches!(state, "Z" | "X" | "x") {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// The running daemon of a mount, from its pid file.
#[derive(Debug)]
struct Daemon {
    pid: i32,
    start_time: u64,
}

impl Daemon {
    fn is_alive(&self) -> bool {
        process_start_time(self.pid) == Some(self.start_time)
    }
}

fn find_daemon(mp: &Path) -> Option<Daemon> {
    let name = pid_file_name(mp);
    let mut candidates = vec![runtime_dir().join(&name)];
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        // Root may unmount other users' mounts; their pid files are in their runtime dirs.
        if let Ok(users) = std::fs::read_dir("/run/user") {
            candidates.extend(
                users
                    .flatten()
                    .map(|u| u.path().join("s3cryptfs").join(&name)),
            );
        }
    }
    candidates.into_iter().find_map(|path| {
        let text = std::fs::read_to_string(&path).ok()?;
        let mut first = text.lines().next()?.split_whitespace();
        let daemon = Daemon {
            pid: first.next()?.parse().ok()?,
            start_time: first.next()?.parse().ok()?,
        };
        let for_mp = text.lines().nth(1)? == mp.as_os_str().to_string_lossy();
        (for_mp && daemon.is_alive()).then_some(daemon)
    })
}

/// This process's pid file; removed when dropped.
struct PidFile {
    path: PathBuf,
}

impl PidFile {
    fn create(mp: &Path, url: &str) -> io::Result<PidFile> {
        let dir = runtime_dir();
        match std::fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(&dir)
        {
            Ok(()) => {}
            Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", dir.display()))),
        }
        let meta = std::fs::metadata(&dir)?;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let uid = unsafe { libc::geteuid() };
        if meta.uid() != uid || meta.permissions().mode() & 0o022 != 0 {
            return Err(io::Error::other(format!(
                "{} is not a private directory of uid {uid}",
                dir.display()
            )));
        }
        let pid = std::process::id() as i32;
        let start = process_start_time(pid).unwrap_or(0);
        let path = dir.join(pid_file_name(mp));
        let tmp = dir.join(format!(".{pid}.tmp"));
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)?;
        writeln!(f, "{pid} {start}\n{}\n{url}", mp.display())?;
        drop(f);
        std::fs::rename(&tmp, &path)?;
        Ok(PidFile { path })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_parse() {
        let line = "36 35 0:40 / /mnt/my\\040vault rw,nosuid,nodev shared:1 - fuse.s3cryptfs \
                    file:///srv/v rw,user_id=0,group_id=0";
        let e = parse_mountinfo_line(line).expect("parses");
        assert_eq!(e.mountpoint, PathBuf::from("/mnt/my vault"));
        assert_eq!(e.fstype, "fuse.s3cryptfs");
        assert_eq!(e.source, "file:///srv/v");
        // No optional fields.
        let e = parse_mountinfo_line("22 1 8:1 / / rw - ext4 /dev/sda1 rw").expect("root");
        assert_eq!(
            (e.mountpoint, e.fstype.as_str()),
            (PathBuf::from("/"), "ext4")
        );
        assert!(parse_mountinfo_line("garbage").is_none());
        assert!(find_mount(Path::new("/")).expect("mountinfo").is_some());
    }

    #[test]
    fn pid_file_names_are_distinct_and_readable() {
        let a = pid_file_name(Path::new("/mnt/vault"));
        let b = pid_file_name(Path::new("/mnt-vault"));
        assert!(a.starts_with("mnt-vault-") && a.ends_with(".pid"), "{a}");
        assert_ne!(a, b);
        let long = PathBuf::from(format!("/{}", "x".repeat(500)));
        assert!(pid_file_name(&long).len() < 100);
    }

    #[test]
    fn own_start_time_is_found() {
        let me = Daemon {
            pid: std::process::id() as i32,
            start_time: process_start_time(std::process::id() as i32).expect("stat"),
        };
        assert!(me.is_alive());
        let other = Daemon {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!other.is_alive());
    }

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
    fn exit_codes() {
        let wrong = MountError::Vault(VaultError::WrongKey {
            location: "x".into(),
            reason: "r".into(),
        });
        assert_eq!(wrong.exit_code(), EXIT_WRONG_KEY);
        let cfg = MountError::Config(ConfigError::Missing("m".into()));
        assert_eq!(cfg.exit_code(), EXIT_USAGE);
        assert_eq!(MountError::Other("x".into()).exit_code(), EXIT_FAILURE);
    }

    #[test]
    fn unmount_of_a_plain_directory_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = unmount(dir.path(), Duration::from_secs(1)).expect_err("not mounted");
        assert!(e.to_string().contains("is not mounted"), "{e}");
    }
}
