//! The subcommands that work on a vault without mounting it: `key`, `verify`, `ls`, `cat`,
//! `get`, `put`, `doctor`, `cleanup`. Parsing only; the front (`app`) resolves the settings
//! and runs them.
//!
//! Keys are never taken from the command line: the unlock flags name files (as for `mount`),
//! and new secrets for `key add` / `key passwd` come from files or a terminal prompt.
//!
//! Every tool takes `--config FILE` (the TOML of `mount`). Clap fills positionals from the
//! left, so with a config file, which may set `[store] url`, a first operand without `://` is
//! not the store URL but the command's first operand (`operands.rs`).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::args::{BucketArgs, KeyArgs};

const KEY_EXAMPLES: &str = "\
Examples:
  s3cryptfs key list --key-file ~/.config/s3cryptfs/vault.key file:///srv/vault
  s3cryptfs key add --key-file vault.key --new-key-file backup.key --label backup file:///srv/vault
  s3cryptfs key passwd --passphrase-file old.txt --new-passphrase-file new.txt file:///srv/vault
  s3cryptfs key remove --key-file vault.key --slot 1 file:///srv/vault
  s3cryptfs key rotate --key-file vault.key --rewrap file:///srv/vault
  s3cryptfs key rotate --key-file vault.key --retire 1 --yes file:///srv/vault

docs/KEYS.md explains slots, generations and what rotation does and does not protect against.";

const ROTATE_EXAMPLES: &str = "\
Examples:
  # New generation for new uploads; old objects stay readable under their old generation:
  s3cryptfs key rotate --key-file vault.key file:///srv/vault
  # New generation, and every object's data key rewrapped under it (no data moves):
  s3cryptfs key rotate --key-file vault.key --rewrap file:///srv/vault
  # Finish an interrupted rewrap (no new generation):
  s3cryptfs key rotate --key-file vault.key --rewrap --resume file:///srv/vault
  # Drop generation 1 from the config once nothing needs it:
  s3cryptfs key rotate --key-file vault.key --retire 1 file:///srv/vault

A new generation is created unless --resume or --retire is given.";

const VERIFY_EXAMPLES: &str = "\
Examples:
  s3cryptfs verify --key-file vault.key file:///srv/vault
  s3cryptfs verify --deep --json --key-file vault.key file:///srv/vault photos/2024

Exit status: 0 when every object checked is sound, 1 when anything is damaged, foreign or
missing (each one is listed by key with the reason), 3 wrong key.";

const DOCTOR_EXAMPLES: &str = "\
Examples:
  s3cryptfs doctor --key-file vault.key s3://my-bucket/vault
  s3cryptfs doctor --key-file vault.key --endpoint http://127.0.0.1:9000 --path-style \\
      --sse c --sse-c-key-file /etc/s3cryptfs/sse-c.key s3://bucket/vault
  s3cryptfs doctor --config /etc/s3cryptfs/vault.toml

Checks, in order, one line each (ok, FAIL, or skip when an earlier check failed): credentials
and bucket (s3:// only), the vault config, the key, and a PUT/GET/DELETE of a scratch object
under the vault's .s3cryptfs/ with the configured SSE, whose SSE is confirmed.
Exit status: 0 when every check passes, 1 otherwise.";

const CLEANUP_EXAMPLES: &str = "\
Examples:
  s3cryptfs cleanup --dry-run s3://my-bucket/vault
  s3cryptfs cleanup --older-than 2h --endpoint http://127.0.0.1:9000 --path-style s3://bucket/vault

Lists the multipart uploads under the vault's prefix that were neither completed nor aborted
(a daemon killed while writing a large file leaves one) and aborts those older than
--older-than. Needs no key. An S3 lifecycle rule (AbortIncompleteMultipartUpload) does the same
on the server's side.
Exit status: 0 when every old upload was aborted (or none was found), 1 otherwise.";

const FILES_EXAMPLES: &str = "\
Examples:
  s3cryptfs ls -l --key-file vault.key file:///srv/vault docs
  s3cryptfs cat --key-file vault.key file:///srv/vault docs/notes.txt
  s3cryptfs get --key-file vault.key file:///srv/vault / /tmp/restore
  s3cryptfs put --key-file vault.key file:///srv/vault ~/photos photos

A plain folder copy of a bucket (e.g. made by `aws s3 sync`, which drops object metadata) is
read as such automatically when it holds .s3cryptfs/config but no s3cryptfs-store.json, or with
--plain: `s3cryptfs get --key-file vault.key file:///backup/bucket / /tmp/restore`.";

/// The subcommands of this file, flattened into [`super::Command`].
#[derive(Debug, Subcommand)]
pub enum ToolCommand {
    /// Key slots and key generations: list, add, remove, passwd, rotate
    #[command(subcommand, after_help = KEY_EXAMPLES)]
    Key(KeyCommand),
    /// Check every object of a vault (header, key, commitment, size; --deep: every block)
    #[command(after_help = VERIFY_EXAMPLES)]
    Verify(VerifyArgs),
    /// Give every object of a vault made before attribute records a sealed record of its
    /// attributes, then make the vault require them
    #[command(after_help = UPGRADE_EXAMPLES)]
    Upgrade(UpgradeArgs),
    /// List a directory of a vault without mounting it
    #[command(after_help = FILES_EXAMPLES)]
    Ls(LsArgs),
    /// Write files of a vault to standard output
    #[command(after_help = FILES_EXAMPLES)]
    Cat(CatArgs),
    /// Copy a file or directory out of a vault (recursive; SRC_PATH / means everything)
    #[command(after_help = FILES_EXAMPLES)]
    Get(GetArgs),
    /// Copy a local file or directory into a vault (recursive)
    #[command(after_help = FILES_EXAMPLES)]
    Put(PutArgs),
    /// Check that a vault can be mounted: credentials, bucket, vault config, key, a test
    /// write with the configured SSE
    #[command(after_help = DOCTOR_EXAMPLES)]
    Doctor(DoctorArgs),
    /// Abort the multipart uploads a crash left unfinished (their parts are stored, and
    /// billed, until aborted)
    #[command(after_help = CLEANUP_EXAMPLES)]
    Cleanup(CleanupArgs),
}

#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// Only uploads started at least this long ago (90s, 30m, 24h, 7d): a mount writing a
    /// large file right now has one open too
    #[arg(long, value_name = "AGE", default_value = "24h", value_parser = parse_age)]
    pub older_than: Duration,
    /// Print what would be aborted; abort nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Accepted as by every tool; cleanup opens no vault, so it needs no key
    #[arg(long, help_heading = "Encryption")]
    pub kms: bool,
    /// Accepted as by every tool (cleanup asks KMS nothing)
    #[arg(long, value_name = "URL", help_heading = "Encryption")]
    pub kms_endpoint: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// The store and unlock flags of `mount` (and its config file), without the mount ones.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub keys: KeyArgs,
    /// TOML config file, as for `mount` (command-line flags override it)
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Store of the vault: file:///absolute/path or s3://bucket/prefix (optional if the
    /// config sets [store] url)
    #[arg(value_name = "STORE_URL", help_heading = "Bucket")]
    pub store_url: Option<String>,
    #[command(flatten)]
    pub bucket: BucketArgs,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Show the key generations (and which is current) and the key slots
    List(KeyListArgs),
    /// Add a key slot: another key file or passphrase that opens the same vault
    Add(KeyAddArgs),
    /// Remove a key slot (never the last one)
    Remove(KeyRemoveArgs),
    /// Change the passphrase of a slot (only the vault config changes)
    Passwd(KeyPasswdArgs),
    /// Start a new key generation; optionally rewrap every object's key, retire old ones
    #[command(after_help = ROTATE_EXAMPLES)]
    Rotate(KeyRotateArgs),
}

/// Where the vault is (a config file, the store URL, the bucket flags), and how to read a
/// plain copy.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// TOML config file, as for `mount` (command-line flags override it)
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Store of the vault: file:///absolute/path, s3://bucket/prefix or mem://name (optional
    /// with a --config that sets [store] url)
    #[arg(
        value_name = "STORE_URL",
        required_unless_present = "config",
        help_heading = "Bucket"
    )]
    pub store_url: Option<String>,
    /// Read a file:// folder as a plain copy of a bucket: object key = file path, no
    /// metadata, read-only (automatic when it has .s3cryptfs/config and no
    /// s3cryptfs-store.json)
    #[arg(long, help_heading = "Bucket")]
    pub plain: bool,
    #[command(flatten)]
    pub bucket: BucketArgs,
}

/// Parse `--older-than`: `90s`, `30m`, `24h`, `7d`, combinations such as `1h30m`, or a number
/// of seconds.
pub fn parse_age(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| format!("{s:?} is too long"));
    }
    // jiff also knows weeks, months and spelled-out units; ages here use these four.
    if s.chars().any(|c| c.is_alphabetic() && !"smhd".contains(c)) {
        return Err(format!("{s:?}: the unit must be s, m, h or d"));
    }
    let bad = || format!("{s:?} is not an age like 90s, 30m, 24h or 7d");
    let span: jiff::Span = s.parse().map_err(|_| bad())?;
    let duration = span
        .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
        .map_err(|_| bad())?;
    Duration::try_from(duration).map_err(|_| bad())
}

#[derive(Debug, Args)]
pub struct KeyListArgs {
    #[command(flatten)]
    pub keys: KeyArgs,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct KeyAddArgs {
    #[command(flatten)]
    pub keys: KeyArgs,
    /// Key file the new slot opens with (created as a new random key, mode 0600, if missing)
    #[arg(
        long,
        value_name = "PATH",
        conflicts_with = "new_passphrase_file",
        help_heading = "Encryption"
    )]
    pub new_key_file: Option<PathBuf>,
    /// File holding the passphrase the new slot opens with (mode 0600); without any of
    /// these flags the new passphrase is asked twice on the terminal
    #[arg(long, value_name = "PATH", help_heading = "Encryption")]
    pub new_passphrase_file: Option<PathBuf>,
    /// AWS KMS key (id, alias/NAME or ARN) the new slot is encrypted under (kms:Encrypt)
    #[arg(
        long,
        value_name = "KEY_ID",
        conflicts_with_all = ["new_key_file", "new_passphrase_file"],
        help_heading = "Encryption"
    )]
    pub new_kms_key_id: Option<String>,
    /// A note for `key list`, e.g. "backup" or "laptop" [default: added]
    #[arg(long, value_name = "TEXT")]
    pub label: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct KeyRemoveArgs {
    #[command(flatten)]
    pub keys: KeyArgs,
    /// The slot number, as `key list` shows it
    #[arg(long, value_name = "N")]
    pub slot: usize,
    /// Do not ask for confirmation (required when not on a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct KeyPasswdArgs {
    #[command(flatten)]
    pub keys: KeyArgs,
    /// File holding the new passphrase (mode 0600); without it the new passphrase is asked
    /// twice on the terminal
    #[arg(long, value_name = "PATH", help_heading = "Encryption")]
    pub new_passphrase_file: Option<PathBuf>,
    /// The slot to change [default: the passphrase slot that unlocked the vault]
    #[arg(long, value_name = "N")]
    pub slot: Option<usize>,
    /// Do not ask for confirmation (required when not on a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct KeyRotateArgs {
    #[command(flatten)]
    pub keys: KeyArgs,
    /// Rewrap every object's data key under the current generation, server-side (CopyObject
    /// onto itself with new metadata; no object data is read or written)
    #[arg(long)]
    pub rewrap: bool,
    /// Do not start a new generation: finish an interrupted --rewrap under the current one
    #[arg(long, requires = "rewrap")]
    pub resume: bool,
    /// Remove generation N from the vault config once no object needs it any more
    /// (refused while one does; implies no new generation)
    #[arg(long, value_name = "N")]
    pub retire: Option<u32>,
    /// Objects processed at once
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallel: u16,
    /// Do not ask for confirmation (required when not on a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub keys: KeyArgs,
    /// Also decrypt and authenticate every block (reads every byte)
    #[arg(long)]
    pub deep: bool,
    /// Print one JSON report on standard output
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Only this file or directory of the vault
    #[arg(value_name = "PATH")]
    pub path: Option<String>,
}

#[derive(Debug, Args)]
pub struct UpgradeArgs {
    #[command(flatten)]
    pub keys: KeyArgs,
    /// Print one JSON report on standard output
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

const UPGRADE_EXAMPLES: &str = "\
Examples:
  s3cryptfs upgrade --key-file vault.key s3://bucket/vault

Each object's plaintext mode/uid/gid/mtime metadata becomes its sealed attribute record, bound
to its name and content (one metadata copy per object, no data moves); once every object has
one, the vault config is marked so that an object without a record is refused. Run it on a
bucket you trust: the attributes found are the ones sealed. An interrupted run can be run
again.";

#[derive(Debug, Args)]
pub struct LsArgs {
    #[command(flatten)]
    pub keys: KeyArgs,
    /// Long format: mode, size, modification time, name
    #[arg(long, short = 'l')]
    pub long: bool,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Directory (or file) of the vault [default: /]
    #[arg(value_name = "PATH")]
    pub path: Option<String>,
}

#[derive(Debug, Args)]
pub struct CatArgs {
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Files of the vault
    #[arg(value_name = "PATH", required_unless_present = "config")]
    pub paths: Vec<String>,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    /// File or directory of the vault; / means everything
    #[arg(value_name = "SRC_PATH", required_unless_present = "config")]
    pub src: Option<String>,
    /// Local destination: an existing directory receives SRC_PATH by its name, anything else
    /// is created (for / it is the directory everything goes into)
    #[arg(value_name = "DEST", required_unless_present = "config")]
    pub dest: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PutArgs {
    #[command(flatten)]
    pub keys: KeyArgs,
    /// TOML config file, as for `mount` (command-line flags override it)
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Store of the vault: file:///absolute/path, s3://bucket/prefix or mem://name (optional
    /// with a --config that sets [store] url)
    #[arg(
        value_name = "STORE_URL",
        required_unless_present = "config",
        help_heading = "Bucket"
    )]
    pub store_url: Option<String>,
    #[command(flatten)]
    pub bucket: BucketArgs,
    /// Local file or directory
    #[arg(value_name = "LOCAL_SRC", required_unless_present = "config")]
    pub src: Option<PathBuf>,
    /// Path in the vault: an existing directory receives LOCAL_SRC by its name, anything else
    /// is created or replaced
    #[arg(value_name = "DEST_PATH", required_unless_present = "config")]
    pub dest: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_parse_with_units() {
        assert_eq!(parse_age("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_age("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_age("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_age("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_age("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_age("0"), Ok(Duration::ZERO));
        assert_eq!(parse_age("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_age("1w").unwrap_err().contains("unit"));
        assert!(parse_age("h").is_err());
        assert!(parse_age("99999999999999999999d").is_err());
    }
}
