//! The S3 tier (`--features s3_tests`): tests against moto's S3 server and s3rver
//! (`common::s3server`). The s3:// mounts need `fuse_tests` as well.

#[cfg(feature = "fuse_tests")]
mod fuse_s3;
#[cfg(feature = "fuse_tests")]
mod fuse_s3rver;
#[cfg(feature = "fuse_tests")]
mod hostile_s3;
// The KMS tests run the command line through the s3:// vault fixture, which the mount tests
// share (it needs fuse_tests).
#[cfg(feature = "fuse_tests")]
mod kms;
#[cfg(feature = "fuse_tests")]
mod kms_mount;
#[cfg(feature = "fuse_tests")]
mod multi_mount;
mod store_conformance;
mod store_s3;
mod tools_doctor;
