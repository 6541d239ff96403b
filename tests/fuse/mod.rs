//! The FUSE tier (`--features fuse_tests`): every test that mounts a file system through the
//! kernel, in this process (`common::inproc`) or through the built binary (`common::cli`).

mod cli_mount;
mod fuse_dirstore;
mod fuse_memory;
mod fuse_names;
mod fuse_requests;
mod ops_backup;
mod ops_helper;
mod ops_status;
mod ops_systemd;
pub(crate) mod permissions;
