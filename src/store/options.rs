//! Connection and server-side-encryption settings a command gives when it opens a store
//! ([`open_store`]): endpoint, region, path-style addressing and SSE, whichever flag or config
//! field they came from. [`open`] is [`open_store`] with none of them.
//!
//! This file opens every kind of store, so nothing else in `store` imports it (the stores and
//! their shared types stay below it in the import graph).

use std::path::PathBuf;
use std::sync::Arc;

use super::dir::DirStore;
use super::error::{S3Setting, StoreError, StoreResult};
use super::memory::MemoryStore;
use super::object_store::DynStore;
use super::s3::{DEFAULT_REGION, S3Settings, S3Store};
use super::sse::SseMode;
use super::url::StoreUrl;

/// How to reach an `s3://` store and which SSE to request. The default is what
/// [`open`] uses: everything from the environment, no SSE.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreOptions {
    /// Endpoint URL of an S3-compatible server; `None` = `AWS_ENDPOINT_URL` or AWS.
    pub endpoint: Option<String>,
    /// `None` = the AWS chain (`AWS_REGION`, profile), else `us-east-1`.
    pub region: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`).
    pub path_style: bool,
    /// `none`, `s3`, `kms` or `c` (as the config and `--sse` spell them).
    pub sse: String,
    pub sse_kms_key_id: Option<String>,
    /// SSE-C key files: the first writes, all read.
    pub sse_c_key_files: Vec<PathBuf>,
    /// Allow SSE-C with a plain `http://` endpoint (see [`S3Settings::allow_sse_c_over_http`]).
    pub allow_sse_c_over_http: bool,
}

impl StoreOptions {
    /// Whether any SSE is requested.
    pub fn has_sse(&self) -> bool {
        !matches!(self.sse.trim(), "" | "none")
    }

    /// Whether any connection setting is given (they only apply to `s3://` stores).
    pub fn has_connection_settings(&self) -> bool {
        self.endpoint.is_some() || self.region.is_some() || self.path_style
    }

    /// The SSE mode, SSE-C key files read.
    pub fn sse_mode(&self) -> StoreResult<SseMode> {
        SseMode::from_config(
            if self.sse.is_empty() {
                "none"
            } else {
                &self.sse
            },
            self.sse_kms_key_id.as_deref(),
            false,
            &self.sse_c_key_files,
        )
    }

    /// S3 settings for `bucket`/`prefix`. Without a region from the options or the
    /// environment, an explicit endpoint gets `us-east-1` so that the SDK's region chain does
    /// not ask the EC2 instance metadata service (S3-compatible servers ignore the region).
    pub fn s3_settings(&self, bucket: &str, prefix: &str) -> S3Settings {
        let mut settings = S3Settings::new(bucket, prefix);
        settings.endpoint = self.endpoint.clone();
        settings.path_style = self.path_style;
        settings.region = self.region.clone();
        settings.allow_sse_c_over_http = self.allow_sse_c_over_http;
        let env_set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
        let endpoint_given = self.endpoint.is_some()
            || env_set("AWS_ENDPOINT_URL")
            || env_set("AWS_ENDPOINT_URL_S3");
        if settings.region.is_none()
            && endpoint_given
            && !env_set("AWS_REGION")
            && !env_set("AWS_DEFAULT_REGION")
            && !env_set("AWS_PROFILE")
        {
            settings.region = Some(DEFAULT_REGION.to_owned());
        }
        settings
    }
}

/// Open the store `url` names with `opts`; returns the store and the key prefix the vault
/// lives under (see [`open`]). SSE and connection settings on a `file://` or `mem://`
/// store are refused: those stores do not implement SSE.
pub fn open_store(url: &StoreUrl, opts: &StoreOptions) -> StoreResult<(DynStore, String)> {
    match url {
        StoreUrl::S3 { bucket, prefix } => {
            let sse = opts.sse_mode()?;
            let store = S3Store::connect_blocking(opts.s3_settings(bucket, prefix), sse)?;
            Ok((Arc::new(store), prefix.clone()))
        }
        _ if opts.has_sse() => Err(StoreError::S3Only {
            url: url.to_string(),
            setting: S3Setting::Sse,
        }),
        _ if opts.has_connection_settings() => Err(StoreError::S3Only {
            url: url.to_string(),
            setting: S3Setting::Connection,
        }),
        StoreUrl::File { path } => Ok((Arc::new(DirStore::open(path)?), String::new())),
        StoreUrl::Memory { name } => Ok((MemoryStore::named(name), String::new())),
    }
}

/// Open the store a URL names: `file:///path` (DirStore), `mem://name` (a MemoryStore
/// shared by every opener of the same name in this process) or `s3://bucket/prefix` (an
/// S3Store configured from the environment, without SSE; [`open_store`] takes settings).
/// Returns the store and the key prefix the vault lives under (empty for the local stores,
/// the URL's prefix for S3).
pub fn open(url: &StoreUrl) -> StoreResult<(DynStore, String)> {
    open_store(url, &StoreOptions::default())
}
