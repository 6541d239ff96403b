//! The tables of the config file ([`MountConfig`] and its sections), as serde reads them;
//! checking them and merging them with the command line is for `config.rs`.
//!
//! Every table denies unknown fields and has a default for every field, so an empty file is
//! valid and a typo is an error naming the field.

use std::path::PathBuf;

use serde::Deserialize;

/// Default `cache.metadata_ttl_secs`: attributes and listings are trusted for 1 s, short
/// enough that changes made by other clients show up quickly, long enough that `ls -l` of a
/// directory is one LIST and not one HEAD per entry.
pub const DEFAULT_METADATA_TTL_SECS: u64 = 1;
/// Default `cache.block_cache_mib`: decrypted blocks kept in memory. Twice the largest
/// read-ahead window (32 MiB), so a sequential reader's prefetched blocks survive until read,
/// and small enough that the daemon stays well under 256 MiB of RSS.
pub const DEFAULT_BLOCK_CACHE_MIB: u64 = 64;
/// Default `cache.memory_limit`: the block cache, the fetches in flight and the upload part
/// buffers together. With it the daemon's peak RSS stays under 96 MiB while a 1 GiB file is
/// written or read (docs/BENCHMARKS.md).
pub const DEFAULT_MEMORY_LIMIT: u64 = 64 * 1024 * 1024;
/// Smallest `cache.memory_limit`: four 8 MiB parts or fetch chunks.
pub const MIN_MEMORY_LIMIT: u64 = 32 * 1024 * 1024;
/// Largest `cache.memory_limit` (1 TiB).
pub const MAX_MEMORY_LIMIT: u64 = 1 << 40;

/// The config file. Every field is optional; see `packaging/s3cryptfs.example.toml`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MountConfig {
    pub store: StoreSection,
    pub encryption: EncryptionSection,
    pub sse: SseSection,
    pub mount: MountSection,
    pub cache: CacheSection,
    pub logging: LoggingSection,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    /// `file:///absolute/path`, `s3://bucket/prefix` or `mem://name`.
    pub url: Option<String>,
    /// Endpoint URL of an S3-compatible server (s3:// only; default `AWS_ENDPOINT_URL`, else
    /// AWS).
    pub endpoint: Option<String>,
    /// AWS region (s3:// only; default the AWS chain, else us-east-1).
    pub region: Option<String>,
    /// Path-style addressing (s3:// only; most self-hosted servers need it).
    pub path_style: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EncryptionSection {
    pub key_file: Option<PathBuf>,
    pub passphrase_file: Option<PathBuf>,
    /// Used by `init` only; a mounted vault's block size comes from its vault config.
    pub block_size: Option<u32>,
    /// Accept a vault config older than one this machine has seen (a deliberate restore),
    /// and remember it as the newest (`--accept-config-rollback`).
    pub accept_config_rollback: bool,
    /// Unlock through the vault's KMS slot (`--kms`).
    pub kms: bool,
    /// KMS key (id, alias or ARN) of a new vault's KMS slot (`init --kms-key-id`); set with
    /// no key or passphrase file, it also means `kms`.
    pub kms_key_id: Option<String>,
    /// KMS endpoint URL (`--kms-endpoint`) [default: $AWS_ENDPOINT_URL_KMS, else
    /// $AWS_ENDPOINT_URL, else AWS].
    pub kms_endpoint: Option<String>,
}

/// Server-side encryption requested from the store, on top of client-side encryption.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SseMode {
    #[default]
    None,
    S3,
    Kms,
    C,
}

impl SseMode {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            SseMode::None => "none",
            SseMode::S3 => "s3",
            SseMode::Kms => "kms",
            SseMode::C => "c",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SseSection {
    /// `mode = "..."`, or `sse = "..."` as the flag is named.
    #[serde(alias = "sse")]
    pub mode: SseMode,
    pub sse_kms_key_id: Option<String>,
    pub sse_c_key_files: Vec<PathBuf>,
    /// Allow SSE-C with a plain `http://` endpoint, which sends the key in clear text.
    pub allow_sse_c_over_http: bool,
}

/// A permission mode, written in the config as an octal string (`"0644"`), never a bare
/// integer: `file_mode = 644` would silently mean 0o1204.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mode(pub u32);

impl Mode {
    pub fn parse(s: &str) -> Result<Mode, String> {
        let digits = s.strip_prefix("0o").unwrap_or(s);
        match u32::from_str_radix(digits, 8) {
            Ok(m) if !digits.is_empty() && m <= 0o7777 => Ok(Mode(m)),
            _ => Err(format!(
                "{s:?} is not a permission mode; expected octal digits such as \"0644\""
            )),
        }
    }
}

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Mode, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Mode;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an octal mode as a string, such as \"0644\"")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Mode, E> {
                Mode::parse(s).map_err(E::custom)
            }
        }
        d.deserialize_str(Visitor)
    }
}

/// A number of bytes, written as plain bytes or with a binary suffix: `268435456`, `256M`,
/// `256MiB`, `1G`, `512K`, `1T` (K, M, G, T are powers of 1024; case and a trailing `B` or
/// `iB` do not matter). In the config file a bare integer is bytes too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn parse(s: &str) -> Result<ByteSize, String> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (digits, suffix) = t.split_at(split);
        let unit = match suffix.trim().to_ascii_lowercase().as_str() {
            "" | "b" => Some(1u64),
            "k" | "kb" | "kib" => Some(1 << 10),
            "m" | "mb" | "mib" => Some(1 << 20),
            "g" | "gb" | "gib" => Some(1 << 30),
            "t" | "tb" | "tib" => Some(1 << 40),
            _ => None,
        };
        match (digits.parse::<u64>(), unit) {
            (Ok(n), Some(unit)) => n
                .checked_mul(unit)
                .map(ByteSize)
                .ok_or_else(|| format!("{s:?} is too large")),
            _ => Err(format!(
                "{s:?} is not a size; expected bytes or a number with K, M, G or T, such as \"256M\""
            )),
        }
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ByteSize, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ByteSize;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a size such as \"256M\" or a number of bytes")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<ByteSize, E> {
                ByteSize::parse(s).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<ByteSize, E> {
                u64::try_from(n)
                    .map(ByteSize)
                    .map_err(|_| E::custom(format!("{n} is not a size")))
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(n))
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MountSection {
    pub mountpoint: Option<PathBuf>,
    pub foreground: bool,
    /// Let other users access the mount (needs `user_allow_other` in /etc/fuse.conf when
    /// not mounting as root). Turns `default_permissions` on: the file system checks no
    /// permissions itself.
    pub allow_other: bool,
    /// Let root (and the owner) access the mount.
    pub allow_root: bool,
    /// Let the kernel check permissions against the mode, uid and gid of each file.
    pub default_permissions: bool,
    pub read_only: bool,
    /// Owner, group and modes of objects that carry no attributes (default: the mounting
    /// user, 0644, 0755).
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub file_mode: Option<Mode>,
    pub dir_mode: Option<Mode>,
    /// Source name shown in /proc/mounts and `df` (default: the store URL).
    pub fsname: Option<String>,
    /// Extra mount options, as `-o` takes them.
    pub options: Vec<String>,
    /// Serve Prometheus metrics at this `HOST:PORT` (off when unset); loopback only unless
    /// `metrics_allow_remote`.
    pub metrics_addr: Option<String>,
    pub metrics_allow_remote: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSection {
    pub metadata_ttl_secs: u64,
    pub block_cache_mib: u64,
    /// The memory budget of the block cache, fetches in flight and upload part buffers.
    pub memory_limit: ByteSize,
    pub staging_dir: Option<PathBuf>,
    /// Keep the attributes of unchanged files on local disk across mounts, in
    /// `STAGING_DIR/attr-cache/` (sealed records under keyed names; docs/SEMANTICS.md).
    pub attr_cache: bool,
}

impl Default for CacheSection {
    fn default() -> Self {
        CacheSection {
            metadata_ttl_secs: DEFAULT_METADATA_TTL_SECS,
            block_cache_mib: DEFAULT_BLOCK_CACHE_MIB,
            memory_limit: ByteSize(DEFAULT_MEMORY_LIMIT),
            staging_dir: None,
            attr_cache: true,
        }
    }
}

#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    #[default]
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn to_filter(self) -> log::LevelFilter {
        match self {
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
            LogLevel::Trace => log::LevelFilter::Trace,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingSection {
    pub level: LogLevel,
    /// Where a background mount logs once detached (appended). Unset: logs are discarded
    /// after the mount is ready; in the foreground (`-f`) logs always go to stderr.
    pub file: Option<PathBuf>,
    /// Keep core dumps and same-user ptrace access (off by default: a dump may hold keys).
    /// Read once at start; SIGHUP does not change it.
    pub allow_core_dumps: bool,
}
