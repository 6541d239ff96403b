//! The Ceph tier (`--features ceph_tests`): SSE-C and SSE-KMS mounts against a one-node Ceph
//! RADOS Gateway (`common::ceph`), and the store conformance suite on it.

mod fuse_ceph;
mod store_conformance;
