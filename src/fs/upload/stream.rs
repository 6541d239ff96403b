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

use std::ops::Range;

use bytes::Bytes;
use futures::StreamExt;

use crate::crypto::format::block_count;
use crate::store::{CompletedPart, MAX_PARTS, Metadata};

use super::super::attr::to_metadata;
use super::super::read::BlockReader;
use super::body::{Uploader, map_put_err};
use super::error::{UploadError, UploadResult};
use super::file::FileState;
use super::part_buffer::blocks_per_part;
use super::part_stream::{PartBody, PartStream, STREAM_PARALLELISM};

impl Uploader {
    /// After a write: start the upload if the file qualifies, and send every part that is
    /// complete. Never fails the write: without a stream the file is uploaded whole at close.
    pub(super) async fn stream_ready_parts(
        &self,
        key: &str,
        state: &mut FileState,
        reader: &BlockReader,
    ) {
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
    ) -> UploadResult<()> {
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
            let sealer = self.sealer(key)?;
            // The snapshot of the attributes the upload fixes, compared at completion; what is
            // sent is the attribute record (size unknown yet, mtime only if the user set one).
            let metadata = stream_metadata(state);
            let record = self.record_metadata(key, state, &sealer, None, state.mtime_explicit)?;
            let mut opts = self.put_options(key, state, record);
            opts.metadata.extend(sealer.crypto_metadata());
            let upload_id = self
                .store()
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
    ) -> UploadResult<()> {
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
                None => PartBody::Sealed(
                    self.seal_blocks(key, &stream.sealer, state, reader, blocks, None)
                        .await?,
                ),
            };
            stream.spawn(self.store(), part, body);
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
    ) -> UploadResult<(String, Metadata, [u8; 32], bool)> {
        let Some(mut stream) = state.stream.take() else {
            return Err(UploadError::Staging(
                "internal: no upload to complete".into(),
            ));
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
        let carried = stream.sealer.crypto_metadata();
        let salt = *stream.sealer.salt();
        if stream_metadata(state) != stream.metadata {
            return Ok((etag, carried, salt, true));
        }
        if !stream.metadata.contains_key("mtime") {
            // The mtime of a streamed file is the object's Last-Modified time: learn it now
            // so that `stat` does not change when the cached attributes expire.
            match self.store().head(key).await {
                Ok(info) if info.etag == etag => state.attrs.mtime = info.last_modified,
                Ok(_) => {}
                Err(e) => log::debug!("HEAD after the upload of {key} failed: {e}"),
            }
        }
        Ok((etag, carried, salt, false))
    }

    async fn finish_stream_with(
        &self,
        key: &str,
        stream: &mut PartStream,
        state: &mut FileState,
        reader: &BlockReader,
    ) -> UploadResult<String> {
        stream.reap_all(state.staging.as_mut()).await;
        let bs = reader.block_size();
        let n_blocks = block_count(state.size, bs);
        let sealed_end = stream.sealed_blocks().end;
        if n_blocks <= sealed_end || stream.key != key {
            // The callers complete the upload before any truncate into the streamed parts and
            // before a rename, so this is a bug, not a user error.
            return Err(UploadError::Staging(format!(
                "internal: upload of {} cannot complete as {key} with {n_blocks} blocks",
                stream.key
            )));
        }
        let bpp = stream.blocks_per_part;
        let tail_parts = (n_blocks - sealed_end).div_ceil(bpp);
        let last_part = u64::from(stream.next_part) - 1 + tail_parts;
        if last_part > u64::from(MAX_PARTS) {
            return Err(UploadError::TooLarge);
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
        let sent: Vec<(u32, UploadResult<String>)> = futures::stream::iter(to_send)
            .map(|part| {
                let header = &header[..];
                async move {
                    let body = self
                        .part_body(key, stream_ref, state_ref, reader, part, header)
                        .await;
                    let result = match body {
                        Ok(body) => self
                            .store()
                            .upload_part(key, &stream_ref.upload_id, part, body)
                            .await
                            .map_err(UploadError::from),
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
            .store()
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
    ) -> UploadResult<Bytes> {
        if part != 1
            && part < stream.next_part
            && let Some(body) = stream.failed_body(part)?
        {
            return Ok(body);
        }
        let blocks = stream.part_blocks(part);
        let head = (part == 1).then_some(header);
        self.seal_blocks(key, &stream.sealer, state, reader, blocks, head)
            .await
    }
}

/// The attributes a streaming upload's record fixes, as a map to compare at completion (never
/// sent: the record is). The final mtime is not known when the upload starts, so an mtime
/// that writes set is left out and the object's Last-Modified time stands for it; an mtime
/// the user set explicitly is kept.
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
