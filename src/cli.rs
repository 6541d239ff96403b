//! The command lines, parsed and nothing more: `s3cryptfs` (clap derive: `init`, `mount`,
//! `unmount` here, the tools in `tools.rs`), each flag also a config field (see
//! `packaging/s3cryptfs.example.toml`), and `mount.s3cryptfs` as mount(8) calls it
//! (`helper.rs`). The front (`app`) resolves the settings and runs the command.
//!
//! `mount [STORE_URL] [MOUNTPOINT]`: both positionals may come from the config file. With a
//! single positional, it is the store URL if it contains `://`, else the mount point.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{ByteSize, Mode, Overrides};

mod args;
pub mod helper;
mod operands;
mod tools;
pub use args::{BucketArgs, GlobalArgs, KeyArgs};
pub use tools::{
    CatArgs, CleanupArgs, DoctorArgs, GetArgs, KeyAddArgs, KeyCommand, KeyListArgs, KeyPasswdArgs,
    KeyRemoveArgs, KeyRotateArgs, LsArgs, PutArgs, StoreArgs, ToolCommand, VerifyArgs, parse_age,
};

const EXAMPLES: &str = "\
Examples:
  # Create a vault in a local directory, with a new random key file:
  s3cryptfs init --key-file ~/.config/s3cryptfs/vault.key file:///srv/vault

  # Mount it (returns once the mount answers), use it, unmount it:
  s3cryptfs mount --key-file ~/.config/s3cryptfs/vault.key file:///srv/vault ~/vault
  s3cryptfs unmount ~/vault

  # Passphrase instead of a key file (from a file, $S3CRYPTFS_PASSPHRASE or a prompt):
  s3cryptfs init --passphrase-file ~/.vault-pass file:///srv/vault
  s3cryptfs mount -f -o ro,allow_other --passphrase-file ~/.vault-pass file:///srv/vault /mnt/v

  # Everything from a config file:
  s3cryptfs mount --config /etc/s3cryptfs/vault.toml

Exit status: 0 success, 1 error, 2 bad command line or config, 3 wrong key (or KMS refused),\n4 KMS unreachable.";

const MOUNT_EXAMPLES: &str = "\
Examples:
  s3cryptfs mount --key-file ~/.config/s3cryptfs/vault.key file:///srv/vault ~/vault
  s3cryptfs mount -f -o ro,uid=1000 --passphrase-file ~/.vault-pass file:///srv/vault /mnt/v
  s3cryptfs mount --config /etc/s3cryptfs/vault.toml

-o options: ro, rw, allow_other, allow_root, default_permissions, uid=N, gid=N,
  file_mode=OCTAL, dir_mode=OCTAL, fsname=NAME, and the kernel flags dev, nodev, suid, nosuid,
  exec, noexec, atime, noatime, sync, async, dirsync. The mount(8) options _netdev, nofail,
  noauto, auto, user, users, nouser, defaults, x-systemd.* and comment=* are accepted and ignored.
  allow_other turns default_permissions on (the file system checks no permissions itself).

Without --key-file or --passphrase-file, the passphrase comes from $S3CRYPTFS_PASSPHRASE or a
prompt on the terminal.";

const INIT_EXAMPLES: &str = "\
Examples:
  s3cryptfs init --key-file ~/.config/s3cryptfs/vault.key file:///srv/vault
  S3CRYPTFS_PASSPHRASE=... s3cryptfs init file:///srv/vault

With --key-file, a missing file is created as a new random key (mode 0600); an existing one is
used. Without --key-file or --passphrase-file, the passphrase comes from $S3CRYPTFS_PASSPHRASE
or a prompt (asked twice) on the terminal.";

#[derive(Debug, Parser)]
#[command(
    name = "s3cryptfs",
    version,
    about = "Mount an object store as a directory, every file encrypted on the client",
    after_help = EXAMPLES,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new encrypted vault in a store
    #[command(after_help = INIT_EXAMPLES)]
    Init(InitArgs),
    /// Mount a vault (returns once the mount answers; stays in the foreground with -f)
    #[command(after_help = MOUNT_EXAMPLES)]
    Mount(Box<MountArgs>),
    /// Unmount a vault: returns once its data is uploaded and the mount is gone
    Unmount(UnmountArgs),
    /// Show what running mounts are doing: uploads pending or failing, requests, cache
    #[command(after_help = STATUS_HELP)]
    Status(StatusArgs),
    /// Print the shell completion script for bash, zsh or fish
    #[command(after_help = COMPLETIONS_HELP)]
    Completions(CompletionsArgs),
    /// key, verify, ls, cat, get, put, doctor, cleanup (src/cli/tools.rs)
    #[command(flatten)]
    Tools(ToolCommand),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub keys: KeyArgs,
    /// Encryption block size in bytes: a power of two from 4096 to 1048576 [default: 65536]
    #[arg(long, value_name = "BYTES", help_heading = "Encryption")]
    pub block_size: Option<u32>,
    /// Create the vault unlocked through this AWS KMS key (id, alias/NAME or ARN); with
    /// --key-file or --passphrase-file as well, that is a second, offline recovery slot [or
    /// [encryption] kms_key_id]
    #[arg(long, value_name = "KEY_ID", help_heading = "Encryption")]
    pub kms_key_id: Option<String>,
    /// Store file and directory names in plaintext (as vaults made before encrypted names);
    /// by default every name is encrypted
    #[arg(long, help_heading = "Encryption")]
    pub plain_names: bool,
    /// TOML config file (command-line flags override it)
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where the vault lives: file:///absolute/path or s3://bucket/prefix
    #[arg(value_name = "STORE_URL", help_heading = "Bucket")]
    pub store_url: Option<String>,
    #[command(flatten)]
    pub bucket: BucketArgs,
}

#[derive(Debug, Args)]
pub struct MountArgs {
    #[command(flatten)]
    pub keys: KeyArgs,
    /// TOML config file (command-line flags override it)
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Store of the vault: file:///absolute/path, s3://bucket/prefix or mem://name (optional if the config sets
    /// [store] url)
    #[arg(value_name = "STORE_URL", help_heading = "Bucket")]
    pub store_url: Option<String>,
    #[command(flatten)]
    pub bucket: BucketArgs,

    /// Empty directory to mount on (optional if the config sets [mount] mountpoint)
    #[arg(value_name = "MOUNTPOINT", help_heading = "Mount")]
    pub mountpoint: Option<PathBuf>,
    /// Stay in the foreground, logging to stderr
    #[arg(short = 'f', long, help_heading = "Mount")]
    pub foreground: bool,
    /// Mount options, comma-separated (see below)
    #[arg(
        short = 'o',
        value_name = "OPT[,OPT...]",
        action = clap::ArgAction::Append,
        help_heading = "Mount"
    )]
    pub options: Vec<String>,
    /// Let other users access the mount (same as -o allow_other)
    #[arg(long, help_heading = "Mount")]
    pub allow_other: bool,
    /// Let root access the mount (same as -o allow_root)
    #[arg(long, conflicts_with = "allow_other", help_heading = "Mount")]
    pub allow_root: bool,
    /// Mount read-only (same as -o ro)
    #[arg(long, help_heading = "Mount")]
    pub read_only: bool,
    /// Owner of files that carry no owner of their own [default: you]
    #[arg(long, value_name = "UID", help_heading = "Mount")]
    pub uid: Option<u32>,
    /// Group of files that carry no group of their own [default: your group]
    #[arg(long, value_name = "GID", help_heading = "Mount")]
    pub gid: Option<u32>,
    /// Mode of files that carry no mode of their own [default: 0644]
    #[arg(long, value_name = "OCTAL", value_parser = parse_mode, help_heading = "Mount")]
    pub file_mode: Option<Mode>,
    /// Mode of directories that carry no mode of their own [default: 0755]
    #[arg(long, value_name = "OCTAL", value_parser = parse_mode, help_heading = "Mount")]
    pub dir_mode: Option<Mode>,

    /// How long attributes and listings are cached, in seconds [default: 1]
    #[arg(long, value_name = "SECS", help_heading = "Cache")]
    pub metadata_ttl: Option<u64>,
    /// Memory for decrypted blocks, in MiB, within --memory-limit [default: 64]
    #[arg(
        long,
        value_name = "MIB",
        value_parser = clap::value_parser!(u64).range(1..),
        help_heading = "Cache"
    )]
    pub block_cache_mib: Option<u64>,
    /// Memory for the block cache, reads in flight and upload buffers of all open files
    /// together, e.g. 256M or 1G (at least 32M) [default: 64M]
    #[arg(long, value_name = "SIZE", value_parser = parse_size, help_heading = "Cache")]
    pub memory_limit: Option<ByteSize>,
    /// Directory for (encrypted) staging files [default: $S3CRYPTFS_STAGING_DIR, else
    /// /var/cache/s3cryptfs/staging for root, else ~/.cache/s3cryptfs/staging]
    #[arg(long, value_name = "DIR", help_heading = "Cache")]
    pub staging_dir: Option<PathBuf>,

    /// Once detached, append logs to this file (default: discard; -f logs to stderr)
    #[arg(long, value_name = "FILE", help_heading = "Logging")]
    pub log_file: Option<PathBuf>,
    /// Serve Prometheus metrics at http://IP:PORT/metrics (off by default; loopback only)
    #[arg(long, value_name = "IP:PORT", help_heading = "Logging")]
    pub metrics_addr: Option<String>,
    /// Allow --metrics-addr on an address other than loopback (the metrics have no
    /// authentication)
    #[arg(long, help_heading = "Logging")]
    pub metrics_allow_remote: bool,
}

const STATUS_HELP: &str = "\
The mount answers over a unix socket only its own user may use (mode 0600, peer uid checked).
Exit status: 0 when no upload is failing, 1 when an upload is failing at some mount (its files
and last error are listed) or a mount does not answer, 2 bad command line.";

const COMPLETIONS_HELP: &str = "\
Examples:
  s3cryptfs completions bash > ~/.local/share/bash-completion/completions/s3cryptfs
  s3cryptfs completions zsh > ~/.zfunc/_s3cryptfs
  s3cryptfs completions fish > ~/.config/fish/completions/s3cryptfs.fish

The Debian package installs all three.";

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The mount point to ask (default: every mount of this user)
    #[arg(value_name = "MOUNTPOINT")]
    pub mountpoint: Option<PathBuf>,
    /// Print JSON for scripts (one object for MOUNTPOINT, else an array)
    #[arg(long)]
    pub json: bool,
    /// Ask the control socket at this path (another user's runtime directory, as root)
    #[arg(long, value_name = "PATH", conflicts_with = "mountpoint")]
    pub socket: Option<PathBuf>,
}

/// Shells `completions` writes for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    #[arg(value_name = "SHELL")]
    pub shell: CompletionShell,
}

#[derive(Debug, Args)]
pub struct UnmountArgs {
    /// The mount point to unmount
    #[arg(value_name = "MOUNTPOINT")]
    pub mountpoint: PathBuf,
    /// How long to wait for the mount daemon to exit, in seconds
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub timeout: u64,
}

fn parse_mode(s: &str) -> Result<Mode, String> {
    Mode::parse(s)
}

fn parse_size(s: &str) -> Result<ByteSize, String> {
    ByteSize::parse(s)
}

impl InitArgs {
    pub fn overrides(&self, global: &GlobalArgs) -> Overrides {
        let mut o = Overrides {
            store_url: self.store_url.clone(),
            key_file: self.keys.key_file.clone(),
            passphrase_file: self.keys.passphrase_file.clone(),
            accept_config_rollback: self.keys.accept_config_rollback,
            block_size: self.block_size,
            kms_key_id: self.kms_key_id.clone(),
            log_level: global.log_level,
            allow_core_dumps: global.allow_core_dumps,
            ..Overrides::default()
        };
        self.bucket.apply(&mut o);
        self.keys.apply_kms(&mut o);
        o
    }
}

impl MountArgs {
    /// The store URL and mount point given as positionals: with only one, a value holding
    /// `://` is the URL and anything else the mount point.
    fn positionals(&self) -> (Option<String>, Option<PathBuf>) {
        match (&self.store_url, &self.mountpoint) {
            (Some(only), None) if !only.contains("://") => (None, Some(PathBuf::from(only))),
            (url, mp) => (url.clone(), mp.clone()),
        }
    }

    pub fn overrides(&self, global: &GlobalArgs) -> Overrides {
        let (store_url, mountpoint) = self.positionals();
        let mut o = Overrides {
            store_url,
            key_file: self.keys.key_file.clone(),
            passphrase_file: self.keys.passphrase_file.clone(),
            accept_config_rollback: self.keys.accept_config_rollback,
            block_size: None,
            mountpoint,
            foreground: self.foreground,
            allow_other: self.allow_other,
            allow_root: self.allow_root,
            read_only: self.read_only,
            uid: self.uid,
            gid: self.gid,
            file_mode: self.file_mode,
            dir_mode: self.dir_mode,
            options: self.options.clone(),
            metadata_ttl_secs: self.metadata_ttl,
            block_cache_mib: self.block_cache_mib,
            memory_limit: self.memory_limit,
            staging_dir: self.staging_dir.clone(),
            log_level: global.log_level,
            allow_core_dumps: global.allow_core_dumps,
            log_file: self.log_file.clone(),
            metrics_addr: self.metrics_addr.clone(),
            metrics_allow_remote: self.metrics_allow_remote,
            ..Overrides::default()
        };
        self.bucket.apply(&mut o);
        self.keys.apply_kms(&mut o);
        o
    }
}

#[cfg(test)]
mod tests;
