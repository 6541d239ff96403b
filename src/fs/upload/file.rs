//! The state of one open file: its content as an overlay of local blocks on a remote version,
//! and the writes and truncations that change it.
//!
//! A file being written is its *base* (the remote version it was opened from, if any) overlaid
//! with the blocks staged locally. Block `i` reads as: the staged block if present; else the
//! base block if it lies below `base_valid_len` (bytes past it read as zero); else zeros.
//! Truncation only moves `base_valid_len` and drops staged blocks, so no data is copied.
//! A sequential writer's parts `>= 2` are held in memory instead of staging
//! (`part_buffer.rs`) and stream out from there (`stream.rs`).

use std::sync::Arc;
use std::time::SystemTime;

use crate::store::MAX_PARTS;

use super::super::activity::FileActivity;
use super::super::attr::{Kind, StoredAttrs};
use super::super::memory::MemoryBudget;
use super::super::read::{BlockReader, Fetch, RemoteVersion};
use super::error::{UploadError, UploadResult};
use super::part_buffer::{MAX_BUFFERED_PARTS, PartBuffer, blocks_per_part};
use super::part_stream::PartStream;
use super::staging::{StagingArea, StagingFile};

/// Base blocks fetched together when an overlay needs one.
const BASE_FETCH_RUN_BLOCKS: u64 = 32;

/// Where [`FileState::write_buffered`] put a write.
enum Buffered {
    Written,
    /// Not a sequential write into a streamed part: it goes to staging.
    NotEligible,
    /// A new part buffer would pass the memory budget's share of part buffers.
    NoMemory,
}

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
    /// Another client replaced the object and this content went to a conflict copy
    /// (`fs/conflict.rs`): writes through this file fail with ESTALE.
    pub stale: bool,
    /// What a status report shows of this file while it is locked (`fs/activity.rs`).
    pub activity: Arc<FileActivity>,
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
            dirty: true,
            attrs_dirty: false,
            unlinked: false,
            stream: None,
            no_stream: false,
            mtime_explicit: false,
            parts: Vec::new(),
            stale: false,
            activity: Arc::default(),
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
            dirty: false,
            attrs_dirty: false,
            unlinked: false,
            stream: None,
            no_stream: false,
            mtime_explicit: false,
            parts: Vec::new(),
            stale: false,
            activity: Arc::default(),
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
    pub async fn logical_block(&self, index: u64, reader: &BlockReader) -> UploadResult<Vec<u8>> {
        self.logical_block_with(index, reader, Fetch::Wait).await
    }

    /// [`Self::logical_block`], fetching a block of the base as `mode` says.
    pub async fn logical_block_with(
        &self,
        index: u64,
        reader: &BlockReader,
        mode: Fetch,
    ) -> UploadResult<Vec<u8>> {
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
                let mut run_end = (index + BASE_FETCH_RUN_BLOCKS - 1).min(last_base);
                if mode == Fetch::Overdraw {
                    // One GET that fits the budget's slack: no overdraw holds slack while it
                    // waits for more (see `fs/memory.rs`).
                    let per_chunk = reader.blocks_per_chunk();
                    let chunk_end = (index / per_chunk + 1) * per_chunk - 1;
                    let n = reader.overdraw_run_blocks(BASE_FETCH_RUN_BLOCKS);
                    run_end = run_end.min(chunk_end).min(index + n - 1);
                }
                let got = reader.blocks(base, index, run_end, mode).await?;
                let valid = (self.base_valid_len - start).min(bs) as usize;
                if let Some(b) = got.first() {
                    let n = valid.min(b.len());
                    block[..n].copy_from_slice(&b[..n]);
                }
            }
        }
        Ok(block)
    }

    fn staging_mut(
        &mut self,
        area: &StagingArea,
        block_size: usize,
    ) -> UploadResult<&mut StagingFile> {
        if self.staging.is_none() {
            self.staging = Some(area.create(block_size)?);
        }
        self.staging
            .as_mut()
            .ok_or_else(|| UploadError::Staging("staging file missing".into()))
    }

    pub async fn read(&self, offset: u64, len: u64, reader: &BlockReader) -> UploadResult<Vec<u8>> {
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
    ) -> UploadResult<()> {
        if data.is_empty() {
            return Ok(());
        }
        let bs = reader.block_size() as u64;
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or(UploadError::TooLarge)?;
        let part_bytes = blocks_per_part(reader.block_size()) * bs;
        let mut pos = offset;
        while pos < end {
            // One multipart part at a time: each lands in its buffer or in staging.
            let seg_end = end.min((pos / part_bytes + 1) * part_bytes);
            let seg = &data[(pos - offset) as usize..(seg_end - offset) as usize];
            loop {
                match self.write_buffered(pos, seg, reader.block_size(), reader.memory(), area)? {
                    Buffered::Written => break,
                    // Without memory for a buffer, wait for this file's oldest part upload,
                    // which gives its buffer back; with none in flight, stage the bytes.
                    Buffered::NoMemory
                        if self.stream.as_ref().is_some_and(|s| s.inflight() > 0) =>
                    {
                        if let Some(s) = self.stream.as_mut() {
                            s.reap_one(self.staging.as_mut()).await;
                        }
                    }
                    Buffered::NoMemory | Buffered::NotEligible => {
                        self.write_staged(pos, seg, reader, area).await?;
                        break;
                    }
                }
            }
            pos = seg_end;
            // Per segment: staging a buffered part stops at the size.
            self.size = self.size.max(pos);
        }
        self.attrs.mtime = SystemTime::now();
        self.mtime_explicit = false;
        self.attrs.ctime = self.attrs.mtime;
        self.dirty = true;
        Ok(())
    }

    /// Write `data` (within one part) into that part's buffer, starting one if the write
    /// continues a file that streams and the memory budget has room for it.
    fn write_buffered(
        &mut self,
        offset: u64,
        data: &[u8],
        block_size: u32,
        memory: &MemoryBudget,
        area: &StagingArea,
    ) -> UploadResult<Buffered> {
        let bpp = blocks_per_part(block_size);
        let part = offset / (bpp * block_size as u64) + 1;
        if let Some(b) = self.parts.iter_mut().find(|b| u64::from(b.part) == part) {
            b.write(offset, data);
            return Ok(Buffered::Written);
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
            return Ok(Buffered::NotEligible);
        }
        if self.parts.len() >= MAX_BUFFERED_PARTS {
            // The oldest did not leave (the stream is stuck on an earlier part): stage it.
            let oldest = self.parts.remove(0);
            self.stage_part(&oldest, area, block_size)?;
        }
        let len = PartBuffer::len(bpp, block_size as usize);
        let Some(held) = memory.try_buffer(len) else {
            return Ok(Buffered::NoMemory);
        };
        let mut b = PartBuffer::new(
            part as u32,
            first_block,
            bpp,
            block_size as usize,
            Some(held),
        );
        b.write(offset, data);
        self.parts.push(b);
        Ok(Buffered::Written)
    }

    /// Move every buffered part into staging (before anything but a sequential write).
    pub fn stage_buffered_parts(
        &mut self,
        area: &StagingArea,
        block_size: u32,
    ) -> UploadResult<()> {
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
    ) -> UploadResult<()> {
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
    ) -> UploadResult<()> {
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
    ) -> UploadResult<()> {
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
        self.attrs.ctime = self.attrs.mtime;
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
    pub async fn materialize(
        &mut self,
        reader: &BlockReader,
        area: &StagingArea,
    ) -> UploadResult<()> {
        if self.stream.is_some() {
            return Err(UploadError::Staging(
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

    /// The upload of `version` succeeded: the state is clean and based on it (attributes
    /// changed since the upload started stay pending if `attrs_pending`).
    pub fn uploaded(&mut self, version: RemoteVersion, attrs_pending: bool) {
        self.base_valid_len = version.plaintext_len;
        self.base = Some(version);
        if let Some(s) = self.staging.as_mut() {
            s.clear();
        }
        self.staging = None;
        self.parts.clear();
        self.dirty = false;
        self.attrs_dirty = attrs_pending;
    }
}
