//! ListMultipartUploads: the uploads a crash left neither completed nor aborted, for
//! `s3cryptfs cleanup` (their parts are stored, and billed, until someone aborts them).

use std::time::SystemTime;

use super::client::S3Store;
use super::convert::malformed;
use super::errors::{self, Request};
use crate::store::{Op, PendingUpload, StoreResult};

impl S3Store {
    pub(super) async fn list_pending_uploads(
        &self,
        prefix: &str,
    ) -> StoreResult<Vec<PendingUpload>> {
        let shown = if prefix.is_empty() {
            format!("s3://{}/", self.bucket)
        } else {
            prefix.to_owned()
        };
        let mut uploads = Vec::new();
        let mut markers: (Option<String>, Option<String>) = (None, None);
        loop {
            self.stats.record(Op::List, 0);
            let out = self
                .client
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .set_prefix((!prefix.is_empty()).then(|| prefix.to_owned()))
                .set_key_marker(markers.0.take())
                .set_upload_id_marker(markers.1.take())
                .send()
                .await
                .map_err(|e| errors::map(&Request::new("ListMultipartUploads", &shown, self), e))?;
            for u in out.uploads() {
                let (Some(key), Some(upload_id)) = (u.key(), u.upload_id()) else {
                    return Err(malformed(
                        "ListMultipartUploads",
                        &shown,
                        "an upload without Key or UploadId",
                    ));
                };
                uploads.push(PendingUpload {
                    key: key.to_owned(),
                    upload_id: upload_id.to_owned(),
                    initiated: u
                        .initiated()
                        .and_then(|t| SystemTime::try_from(*t).ok())
                        .unwrap_or(SystemTime::UNIX_EPOCH),
                });
            }
            if !out.is_truncated().unwrap_or(false) {
                break;
            }
            let next = (
                out.next_key_marker().map(str::to_owned),
                out.next_upload_id_marker().map(str::to_owned),
            );
            if next.0.is_none() && next.1.is_none() {
                return Err(malformed(
                    "ListMultipartUploads",
                    &shown,
                    "a truncated page without NextKeyMarker",
                ));
            }
            markers = next;
        }
        uploads.sort_by(|a, b| (a.initiated, &a.key).cmp(&(b.initiated, &b.key)));
        Ok(uploads)
    }
}
