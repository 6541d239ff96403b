//! One object = one file: the body, then a JSON header, then a fixed trailer.
//!
//! ```text
//! [body: size bytes][header: JSON, header_len bytes][header_len: u32 BE][magic "s3cfobj1"]
//! ```
//!
//! Data and metadata live in one file so a single `rename` replaces both atomically. The header
//! goes after the body so a body can be streamed in one pass (copies and multipart completion
//! learn the ETag only at the end) and a ranged read is a plain read at the body offset. A file
//! whose length disagrees with its header is reported as corrupt, never served.
//!
//! Files are written under a temporary name starting with `.` in the destination directory,
//! fsynced, renamed into place, and the directory fsynced. Readers ignore names starting with
//! `.`, so a temporary file left by a crash is never seen as an object.

use std::fs::{self, File, OpenOptions};
use std::io::Read as _;
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use crate::store::{Metadata, ObjectInfo, ObjectSse};

pub(super) const MAGIC: &[u8; 8] = b"s3cfobj1";
const TRAILER_LEN: u64 = 12;
/// S3 allows 2 KiB of user metadata; anything near this is corruption, not an object.
const MAX_HEADER_LEN: u32 = 1 << 20;
/// Names of temporary files start with this (and so with `.`, which encoded names never do).
pub(super) const TEMP_PREFIX: &str = ".tmp-";

/// What the header of an object (or multipart part) file records.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Header {
    /// The full object key, so a file's key is known without decoding its path.
    pub key: String,
    pub size: u64,
    pub etag: String,
    pub last_modified_ms: u64,
    #[serde(default)]
    pub metadata: Metadata,
    /// The server-side encryption the object was written with (absent: none).
    #[serde(default, skip_serializing_if = "is_no_sse")]
    pub sse: ObjectSse,
}

fn is_no_sse(sse: &ObjectSse) -> bool {
    *sse == ObjectSse::None
}

impl Header {
    pub(super) fn new(key: &str, size: u64, etag: String, metadata: Metadata) -> Self {
        let last_modified_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Header {
            key: key.to_owned(),
            size,
            etag,
            last_modified_ms,
            metadata,
            sse: ObjectSse::None,
        }
    }

    /// The header of an object written with `sse`.
    pub(super) fn with_sse(mut self, sse: ObjectSse) -> Self {
        self.sse = sse;
        self
    }

    pub(super) fn info(&self, with_metadata: bool) -> ObjectInfo {
        ObjectInfo {
            key: self.key.clone(),
            size: self.size,
            etag: self.etag.clone(),
            last_modified: SystemTime::UNIX_EPOCH + Duration::from_millis(self.last_modified_ms),
            metadata: with_metadata.then(|| self.metadata.clone()),
            sse: with_metadata.then(|| self.sse.clone()),
        }
    }
}

fn corrupt(path: &Path, what: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("corrupt object file {}: {what}", path.display()),
    )
}

/// Open a file the store wrote, for reading: never through a symlink (a file of the store
/// is never one, so a symlink put there points outside the root), never blocking on a fifo,
/// and only if it is a regular file.
pub(super) fn open_regular(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                corrupt(path, "a symlink where the store keeps a file")
            } else {
                e
            }
        })?;
    if !file.metadata()?.is_file() {
        return Err(corrupt(path, "not a regular file"));
    }
    Ok(file)
}

/// The whole of a small file the store wrote, refused past `limit` bytes.
pub(super) fn read_small(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    open_regular(path)?
        .take(limit + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(corrupt(path, format!("more than {limit} bytes")));
    }
    Ok(bytes)
}

/// An object file opened for reading, its header checked against its length.
pub(super) struct ObjectFile {
    file: File,
    pub header: Header,
}

impl ObjectFile {
    pub(super) fn open(path: &Path) -> io::Result<ObjectFile> {
        let file = open_regular(path)?;
        let len = file.metadata()?.len();
        if len < TRAILER_LEN {
            return Err(corrupt(path, format!("only {len} bytes")));
        }
        let mut trailer = [0u8; TRAILER_LEN as usize];
        file.read_exact_at(&mut trailer, len - TRAILER_LEN)?;
        let (header_len, magic) = trailer.split_at(4);
        if magic != MAGIC {
            return Err(corrupt(path, "bad magic"));
        }
        let mut header_len_bytes = [0u8; 4];
        header_len_bytes.copy_from_slice(header_len);
        let header_len = u32::from_be_bytes(header_len_bytes);
        if header_len > MAX_HEADER_LEN || u64::from(header_len) > len - TRAILER_LEN {
            return Err(corrupt(path, format!("header length {header_len}")));
        }
        let body_len = len - TRAILER_LEN - u64::from(header_len);
        let mut header = vec![0u8; header_len as usize];
        file.read_exact_at(&mut header, body_len)?;
        let header: Header = serde_json::from_slice(&header).map_err(|e| corrupt(path, e))?;
        if header.size != body_len {
            return Err(corrupt(
                path,
                format!("header says {} bytes, file holds {body_len}", header.size),
            ));
        }
        Ok(ObjectFile { file, header })
    }

    /// Bytes `start..end` of the body (the caller keeps them within the body).
    pub(super) fn read_range(&self, start: u64, end: u64) -> io::Result<Vec<u8>> {
        let len = usize::try_from(end.saturating_sub(start))
            .map_err(|_| io::Error::other("range too large for memory"))?;
        let mut data = vec![0u8; len];
        self.file.read_exact_at(&mut data, start)?;
        Ok(data)
    }

    /// Append the whole body to `out`, feeding it to `md5` too.
    pub(super) fn copy_body(&self, out: &mut TempFile, md5: &mut Md5) -> io::Result<()> {
        let mut buf = vec![0u8; 1 << 20];
        let mut offset = 0;
        while offset < self.header.size {
            let want = usize::try_from(self.header.size - offset)
                .map_or(buf.len(), |left| left.min(buf.len()));
            let n = self.file.read_at(&mut buf[..want], offset)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "object file shrank while being copied",
                ));
            }
            md5.update(&buf[..n]);
            out.write_all(&buf[..n])?;
            offset += n as u64;
        }
        Ok(())
    }
}

/// A file being written under a temporary name; removed on drop unless persisted.
pub(super) struct TempFile {
    path: PathBuf,
    file: File,
    written: u64,
    persisted: bool,
}

impl TempFile {
    /// Create an empty temporary file in `dir`.
    pub(super) fn create_in(dir: &Path) -> io::Result<TempFile> {
        for _ in 0..16 {
            let mut random = [0u8; 8];
            aws_lc_rs::rand::fill(&mut random)
                .map_err(|_| io::Error::other("the system random number generator failed"))?;
            let path = dir.join(format!("{TEMP_PREFIX}{}", hex::encode(random)));
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    return Ok(TempFile {
                        path,
                        file,
                        written: 0,
                        persisted: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other(format!(
            "could not pick a free temporary file name in {}",
            dir.display()
        )))
    }

    pub(super) fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all(data)?;
        self.written += data.len() as u64;
        Ok(())
    }

    /// Body bytes written so far.
    pub(super) fn written(&self) -> u64 {
        self.written
    }

    /// Append `header` and the trailer after the body, and fsync.
    pub(super) fn finish_object(&mut self, header: &Header) -> io::Result<()> {
        if header.size != self.written {
            return Err(io::Error::other(format!(
                "object body is {} bytes but its header says {}",
                self.written, header.size
            )));
        }
        let json = serde_json::to_vec(header).map_err(io::Error::other)?;
        let header_len = u32::try_from(json.len())
            .ok()
            .filter(|len| *len <= MAX_HEADER_LEN)
            .ok_or_else(|| io::Error::other("object metadata too large"))?;
        self.file.write_all(&json)?;
        self.file.write_all(&header_len.to_be_bytes())?;
        self.file.write_all(MAGIC)?;
        self.file.sync_all()
    }

    /// fsync a file written with [`write_all`](Self::write_all) only (no object header).
    pub(super) fn finish_raw(&mut self) -> io::Result<()> {
        self.file.sync_all()
    }

    /// Rename into place, replacing what was there. The caller fsyncs the directory.
    pub(super) fn persist(mut self, dest: &Path) -> io::Result<()> {
        fs::rename(&self.path, dest)?;
        self.persisted = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.persisted {
            if let Err(e) = fs::remove_file(&self.path) {
                log::debug!("removing temporary file {}: {e}", self.path.display());
            }
        }
    }
}

/// fsync a directory, so renames and creations in it survive a crash.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_object(dir: &Path, name: &str, body: &[u8]) -> PathBuf {
        let mut tmp = TempFile::create_in(dir).expect("temp file");
        tmp.write_all(body).expect("write");
        let header = Header::new("k", body.len() as u64, "\"e\"".into(), Metadata::new());
        tmp.finish_object(&header).expect("finish");
        let dest = dir.join(name);
        tmp.persist(&dest).expect("persist");
        dest
    }

    #[test]
    fn round_trip_and_ranges() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write_object(dir.path(), "x.obj", b"hello world");
        let file = ObjectFile::open(&path).expect("open");
        assert_eq!(file.header.size, 11);
        assert_eq!(file.read_range(6, 11).expect("read"), b"world");
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("x.obj")]);
    }

    #[test]
    fn headers_without_sse_read_as_none_and_sse_round_trips() {
        let old: Header = serde_json::from_str(
            r#"{"key":"k","size":0,"etag":"\"e\"","last_modified_ms":0,"metadata":{}}"#,
        )
        .expect("a header written before SSE was recorded");
        assert_eq!(old.sse, ObjectSse::None);
        let json = serde_json::to_string(&old).expect("json");
        assert!(!json.contains("sse"), "no SSE, no field: {json}");
        let c = Header::new("k", 0, "\"e\"".into(), Metadata::new()).with_sse(ObjectSse::C {
            key_md5: "md5".into(),
        });
        let back: Header =
            serde_json::from_slice(&serde_json::to_vec(&c).expect("json")).expect("parse");
        assert_eq!(back.sse, c.sse);
    }

    #[test]
    fn truncated_or_extended_files_are_corrupt() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write_object(dir.path(), "x.obj", b"hello world");
        let bytes = fs::read(&path).expect("read");
        let mut extended = b"!".to_vec();
        extended.extend_from_slice(&bytes);
        fs::write(&path, &extended).expect("write");
        let err = ObjectFile::open(&path).err().expect("corrupt");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        fs::write(&path, &bytes[1..]).expect("write");
        assert!(ObjectFile::open(&path).is_err());
        fs::write(&path, b"short").expect("write");
        assert!(ObjectFile::open(&path).is_err());
    }

    #[test]
    fn dropped_temp_files_are_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut tmp = TempFile::create_in(dir.path()).expect("temp file");
        tmp.write_all(b"abc").expect("write");
        drop(tmp);
        assert_eq!(fs::read_dir(dir.path()).expect("read_dir").count(), 0);
    }
}
