//! Encrypted object format v1 (docs/FORMAT.md is the normative description), one module per
//! concern:
//!
//! - [`layout`]: sizes, offsets and byte ranges (pure functions of sizes, no keys): where the
//!   header and each block are, how long an object of `P` plaintext bytes is stored, which
//!   bytes one ranged GET must fetch for some blocks.
//! - [`header`]: the 116-byte header (parse, serialize), the wraps of the object's data key
//!   and the commitment to that key and the plaintext length.
//! - [`metadata`]: the `s3cryptfs-*` user-metadata entries (a rewrapped DEK, a copy of the
//!   header's key part) and how a reader turns them into candidate wraps.
//! - [`record`]: the sealed attribute record (type, mode, owner, times, size, content
//!   binding) an object carries in its user metadata, bound to its key.
//! - [`seal`]: [`ObjectSealer`] and [`ObjectOpener`], the only code that encrypts or
//!   decrypts object blocks.
//!
//! An object is a fixed [`HEADER_LEN`]-byte header followed by AES-256-GCM blocks of
//! `block_size` plaintext bytes, each followed by its 16-byte tag. The plaintext length is
//! derived from the object size alone ([`plaintext_len`]), so a listing shows sizes without
//! reading any object. This module only re-exports; the dependencies run one way
//! (`seal` → `metadata` → `header` → `layout`), so no part needs another's callers.

pub mod header;
pub mod layout;
pub mod metadata;
pub mod record;
pub mod seal;
pub mod xattr;

pub use header::{
    CTX_LEN, FORMAT_VERSION, MAGIC, MetadataWrap, PREFIX_LEN, SUITE_AES256GCM_HKDF_SHA256,
    short_object_error,
};
pub use layout::{
    BLOCK_OVERHEAD, BlockSpan, HEADER_LEN, MAX_BLOCK_SIZE, MIN_BLOCK_SIZE, block_count,
    block_offset, block_plaintext_len, blocks_per_part, blocks_within, ciphertext_len,
    ciphertext_range_for, ciphertext_range_for_block, ciphertext_range_for_blocks,
    is_valid_block_size, plaintext_len, sealed_block_len, sealed_run_len,
};
pub use seal::{
    ObjectOpener, ObjectSealer, block_nonce, open_all, open_all_with_metadata, open_all_with_wraps,
    seal_all, seal_all_with,
};

#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod tests;
