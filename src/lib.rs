//! s3cryptfs: mount an S3 bucket (or a local object store) as a directory, with every file
//! encrypted on the client before it leaves the machine.
//!
//! Layers (data flows one way): `cli`/`config` -> `mount` -> `fs` -> `sealed` -> (`crypto`,
//! `store`); `sealed` is the one place where stored objects become plaintext and back.
//! `store` knows nothing of files or encryption, `crypto` nothing of storage or FUSE, and
//! `fs::fuse` is the only code that talks to the kernel.

pub mod cli;
pub mod config;
pub mod crypto;
pub mod fs;
pub mod mount;
pub mod sealed;
pub mod store;
pub mod tools;
pub mod vault;
