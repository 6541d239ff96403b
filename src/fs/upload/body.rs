//! What every upload is made of: the [`Uploader`] (store, vault keys, staging area), the
//! multipart geometry, the PUT options, and sealing a run of a file's logical blocks into the
//! body of a PUT or of one part.
//!
//! Whole uploads (`whole.rs`) and streamed ones (`stream.rs`) both seal through
//! [`Uploader::seal_blocks`], so an object has the same bytes whichever way it left. The block
//! layout (tags, header) is the crypto layer's; this file only asks it where blocks go.

use std::ops::Range;
use std::sync::Arc;

use crate::crypto::format::{block_count, block_offset, block_plaintext_len};
use crate::crypto::rewrap::{METADATA_KEY_HEADER, key_header_value};
use crate::crypto::{ObjectSealer, VaultKeys};
use crate::store::{DynStore, Metadata, PutOptions, StoreError};

use super::super::read::BlockReader;
use super::error::{UploadError, UploadResult};
use super::file::FileState;
use super::staging::StagingArea;

/// Seals and uploads files.
pub struct Uploader {
    pub store: DynStore,
    pub keys: Arc<VaultKeys>,
    /// Where streamed parts whose upload failed are kept until a retry.
    pub area: Arc<StagingArea>,
}

impl Uploader {
    pub fn new(store: DynStore, keys: Arc<VaultKeys>, area: Arc<StagingArea>) -> Self {
        Uploader { store, keys, area }
    }

    /// The PUT options of an upload of `state` to `key`: `metadata` (its attribute metadata)
    /// plus `carried`, and `If-Match` on the version it derives from when that lives at the
    /// same key.
    pub fn put_options(
        &self,
        key: &str,
        state: &FileState,
        mut metadata: Metadata,
        carried: &Metadata,
    ) -> PutOptions {
        metadata.extend(carried.iter().map(|(k, v)| (k.clone(), v.clone())));
        PutOptions {
            metadata,
            if_match: state
                .base
                .as_ref()
                .filter(|b| b.key == key)
                .map(|b| b.etag.clone()),
            if_none_match: false,
        }
    }

    /// A fresh sealer (fresh data key) for one upload of `key`.
    pub fn sealer(&self, key: &str) -> UploadResult<ObjectSealer> {
        ObjectSealer::new(&self.keys).map_err(|e| UploadError::crypto(key, e))
    }

    /// Seal the logical blocks `blocks` of `state` in order, after the header if `header` is
    /// given: one part's body (or a whole object's).
    pub async fn seal_blocks(
        &self,
        key: &str,
        sealer: &ObjectSealer,
        state: &FileState,
        reader: &BlockReader,
        blocks: Range<u64>,
        header: Option<&[u8]>,
    ) -> UploadResult<Vec<u8>> {
        let bs = reader.block_size();
        let size = state.size;
        let n_blocks = block_count(size, bs);
        let blocks = blocks.start..blocks.end.min(n_blocks);
        let sealed_len =
            block_offset(blocks.end.max(blocks.start), bs) - block_offset(blocks.start, bs);
        let head = header.unwrap_or_default();
        let mut body = Vec::with_capacity(head.len() + sealed_len as usize);
        body.extend_from_slice(head);
        for index in blocks {
            let block = state.logical_block(index, reader).await?;
            let len = block_plaintext_len(index, size, bs) as usize;
            let at = body.len();
            body.extend_from_slice(&block[..len]);
            let tag = sealer
                .seal_block_in_place(index, &mut body[at..], index + 1 == n_blocks)
                .map_err(|e| UploadError::crypto(key, e))?;
            body.extend_from_slice(&tag);
        }
        Ok(body)
    }
}

/// The crypto metadata an object sealed by `sealer` is uploaded with: a copy of its header's
/// key fields, so that `key rotate --rewrap` needs no GET.
pub fn carried_for(sealer: &ObjectSealer) -> Metadata {
    let mut m = Metadata::new();
    m.insert(
        METADATA_KEY_HEADER.to_string(),
        key_header_value(&sealer.header(0)),
    );
    m
}

/// A failed PUT: a failed `If-Match` means another client replaced the object.
pub fn map_put_err(key: &str, e: StoreError) -> UploadError {
    match e {
        StoreError::PreconditionFailed { .. } => UploadError::Conflict {
            key: key.to_string(),
        },
        other => UploadError::Store(other),
    }
}
