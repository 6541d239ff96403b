//! What `init` and `mount` both open: the store (its errors named by URL) and the tokio
//! runtime.

use super::error::{MountError, MountResult};
use crate::store::{self, StoreUrl};

pub(super) fn open_store(
    url: &StoreUrl,
    opts: &store::StoreOptions,
) -> MountResult<(store::DynStore, String)> {
    store::open_store(url, opts).map_err(|source| MountError::Store {
        url: url.to_string(),
        source,
    })
}

/// Threads for blocking work at most (a directory store's file I/O, staging files): tokio's
/// default of 512 let a walk of a directory store start some 260, each with its stack and
/// allocator caches resident (docs/BENCHMARKS.md, "Size").
const MAX_BLOCKING_THREADS: usize = 64;

pub(super) fn runtime(threads: usize) -> MountResult<tokio::runtime::Runtime> {
    let mut builder = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads).thread_name("s3cryptfs-io");
        b
    };
    builder
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .enable_all()
        .build()
        .map_err(MountError::io("cannot start the async runtime"))
}
