//! The store conformance tests, one file per concern, each an `async fn(&Backend)`.
//! `fast::store_conformance` instantiates them for the local stores, `s3::store_conformance`
//! for S3Store on moto and s3rver, and `ceph::store_conformance` for S3Store on Ceph RGW; the
//! suite's functions are re-exported here for that macro.

pub(crate) mod helpers;
pub(crate) mod listing;
pub(crate) mod multipart;
pub(crate) mod objects;
pub(crate) mod sse;
pub(crate) mod writes;

pub(crate) use listing::*;
pub(crate) use multipart::*;
pub(crate) use objects::*;
pub(crate) use sse::*;
pub(crate) use writes::*;
