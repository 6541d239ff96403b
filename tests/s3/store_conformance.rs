//! The store conformance suite (`tests/conformance/`, instantiated by
//! `fast::store_conformance`) for S3Store on moto's S3 server over HTTP; where moto differs from
//! S3, `common::store::Quirks::MOTO` says how.

crate::fast::store_conformance::conformance_tests!(s3);
