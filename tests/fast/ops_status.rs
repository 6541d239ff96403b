//! `s3cryptfs status` against a mount's control socket, served here by the same code the
//! daemon runs (`mount::control`) over an `Fs` whose store is a `FaultyStore`: an upload held
//! by the store shows as uploading, then clean; a store that refuses writes makes `status`
//! exit non-zero naming the file; the metrics endpoint serves counters that move with
//! requests. The same through a real daemon and kernel mount is `tests/fuse/ops_status.rs`.

use std::ffi::OsStr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use s3cryptfs::fs::Fs;
use s3cryptfs::mount::control::{ControlSocket, MountStatus, Report};
use s3cryptfs::store::faulty::FaultyStore;
use serde_json::Value;

use crate::common::cli::{CliOutput, run_cli};
use crate::common::memfs::MemVault;

fn report(fs: &Arc<Fs>) -> Report {
    let fs = fs.clone();
    Arc::new(move || {
        let fs = fs.clone();
        Box::pin(async move {
            MountStatus {
                mountpoint: "/test/mnt".into(),
                store_url: "mem://status-test".into(),
                vault_id: "00112233445566778899aabbccddeeff".into(),
                pid: std::process::id(),
                uptime_secs: 1,
                socket: String::new(),
                fs: fs.status().await,
            }
        })
    })
}

fn status(socket: &Path) -> (CliOutput, Value) {
    let out = run_cli(
        &[
            OsStr::new("status"),
            OsStr::new("--json"),
            OsStr::new("--socket"),
            socket.as_os_str(),
        ],
        &[],
    );
    let json = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("status --json printed no JSON ({e}): {}", out.describe()));
    (out, json)
}

/// Poll `status` until `cond` holds for its JSON (the upload runs on another task).
fn status_until(socket: &Path, what: &str, cond: impl Fn(&Value) -> bool) -> (CliOutput, Value) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (out, json) = status(socket);
        if cond(&json) {
            return (out, json);
        }
        assert!(
            Instant::now() < deadline,
            "status never showed {what}: {json:#}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn pending_states(json: &Value) -> Vec<(String, String)> {
    json["pending"]
        .as_array()
        .expect("pending is a list")
        .iter()
        .map(|p| {
            (
                p["path"].as_str().expect("path").to_owned(),
                p["state"].as_str().expect("state").to_owned(),
            )
        })
        .collect()
}

struct Served {
    runtime: tokio::runtime::Runtime,
    fs: Arc<Fs>,
    faulty: Arc<FaultyStore>,
    _socket: ControlSocket,
    socket_path: std::path::PathBuf,
    _dir: tempfile::TempDir,
    _vault: MemVault,
}

fn serve() -> Served {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let vault = MemVault::create(5, 65536);
    let faulty = FaultyStore::new(vault.mem.clone());
    let fs = vault.fs_over(faulty.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let socket_path = dir.path().join("ctl.sock");
    let mut socket = ControlSocket::bind(&socket_path).expect("bind the control socket");
    {
        let _context = runtime.enter();
        socket.serve(report(&fs)).expect("serve");
    }
    Served {
        runtime,
        fs,
        faulty,
        _socket: socket,
        socket_path,
        _dir: dir,
        _vault: vault,
    }
}

#[test]
fn a_slow_upload_shows_as_pending_then_clean() {
    let s = serve();
    let (out, json) = status(&s.socket_path);
    out.assert_ok();
    assert_eq!(json["files_failed"], 0, "{json:#}");
    assert!(pending_states(&json).is_empty(), "{json:#}");

    s.faulty.hold_writes(true);
    let fs = s.fs.clone();
    let fh = s.runtime.block_on(async {
        let (_, fh) = fs
            .create(1, OsStr::new("slow.bin"), 0o644, libc::O_WRONLY, 0, 0)
            .await
            .expect("create");
        fs.write(fh, 0, &vec![7u8; 300_000]).await.expect("write");
        fh
    });
    let (_, json) = status(&s.socket_path);
    assert_eq!(
        pending_states(&json),
        [("slow.bin".to_owned(), "dirty".to_owned())],
        "{json:#}"
    );
    assert_eq!(json["bytes_pending"], 300_000, "{json:#}");

    // close uploads, and the store holds the upload: status must answer meanwhile.
    let closing = s.runtime.spawn(async move { fs.release(fh).await });
    let (out, json) = status_until(&s.socket_path, "the upload under way", |j| {
        pending_states(j) == [("slow.bin".to_owned(), "uploading".to_owned())]
    });
    out.assert_ok();
    assert_eq!(json["files_uploading"], 1, "{json:#}");

    s.faulty.hold_writes(false);
    s.runtime
        .block_on(closing)
        .expect("join")
        .expect("close uploads");
    let (out, json) = status(&s.socket_path);
    out.assert_ok();
    assert!(pending_states(&json).is_empty(), "{json:#}");
    assert_eq!(json["counts"]["uploads_completed"], 1, "{json:#}");
    let puts = json["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .find(|r| r["kind"] == "put")
        .expect("put counted")
        .clone();
    assert!(puts["requests"].as_u64() >= Some(1), "{json:#}");
    assert!(puts["bytes"].as_u64() > Some(300_000), "{json:#}");
}

#[test]
fn a_failing_store_makes_status_fail_and_name_the_file() {
    let s = serve();
    s.faulty.set_writes_down(true);
    let fs = s.fs.clone();
    let closed = s.runtime.block_on(async move {
        let (_, fh) = fs
            .create(1, OsStr::new("stuck.txt"), 0o644, libc::O_WRONLY, 0, 0)
            .await
            .expect("create");
        fs.write(fh, 0, b"not stored yet").await.expect("write");
        fs.release(fh).await
    });
    assert!(
        closed.is_err(),
        "close must fail while the store refuses writes"
    );
    let (out, json) = status(&s.socket_path);
    out.assert_failed()
        .assert_stderr_has(&["uploads are failing", "stuck.txt"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.describe());
    assert_eq!(json["files_failed"], 1, "{json:#}");
    let failed = &json["pending"][0];
    assert_eq!(failed["path"], "stuck.txt", "{json:#}");
    assert_eq!(failed["state"], "failed", "{json:#}");
    assert!(
        failed["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("unreachable")),
        "{json:#}"
    );
    assert!(
        json["counts"]["upload_failures"].as_u64() >= Some(1),
        "{json:#}"
    );

    // The text form says the same for a person.
    let text = run_cli(
        &[
            OsStr::new("status"),
            OsStr::new("--socket"),
            s.socket_path.as_os_str(),
        ],
        &[],
    );
    text.assert_failed();
    assert!(
        text.stdout.contains("FAILED") && text.stdout.contains("stuck.txt"),
        "{}",
        text.describe()
    );

    // Back up: the background retry stores it and status is clean again.
    s.faulty.set_writes_down(false);
    let (out, _) = status_until(&s.socket_path, "the retry stored", |j| {
        pending_states(j).is_empty()
    });
    out.assert_ok();
}

#[test]
fn requests_other_than_status_are_refused_and_bounded() {
    use std::io::{Read, Write};
    let s = serve();
    let ask = |request: &[u8]| {
        let mut c = std::os::unix::net::UnixStream::connect(&s.socket_path).expect("connect");
        let _ = c.write_all(request);
        let _ = c.shutdown(std::net::Shutdown::Write);
        let mut answer = String::new();
        // Data the daemon sent is read before a reset (it leaves unread request bytes).
        let _ = c.read_to_string(&mut answer);
        answer
    };
    assert!(ask(b"status\n").starts_with('{'));
    assert!(ask(b"shutdown\n").starts_with("error: unknown request"));
    let long = vec![b'x'; 100_000];
    assert!(ask(&long).starts_with("error: request longer"));
}

#[test]
fn metrics_move_with_requests() {
    let s = serve();
    let bound = s
        .runtime
        .block_on(s3cryptfs::mount::metrics::serve(
            "127.0.0.1:0".parse().expect("addr"),
            report(&s.fs),
        ))
        .expect("serve metrics");
    let scrape = || http_get(bound, "/metrics");
    let before = scrape();
    assert!(before.starts_with("HTTP/1.1 200 OK"), "{before}");
    let put = |text: &str| {
        sample(
            text,
            "s3cryptfs_requests_total{mountpoint=\"/test/mnt\",kind=\"put\"}",
        )
    };
    assert_eq!(put(&before), 0, "{before}");
    let fs = s.fs.clone();
    s.runtime.block_on(async move {
        let (_, fh) = fs
            .create(1, OsStr::new("m.txt"), 0o644, libc::O_WRONLY, 0, 0)
            .await
            .expect("create");
        fs.write(fh, 0, b"metrics").await.expect("write");
        fs.release(fh).await.expect("close");
        fs.invalidate_caches();
        let attr = fs.lookup(1, OsStr::new("m.txt")).await.expect("lookup");
        let fh = fs.open(attr.ino, libc::O_RDONLY).await.expect("open");
        assert_eq!(&fs.read(fh, 0, 100).await.expect("read")[..], b"metrics");
        fs.release(fh).await.expect("release");
    });
    let after = scrape();
    assert!(put(&after) >= 1, "{after}");
    assert_eq!(
        sample(&after, "s3cryptfs_uploads_total{mountpoint=\"/test/mnt\"}"),
        1,
        "{after}"
    );
    let cache = |name: &str| {
        sample(
            &after,
            &format!("s3cryptfs_cache_{name}{{mountpoint=\"/test/mnt\"}}"),
        )
    };
    assert!(cache("bytes") > 0, "the block read is cached: {after}");
    assert!(cache("misses_total") >= 1, "{after}");
    assert!(http_get(bound, "/other").starts_with("HTTP/1.1 404"));
    let big = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "y".repeat(20_000));
    assert!(http_raw(bound, big.as_bytes()).starts_with("HTTP/1.1 400"));
}

fn sample(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {name} in {text}"))
}

fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    http_raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes(),
    )
}

fn http_raw(addr: std::net::SocketAddr, request: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(addr).expect("connect");
    let _ = c.write_all(request);
    let mut answer = Vec::new();
    let _ = c.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}
