//! s3cryptfs: mount an S3 bucket (or a local object store) as a directory, with every file
//! encrypted on the client before it leaves the machine.
//!
//! Layers (data flows one way): `app` (the front: `cli` parsing, `config` resolution, exit
//! statuses) -> `mount`/`tools` -> `fs` -> `sealed` -> (`crypto`, `store`); `sealed` is the one
//! place where stored objects become plaintext and back.
//! `store` knows nothing of files or encryption, `crypto` nothing of storage or FUSE, and
//! `fuse` (the adapter) is the only code that talks to the kernel; `fs` knows nothing of it.

pub mod app;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod fs;
pub mod fuse;
pub mod mount;
pub mod sealed;
pub mod store;
pub mod tools;
pub mod vault;
