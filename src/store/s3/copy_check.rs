//! Conditions some servers ignore, checked by the store from their answers.
//!
//! CopyObject's `x-amz-copy-source-if-match`: some servers (moto, s3rver) copy whatever
//! version the source holds, whatever ETag the request named. A rename that copies a version
//! another client has just replaced would then store the new body under the old version's
//! attribute record: an object that no longer opens. Where an ETag is the MD5 of the body (no
//! SSE-C or SSE-KMS, a single-part source), a copy whose ETag is not the one asked for is such
//! a version: it is deleted again and the copy fails with `PreconditionFailed`, as S3 itself
//! would have refused it.
//!
//! `If-Match` and `If-None-Match: *` at CompleteMultipartUpload: moto, Ceph RGW 16.2 and
//! s3rver complete the upload whatever the object is, so a file large enough to go multipart
//! would silently replace another mount's version (no conflict copy). Before completing an
//! upload with a condition, the store HEADs the object and refuses the completion with
//! `PreconditionFailed` (the upload stays open, as after S3's own 412) when the condition
//! does not hold. That leaves the window between the HEAD and the completion; where the
//! server checks the condition itself, it closes that too. One HEAD per multipart upload
//! (at least 16 MiB of body) is the cost.
//!
//! `If-Match` on GET and HEAD: s3rver answers with whatever version is there. The answer
//! carries that version's ETag, so a read of another version than the one asked for fails with
//! `PreconditionFailed` as it would on S3: a reader of an open file then sees the file changed
//! (`ESTALE`) instead of blocks of the new version that its old header cannot open (EIO).

use super::client::S3Store;
use crate::store::{CopyOptions, ObjectInfo, ObjectStore, SseMode, StoreError, StoreResult, rules};

impl S3Store {
    /// Whether the copy of `src` to `dst` (ETag `etag`) is of the version `opts` asked for,
    /// as far as ETags can tell; refuses (and deletes) it when it is not.
    pub(super) async fn check_copied_version(
        &self,
        src: &str,
        dst: &str,
        opts: &CopyOptions,
        etag: &str,
    ) -> StoreResult<()> {
        let Some(wanted) = &opts.source_if_match else {
            return Ok(());
        };
        let md5_etags = matches!(self.sse, SseMode::None | SseMode::S3);
        // A copy onto itself (a metadata change) is not judged: it replaced the only version
        // there, so nothing could be undone, and servers answer it with ETags of their own.
        if src == dst || !md5_etags || wanted.contains('-') || rules::etag_matches(wanted, etag) {
            return Ok(());
        }
        if let Err(e) = self.delete(dst).await {
            log::warn!("{dst}: cannot delete a copy of another version of {src}: {e}");
        }
        log::warn!(
            "{} copied another version of {src} than the one asked for (it ignores \
             x-amz-copy-source-if-match): the copy is refused",
            self.endpoint
        );
        Err(StoreError::PreconditionFailed {
            key: src.to_owned(),
        })
    }
}

impl S3Store {
    /// Whether the conditions of a multipart upload of `key` hold now (see the module
    /// comment): `PreconditionFailed` when `if_none_match` and the object exists, or
    /// `if_match` names another ETag than the object's, or no object.
    pub(super) async fn check_completion_conditions(
        &self,
        key: &str,
        if_match: Option<&str>,
        if_none_match: bool,
    ) -> StoreResult<()> {
        if if_match.is_none() && !if_none_match {
            return Ok(());
        }
        let refused = || StoreError::PreconditionFailed {
            key: key.to_owned(),
        };
        let (found, attempts) = self.head_object(key, None).await;
        self.record_attempts(crate::store::Op::Head, attempts, 0);
        match found {
            Ok(_) if if_none_match => Err(refused()),
            Ok(info) => match if_match {
                Some(wanted) if !rules::etag_matches(wanted, &info.etag) => Err(refused()),
                _ => Ok(()),
            },
            Err(StoreError::NotFound { .. }) if if_match.is_some() => Err(refused()),
            Err(StoreError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// `info`, the answer to a GET or HEAD sent with `If-Match: if_match`, unless it describes
/// another version (a server that ignored the condition): then `PreconditionFailed`.
pub(super) fn read_version(
    key: &str,
    if_match: Option<&str>,
    info: ObjectInfo,
) -> StoreResult<ObjectInfo> {
    match if_match {
        Some(wanted) if !rules::etag_matches(wanted, &info.etag) => {
            Err(StoreError::PreconditionFailed {
                key: key.to_owned(),
            })
        }
        _ => Ok(info),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(etag: &str) -> ObjectInfo {
        ObjectInfo {
            key: "k".into(),
            size: 1,
            etag: etag.into(),
            last_modified: std::time::UNIX_EPOCH,
            metadata: None,
            sse: None,
        }
    }

    #[test]
    fn a_read_answered_with_another_version_is_refused() {
        assert!(read_version("k", None, info("\"a\"")).is_ok());
        assert!(read_version("k", Some("\"a\""), info("\"a\"")).is_ok());
        assert!(
            read_version("k", Some("a"), info("\"a\"")).is_ok(),
            "quotes do not matter"
        );
        assert!(read_version("k", Some("*"), info("\"a\"")).is_ok());
        assert!(matches!(
            read_version("k", Some("\"a\""), info("\"b\"")),
            Err(StoreError::PreconditionFailed { key }) if key == "k"
        ));
    }
}
