//! The S3 backend: [`ObjectStore`] on `aws-sdk-s3`, for AWS and S3-compatible servers.
//!
//! `settings` turns [`S3Settings`] into an SDK client (credentials chain, region, endpoint,
//! path-style, timeouts, standard retries); `client` holds the [`S3Store`] and its state;
//! `errors` maps SDK errors to [`StoreError`]. This file issues the requests and applies the
//! mount's [`SseMode`](super::SseMode) to each one S3 wants it on; the children that
//! `impl S3Store` for one kind of request import `client`, never this file, so there is no
//! import cycle.
//!
//! Two decisions a reader must know:
//! - The conditions of a multipart upload (If-Match / If-None-Match) are given at create time in
//!   the trait but sent by S3 at completion, so the store remembers them per upload id (with
//!   the part sizes, for EntityTooSmall messages). An upload outlives neither the process nor
//!   the store.
//! - SSE-C reads try the mount's keys in order and move to the next key only when the server
//!   refuses the key (400/403); writes always use the first key.
//! - Where the server refuses a server-side copy (Ceph RGW 16 with SSE-C and SSE-KMS),
//!   `client_copy` copies through this process instead.

mod batch_delete;
mod checks;
mod client;
mod client_copy;
mod conditional_put;
mod convert;
mod copy_check;
mod copy_refusal;
mod echo;
mod errors;
mod listed;
mod part_copy;
mod settings;
mod sse_headers;
mod uploads;

#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod sse_response_tests;

use std::collections::BTreeMap;
use std::future::Future;
use std::ops::Range;

use async_trait::async_trait;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::head_object::{HeadObjectError, HeadObjectOutput};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart as SdkCompletedPart, MetadataDirective as SdkDirective,
};
use bytes::Bytes;

use super::rules;
use super::sse::{SSE_C_ALGORITHM, SseCKey, SseEcho};
use super::{
    CompletedPart, CopyOptions, DeleteFailure, GetOutput, ListPage, ListRequest, MetadataDirective,
    ObjectInfo, ObjectStore, Op, PendingUpload, PutOptions, PutOutput, StatsSnapshot, StoreError,
    StoreResult,
};
use client::{UploadState, unsigned_payload};
use convert::{
    collect_body, content_range_span, content_range_total, encode_copy_source_key, malformed,
    object_info, required_etag, sdk_metadata,
};
use copy_refusal::CopyRefusal;
use echo::SseFields;
use errors::Request;
use sse_headers::{SseCHeaders, WriteSse};

pub use checks::CredentialsFound;
pub use client::{S3Store, UNSIGNED_PAYLOAD_MIN_BYTES};
pub use settings::{DEFAULT_REGION, S3Retry, S3Settings, S3Timeouts, sdk_config};

impl S3Store {
    /// HeadBucket: whether the bucket exists and these credentials may use it, with a message
    /// that says what to fix when not.
    pub async fn check_bucket(&self) -> StoreResult<()> {
        let shown = format!("s3://{}", self.bucket);
        let result = self.client.head_bucket().bucket(&self.bucket).send().await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => Err(match errors::status(&e) {
                Some(404) => StoreError::NoSuchBucket {
                    bucket: self.bucket.clone(),
                    endpoint: self.endpoint.clone(),
                },
                Some(403) => StoreError::AccessDenied {
                    key: shown,
                    reason: format!(
                        "HeadBucket was refused at {}: the credentials are unknown or may not \
                         list this bucket (s3:ListBucket)",
                        self.endpoint
                    ),
                },
                _ => errors::map(&Request::new("HeadBucket", &shown, self), e),
            }),
        }
    }

    /// Runs a read request once per SSE-C key until the server accepts one (once, without SSE-C
    /// headers, in other modes). Returns the outcome and how many requests were sent; on failure
    /// the first key's error, which is the one that says what is wrong with the current key.
    async fn with_read_keys<T, E, F, Fut>(
        &self,
        key: &str,
        mut call: F,
    ) -> (Result<T, SdkError<E, HttpResponse>>, u64)
    where
        F: FnMut(Option<&SseCKey>) -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    {
        let keys = self.sse.read_keys();
        if keys.is_empty() {
            return (call(None).await, 1);
        }
        let mut first_error = None;
        for (i, sse_key) in keys.iter().enumerate() {
            let result = call(Some(sse_key)).await;
            let attempts = i as u64 + 1;
            match result {
                Ok(out) => {
                    if i > 0 {
                        log::debug!(
                            "{key}: readable with SSE-C key {} ({}), not the current one",
                            i + 1,
                            sse_key.source()
                        );
                    }
                    return (Ok(out), attempts);
                }
                Err(e) => {
                    let key_refused = matches!(errors::status(&e), Some(400 | 403));
                    if !key_refused || attempts == keys.len() as u64 {
                        return (Err(first_error.unwrap_or(e)), attempts);
                    }
                    first_error.get_or_insert(e);
                }
            }
        }
        unreachable!("the loop returns on the last key")
    }

    fn check_sse(
        &self,
        operation: &str,
        key: &str,
        echo: SseEcho<'_>,
        customer_key_echoed: bool,
    ) -> StoreResult<()> {
        if !self.verify_sse {
            return self.sse.check_kms_key_named(operation, key, &echo);
        }
        self.sse
            .check_confirmed(operation, key, &echo, customer_key_echoed)
    }

    /// HeadObject with the mount's read keys; the answer and how many requests were sent.
    async fn head_request(
        &self,
        key: &str,
        if_match: Option<&str>,
    ) -> (
        Result<HeadObjectOutput, SdkError<HeadObjectError, HttpResponse>>,
        u64,
    ) {
        self.with_read_keys(key, |sse_key| {
            self.client
                .head_object()
                .bucket(&self.bucket)
                .key(key)
                .set_if_match(if_match.map(str::to_owned))
                .sse_c(sse_key)
                .send()
        })
        .await
    }

    async fn head_object(
        &self,
        key: &str,
        if_match: Option<&str>,
    ) -> (StoreResult<ObjectInfo>, u64) {
        let (result, attempts) = self.head_request(key, if_match).await;
        let info = match result {
            Ok(out) => object_info(
                key,
                out.content_length(),
                out.e_tag(),
                out.last_modified(),
                out.metadata(),
            )
            .map(|info| out.with_sse_of(info))
            .and_then(|info| copy_check::read_version(key, if_match, info)),
            Err(e) => Err(errors::map(&Request::new("HeadObject", key, self), e)),
        };
        (info, attempts)
    }
}

/// Most bytes a whole-object GET takes when the server announces no Content-Length. Callers
/// that read file data ask for ranges; whole-object GETs are for small objects (the vault
/// config, directory markers), so a server that streams without end is cut off here.
const MAX_UNSIZED_BODY_BYTES: u64 = 64 << 20;

#[async_trait]
impl ObjectStore for S3Store {
    async fn head(&self, key: &str) -> StoreResult<ObjectInfo> {
        rules::check_key(key)?;
        let (info, attempts) = self.head_object(key, None).await;
        self.record_attempts(Op::Head, attempts, 0);
        info
    }

    async fn get(
        &self,
        key: &str,
        range: Option<Range<u64>>,
        if_match: Option<&str>,
    ) -> StoreResult<GetOutput> {
        rules::check_key(key)?;
        if let Some(r) = &range {
            if r.start >= r.end {
                return Err(StoreError::InvalidArgument(format!(
                    "{key}: empty or reversed range {}..{}",
                    r.start, r.end
                )));
            }
        }
        let header = range
            .as_ref()
            .map(|r| format!("bytes={}-{}", r.start, r.end - 1));
        let (result, attempts) = self
            .with_read_keys(key, |sse_key| {
                self.client
                    .get_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .set_range(header.clone())
                    .set_if_match(if_match.map(str::to_owned))
                    .sse_c(sse_key)
                    .send()
            })
            .await;
        let out = match result {
            Ok(out) => out,
            Err(e) if errors::status(&e) == Some(416) => {
                self.record_attempts(Op::Get, attempts, 0);
                let mut req = Request::new("GetObject", key, self);
                req.range = range.as_ref().map(|r| (r.start, r.end));
                let refused = errors::map(&req, e);
                // S3 refuses every range of an empty object; the trait gives an empty body.
                if let StoreError::InvalidRange { size: 0, .. } = refused {
                    let (info, head_attempts) = self.head_object(key, if_match).await;
                    self.record_attempts(Op::Head, head_attempts, 0);
                    let info = info?;
                    if info.size == 0 {
                        return Ok(GetOutput {
                            data: Bytes::new(),
                            info,
                        });
                    }
                    let r = range.unwrap_or_default();
                    return Err(StoreError::InvalidRange {
                        key: key.to_owned(),
                        start: r.start,
                        end: r.end,
                        size: info.size,
                    });
                }
                return Err(refused);
            }
            Err(e) => {
                self.record_attempts(Op::Get, attempts, 0);
                return Err(errors::map(&Request::new("GetObject", key, self), e));
            }
        };
        let size = match (&range, out.content_range()) {
            (Some(_), Some(content_range)) => content_range_total(content_range),
            (Some(_), None) | (None, _) => out.content_length().and_then(|n| u64::try_from(n).ok()),
        };
        // A range of an empty object holds no bytes, whatever else the answer says (s3rver
        // announces one byte of it and sends none).
        let empty = range.is_some() && size == Some(0);
        let expected_len = (!empty)
            .then(|| out.content_length().and_then(|n| u64::try_from(n).ok()))
            .flatten();
        // Everything in this answer is input: the body must be the range asked for, and never
        // longer than it (or than the size announced, for a whole-object GET).
        let limit = match (&range, out.content_range()) {
            (Some(r), Some(content_range)) => match content_range_span(content_range) {
                Some(span) if span.start == r.start && span.end <= r.end => span.end - span.start,
                _ => {
                    self.record_attempts(Op::Get, attempts, 0);
                    return Err(malformed(
                        "GetObject",
                        key,
                        &format!(
                            "Content-Range {content_range:?} for the requested bytes {}..{}",
                            r.start, r.end
                        ),
                    ));
                }
            },
            // Some servers answer a range that covers the whole object with the whole object
            // and no Content-Range; anything else would be bytes from another offset.
            (Some(r), None) if r.start == 0 => r.end,
            (Some(r), None) => {
                self.record_attempts(Op::Get, attempts, 0);
                return Err(malformed(
                    "GetObject",
                    key,
                    &format!(
                        "no Content-Range for the requested bytes {}..{}",
                        r.start, r.end
                    ),
                ));
            }
            (None, _) => expected_len.unwrap_or(MAX_UNSIZED_BODY_BYTES),
        };
        let info = object_info(
            key,
            size.and_then(|n| i64::try_from(n).ok()),
            out.e_tag(),
            out.last_modified(),
            out.metadata(),
        )
        .map(|info| out.with_sse_of(info))
        .and_then(|info| copy_check::read_version(key, if_match, info));
        let limit = if empty { 0 } else { limit };
        let body = collect_body(out.body, expected_len, limit).await;
        let bytes_read = body.as_ref().map_or(0, |b| b.len() as u64);
        self.record_attempts(Op::Get, attempts, bytes_read);
        let data = body.map_err(|e| StoreError::Transient {
            key: key.to_owned(),
            reason: format!("GetObject: {e}"),
        })?;
        if expected_len.is_some_and(|n| n != data.len() as u64) {
            return Err(StoreError::Transient {
                key: key.to_owned(),
                reason: format!(
                    "GetObject: the body has {} bytes, Content-Length said {}",
                    data.len(),
                    expected_len.unwrap_or_default()
                ),
            });
        }
        Ok(GetOutput { data, info: info? })
    }

    async fn put(&self, key: &str, body: Bytes, opts: PutOptions) -> StoreResult<PutOutput> {
        rules::check_key(key)?;
        rules::check_single_put_size(key, body.len() as u64)?;
        self.stats.record(Op::Put, body.len() as u64);
        let out = self.put_object(key, body, &opts).await?;
        self.check_sse("PutObject", key, out.sse_echo(), true)?;
        Ok(PutOutput {
            etag: required_etag("PutObject", key, out.e_tag())?,
        })
    }

    async fn create_multipart(&self, key: &str, opts: PutOptions) -> StoreResult<String> {
        rules::check_key(key)?;
        self.stats.record(Op::CreateMultipart, 0);
        let result = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .set_metadata(Some(sdk_metadata(&opts.metadata)))
            .write_sse(&self.sse)
            .send()
            .await;
        let out = result
            .map_err(|e| errors::map(&Request::new("CreateMultipartUpload", key, self), e))?;
        self.check_sse("CreateMultipartUpload", key, out.sse_echo(), true)?;
        let upload_id = out
            .upload_id()
            .filter(|id| !id.is_empty())
            .ok_or_else(|| malformed("CreateMultipartUpload", key, "no UploadId"))?
            .to_owned();
        self.lock_uploads().insert(
            upload_id.clone(),
            UploadState {
                key: key.to_owned(),
                if_match: opts.if_match,
                if_none_match: opts.if_none_match,
                part_sizes: BTreeMap::new(),
            },
        );
        Ok(upload_id)
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Bytes,
    ) -> StoreResult<String> {
        rules::check_key(key)?;
        rules::check_part_number(key, part_number)?;
        let len = body.len() as u64;
        self.stats.record(Op::UploadPart, len);
        let unsigned = unsigned_payload(body.len());
        let request = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(part_number as i32)
            .content_length(len as i64)
            .body(ByteStream::from(body))
            .sse_c(self.sse.write_key());
        let result = if unsigned {
            request.customize().disable_payload_signing().send().await
        } else {
            request.send().await
        };
        let out = result.map_err(|e| {
            errors::map(&Request::new("UploadPart", key, self).upload(upload_id), e)
        })?;
        self.check_sse("UploadPart", key, out.sse_echo(), true)?;
        if let Some(state) = self.lock_uploads().get_mut(upload_id) {
            if state.key == key {
                state.part_sizes.insert(part_number, len);
            }
        }
        required_etag("UploadPart", key, out.e_tag())
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> StoreResult<PutOutput> {
        rules::check_key(key)?;
        self.stats.record(Op::CompleteMultipart, 0);
        // S3 answers an empty list with MalformedXML and servers differ on the order check;
        // both are the caller's mistake, refused here the same way everywhere.
        if parts.is_empty() {
            return Err(StoreError::InvalidPart {
                key: key.to_owned(),
                reason: "the part list is empty".into(),
            });
        }
        if let Some(pair) = parts
            .windows(2)
            .find(|pair| pair[0].part_number >= pair[1].part_number)
        {
            return Err(StoreError::InvalidPart {
                key: key.to_owned(),
                reason: format!(
                    "parts must be listed in ascending order (part {} follows part {})",
                    pair[1].part_number, pair[0].part_number
                ),
            });
        }
        let (if_match, if_none_match, part_sizes) = {
            let uploads = self.lock_uploads();
            match uploads.get(upload_id).filter(|s| s.key == key) {
                Some(state) => (
                    state.if_match.clone(),
                    state.if_none_match,
                    parts
                        .iter()
                        .map(|p| (p.part_number, state.part_sizes.get(&p.part_number).copied()))
                        .collect(),
                ),
                None => (None, false, Vec::new()),
            }
        };
        self.check_completion_conditions(key, if_match.as_deref(), if_none_match)
            .await?;
        let completed = CompletedMultipartUpload::builder()
            .set_parts(Some(
                parts
                    .iter()
                    .map(|p| {
                        SdkCompletedPart::builder()
                            .part_number(p.part_number as i32)
                            .e_tag(&p.etag)
                            .build()
                    })
                    .collect(),
            ))
            .build();
        let result = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(completed)
            .set_if_match(if_match)
            .set_if_none_match(if_none_match.then(|| "*".to_owned()))
            .send()
            .await;
        let out = match result {
            Ok(out) => out,
            Err(e) => {
                let mut req = Request::new("CompleteMultipartUpload", key, self).upload(upload_id);
                req.part_sizes = &part_sizes;
                let err = errors::map(&req, e);
                if matches!(err, StoreError::NoSuchUpload { .. }) {
                    self.lock_uploads().remove(upload_id);
                }
                return Err(err);
            }
        };
        self.lock_uploads().remove(upload_id);
        // Ceph RGW 16 answers with neither the ETag nor the SSE headers; the object's HEAD
        // has both.
        if out.e_tag().is_none_or(|e| e.trim().is_empty()) {
            log::debug!("{key}: CompleteMultipartUpload gave no ETag, asking HEAD");
            let (result, attempts) = self.head_request(key, None).await;
            self.record_attempts(Op::Head, attempts, 0);
            let head =
                result.map_err(|e| errors::map(&Request::new("HeadObject", key, self), e))?;
            self.check_sse(
                "CompleteMultipartUpload (confirmed by HeadObject)",
                key,
                SseEcho {
                    server_side_encryption: head.server_side_encryption().map(|s| s.as_str()),
                    customer_key_md5: None,
                    kms_key_id: head.ssekms_key_id(),
                },
                false,
            )?;
            return Ok(PutOutput {
                etag: required_etag("HeadObject", key, head.e_tag())?,
            });
        }
        self.check_sse(
            "CompleteMultipartUpload",
            key,
            SseEcho {
                server_side_encryption: out.server_side_encryption().map(|s| s.as_str()),
                customer_key_md5: None,
                kms_key_id: out.ssekms_key_id(),
            },
            false,
        )?;
        Ok(PutOutput {
            etag: required_etag("CompleteMultipartUpload", key, out.e_tag())?,
        })
    }

    async fn set_upload_if_match(
        &self,
        key: &str,
        upload_id: &str,
        if_match: Option<String>,
    ) -> StoreResult<()> {
        match self
            .lock_uploads()
            .get_mut(upload_id)
            .filter(|s| s.key == key)
        {
            Some(state) => {
                state.if_match = if_match;
                state.if_none_match = false;
                Ok(())
            }
            None => Err(StoreError::NoSuchUpload {
                key: key.to_owned(),
                upload_id: upload_id.to_owned(),
            }),
        }
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> StoreResult<()> {
        rules::check_key(key)?;
        self.stats.record(Op::AbortMultipart, 0);
        let result = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await;
        match result {
            Ok(_) => {
                self.lock_uploads().remove(upload_id);
                Ok(())
            }
            Err(e) => {
                let req = Request::new("AbortMultipartUpload", key, self).upload(upload_id);
                let err = errors::map(&req, e);
                if matches!(err, StoreError::NoSuchUpload { .. }) {
                    self.lock_uploads().remove(upload_id);
                }
                Err(err)
            }
        }
    }

    async fn list_uploads(&self, prefix: &str) -> StoreResult<Vec<PendingUpload>> {
        self.list_pending_uploads(prefix).await
    }

    async fn list(&self, req: &ListRequest) -> StoreResult<ListPage> {
        self.list_page(req, true).await
    }

    async fn list_names(&self, req: &ListRequest) -> StoreResult<ListPage> {
        self.list_page(req, false).await
    }

    async fn copy(&self, src: &str, dst: &str, opts: CopyOptions) -> StoreResult<PutOutput> {
        rules::check_key(src)?;
        rules::check_key(dst)?;
        if opts
            .source_size
            .is_some_and(|size| size > self.max_copy_object_bytes)
        {
            return self.copy_multipart(src, dst, &opts).await;
        }
        let copy_source = format!("{}/{}", self.bucket, encode_copy_source_key(src));
        let (directive, metadata) = match &opts.metadata {
            MetadataDirective::Copy => (SdkDirective::Copy, None),
            MetadataDirective::Replace(m) => (SdkDirective::Replace, Some(sdk_metadata(m))),
        };
        let (result, attempts) = self
            .with_read_keys(src, |source_key| {
                let mut req = self
                    .client
                    .copy_object()
                    .bucket(&self.bucket)
                    .key(dst)
                    .copy_source(&copy_source)
                    .metadata_directive(directive.clone())
                    .set_metadata(metadata.clone())
                    .set_copy_source_if_match(opts.source_if_match.clone())
                    .write_sse(&self.sse);
                if let Some(k) = source_key {
                    req = req
                        .copy_source_sse_customer_algorithm(SSE_C_ALGORITHM)
                        .copy_source_sse_customer_key(k.key_base64())
                        .copy_source_sse_customer_key_md5(k.key_md5_base64());
                }
                req.send()
            })
            .await;
        self.record_attempts(Op::Copy, attempts, 0);
        let result = match result {
            Err(e) if errors::status(&e) == Some(400) && part_copy::source_too_large(&e) => {
                return self.copy_multipart(src, dst, &opts).await;
            }
            Err(e) => match CopyRefusal::classify(errors::status(&e), &self.sse, src, dst, &opts) {
                Some(why) => return self.copy_client_side(src, dst, &opts, why).await,
                None => Err(e),
            },
            ok => ok,
        };
        let out = result.map_err(|e| {
            // A missing source is the source's NotFound; anything else names the destination.
            let err = errors::map(&Request::new("CopyObject", src, self), e);
            match err {
                StoreError::NotFound { .. } | StoreError::PreconditionFailed { .. } => err,
                StoreError::InvalidArgument(msg) => {
                    StoreError::InvalidArgument(format!("copy {src} -> {dst}: {msg}"))
                }
                other => other,
            }
        })?;
        self.check_sse("CopyObject", dst, out.sse_echo(), true)?;
        let etag = required_etag(
            "CopyObject",
            dst,
            out.copy_object_result().and_then(|r| r.e_tag()),
        )?;
        self.check_copied_version(src, dst, &opts, &etag).await?;
        Ok(PutOutput { etag })
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        self.delete_object(key, None).await
    }

    async fn delete_if_match(&self, key: &str, etag: &str) -> StoreResult<()> {
        self.delete_object(key, Some(etag)).await
    }

    async fn delete_many(&self, keys: &[String]) -> StoreResult<Vec<DeleteFailure>> {
        self.delete_objects(keys).await
    }

    fn stats(&self) -> Option<StatsSnapshot> {
        Some(self.stats.snapshot())
    }
}
