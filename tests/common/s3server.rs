//! The S3 tests' harness: two independent S3 implementations on 127.0.0.1, reached over real
//! HTTP by the real SDK — moto's S3 server (PyPI `moto[server]`) and s3rver (npm, run by
//! `scripts/s3rver-server.js`, which drops the ETags from its listings as some servers do) —
//! and two SDK interceptors: `Capture` records the SSE headers of every request, `EnforceSseC`
//! refuses SSE-C reads without or with the wrong key the way S3 does (moto does not).
//!
//! One server of each kind is shared by the tests that overlap in time (each test takes a
//! bucket of its own) and stopped when the last of them drops it. A server also dies with the
//! test process: it watches its stdin, a pipe this process holds, and exits when the pipe
//! closes. Tests never skip: without moto or s3rver they fail saying how to install it.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use aws_sdk_s3::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextMut,
    BeforeTransmitInterceptorContextRef,
};
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::BoxError;
use aws_sdk_s3::primitives::SdkBody;
use aws_smithy_runtime_api::client::orchestrator::Metadata as OperationMetadata;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use s3cryptfs::store::s3::S3Settings;

use super::s3test::{create_bucket, sdk_client, store_settings};

pub use super::s3test::free_port;

/// Runs moto's server on the port given as the first argument and exits when stdin closes.
const SERVER_SCRIPT: &str = r#"
import os, sys, threading
def watch_stdin():
    sys.stdin.read()
    os._exit(0)
threading.Thread(target=watch_stdin, daemon=True).start()
from moto.server import main
main(["-H", "127.0.0.1", "-p", sys.argv[1]])
"#;

const INSTALL_HINT: &str = "the S3 tests run against moto's S3 server: install it with \
     `pip install 'moto[server]>=5.1,<5.2'` (scripts/s3-test-server.sh --install does), so that \
     `python3 -c 'import moto.server'` works";

const S3RVER_HINT: &str = "the S3 tests also run against s3rver: install it with \
     `scripts/s3rver-test-server.sh --install` (npm; it goes to ~/.cache/s3cryptfs/s3rver, or \
     $S3CRYPTFS_S3RVER_DIR)";

const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Which S3 implementation a [`TestServer`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// moto 5.1's server (Python).
    Moto,
    /// s3rver 3.7 (Node.js), with ETag-less listings.
    S3rver,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Moto => "moto",
            Kind::S3rver => "s3rver",
        }
    }

    /// The access key and secret the server accepts (s3rver checks SigV4 signatures with its
    /// fixed pair; moto takes any).
    pub fn credentials(self) -> (&'static str, &'static str) {
        match self {
            Kind::Moto => ("testing", "testing"),
            Kind::S3rver => ("S3RVER", "S3RVER"),
        }
    }

    fn install_hint(self) -> &'static str {
        match self {
            Kind::Moto => INSTALL_HINT,
            Kind::S3rver => S3RVER_HINT,
        }
    }

    fn command(self, port: u16, dir: &std::path::Path) -> Command {
        match self {
            Kind::Moto => {
                let mut c = Command::new("python3");
                c.arg("-c").arg(SERVER_SCRIPT).arg(port.to_string());
                c
            }
            Kind::S3rver => {
                let mut c = Command::new("node");
                // s3rver's continuation tokens use a cipher OpenSSL 3 keeps in its legacy
                // provider; without it every paginated listing is a 500.
                c.arg("--openssl-legacy-provider")
                    .arg(concat!(
                        env!("CARGO_MANIFEST_DIR"),
                        "/scripts/s3rver-server.js"
                    ))
                    .arg(port.to_string())
                    .arg(dir.join("data"))
                    .env("NODE_PATH", s3rver_modules());
                c
            }
        }
    }
}

static SHARED_MOTO: Mutex<Weak<TestServer>> = Mutex::new(Weak::new());
static SHARED_S3RVER: Mutex<Weak<TestServer>> = Mutex::new(Weak::new());

/// The tests' name for a server of either kind; most tests run on moto.
pub type MotoServer = TestServer;

pub struct TestServer {
    kind: Kind,
    child: Child,
    /// Held open: the server exits when it closes.
    stdin: Option<ChildStdin>,
    endpoint: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// The moto server the running tests share, started if none is running.
    pub fn shared() -> Arc<TestServer> {
        TestServer::shared_of(Kind::Moto)
    }

    /// The s3rver server the running tests share, started if none is running.
    pub fn shared_s3rver() -> Arc<TestServer> {
        TestServer::shared_of(Kind::S3rver)
    }

    fn shared_of(kind: Kind) -> Arc<TestServer> {
        let slot = match kind {
            Kind::Moto => &SHARED_MOTO,
            Kind::S3rver => &SHARED_S3RVER,
        };
        let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(server) = slot.upgrade() {
            return server;
        }
        let server = Arc::new(TestServer::start_of(kind));
        *slot = Arc::downgrade(&server);
        server
    }

    /// Starts a server of its own on a free port and waits until it answers.
    fn start_of(kind: Kind) -> TestServer {
        match kind {
            Kind::Moto => require_moto(),
            Kind::S3rver => require_s3rver(),
        }
        let name = kind.name();
        let mut last_log = String::new();
        for _ in 0..3 {
            match TestServer::try_start(kind) {
                Ok(server) => return server,
                // Another process took the port between probing and binding: try another.
                Err(log)
                    if log.contains("Address already in use") || log.contains("EADDRINUSE") =>
                {
                    last_log = log
                }
                Err(log) => panic!("{name}'s server did not start:\n{log}"),
            }
        }
        panic!("{name}'s server found no free port:\n{last_log}");
    }

    fn try_start(kind: Kind) -> Result<TestServer, String> {
        let name = kind.name();
        let port = free_port();
        let dir = tempfile::tempdir().expect("temporary directory for the server's log");
        let log = dir.path().join(format!("{name}.log"));
        let log_file = std::fs::File::create(&log).expect("create the server log");
        let err_file = log_file.try_clone().expect("clone the server log handle");
        let mut child = kind
            .command(port, dir.path())
            .stdin(Stdio::piped())
            .stdout(log_file)
            .stderr(err_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({e}): {}", kind.install_hint()));
        let stdin = child.stdin.take();
        let mut server = TestServer {
            kind,
            child,
            stdin,
            endpoint: format!("http://127.0.0.1:{port}"),
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("exited with {status}:\n{}", server.log_text()));
            }
            if answers_http(port) {
                return Ok(server);
            }
            if Instant::now() > deadline {
                let log = server.log_text();
                server.stop();
                panic!("{name}'s server did not answer within {START_TIMEOUT:?}:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[cfg(feature = "fuse_tests")]
    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Settings for an `S3Store` on `bucket` of this server (`s3test::store_settings`).
    pub fn settings(&self, bucket: &str) -> S3Settings {
        let (access_key, secret_key) = self.kind.credentials();
        store_settings(&self.endpoint, bucket, access_key, secret_key)
    }

    /// A plain SDK client of this server, independent of `S3Store` (to create buckets and to
    /// look at objects from outside).
    pub fn client(&self) -> aws_sdk_s3::Client {
        let (access_key, secret_key) = self.kind.credentials();
        sdk_client(&self.endpoint, access_key, secret_key)
    }

    /// Creates a fresh bucket whose name starts with `hint`.
    pub async fn bucket(&self, hint: &str) -> String {
        create_bucket(&self.client(), hint)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", self.log_text()))
    }

    fn stop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Panics, saying how to install it, unless a usable moto server can be imported.
pub fn require_moto() {
    let out = Command::new("python3")
        .args(["-c", "import moto.server, moto; print(moto.__version__)"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}): {INSTALL_HINT}"));
    if !out.status.success() {
        panic!(
            "moto is not installed: {INSTALL_HINT}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    // moto 5.2 answers CompleteMultipartUpload with a <CompleteMultipartUploadResponse> root
    // (S3: <CompleteMultipartUploadResult>), which the Rust SDK rightly refuses.
    if version.starts_with("5.2.") {
        panic!(
            "moto {version} is installed, whose CompleteMultipartUpload answer has the wrong XML \
             root element for the Rust SDK: {INSTALL_HINT}"
        );
    }
}

/// Where `scripts/s3rver-test-server.sh --install` puts s3rver's node_modules.
fn s3rver_modules() -> PathBuf {
    if let Some(dir) = std::env::var_os("S3CRYPTFS_S3RVER_DIR") {
        return PathBuf::from(dir).join("node_modules");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".cache/s3cryptfs/s3rver/node_modules")
}

/// Panics, saying how to install it, unless node and s3rver are installed.
pub fn require_s3rver() {
    let modules = s3rver_modules();
    if !modules.join("s3rver/package.json").is_file() {
        panic!(
            "s3rver is not installed in {}: {S3RVER_HINT}",
            modules.display()
        );
    }
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!("`node --version` failed ({}): {S3RVER_HINT}", out.status),
        Err(e) => panic!("cannot run node ({e}): install Node.js (apt-get install nodejs npm)"),
    }
}

fn answers_http(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}

// ---- interceptors ----

/// What every request of each kind carries on the wire.
#[derive(Clone, Debug, Default)]
pub struct Capture {
    sse: Arc<Mutex<Vec<CapturedRequest>>>,
    payload: Arc<Mutex<Vec<(String, String)>>>,
}

/// Operation name and the SSE headers sent (names lowercase).
pub type CapturedRequest = (String, BTreeMap<String, String>);

impl Capture {
    pub fn take(&self) -> Vec<CapturedRequest> {
        std::mem::take(&mut *self.sse.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Operation name and the `x-amz-content-sha256` header (as signed) of every request.
    pub fn take_payload_hashes(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.payload.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Intercept for Capture {
    fn name(&self) -> &'static str {
        "Capture"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg
            .load::<OperationMetadata>()
            .map(|m| m.name().to_owned())
            .unwrap_or_default();
        let sse_headers = context
            .request()
            .headers()
            .iter()
            .filter(|(name, _)| name.to_ascii_lowercase().contains("server-side-encryption"))
            .map(|(name, value)| (name.to_ascii_lowercase(), value.to_owned()))
            .collect();
        let payload_hash = context
            .request()
            .headers()
            .get("x-amz-content-sha256")
            .unwrap_or_default()
            .to_owned();
        self.payload
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((operation.clone(), payload_hash));
        self.sse
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((operation, sse_headers));
        Ok(())
    }
}

/// Plays the server's part of SSE-C, which moto does not: remembers the SSE-C key MD5 each
/// object was written with (PutObject, CreateMultipartUpload + CompleteMultipartUpload,
/// CopyObject's destination) and refuses GET, HEAD and CopyObject's source as S3 does: 400
/// InvalidRequest without the object's key (or with a key for an object stored without SSE-C),
/// 403 AccessDenied with another key. Objects are identified by request path. The verdict is
/// reached before the request is signed and kept in its config bag until the answer is read;
/// a refused CopyObject is pointed at a missing source first, so that moto copies nothing.
#[derive(Clone, Debug, Default)]
pub struct EnforceSseC(Arc<Mutex<SseCState>>);

#[derive(Debug, Default)]
pub struct SseCState {
    /// Object path -> the key MD5 it was written with.
    written: HashMap<String, Option<String>>,
    /// Object path -> the key MD5 of the multipart upload last created there.
    uploads: HashMap<String, Option<String>>,
}

/// What an intercepted request sent (operation, object path, SSE-C key MD5) and the refusal
/// (status, error body) it is to get.
#[derive(Clone, Debug)]
struct SentRequest {
    operation: String,
    path: String,
    md5: Option<String>,
    refusal: Option<(u16, &'static str)>,
}

impl Storable for SentRequest {
    type Storer = StoreReplace<Self>;
}

impl Intercept for EnforceSseC {
    fn name(&self) -> &'static str {
        "EnforceSseC"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg
            .load::<OperationMetadata>()
            .map(|m| m.name().to_owned())
            .unwrap_or_default();
        let request = context.request_mut();
        let headers = request.headers();
        // The path alone: the query differs by operation (x-id=GetObject, ...).
        let uri = request.uri();
        let path = uri.split('?').next().unwrap_or_default();
        let path = format!("/{}", path.splitn(4, '/').nth(3).unwrap_or_default());
        let md5 = headers
            .get("x-amz-server-side-encryption-customer-key-md5")
            .map(str::to_owned);
        // The object a read checks, and the key MD5 the read carries.
        let (read_path, read_md5) = match operation.as_str() {
            "CopyObject" => {
                let source = headers.get("x-amz-copy-source").unwrap_or_default();
                let source_md5 =
                    headers.get("x-amz-copy-source-server-side-encryption-customer-key-md5");
                (
                    format!("/{}", source.trim_start_matches('/')),
                    source_md5.map(str::to_owned),
                )
            }
            "GetObject" | "HeadObject" => (path.clone(), md5.clone()),
            _ => (String::new(), None),
        };
        let state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let refusal = match state.written.get(&read_path) {
            Some(Some(stored)) if read_md5.as_ref() == Some(stored) => None,
            Some(Some(_)) if read_md5.is_some() => Some((
                403,
                "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
            )),
            Some(Some(_)) => Some((
                400,
                "<Error><Code>InvalidRequest</Code><Message>The object was stored using a form \
                 of Server Side Encryption. The correct parameters must be provided to retrieve \
                 the object.</Message></Error>",
            )),
            Some(None) if read_md5.is_some() => Some((
                400,
                "<Error><Code>InvalidRequest</Code><Message>The encryption parameters are not \
                 applicable to this object.</Message></Error>",
            )),
            _ => None,
        };
        drop(state);
        if refusal.is_some() && operation == "CopyObject" {
            let bucket = path
                .trim_start_matches('/')
                .split('/')
                .next()
                .unwrap_or_default();
            request.headers_mut().insert(
                "x-amz-copy-source",
                format!("{bucket}/.enforce-sse-c-refused-this-copy"),
            );
        }
        cfg.interceptor_state().store_put(SentRequest {
            operation,
            path,
            md5,
            refusal,
        });
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(sent) = cfg.load::<SentRequest>().cloned() else {
            return Ok(());
        };
        if let Some((status, body)) = sent.refusal {
            let response = context.response_mut();
            *response.status_mut() = StatusCode::try_from(status)?;
            *response.body_mut() = SdkBody::from(body);
            return Ok(());
        }
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if !context.response().status().is_success() {
            return Ok(());
        }
        match sent.operation.as_str() {
            "PutObject" | "CopyObject" => {
                state.written.insert(sent.path, sent.md5);
            }
            "CreateMultipartUpload" => {
                state.uploads.insert(sent.path, sent.md5);
            }
            "CompleteMultipartUpload" => {
                let md5 = state.uploads.remove(&sent.path).flatten();
                state.written.insert(sent.path, md5);
            }
            "DeleteObject" => {
                state.written.remove(&sent.path);
            }
            _ => {}
        }
        Ok(())
    }
}
