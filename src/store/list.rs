//! ListObjectsV2 paging, shared by the local stores.
//!
//! A store walks its keys in ascending UTF-8 byte order and offers each one to a [`ListCursor`],
//! which applies the prefix, rolls keys up into common prefixes at the delimiter, skips what
//! earlier pages returned and stops after `max_keys` entries. As in S3, an object and a common
//! prefix each count as one entry, and a common prefix is returned once however many keys it
//! covers.
//!
//! The continuation token is the last entry (key or common prefix) a page returned, base64url
//! encoded. Entries come out in ascending order, so the next page is "every entry greater than
//! the token": nothing is skipped or repeated, even when a common prefix spans a page boundary
//! or keys are added between pages.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::{ListPage, ListRequest, ObjectInfo, StoreError, StoreResult};

/// Most entries one page returns (S3's limit).
pub(crate) const MAX_KEYS: usize = 1000;

/// Whether the walk feeding a cursor should go on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Walk {
    Continue,
    Stop,
}

/// One page being assembled.
#[derive(Debug)]
pub(crate) struct ListCursor<'r> {
    prefix: &'r str,
    delimiter: Option<&'r str>,
    /// Entries up to and including this one were returned by earlier pages.
    after: Option<String>,
    max_keys: usize,
    page: ListPage,
    entries: usize,
    last_entry: Option<String>,
}

impl<'r> ListCursor<'r> {
    pub(crate) fn new(req: &'r ListRequest) -> StoreResult<Self> {
        let after = req
            .continuation_token
            .as_deref()
            .map(decode_token)
            .transpose()?;
        let max_keys = match req.max_keys {
            0 => MAX_KEYS,
            n => n.min(MAX_KEYS),
        };
        Ok(ListCursor {
            prefix: &req.prefix,
            // S3 treats an empty delimiter as no delimiter.
            delimiter: req.delimiter.as_deref().filter(|d| !d.is_empty()),
            after,
            max_keys,
            page: ListPage::default(),
            entries: 0,
            last_entry: None,
        })
    }

    pub(crate) fn prefix(&self) -> &'r str {
        self.prefix
    }

    /// The smallest key the walk needs to start from.
    pub(crate) fn start_key(&self) -> &str {
        match &self.after {
            Some(after) if after.as_str() > self.prefix => after,
            _ => self.prefix,
        }
    }

    /// The common prefix every key starting with `key_prefix` rolls up into, if `key_prefix`
    /// (which must start with the request prefix) already contains the delimiter after the
    /// request prefix. Lets a store stand in one entry for a whole subtree.
    pub(crate) fn common_prefix_for(&self, key_prefix: &str) -> Option<String> {
        let delimiter = self.delimiter?;
        let rest = key_prefix.strip_prefix(self.prefix)?;
        let end = rest.find(delimiter)? + delimiter.len();
        Some(format!("{}{}", self.prefix, &rest[..end]))
    }

    /// Whether an entry (key or common prefix) was returned by an earlier page or this one.
    pub(crate) fn already_listed(&self, entry: &str) -> bool {
        self.after.as_deref().is_some_and(|after| entry <= after)
            || self.last_entry.as_deref().is_some_and(|last| entry <= last)
    }

    /// Whether no key starting with `key_prefix` can appear on this page: they all sort at or
    /// before the continuation point.
    pub(crate) fn subtree_listed(&self, key_prefix: &str) -> bool {
        self.after
            .as_deref()
            .is_some_and(|after| after > key_prefix && !after.starts_with(key_prefix))
    }

    /// Offer the next key (in ascending order). `info` is called only if the key is returned as
    /// an object; it may say `None` when the object vanished meanwhile.
    pub(crate) fn offer_key(
        &mut self,
        key: &str,
        info: impl FnOnce() -> StoreResult<Option<ObjectInfo>>,
    ) -> StoreResult<Walk> {
        let Some(rest) = key.strip_prefix(self.prefix) else {
            // Keys are ascending: once past the prefix, nothing later matches it.
            return Ok(if key > self.prefix {
                Walk::Stop
            } else {
                Walk::Continue
            });
        };
        let common_prefix = self.delimiter.and_then(|delimiter| {
            rest.find(delimiter)
                .map(|i| &key[..self.prefix.len() + i + delimiter.len()])
        });
        match common_prefix {
            Some(common_prefix) => Ok(self.offer_common_prefix(common_prefix)),
            None => {
                if self.already_listed(key) {
                    return Ok(Walk::Continue);
                }
                if self.page_full() {
                    return Ok(Walk::Stop);
                }
                if let Some(object) = info()? {
                    self.page.objects.push(object);
                    self.entries += 1;
                    self.last_entry = Some(key.to_owned());
                }
                Ok(Walk::Continue)
            }
        }
    }

    /// Offer a common prefix directly (it must be the one its keys roll up into).
    pub(crate) fn offer_common_prefix(&mut self, common_prefix: &str) -> Walk {
        if self.already_listed(common_prefix) {
            return Walk::Continue;
        }
        if self.page_full() {
            return Walk::Stop;
        }
        self.page.common_prefixes.push(common_prefix.to_owned());
        self.entries += 1;
        self.last_entry = Some(common_prefix.to_owned());
        Walk::Continue
    }

    /// With a full page, a further entry means the listing is truncated.
    fn page_full(&mut self) -> bool {
        if self.entries < self.max_keys {
            return false;
        }
        self.page.next_continuation_token = self.last_entry.as_deref().map(encode_token);
        true
    }

    pub(crate) fn finish(self) -> ListPage {
        self.page
    }
}

fn encode_token(last_entry: &str) -> String {
    URL_SAFE_NO_PAD.encode(last_entry.as_bytes())
}

fn decode_token(token: &str) -> StoreResult<String> {
    let invalid = || {
        StoreError::InvalidArgument(format!(
            "invalid continuation token {token:?}; pass back the token a previous page returned"
        ))
    };
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    String::from_utf8(bytes).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    fn info(key: &str) -> StoreResult<Option<ObjectInfo>> {
        Ok(Some(ObjectInfo {
            key: key.to_owned(),
            size: 0,
            etag: String::new(),
            last_modified: SystemTime::UNIX_EPOCH,
            metadata: None,
            sse: None,
        }))
    }

    /// Lists `keys` (sorted) page by page and returns every entry: objects as-is, prefixes
    /// with a trailing `*`.
    fn list_all(keys: &[&str], prefix: &str, delimiter: Option<&str>, max: usize) -> Vec<String> {
        let mut req = ListRequest {
            prefix: prefix.into(),
            delimiter: delimiter.map(Into::into),
            continuation_token: None,
            max_keys: max,
        };
        let mut out = Vec::new();
        for _ in 0..1000 {
            let mut cursor = ListCursor::new(&req).expect("token is ours");
            let start = cursor.start_key().to_owned();
            for key in keys.iter().filter(|k| **k >= start.as_str()) {
                if cursor.offer_key(key, || info(key)).expect("info") == Walk::Stop {
                    break;
                }
            }
            let page = cursor.finish();
            assert!(page.objects.len() + page.common_prefixes.len() <= max.max(1));
            let mut entries: Vec<String> = page.objects.iter().map(|o| o.key.clone()).collect();
            entries.extend(page.common_prefixes.iter().map(|p| format!("{p}*")));
            entries.sort_by(|a, b| a.trim_end_matches('*').cmp(b.trim_end_matches('*')));
            out.extend(entries);
            match page.next_continuation_token {
                Some(token) => req.continuation_token = Some(token),
                None => return out,
            }
        }
        panic!("listing never ended");
    }

    const KEYS: &[&str] = &["a", "a/", "a/b", "a/c/d", "a/c/e", "ab", "b/x", "b/y", "c"];

    #[test]
    fn delimiter_rolls_up_and_every_page_size_agrees() {
        let expected = vec!["a", "a/*", "ab", "b/*", "c"];
        for max in 1..=6 {
            assert_eq!(
                list_all(KEYS, "", Some("/"), max),
                expected,
                "max_keys {max}"
            );
        }
        let nested = vec!["a/", "a/b", "a/c/*"];
        for max in 1..=4 {
            assert_eq!(
                list_all(KEYS, "a/", Some("/"), max),
                nested,
                "max_keys {max}"
            );
        }
    }

    #[test]
    fn no_delimiter_lists_every_key_under_the_prefix() {
        for max in [1, 2, 1000] {
            assert_eq!(
                list_all(KEYS, "a/", None, max),
                vec!["a/", "a/b", "a/c/d", "a/c/e"]
            );
            assert_eq!(list_all(KEYS, "", None, max), KEYS.to_vec());
        }
    }

    #[test]
    fn exact_page_fill_is_not_truncated() {
        let req = ListRequest {
            max_keys: 2,
            ..ListRequest::default()
        };
        let mut cursor = ListCursor::new(&req).expect("no token");
        for key in ["x", "y"] {
            assert_eq!(
                cursor.offer_key(key, || info(key)).ok(),
                Some(Walk::Continue)
            );
        }
        assert!(cursor.finish().next_continuation_token.is_none());
    }

    #[test]
    fn common_prefix_for_subtrees() {
        let req = ListRequest {
            prefix: "a/".into(),
            delimiter: Some("/".into()),
            ..ListRequest::default()
        };
        let cursor = ListCursor::new(&req).expect("no token");
        assert_eq!(cursor.common_prefix_for("a/c/d/"), Some("a/c/".into()));
        assert_eq!(cursor.common_prefix_for("a/"), None);
        assert_eq!(cursor.common_prefix_for("b/"), None);
    }

    #[test]
    fn garbage_tokens_are_refused() {
        let req = ListRequest {
            continuation_token: Some("!!!".into()),
            ..ListRequest::default()
        };
        assert!(matches!(
            ListCursor::new(&req),
            Err(StoreError::InvalidArgument(_))
        ));
    }
}
