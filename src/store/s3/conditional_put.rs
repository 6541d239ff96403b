//! PutObject, with one server's reading of `If-Match` worked around.
//!
//! Ceph RGW 16 compares a PUT's `If-Match` with the ETag without its quotes, so the quoted
//! form S3 documents (and GET, HEAD and copy take there too) fails every conditional PUT with
//! 412. On a 412 to a PUT with `If-Match`, the store HEADs the object: if it still has the
//! ETag asked for, the condition holds and the server misread it, so the PUT goes again with
//! the ETag unquoted. The retry is still conditional (a write in between fails it), and once
//! it works the store sends the unquoted form from then on.

use std::sync::atomic::Ordering;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::put_object::{PutObjectError, PutObjectOutput};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;

use super::client::{S3Store, unsigned_payload};
use super::convert::sdk_metadata;
use super::errors::{self, Request};
use super::sse_headers::WriteSse;
use crate::store::{Op, PutOptions, StoreResult, rules};

type PutResult = Result<PutObjectOutput, SdkError<PutObjectError, HttpResponse>>;

impl S3Store {
    /// Sends PutObject for `body` with the conditions and metadata of `opts` (the caller has
    /// counted the first request).
    pub(super) async fn put_object(
        &self,
        key: &str,
        body: Bytes,
        opts: &PutOptions,
    ) -> StoreResult<PutObjectOutput> {
        let unquoted = self.unquoted_if_match.load(Ordering::Relaxed);
        let if_match = opts.if_match.as_deref().map(|etag| {
            if unquoted {
                rules::strip_quotes(etag).to_owned()
            } else {
                etag.to_owned()
            }
        });
        let map = |e| errors::map(&Request::new("PutObject", key, self), e);
        let first = self.send_put(key, body.clone(), opts, if_match).await;
        let Some(wanted) = opts.if_match.as_deref() else {
            return first.map_err(map);
        };
        match first {
            Err(e) if errors::status(&e) == Some(412) && !unquoted => {
                let (info, attempts) = self.head_object(key, None).await;
                self.record_attempts(Op::Head, attempts, 0);
                if !info.is_ok_and(|i| rules::etag_matches(wanted, &i.etag)) {
                    return Err(map(e));
                }
                self.stats.record(Op::Put, body.len() as u64);
                let unquoted_etag = rules::strip_quotes(wanted).to_owned();
                let out = self
                    .send_put(key, body, opts, Some(unquoted_etag))
                    .await
                    .map_err(map)?;
                if !self.unquoted_if_match.swap(true, Ordering::Relaxed) {
                    log::info!(
                        "the S3 server at {} refuses If-Match with a quoted ETag on PutObject \
                         (as Ceph RGW 16 does) and takes it unquoted: sending it unquoted from \
                         now on",
                        self.endpoint
                    );
                }
                Ok(out)
            }
            other => other.map_err(map),
        }
    }

    async fn send_put(
        &self,
        key: &str,
        body: Bytes,
        opts: &PutOptions,
        if_match: Option<String>,
    ) -> PutResult {
        let unsigned = unsigned_payload(body.len());
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_length(body.len() as i64)
            .body(ByteStream::from(body))
            .set_metadata(Some(sdk_metadata(&opts.metadata)))
            .set_if_match(if_match)
            .set_if_none_match(opts.if_none_match.then(|| "*".to_owned()))
            .write_sse(&self.sse);
        if unsigned {
            request.customize().disable_payload_signing().send().await
        } else {
            request.send().await
        }
    }
}
