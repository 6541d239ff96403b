//! What the file system is doing, readable without waiting for it: the counters and per-file
//! upload states that `s3cryptfs status`, the Prometheus metrics and systemd's `STATUS=` line
//! report (the report itself is built in `status.rs`).
//!
//! An upload holds its file's state lock for as long as it runs, so a report cannot lock the
//! file to ask. Each open file therefore carries a [`FileActivity`] of its own, shared by the
//! file's state and the open-file table: the upload path writes it (started, stored, failed
//! with this error), a report reads it. Counters are lock-free atomics, since every upload and
//! every cached read records.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// How many conflict copy names a report keeps (the newest).
const RECENT_CONFLICTS: usize = 16;

/// Where a file with data not yet in the store stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UploadState {
    /// Written, not uploaded yet (open, or waiting for its close).
    Dirty,
    /// An upload is under way.
    Uploading,
    /// The last upload failed; it is retried with backoff (and stays failed while a retry
    /// runs, until one succeeds).
    Failed,
}

impl UploadState {
    pub fn name(self) -> &'static str {
        match self {
            UploadState::Dirty => "dirty",
            UploadState::Uploading => "uploading",
            UploadState::Failed => "failed",
        }
    }
}

#[derive(Debug, Default)]
struct FileActivityInner {
    path: String,
    bytes: u64,
    uploading: bool,
    last_error: Option<String>,
}

/// The upload state of one open file, as its upload path last left it.
#[derive(Debug, Default)]
pub struct FileActivity {
    inner: Mutex<FileActivityInner>,
}

/// One file with data not yet stored, as a report shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingFile {
    /// Path inside the mount.
    pub path: String,
    pub state: UploadState,
    /// Plaintext size of the file (what its upload will send, sealed).
    pub bytes: u64,
    /// The error of the last failed upload, if it failed.
    #[serde(default)]
    pub last_error: Option<String>,
}

impl FileActivity {
    fn lock(&self) -> std::sync::MutexGuard<'_, FileActivityInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The file now has `bytes` bytes and is named `path`.
    pub fn written(&self, path: &str, bytes: u64) {
        let mut a = self.lock();
        if a.path != path {
            a.path = path.to_owned();
        }
        a.bytes = bytes;
    }

    pub fn upload_started(&self, path: &str, bytes: u64) {
        self.written(path, bytes);
        self.lock().uploading = true;
    }

    /// The upload ended: stored (`None`) or failed with `error`.
    pub fn upload_ended(&self, error: Option<String>) {
        let mut a = self.lock();
        a.uploading = false;
        if error.is_some() || a.last_error.is_some() {
            a.last_error = error;
        }
    }

    /// The report of a file that has data to upload: `dirty` is the file's own word when its
    /// state could be read, `None` while it is busy (then the last known state is shown).
    pub fn pending(&self, dirty: Option<(bool, &str, u64)>) -> Option<PendingFile> {
        let mut a = self.lock();
        if let Some((dirty, path, bytes)) = dirty {
            if !dirty {
                a.last_error = None;
                return None;
            }
            if a.path != path {
                a.path = path.to_owned();
            }
            a.bytes = bytes;
        } else if a.path.is_empty() {
            // Busy with a first write and never reported: nothing known to show yet.
            return None;
        }
        // A file whose last upload failed stays failed while it is retried.
        let state = if a.last_error.is_some() {
            UploadState::Failed
        } else if a.uploading {
            UploadState::Uploading
        } else {
            UploadState::Dirty
        };
        Some(PendingFile {
            path: a.path.clone(),
            state,
            bytes: a.bytes,
            last_error: a.last_error.clone(),
        })
    }
}

/// Mount-wide counters since the mount started.
#[derive(Debug, Default)]
pub struct Activity {
    uploads_completed: AtomicU64,
    upload_failures: AtomicU64,
    uploaded_bytes: AtomicU64,
    conflict_copies: AtomicU64,
    recent_conflicts: Mutex<VecDeque<String>>,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
}

/// A copy of [`Activity`]'s counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityCounts {
    pub uploads_completed: u64,
    pub upload_failures: u64,
    /// Plaintext bytes of the files stored.
    pub uploaded_bytes: u64,
    pub conflict_copies: u64,
    /// Paths of the newest conflict copies, oldest first.
    pub recent_conflict_copies: Vec<String>,
    pub cache_hits: u64,
    pub cache_misses: u64,
}

impl Activity {
    pub fn upload_stored(&self, bytes: u64) {
        self.uploads_completed.fetch_add(1, Ordering::Relaxed);
        self.uploaded_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn upload_failed(&self) {
        self.upload_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// A conflict copy was made at `path`.
    pub fn conflict_copy(&self, path: &str) {
        self.conflict_copies.fetch_add(1, Ordering::Relaxed);
        let mut recent = self
            .recent_conflicts
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if recent.len() == RECENT_CONFLICTS {
            recent.pop_front();
        }
        recent.push_back(path.to_owned());
    }

    /// A read found its blocks in the cache (`true`) or had to fetch some.
    pub fn cache_lookup(&self, hit: bool) {
        let counter = if hit {
            &self.cache_hits
        } else {
            &self.cache_misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn counts(&self) -> ActivityCounts {
        ActivityCounts {
            uploads_completed: self.uploads_completed.load(Ordering::Relaxed),
            upload_failures: self.upload_failures.load(Ordering::Relaxed),
            uploaded_bytes: self.uploaded_bytes.load(Ordering::Relaxed),
            conflict_copies: self.conflict_copies.load(Ordering::Relaxed),
            recent_conflict_copies: self
                .recent_conflicts
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .cloned()
                .collect(),
            cache_hits: self.cache_hits.load(Ordering::Relaxed),
            cache_misses: self.cache_misses.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_goes_dirty_uploading_failed_clean() {
        let a = FileActivity::default();
        assert_eq!(a.pending(None), None, "nothing known yet");
        let dirty = a.pending(Some((true, "d/f", 10))).expect("dirty");
        assert_eq!((dirty.state, dirty.bytes), (UploadState::Dirty, 10));
        a.upload_started("d/g", 12);
        let up = a.pending(None).expect("busy uploading");
        assert_eq!(
            (up.state, up.path.as_str()),
            (UploadState::Uploading, "d/g")
        );
        a.upload_ended(Some("unreachable".into()));
        let failed = a.pending(Some((true, "d/g", 12))).expect("failed");
        assert_eq!(failed.state, UploadState::Failed);
        assert_eq!(failed.last_error.as_deref(), Some("unreachable"));
        a.upload_started("d/g", 12);
        assert_eq!(
            a.pending(None).expect("retrying").state,
            UploadState::Failed,
            "failed until a retry succeeds"
        );
        a.upload_ended(None);
        assert_eq!(a.pending(Some((false, "d/g", 12))), None);
    }

    #[test]
    fn conflict_names_are_bounded() {
        let a = Activity::default();
        for i in 0..40 {
            a.conflict_copy(&format!("f{i}"));
        }
        let c = a.counts();
        assert_eq!(c.conflict_copies, 40);
        assert_eq!(c.recent_conflict_copies.len(), RECENT_CONFLICTS);
        assert_eq!(
            c.recent_conflict_copies.last().map(String::as_str),
            Some("f39")
        );
    }
}
