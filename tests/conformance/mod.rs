//! The conformance tests, one file per concern; `tests/store_conformance.rs` instantiates them
//! for every backend.

pub(crate) mod helpers;
pub(crate) mod listing;
pub(crate) mod multipart;
pub(crate) mod objects;
pub(crate) mod sse;
pub(crate) mod writes;
