//! How an [`S3Store`](super::S3Store) reaches its bucket: endpoint, region, addressing,
//! credentials, timeouts and retries, and the SDK client built from them.
//!
//! Credentials and region come from the standard AWS chain (environment, shared config and
//! credentials files and profiles, web identity, ECS/IMDS) unless the settings name them. The
//! SDK's standard retry mode does the retrying (exponential backoff with jitter on 5xx,
//! throttling, timeouts and connection errors; never on a 4xx that cannot succeed).

use std::fmt;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::default_provider::region::DefaultRegionChain;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation, SharedInterceptor,
};

use crate::store::{StoreError, StoreResult, StoreUrl};

/// Region used when neither the settings nor the AWS chain name one.
pub const DEFAULT_REGION: &str = "us-east-1";

/// Connection settings of an S3 store.
#[derive(Clone)]
pub struct S3Settings {
    pub bucket: String,
    /// Key prefix the vault lives under (empty or ending with `/`). The store itself takes full
    /// keys; [`crate::store::open`] hands this prefix to its caller.
    pub prefix: String,
    /// Endpoint URL of an S3-compatible server (`http://127.0.0.1:9000`); `None` = AWS, or
    /// `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_S3` when set.
    pub endpoint: Option<String>,
    /// `None` = the AWS chain (`AWS_REGION`, profile, IMDS), else `us-east-1`.
    pub region: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`) instead of virtual-hosted
    /// (`bucket.endpoint/key`); most self-hosted servers need it.
    pub path_style: bool,
    /// Explicit static credentials; both or neither of id and secret.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    /// Profile of the shared config / credentials files (`AWS_PROFILE` otherwise).
    pub profile: Option<String>,
    pub timeouts: S3Timeouts,
    pub retry: S3Retry,
    /// Fail writes whose response does not confirm the requested server-side encryption.
    pub verify_sse: bool,
    /// Allow SSE-C with a plain `http://` endpoint. Off by default: every SSE-C request carries
    /// the key, which anyone on the path could then read.
    pub allow_sse_c_over_http: bool,
    /// Extra SDK interceptors (request capture in tests, instrumentation).
    pub interceptors: Vec<SharedInterceptor>,
    /// Largest source CopyObject copies in one request (S3: 5 GiB); larger ones are copied
    /// with UploadPartCopy. Lowered only by tests.
    pub max_copy_object_bytes: u64,
    /// Part size of a multipart copy (raised as needed to stay within 10,000 parts).
    pub copy_part_bytes: u64,
}

impl S3Settings {
    /// Settings for `bucket`/`prefix` with every other field at its default.
    pub fn new(bucket: impl Into<String>, prefix: impl Into<String>) -> S3Settings {
        S3Settings {
            bucket: bucket.into(),
            prefix: prefix.into(),
            endpoint: None,
            region: None,
            path_style: false,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            profile: None,
            timeouts: S3Timeouts::default(),
            retry: S3Retry::default(),
            verify_sse: true,
            allow_sse_c_over_http: false,
            interceptors: Vec::new(),
            max_copy_object_bytes: crate::store::MAX_SINGLE_PUT,
            copy_part_bytes: 512 * 1024 * 1024,
        }
    }

    /// Settings for an `s3://bucket/prefix` URL; `None` for other schemes.
    pub fn from_url(url: &StoreUrl) -> Option<S3Settings> {
        match url {
            StoreUrl::S3 { bucket, prefix } => Some(S3Settings::new(bucket, prefix)),
            _ => None,
        }
    }

    fn check(&self) -> StoreResult<()> {
        let invalid = |msg: String| StoreError::InvalidArgument(format!("s3 settings: {msg}"));
        if self.bucket.is_empty() {
            return Err(invalid("no bucket name".into()));
        }
        if let Some(endpoint) = &self.endpoint {
            let lower = endpoint.to_ascii_lowercase();
            if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                return Err(invalid(format!(
                    "endpoint {endpoint:?} must be an http:// or https:// URL"
                )));
            }
        }
        if self.access_key_id.is_some() != self.secret_access_key.is_some() {
            return Err(invalid(
                "access_key_id and secret_access_key must be given together".into(),
            ));
        }
        if self.session_token.is_some() && self.access_key_id.is_none() {
            return Err(invalid(
                "session_token needs access_key_id and secret_access_key".into(),
            ));
        }
        if self.retry.max_attempts == 0 {
            return Err(invalid("retry.max_attempts must be at least 1".into()));
        }
        Ok(())
    }
}

impl fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("S3Settings")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("path_style", &self.path_style)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &redacted(&self.secret_access_key))
            .field("session_token", &redacted(&self.session_token))
            .field("profile", &self.profile)
            .field("timeouts", &self.timeouts)
            .field("retry", &self.retry)
            .field("verify_sse", &self.verify_sse)
            .field("allow_sse_c_over_http", &self.allow_sse_c_over_http)
            .field("interceptors", &self.interceptors.len())
            .finish()
    }
}

/// Time limits of one request. The read timeout runs from sending the request to the first
/// byte of the answer, so it also bounds uploading a part: keep it well above a part's upload
/// time on the slowest link. Bodies that stall mid-transfer are cut by the SDK's stalled-stream
/// protection.
#[derive(Clone, Debug)]
pub struct S3Timeouts {
    pub connect: Duration,
    pub read: Option<Duration>,
    /// Limit of one attempt, first byte to last.
    pub attempt: Option<Duration>,
    /// Limit of a whole operation, retries included.
    pub operation: Option<Duration>,
}

impl Default for S3Timeouts {
    fn default() -> Self {
        S3Timeouts {
            connect: Duration::from_secs(10),
            read: Some(Duration::from_secs(120)),
            attempt: None,
            operation: None,
        }
    }
}

/// The SDK's standard retry mode: up to `max_attempts` tries, exponential backoff with full
/// jitter from `initial_backoff` up to `max_backoff`.
#[derive(Clone, Debug)]
pub struct S3Retry {
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for S3Retry {
    fn default() -> Self {
        S3Retry {
            max_attempts: 5,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(20),
        }
    }
}

/// An SDK client for `settings`, with the region and endpoint it resolved (for messages).
pub(super) struct Connection {
    pub client: Client,
    pub region: String,
    pub endpoint: String,
}

/// The SDK's shared config for `settings` (region, retries, timeouts, credentials chain,
/// endpoint), with the region it resolved.
pub async fn sdk_config(settings: &S3Settings) -> StoreResult<(aws_config::SdkConfig, String)> {
    settings.check()?;
    let region = resolve_region(settings).await;
    let retry = RetryConfig::standard()
        .with_max_attempts(settings.retry.max_attempts)
        .with_initial_backoff(settings.retry.initial_backoff)
        .with_max_backoff(settings.retry.max_backoff);
    let t = &settings.timeouts;
    let mut timeouts = TimeoutConfig::builder().connect_timeout(t.connect);
    timeouts
        .set_read_timeout(t.read)
        .set_operation_attempt_timeout(t.attempt)
        .set_operation_timeout(t.operation);
    let timeouts = timeouts.build();

    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.clone()))
        .retry_config(retry)
        .timeout_config(timeouts);
    if let Some(profile) = &settings.profile {
        loader = loader.profile_name(profile);
    }
    if let (Some(id), Some(secret)) = (&settings.access_key_id, &settings.secret_access_key) {
        loader = loader.credentials_provider(Credentials::new(
            id,
            secret,
            settings.session_token.clone(),
            None,
            "s3cryptfs-settings",
        ));
    }
    if let Some(endpoint) = &settings.endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    Ok((loader.load().await, region))
}

pub(super) async fn connect(settings: &S3Settings) -> StoreResult<Connection> {
    let (sdk, region) = sdk_config(settings).await?;

    // Checksums only where S3 requires them: third-party servers (older Ceph, MinIO) refuse the
    // aws-chunked trailer encoding the SDK otherwise uses, and the data is authenticated by the
    // client-side AEAD anyway.
    let mut config = aws_sdk_s3::config::Builder::from(&sdk)
        .force_path_style(settings.path_style)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
    for interceptor in &settings.interceptors {
        config.push_interceptor(interceptor.clone());
    }
    let endpoint = settings
        .endpoint
        .clone()
        .or_else(|| std::env::var("AWS_ENDPOINT_URL_S3").ok())
        .or_else(|| sdk.endpoint_url().map(str::to_owned))
        .unwrap_or_else(|| format!("AWS S3 ({region})"));
    log::debug!(
        "s3://{}/{}: endpoint {endpoint}, region {region}, {} addressing",
        settings.bucket,
        settings.prefix,
        if settings.path_style {
            "path-style"
        } else {
            "virtual-hosted"
        }
    );
    Ok(Connection {
        client: Client::from_conf(config.build()),
        region,
        endpoint,
    })
}

async fn resolve_region(settings: &S3Settings) -> String {
    if let Some(region) = &settings.region {
        return region.clone();
    }
    let mut chain = DefaultRegionChain::builder();
    if let Some(profile) = &settings.profile {
        chain = chain.profile_name(profile);
    }
    match chain.build().region().await {
        Some(region) => region.to_string(),
        None => {
            log::info!(
                "s3://{}: no AWS region configured (in the settings, AWS_REGION or a profile); using \
                 {DEFAULT_REGION}",
                settings.bucket
            );
            DEFAULT_REGION.to_owned()
        }
    }
}
