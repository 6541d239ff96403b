//! The Ceph tests' harness: a one-node Ceph cluster with a RADOS Gateway on 127.0.0.1, started
//! by `scripts/ceph-test-server.sh` in a temporary directory on a free port. Unlike moto, RGW
//! enforces SSE-C and does SSE-KMS (with the script's test keys), so the SSE modes are checked
//! against a real server. Include next to `common` and `s3server`.
//!
//! One cluster is shared by the tests that overlap in time and stopped when the last of them
//! drops it; the script's watcher also stops it when this process dies without dropping it.
//! Tests never skip: without Ceph they fail saying how to install it.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Instant;

use s3cryptfs::store::s3::S3Settings;

use super::find_in_path;
use super::s3test::{create_bucket, free_port, sdk_client, store_settings};

const INSTALL_HINT: &str = "the Ceph tests run against a one-node Ceph cluster (RADOS Gateway): \
     install it with `scripts/ceph-test-server.sh --install` (Debian packages ceph-mon ceph-osd \
     radosgw ceph-common)";

/// The commands `scripts/ceph-test-server.sh start` runs.
const CEPH_COMMANDS: [&str; 6] = [
    "ceph-mon",
    "ceph-osd",
    "radosgw",
    "radosgw-admin",
    "monmaptool",
    "ceph",
];

/// The `testing` KMS backend's key ids the script configures.
pub const KMS_KEY_ID: &str = "testkey-1";

static SHARED: Mutex<Weak<CephServer>> = Mutex::new(Weak::new());

pub struct CephServer {
    dir: tempfile::TempDir,
    endpoint: String,
    access_key: String,
    secret_key: String,
    /// How long `start` took, for the record.
    pub start_time: std::time::Duration,
}

impl CephServer {
    /// The cluster the running tests share, started if none is running.
    pub fn shared() -> Arc<CephServer> {
        let mut slot = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(server) = slot.upgrade() {
            return server;
        }
        let server = Arc::new(CephServer::start());
        *slot = Arc::downgrade(&server);
        server
    }

    /// Starts a cluster of its own and waits until S3 answers.
    pub fn start() -> CephServer {
        require_ceph();
        let mut failures = String::new();
        // A port taken between probing and binding shows as a failed start: try another.
        for _ in 0..2 {
            match CephServer::try_start() {
                Ok(server) => return server,
                Err(why) => failures.push_str(&why),
            }
        }
        panic!("the Ceph test cluster did not start:\n{failures}");
    }

    fn try_start() -> Result<CephServer, String> {
        let dir = tempfile::Builder::new()
            .prefix("s3cryptfs-ceph-")
            .tempdir()
            .expect("temporary directory for the Ceph cluster");
        let port = free_port();
        let started = Instant::now();
        let out = Command::new(script())
            .arg("start")
            .arg(dir.path())
            .arg(port.to_string())
            .env("S3CRYPTFS_CEPH_OWNER_PID", std::process::id().to_string())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script().display()));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let field = |name: &str| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
                .map(str::to_owned)
        };
        let server = match (field("endpoint"), field("access_key"), field("secret_key")) {
            (Some(endpoint), Some(access_key), Some(secret_key)) if out.status.success() => {
                CephServer {
                    dir,
                    endpoint,
                    access_key,
                    secret_key,
                    start_time: started.elapsed(),
                }
            }
            _ => {
                stop(&dir);
                return Err(format!(
                    "`scripts/ceph-test-server.sh start DIR {port}` exited with {}\n\
                     --- stdout ---\n{stdout}\n--- stderr ---\n{}\n",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        };
        eprintln!(
            "Ceph test cluster at {} started in {:.1} s",
            server.endpoint,
            server.start_time.as_secs_f64()
        );
        Ok(server)
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    pub fn secret_key(&self) -> &str {
        &self.secret_key
    }

    /// A plain SDK client of the gateway with the test user's keys, independent of
    /// `s3cryptfs` and without any SSE setting.
    pub fn client(&self) -> aws_sdk_s3::Client {
        sdk_client(&self.endpoint, &self.access_key, &self.secret_key)
    }

    /// Settings for an `S3Store` on `bucket` of the gateway (`s3test::store_settings`).
    pub fn settings(&self, bucket: &str) -> S3Settings {
        store_settings(&self.endpoint, bucket, &self.access_key, &self.secret_key)
    }

    /// Creates a fresh bucket whose name starts with `hint`.
    pub async fn bucket(&self, hint: &str) -> String {
        create_bucket(&self.client(), hint)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

impl Drop for CephServer {
    fn drop(&mut self) {
        stop(&self.dir);
    }
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/ceph-test-server.sh")
}

fn stop(dir: &tempfile::TempDir) {
    match Command::new(script()).arg("stop").arg(dir.path()).output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => eprintln!(
            "stopping the Ceph test cluster in {} failed: {}",
            dir.path().display(),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => eprintln!("cannot run {}: {e}", script().display()),
    }
}

/// Panics, saying how to install it, unless every Ceph command the script runs is installed.
pub fn require_ceph() {
    let missing: Vec<&str> = CEPH_COMMANDS
        .into_iter()
        .filter(|c| find_in_path(c).is_none())
        .collect();
    if !missing.is_empty() {
        panic!(
            "Ceph is not installed ({} missing): {INSTALL_HINT}",
            missing.join(", ")
        );
    }
}
