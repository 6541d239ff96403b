//! Whole uploads at close or fsync: every block sealed under a fresh data key, in one PUT for
//! a small object, or as a multipart upload of [`blocks_per_part`] blocks per part, a few
//! parts in flight at once. A failed upload leaves the file's content where it was (staged or
//! based on its old version), so the next flush or the background retry starts over.

use futures::stream::{self, StreamExt, TryStreamExt};

use crate::crypto::format::{block_count, ciphertext_len};
use crate::store::{CompletedPart, MAX_PARTS, Metadata};

use super::super::read::BlockReader;
use super::body::{Uploader, map_put_err};
use super::error::{UploadError, UploadResult};
use super::file::FileState;
use super::part_buffer::blocks_per_part;

/// Largest object uploaded with one PUT; larger ones go multipart.
pub const SINGLE_PUT_MAX: u64 = 16 * 1024 * 1024;
/// Parts in flight at once per upload.
const PART_PARALLELISM: usize = 4;

impl Uploader {
    /// Seal and upload the whole content of `state` to `key` with its attribute record.
    /// Returns the ETag, the crypto metadata the object carries and its header salt.
    pub(super) async fn upload_whole(
        &self,
        key: &str,
        state: &FileState,
        reader: &BlockReader,
    ) -> UploadResult<(String, Metadata, [u8; 32])> {
        let sealer = self.sealer(key)?;
        let bs = reader.block_size();
        let size = state.size;
        let n_blocks = block_count(size, bs);
        let record = self.record_metadata(key, state, &sealer, Some(size), true)?;
        let mut opts = self.put_options(key, state, record);
        let salt = *sealer.salt();
        let header = sealer.header(size);
        // One body the memory budget can reserve whole (else it would be counted past the
        // limit, see `fs/memory.rs`): under a small limit a 9 to 16 MiB object goes multipart.
        let single_max = SINGLE_PUT_MAX.min(reader.memory().largest_request());
        if ciphertext_len(size, bs) <= single_max {
            let body = self
                .seal_blocks(key, &sealer, state, reader, 0..n_blocks, Some(&header))
                .await?;
            let version = self
                .sealed
                .put_sealed(key, &sealer, body, size, opts)
                .await?;
            return Ok((version.etag, version.carried, salt));
        }
        let carried = sealer.crypto_metadata();
        opts.metadata.extend(carried.clone());
        let blocks_per_part = blocks_per_part(bs);
        let n_parts = n_blocks.div_ceil(blocks_per_part);
        if n_parts > u64::from(MAX_PARTS) {
            return Err(UploadError::TooLarge);
        }
        let upload_id = self
            .store()
            .create_multipart(key, opts)
            .await
            .map_err(|e| map_put_err(key, e))?;
        let result: UploadResult<Vec<CompletedPart>> = stream::iter(0..n_parts)
            .map(|p| {
                let sealer = &sealer;
                let header = &header;
                let upload_id = upload_id.as_str();
                async move {
                    let blocks = p * blocks_per_part..(p + 1) * blocks_per_part;
                    let head = (p == 0).then_some(&header[..]);
                    let body = self
                        .seal_blocks(key, sealer, state, reader, blocks, head)
                        .await?;
                    let part_number = (p + 1) as u32;
                    let etag = self
                        .store()
                        .upload_part(key, upload_id, part_number, body)
                        .await?;
                    Ok(CompletedPart { part_number, etag })
                }
            })
            .buffered(PART_PARALLELISM)
            .try_collect()
            .await;
        let parts = match result {
            Ok(parts) => parts,
            Err(e) => {
                let _ = self.store().abort_multipart(key, &upload_id).await;
                return Err(e);
            }
        };
        match self
            .store()
            .complete_multipart(key, &upload_id, &parts)
            .await
        {
            Ok(out) => Ok((out.etag, carried, salt)),
            Err(e) => {
                let _ = self.store().abort_multipart(key, &upload_id).await;
                Err(map_put_err(key, e))
            }
        }
    }
}
