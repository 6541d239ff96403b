//! Streaming uploads: the multipart parts of a file written front to back leave while the file
//! is still being written, so a large file needs neither its size in memory nor in staging.
//!
//! The object keeps the layout of every multipart upload (docs/FORMAT.md): part 1 is the header
//! and blocks `[0, B)`, part `p >= 2` is blocks `[(p-1)B, pB)`, `B` blocks per part. The header
//! carries the final size, so part 1 goes last, at close; part `p >= 2` goes as soon as all its
//! blocks are written and the file extends past it (so none of them can be the last block,
//! whose nonce differs). A sequential writer's part is then in memory (`part_buffer.rs`) and is
//! sealed in place, off the writer's path, right before it is sent; a part that was staged
//! instead is sealed from staging and its blocks are dropped from staging once the store has it.
//! A part whose upload fails keeps its sealed body, stashed locally under the ephemeral key
//! (`PartStash`), and the completion sends exactly those bytes again.
//!
//! A block's nonce is its index, so a block sealed under the upload's key must never be sealed
//! again with other content. Hence: an operation that needs the bytes of a streamed part back
//! or changes them (read or write into it, truncate into it, rename, unlink while open) first
//! completes the upload, and the file continues from that object with a fresh key. Once a
//! completion has been tried and failed, the whole content is *frozen*: every change waits for
//! the completion to succeed, and a retry seals exactly the same bytes again.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use tokio::task::JoinHandle;

use crate::crypto::ObjectSealer;
use crate::crypto::format::block_count;
use crate::store::{CompletedPart, DynStore, MAX_PARTS, Metadata, StoreError, StoreResult};

use super::attr::to_metadata;
use super::error::{FsError, FsResult};
use super::part_buffer::PartBuffer;
use super::read::BlockReader;
use super::staging::{PartStash, StagingArea, StagingFile};
use super::write::{FileState, Uploader, blocks_per_part, carried_for, map_put_err};

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
    fn failed_body(&self, part: u32) -> FsResult<Option<Bytes>> {
        if self.lost.contains(&part) {
            return Err(FsError::Staging(format!(
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
    fn forget_failed(&mut self, part: u32) {
        self.failed.remove(&part);
        self.stash.remove(part);
        self.held.remove(&part);
    }

    /// The stored parts, in order, for the completion.
    pub fn completed_parts(&self) -> Vec<CompletedPart> {
        self.done
            .iter()
            .map(|(&part_number, etag)| CompletedPart {
                part_number,
                etag: etag.clone(),
            })
            .collect()
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

impl Uploader {
    /// After a write: start the upload if the file qualifies, and send every part that is
    /// complete. Never fails the write: without a stream the file is uploaded whole at close.
    pub async fn stream_ready_parts(&self, key: &str, state: &mut FileState, reader: &BlockReader) {
        if let Err(e) = self.try_stream_parts(key, state, reader).await {
            log::warn!("streaming the upload of {key} failed, it is uploaded at close: {e}");
            state.no_stream = true;
        }
    }

    async fn try_stream_parts(
        &self,
        key: &str,
        state: &mut FileState,
        reader: &BlockReader,
    ) -> FsResult<()> {
        let bs = reader.block_size() as u64;
        let bpp = blocks_per_part(reader.block_size());
        if state.stream.is_none() {
            // Only content that does not build on a stored version (a new or truncated file):
            // the parts then depend on nothing but the staged blocks.
            if state.no_stream || state.unlinked || state.base_valid_len > 0 {
                return Ok(());
            }
            if !part_ready(state, 2, bpp..2 * bpp, bs) {
                return Ok(());
            }
            let sealer = ObjectSealer::new(&self.keys).map_err(|e| FsError::Crypto {
                key: key.to_string(),
                source: e,
            })?;
            let metadata = stream_metadata(state);
            let opts = self.put_options(key, state, metadata.clone(), &carried_for(&sealer));
            let upload_id = self
                .store
                .create_multipart(key, opts)
                .await
                .map_err(|e| map_put_err(key, e))?;
            log::debug!("streaming the upload of {key} ({upload_id})");
            state.stream = Some(PartStream::new(
                key.to_string(),
                upload_id,
                sealer,
                bpp,
                metadata,
                &self.area,
            ));
        }
        // The stream is taken out while parts are sealed: sealing reads the rest of the state.
        let Some(mut stream) = state.stream.take() else {
            return Ok(());
        };
        let result = self.send_ready_parts(key, &mut stream, state, reader).await;
        state.stream = Some(stream);
        result
    }

    /// Seal and send every part that is complete, at most `STREAM_PARALLELISM` in flight.
    async fn send_ready_parts(
        &self,
        key: &str,
        stream: &mut PartStream,
        state: &mut FileState,
        reader: &BlockReader,
    ) -> FsResult<()> {
        let bs = reader.block_size() as u64;
        loop {
            stream.reap_finished(state.staging.as_mut()).await;
            let part = stream.next_part;
            if stream.frozen || u64::from(part) >= u64::from(MAX_PARTS) {
                return Ok(());
            }
            let blocks = stream.part_blocks(part);
            if !part_ready(state, part, blocks.clone(), bs) {
                return Ok(());
            }
            while stream.inflight() >= STREAM_PARALLELISM {
                stream.reap_one(state.staging.as_mut()).await;
            }
            let body = match state.parts.iter().position(|b| b.part == part) {
                Some(i) => PartBody::Buffered(state.parts.remove(i)),
                None => PartBody::Sealed(Bytes::from(
                    self.seal_blocks(key, &stream.sealer, state, reader, blocks, None)
                        .await?,
                )),
            };
            stream.spawn(&self.store, part, body);
            stream.next_part += 1;
        }
    }

    /// Complete the streaming upload: wait for the parts in flight, send failed parts again,
    /// then part 1 (header and first blocks) and the tail, and complete. On failure the
    /// stream stays, frozen, for the next try. Returns the ETag, and whether attributes
    /// changed after the upload started (they then follow with a metadata copy).
    pub(super) async fn finish_stream(
        &self,
        key: &str,
        state: &mut FileState,
        reader: &BlockReader,
    ) -> FsResult<(String, Metadata, bool)> {
        let Some(mut stream) = state.stream.take() else {
            return Err(FsError::Staging("internal: no upload to complete".into()));
        };
        let etag = match self
            .finish_stream_with(key, &mut stream, state, reader)
            .await
        {
            Ok(etag) => etag,
            Err(e) => {
                state.stream = Some(stream);
                return Err(e);
            }
        };
        let carried = carried_for(&stream.sealer);
        if stream_metadata(state) != stream.metadata {
            return Ok((etag, carried, true));
        }
        if !stream.metadata.contains_key("mtime") {
            // The mtime of a streamed file is the object's Last-Modified time: learn it now
            // so that `stat` does not change when the cached attributes expire.
            match self.store.head(key).await {
                Ok(info) if info.etag == etag => state.attrs.mtime = info.last_modified,
                Ok(_) => {}
                Err(e) => log::debug!("HEAD after the upload of {key} failed: {e}"),
            }
        }
        Ok((etag, carried, false))
    }

    async fn finish_stream_with(
        &self,
        key: &str,
        stream: &mut PartStream,
        state: &mut FileState,
        reader: &BlockReader,
    ) -> FsResult<String> {
        stream.reap_all(state.staging.as_mut()).await;
        let bs = reader.block_size();
        let n_blocks = block_count(state.size, bs);
        let sealed_end = stream.sealed_blocks().end;
        if n_blocks <= sealed_end || stream.key != key {
            // The callers complete the upload before any truncate into the streamed parts and
            // before a rename, so this is a bug, not a user error.
            return Err(FsError::Staging(format!(
                "internal: upload of {} cannot complete as {key} with {n_blocks} blocks",
                stream.key
            )));
        }
        let bpp = stream.blocks_per_part;
        let tail_parts = (n_blocks - sealed_end).div_ceil(bpp);
        let last_part = u64::from(stream.next_part) - 1 + tail_parts;
        if last_part > u64::from(MAX_PARTS) {
            return Err(FsError::TooLarge);
        }
        // From here on part 1 and the tail are sealed: the content must not change until the
        // upload completes, so that a retry seals the same bytes under the same nonces.
        stream.frozen = true;
        let header = stream.sealer.header(state.size);
        let mut to_send: Vec<u32> = stream.failed.iter().copied().collect();
        to_send.push(1);
        to_send.extend(stream.next_part..=last_part as u32);
        let stream_ref = &*stream;
        let state_ref = &*state;
        let sent: Vec<(u32, FsResult<String>)> = futures::stream::iter(to_send)
            .map(|part| {
                let header = &header[..];
                async move {
                    let body = self
                        .part_body(key, stream_ref, state_ref, reader, part, header)
                        .await;
                    let result = match body {
                        Ok(body) => self
                            .store
                            .upload_part(key, &stream_ref.upload_id, part, body)
                            .await
                            .map_err(FsError::from),
                        Err(e) => Err(e),
                    };
                    (part, result)
                }
            })
            .buffer_unordered(STREAM_PARALLELISM)
            .collect()
            .await;
        let mut parts = stream.done.clone();
        let mut first_err = None;
        for (part, result) in sent {
            match result {
                Ok(etag) => {
                    if part < stream.next_part && part != 1 {
                        stream.forget_failed(part);
                        stream.done.insert(part, etag.clone());
                    }
                    parts.insert(part, etag);
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        let parts: Vec<CompletedPart> = parts
            .into_iter()
            .map(|(part_number, etag)| CompletedPart { part_number, etag })
            .collect();
        let out = self
            .store
            .complete_multipart(key, &stream.upload_id, &parts)
            .await
            .map_err(|e| map_put_err(key, e))?;
        log::debug!(
            "completed the streamed upload of {key} in {} parts",
            parts.len()
        );
        Ok(out.etag)
    }

    /// The body of `part` for the completion: a failed streamed part's kept body, else its
    /// blocks sealed now (part 1 after the header).
    async fn part_body(
        &self,
        key: &str,
        stream: &PartStream,
        state: &FileState,
        reader: &BlockReader,
        part: u32,
        header: &[u8],
    ) -> FsResult<Bytes> {
        if part != 1
            && part < stream.next_part
            && let Some(body) = stream.failed_body(part)?
        {
            return Ok(body);
        }
        let blocks = stream.part_blocks(part);
        let head = (part == 1).then_some(header);
        let body = self
            .seal_blocks(key, &stream.sealer, state, reader, blocks, head)
            .await?;
        Ok(Bytes::from(body))
    }
}

/// The metadata a streaming upload is created with. The final mtime is not known when the
/// upload starts, so an mtime that writes set is left out and the object's Last-Modified
/// time stands for it; an mtime the user set explicitly is kept.
fn stream_metadata(state: &FileState) -> Metadata {
    let mut m = to_metadata(state.kind, &state.attrs);
    if !state.mtime_explicit {
        m.remove("mtime");
        m.remove("mtime-nsec");
    }
    m
}

/// Whether part `part` (blocks `blocks`) is buffered or all staged, and the file extends
/// past it.
fn part_ready(state: &FileState, part: u32, blocks: Range<u64>, block_size: u64) -> bool {
    state.size > blocks.end * block_size
        && (state.parts.iter().any(|b| b.part == part)
            || state
                .staging
                .as_ref()
                .is_some_and(|s| s.has_all(blocks.clone())))
}
