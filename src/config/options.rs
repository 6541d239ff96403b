//! `-o` mount options (as mount(8) and fstab pass them), the default staging directory and
//! the default state directory.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::error::{ConfigError, ConfigResult};
use super::file::{Mode, MountSection};

/// Environment variable naming the staging directory (overridden by the config and flags).
pub const STAGING_DIR_ENV: &str = "S3CRYPTFS_STAGING_DIR";
/// Environment variable naming the state directory (the config counters seen per vault).
pub const STATE_DIR_ENV: &str = "S3CRYPTFS_STATE_DIR";

/// Kernel mount flags passed through to the mount unchanged, and the flag each overrides.
pub(super) const KERNEL_FLAGS: &[(&str, &str)] = &[
    ("dev", "nodev"),
    ("nodev", "dev"),
    ("suid", "nosuid"),
    ("nosuid", "suid"),
    ("exec", "noexec"),
    ("noexec", "exec"),
    ("atime", "noatime"),
    ("noatime", "atime"),
    ("sync", "async"),
    ("async", "sync"),
    ("dirsync", ""),
];

/// mount(8) and fstab options that concern `mount` itself, not this file system: accepted
/// and ignored so that fstab lines work.
const IGNORED_OPTIONS: &[&str] = &[
    "_netdev", "nofail", "noauto", "auto", "user", "users", "nouser", "defaults",
];

/// Every option `-o` accepts, for the error message about an unknown one.
pub const KNOWN_OPTIONS: &str = "ro, rw, allow_other, allow_root, default_permissions, uid=N, \
     gid=N, file_mode=OCTAL, dir_mode=OCTAL, fsname=NAME, dev, nodev, suid, nosuid, exec, \
     noexec, atime, noatime, sync, async, dirsync; ignored: _netdev, nofail, noauto, auto, user, \
     users, nouser, defaults, x-systemd.*, comment=*";

/// Apply one `-o` argument (possibly several options separated by commas) to `m`. Kernel
/// flags are kept in `m.options` (later ones override their opposites).
pub fn apply_mount_option(m: &mut MountSection, arg: &str) -> ConfigResult<()> {
    for opt in arg.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let bad = |reason: String| ConfigError::MountOption {
            option: opt.to_owned(),
            reason,
        };
        let (name, value) = match opt.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (opt, None),
        };
        let number = |v: Option<&str>| -> ConfigResult<u32> {
            let v = v.unwrap_or("");
            v.parse::<u32>()
                .map_err(|_| bad(format!("{v:?} is not a number")))
        };
        let mode =
            |v: Option<&str>| -> ConfigResult<Mode> { Mode::parse(v.unwrap_or("")).map_err(&bad) };
        match (name, value) {
            ("ro", None) => m.read_only = true,
            ("rw", None) => m.read_only = false,
            ("allow_other", None) => {
                m.allow_other = true;
                m.allow_root = false;
            }
            ("allow_root", None) => {
                m.allow_root = true;
                m.allow_other = false;
            }
            ("default_permissions", None) => m.default_permissions = true,
            ("uid", v @ Some(_)) => m.uid = Some(number(v)?),
            ("gid", v @ Some(_)) => m.gid = Some(number(v)?),
            ("file_mode", v @ Some(_)) => m.file_mode = Some(mode(v)?),
            ("dir_mode", v @ Some(_)) => m.dir_mode = Some(mode(v)?),
            ("fsname", Some(v)) => {
                if v.is_empty() {
                    return Err(bad("needs a name".to_owned()));
                }
                m.fsname = Some(v.to_owned());
            }
            (flag, None) if KERNEL_FLAGS.iter().any(|(k, _)| *k == flag) => {
                let opposite = KERNEL_FLAGS
                    .iter()
                    .find(|(k, _)| *k == flag)
                    .map_or("", |(_, o)| *o);
                m.options.retain(|o| o != flag && o != opposite);
                m.options.push(flag.to_owned());
            }
            (flag, None) if IGNORED_OPTIONS.contains(&flag) => {}
            _ if name.starts_with("x-systemd.") || name == "comment" => {}
            (
                "ro"
                | "rw"
                | "allow_other"
                | "allow_root"
                | "default_permissions"
                | "uid"
                | "gid"
                | "file_mode"
                | "dir_mode"
                | "fsname",
                _,
            ) => {
                return Err(bad(if value.is_some() {
                    "takes no value".to_owned()
                } else {
                    "needs a value (NAME=VALUE)".to_owned()
                }));
            }
            _ => return Err(bad(format!("unknown mount option; known: {KNOWN_OPTIONS}"))),
        }
    }
    Ok(())
}

/// Refuse a key or passphrase file that is a symbolic link, belongs to another user than the
/// running one or root, or that the group or others can access (the crypto layer checks again
/// when it reads the file; this reports the problem before anything else happens). A missing file is not an error here: `init` creates key files.
pub(super) fn check_private_file(field: &'static str, path: Option<&Path>) -> ConfigResult<()> {
    let Some(path) = path else { return Ok(()) };
    // The reader opens it with O_NOFOLLOW: a link is refused here too, naming the field.
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(ConfigError::invalid(
                field,
                format!("{}: {e}", path.display()),
            ));
        }
    };
    if meta.file_type().is_symlink() {
        return Err(ConfigError::invalid(
            field,
            format!(
                "{} is a symbolic link, which is refused: give the path of the file itself",
                path.display()
            ),
        ));
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me && meta.uid() != 0 {
        return Err(ConfigError::invalid(
            field,
            format!(
                "{} is owned by uid {}, not by the user running s3cryptfs (uid {me}) or root: \
                 another user could change it; chown it",
                path.display(),
                meta.uid()
            ),
        ));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        let who = if mode & 0o004 != 0 {
            "world-readable"
        } else if mode & 0o040 != 0 {
            "group-readable"
        } else {
            "accessible by group/others"
        };
        return Err(ConfigError::invalid(
            field,
            format!(
                "{} is {who} (mode {mode:04o}); chmod 600 it",
                path.display()
            ),
        ));
    }
    Ok(())
}

/// `$S3CRYPTFS_STAGING_DIR`, else `/var/cache/s3cryptfs/staging` for root, else
/// `$XDG_CACHE_HOME/s3cryptfs/staging` or `~/.cache/s3cryptfs/staging`.
pub fn default_staging_dir() -> ConfigResult<PathBuf> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = non_empty(STAGING_DIR_ENV) {
        return Ok(PathBuf::from(dir));
    }
    if nix::unistd::geteuid().is_root() {
        return Ok(PathBuf::from("/var/cache/s3cryptfs/staging"));
    }
    if let Some(cache) = non_empty("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(cache).join("s3cryptfs/staging"));
    }
    if let Some(home) = non_empty("HOME") {
        return Ok(PathBuf::from(home).join(".cache/s3cryptfs/staging"));
    }
    Err(ConfigError::Missing(format!(
        "no staging directory: set [cache] staging_dir, --staging-dir or ${STAGING_DIR_ENV} \
         (HOME is not set)"
    )))
}

/// Where this machine remembers the highest vault config counter it has seen per vault
/// (`vault::rollback`): `$S3CRYPTFS_STATE_DIR`, else `/var/lib/s3cryptfs` for root, else
/// `$XDG_STATE_HOME/s3cryptfs` or `~/.local/state/s3cryptfs`; `None` without `HOME` (rollback
/// is then not checked).
pub fn default_state_dir() -> Option<PathBuf> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = non_empty(STATE_DIR_ENV) {
        return Some(PathBuf::from(dir));
    }
    if nix::unistd::geteuid().is_root() {
        return Some(PathBuf::from("/var/lib/s3cryptfs"));
    }
    if let Some(state) = non_empty("XDG_STATE_HOME") {
        return Some(PathBuf::from(state).join("s3cryptfs"));
    }
    non_empty("HOME").map(|home| PathBuf::from(home).join(".local/state/s3cryptfs"))
}
