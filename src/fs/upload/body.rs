//! What every upload is made of: the [`Uploader`] (the encrypted-object seam and the staging
//! area), the PUT options, and sealing a run of a file's logical blocks into the body of a PUT
//! or of one part.
//!
//! Whole uploads (`whole.rs`) and streamed ones (`stream.rs`) both seal through
//! [`Uploader::seal_blocks`] with a sealer from the seam, so an object has the same bytes
//! whichever way it left. The block layout (tags, header) is the crypto layer's.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;

use crate::crypto::ObjectSealer;
use crate::crypto::format::{block_count, block_plaintext_len, sealed_run_len};
use crate::sealed::SealedStore;
use crate::store::{DynStore, Metadata, PutOptions, StoreError};

use super::super::attr::record_for;
use super::super::read::{BlockReader, Fetch};
use super::error::{UploadError, UploadResult};
use super::file::FileState;
use super::staging::StagingArea;

/// Seals and uploads files.
pub struct Uploader {
    pub sealed: SealedStore,
    /// Where staged blocks live, and streamed parts whose upload failed until a retry.
    pub area: Arc<StagingArea>,
}

impl Uploader {
    pub fn new(sealed: SealedStore, area: Arc<StagingArea>) -> Self {
        Uploader { sealed, area }
    }

    pub fn store(&self) -> &DynStore {
        self.sealed.store()
    }

    /// The PUT options of an upload of `state` to `key`: `metadata` (its attribute metadata),
    /// and `If-Match` on the version it derives from when that lives at the same key, else
    /// `If-None-Match: *` (a new file, or a conflict copy: no object should be at `key`, and
    /// one another client stored there meanwhile is a conflict, never silently replaced). A
    /// multipart upload adds its sealer's crypto metadata; `SealedStore::put_sealed` does that
    /// itself.
    pub fn put_options(&self, key: &str, state: &FileState, metadata: Metadata) -> PutOptions {
        let if_match = state
            .base
            .as_ref()
            .filter(|b| b.key == key)
            .map(|b| b.etag.clone());
        PutOptions {
            metadata,
            if_none_match: if_match.is_none(),
            if_match,
        }
    }

    /// The attribute metadata of an upload of `state` to `key` sealed by `sealer`: its
    /// attribute record, bound to `key` and to the sealer's header salt. `size` is `None` for
    /// a streamed upload (its metadata is fixed before its size is known), and `with_mtime`
    /// false leaves the mtime to the object's Last-Modified time.
    pub fn record_metadata(
        &self,
        key: &str,
        state: &FileState,
        sealer: &ObjectSealer,
        size: Option<u64>,
        with_mtime: bool,
    ) -> UploadResult<Metadata> {
        let mut record = record_for(state.kind, &state.attrs, size, *sealer.salt());
        if !with_mtime {
            record.mtime = None;
        }
        let (k, v) = self.sealed.record_entry(key, &record)?;
        Ok(Metadata::from([(k, v)]))
    }

    /// A fresh sealer (fresh data key) for one upload of `key`.
    pub fn sealer(&self, key: &str) -> UploadResult<ObjectSealer> {
        self.sealed
            .new_sealer()
            .map_err(|e| UploadError::crypto(key, e))
    }

    /// Seal the logical blocks `blocks` of `state` in order, after the header if `header` is
    /// given: one part's body (or a whole object's). The body is reserved in the memory
    /// budget first (waiting for room) and holds its reservation until it is dropped; blocks
    /// of the stored version are fetched without waiting for memory, which this upload holds.
    pub async fn seal_blocks(
        &self,
        key: &str,
        sealer: &ObjectSealer,
        state: &FileState,
        reader: &BlockReader,
        blocks: Range<u64>,
        header: Option<&[u8]>,
    ) -> UploadResult<Bytes> {
        let bs = reader.block_size();
        let size = state.size;
        let n_blocks = block_count(size, bs);
        let blocks = blocks.start..blocks.end.min(n_blocks);
        let head = header.unwrap_or_default();
        let run = sealed_run_len(blocks.end.saturating_sub(blocks.start), bs);
        let len = head.len() as u64 + run;
        let held = reader.memory().acquire(len).await;
        let mut body = Vec::with_capacity(len as usize);
        body.extend_from_slice(head);
        for index in blocks {
            let block = state
                .logical_block_with(index, reader, Fetch::Overdraw)
                .await?;
            let len = block_plaintext_len(index, size, bs) as usize;
            sealer
                .seal_block_onto(index, &block[..len], index + 1 == n_blocks, &mut body)
                .map_err(|e| UploadError::crypto(key, e))?;
        }
        Ok(held.attach(body))
    }
}

/// A failed PUT: a failed `If-Match` means another client replaced (or deleted) the object.
pub fn map_put_err(key: &str, e: StoreError) -> UploadError {
    match e {
        // 404: the version an If-Match named was deleted (a write creates no other 404).
        StoreError::PreconditionFailed { .. } | StoreError::NotFound { .. } => {
            UploadError::Conflict {
                key: key.to_string(),
            }
        }
        other => UploadError::Store(other),
    }
}
