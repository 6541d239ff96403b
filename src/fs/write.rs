//! The write path: open-file state, staged blocks, and the upload that makes a file durable.
//!
//! A file being written is its *base* (the remote version it was opened from, if any) overlaid
//! with the blocks staged locally. Block `i` reads as: the staged block if present; else the
//! base block if it lies below `base_valid_len` (bytes past it read as zero); else zeros.
//! Truncation only moves `base_valid_len` and drops staged blocks, so no data is copied.
//! `close`/`fsync` seal every block under a fresh data key and upload the whole object (one
//! PUT, or a multipart upload of ~8 MiB parts of whole blocks for large files). A failed
//! upload leaves everything staged; the next flush (or the background retry) tries again.
//! A sequential writer's parts `>= 2` are held in memory instead of staging
//! (`part_buffer.rs`) and stream out from there.

use std::ops::Range;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};

use crate::crypto::format::{block_count, ciphertext_len, sealed_run_len};
use crate::crypto::rewrap::{METADATA_KEY_HEADER, key_header_value};
use crate::crypto::{HEADER_LEN, ObjectSealer, VaultKeys};
use crate::store::{CompletedPart, DynStore, MAX_PARTS, Metadata, PutOptions};

use super::attr::{Kind, StoredAttrs, to_metadata};
use super::error::{FsError, FsResult};
use super::part_buffer::{MAX_BUFFERED_PARTS, PartBuffer};
use super::read::{BlockReader, RemoteVersion, block_plain_len};
use super::staging::{StagingArea, StagingFile};
use super::stream::PartStream;

/// Largest object uploaded with one PUT; larger ones go multipart.
pub const SINGLE_PUT_MAX: u64 = 16 * 1024 * 1024;
/// Target multipart part size (rounded to whole blocks, at least 5 MiB).
pub const PART_SIZE_TARGET: u64 = 8 * 1024 * 1024;
/// Base blocks fetched together when an overlay needs one.
const BASE_FETCH_RUN_BLOCKS: u64 = 32;
/// Parts in flight at once per upload.
const PART_PARALLELISM: usize = 4;

/// The mutable state of one open (or dirty) file, shared by all its handles.
pub struct FileState {
    /// Path relative to the mount root (follows renames).
    pub path: String,
    pub kind: Kind,
    /// The remote version the content derives from.
    pub base: Option<RemoteVersion>,
    /// Base bytes at or past this offset read as zeros (after a truncate).
    pub base_valid_len: u64,
    pub staging: Option<StagingFile>,
    pub size: u64,
    pub attrs: StoredAttrs,
    pub ctime: SystemTime,
    /// Content differs from the store (and attributes with it).
    pub dirty: bool,
    /// Only attributes differ from the store: written by a metadata copy shortly after the
    /// change, or folded into a following rename's copy (the rsync sequence), or at unmount.
    pub attrs_dirty: bool,
    /// Unlinked while open: never uploaded again, dropped at last close.
    pub unlinked: bool,
    /// The multipart upload streaming this file's parts while it is written.
    pub stream: Option<PartStream>,
    /// Starting a stream failed once: the file is uploaded whole at close.
    pub no_stream: bool,
    /// `attrs.mtime` was set by the user (utimes) after the last write, not by a write.
    pub mtime_explicit: bool,
    /// Parts held in memory instead of staging, oldest first (see `part_buffer.rs`).
    pub parts: Vec<PartBuffer>,
}

impl FileState {
    pub fn new_empty(path: String, attrs: StoredAttrs) -> Self {
        FileState {
            path,
            kind: Kind::File,
            base: None,
            base_valid_len: 0,
            staging: None,
            size: 0,
            attrs,
            ctime: SystemTime::now(),
            dirty: true,
            attrs_dirty: false,
            unlinked: false,
            stream: None,
            no_stream: false,
            mtime_explicit: false,
            parts: Vec::new(),
        }
    }

    pub fn from_remote(path: String, base: RemoteVersion, attrs: StoredAttrs) -> Self {
        let size = base.plaintext_len;
        FileState {
            path,
            kind: Kind::File,
            base_valid_len: size,
            base: Some(base),
            staging: None,
            size,
            attrs,
            ctime: attrs.mtime,
            dirty: false,
            attrs_dirty: false,
            unlinked: false,
            stream: None,
            no_stream: false,
            mtime_explicit: false,
            parts: Vec::new(),
        }
    }

    /// Whether anything (content or attributes) still has to reach the store.
    pub fn needs_sync(&self) -> bool {
        (self.dirty || self.attrs_dirty) && !self.unlinked
    }

    /// Whether reads must go through the overlay (some content is local).
    pub fn has_local_content(&self) -> bool {
        match &self.base {
            None => true,
            Some(b) => {
                self.size != b.plaintext_len
                    || self.base_valid_len < b.plaintext_len
                    || self.staging.as_ref().is_some_and(|s| !s.is_empty())
                    || !self.parts.is_empty()
            }
        }
    }

    /// The logical content of block `index`, `block_size` bytes (zeros past the end).
    pub async fn logical_block(&self, index: u64, reader: &BlockReader) -> FsResult<Vec<u8>> {
        let bs = reader.block_size() as u64;
        if let Some(part) = self.parts.iter().find(|p| p.holds_block(index)) {
            return Ok(part.block(index).to_vec());
        }
        if let Some(staging) = &self.staging
            && let Some(b) = staging.read_block(index)?
        {
            return Ok(b);
        }
        let mut block = vec![0u8; bs as usize];
        if let Some(base) = &self.base {
            let start = index * bs;
            if start < self.base_valid_len {
                // Fetch a run of base blocks at once: uploads and reads walk them in order,
                // so the next ones come from the block cache instead of a GET each.
                let last_base = (self.base_valid_len - 1) / bs;
                let run_end = (index + BASE_FETCH_RUN_BLOCKS - 1).min(last_base);
                let got = reader.blocks(base, index, run_end).await?;
                let valid = (self.base_valid_len - start).min(bs) as usize;
                if let Some(b) = got.first() {
                    let n = valid.min(b.len());
                    block[..n].copy_from_slice(&b[..n]);
                }
            }
        }
        Ok(block)
    }

    fn staging_mut(&mut self, area: &StagingArea, block_size: usize) -> FsResult<&mut StagingFile> {
        if self.staging.is_none() {
            self.staging = Some(area.create(block_size)?);
        }
        self.staging
            .as_mut()
            .ok_or_else(|| FsError::Staging("staging file missing".into()))
    }

    pub async fn read(&self, offset: u64, len: u64, reader: &BlockReader) -> FsResult<Vec<u8>> {
        if offset >= self.size || len == 0 {
            return Ok(Vec::new());
        }
        let end = (offset + len).min(self.size);
        let bs = reader.block_size() as u64;
        let mut out = Vec::with_capacity((end - offset) as usize);
        let mut pos = offset;
        while pos < end {
            let index = pos / bs;
            let block = self.logical_block(index, reader).await?;
            let from = (pos - index * bs) as usize;
            let to = ((end - index * bs).min(bs)) as usize;
            out.extend_from_slice(&block[from..to]);
            pos = index * bs + to as u64;
        }
        Ok(out)
    }

    pub async fn write(
        &mut self,
        offset: u64,
        data: &[u8],
        reader: &BlockReader,
        area: &StagingArea,
    ) -> FsResult<()> {
        if data.is_empty() {
            return Ok(());
        }
        let bs = reader.block_size() as u64;
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or(FsError::TooLarge)?;
        let part_bytes = blocks_per_part(reader.block_size()) * bs;
        let mut pos = offset;
        while pos < end {
            // One multipart part at a time: each lands in its buffer or in staging.
            let seg_end = end.min((pos / part_bytes + 1) * part_bytes);
            let seg = &data[(pos - offset) as usize..(seg_end - offset) as usize];
            if !self.write_buffered(pos, seg, reader.block_size(), area)? {
                self.write_staged(pos, seg, reader, area).await?;
            }
            pos = seg_end;
            // Per segment: staging a buffered part stops at the size.
            self.size = self.size.max(pos);
        }
        self.attrs.mtime = SystemTime::now();
        self.mtime_explicit = false;
        self.ctime = self.attrs.mtime;
        self.dirty = true;
        Ok(())
    }

    /// Write `data` (within one part) into that part's buffer, starting one if the write
    /// continues a file that streams. False when the bytes must go to staging instead.
    fn write_buffered(
        &mut self,
        offset: u64,
        data: &[u8],
        block_size: u32,
        area: &StagingArea,
    ) -> FsResult<bool> {
        let bpp = blocks_per_part(block_size);
        let part = offset / (bpp * block_size as u64) + 1;
        if let Some(b) = self.parts.iter_mut().find(|b| u64::from(b.part) == part) {
            b.write(offset, data);
            return Ok(true);
        }
        let first_block = (part - 1) * bpp;
        let next_streamed = self.stream.as_ref().map_or(2, |s| u64::from(s.next_part));
        let eligible = part >= next_streamed
            && part < u64::from(MAX_PARTS)
            && offset >= self.size
            && self.base_valid_len == 0
            && !self.no_stream
            && !self.unlinked
            && !self
                .staging
                .as_ref()
                .is_some_and(|s| s.has_any(first_block..first_block + bpp));
        if !eligible {
            return Ok(false);
        }
        if self.parts.len() >= MAX_BUFFERED_PARTS {
            // The oldest did not leave (the stream is stuck on an earlier part): stage it.
            let oldest = self.parts.remove(0);
            self.stage_part(&oldest, area, block_size)?;
        }
        let mut b = PartBuffer::new(part as u32, first_block, bpp, block_size as usize);
        b.write(offset, data);
        self.parts.push(b);
        Ok(true)
    }

    /// Move every buffered part into staging (before anything but a sequential write).
    pub fn stage_buffered_parts(&mut self, area: &StagingArea, block_size: u32) -> FsResult<()> {
        for part in std::mem::take(&mut self.parts) {
            self.stage_part(&part, area, block_size)?;
        }
        Ok(())
    }

    fn stage_part(
        &mut self,
        part: &PartBuffer,
        area: &StagingArea,
        block_size: u32,
    ) -> FsResult<()> {
        let bs = block_size as u64;
        // Blocks at or past the end of the file read as zeros without being staged.
        let end_block = self.size.div_ceil(bs);
        let range = part.byte_range();
        let blocks = range.start / bs..(range.end / bs).min(end_block);
        let staging = self.staging_mut(area, block_size as usize)?;
        for index in blocks {
            staging.write_block(index, part.block(index))?;
        }
        Ok(())
    }

    /// Write `data` (within one block run) through staging, block by block.
    async fn write_staged(
        &mut self,
        offset: u64,
        data: &[u8],
        reader: &BlockReader,
        area: &StagingArea,
    ) -> FsResult<()> {
        let bs = reader.block_size() as u64;
        let end = offset + data.len() as u64;
        let mut pos = offset;
        while pos < end {
            let index = pos / bs;
            let block_start = index * bs;
            let from = (pos - block_start) as usize;
            let to = ((end - block_start).min(bs)) as usize;
            let src = &data[(pos - offset) as usize..(pos - offset) as usize + (to - from)];
            if from == 0 && to == bs as usize {
                // A whole block: no need for its old content.
                self.staging_mut(area, bs as usize)?
                    .write_block(index, src)?;
            } else {
                let mut block = self.logical_block(index, reader).await?;
                block[from..to].copy_from_slice(src);
                self.staging_mut(area, bs as usize)?
                    .write_block(index, &block)?;
            }
            pos = block_start + to as u64;
        }
        Ok(())
    }

    pub async fn truncate(
        &mut self,
        new_size: u64,
        reader: &BlockReader,
        area: &StagingArea,
    ) -> FsResult<()> {
        self.stage_buffered_parts(area, reader.block_size())?;
        let bs = reader.block_size() as u64;
        if new_size < self.size {
            let tail = new_size % bs;
            let keep_blocks = new_size.div_ceil(bs);
            if tail != 0 {
                // Zero the tail of the new last block so a later extension reads zeros.
                let index = new_size / bs;
                let mut block = self.logical_block(index, reader).await?;
                block[tail as usize..].fill(0);
                self.staging_mut(area, bs as usize)?
                    .write_block(index, &block)?;
            }
            if let Some(s) = self.staging.as_mut() {
                s.drop_from(keep_blocks);
            }
            self.base_valid_len = self.base_valid_len.min(new_size);
        }
        self.size = new_size;
        self.attrs.mtime = SystemTime::now();
        self.mtime_explicit = false;
        self.ctime = self.attrs.mtime;
        self.dirty = true;
        Ok(())
    }

    /// Whether reading or writing bytes `offset..offset+len` needs the streaming upload
    /// completed first (see `stream.rs`).
    pub fn stream_pins(&self, offset: u64, len: u64, block_size: u64) -> bool {
        self.stream.as_ref().is_some_and(|s| {
            let last = offset.saturating_add(len.max(1) - 1) / block_size;
            s.pins(offset / block_size, last)
        })
    }

    /// Bring every base block into staging (before the base object goes away). A streaming
    /// upload must have been completed first.
    pub async fn materialize(&mut self, reader: &BlockReader, area: &StagingArea) -> FsResult<()> {
        if self.stream.is_some() {
            return Err(FsError::Staging(
                "internal: materialize with an upload in progress".into(),
            ));
        }
        self.stage_buffered_parts(area, reader.block_size())?;
        let bs = reader.block_size() as u64;
        let n = self.base_valid_len.div_ceil(bs);
        for index in 0..n {
            if self.staging.as_ref().is_some_and(|s| s.has(index)) {
                continue;
            }
            let block = self.logical_block(index, reader).await?;
            self.staging_mut(area, bs as usize)?
                .write_block(index, &block)?;
        }
        self.base = None;
        self.base_valid_len = 0;
        Ok(())
    }
}

/// Seals and uploads files.
pub struct Uploader {
    pub store: DynStore,
    pub keys: Arc<VaultKeys>,
    /// Where streamed parts whose upload failed are kept until a retry.
    pub area: Arc<StagingArea>,
}

impl Uploader {
    /// The PUT options of an upload of `state` to `key`: `attrs` (its attribute metadata)
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

    /// Seal the logical blocks `blocks` of `state` (of `size` bytes) in order, after the
    /// header if `header` is given: one part's body.
    pub async fn seal_blocks(
        &self,
        key: &str,
        sealer: &ObjectSealer,
        state: &FileState,
        reader: &BlockReader,
        blocks: Range<u64>,
        header: Option<&[u8]>,
    ) -> FsResult<Vec<u8>> {
        let bs = reader.block_size();
        let size = state.size;
        let n_blocks = block_count(size, bs);
        let blocks = blocks.start..blocks.end.min(n_blocks);
        let mut body = Vec::with_capacity(
            sealed_run_len(blocks.end.saturating_sub(blocks.start), bs) as usize + HEADER_LEN,
        );
        if let Some(h) = header {
            body.extend_from_slice(h);
        }
        for index in blocks {
            let block = state.logical_block(index, reader).await?;
            let len = block_plain_len(index, size, bs);
            let at = body.len();
            body.extend_from_slice(&block[..len]);
            let tag = sealer
                .seal_block_in_place(index, &mut body[at..], index + 1 == n_blocks)
                .map_err(|e| FsError::Crypto {
                    key: key.to_string(),
                    source: e,
                })?;
            body.extend_from_slice(&tag);
        }
        Ok(body)
    }

    /// Upload the whole content of `state` to `key` (or complete its streaming upload); on
    /// success the state is clean and based on the new version.
    pub async fn upload(
        &self,
        key: &str,
        state: &mut FileState,
        reader: &BlockReader,
    ) -> FsResult<RemoteVersion> {
        let size = state.size;
        let (etag, carried, attrs_pending) = if state.stream.is_some() {
            self.finish_stream(key, state, reader).await?
        } else {
            let (etag, carried) = self.upload_whole(key, state, reader).await?;
            (etag, carried, false)
        };
        let version = RemoteVersion {
            key: key.to_string(),
            etag,
            plaintext_len: size,
            // A fresh upload has a fresh data key, wrapped in its header only.
            carried,
        };
        state.base = Some(version.clone());
        state.base_valid_len = size;
        if let Some(s) = state.staging.as_mut() {
            s.clear();
        }
        state.staging = None;
        state.parts.clear();
        state.dirty = false;
        state.attrs_dirty = attrs_pending;
        Ok(version)
    }

    async fn upload_whole(
        &self,
        key: &str,
        state: &mut FileState,
        reader: &BlockReader,
    ) -> FsResult<(String, Metadata)> {
        let sealer = ObjectSealer::new(&self.keys).map_err(|e| FsError::Crypto {
            key: key.to_string(),
            source: e,
        })?;
        let bs = reader.block_size();
        let size = state.size;
        let n_blocks = block_count(size, bs);
        let total = ciphertext_len(size, bs);
        let carried = carried_for(&sealer);
        let opts = self.put_options(key, state, to_metadata(state.kind, &state.attrs), &carried);
        let header = sealer.header(size);
        if total <= SINGLE_PUT_MAX {
            let body = self
                .seal_blocks(key, &sealer, state, reader, 0..n_blocks, Some(&header))
                .await?;
            let out = self
                .store
                .put(key, Bytes::from(body), opts)
                .await
                .map_err(|e| map_put_err(key, e))?;
            return Ok((out.etag, carried));
        }
        let blocks_per_part = blocks_per_part(bs);
        let n_parts = n_blocks.div_ceil(blocks_per_part);
        if n_parts > crate::store::MAX_PARTS as u64 {
            return Err(FsError::TooLarge);
        }
        let upload_id = self
            .store
            .create_multipart(key, opts)
            .await
            .map_err(|e| map_put_err(key, e))?;
        let state_ref = &*state;
        let result: FsResult<Vec<CompletedPart>> = stream::iter(0..n_parts)
            .map(|p| {
                let sealer = &sealer;
                let header = &header;
                let upload_id = upload_id.as_str();
                async move {
                    let blocks = p * blocks_per_part..(p + 1) * blocks_per_part;
                    let head = (p == 0).then_some(&header[..]);
                    let body = self
                        .seal_blocks(key, sealer, state_ref, reader, blocks, head)
                        .await?;
                    let part_number = (p + 1) as u32;
                    let etag = self
                        .store
                        .upload_part(key, upload_id, part_number, Bytes::from(body))
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
                let _ = self.store.abort_multipart(key, &upload_id).await;
                return Err(e);
            }
        };
        match self.store.complete_multipart(key, &upload_id, &parts).await {
            Ok(out) => Ok((out.etag, carried)),
            Err(e) => {
                let _ = self.store.abort_multipart(key, &upload_id).await;
                Err(map_put_err(key, e))
            }
        }
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

/// Blocks in one multipart part: whole blocks, about `PART_SIZE_TARGET` bytes.
pub fn blocks_per_part(block_size: u32) -> u64 {
    crate::crypto::format::blocks_per_part(PART_SIZE_TARGET, block_size)
}

pub(super) fn map_put_err(key: &str, e: crate::store::StoreError) -> FsError {
    match e {
        crate::store::StoreError::PreconditionFailed { .. } => FsError::Conflict {
            key: key.to_string(),
        },
        other => FsError::Store(other),
    }
}
