//! An HTTP proxy in front of moto that answers as a hostile S3 endpoint would, for the
//! requests a test picks ([`Tamper`]); every other request goes to moto unchanged. Where
//! `proxy.rs` cuts connections, this one reads each request and answer: it can send more body
//! than a range asked for, a body that never ends, listings that never end, and listing
//! entries no honest server holds (NUL in a key).
//!
//! Each request goes to moto on a connection of its own (`Connection: close`), so an answer is
//! everything moto sends; the proxy then writes it back to the client with a `Content-Length`
//! on the client's kept-alive connection.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

/// How the listings of [`Tamper::EndlessListing`] go on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pages {
    /// Every page hands back the token it was asked with.
    SameToken,
    /// Empty pages whose tokens alternate between two values.
    AlternatingTokens,
    /// A fresh token every page, and the same entry on each.
    FreshTokensSameEntry,
    /// A fresh token every page, and nothing on it.
    FreshTokensEmpty,
}

/// What the proxy does instead of passing a request through.
#[derive(Clone, Debug)]
pub enum Tamper {
    Nothing,
    /// GETs of `key` (`vault/NAME`) get `extra` bytes more than moto sent.
    LongBody {
        key: String,
        extra: usize,
    },
    /// GETs of `key` get a chunked body that never ends.
    EndlessBody {
        key: String,
    },
    /// ListObjectsV2 with a prefix starting with `prefix` is answered by the proxy: truncated
    /// pages without end, as `pages` says.
    EndlessListing {
        prefix: String,
        pages: Pages,
    },
    /// ListObjectsV2 with exactly this `prefix` lists `keys` (XML text, escapes included) too.
    ExtraKeys {
        prefix: String,
        keys: Vec<String>,
    },
}

pub struct TamperProxy {
    addr: SocketAddr,
    tamper: Arc<Mutex<Tamper>>,
    tampered: Arc<AtomicUsize>,
}

impl TamperProxy {
    /// Listens on a free 127.0.0.1 port in front of `target` (`host:port`), passing every
    /// request through until [`TamperProxy::set`].
    pub fn start(target: &str) -> TamperProxy {
        let target: SocketAddr = target.parse().expect("proxy target host:port");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let tamper = Arc::new(Mutex::new(Tamper::Nothing));
        let tampered = Arc::new(AtomicUsize::new(0));
        let (tamper2, tampered2) = (tamper.clone(), tampered.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let (tamper, tampered) = (tamper2.clone(), tampered2.clone());
                thread::spawn(move || {
                    let _ = serve(client, target, &tamper, &tampered);
                });
            }
        });
        TamperProxy {
            addr,
            tamper,
            tampered,
        }
    }

    /// `http://127.0.0.1:PORT` of the proxy.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// From now on, tamper as `t` says.
    pub fn set(&self, t: Tamper) {
        *self.tamper.lock().unwrap_or_else(PoisonError::into_inner) = t;
    }

    /// How many answers were tampered with since the last call (0 would mean a test
    /// checked nothing).
    pub fn take_tampered(&self) -> usize {
        self.tampered.swap(0, Ordering::SeqCst)
    }
}

/// Header names and values, in the order sent.
type Headers = Vec<(String, String)>;

struct Request {
    method: String,
    target: String,
    headers: Headers,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    fn path(&self) -> String {
        let path = self.target.split('?').next().unwrap_or_default();
        percent_decode(path)
    }

    /// The decoded query parameter `name`.
    fn query(&self, name: &str) -> Option<String> {
        let query = self.target.split_once('?')?.1;
        query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == name).then(|| percent_decode(v))
        })
    }

    fn is_listing(&self) -> bool {
        self.method == "GET" && self.query("list-type").as_deref() == Some("2")
    }

    fn is_get_of(&self, key: &str) -> bool {
        self.method == "GET" && self.path().ends_with(&format!("/{key}"))
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads a head (request or response) up to the empty line: its first line and headers.
fn read_head(r: &mut impl BufRead) -> io::Result<Option<(String, Headers)>> {
    let mut first = String::new();
    if r.read_line(&mut first)? == 0 {
        return Ok(None);
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((n, v)) = line.split_once(':') {
            headers.push((n.trim().to_owned(), v.trim().to_owned()));
        }
    }
    Ok(Some((first.trim_end().to_owned(), headers)))
}

/// A body as its headers frame it: `Content-Length` or chunked (decoded).
fn read_body(r: &mut impl BufRead, headers: &[(String, String)]) -> io::Result<Vec<u8>> {
    let chunked = header(headers, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if !chunked {
        let len: usize = header(headers, "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        r.read_exact(&mut body)?;
        return Ok(body);
    }
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        r.read_line(&mut size)?;
        let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
        if size == 0 {
            // Trailers, up to the empty line.
            while {
                let mut line = String::new();
                r.read_line(&mut line)? > 0 && !line.trim().is_empty()
            } {}
            return Ok(body);
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])?;
        let mut crlf = [0u8; 2];
        r.read_exact(&mut crlf)?;
    }
}

fn serve(
    client: TcpStream,
    target: SocketAddr,
    tamper: &Mutex<Tamper>,
    tampered: &AtomicUsize,
) -> io::Result<()> {
    let mut out = client.try_clone()?;
    let mut input = BufReader::new(client);
    loop {
        let Some((line, headers)) = read_head(&mut input)? else {
            return Ok(());
        };
        let mut parts = line.split(' ');
        let (method, target_path) = (
            parts.next().unwrap_or_default().to_owned(),
            parts.next().unwrap_or_default().to_owned(),
        );
        if header(&headers, "expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
            out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        let body = read_body(&mut input, &headers)?;
        let req = Request {
            method,
            target: target_path,
            headers,
            body,
        };
        let t = tamper
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match &t {
            Tamper::EndlessBody { key } if req.is_get_of(key) => {
                tampered.fetch_add(1, Ordering::SeqCst);
                return endless_body(&mut out);
            }
            Tamper::EndlessListing { prefix, pages }
                if req.is_listing()
                    && req
                        .query("prefix")
                        .is_some_and(|p| p.starts_with(prefix.as_str())) =>
            {
                tampered.fetch_add(1, Ordering::SeqCst);
                let xml = endless_page(&req, *pages);
                respond(&mut out, "HTTP/1.1 200 OK", &xml_headers(), xml.as_bytes())?;
                continue;
            }
            _ => {}
        }
        let (status, mut headers, mut body) = forward(&req, target)?;
        match &t {
            Tamper::LongBody { key, extra } if req.is_get_of(key) => {
                tampered.fetch_add(1, Ordering::SeqCst);
                body.extend(std::iter::repeat_n(b'#', *extra));
            }
            Tamper::ExtraKeys { prefix, keys }
                if req.is_listing() && req.query("prefix").as_deref() == Some(prefix.as_str()) =>
            {
                tampered.fetch_add(1, Ordering::SeqCst);
                let xml = String::from_utf8_lossy(&body).into_owned();
                let extra: String = keys.iter().map(|k| contents_entry(k)).collect();
                body = xml
                    .replace(
                        "</ListBucketResult>",
                        &format!("{extra}</ListBucketResult>"),
                    )
                    .into_bytes();
            }
            _ => {}
        }
        if req.method == "HEAD" {
            // The answer's Content-Length is the object's; there is no body.
            write_head(&mut out, &status, &headers)?;
        } else {
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case("content-length"));
            respond(&mut out, &status, &headers, &body)?;
        }
    }
}

/// Sends `req` to moto on a connection of its own and reads the whole answer.
fn forward(req: &Request, target: SocketAddr) -> io::Result<(String, Headers, Vec<u8>)> {
    let mut upstream = TcpStream::connect(target)?;
    let mut head = format!("{} {} HTTP/1.1\r\n", req.method, req.target);
    for (n, v) in &req.headers {
        let skip = [
            "connection",
            "expect",
            "transfer-encoding",
            "content-length",
        ];
        if !skip.iter().any(|s| n.eq_ignore_ascii_case(s)) {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
    }
    if !req.body.is_empty() || req.header("content-length").is_some() {
        head.push_str(&format!("Content-Length: {}\r\n", req.body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    upstream.write_all(head.as_bytes())?;
    upstream.write_all(&req.body)?;
    let mut answer = BufReader::new(upstream);
    let (status, mut headers) = read_head(&mut answer)?.ok_or(io::ErrorKind::UnexpectedEof)?;
    let body = if req.method == "HEAD" {
        Vec::new()
    } else {
        read_body(&mut answer, &headers)?
    };
    headers.retain(|(n, _)| {
        !n.eq_ignore_ascii_case("connection") && !n.eq_ignore_ascii_case("transfer-encoding")
    });
    Ok((status, headers, body))
}

fn write_head(out: &mut TcpStream, status: &str, headers: &[(String, String)]) -> io::Result<()> {
    let mut head = format!("{status}\r\n");
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())
}

fn respond(
    out: &mut TcpStream,
    status: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> io::Result<()> {
    let mut headers = headers.to_vec();
    headers.push(("Content-Length".into(), body.len().to_string()));
    write_head(out, status, &headers)?;
    out.write_all(body)?;
    out.flush()
}

fn endless_body(out: &mut TcpStream) -> io::Result<()> {
    out.write_all(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nETag: \"e\"\r\n\
          Last-Modified: Thu, 01 Jan 2026 00:00:00 GMT\r\n\r\n",
    )?;
    let chunk = vec![b'x'; 1 << 20];
    loop {
        out.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())?;
        out.write_all(&chunk)?;
        out.write_all(b"\r\n")?;
    }
}

fn xml_headers() -> Vec<(String, String)> {
    vec![("Content-Type".into(), "application/xml".into())]
}

fn contents_entry(key: &str) -> String {
    format!(
        "<Contents><Key>{key}</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified>\
         <ETag>&quot;e&quot;</ETag><Size>200</Size><StorageClass>STANDARD</StorageClass></Contents>"
    )
}

/// One page of a listing that never ends, for the request `req`.
fn endless_page(req: &Request, pages: Pages) -> String {
    let prefix = req.query("prefix").unwrap_or_default();
    let asked = req.query("continuation-token");
    let n: u64 = asked
        .as_deref()
        .and_then(|t| t.trim_start_matches('t').parse().ok())
        .unwrap_or(0);
    let (token, entry) = match pages {
        Pages::SameToken => (asked.unwrap_or_else(|| "t0".into()), true),
        Pages::AlternatingTokens => (if n % 2 == 0 { "t1" } else { "t2" }.to_owned(), false),
        Pages::FreshTokensSameEntry => (format!("t{}", n + 1), true),
        Pages::FreshTokensEmpty => (format!("t{}", n + 1), false),
    };
    let contents = if entry {
        contents_entry(&format!("{prefix}looping"))
    } else {
        String::new()
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
         <Name>bucket</Name><Prefix>{prefix}</Prefix><MaxKeys>1000</MaxKeys>\
         <IsTruncated>true</IsTruncated><NextContinuationToken>{token}</NextContinuationToken>\
         {contents}</ListBucketResult>"
    )
}
