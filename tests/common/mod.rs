//! Shared helpers of the integration tests.
//!
//! - `inproc`: a real kernel mount of any `ObjectStore` (usually a `MemoryStore`) served by
//!   this test process, which can be unmounted and mounted again over the same store.
//! - `cli`: vaults on a `DirStore` created and mounted through the built `s3cryptfs` binary.
//! - `memfs`: a vault on a `MemoryStore` and the `Fs` over it, without a kernel.
//! - `data`: deterministic, random-access byte streams and file comparison without holding
//!   big files in memory.
//! - `scenarios`: file-system checks shared by every kind of mount (files, trees, POSIX,
//!   tamper).
//! - `store`: the stores the conformance suite (`tests/conformance/`) runs against.
//! - `s3server`, `s3vault`, `proxy`, `ceph`: moto's S3 server, vaults on a test S3 server, a
//!   proxy that can cut connections, and the Ceph cluster; `tamper`: a proxy in front of moto
//!   that answers some requests as a hostile endpoint would; `kmsproxy`: moto's KMS made to
//!   refuse disabled keys and denied actions as AWS does, with a request count.
//!
//! Each module is compiled in the tiers that use it (the `cfg`s below), so nothing here is
//! dead code in any tier.
//!
//! FUSE tests never skip: a machine without `/dev/fuse` fails them with a message saying what
//! to install. Every test builds its own temporary directories and mount points, so the tests
//! of one binary run in parallel.

#[cfg(feature = "ceph_tests")]
pub mod ceph;
pub mod cli;
#[cfg(feature = "fuse_tests")]
pub mod data;
#[cfg(feature = "fuse_tests")]
mod fuse;
#[cfg(feature = "fuse_tests")]
pub mod inproc;
#[cfg(all(feature = "s3_tests", feature = "fuse_tests"))]
pub mod kmsproxy;
pub mod memfs;
#[cfg(all(feature = "s3_tests", feature = "fuse_tests"))]
pub mod proxy;
#[cfg(feature = "s3_tests")]
pub mod s3server;
#[cfg(any(feature = "s3_tests", feature = "ceph_tests"))]
pub mod s3test;
#[cfg(any(
    all(feature = "s3_tests", feature = "fuse_tests"),
    feature = "ceph_tests"
))]
pub mod s3vault;
#[cfg(feature = "fuse_tests")]
pub mod scenarios;
pub mod store;
#[cfg(all(feature = "s3_tests", feature = "fuse_tests"))]
pub mod tamper;

use std::path::Path;

#[cfg(feature = "fuse_tests")]
pub use cli::CliMount;
pub use cli::CliVault;
#[cfg(feature = "fuse_tests")]
pub use fuse::*;
#[cfg(feature = "fuse_tests")]
pub use inproc::{MountedFs, mount_in_process};

/// Decodes the octal escapes (`\040` for a space) of a /proc/self/mountinfo field.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            if let Some(v) = std::str::from_utf8(&bytes[i + 1..i + 4])
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The file system type (e.g. `fuse.s3cryptfs`) mounted exactly at `path`, if any.
pub fn mount_type(path: &Path) -> Option<String> {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut found = None;
    for line in info.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        if fields.len() < 5 || sep + 1 >= fields.len() {
            continue;
        }
        if Path::new(&unescape_mountinfo(fields[4])) == path {
            // The last match is the one on top.
            found = Some(fields[sep + 1].to_string());
        }
    }
    found
}

pub fn is_mounted(path: &Path) -> bool {
    mount_type(path).is_some()
}

/// `$S3CRYPTFS_STATE_DIR` of every `s3cryptfs` the tests start: where the binary remembers the
/// vault config counters it has seen, in the target directory rather than the real home.
/// Shared by all tests (each vault has its own file, named by its random id).
pub fn state_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("s3cryptfs-state")
}
