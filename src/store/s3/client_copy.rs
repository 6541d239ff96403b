//! Client-side copy: GET + PUT for the copies a server refuses to do itself.
//!
//! Ceph RGW 16 answers CopyObject of an SSE-C or SSE-KMS object with 501 NotImplemented, and
//! UploadPartCopy from an SSE-C source under another key with 400. Rename and `key rotate
//! --rewrap` go through [`ObjectStore::copy`], so the store stands in for the server: it reads
//! the source (ranged GETs pinned to one version with If-Match, the first one carrying the
//! caller's copy-source condition) and writes the destination with the mount's SSE, in one PUT
//! or, above one part, as a multipart upload that fetches the next part while the current one
//! uploads (memory: two parts). It logs once per store and kind of refusal.
//!
//! The copy-source condition is checked when reading, not when writing: an object written at
//! the destination between the GET and the PUT is replaced, as by a server-side copy that ran
//! a moment later. (A conditional PUT cannot close that gap portably: RGW 16 refuses every
//! If-Match PUT that quotes the ETag.)

use bytes::Bytes;

use super::client::S3Store;
use super::copy_refusal::CopyRefusal;
use crate::store::{
    CompletedPart, CopyOptions, MetadataDirective, ObjectStore, PutOptions, PutOutput, StoreError,
    StoreResult,
};

/// Part size of a client-side copy: the size the write path uploads in, well above S3's
/// 5 MiB minimum.
pub(super) const CLIENT_COPY_PART_SIZE: u64 = 8 * 1024 * 1024;

impl S3Store {
    /// Copies `src` to `dst` through this process after the server refused to (`why`).
    pub(super) async fn copy_client_side(
        &self,
        src: &str,
        dst: &str,
        opts: &CopyOptions,
        why: CopyRefusal,
    ) -> StoreResult<PutOutput> {
        self.log_copy_refusal_once(src, why);
        let first = self
            .get(
                src,
                Some(0..CLIENT_COPY_PART_SIZE),
                opts.source_if_match.as_deref(),
            )
            .await?;
        let metadata = match &opts.metadata {
            MetadataDirective::Copy => first.info.metadata.clone().unwrap_or_default(),
            MetadataDirective::Replace(m) => m.clone(),
        };
        let put_opts = PutOptions {
            metadata,
            ..PutOptions::default()
        };
        if first.data.len() as u64 >= first.info.size {
            return self.put(dst, first.data, put_opts).await;
        }
        let upload_id = self.create_multipart(dst, put_opts).await?;
        let copied = self
            .copy_parts(
                src,
                dst,
                &upload_id,
                first.data,
                &first.info.etag,
                first.info.size,
            )
            .await;
        if copied.is_err() {
            if let Err(e) = self.abort_multipart(dst, &upload_id).await {
                log::warn!("{dst}: aborting the client-side copy's upload {upload_id}: {e}");
            }
        }
        copied
    }

    /// Uploads `first` as part 1, then the rest of `src` (of `size` bytes, version `etag`) part
    /// by part, each GET overlapping the previous part's upload; completes the upload.
    async fn copy_parts(
        &self,
        src: &str,
        dst: &str,
        upload_id: &str,
        first: Bytes,
        etag: &str,
        size: u64,
    ) -> StoreResult<PutOutput> {
        let mut parts = Vec::new();
        let mut data = first;
        let mut offset = 0u64;
        let mut part_number = 1u32;
        loop {
            let next_offset = offset + data.len() as u64;
            let upload = self.upload_part(dst, upload_id, part_number, data);
            let fetch = async {
                if next_offset >= size {
                    return Ok(None);
                }
                let end = (next_offset + CLIENT_COPY_PART_SIZE).min(size);
                let out = self.get(src, Some(next_offset..end), Some(etag)).await?;
                if out.data.len() as u64 != end - next_offset {
                    return Err(StoreError::Transient {
                        key: src.to_owned(),
                        reason: format!(
                            "client-side copy: GET of {next_offset}..{end} gave {} bytes",
                            out.data.len()
                        ),
                    });
                }
                Ok(Some(out.data))
            };
            let (part_etag, next) = tokio::try_join!(upload, fetch)?;
            parts.push(CompletedPart {
                part_number,
                etag: part_etag,
            });
            match next {
                Some(next) => {
                    data = next;
                    offset = next_offset;
                    part_number += 1;
                }
                None => break,
            }
        }
        self.complete_multipart(dst, upload_id, &parts).await
    }

    fn log_copy_refusal_once(&self, src: &str, why: CopyRefusal) {
        let first_time = self
            .copy_refusals_logged
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(why);
        if first_time {
            log::warn!(
                "the S3 server at {} {} (first seen on {src}, sse = {}): it lacks server-side \
                 copy for these objects, so renames and rewraps copy them through this process \
                 (GET + PUT)",
                self.endpoint,
                why.explain(),
                self.sse.name()
            );
        } else {
            log::debug!(
                "{src}: server-side copy refused ({}), copying client-side",
                why.explain()
            );
        }
    }
}
