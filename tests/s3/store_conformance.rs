//! The store conformance suite (`tests/conformance/`, instantiated by
//! `fast::store_conformance`) for S3Store over HTTP on moto's S3 server and on s3rver (whose
//! listings carry no ETags). Every check runs on both; where a server differs from S3,
//! `common::store::Quirks::MOTO` and `Quirks::S3RVER` say how, and the check asserts what the
//! server and the store do there instead (docs/SERVERS.md lists it all).

crate::fast::store_conformance::conformance_tests!(s3);
crate::fast::store_conformance::conformance_tests!(s3rver);
