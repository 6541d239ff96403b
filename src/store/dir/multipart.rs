//! Multipart uploads of a directory store: `ROOT/uploads/<upload id>/` holds `upload.json`
//! (key, metadata, conditions) and one object-format file per part, `NNNNN.part`. Completion
//! streams the listed parts into one object file and commits it like a PUT, then removes the
//! upload directory. A failed completion leaves the upload open, as in S3.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use super::object_file::{Header, ObjectFile, TempFile, sync_dir};
use super::{Inner, UPLOAD_RECORD, io_error, is_not_found, layout};
use crate::store::rules;
use crate::store::sse::ObjectSse;
use crate::store::{
    CompletedPart, Metadata, PendingUpload, PutOptions, PutOutput, StoreError, StoreResult,
};

/// What `create_multipart` records for `complete_multipart`.
#[derive(Serialize, Deserialize)]
struct UploadRecord {
    key: String,
    metadata: Metadata,
    if_match: Option<String>,
    if_none_match: bool,
    /// The SSE given at create time (absent in records of older versions: none).
    #[serde(default)]
    sse: ObjectSse,
}

impl Inner {
    fn upload_dir(&self, key: &str, upload_id: &str) -> StoreResult<(PathBuf, UploadRecord)> {
        let no_such_upload = || StoreError::NoSuchUpload {
            key: key.into(),
            upload_id: upload_id.into(),
        };
        if !rules::is_upload_id(upload_id) {
            return Err(no_such_upload());
        }
        let dir = self.uploads.join(upload_id);
        let bytes = match fs::read(dir.join(UPLOAD_RECORD)) {
            Ok(bytes) => bytes,
            Err(e) if is_not_found(&e) => return Err(no_such_upload()),
            Err(e) => return Err(io_error(key, e)),
        };
        let record: UploadRecord = serde_json::from_slice(&bytes).map_err(|e| {
            io_error(
                key,
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("corrupt {}: {e}", dir.join(UPLOAD_RECORD).display()),
                ),
            )
        })?;
        if record.key != key {
            return Err(no_such_upload());
        }
        Ok((dir, record))
    }

    pub(super) fn create_multipart(
        &self,
        key: &str,
        opts: &PutOptions,
        sse: ObjectSse,
    ) -> StoreResult<String> {
        rules::check_key(key)?;
        let upload_id = rules::new_upload_id(key)?;
        let dir = self.uploads.join(&upload_id);
        fs::create_dir(&dir).map_err(|e| io_error(key, e))?;
        let record = UploadRecord {
            key: key.to_owned(),
            metadata: rules::normalize_metadata(&opts.metadata),
            if_match: opts.if_match.clone(),
            if_none_match: opts.if_none_match,
            sse,
        };
        let written = write_record(&dir, &record).and_then(|()| sync_dir(&self.uploads));
        if let Err(e) = written {
            let _ = fs::remove_dir_all(&dir);
            return Err(io_error(key, e));
        }
        Ok(upload_id)
    }

    pub(super) fn set_upload_if_match(
        &self,
        key: &str,
        upload_id: &str,
        if_match: Option<String>,
    ) -> StoreResult<()> {
        let (dir, mut record) = self.upload_dir(key, upload_id)?;
        record.if_match = if_match;
        record.if_none_match = false;
        write_record(&dir, &record).map_err(|e| io_error(key, e))
    }

    pub(super) fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: &[u8],
        sse: &ObjectSse,
    ) -> StoreResult<String> {
        rules::check_part_number(key, part_number)?;
        rules::check_single_put_size(key, body.len() as u64)?;
        let (dir, record) = self.upload_dir(key, upload_id)?;
        rules::check_part_sse(key, &record.sse, sse)?;
        let etag = rules::md5_etag(body);
        let header = Header::new(key, body.len() as u64, etag.clone(), Metadata::new());
        let written = TempFile::create_in(&dir).and_then(|mut tmp| {
            tmp.write_all(body)?;
            tmp.finish_object(&header)?;
            tmp.persist(&part_path(&dir, part_number))
        });
        match written {
            Ok(()) => {}
            // Completed or aborted meanwhile.
            Err(e) if is_not_found(&e) => {
                return Err(StoreError::NoSuchUpload {
                    key: key.into(),
                    upload_id: upload_id.into(),
                });
            }
            Err(e) => return Err(io_error(key, e)),
        }
        sync_dir(&dir).map_err(|e| io_error(key, e))?;
        Ok(etag)
    }

    pub(super) fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> StoreResult<PutOutput> {
        let (dir, record) = self.upload_dir(key, upload_id)?;
        rules::check_part_list(key, parts, |number| {
            match ObjectFile::open(&part_path(&dir, number)) {
                Ok(file) => Ok(Some(rules::UploadedPart {
                    etag: file.header.etag,
                    size: file.header.size,
                })),
                Err(e) if is_not_found(&e) => Ok(None),
                Err(e) => Err(io_error(key, e)),
            }
        })?;

        let path = layout::object_path(&self.objects, key);
        let mut tmp = self.prepare(key, &path)?;
        let assembled = (|| -> StoreResult<String> {
            let mut digests = Vec::with_capacity(parts.len());
            for part in parts {
                let file = ObjectFile::open(&part_path(&dir, part.part_number))
                    .map_err(|e| io_error(key, e))?;
                let digest = rules::md5_of_etag(&file.header.etag).ok_or_else(|| {
                    io_error(
                        key,
                        io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("part {} has a malformed ETag", part.part_number),
                        ),
                    )
                })?;
                digests.push(digest);
                // The body MD5 is not needed: the part's ETag already is it.
                file.copy_body(&mut tmp, &mut Md5::new())
                    .map_err(|e| io_error(key, e))?;
            }
            let etag = rules::multipart_etag(&digests);
            let header = Header::new(key, tmp.written(), etag.clone(), record.metadata.clone())
                .with_sse(record.sse.clone());
            tmp.finish_object(&header).map_err(|e| io_error(key, e))?;
            Ok(etag)
        })();
        let etag = match assembled {
            Ok(etag) => etag,
            Err(e) => {
                drop(tmp);
                self.prune(&path.parent(&self.objects), &self.lock());
                return Err(e);
            }
        };
        let conditions = PutOptions {
            metadata: Metadata::new(),
            if_match: record.if_match.clone(),
            if_none_match: record.if_none_match,
        };
        self.commit(key, tmp, &path, Some(&conditions))?;
        if let Err(e) = fs::remove_dir_all(&dir) {
            log::warn!(
                "directory store: completed upload {upload_id} of {key} but could not remove {}: {e}",
                dir.display()
            );
        }
        Ok(PutOutput { etag })
    }

    pub(super) fn abort_multipart(&self, key: &str, upload_id: &str) -> StoreResult<()> {
        let (dir, _) = self.upload_dir(key, upload_id)?;
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Err(StoreError::NoSuchUpload {
                key: key.into(),
                upload_id: upload_id.into(),
            }),
            Err(e) => Err(io_error(key, e)),
        }
    }
}

impl Inner {
    /// Uploads of keys under `prefix`; an upload's start is its directory's mtime (set when
    /// `create_multipart` made it; parts are files inside, which leave it unchanged).
    pub(super) fn list_uploads(&self, prefix: &str) -> StoreResult<Vec<PendingUpload>> {
        let entries = match fs::read_dir(&self.uploads) {
            Ok(entries) => entries,
            Err(e) if is_not_found(&e) => return Ok(Vec::new()),
            Err(e) => return Err(io_error(prefix, e)),
        };
        let mut uploads = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_error(prefix, e))?;
            let upload_id = entry.file_name().to_string_lossy().into_owned();
            if !rules::is_upload_id(&upload_id) {
                continue;
            }
            let record: UploadRecord = match fs::read(entry.path().join(UPLOAD_RECORD))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
            {
                Some(r) => r,
                // Being created or removed right now, or damaged: not a listable upload.
                None => continue,
            };
            if !record.key.starts_with(prefix) {
                continue;
            }
            let initiated = entry
                .metadata()
                .and_then(|m| m.modified())
                .map_err(|e| io_error(&record.key, e))?;
            uploads.push(PendingUpload {
                key: record.key,
                upload_id,
                initiated,
            });
        }
        uploads.sort_by(|a, b| (a.initiated, &a.key).cmp(&(b.initiated, &b.key)));
        Ok(uploads)
    }
}

fn part_path(upload_dir: &Path, part_number: u32) -> PathBuf {
    upload_dir.join(format!("{part_number:05}.part"))
}

/// Write `upload.json` of the upload in `dir` atomically (temp file, rename, directory sync).
fn write_record(dir: &Path, record: &UploadRecord) -> io::Result<()> {
    let json = serde_json::to_vec(record).map_err(io::Error::other)?;
    let mut tmp = TempFile::create_in(dir)?;
    tmp.write_all(&json)?;
    tmp.finish_raw()?;
    tmp.persist(&dir.join(UPLOAD_RECORD))?;
    sync_dir(dir)
}
