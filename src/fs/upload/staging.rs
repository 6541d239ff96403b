//! Local staging files: the modified blocks of files being written, sealed on disk.
//!
//! A staging file is an array of fixed-size slots, slot `i` holding block `i` of the file
//! sealed with the mount's ephemeral in-memory key ([`EphemeralKey`]); the block index and a
//! per-file id are the AAD, so slots cannot be swapped. Plaintext file data never reaches the
//! local disk, and a staging file is unreadable once the daemon that wrote it is gone. Files
//! are unlinked right after creation, so a crash leaves nothing behind.
//!
//! A [`PartStash`] keeps the bodies of streamed parts whose upload failed (already sealed
//! under the object's key) until a retry sends exactly those bytes again; it seals them under
//! the ephemeral key too, so everything local is sealed the same way.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::crypto::EphemeralKey;
use crate::crypto::ephemeral::SEAL_OVERHEAD;

use super::error::{UploadError, UploadResult};

/// Where staging files are created, and the key that seals them.
pub struct StagingArea {
    dir: PathBuf,
    key: Arc<EphemeralKey>,
    next_id: AtomicU64,
    /// Bytes of blocks staged in all files of this area.
    usage: Arc<AtomicU64>,
}

impl StagingArea {
    pub fn new(dir: &Path) -> UploadResult<Self> {
        std::fs::create_dir_all(dir).map_err(|e| {
            UploadError::Staging(format!("cannot create staging dir {}: {e}", dir.display()))
        })?;
        let key = EphemeralKey::generate()
            .map_err(|e| UploadError::Staging(format!("cannot create staging key: {e}")))?;
        Ok(StagingArea {
            dir: dir.to_path_buf(),
            key: Arc::new(key),
            next_id: AtomicU64::new(1),
            usage: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Plaintext bytes of all blocks staged right now (what local disk holds for dirty files).
    pub fn staged_bytes(&self) -> u64 {
        self.usage.load(Ordering::Relaxed)
    }

    pub fn create(&self, block_size: usize) -> UploadResult<StagingFile> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let file = tempfile::tempfile_in(&self.dir).map_err(|e| {
            UploadError::Staging(format!(
                "cannot create staging file in {}: {e}",
                self.dir.display()
            ))
        })?;
        Ok(StagingFile {
            file,
            id,
            key: self.key.clone(),
            block_size,
            present: BTreeSet::new(),
            usage: self.usage.clone(),
        })
    }

    /// A stash for the failed parts of one upload (its file is created on first use).
    pub fn part_stash(self: &Arc<Self>) -> PartStash {
        PartStash {
            area: self.clone(),
            file: None,
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            parts: BTreeMap::new(),
            end: 0,
        }
    }
}

/// The staged (modified) blocks of one file.
pub struct StagingFile {
    file: File,
    id: u64,
    key: Arc<EphemeralKey>,
    block_size: usize,
    present: BTreeSet<u64>,
    usage: Arc<AtomicU64>,
}

impl Drop for StagingFile {
    fn drop(&mut self) {
        self.forget(self.present.len());
    }
}

impl StagingFile {
    fn slot_offset(&self, index: u64) -> u64 {
        index * (self.block_size + SEAL_OVERHEAD) as u64
    }

    fn aad(&self, index: u64) -> [u8; 16] {
        let mut aad = [0u8; 16];
        aad[..8].copy_from_slice(&self.id.to_be_bytes());
        aad[8..].copy_from_slice(&index.to_be_bytes());
        aad
    }

    pub fn has(&self, index: u64) -> bool {
        self.present.contains(&index)
    }

    pub fn is_empty(&self) -> bool {
        self.present.is_empty()
    }

    /// Store a whole block (exactly `block_size` bytes).
    pub fn write_block(&mut self, index: u64, block: &[u8]) -> UploadResult<()> {
        debug_assert_eq!(block.len(), self.block_size);
        let sealed = self
            .key
            .seal(&self.aad(index), block)
            .map_err(|e| UploadError::Staging(format!("sealing a staged block: {e}")))?;
        self.file
            .write_all_at(&sealed, self.slot_offset(index))
            .map_err(|e| UploadError::Staging(format!("writing staging file: {e}")))?;
        if self.present.insert(index) {
            self.usage
                .fetch_add(self.block_size as u64, Ordering::Relaxed);
        }
        Ok(())
    }

    /// The block, if staged.
    pub fn read_block(&self, index: u64) -> UploadResult<Option<Vec<u8>>> {
        if !self.present.contains(&index) {
            return Ok(None);
        }
        let mut sealed = vec![0u8; self.block_size + SEAL_OVERHEAD];
        self.file
            .read_exact_at(&mut sealed, self.slot_offset(index))
            .map_err(|e| UploadError::Staging(format!("reading staging file: {e}")))?;
        let block = self.key.open(&self.aad(index), &sealed).map_err(|e| {
            UploadError::Staging(format!("staged block {index} failed to open: {e}"))
        })?;
        Ok(Some(block))
    }

    /// Drop every staged block at or after `index`, and the disk space past them.
    pub fn drop_from(&mut self, index: u64) {
        let keep: BTreeSet<u64> = self.present.range(..index).copied().collect();
        self.forget(self.present.len() - keep.len());
        self.present = keep;
        let _ = self.file.set_len(self.slot_offset(index));
    }

    /// Account for `blocks` blocks leaving the area.
    fn forget(&self, blocks: usize) {
        self.usage
            .fetch_sub((blocks * self.block_size) as u64, Ordering::Relaxed);
    }

    /// Whether every block of `blocks` is staged.
    pub fn has_all(&self, blocks: Range<u64>) -> bool {
        let want = blocks.end.saturating_sub(blocks.start);
        self.present.range(blocks).count() as u64 == want
    }

    /// Whether any block of `blocks` is staged.
    pub fn has_any(&self, blocks: Range<u64>) -> bool {
        self.present.range(blocks).next().is_some()
    }

    /// Drop the blocks of `blocks` and give their disk space back (a streamed part).
    pub fn release(&mut self, blocks: Range<u64>) {
        let staged: Vec<u64> = self.present.range(blocks.clone()).copied().collect();
        if staged.is_empty() {
            return;
        }
        self.forget(staged.len());
        for index in staged {
            self.present.remove(&index);
        }
        let start = self.slot_offset(blocks.start);
        let len = self.slot_offset(blocks.end) - start;
        punch_hole(&self.file, start, len);
    }

    /// Drop everything and release the disk space.
    pub fn clear(&mut self) {
        self.forget(self.present.len());
        self.present.clear();
        let _ = self.file.set_len(0);
    }
}

/// Sealed part bodies kept on local disk until their upload succeeds.
pub struct PartStash {
    area: Arc<StagingArea>,
    file: Option<File>,
    id: u64,
    /// Part number -> (offset, sealed record length, body length).
    parts: BTreeMap<u32, (u64, usize, usize)>,
    end: u64,
}

impl Drop for PartStash {
    fn drop(&mut self) {
        let bytes: usize = self.parts.values().map(|p| p.2).sum();
        self.area.usage.fetch_sub(bytes as u64, Ordering::Relaxed);
    }
}

impl PartStash {
    fn aad(&self, part: u32) -> [u8; 16] {
        let mut aad = [0u8; 16];
        aad[..8].copy_from_slice(&self.id.to_be_bytes());
        aad[12..].copy_from_slice(&part.to_be_bytes());
        aad
    }

    #[cfg(test)]
    pub fn has(&self, part: u32) -> bool {
        self.parts.contains_key(&part)
    }

    /// Keep `body` as part `part` (replacing an earlier body of that part).
    pub fn put(&mut self, part: u32, body: &[u8]) -> UploadResult<()> {
        let sealed = self
            .area
            .key
            .seal(&self.aad(part), body)
            .map_err(|e| UploadError::Staging(format!("sealing a stashed part: {e}")))?;
        if self.file.is_none() {
            let file = tempfile::tempfile_in(&self.area.dir).map_err(|e| {
                UploadError::Staging(format!(
                    "cannot create a part stash in {}: {e}",
                    self.area.dir.display()
                ))
            })?;
            self.file = Some(file);
        }
        let file = self
            .file
            .as_ref()
            .ok_or_else(|| UploadError::Staging("part stash file missing".into()))?;
        file.write_all_at(&sealed, self.end)
            .map_err(|e| UploadError::Staging(format!("writing a part stash: {e}")))?;
        self.remove(part);
        self.parts
            .insert(part, (self.end, sealed.len(), body.len()));
        self.end += sealed.len() as u64;
        self.area
            .usage
            .fetch_add(body.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// The body kept for part `part`.
    pub fn get(&self, part: u32) -> UploadResult<Option<Vec<u8>>> {
        let (Some(&(offset, len, _)), Some(file)) = (self.parts.get(&part), self.file.as_ref())
        else {
            return Ok(None);
        };
        let mut sealed = vec![0u8; len];
        file.read_exact_at(&mut sealed, offset)
            .map_err(|e| UploadError::Staging(format!("reading a part stash: {e}")))?;
        let body = self.area.key.open(&self.aad(part), &sealed).map_err(|e| {
            UploadError::Staging(format!("stashed part {part} failed to open: {e}"))
        })?;
        Ok(Some(body))
    }

    /// Forget part `part` (uploaded) and give its disk space back.
    pub fn remove(&mut self, part: u32) {
        if let Some((offset, len, body_len)) = self.parts.remove(&part) {
            self.area
                .usage
                .fetch_sub(body_len as u64, Ordering::Relaxed);
            if let Some(file) = &self.file {
                punch_hole(file, offset, len as u64);
            }
        }
    }
}

/// Free the disk space of a byte range of `file` (best effort: a file system without hole
/// punching keeps the space until the file is closed, which bounds nothing but loses nothing).
fn punch_hole(file: &File, offset: u64, len: u64) {
    let (Ok(off), Ok(len)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
        return;
    };
    // SAFETY: fallocate on a file descriptor this `File` owns, with no pointers involved.
    let rc = unsafe {
        libc::fallocate(
            file.as_raw_fd(),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            off,
            len,
        )
    };
    if rc != 0 {
        log::debug!(
            "punching a hole in a staging file failed: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_blocks_roundtrip_and_are_not_plaintext_on_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let area = StagingArea::new(dir.path()).expect("area");
        let mut f = area.create(4096).expect("file");
        let block = vec![b'Z'; 4096];
        f.write_block(3, &block).expect("write");
        assert_eq!(f.read_block(3).expect("read"), Some(block.clone()));
        assert_eq!(f.read_block(2).expect("read"), None);
        let mut raw = Vec::new();
        let mut file = f.file.try_clone().expect("clone");
        std::io::Read::read_to_end(&mut file, &mut raw).ok();
        let mut all = vec![0u8; 4 * (4096 + SEAL_OVERHEAD)];
        let n = f.file.read_at(&mut all, 0).expect("read raw");
        assert!(n > 0);
        assert!(!all.windows(64).any(|w| w.iter().all(|b| *b == b'Z')));
        f.drop_from(0);
        assert!(f.is_empty());
    }

    #[test]
    fn stashed_parts_roundtrip_are_counted_and_are_sealed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let area = Arc::new(StagingArea::new(dir.path()).expect("area"));
        let mut stash = area.part_stash();
        assert_eq!(stash.get(2).expect("get"), None);
        let body = vec![b'Q'; 100_000];
        stash.put(2, &body).expect("put");
        stash.put(3, &body[..10]).expect("put");
        assert_eq!(area.staged_bytes(), 100_010);
        assert_eq!(stash.get(2).expect("get"), Some(body.clone()));
        let mut raw = vec![0u8; 200_000];
        let n = stash
            .file
            .as_ref()
            .expect("file")
            .read_at(&mut raw, 0)
            .expect("raw");
        assert!(!raw[..n].windows(64).any(|w| w.iter().all(|b| *b == b'Q')));
        stash.remove(2);
        assert!(!stash.has(2) && stash.has(3));
        assert_eq!(area.staged_bytes(), 10);
        drop(stash);
        assert_eq!(area.staged_bytes(), 0);
    }
}
