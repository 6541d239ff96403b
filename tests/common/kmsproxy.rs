//! An HTTP proxy in front of moto's KMS that makes it answer as AWS KMS does where moto does
//! not, and counts the KMS requests that pass (the wire tests' "one KMS call per mount").
//!
//! moto's Decrypt ignores the key's state and the KeyId, and it enforces no policy. So, for
//! every Encrypt and Decrypt, the proxy asks moto for the named key's state (DescribeKey, on a
//! connection of its own) and answers `DisabledException` for a disabled key and
//! `KMSInvalidStateException` for one pending deletion, as KMS does; and a test can make it
//! answer `AccessDeniedException` for an action, as a key policy without that action would.
//! A key ARN of another region than the request's is `NotFoundException`, as on AWS.
//! One request per connection (`Connection: close`), which every HTTP client handles.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

#[derive(Default)]
struct State {
    /// Requests that reached the proxy, by operation (`Decrypt`, `Encrypt`, ...).
    counts: BTreeMap<String, u64>,
    /// Actions (`kms:Decrypt`) answered with AccessDeniedException.
    denied: Vec<String>,
}

pub struct KmsProxy {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl KmsProxy {
    /// Listens on a free 127.0.0.1 port and forwards to moto at `target` (`host:port`).
    pub fn start(target: &str) -> KmsProxy {
        let target: SocketAddr = target.parse().expect("proxy target host:port");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let state = shared.clone();
                thread::spawn(move || {
                    let _ = serve(client, target, &state);
                });
            }
        });
        KmsProxy { addr, state }
    }

    /// `http://127.0.0.1:PORT` of the proxy.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// KMS requests seen so far, by operation.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.state().counts.clone()
    }

    pub fn reset_counts(&self) {
        self.state().counts.clear();
    }

    /// Answer `action` (`kms:Decrypt`) with AccessDeniedException from now on, or stop.
    pub fn deny(&self, action: &str, denied: bool) {
        let mut s = self.state();
        s.denied.retain(|a| a != action);
        if denied {
            s.denied.push(action.to_owned());
        }
    }
}

/// A request as read: head lines and body.
struct Request {
    head: Vec<String>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.iter().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

fn read_request(stream: &TcpStream) -> std::io::Result<Request> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end().to_owned();
        if line.is_empty() {
            break;
        }
        head.push(line);
    }
    let mut request = Request {
        head,
        body: Vec::new(),
    };
    let len: usize = request
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    request.body = vec![0; len];
    reader.read_exact(&mut request.body)?;
    Ok(request)
}

/// Send `head` (without Connection headers) and `body` to moto; its whole answer.
fn forward(target: SocketAddr, head: &[String], body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut server = TcpStream::connect(target)?;
    let mut out = String::new();
    for line in head {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    server.write_all(out.as_bytes())?;
    server.write_all(body)?;
    let mut answer = Vec::new();
    server.read_to_end(&mut answer)?;
    Ok(answer)
}

fn error_response(kind: &str, message: &str) -> Vec<u8> {
    let body = serde_json::json!({ "__type": kind, "message": message }).to_string();
    format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.1\r\n\
         x-amzn-ErrorType: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The state moto has for `key_id` (`Enabled`, `Disabled`, `PendingDeletion`).
fn key_state(target: SocketAddr, key_id: &str) -> Option<String> {
    let body = serde_json::json!({ "KeyId": key_id }).to_string();
    let head = vec![
        "POST / HTTP/1.1".to_owned(),
        format!("Host: {target}"),
        "Content-Type: application/x-amz-json-1.1".to_owned(),
        "X-Amz-Target: TrentService.DescribeKey".to_owned(),
        "Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/kms/aws4_request, \
         SignedHeaders=host, Signature=00"
            .to_owned(),
        format!("Content-Length: {}", body.len()),
    ];
    let answer = forward(target, &head, body.as_bytes()).ok()?;
    let text = String::from_utf8_lossy(&answer);
    let json = text.split_once("\r\n\r\n")?.1;
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    v["KeyMetadata"]["KeyState"].as_str().map(str::to_owned)
}

/// The region of a key ARN (`arn:aws:kms:REGION:...`).
fn arn_region(key: &str) -> Option<&str> {
    key.strip_prefix("arn:")?.split(':').nth(2)
}

/// Whether `key` is an ARN of another region than the one `request` is signed for: AWS KMS
/// answers `NotFoundException` ("Invalid arn REGION") there, and moto serves any region.
fn wrong_region(request: &Request, key: &str) -> bool {
    let signed = request
        .header("authorization")
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(2));
    matches!((arn_region(key), signed), (Some(k), Some(s)) if k != s)
}

fn serve(mut client: TcpStream, target: SocketAddr, state: &Mutex<State>) -> std::io::Result<()> {
    let request = read_request(&client)?;
    let op = request
        .header("x-amz-target")
        .and_then(|t| t.strip_prefix("TrentService."))
        .unwrap_or("")
        .to_owned();
    let denied = {
        let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
        *s.counts.entry(op.clone()).or_default() += 1;
        s.denied.contains(&format!("kms:{op}"))
    };
    let key_id = serde_json::from_slice::<serde_json::Value>(&request.body)
        .ok()
        .and_then(|v| v["KeyId"].as_str().map(str::to_owned));
    let answer = match (op.as_str(), key_id) {
        (_, Some(key)) if denied => error_response(
            "AccessDeniedException",
            &format!(
                "User: arn:aws:iam::123456789012:user/test is not authorized to perform: \
                 kms:{op} on resource: {key} because no resource-based policy allows the \
                 kms:{op} action"
            ),
        ),
        ("Encrypt" | "Decrypt", Some(key)) if wrong_region(&request, &key) => error_response(
            "NotFoundException",
            &format!("Invalid arn {}", arn_region(&key).unwrap_or_default()),
        ),
        ("Encrypt" | "Decrypt", Some(key)) => match key_state(target, &key).as_deref() {
            Some("Disabled") => error_response("DisabledException", &format!("{key} is disabled.")),
            Some("PendingDeletion") => error_response(
                "KMSInvalidStateException",
                &format!("{key} is pending deletion."),
            ),
            _ => forward(target, &request.head, &request.body)?,
        },
        _ => forward(target, &request.head, &request.body)?,
    };
    client.write_all(&answer)?;
    client.flush()
}
