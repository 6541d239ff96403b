//! The upload component: the state of open files and everything that makes a file durable.
//!
//! A file being written is its *base* (the remote version it was opened from, if any) overlaid
//! with blocks held locally; `close`/`fsync` seal every block under a fresh data key and upload
//! the whole object. How the parts fit:
//!
//! - `file`: [`FileState`], the overlay (base + staged blocks + part buffers), writes and
//!   truncation on it. [`OpenFile`] is that state shared by the handles of one inode.
//! - `staging`: sealed local staging files (never plaintext on disk) and the stash of failed
//!   streamed parts. `part_buffer`: multipart part geometry, and the part a sequential writer
//!   fills, in memory.
//! - `body`: the [`Uploader`] (encrypted-object seam, staging area) and sealing a run of
//!   logical blocks into a body. Every upload seals through it.
//! - `whole`: one PUT or a multipart upload at close. `stream`: the parts of a file written
//!   front to back leave while it is written, completed at close; `part_stream` is one such
//!   upload's bookkeeping (parts sent, failed, stashed), which `FileState` holds.
//!
//! This file joins them: [`Uploader::write`] (write, then stream what is ready) and
//! [`Uploader::upload`] (complete the stream or upload whole). The files depend on each other
//! one way only: `part_stream` < `file` < `body` < `whole`, `stream` < this file.
//! Errors are `UploadError`s, each turned into an `FsError` (and so an errno) in `error.rs`.

mod body;
mod error;
mod file;
mod part_buffer;
mod part_stream;
mod staging;
mod stream;
mod whole;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

pub use body::Uploader;
use error::UploadResult;
pub use file::FileState;
pub use staging::StagingArea;

use super::activity::FileActivity;
use super::read::{BlockReader, RemoteVersion};

/// An open file: its shared state and how many handles refer to it.
pub(crate) struct OpenFile {
    pub state: tokio::sync::Mutex<FileState>,
    pub handles: AtomicU64,
    /// The state's [`FileActivity`], readable while an upload holds the state.
    pub activity: Arc<FileActivity>,
}

impl OpenFile {
    pub fn new(state: FileState, handles: u64) -> Self {
        OpenFile {
            activity: state.activity.clone(),
            state: tokio::sync::Mutex::new(state),
            handles: AtomicU64::new(handles),
        }
    }
}

impl Uploader {
    /// Write `data` at `offset` into `state` (the file at object key `key`), a part at a time,
    /// so that each part of a streamed upload leaves as soon as the file extends past it.
    pub async fn write(
        &self,
        key: &str,
        state: &mut FileState,
        offset: u64,
        data: &[u8],
        reader: &BlockReader,
    ) -> UploadResult<()> {
        let part_bytes = part_buffer::part_bytes(reader.block_size());
        let mut pos = 0;
        while pos < data.len() {
            let at = offset + pos as u64;
            let n = ((at / part_bytes + 1) * part_bytes - at).min((data.len() - pos) as u64);
            let chunk = &data[pos..pos + n as usize];
            state.write(at, chunk, reader, &self.area).await?;
            pos += n as usize;
            if !state.unlinked {
                self.stream_ready_parts(key, state, reader).await;
            }
        }
        Ok(())
    }

    /// Upload the whole content of `state` to `key` (or complete its streaming upload); on
    /// success the state is clean and based on the new version.
    pub async fn upload(
        &self,
        key: &str,
        state: &mut FileState,
        reader: &BlockReader,
    ) -> UploadResult<RemoteVersion> {
        let size = state.size;
        let (etag, carried, salt, attrs_pending) = if state.stream.is_some() {
            self.finish_stream(key, state, reader).await?
        } else {
            let (etag, carried, salt) = self.upload_whole(key, state, reader).await?;
            (etag, carried, salt, false)
        };
        let version = RemoteVersion {
            key: key.to_string(),
            etag,
            plaintext_len: size,
            // A fresh upload has a fresh data key, wrapped in its header only.
            carried,
            content_salt: Some(salt),
        };
        state.uploaded(version.clone(), attrs_pending);
        Ok(version)
    }
}
