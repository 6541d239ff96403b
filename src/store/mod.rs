//! Object stores: one async trait with S3 semantics, and its implementations.
//!
//! `MemoryStore` (in-process, counts requests and bytes for tests) and `DirStore` (a local
//! directory, the embedded default). Both follow S3's rules: ranged GETs, ETags, If-Match /
//! If-None-Match, ListObjectsV2 pagination with delimiter, multipart limits, copy with a
//! metadata directive. The store knows nothing of files or encryption.
//!
//! How the parts fit: `rules` holds the S3 rules both local stores apply (so they refuse the
//! same requests), `list` the ListObjectsV2 paging both use, `pager` the checks every caller
//! walking a listing applies between pages, `url` the store URLs `open` accepts.
//! `tests/fast/store_conformance.rs` runs one suite against every implementation.
//!
//! This file only declares the modules and re-exports their items (`crate::store::X`): the
//! shared vocabulary lives in `error` ([`StoreError`]), `object_store` (the trait and its
//! request and answer types) and `stats`, which import no implementation, so the stores import
//! them and `options` (which opens every kind of store) is imported by nobody inside `store`.

pub mod dir;
mod error;
pub mod faulty;
mod list;
pub mod memory;
mod object_store;
mod options;
mod pager;
pub mod plain;
mod rules;
pub mod s3;
pub mod sse;
mod stats;
mod url;

pub use dir::DirStore;
pub use error::{S3Setting, StoreError, StoreResult};
pub use memory::MemoryStore;
pub use object_store::{
    CompletedPart, CopyOptions, DeleteFailure, DynStore, GetOutput, ListPage, ListRequest,
    MAX_DELETE_BATCH, MAX_PARTS, MAX_SINGLE_PUT, MIN_PART_SIZE, Metadata, MetadataDirective,
    ObjectInfo, ObjectStore, PendingUpload, PutOptions, PutOutput,
};
pub use options::{StoreOptions, open, open_store};
pub use pager::{MAX_EMPTY_PAGES, MAX_LIST_PAGES, Pager};
pub use plain::PlainDirStore;
pub use s3::{S3Settings, S3Store};
pub use sse::{ObjectSse, SseCKey, SseMode};
pub use stats::{Op, RequestStats, StatsSnapshot};
pub use url::StoreUrl;
