//! The TOML config file ([`MountConfig`]), command-line overrides ([`Overrides`]) and the
//! validated settings a command runs with ([`MountSettings`], and [`VaultSettings`] for
//! `init`, `doctor` and every tool); `hints` phrases store errors in terms of flags and fields.
//! The file's tables are in `file.rs`, `-o` options in `options.rs`, the error in `error.rs`;
//! those children import nothing from this file, which only calls into them.
//!
//! Precedence, lowest first: built-in defaults < config file fields < the config file's
//! `[mount] options` list < `-o` options on the command line < explicit command-line flags.
//! Every table denies unknown fields, so a typo is an error naming the field, never a setting
//! silently ignored. Errors say which field is wrong and what to do about it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::crypto::format::{MAX_BLOCK_SIZE, MIN_BLOCK_SIZE, is_valid_block_size};
use crate::crypto::keys::DEFAULT_BLOCK_SIZE;
use crate::store::{StoreError, StoreOptions, StoreUrl};

/// Values given on the command line; `None`/`false`/empty means "not given".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    pub store_url: Option<String>,
    pub key_file: Option<PathBuf>,
    pub passphrase_file: Option<PathBuf>,
    pub block_size: Option<u32>,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub path_style: bool,
    pub sse_mode: Option<SseMode>,
    pub sse_kms_key_id: Option<String>,
    pub sse_c_key_files: Vec<PathBuf>,
    pub mountpoint: Option<PathBuf>,
    pub foreground: bool,
    pub allow_other: bool,
    pub allow_root: bool,
    pub read_only: bool,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub file_mode: Option<Mode>,
    pub dir_mode: Option<Mode>,
    /// `-o` options, each may hold several separated by commas.
    pub options: Vec<String>,
    pub metadata_ttl_secs: Option<u64>,
    pub block_cache_mib: Option<u64>,
    pub memory_limit: Option<ByteSize>,
    pub staging_dir: Option<PathBuf>,
    pub log_level: Option<LogLevel>,
    pub log_file: Option<PathBuf>,
    /// `--allow-core-dumps` (only turns them on).
    pub allow_core_dumps: bool,
    /// `--allow-sse-c-over-http` (only turns it on).
    pub allow_sse_c_over_http: bool,
    /// `--accept-config-rollback`.
    pub accept_config_rollback: bool,
    /// `--kms`.
    pub kms: bool,
    /// `--kms-key-id` (init).
    pub kms_key_id: Option<String>,
    /// `--kms-endpoint`.
    pub kms_endpoint: Option<String>,
    /// `--metrics-addr`.
    pub metrics_addr: Option<String>,
    /// `--metrics-allow-remote` (only turns it on).
    pub metrics_allow_remote: bool,
}

impl MountConfig {
    /// Read and check a config file: syntax, unknown fields, types and values.
    pub fn load(path: &Path) -> ConfigResult<MountConfig> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parse config text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> ConfigResult<MountConfig> {
        let config: MountConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        config.check()?;
        Ok(config)
    }

    /// Checks of single values that do not depend on the command (see also
    /// [`MountConfig::mount_settings`] and [`MountConfig::vault_settings`]), including that
    /// the key and passphrase files are private.
    pub fn check(&self) -> ConfigResult<()> {
        let enc = &self.encryption;
        check_private_file("encryption.key_file", enc.key_file.as_deref())?;
        check_private_file("encryption.passphrase_file", enc.passphrase_file.as_deref())?;
        self.check_values()
    }

    /// [`MountConfig::check`] without looking at files: after merging, key and passphrase
    /// files named on the command line are checked by the reader, with messages about the
    /// file rather than a config field.
    fn check_values(&self) -> ConfigResult<()> {
        if let Some(url) = &self.store.url {
            StoreUrl::parse(url).map_err(|e| ConfigError::invalid("store.url", url_error(e)))?;
        }
        let enc = &self.encryption;
        if enc.key_file.is_some() && enc.passphrase_file.is_some() {
            return Err(ConfigError::invalid(
                "encryption.passphrase_file",
                "set either encryption.key_file or encryption.passphrase_file, not both",
            ));
        }
        if enc.kms && (enc.key_file.is_some() || enc.passphrase_file.is_some()) {
            return Err(ConfigError::invalid(
                "encryption.kms",
                "unlock either through KMS (encryption.kms) or with encryption.key_file / \
                 encryption.passphrase_file, not both",
            ));
        }
        if let Some(url) = &enc.kms_endpoint {
            let lower = url.to_ascii_lowercase();
            if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                return Err(ConfigError::invalid(
                    "encryption.kms_endpoint",
                    format!("{url:?} must be an http:// or https:// URL"),
                ));
            }
        }
        if enc
            .kms_key_id
            .as_deref()
            .is_some_and(|k| k.trim().is_empty())
        {
            return Err(ConfigError::invalid(
                "encryption.kms_key_id",
                "is empty: give a KMS key id, alias (alias/NAME) or ARN",
            ));
        }
        if let Some(bs) = enc.block_size {
            if !is_valid_block_size(bs) {
                return Err(ConfigError::invalid(
                    "encryption.block_size",
                    format!("{bs} is not a power of two from {MIN_BLOCK_SIZE} to {MAX_BLOCK_SIZE}"),
                ));
            }
        }
        self.check_sse()?;
        let m = &self.mount;
        if m.allow_other && m.allow_root {
            return Err(ConfigError::invalid(
                "mount.allow_root",
                "allow_other and allow_root are exclusive (allow_other already includes root)",
            ));
        }
        if m.fsname
            .as_deref()
            .is_some_and(|n| n.is_empty() || n.contains(','))
        {
            return Err(ConfigError::invalid(
                "mount.fsname",
                "must be non-empty and contain no ','",
            ));
        }
        // The options list is checked by applying it to a scratch copy.
        let mut scratch = m.clone();
        for opt in &m.options {
            apply_mount_option(&mut scratch, opt)?;
        }
        if self.cache.block_cache_mib == 0 {
            return Err(ConfigError::invalid("cache.block_cache_mib", "must be > 0"));
        }
        if self.cache.block_cache_mib > 1 << 30 {
            return Err(ConfigError::invalid(
                "cache.block_cache_mib",
                "is larger than any machine's memory",
            ));
        }
        let limit = self.cache.memory_limit.0;
        if !(MIN_MEMORY_LIMIT..=MAX_MEMORY_LIMIT).contains(&limit) {
            return Err(ConfigError::invalid(
                "cache.memory_limit",
                format!(
                    "{limit} bytes: must be between {} MiB and {} TiB",
                    MIN_MEMORY_LIMIT >> 20,
                    MAX_MEMORY_LIMIT >> 40
                ),
            ));
        }
        if self.cache.metadata_ttl_secs > 365 * 24 * 3600 {
            return Err(ConfigError::invalid(
                "cache.metadata_ttl_secs",
                "must be at most one year",
            ));
        }
        if self
            .cache
            .staging_dir
            .as_ref()
            .is_some_and(|d| d.as_os_str().is_empty())
        {
            return Err(ConfigError::invalid(
                "cache.staging_dir",
                "must not be empty",
            ));
        }
        Ok(())
    }

    fn check_sse(&self) -> ConfigResult<()> {
        let sse = &self.sse;
        if let Some(id) = &sse.sse_kms_key_id {
            if sse.mode != SseMode::Kms {
                return Err(ConfigError::invalid(
                    "sse.sse_kms_key_id",
                    format!(
                        "a KMS key id is set but sse is \"{}\"; set sse = \"kms\" or remove it",
                        sse.mode.as_str()
                    ),
                ));
            }
            if id.trim().is_empty() {
                return Err(ConfigError::invalid(
                    "sse.sse_kms_key_id",
                    "must not be empty",
                ));
            }
        }
        if !sse.sse_c_key_files.is_empty() && sse.mode != SseMode::C {
            return Err(ConfigError::invalid(
                "sse.sse_c_key_files",
                format!(
                    "SSE-C key files are set but sse is \"{}\"; set sse = \"c\" or remove them",
                    sse.mode.as_str()
                ),
            ));
        }
        if sse.mode == SseMode::C && sse.sse_c_key_files.is_empty() {
            return Err(ConfigError::invalid(
                "sse.sse_c_key_files",
                "sse = \"c\" needs at least one SSE-C key file (--sse-c-key-file PATH; the \
                 first one writes, all of them read)",
            ));
        }
        let store = &self.store;
        if let Some(endpoint) = &store.endpoint {
            let lower = endpoint.to_ascii_lowercase();
            if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                return Err(ConfigError::invalid(
                    "store.endpoint",
                    format!("{endpoint:?} must be an http:// or https:// URL"),
                ));
            }
            if sse.mode == SseMode::C && lower.starts_with("http://") && !sse.allow_sse_c_over_http
            {
                return Err(ConfigError::invalid(
                    "store.endpoint",
                    format!(
                        "{endpoint:?} is plain http, and sse = \"c\" sends the SSE-C key with \
                         every request: use an https:// endpoint, or set \
                         sse.allow_sse_c_over_http = true (--allow-sse-c-over-http) for a test \
                         server"
                    ),
                ));
            }
        }
        if store.region.as_deref().is_some_and(|r| r.trim().is_empty()) {
            return Err(ConfigError::invalid("store.region", "must not be empty"));
        }
        let url = store.url.as_deref().and_then(|u| StoreUrl::parse(u).ok());
        if let Some(url) = url.filter(|u| !matches!(u, StoreUrl::S3 { .. })) {
            if sse.mode != SseMode::None {
                return Err(ConfigError::invalid(
                    "sse.mode",
                    format!(
                        "SSE applies to s3:// stores; {url} is not one (every object is \
                         encrypted on the client either way): use sse = \"none\""
                    ),
                ));
            }
            let field = if store.endpoint.is_some() {
                Some("store.endpoint")
            } else if store.region.is_some() {
                Some("store.region")
            } else if store.path_style {
                Some("store.path_style")
            } else {
                None
            };
            if let Some(field) = field {
                return Err(ConfigError::invalid(
                    field,
                    format!("applies to s3:// stores; {url} is not one"),
                ));
            }
        }
        Ok(())
    }

    /// How to open the store: connection and SSE settings.
    pub fn store_options(&self) -> StoreOptions {
        StoreOptions {
            endpoint: self.store.endpoint.clone(),
            region: self.store.region.clone(),
            path_style: self.store.path_style,
            sse: self.sse.mode.as_str().to_owned(),
            sse_kms_key_id: self.sse.sse_kms_key_id.clone(),
            sse_c_key_files: self.sse.sse_c_key_files.clone(),
            allow_sse_c_over_http: self.sse.allow_sse_c_over_http,
        }
    }

    /// Apply command-line values on top of this config (see the module docs for the order),
    /// then check the result.
    pub fn merge(mut self, o: &Overrides) -> ConfigResult<MountConfig> {
        // Fold the file's own option list into the fields first, so `-o` and flags win over
        // it. Kernel flags stay in `options`.
        let file_options = std::mem::take(&mut self.mount.options);
        for opt in file_options.iter().chain(&o.options) {
            apply_mount_option(&mut self.mount, opt)?;
        }
        if let Some(url) = &o.store_url {
            // Reported as what it is, not as a config field.
            StoreUrl::parse(url).map_err(|e| ConfigError::StoreUrl(url_error(e)))?;
            self.store.url = Some(url.clone());
        }
        if o.key_file.is_some() || o.passphrase_file.is_some() || o.kms {
            // A secret named on the command line replaces the config's, whichever kind.
            self.encryption.key_file = o.key_file.clone();
            self.encryption.passphrase_file = o.passphrase_file.clone();
            self.encryption.kms = o.kms;
        }
        set(&mut self.encryption.kms_key_id, o.kms_key_id.clone());
        set(&mut self.encryption.kms_endpoint, o.kms_endpoint.clone());
        set(&mut self.encryption.block_size, o.block_size);
        self.encryption.accept_config_rollback |= o.accept_config_rollback;
        set(&mut self.store.endpoint, o.endpoint.clone());
        set(&mut self.store.region, o.region.clone());
        self.store.path_style |= o.path_style;
        if let Some(mode) = o.sse_mode {
            self.sse.mode = mode;
        }
        set(&mut self.sse.sse_kms_key_id, o.sse_kms_key_id.clone());
        if !o.sse_c_key_files.is_empty() {
            self.sse.sse_c_key_files = o.sse_c_key_files.clone();
        }
        self.sse.allow_sse_c_over_http |= o.allow_sse_c_over_http;
        let m = &mut self.mount;
        set(&mut m.mountpoint, o.mountpoint.clone());
        m.foreground |= o.foreground;
        if o.allow_other {
            m.allow_other = true;
            m.allow_root = false;
        }
        if o.allow_root {
            m.allow_root = true;
            m.allow_other = false;
        }
        m.read_only |= o.read_only;
        set(&mut m.uid, o.uid);
        set(&mut m.gid, o.gid);
        set(&mut m.file_mode, o.file_mode);
        set(&mut m.dir_mode, o.dir_mode);
        set(&mut m.metrics_addr, o.metrics_addr.clone());
        m.metrics_allow_remote |= o.metrics_allow_remote;
        if let Some(ttl) = o.metadata_ttl_secs {
            self.cache.metadata_ttl_secs = ttl;
        }
        if let Some(mib) = o.block_cache_mib {
            self.cache.block_cache_mib = mib;
        }
        if let Some(limit) = o.memory_limit {
            self.cache.memory_limit = limit;
        }
        set(&mut self.cache.staging_dir, o.staging_dir.clone());
        if let Some(level) = o.log_level {
            self.logging.level = level;
        }
        set(&mut self.logging.file, o.log_file.clone());
        self.logging.allow_core_dumps |= o.allow_core_dumps;
        self.check_values()?;
        Ok(self)
    }

    fn store_url(&self, command: &str) -> ConfigResult<StoreUrl> {
        let url = self.store.url.as_deref().ok_or_else(|| {
            ConfigError::Missing(format!(
                "no store URL: give STORE_URL (e.g. file:///srv/vault) or set [store] url in \
                 the config; see `s3cryptfs {command} --help`"
            ))
        })?;
        StoreUrl::parse(url).map_err(|e| ConfigError::invalid("store.url", url_error(e)))
    }

    /// What `init` needs.
    pub fn init_settings(&self) -> ConfigResult<VaultSettings> {
        self.vault_settings("init")
    }

    /// What a command that opens the store and unlocks the vault needs (`init`, `doctor`,
    /// every tool); `command` names it in messages.
    pub fn vault_settings(&self, command: &str) -> ConfigResult<VaultSettings> {
        let store_url = self.store_url(command)?;
        Ok(VaultSettings {
            url: self
                .store
                .url
                .clone()
                .unwrap_or_else(|| store_url.to_string()),
            store_url,
            key_file: self.encryption.key_file.clone(),
            passphrase_file: self.encryption.passphrase_file.clone(),
            block_size: self.encryption.block_size.unwrap_or(DEFAULT_BLOCK_SIZE),
            store_options: self.store_options(),
            log_level: self.logging.level,
            rollback: self.rollback_settings(),
            kms: self.kms_settings(),
        })
    }

    /// How a vault is unlocked through (or a new one sealed under) KMS.
    fn kms_settings(&self) -> KmsSettings {
        let enc = &self.encryption;
        KmsSettings {
            unlock: enc.kms
                || (enc.kms_key_id.is_some()
                    && enc.key_file.is_none()
                    && enc.passphrase_file.is_none()),
            key_id: enc.kms_key_id.clone(),
            endpoint: enc.kms_endpoint.clone(),
            region: self.store.region.clone(),
        }
    }

    /// Where config counters are remembered, and whether an older config is accepted.
    fn rollback_settings(&self) -> RollbackSettings {
        RollbackSettings {
            state_dir: default_state_dir(),
            accept_config_rollback: self.encryption.accept_config_rollback,
        }
    }

    /// What `mount` needs, with every default filled in.
    pub fn mount_settings(&self) -> ConfigResult<MountSettings> {
        let store_url = self.store_url("mount")?;
        let m = &self.mount;
        let mountpoint = m.mountpoint.clone().ok_or_else(|| {
            ConfigError::Missing(
                "no mount point: give MOUNTPOINT or set [mount] mountpoint in the config"
                    .to_owned(),
            )
        })?;
        let (uid, gid) = (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        );
        let kernel_flags = m
            .options
            .iter()
            .filter(|o| KERNEL_FLAGS.iter().any(|(k, _)| k == o))
            .cloned()
            .collect();
        let staging_dir = match &self.cache.staging_dir {
            Some(d) => d.clone(),
            None => default_staging_dir()?,
        };
        Ok(MountSettings {
            fsname: m.fsname.clone().unwrap_or_else(|| store_url.to_string()),
            store_url,
            store_options: self.store_options(),
            mountpoint,
            key_file: self.encryption.key_file.clone(),
            passphrase_file: self.encryption.passphrase_file.clone(),
            foreground: m.foreground,
            allow_other: m.allow_other,
            allow_root: m.allow_root,
            default_permissions: m.default_permissions,
            read_only: m.read_only,
            kernel_flags,
            uid: m.uid.unwrap_or(uid),
            gid: m.gid.unwrap_or(gid),
            file_mode: m.file_mode.map_or(0o644, |x| x.0),
            dir_mode: m.dir_mode.map_or(0o755, |x| x.0),
            metadata_ttl: Duration::from_secs(self.cache.metadata_ttl_secs),
            block_cache_bytes: self.cache.block_cache_mib * 1024 * 1024,
            memory_limit: self.cache.memory_limit.0,
            staging_dir: staging_dir.clone(),
            attr_cache_dir: self
                .cache
                .attr_cache
                .then(|| staging_dir.join(ATTR_CACHE_DIR)),
            log_level: self.logging.level,
            log_file: self.logging.file.clone(),
            rollback: self.rollback_settings(),
            kms: self.kms_settings(),
            metrics_addr: metrics_addr(m.metrics_addr.as_deref(), m.metrics_allow_remote)?,
        })
    }
}

/// A URL parse error without the generic "invalid argument: " in front.
fn url_error(e: StoreError) -> String {
    match e {
        StoreError::InvalidArgument(message) => message,
        other => other.to_string(),
    }
}

/// The attribute cache's directory below the staging directory.
pub const ATTR_CACHE_DIR: &str = "attr-cache";

fn set<T>(field: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *field = value;
    }
}

/// Settings of a command that works on a vault without mounting it (`init`, `doctor`, the
/// tools).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultSettings {
    pub store_url: StoreUrl,
    /// The store URL as written on the command line or in the config, for messages.
    pub url: String,
    pub key_file: Option<PathBuf>,
    pub passphrase_file: Option<PathBuf>,
    pub block_size: u32,
    /// Connection and SSE settings of the store.
    pub store_options: StoreOptions,
    pub log_level: LogLevel,
    pub rollback: RollbackSettings,
    pub kms: KmsSettings,
}

/// KMS key slots: `[encryption] kms`, `kms_key_id`, `kms_endpoint` and their flags.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KmsSettings {
    /// Unlock through the vault's KMS slot: `--kms`, `[encryption] kms`, or a `kms_key_id`
    /// with no key or passphrase file.
    pub unlock: bool,
    /// The KMS key of a new vault's slot (`init --kms-key-id`).
    pub key_id: Option<String>,
    /// `--kms-endpoint`; `None`: $AWS_ENDPOINT_URL_KMS, else $AWS_ENDPOINT_URL, else AWS.
    pub endpoint: Option<String>,
    /// `--region` / `[store] region`, which KMS shares with S3.
    pub region: Option<String>,
}

/// Config rollback detection: where this machine keeps the highest vault config counter it
/// has seen per vault ([`default_state_dir`]; `None`: not checked), and whether a config older
/// than that is accepted (`[encryption] accept_config_rollback`, `--accept-config-rollback`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RollbackSettings {
    pub state_dir: Option<PathBuf>,
    pub accept_config_rollback: bool,
}

/// Settings of `s3cryptfs mount`, every default resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountSettings {
    pub store_url: StoreUrl,
    /// Connection and SSE settings of the store.
    pub store_options: StoreOptions,
    pub mountpoint: PathBuf,
    pub key_file: Option<PathBuf>,
    pub passphrase_file: Option<PathBuf>,
    pub foreground: bool,
    pub fsname: String,
    pub allow_other: bool,
    pub allow_root: bool,
    pub default_permissions: bool,
    pub read_only: bool,
    /// Pass-through kernel flags such as `nodev`, `noexec`.
    pub kernel_flags: Vec<String>,
    pub uid: u32,
    pub gid: u32,
    pub file_mode: u32,
    pub dir_mode: u32,
    pub metadata_ttl: Duration,
    pub block_cache_bytes: u64,
    pub memory_limit: u64,
    pub staging_dir: PathBuf,
    /// Where attributes are kept across mounts (`[cache] attr_cache`); `None`: off.
    pub attr_cache_dir: Option<PathBuf>,
    pub log_level: LogLevel,
    pub log_file: Option<PathBuf>,
    pub rollback: RollbackSettings,
    pub kms: KmsSettings,
    /// Where to serve Prometheus metrics (`--metrics-addr`); `None`: no metrics server.
    pub metrics_addr: Option<std::net::SocketAddr>,
}

/// `[mount] metrics_addr`: an `IP:PORT` on a loopback address unless `allow_remote`.
fn metrics_addr(
    value: Option<&str>,
    allow_remote: bool,
) -> ConfigResult<Option<std::net::SocketAddr>> {
    let Some(value) = value else {
        return Ok(None);
    };
    let addr: std::net::SocketAddr = value.parse().map_err(|_| {
        ConfigError::invalid(
            "mount.metrics_addr",
            format!("{value:?} is not IP:PORT (e.g. 127.0.0.1:9420, [::1]:9420)"),
        )
    })?;
    if !addr.ip().is_loopback() && !allow_remote {
        return Err(ConfigError::invalid(
            "mount.metrics_addr",
            format!(
                "{addr} is not a loopback address: metrics are served without authentication; \
                 use 127.0.0.1, or allow it with --metrics-allow-remote \
                 ([mount] metrics_allow_remote = true)"
            ),
        ));
    }
    Ok(Some(addr))
}

mod error;
mod file;
pub mod hints;
mod options;
pub use error::{ConfigError, ConfigResult};
pub use file::{
    ByteSize, CacheSection, DEFAULT_BLOCK_CACHE_MIB, DEFAULT_MEMORY_LIMIT,
    DEFAULT_METADATA_TTL_SECS, EncryptionSection, LogLevel, LoggingSection, MAX_MEMORY_LIMIT,
    MIN_MEMORY_LIMIT, Mode, MountConfig, MountSection, SseMode, SseSection, StoreSection,
};
use options::{KERNEL_FLAGS, check_private_file};
pub use options::{
    KNOWN_OPTIONS, STAGING_DIR_ENV, STATE_DIR_ENV, apply_mount_option, default_staging_dir,
    default_state_dir,
};

#[cfg(test)]
mod tests;
