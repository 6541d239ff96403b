//! DeleteObjects: many keys deleted in requests of up to 1,000 (quiet mode: the server names
//! only the keys it failed on); and the conditional DeleteObject renames delete sources with.
//!
//! The answer is input like any other: an error entry naming a key this request did not ask
//! for is logged and ignored, never reported as this caller's failure nor taken as a sign that
//! any other key was deleted. A server without DeleteObjects (NotImplemented, HTTP 501) gets
//! one DeleteObject per key from then on; the store remembers that and logs it once.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use futures::stream::{self, StreamExt};

use super::client::S3Store;
use super::errors::{self, Request};
use crate::store::{
    DeleteFailure, MAX_DELETE_BATCH, ObjectStore, Op, StoreError, StoreResult, rules,
};

/// Single deletes in flight at once when the server has no DeleteObjects.
const SINGLE_DELETES_IN_FLIGHT: usize = 16;

impl S3Store {
    /// [`ObjectStore::delete_many`] on S3 (see the module comment).
    pub(super) async fn delete_objects(&self, keys: &[String]) -> StoreResult<Vec<DeleteFailure>> {
        let mut failed = Vec::new();
        let mut valid = Vec::with_capacity(keys.len());
        for key in keys {
            match rules::check_key(key) {
                Ok(()) => valid.push(key.clone()),
                Err(error) => failed.push(DeleteFailure {
                    key: key.clone(),
                    error,
                }),
            }
        }
        for chunk in valid.chunks(MAX_DELETE_BATCH) {
            if self.no_delete_objects.load(Ordering::Relaxed) {
                failed.extend(self.delete_one_by_one(chunk).await);
                continue;
            }
            match self.delete_batch(chunk).await? {
                Some(errors) => failed.extend(errors),
                None => failed.extend(self.delete_one_by_one(chunk).await),
            }
        }
        Ok(failed)
    }

    /// One DeleteObjects request for `keys` (at most 1,000, all valid): the keys it failed
    /// on, or `None` when the server has no DeleteObjects (nothing was deleted).
    async fn delete_batch(&self, keys: &[String]) -> StoreResult<Option<Vec<DeleteFailure>>> {
        let first = keys.first().map(String::as_str).unwrap_or_default();
        let objects = keys
            .iter()
            .map(|k| ObjectIdentifier::builder().key(k).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StoreError::InvalidArgument(format!("DeleteObjects: {e}")))?;
        let delete = Delete::builder()
            .set_objects(Some(objects))
            .quiet(true)
            .build()
            .map_err(|e| StoreError::InvalidArgument(format!("DeleteObjects: {e}")))?;
        self.stats.record(Op::DeleteBatch, 0);
        let sent = self
            .client
            .delete_objects()
            .bucket(&self.bucket)
            .delete(delete)
            .send()
            .await;
        let out = match sent {
            Ok(out) => out,
            Err(e) => {
                let code = e.code().unwrap_or_default();
                if errors::status(&e) == Some(501) || code == "NotImplemented" {
                    if !self.no_delete_objects.swap(true, Ordering::Relaxed) {
                        log::info!(
                            "{} has no DeleteObjects ({code}): deleting one key per request",
                            self.endpoint
                        );
                    }
                    return Ok(None);
                }
                return Err(errors::map(&Request::new("DeleteObjects", first, self), e));
            }
        };
        let mut asked: HashSet<&str> = keys.iter().map(String::as_str).collect();
        let mut failed = Vec::new();
        let mut strangers = 0usize;
        for err in out.errors() {
            let Some(key) = err.key().filter(|k| asked.remove(k)) else {
                strangers += 1;
                continue;
            };
            let code = err.code().unwrap_or_default();
            if code == "NoSuchKey" {
                continue;
            }
            failed.push(DeleteFailure {
                key: key.to_owned(),
                error: key_error(key, code, err.message().unwrap_or_default()),
            });
        }
        if strangers > 0 {
            log::warn!(
                "DeleteObjects at {}: ignored {strangers} error entr(ies) naming no key of the \
                 request (from {first} on)",
                self.endpoint
            );
        }
        Ok(Some(failed))
    }

    /// DeleteObject ([`ObjectStore::delete`]), with If-Match when `if_match` is given
    /// ([`ObjectStore::delete_if_match`]: a missing key is then no error either).
    pub(super) async fn delete_object(&self, key: &str, if_match: Option<&str>) -> StoreResult<()> {
        rules::check_key(key)?;
        self.stats.record(Op::Delete, 0);
        let sent = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .set_if_match(if_match.map(str::to_owned))
            .send()
            .await;
        match sent.map_err(|e| errors::map(&Request::new("DeleteObject", key, self), e)) {
            // S3 answers If-Match on a missing key with 404: nothing left to delete.
            Err(StoreError::NotFound { .. }) if if_match.is_some() => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// One DeleteObject per key, a few in flight at once: the keys that failed.
    async fn delete_one_by_one(&self, keys: &[String]) -> Vec<DeleteFailure> {
        let results: Vec<Option<DeleteFailure>> = stream::iter(keys.iter().cloned())
            .map(|key| async move {
                let error = self.delete(&key).await.err()?;
                Some(DeleteFailure { key, error })
            })
            .buffer_unordered(SINGLE_DELETES_IN_FLIGHT)
            .collect()
            .await;
        results.into_iter().flatten().collect()
    }
}

/// The error of one key a DeleteObjects answer says it did not delete.
fn key_error(key: &str, code: &str, message: &str) -> StoreError {
    let reason = format!("DeleteObjects: {code}: {message}");
    match code {
        "AccessDenied" => StoreError::AccessDenied {
            key: key.to_owned(),
            reason,
        },
        "InternalError" | "SlowDown" | "ServiceUnavailable" | "" => StoreError::Transient {
            key: key.to_owned(),
            reason,
        },
        _ => StoreError::Io {
            key: key.to_owned(),
            source: std::io::Error::other(reason),
        },
    }
}
