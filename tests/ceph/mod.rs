//! The Ceph tier (`--features ceph_tests`): SSE-C and SSE-KMS mounts against a one-node Ceph
//! RADOS Gateway (`common::ceph`).

mod fuse_ceph;
