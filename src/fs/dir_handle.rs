//! The state of a directory handle (`dirstream.rs` reads it): one page of the listing, where
//! it lies in the listing, and how to get the next. Apart from `dirstream.rs` so that `mod.rs`
//! need not name a file that names `Fs`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use crate::store::Pager;

use super::namespace::DirEntry;

/// Where a directory handle is in its listing.
pub(crate) struct DirStream {
    pub(super) path: String,
    /// Position in the listing of `page[0]`.
    pub(super) start: usize,
    pub(super) page: Arc<Vec<DirEntry>>,
    /// The token of the next page; `None` once the last page is held.
    pub(super) next: Option<Option<String>>,
    pub(super) pager: Pager,
    /// The names listed so far, while they are few enough to keep (`Listings::put`).
    pub(super) names: Option<HashSet<String>>,
    pub(super) generation: u64,
    pub(super) started: Instant,
}

impl DirStream {
    /// Before the first page of directory `path`, whose keys start with `prefix`; the
    /// listings' change counter is `generation`.
    pub fn new(path: &str, prefix: &str, generation: u64) -> Self {
        DirStream {
            path: path.to_owned(),
            start: 0,
            page: Arc::new(Vec::new()),
            next: Some(None),
            pager: Pager::new(prefix),
            names: Some(HashSet::new()),
            generation,
            started: Instant::now(),
        }
    }

    /// Entries held at most (the page): for tests.
    pub fn held(&self) -> usize {
        self.page.len()
    }
}
