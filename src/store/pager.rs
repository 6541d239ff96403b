//! Walking a listing page by page without letting the server decide when it ends.
//!
//! A continuation token is input like any answer. An honest ListObjectsV2 walk moves forward:
//! every page's entries (keys and common prefixes) come after the previous page's, in UTF-8
//! binary order, and no token comes back twice. A server that hands back a token it gave
//! before, repeats what it listed, or sends truncated pages with nothing on them would keep a
//! caller listing forever. [`Pager::check`], called on each page as it arrives, refuses such a
//! walk; [`MAX_LIST_PAGES`] bounds even a server that keeps inventing ever larger keys.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};

use super::{ListPage, StoreError, StoreResult};

/// Most pages one listing may take: 100 million entries at 1000 a page. Only a server
/// that invents keys without end gets there.
pub const MAX_LIST_PAGES: usize = 100_000;

/// Most truncated pages in a row with no entry on them (a server may drop entries it finds
/// invalid, or deleted meanwhile, from a page; an endless run of them is no listing).
pub const MAX_EMPTY_PAGES: usize = 100;

/// The state of one listing walk: the tokens it was given (as hashes, so a long walk holds
/// 8 bytes a page), the largest entry so far and the count of pages.
#[derive(Debug)]
pub struct Pager {
    prefix: String,
    pages: usize,
    empty_run: usize,
    tokens: HashSet<u64>,
    hasher: RandomState,
    largest: Option<String>,
}

impl Pager {
    /// A walk of the listing of `prefix` (named in errors).
    pub fn new(prefix: &str) -> Self {
        Pager {
            prefix: prefix.to_owned(),
            pages: 0,
            empty_run: 0,
            tokens: HashSet::new(),
            hasher: RandomState::new(),
            largest: None,
        }
    }

    /// The prefix this walk lists.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn refuse(&self, what: String) -> StoreError {
        StoreError::Refused {
            key: self.prefix.clone(),
            reason: format!("the listing does not move forward: {what}"),
        }
    }

    /// Checks `page`, the next page of this walk, before its token is used.
    pub fn check(&mut self, page: &ListPage) -> StoreResult<()> {
        self.pages += 1;
        if self.pages > MAX_LIST_PAGES {
            return Err(self.refuse(format!("more than {MAX_LIST_PAGES} pages")));
        }
        let largest = page
            .objects
            .iter()
            .map(|o| o.key.as_str())
            .chain(page.common_prefixes.iter().map(String::as_str))
            .max();
        match largest {
            Some(l) => {
                if let Some(before) = self.largest.as_deref().filter(|b| l <= *b) {
                    return Err(self.refuse(format!(
                        "page {} lists nothing after {before:?}, which an earlier page listed",
                        self.pages
                    )));
                }
                self.largest = Some(l.to_owned());
                self.empty_run = 0;
            }
            None if page.next_continuation_token.is_some() => {
                self.empty_run += 1;
                if self.empty_run > MAX_EMPTY_PAGES {
                    return Err(self.refuse(format!(
                        "more than {MAX_EMPTY_PAGES} truncated pages in a row with no entry"
                    )));
                }
            }
            None => {}
        }
        if let Some(token) = &page.next_continuation_token {
            if !self.tokens.insert(self.hasher.hash_one(token)) {
                return Err(self.refuse(format!(
                    "page {} hands back a continuation token an earlier page gave",
                    self.pages
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ObjectInfo;
    use std::time::SystemTime;

    fn page(keys: &[&str], prefixes: &[&str], token: Option<&str>) -> ListPage {
        ListPage {
            objects: keys
                .iter()
                .map(|k| ObjectInfo {
                    key: (*k).to_owned(),
                    size: 0,
                    etag: String::new(),
                    last_modified: SystemTime::UNIX_EPOCH,
                    metadata: None,
                    sse: None,
                })
                .collect(),
            common_prefixes: prefixes.iter().map(|p| (*p).to_owned()).collect(),
            next_continuation_token: token.map(str::to_owned),
        }
    }

    fn refused(r: StoreResult<()>, needle: &str) {
        match r {
            Err(e @ StoreError::Refused { .. }) => {
                assert!(e.to_string().contains(needle), "{e}");
                assert!(!e.is_transient(), "{e}");
            }
            other => panic!("expected a refusal ({needle}), got {other:?}"),
        }
    }

    #[test]
    fn an_honest_walk_passes() {
        let mut p = Pager::new("p/");
        p.check(&page(&["p/a", "p/c"], &["p/b/"], Some("1")))
            .expect("1");
        p.check(&page(&[], &[], Some("2"))).expect("an empty page");
        p.check(&page(&["p/d"], &["p/e/"], Some("3"))).expect("3");
        p.check(&page(&["p/f"], &[], None)).expect("last");
    }

    #[test]
    fn a_repeated_token_is_refused() {
        let mut p = Pager::new("p/");
        p.check(&page(&[], &[], Some("A"))).expect("A");
        p.check(&page(&[], &[], Some("B"))).expect("B");
        refused(p.check(&page(&[], &[], Some("A"))), "continuation token");
    }

    #[test]
    fn a_page_that_does_not_move_forward_is_refused() {
        let mut p = Pager::new("p/");
        p.check(&page(&["p/a", "p/b"], &[], Some("1"))).expect("1");
        refused(p.check(&page(&["p/b"], &[], Some("2"))), "\"p/b\"");
        let mut p = Pager::new("p/");
        p.check(&page(&[], &["p/x/"], Some("1"))).expect("1");
        refused(p.check(&page(&["p/a"], &[], Some("2"))), "nothing after");
    }

    #[test]
    fn endless_empty_pages_are_refused() {
        let mut p = Pager::new("p/");
        for i in 0..MAX_EMPTY_PAGES {
            p.check(&page(&[], &[], Some(&i.to_string())))
                .expect("empty");
        }
        refused(p.check(&page(&[], &[], Some("last"))), "in a row");
        // An entry resets the run.
        let mut p = Pager::new("p/");
        for i in 0..2 * MAX_EMPTY_PAGES {
            let key = format!("p/{i:05}");
            let keys: &[&str] = if i % MAX_EMPTY_PAGES == 0 {
                &[&key]
            } else {
                &[]
            };
            p.check(&page(keys, &[], Some(&i.to_string())))
                .expect("with entries");
        }
    }

    #[test]
    fn the_page_count_is_bounded() {
        let mut p = Pager::new("p/");
        p.pages = MAX_LIST_PAGES - 1;
        p.check(&page(&["p/a"], &[], Some("1")))
            .expect("the last allowed page");
        refused(p.check(&page(&["p/b"], &[], Some("2"))), "pages");
    }
}
