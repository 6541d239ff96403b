//! The argument groups several commands share: the global flags, the unlock flags and the
//! bucket flags (each also a config field).

use std::path::PathBuf;

use clap::Args;

use crate::config::{LogLevel, Overrides, SseMode};

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Log level [default: info, or [logging] level]
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "LEVEL",
        help_heading = "Logging"
    )]
    pub log_level: Option<LogLevel>,
    /// Keep core dumps and ptrace access by the same user (for debugging: a dump may hold
    /// keys) [default: off, or [logging] allow_core_dumps]
    #[arg(long, global = true, help_heading = "Logging")]
    pub allow_core_dumps: bool,
}

#[derive(Debug, Args)]
pub struct KeyArgs {
    /// 32-byte key file (mode 0600). `init` creates it if missing
    #[arg(
        long,
        value_name = "PATH",
        conflicts_with = "passphrase_file",
        help_heading = "Encryption"
    )]
    pub key_file: Option<PathBuf>,
    /// File holding the passphrase (mode 0600; a trailing newline is ignored)
    #[arg(long, value_name = "PATH", help_heading = "Encryption")]
    pub passphrase_file: Option<PathBuf>,
    /// Accept a vault config older than one this machine has seen (after restoring it on
    /// purpose) and remember it as the newest [or [encryption] accept_config_rollback]
    #[arg(long, help_heading = "Encryption")]
    pub accept_config_rollback: bool,
    /// Unlock through the vault's AWS KMS key slot (the default when no key or passphrase is
    /// given and the vault has one) [or [encryption] kms]
    #[arg(long, conflicts_with_all = ["key_file", "passphrase_file"], help_heading = "Encryption")]
    pub kms: bool,
    /// KMS endpoint URL [default: [encryption] kms_endpoint, else $AWS_ENDPOINT_URL_KMS, else
    /// $AWS_ENDPOINT_URL, else AWS]
    #[arg(long, value_name = "URL", help_heading = "Encryption")]
    pub kms_endpoint: Option<String>,
}

impl KeyArgs {
    /// Copy the KMS flags into `o`.
    pub fn apply_kms(&self, o: &mut crate::config::Overrides) {
        o.kms = self.kms;
        o.kms_endpoint = self.kms_endpoint.clone();
    }
}

/// How to reach an s3:// store and the server-side encryption it applies ([store] endpoint,
/// region, path_style and the [sse] fields of the config).
#[derive(Debug, Default, Args)]
pub struct BucketArgs {
    /// S3-compatible endpoint, e.g. http://127.0.0.1:9000 (s3:// only) [default:
    /// $AWS_ENDPOINT_URL, else AWS]
    #[arg(long, value_name = "URL", help_heading = "Bucket")]
    pub endpoint: Option<String>,
    /// AWS region (s3:// only) [default: $AWS_REGION or the profile's, else us-east-1]
    #[arg(long, value_name = "REGION", help_heading = "Bucket")]
    pub region: Option<String>,
    /// Path-style addressing (endpoint/bucket/key), as MinIO, Ceph and most self-hosted
    /// servers need (s3:// only)
    #[arg(long, help_heading = "Bucket")]
    pub path_style: bool,
    /// Server-side encryption requested from the store, on top of client-side encryption
    /// (s3:// only) [default: none]
    #[arg(long, value_enum, value_name = "MODE", help_heading = "Bucket")]
    pub sse: Option<SseMode>,
    /// KMS key id or ARN for --sse kms [default: the account's aws/s3 key]
    #[arg(long, value_name = "ID", help_heading = "Bucket")]
    pub sse_kms_key_id: Option<String>,
    /// SSE-C key file for --sse c (32 bytes, mode 0600); repeatable: the first one writes,
    /// all of them read
    #[arg(long, value_name = "PATH", help_heading = "Bucket")]
    pub sse_c_key_file: Vec<PathBuf>,
    /// Allow --sse c with a plain http:// endpoint, which sends the SSE-C key in clear text
    /// (for a test server on localhost) [default: refused]
    #[arg(long, help_heading = "Bucket")]
    pub allow_sse_c_over_http: bool,
}

impl BucketArgs {
    /// Copy the given flags into `o`.
    pub fn apply(&self, o: &mut Overrides) {
        o.endpoint = self.endpoint.clone();
        o.region = self.region.clone();
        o.path_style = self.path_style;
        o.sse_mode = self.sse;
        o.sse_kms_key_id = self.sse_kms_key_id.clone();
        o.sse_c_key_files = self.sse_c_key_file.clone();
        o.allow_sse_c_over_http = self.allow_sse_c_over_http;
    }
}
