//! File-system checks run against both kinds of mount (in-process MemoryStore, CLI DirStore)
//! and the S3 servers.
//!
//! Each takes the mount root and a `remount` callback that unmounts and mounts the same store
//! at the same place, so "survives remount" means "is in the store", not "is in a cache".
//!
//! - `files`: sizes, the big file, random operations against a local file, truncation.
//! - `trees`: generated trees through `cp -r` and `rsync`, concurrent writers.
//! - `names`: names of 252 to 255 bytes.
//! - `posix`: directories and their errors, rename, attributes, hard links, symlinks.
//! - `tamper`: plaintext markers, tampered objects and the EIO they must give.
//! - `times`: ctime, directory times after entry operations, `touch` of the root.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

use super::data::{
    self, KIB, MIB, assert_same_file, assert_stream_file, sha256_file, sha256_stream, stream_bytes,
    write_stream_file,
};
use super::{assert_errno, assert_errnos, fails, run_ok, run_ok_in};

mod files;
mod names;
mod posix;
mod tamper;
mod times;
mod trees;
mod xattrs;

pub use files::*;
pub use names::*;
pub use posix::*;
pub use tamper::*;
pub use times::*;
pub use trees::*;
pub use xattrs::*;

pub type Remount<'a> = &'a mut dyn FnMut();

/// Panics unless `got == want`, reporting lengths and the first differing offset (never the
/// bytes themselves: they can be megabytes).
#[track_caller]
pub fn assert_bytes_eq(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let first = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{what}: got {} bytes, want {}; first difference at {:?} (got {:?}, want {:?})",
            got.len(),
            want.len(),
            first.or(Some(got.len().min(want.len()))),
            first.map(|i| got[i]),
            first.map(|i| want[i])
        );
    }
}

/// Sizes every backend must store and return byte-exactly (64 KiB is the block size).
pub const EDGE_SIZES: [u64; 8] = [
    0,
    1,
    64 * KIB - 1,
    64 * KIB,
    64 * KIB + 1,
    128 * KIB,
    3 * 64 * KIB - 1,
    10 * MIB,
];

pub const BIG_SIZE: u64 = 200 * MIB;

fn seed_for(size: u64) -> u64 {
    0x5eed_0000 ^ size
}
