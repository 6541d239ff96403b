//! Two writers, one file: what happens when another client replaced an object while this mount
//! had it open for writing (its upload carried `If-Match` on the version it was opened from,
//! and the store refused it).
//!
//! Nothing acknowledged is lost and nothing is thrown away: both versions are kept, one at the
//! name and one next to it as `NAME.conflict-HOST-TIME` (a name no object has yet), the way
//! file-sync tools keep both sides, and one log line names both objects.
//!
//! - A file uploaded whole at `close`/`fsync` (the usual case): the other client's version
//!   stays at the name (its `close` was acknowledged first) and this mount's content becomes
//!   the conflict copy, sealed from local data. The `close`/`fsync` fails with ESTALE and the
//!   handle is stale: further writes through it fail too, so they can neither overwrite the
//!   other version nor be lost.
//! - A file streamed to the store while it was written: its parts already left, so its content
//!   cannot be sealed again under another name. The other version is copied server-side to
//!   the conflict name (only if it is still the version found), then this upload completes at
//!   the name on that version. Both are kept; the two sides trade places, and this `close`
//!   succeeds, since its data is stored where the application wrote it.
//!
//! Whatever fails on the way (the store unreachable, the object changed again) leaves the data
//! where it was, to be tried again like any failed upload.

use super::Fs;
use super::error::{FsError, FsResult};
use super::inode::{join, parent_of};
use super::read::RemoteVersion;
use super::upload::FileState;
use crate::store::{CopyOptions, ObjectInfo, StoreError};

/// Conflict names tried for one conflict (same second, same host) before giving up.
const NAME_ATTEMPTS: u32 = 16;
/// Longest name a directory entry may have (NAME_MAX).
const NAME_MAX: usize = 255;

impl Fs {
    /// The upload of `st` (based on `old`) was refused because another client replaced its
    /// object: keep both versions (see the module comment).
    pub(super) async fn resolve_conflict(
        &self,
        st: &mut FileState,
        old: Option<RemoteVersion>,
    ) -> FsResult<()> {
        if st.stream.is_some() {
            self.resolve_streamed_conflict(st, old).await
        } else {
            Err(self.keep_conflict_copy(st).await)
        }
    }

    /// A whole upload lost: seal this content under a conflict name; the file becomes stale.
    /// Returns the error for `close`/`fsync`.
    async fn keep_conflict_copy(&self, st: &mut FileState) -> FsError {
        let key = self.key_of(&st.path);
        let lost = FsError::Conflict { key: key.clone() };
        let copy_path = match self.free_conflict_path(&st.path).await {
            Ok(p) => p,
            Err(e) => {
                log::error!(
                    "{key} was replaced by another client; no conflict name for this mount's \
                     version ({e}): the data stays staged and is tried again"
                );
                return lost;
            }
        };
        let copy_key = self.key_of(&copy_path);
        if let Err(e) = self.put_name_object(&copy_path).await {
            log::error!(
                "{key} was replaced by another client; storing the name of this mount's \
                 version's conflict copy failed ({e}): the data stays staged and is tried again"
            );
            return lost;
        }
        // The copy is a new object: the upload's If-Match applies only to the version's own
        // key, so none is sent.
        match self.uploader.upload(&copy_key, st, &self.reader).await {
            Ok(version) => {
                log::error!(
                    "{key} was replaced by another client: that version stays at the name, this \
                     mount's version is kept as {copy_key}"
                );
                self.activity.conflict_copy(&copy_path);
                self.ns.added(&copy_path, None).await;
                // The name holds the other client's version: ask the store next time.
                self.ns.added(&st.path, None).await;
                self.reader.forget(&version.key, &version.etag).await;
                st.stale = true;
            }
            Err(e) => log::error!(
                "{key} was replaced by another client; keeping this mount's version as \
                 {copy_key} failed ({e}): the data stays staged and is tried again"
            ),
        }
        lost
    }

    /// A streamed upload lost: copy the other version to a conflict name, then complete this
    /// upload on it.
    async fn resolve_streamed_conflict(
        &self,
        st: &mut FileState,
        old: Option<RemoteVersion>,
    ) -> FsResult<()> {
        let key = self.key_of(&st.path);
        let retry = |what: String| {
            log::error!(
                "{key} was replaced by another client while this mount streamed its new content; \
                 {what}: the upload stays open and is tried again"
            );
            FsError::Conflict { key: key.clone() }
        };
        let Some(upload_id) = st.stream.as_ref().map(|s| s.upload_id.clone()) else {
            return Err(retry("internal: no streamed upload".into()));
        };
        let other: Option<ObjectInfo> = match self.store.head(&key).await {
            Ok(info) => Some(info),
            Err(StoreError::NotFound { .. }) => None,
            Err(e) => return Err(retry(format!("cannot read the other version ({e})"))),
        };
        let mut copy_key = None;
        if let Some(info) = &other {
            let copy_path = self
                .free_conflict_path(&st.path)
                .await
                .map_err(|e| retry(format!("no conflict name ({e})")))?;
            let dest = self.key_of(&copy_path);
            self.put_name_object(&copy_path).await?;
            let metadata = self.resealed_metadata(&key, &dest, info)?;
            let opts = CopyOptions {
                metadata,
                source_if_match: Some(info.etag.clone()),
                source_size: Some(info.size),
            };
            if let Err(e) = self.store.copy(&key, &dest, opts).await {
                return Err(retry(format!(
                    "copying the other version to {dest} failed ({e})"
                )));
            }
            self.ns.added(&copy_path, None).await;
            self.activity.conflict_copy(&copy_path);
            copy_key = Some(dest);
        }
        let if_match = other.map(|info| info.etag);
        if let Err(e) = self
            .store
            .set_upload_if_match(&key, &upload_id, if_match)
            .await
        {
            return Err(retry(format!("cannot complete on the other version ({e})")));
        }
        match self.uploader.upload(&key, st, &self.reader).await {
            Ok(version) => {
                match &copy_key {
                    Some(c) => log::error!(
                        "{key} was replaced by another client while this mount streamed its new \
                         content: this mount's version is at the name, the other one is kept as \
                         {c}"
                    ),
                    None => log::warn!(
                        "{key} was deleted by another client while this mount streamed its new \
                         content: it is stored again"
                    ),
                }
                self.stored(st, old, version).await;
                Ok(())
            }
            Err(e) => Err(retry(format!("completing the upload failed ({e})"))),
        }
    }

    /// A name next to `path` for a conflict copy that no object has yet.
    async fn free_conflict_path(&self, path: &str) -> Result<String, String> {
        let host = host_name();
        let time = jiff::Timestamp::now()
            .strftime("%Y%m%dT%H%M%SZ")
            .to_string();
        let name = path.rsplit('/').next().unwrap_or_default();
        let parent = parent_of(path);
        for attempt in 0..NAME_ATTEMPTS {
            let candidate = join(parent, &conflict_name(name, &host, &time, attempt));
            match self.store.head(&self.key_of(&candidate)).await {
                Ok(_) => continue,
                Err(StoreError::NotFound { .. }) => return Ok(candidate),
                Err(e) => return Err(e.to_string()),
            }
        }
        Err(format!(
            "{NAME_ATTEMPTS} conflict names next to {path} are taken"
        ))
    }
}

/// This machine's host name, for conflict names ("host" if it has none that fits a name).
fn host_name() -> String {
    let name = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default();
    let clean: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        .take(64)
        .collect();
    if clean.is_empty() {
        "host".to_owned()
    } else {
        clean
    }
}

/// `NAME.conflict-HOST-TIME` (and `-N` from the second attempt on), the original name cut
/// (at a character boundary) so that the whole stays within NAME_MAX bytes.
pub(crate) fn conflict_name(name: &str, host: &str, time: &str, attempt: u32) -> String {
    let suffix = if attempt == 0 {
        format!(".conflict-{host}-{time}")
    } else {
        format!(".conflict-{host}-{time}-{attempt}")
    };
    let room = NAME_MAX.saturating_sub(suffix.len());
    let mut cut = name.len().min(room);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{suffix}", &name[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_names_fit_and_differ() {
        let a = conflict_name("s.txt", "box", "20261204T221500Z", 0);
        assert_eq!(a, "s.txt.conflict-box-20261204T221500Z");
        let b = conflict_name("s.txt", "box", "20261204T221500Z", 2);
        assert_eq!(b, "s.txt.conflict-box-20261204T221500Z-2");
        let long = "é".repeat(200);
        let c = conflict_name(&long, "box", "20261204T221500Z", 0);
        assert!(c.len() <= NAME_MAX, "{} bytes", c.len());
        assert!(c.ends_with(".conflict-box-20261204T221500Z"));
    }
}
