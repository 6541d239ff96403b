//! The store conformance suite (`tests/conformance/`, instantiated by
//! `fast::store_conformance`) for S3Store over HTTP on Ceph's RADOS Gateway, which enforces
//! SSE-C and does SSE-KMS itself (the test cluster's KMS key). Where RGW 16.2 differs from S3,
//! `common::store::Quirks::CEPH` says how, and the check asserts what the gateway and the store
//! do there instead (docs/SERVERS.md lists it all).

crate::fast::store_conformance::conformance_tests!(ceph);
