//! What the tests of every S3 server (moto, Ceph RGW) share: buckets of their own, free ports.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};

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
