//! Where the bytes of an object are: sizes, offsets and ranges of format v1, and nothing else.
//!
//! Pure functions of sizes (no keys, no bytes), in the spirit of gocryptfs's
//! `contentenc/offsets.go`: an object is a [`HEADER_LEN`]-byte header followed by blocks of
//! `block_size` plaintext bytes (the last one possibly shorter, never empty unless the whole
//! object is empty), each followed by its [`BLOCK_OVERHEAD`]-byte tag. Every caller that needs
//! a stored size, a block count or the byte range of some blocks asks here, so the layout is
//! written down once.
//!
//! None of these functions panics, whatever the input: a block size of 0 (which no valid vault
//! has) is treated as 1 and sums saturate, because sizes come from the store and the network.

use std::ops::Range;

use crate::crypto::aead::TAG_LEN;

/// Length of the fixed object header in bytes.
pub const HEADER_LEN: usize = 116;
/// Bytes of the authentication tag after every block.
pub const BLOCK_OVERHEAD: u64 = TAG_LEN as u64;
/// Smallest and largest block sizes (powers of two in between).
pub const MIN_BLOCK_SIZE: u32 = 4096;
pub const MAX_BLOCK_SIZE: u32 = 1 << 20;

/// Whether `block_size` is one this format allows: a power of two from 4 KiB to 1 MiB.
pub fn is_valid_block_size(block_size: u32) -> bool {
    block_size.is_power_of_two() && (MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&block_size)
}

/// Guards the size math against a zero block size without panicking.
fn bs(block_size: u32) -> u64 {
    u64::from(block_size.max(1))
}

/// Stored bytes of one full block: its plaintext and its tag.
pub fn sealed_block_len(block_size: u32) -> u64 {
    bs(block_size) + BLOCK_OVERHEAD
}

/// Stored bytes of `blocks` full blocks back to back (a multipart part's body, without the
/// header that part 1 also carries).
pub fn sealed_run_len(blocks: u64, block_size: u32) -> u64 {
    blocks.saturating_mul(sealed_block_len(block_size))
}

/// Whole blocks in a multipart part of about `part_bytes` stored bytes: rounded up, at least 1.
pub fn blocks_per_part(part_bytes: u64, block_size: u32) -> u64 {
    part_bytes.div_ceil(sealed_block_len(block_size)).max(1)
}

/// Whole blocks that fit in `bytes` stored bytes: rounded down, at least 1 (the blocks one
/// ranged GET of at most about `bytes` may fetch).
pub fn blocks_within(bytes: u64, block_size: u32) -> u64 {
    (bytes / sealed_block_len(block_size)).max(1)
}

/// Number of blocks of an object with `plaintext_len` bytes (at least 1).
pub fn block_count(plaintext_len: u64, block_size: u32) -> u64 {
    plaintext_len.div_ceil(bs(block_size)).max(1)
}

/// Stored size of an object holding `plaintext_len` bytes: `H + P + 16 * max(1, ceil(P / B))`.
/// Saturates at `u64::MAX` (far beyond any object store's limit).
pub fn ciphertext_len(plaintext_len: u64, block_size: u32) -> u64 {
    let n = block_count(plaintext_len, block_size);
    (HEADER_LEN as u64)
        .saturating_add(plaintext_len)
        .saturating_add(n.saturating_mul(BLOCK_OVERHEAD))
}

/// Plaintext size of an object of `ciphertext_len` stored bytes, or `None` when no valid block
/// count fits that size.
pub fn plaintext_len(ciphertext_len: u64, block_size: u32) -> Option<u64> {
    let body = ciphertext_len.checked_sub(HEADER_LEN as u64)?;
    if body < BLOCK_OVERHEAD {
        return None;
    }
    let stride = bs(block_size).checked_add(BLOCK_OVERHEAD)?;
    let n = body.div_ceil(stride);
    let p = body.checked_sub(n.checked_mul(BLOCK_OVERHEAD)?)?;
    (block_count(p, block_size) == n && self::ciphertext_len(p, block_size) == ciphertext_len)
        .then_some(p)
}

/// Plaintext bytes in block `index` of an object of `plaintext_len` bytes (0 past the end).
pub fn block_plaintext_len(index: u64, plaintext_len: u64, block_size: u32) -> u64 {
    let start = index.saturating_mul(bs(block_size));
    plaintext_len.saturating_sub(start).min(bs(block_size))
}

/// Offset in the object of the first ciphertext byte of block `index`.
pub fn block_offset(index: u64, block_size: u32) -> u64 {
    (HEADER_LEN as u64).saturating_add(index.saturating_mul(sealed_block_len(block_size)))
}

/// The blocks covering a plaintext range and where they are stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockSpan {
    pub first_block: u64,
    /// Inclusive.
    pub last_block: u64,
    /// Ciphertext byte range (in the object) holding exactly those blocks.
    pub ciphertext: Range<u64>,
}

/// Blocks covering the non-empty plaintext range `plain` (clipped to `plaintext_len`, which
/// must be > plain.start).
///
/// Never panics: a range outside the object is clipped to the last block, an empty range
/// covers the block holding `plain.start`, and an empty object yields its one empty block.
pub fn ciphertext_range_for(plain: Range<u64>, plaintext_len: u64, block_size: u32) -> BlockSpan {
    let b = bs(block_size);
    if plaintext_len == 0 {
        return BlockSpan {
            first_block: 0,
            last_block: 0,
            ciphertext: block_offset(0, block_size)..ciphertext_len(0, block_size),
        };
    }
    let start = plain.start.min(plaintext_len - 1);
    let end = plain.end.min(plaintext_len).max(start + 1);
    let first_block = start / b;
    let last_block = (end - 1) / b;
    let ct_start = block_offset(first_block, block_size);
    let ct_end = block_offset(last_block, block_size)
        + block_plaintext_len(last_block, plaintext_len, block_size)
        + BLOCK_OVERHEAD;
    BlockSpan {
        first_block,
        last_block,
        ciphertext: ct_start..ct_end,
    }
}

/// Ciphertext byte range of block `index` alone.
pub fn ciphertext_range_for_block(index: u64, plaintext_len: u64, block_size: u32) -> Range<u64> {
    let start = block_offset(index, block_size);
    start..start + block_plaintext_len(index, plaintext_len, block_size) + BLOCK_OVERHEAD
}

/// Ciphertext byte range of the blocks `blocks` (clipped to the object's blocks; an empty
/// range means the one block at `blocks.start`), exactly what one ranged GET fetches.
pub fn ciphertext_range_for_blocks(
    blocks: Range<u64>,
    plaintext_len: u64,
    block_size: u32,
) -> Range<u64> {
    let last_block = block_count(plaintext_len, block_size) - 1;
    let first = blocks.start.min(last_block);
    let last = blocks.end.saturating_sub(1).clamp(first, last_block);
    ciphertext_range_for_block(first, plaintext_len, block_size).start
        ..ciphertext_range_for_block(last, plaintext_len, block_size).end
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: u32 = 4096;
    const H: u64 = HEADER_LEN as u64;

    #[test]
    fn part_and_run_sizes() {
        assert_eq!(sealed_block_len(B), 4112);
        assert_eq!(sealed_run_len(3, B), 3 * 4112);
        assert_eq!(blocks_per_part(8 * 1024 * 1024, 65536), 128);
        assert_eq!(blocks_per_part(65552 * 3 + 1, 65536), 4);
        assert_eq!(blocks_per_part(0, B), 1);
        assert_eq!(blocks_within(8 * 1024 * 1024, 65536), 127);
        assert_eq!(blocks_within(10, B), 1);
    }

    #[test]
    fn block_runs_are_their_blocks_back_to_back() {
        let p = 10240; // 2.5 blocks
        assert_eq!(ciphertext_range_for_blocks(0..1, p, B), H..H + 4112);
        assert_eq!(
            ciphertext_range_for_blocks(1..3, p, B),
            H + 4112..ciphertext_len(p, B)
        );
        // Clipped to the object, and an empty range is one block.
        assert_eq!(
            ciphertext_range_for_blocks(2..9, p, B),
            ciphertext_range_for_block(2, p, B)
        );
        assert_eq!(
            ciphertext_range_for_blocks(1..1, p, B),
            ciphertext_range_for_block(1, p, B)
        );
        assert_eq!(ciphertext_range_for_blocks(0..1, 0, B), H..H + 16);
        for first in 0..3 {
            for end in first + 1..=3 {
                let span = ciphertext_range_for(first * 4096..(end * 4096).min(p), p, B).ciphertext;
                assert_eq!(ciphertext_range_for_blocks(first..end, p, B), span);
            }
        }
    }
}
