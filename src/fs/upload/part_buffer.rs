//! The multipart part a sequential writer is filling, held in memory in the layout of its
//! sealed body, so that it leaves with one AEAD pass and no copy.
//!
//! Each block sits where the object format puts it relative to the part's first block, followed
//! by room for its tag: sealing encrypts each block in place and writes its tag after it, and
//! the buffer becomes the body of the UploadPart request as it is. Before, every block was sealed into staging
//! under the ephemeral key, read back and opened, then sealed again under the object key.
//!
//! Only parts `>= 2` of a streamed upload are buffered (part 1 carries the header and goes
//! last, so it stays in staging), at most two per file (`MAX_BUFFERED_PARTS`): the one being
//! filled and the one before it, which leaves as soon as the file extends past it. Nothing in
//! a buffered part is staged; every other access pattern (truncate, rename or unlink while
//! open, a write that does not continue the sequence) first spills the buffers into staging,
//! sealed under the ephemeral key like any staged block. Unflushed data in memory is no less
//! durable than in staging: staging is unreadable once the daemon is gone either way.

use bytes::Bytes;

use crate::crypto::ObjectSealer;
use crate::crypto::format::sealed_block_len;

use super::super::memory::Reservation;

use super::error::{UploadError, UploadResult};

/// Parts buffered per file at most: the one being filled and a full one waiting to leave.
pub const MAX_BUFFERED_PARTS: usize = 2;
/// Target multipart part size (rounded to whole sealed blocks, at least 5 MiB).
pub const PART_SIZE_TARGET: u64 = 8 * 1024 * 1024;

/// Blocks in one multipart part: whole blocks, about `PART_SIZE_TARGET` bytes sealed. Part
/// `p >= 1` holds blocks `[(p-1)B, pB)` of every multipart object (docs/FORMAT.md).
pub fn blocks_per_part(block_size: u32) -> u64 {
    crate::crypto::format::blocks_per_part(PART_SIZE_TARGET, block_size)
}

/// Plaintext bytes in one multipart part.
pub fn part_bytes(block_size: u32) -> u64 {
    blocks_per_part(block_size) * u64::from(block_size)
}

/// One part's blocks in memory, plaintext until [`PartBuffer::seal`].
pub struct PartBuffer {
    pub part: u32,
    /// Index of the part's first block in the file.
    pub first_block: u64,
    blocks: u64,
    block_size: usize,
    /// `blocks` slots of one sealed block each; bytes never written are zeros.
    buf: Vec<u8>,
    /// Its memory in the budget, held until the sealed body is sent.
    held: Option<Reservation>,
}

impl PartBuffer {
    /// An all-zero part `part` of `blocks` blocks starting at block `first_block`, counted
    /// by `held` in the memory budget.
    pub fn new(
        part: u32,
        first_block: u64,
        blocks: u64,
        block_size: usize,
        held: Option<Reservation>,
    ) -> Self {
        PartBuffer {
            part,
            first_block,
            blocks,
            block_size,
            // Zeroed pages come from the allocator (calloc/mmap) without a memset.
            buf: vec![0u8; Self::len(blocks, block_size) as usize],
            held,
        }
    }

    /// The bytes a buffer of `blocks` blocks takes.
    pub fn len(blocks: u64, block_size: usize) -> u64 {
        blocks * sealed_block_len(block_size as u32)
    }

    fn slot(&self) -> usize {
        sealed_block_len(self.block_size as u32) as usize
    }

    /// The file offsets the part covers.
    pub fn byte_range(&self) -> std::ops::Range<u64> {
        let bs = self.block_size as u64;
        self.first_block * bs..(self.first_block + self.blocks) * bs
    }

    pub fn holds_block(&self, index: u64) -> bool {
        index >= self.first_block && index < self.first_block + self.blocks
    }

    /// Block `index` of the file (which this part holds), `block_size` bytes.
    pub fn block(&self, index: u64) -> &[u8] {
        let at = (index - self.first_block) as usize * self.slot();
        &self.buf[at..at + self.block_size]
    }

    /// Write `data` at file offset `offset`; the range lies within [`PartBuffer::byte_range`].
    pub fn write(&mut self, offset: u64, data: &[u8]) {
        let bs = self.block_size as u64;
        let slot = self.slot();
        let mut pos = offset;
        let end = offset + data.len() as u64;
        while pos < end {
            let index = pos / bs;
            let in_block = (pos % bs) as usize;
            let n = ((bs - pos % bs).min(end - pos)) as usize;
            let at = (index - self.first_block) as usize * slot + in_block;
            let from = (pos - offset) as usize;
            self.buf[at..at + n].copy_from_slice(&data[from..from + n]);
            pos += n as u64;
        }
    }

    /// Seal every block in place (none is the last block of the file): the part's body.
    /// Fails only if the geometry is wrong, which `new` rules out.
    pub fn seal(mut self, sealer: &ObjectSealer, key: &str) -> UploadResult<Bytes> {
        let slot = self.slot();
        let bs = self.block_size;
        for (k, chunk) in self.buf.chunks_exact_mut(slot).enumerate() {
            let (block, tag) = chunk.split_at_mut(bs);
            let index = self.first_block + k as u64;
            let t = sealer
                .seal_block_in_place(index, block, false)
                .map_err(|e| UploadError::crypto(key, e))?;
            tag.copy_from_slice(&t);
        }
        Ok(match self.held {
            Some(held) => held.attach(self.buf),
            None => Bytes::from(self.buf),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{Secret, VaultConfig};
    use zeroize::Zeroizing;

    #[test]
    fn parts_hold_whole_blocks_of_about_eight_mib_sealed() {
        // ceil(8 MiB / (block size + tag)): the layout every multipart object was written with.
        assert_eq!(blocks_per_part(4096), 2041);
        assert_eq!(blocks_per_part(65536), 128);
        assert_eq!(blocks_per_part(1 << 20), 8);
        assert_eq!(part_bytes(65536), 128 * 65536);
    }

    #[test]
    fn sealed_part_is_the_blocks_sealed_one_by_one() {
        let (_cfg, keys) =
            VaultConfig::create(&Secret::KeyFile(Zeroizing::new([3u8; 32])), 4096).unwrap();
        let sealer = ObjectSealer::new(&keys).unwrap();
        let mut part = PartBuffer::new(2, 8, 4, 4096, None);
        assert_eq!(part.byte_range(), 8 * 4096..12 * 4096);
        let data: Vec<u8> = (0..3 * 4096 + 100).map(|i| (i % 251) as u8).collect();
        part.write(8 * 4096 + 50, &data);
        let mut want_plain = vec![0u8; 4 * 4096];
        want_plain[50..50 + data.len()].copy_from_slice(&data);
        assert_eq!(part.block(9), &want_plain[4096..8192]);
        let body = part.seal(&sealer, "k").unwrap();
        let mut want = Vec::new();
        for (k, block) in want_plain.chunks(4096).enumerate() {
            want.extend(sealer.seal_block(8 + k as u64, block, false).unwrap());
        }
        assert!(body[..] == want[..]);
    }
}
