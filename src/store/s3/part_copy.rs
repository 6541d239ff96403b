//! Multipart copy: CopyObject copies at most 5 GiB, so a larger source (a big file renamed, its
//! attributes changed, or rewrapped) is copied server-side with UploadPartCopy, part by part,
//! into a multipart upload at the destination. No object data passes through this process.
//!
//! The source's ETag is pinned on every part (`x-amz-copy-source-if-match`, and checked once by
//! a HEAD first, since some servers ignore the header), so a source replaced half-way fails the
//! copy instead of stitching two versions together; the upload is then aborted.

use aws_sdk_s3::error::ProvideErrorMetadata;
use futures::{StreamExt, TryStreamExt};

use super::client::S3Store;
use super::errors::{self, Request};
use super::sse_headers::SseCHeaders;
use crate::store::sse::SSE_C_ALGORITHM;
use crate::store::{
    CompletedPart, CopyOptions, MAX_PARTS, MetadataDirective, ObjectStore, Op, PutOptions,
    PutOutput, StoreError, StoreResult,
};

/// Parts copied at once.
const PART_COPY_PARALLELISM: usize = 4;

impl S3Store {
    /// Copy `src` (of `size` bytes) to `dst` with UploadPartCopy.
    pub(super) async fn copy_multipart(
        &self,
        src: &str,
        dst: &str,
        opts: &CopyOptions,
    ) -> StoreResult<PutOutput> {
        let info = self.head(src).await?;
        if let Some(want) = &opts.source_if_match
            && *want != info.etag
        {
            return Err(StoreError::PreconditionFailed {
                key: src.to_owned(),
            });
        }
        let metadata = match &opts.metadata {
            MetadataDirective::Replace(m) => m.clone(),
            // A multipart upload does not inherit the source's metadata: carry it over.
            MetadataDirective::Copy => info.metadata.clone().unwrap_or_default(),
        };
        let size = info.size;
        let part_size = self
            .copy_part_bytes
            .max(size.div_ceil(u64::from(MAX_PARTS)))
            .max(1);
        let n_parts = size.div_ceil(part_size).max(1);
        let upload_id = self
            .create_multipart(
                dst,
                PutOptions {
                    metadata,
                    ..PutOptions::default()
                },
            )
            .await?;
        let etag = info.etag.clone();
        let copy_source = format!(
            "{}/{}",
            self.bucket,
            super::convert::encode_copy_source_key(src)
        );
        let result: StoreResult<Vec<CompletedPart>> = futures::stream::iter(0..n_parts)
            .map(|p| {
                let (upload_id, etag, copy_source) = (&upload_id, &etag, &copy_source);
                async move {
                    let first = p * part_size;
                    let last = ((p + 1) * part_size).min(size).max(1) - 1;
                    let part_number = (p + 1) as u32;
                    let etag = self
                        .copy_part(
                            src,
                            dst,
                            upload_id,
                            part_number,
                            copy_source,
                            etag,
                            first..=last,
                        )
                        .await?;
                    Ok(CompletedPart { part_number, etag })
                }
            })
            .buffered(PART_COPY_PARALLELISM)
            .try_collect()
            .await;
        let parts = match result {
            Ok(parts) => parts,
            Err(e) => {
                let _ = self.abort_multipart(dst, &upload_id).await;
                return Err(e);
            }
        };
        match self.complete_multipart(dst, &upload_id, &parts).await {
            Ok(out) => Ok(out),
            Err(e) => {
                let _ = self.abort_multipart(dst, &upload_id).await;
                Err(e)
            }
        }
    }

    /// One UploadPartCopy of bytes `range` of the source, pinned to its ETag.
    #[allow(clippy::too_many_arguments)]
    async fn copy_part(
        &self,
        src: &str,
        dst: &str,
        upload_id: &str,
        part_number: u32,
        copy_source: &str,
        source_etag: &str,
        range: std::ops::RangeInclusive<u64>,
    ) -> StoreResult<String> {
        let len = range.end() - range.start() + 1;
        self.stats.record(Op::UploadPart, 0);
        let (result, _attempts) = self
            .with_read_keys(src, |source_key| {
                let mut req = self
                    .client
                    .upload_part_copy()
                    .bucket(&self.bucket)
                    .key(dst)
                    .upload_id(upload_id)
                    .part_number(part_number as i32)
                    .copy_source(copy_source)
                    .copy_source_range(format!("bytes={}-{}", range.start(), range.end()))
                    .copy_source_if_match(source_etag)
                    .sse_c(self.sse.write_key());
                if let Some(k) = source_key {
                    req = req
                        .copy_source_sse_customer_algorithm(SSE_C_ALGORITHM)
                        .copy_source_sse_customer_key(k.key_base64())
                        .copy_source_sse_customer_key_md5(k.key_md5_base64());
                }
                req.send()
            })
            .await;
        let out = result.map_err(|e| {
            errors::map(
                &Request::new("UploadPartCopy", src, self).upload(upload_id),
                e,
            )
        })?;
        if let Some(state) = self.lock_uploads().get_mut(upload_id)
            && state.key == dst
        {
            state.part_sizes.insert(part_number, len);
        }
        let etag = out.copy_part_result().and_then(|r| r.e_tag());
        super::convert::required_etag("UploadPartCopy", dst, etag)
    }
}

/// Whether a CopyObject failure says the source is above the server's single-copy limit
/// (AWS: 400 InvalidRequest "The specified copy source is larger than the maximum allowable
/// size for a copy source: 5368709120").
pub(super) fn source_too_large<E: ProvideErrorMetadata>(
    err: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> bool {
    err.as_service_error().is_some_and(|e| {
        e.code() == Some("EntityTooLarge")
            || e.message()
                .is_some_and(|m| m.contains("maximum allowable size"))
    })
}
