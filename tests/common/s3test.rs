//! What the tests of every S3 server (moto, Ceph RGW) share: buckets of their own, free ports.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use s3cryptfs::store::s3::{S3Retry, S3Settings, S3Timeouts};

static BUCKETS: AtomicU32 = AtomicU32::new(0);

/// Creates a bucket whose name starts with `hint` and is unique to this test process, on the
/// server `client` talks to.
pub async fn create_bucket(client: &aws_sdk_s3::Client, hint: &str) -> Result<String, String> {
    let n = BUCKETS.fetch_add(1, Ordering::Relaxed);
    let hint: String = hint
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    let name = format!("{hint}-{}-{n}", std::process::id());
    client
        .create_bucket()
        .bucket(&name)
        .send()
        .await
        .map_err(|e| {
            format!(
                "create bucket {name}: {}",
                aws_sdk_s3::error::DisplayErrorContext(&e)
            )
        })?;
    Ok(name)
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free port on 127.0.0.1")
}

/// Settings for an `S3Store` on `bucket` of the test server at `endpoint`: static test
/// credentials, path-style, a fixed region (so the AWS chain never looks for IMDS), and quick
/// retries.
pub fn store_settings(
    endpoint: &str,
    bucket: &str,
    access_key: &str,
    secret_key: &str,
) -> S3Settings {
    let mut s = S3Settings::new(bucket, "");
    s.endpoint = Some(endpoint.to_owned());
    s.region = Some("us-east-1".into());
    s.path_style = true;
    // A local test server speaks plain http; SSE-C tests send their keys over it.
    s.allow_sse_c_over_http = true;
    s.access_key_id = Some(access_key.into());
    s.secret_access_key = Some(secret_key.into());
    s.retry = S3Retry {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
    };
    s.timeouts = S3Timeouts {
        connect: Duration::from_secs(5),
        read: Some(Duration::from_secs(60)),
        attempt: None,
        operation: None,
    };
    s
}

/// A plain SDK client of the test server at `endpoint`, independent of `S3Store` (to create
/// buckets and to look at objects from outside), without any SSE setting.
pub fn sdk_client(endpoint: &str, access_key: &str, secret_key: &str) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(access_key, secret_key, None, None, "test"))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}
