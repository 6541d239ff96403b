//! The control socket of a running mount: `s3cryptfs status` asks it for a [`MountStatus`].
//!
//! A unix socket next to the mount's pid file (`/run/s3cryptfs/` for root, else
//! `$XDG_RUNTIME_DIR/s3cryptfs/`, a directory of mode 0700), itself mode 0600, and every
//! connection's peer is checked with `SO_PEERCRED`: only the mount's own user gets an answer,
//! whatever the file modes say. Never a network port. One request per connection: the line
//! `status`, answered with one line of JSON; anything else gets `error: ...`. Requests are read
//! with a bound (a line of at most [`MAX_REQUEST`] bytes) and a timeout, so a client cannot
//! make the daemon hold memory or a task.

use std::future::Future;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

use crate::fs::FsStatus;

/// Longest request line read.
const MAX_REQUEST: usize = 64;
/// How long a client may take to send its request, and `status` to wait for the answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// What `s3cryptfs status` shows of one mount.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountStatus {
    pub mountpoint: String,
    pub store_url: String,
    /// 32 hex digits (the vault config's `vault_id`).
    pub vault_id: String,
    pub pid: u32,
    pub uptime_secs: u64,
    /// The control socket that answered.
    pub socket: String,
    #[serde(flatten)]
    pub fs: FsStatus,
}

impl MountStatus {
    /// Whether uploads are failing (`status` then exits non-zero).
    pub fn failing(&self) -> bool {
        self.fs.files_failed > 0
    }

    /// `3 file(s): a (uploading), b (failed: ...)`, or `None` when every file is stored.
    pub fn pending_summary(&self) -> Option<String> {
        const SHOWN: usize = 10;
        let pending = &self.fs.pending;
        if pending.is_empty() {
            return None;
        }
        let mut names: Vec<String> = pending
            .iter()
            .take(SHOWN)
            .map(|p| match &p.last_error {
                Some(e) => format!("{} (failed: {e})", p.path),
                None => format!("{} ({})", p.path, p.state.name()),
            })
            .collect();
        if pending.len() > SHOWN {
            names.push(format!("and {} more", pending.len() - SHOWN));
        }
        Some(format!("{} file(s): {}", pending.len(), names.join(", ")))
    }
}

/// Builds the report for each request.
pub type Report = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = MountStatus> + Send>> + Send + Sync>;

/// The bound control socket; its file is removed when dropped.
pub struct ControlSocket {
    path: PathBuf,
    listener: Option<std::os::unix::net::UnixListener>,
}

impl ControlSocket {
    /// Bind at `path` (replacing a socket a dead daemon left there), mode 0600. The
    /// directory must exist and be private (the pid file's).
    pub fn bind(path: &Path) -> io::Result<ControlSocket> {
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path)?,
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a socket", path.display()),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let listener = std::os::unix::net::UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        listener.set_nonblocking(true)?;
        Ok(ControlSocket {
            path: path.to_path_buf(),
            listener: Some(listener),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Answer requests on the current tokio runtime until it shuts down.
    pub fn serve(&mut self, report: Report) -> io::Result<()> {
        let Some(std_listener) = self.listener.take() else {
            return Ok(());
        };
        let listener = UnixListener::from_std(std_listener)?;
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        let report = report.clone();
                        tokio::spawn(async move { answer(stream, report).await });
                    }
                    Err(e) => {
                        log::warn!("control socket: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        Ok(())
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn answer(mut stream: UnixStream, report: Report) {
    let me = nix::unistd::geteuid().as_raw();
    let reply = match stream.peer_cred() {
        Ok(cred) if cred.uid() == me => {
            match tokio::time::timeout(TIMEOUT, read_request(&mut stream)).await {
                Ok(Ok(line)) if line == "status" => match serde_json::to_string(&report().await) {
                    Ok(json) => json,
                    Err(e) => format!("error: cannot encode the status: {e}"),
                },
                Ok(Ok(line)) => format!("error: unknown request {line:?} (only `status`)"),
                Ok(Err(e)) => format!("error: {e}"),
                Err(_) => "error: no request within the timeout".to_owned(),
            }
        }
        Ok(cred) => {
            log::warn!(
                "control socket: refused a connection from uid {} (pid {:?}): only uid {me} may ask",
                cred.uid(),
                cred.pid()
            );
            format!("error: refused: this mount answers only its own user (uid {me})")
        }
        Err(e) => format!("error: cannot identify the peer: {e}"),
    };
    let _ = stream.write_all(format!("{reply}\n").as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// One request line, at most [`MAX_REQUEST`] bytes.
async fn read_request(stream: &mut UnixStream) -> io::Result<String> {
    let mut buf = Vec::with_capacity(MAX_REQUEST);
    let mut byte = [0u8; 1];
    loop {
        if stream.read(&mut byte).await? == 0 || byte[0] == b'\n' {
            break;
        }
        if buf.len() == MAX_REQUEST {
            return Err(io::Error::other(format!(
                "request longer than {MAX_REQUEST} bytes"
            )));
        }
        buf.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&buf).trim().to_owned())
}

/// Ask the mount behind `socket` for its status (blocking).
pub fn query(socket: &Path) -> io::Result<MountStatus> {
    let mut stream = std::os::unix::net::UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    // A refused peer gets its answer without being read: the write may then fail with EPIPE,
    // and the answer still says why.
    let sent = stream.write_all(b"status\n");
    let mut line = String::new();
    // The answer is one line; a mount's report is small, but bound it all the same.
    BufReader::new(io::Read::take(stream, MAX_ANSWER))
        .read_line(&mut line)
        .map_err(|e| io::Error::new(e.kind(), format!("reading the answer: {e}")))?;
    let line = line.trim_end();
    if let Some(message) = line.strip_prefix("error: ") {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            message.to_owned(),
        ));
    }
    if line.is_empty() {
        sent?;
        return Err(io::Error::other(
            "the mount closed the connection without an answer",
        ));
    }
    serde_json::from_str(line).map_err(|e| io::Error::other(format!("a malformed answer: {e}")))
}

/// Most bytes of an answer read (a report lists every file not yet stored).
const MAX_ANSWER: u64 = 64 * 1024 * 1024;
