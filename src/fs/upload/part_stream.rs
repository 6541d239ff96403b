//! [`PartStream`]: one multipart upload streaming the parts of a file while it is written
//! (`stream.rs` decides what to send and when; this is the upload's own bookkeeping).
//!
//! Parts leave in the background, a few at a time; each is recorded as stored (with its ETag)
//! or failed. A part whose upload fails keeps its sealed body, stashed locally under the
//! ephemeral key (`PartStash`), and the completion sends exactly those bytes again: a block
//! sealed under the upload's key must never be sealed again with other content.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use tokio::task::JoinHandle;

use crate::crypto::ObjectSealer;
use crate::store::{DynStore, Metadata, StoreError, StoreResult};

use super::error::{UploadError, UploadResult};
use super::part_buffer::PartBuffer;
use super::staging::{PartStash, StagingArea, StagingFile};

/// Parts of one file in flight at once (each is one part's size in memory).
pub const STREAM_PARALLELISM: usize = 4;

/// An upload in progress for one open file.
pub struct PartStream {
    /// The object key the upload goes to (renames complete it first).
    pub key: String,
    pub upload_id: String,
    pub sealer: Arc<ObjectSealer>,
    pub blocks_per_part: u64,
    /// The next part to stream; parts `2..next_part` are sealed under `sealer`.
    pub next_part: u32,
    /// Stored parts and their ETags.
    pub done: BTreeMap<u32, String>,
    /// Parts whose upload failed; a completion sends them again, from `stash` or `held` (or,
    /// for a part sealed from staging, from its blocks, still staged).
    pub failed: BTreeSet<u32>,
    /// The sealed bodies of failed parts, on local disk.
    stash: PartStash,
    /// Sealed bodies of failed parts that could not be stashed (local disk full).
    held: BTreeMap<u32, Bytes>,
    /// Failed parts whose body was lost (sealing failed): the upload cannot complete.
    lost: BTreeSet<u32>,
    /// Parts being uploaded, oldest first.
    inflight: Vec<Inflight>,
    /// A completion was tried: part 1 and the tail were sealed, so nothing may change anymore.
    pub frozen: bool,
    /// The metadata the upload was created with (S3 fixes it at CreateMultipartUpload).
    pub metadata: Metadata,
}

/// What a part upload sends.
pub enum PartBody {
    /// Sealed already (from staging).
    Sealed(Bytes),
    /// A part buffer, sealed in place by the upload task.
    Buffered(PartBuffer),
}

/// An upload's result, with the sealed body it sent (none if sealing failed).
type PartOutcome = (StoreResult<String>, Option<Bytes>);

struct Inflight {
    part: u32,
    buffered: bool,
    handle: JoinHandle<PartOutcome>,
}

fn transient(key: &str, reason: String) -> StoreError {
    StoreError::Transient {
        key: key.to_string(),
        reason,
    }
}

impl PartStream {
    pub fn new(
        key: String,
        upload_id: String,
        sealer: ObjectSealer,
        blocks_per_part: u64,
        metadata: Metadata,
        area: &Arc<StagingArea>,
    ) -> Self {
        PartStream {
            metadata,
            key,
            upload_id,
            sealer: Arc::new(sealer),
            blocks_per_part,
            next_part: 2,
            done: BTreeMap::new(),
            failed: BTreeSet::new(),
            stash: area.part_stash(),
            held: BTreeMap::new(),
            lost: BTreeSet::new(),
            inflight: Vec::new(),
            frozen: false,
        }
    }

    /// The blocks of part `part`.
    pub fn part_blocks(&self, part: u32) -> Range<u64> {
        let first = (part as u64 - 1) * self.blocks_per_part;
        first..first + self.blocks_per_part
    }

    /// Blocks sealed under this upload's key while streaming.
    pub fn sealed_blocks(&self) -> Range<u64> {
        self.blocks_per_part..(self.next_part as u64 - 1) * self.blocks_per_part
    }

    /// Whether touching blocks `first..=last` needs the upload completed first.
    pub fn pins(&self, first: u64, last: u64) -> bool {
        let sealed = self.sealed_blocks();
        self.frozen || (first < sealed.end && last >= sealed.start)
    }

    /// Whether a truncate to `new_size` needs the upload completed first: it would drop or
    /// make the last block one that was sealed as a middle block.
    pub fn pins_truncate(&self, new_size: u64, block_size: u64) -> bool {
        self.frozen || new_size <= self.sealed_blocks().end * block_size
    }

    /// Send part `part` in the background; a buffered part is sealed there first, on a
    /// blocking thread, so that the writer goes on while it is sealed.
    pub fn spawn(&mut self, store: &DynStore, part: u32, body: PartBody) {
        let store = store.clone();
        let key = self.key.clone();
        let upload_id = self.upload_id.clone();
        let sealer = self.sealer.clone();
        let buffered = matches!(body, PartBody::Buffered(_));
        let handle = tokio::spawn(async move {
            let body = match body {
                PartBody::Sealed(b) => b,
                PartBody::Buffered(buf) => {
                    let k = key.clone();
                    let sealed = tokio::task::spawn_blocking(move || buf.seal(&sealer, &k))
                        .await
                        .map_err(|e| e.to_string())
                        .and_then(|r| r.map_err(|e| e.to_string()));
                    match sealed {
                        Ok(b) => b,
                        Err(reason) => return (Err(transient(&key, reason)), None),
                    }
                }
            };
            let result = store
                .upload_part(&key, &upload_id, part, body.clone())
                .await;
            (result, Some(body))
        });
        self.inflight.push(Inflight {
            part,
            buffered,
            handle,
        });
    }

    pub fn inflight(&self) -> usize {
        self.inflight.len()
    }

    /// Wait for the oldest part in flight and record how it went.
    pub async fn reap_one(&mut self, staging: Option<&mut StagingFile>) {
        if self.inflight.is_empty() {
            return;
        }
        let job = self.inflight.remove(0);
        let (result, body) = job.handle.await.unwrap_or_else(|e| {
            let reason = format!("part upload task ended: {e}");
            (Err(transient(&self.key, reason)), None)
        });
        self.record(job.part, job.buffered, result, body, staging);
    }

    /// Record the parts that have finished, without waiting.
    pub async fn reap_finished(&mut self, mut staging: Option<&mut StagingFile>) {
        while self
            .inflight
            .first()
            .is_some_and(|j| j.handle.is_finished())
        {
            self.reap_one(staging.as_deref_mut()).await;
        }
    }

    /// Wait for every part in flight.
    pub async fn reap_all(&mut self, mut staging: Option<&mut StagingFile>) {
        while !self.inflight.is_empty() {
            self.reap_one(staging.as_deref_mut()).await;
        }
    }

    fn record(
        &mut self,
        part: u32,
        buffered: bool,
        result: StoreResult<String>,
        body: Option<Bytes>,
        staging: Option<&mut StagingFile>,
    ) {
        match result {
            Ok(etag) => {
                self.failed.remove(&part);
                self.done.insert(part, etag);
                if let Some(s) = staging {
                    s.release(self.part_blocks(part));
                }
            }
            Err(e) => {
                log::warn!(
                    "part {part} of {} failed, kept for the completion: {e}",
                    self.key
                );
                self.failed.insert(part);
                self.keep_failed(part, buffered, body);
            }
        }
    }

    /// Keep the sealed body of a failed part for the retry: stashed, else in memory.
    fn keep_failed(&mut self, part: u32, buffered: bool, body: Option<Bytes>) {
        let Some(body) = body else {
            // No body: the task ended before sealing. A part sealed from staging is still
            // staged; a buffered part's plaintext went with the task.
            if buffered {
                self.lost.insert(part);
            }
            return;
        };
        if let Err(e) = self.stash.put(part, &body) {
            log::warn!(
                "part {part} of {} kept in memory, stashing it failed: {e}",
                self.key
            );
            self.held.insert(part, body);
        }
    }

    /// The kept body of failed part `part`, if it has one (else its blocks are staged).
    pub(super) fn failed_body(&self, part: u32) -> UploadResult<Option<Bytes>> {
        if self.lost.contains(&part) {
            return Err(UploadError::Staging(format!(
                "internal: part {part} of {} could not be sealed, the upload cannot complete",
                self.key
            )));
        }
        if let Some(b) = self.held.get(&part) {
            return Ok(Some(b.clone()));
        }
        Ok(self.stash.get(part)?.map(Bytes::from))
    }

    /// A failed part was sent again: forget what was kept for it.
    pub(super) fn forget_failed(&mut self, part: u32) {
        self.failed.remove(&part);
        self.stash.remove(part);
        self.held.remove(&part);
    }

    /// Give up the upload (the file was removed): the store drops the parts.
    pub fn abort(mut self, store: &DynStore) {
        for job in self.inflight.drain(..) {
            job.handle.abort();
        }
        let store = store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.abort_multipart(&self.key, &self.upload_id).await {
                log::warn!("aborting the upload of {} failed: {e}", self.key);
            }
        });
    }
}
