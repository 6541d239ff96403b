//! Listing answers are input like any answer: the checks every listed key and common prefix
//! pass before it reaches the file system as a name; and the ListObjectsV2 request itself.

use futures::StreamExt;

use super::client::S3Store;
use super::convert::{malformed, object_info};
use super::errors::{self, Request};
use crate::store::{
    ListPage, ListRequest, ObjectInfo, ObjectStore, Op, StoreError, StoreResult, rules,
};

/// Why a key in a listing answer cannot be one the request asked for (`None`: it can).
/// Listings are input like any answer: a key outside the prefix, one the delimiter should have
/// rolled up, or one no store could hold would otherwise reach the file system as a name.
pub(super) fn key_problem(
    key: &str,
    prefix: &str,
    delimiter: Option<&str>,
) -> Option<&'static str> {
    let Some(rest) = key.strip_prefix(prefix) else {
        return Some("it is outside the requested prefix");
    };
    if rules::check_key(key).is_err() {
        return Some("it is empty or longer than S3 allows");
    }
    if key.contains('\0') {
        return Some("it contains a NUL byte");
    }
    if delimiter.is_some_and(|d| rest.contains(d)) {
        return Some("it contains the delimiter after the prefix");
    }
    None
}

/// Why a common prefix in a listing answer cannot be one the request asked for.
pub(super) fn prefix_problem(
    common_prefix: &str,
    prefix: &str,
    delimiter: Option<&str>,
) -> Option<&'static str> {
    let Some(delimiter) = delimiter else {
        return Some("the request had no delimiter");
    };
    let Some(rest) = common_prefix.strip_prefix(prefix) else {
        return Some("it is outside the requested prefix");
    };
    let Some(name) = rest.strip_suffix(delimiter) else {
        return Some("it does not end with the delimiter");
    };
    // An empty name (a key with the delimiter right after the prefix) is a valid S3 answer;
    // the file system refuses such names itself.
    if name.contains(delimiter) {
        return Some("it is not one level below the prefix");
    }
    if common_prefix.contains('\0') || rules::check_key(common_prefix).is_err() {
        return Some("it is not a valid key prefix");
    }
    None
}

/// HEADs in flight for listing entries that came without ETag or size.
const LISTING_HEADS_IN_FLIGHT: usize = 16;

impl S3Store {
    /// One ListObjectsV2 page ([`ObjectStore::list`], or [`ObjectStore::list_names`] without
    /// `etags`: an entry listed without ETag then keeps an empty one instead of a HEAD).
    pub(super) async fn list_page(&self, req: &ListRequest, etags: bool) -> StoreResult<ListPage> {
        self.stats.record(Op::List, 0);
        let max_keys = match req.max_keys {
            0 => 1000,
            n => n.min(1000),
        };
        let result = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .set_prefix((!req.prefix.is_empty()).then(|| req.prefix.clone()))
            .set_delimiter(req.delimiter.clone().filter(|d| !d.is_empty()))
            .set_continuation_token(req.continuation_token.clone())
            .max_keys(max_keys as i32)
            .send()
            .await;
        let shown = if req.prefix.is_empty() {
            format!("s3://{}/", self.bucket)
        } else {
            req.prefix.clone()
        };
        let out =
            result.map_err(|e| errors::map(&Request::new("ListObjectsV2", &shown, self), e))?;
        let delimiter = req.delimiter.as_deref().filter(|d| !d.is_empty());
        // Entries whose ETag (if `etags`) or size the server left out (both are optional in
        // practice) are asked for with a HEAD each, so one such entry never fails the listing.
        let mut objects = Vec::with_capacity(out.contents().len());
        let mut incomplete = Vec::new();
        for o in out.contents() {
            let Some(key) = o.key() else {
                log::warn!("{shown}: listing skips an entry without Key");
                continue;
            };
            if let Some(problem) = key_problem(key, &req.prefix, delimiter) {
                log::warn!("{shown}: listing skips the key {key:?}: {problem}");
                continue;
            }
            // Without `etags`, a missing ETag is no reason for a HEAD: it stays empty.
            let etag = o.e_tag().or((!etags).then_some("\"\""));
            match object_info(key, o.size(), etag, o.last_modified(), None) {
                Ok(mut info) => {
                    if o.e_tag().is_none() {
                        info.etag = String::new();
                    }
                    objects.push(Some(info))
                }
                Err(_) => {
                    incomplete.push((objects.len(), key.to_owned()));
                    objects.push(None);
                }
            }
        }
        let heads = futures::stream::iter(incomplete)
            .map(|(slot, key)| async move { (slot, self.head(&key).await, key) })
            .buffer_unordered(LISTING_HEADS_IN_FLIGHT)
            .collect::<Vec<_>>()
            .await;
        for (slot, head, key) in heads {
            match head {
                Ok(mut info) => {
                    // A listing carries no user metadata; keep that contract.
                    info.metadata = None;
                    info.sse = None;
                    objects[slot] = Some(info);
                }
                Err(StoreError::NotFound { .. }) => {}
                Err(e) if e.is_transient() => return Err(e),
                Err(e) => log::warn!("{shown}: listing skips {key:?}: {e}"),
            }
        }
        let objects: Vec<ObjectInfo> = objects.into_iter().flatten().collect();
        let mut common_prefixes = Vec::with_capacity(out.common_prefixes().len());
        for p in out.common_prefixes().iter().filter_map(|p| p.prefix()) {
            match prefix_problem(p, &req.prefix, delimiter) {
                None => common_prefixes.push(p.to_owned()),
                Some(problem) => {
                    log::warn!("{shown}: listing skips the common prefix {p:?}: {problem}")
                }
            }
        }
        let next_continuation_token = if out.is_truncated().unwrap_or(false) {
            let token = out
                .next_continuation_token()
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    malformed(
                        "ListObjectsV2",
                        &shown,
                        "a truncated page without NextContinuationToken",
                    )
                })?;
            // A server that hands back the token it was given would be listed forever.
            if req.continuation_token.as_deref() == Some(token) {
                return Err(malformed(
                    "ListObjectsV2",
                    &shown,
                    "the same NextContinuationToken as the request's",
                ));
            }
            Some(token.to_owned())
        } else {
            None
        };
        Ok(ListPage {
            objects,
            common_prefixes,
            next_continuation_token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever a listing answer holds, a key or common prefix these checks let through is
        /// below the requested prefix, holds no NUL, and (with a delimiter) is one level below.
        #[test]
        fn accepted_listing_entries_are_what_the_request_asked_for(
            entry in "(p/)?[a-z/.\\x00]{0,8}|\\PC{0,40}",
            delimiter in proptest::option::of(Just("/")),
        ) {
            if key_problem(&entry, "p/", delimiter).is_none() {
                let rest = entry.strip_prefix("p/");
                prop_assert!(rest.is_some() && !entry.contains('\0'), "{entry:?}");
                if delimiter.is_some() {
                    prop_assert!(!rest.unwrap_or_default().contains('/'), "{entry:?}");
                }
            }
            if prefix_problem(&entry, "p/", delimiter).is_none() {
                prop_assert!(delimiter.is_some() && !entry.contains('\0'), "{entry:?}");
                let rest = entry.strip_prefix("p/").unwrap_or_default();
                prop_assert!(rest.ends_with('/') && rest.matches('/').count() == 1, "{entry:?}");
            }
        }
    }
}
