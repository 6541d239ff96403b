//! Every integration test, in one binary: linking a test binary against aws-sdk-s3 costs more
//! than running most tests, so there is one link instead of one per file.
//!
//! Tiers, switched on by Cargo features (Cargo.toml `[features]`), as mountpoint-s3 does:
//! - `fast`: always. No kernel mount and no server: the fs layer on the memory store, the
//!   stores' conformance suite on the local stores, config, format vectors, the tools, the
//!   command line where it refuses to mount, man pages, packaging, the import graph of `src/`.
//! - `fuse` (`--features fuse_tests`): every test that mounts through the kernel.
//! - `s3` (`--features s3_tests`): tests against moto's S3 server; the s3:// mounts among them
//!   need `fuse_tests` too.
//! - `ceph` (`--features ceph_tests`, which turns on `fuse_tests`): mounts against Ceph RGW,
//!   and the stores' conformance suite on it.
//!
//! A tier that is on never skips a test at run time: a missing /dev/fuse, moto or Ceph fails
//! the test saying what to install. `scripts/test.sh` (CI) turns every tier on.

// Test helpers outside `#[test]` functions unwrap too; clippy.toml allows it only in tests.
#![allow(clippy::unwrap_used)]

mod common;
mod conformance;
mod fast;

#[cfg(feature = "ceph_tests")]
mod ceph;
#[cfg(feature = "fuse_tests")]
mod fuse;
#[cfg(feature = "s3_tests")]
mod s3;
