//! Rewrapping every object's DEK under the current key generation, and checking that an old
//! generation can be retired.
//!
//! Per object: HEAD (an object whose metadata already holds a wrap for the current generation
//! is done: this is what makes an interrupted run resumable at the cost of one HEAD per
//! finished object), a ranged GET of the 116-byte header only (the wrapped DEK and salt live
//! there and nowhere else; no data block is ever read), then a CopyObject of the object onto
//! itself with `MetadataDirective::Replace` (its metadata plus `s3cryptfs-wrap`) and
//! `copy-source-if-match` on the ETag the header was read at. An object changed meanwhile
//! fails that condition and is reported as skipped, never overwritten.
//!
//! Objects above 5 GiB would need a multipart copy (UploadPartCopy), which the store
//! interface does not offer yet: they are reported as not rewrapped, and keep needing their
//! old generation.

use std::sync::Arc;

use futures::stream::{self, StreamExt};
use serde::Serialize;

use crate::crypto::VaultKeys;
use crate::crypto::format::record::{ATTR_RECORD_KEY, record_generation};
use crate::crypto::rewrap::{
    METADATA_WRAP_KEY, Rewrap, metadata_wrap_generation, rewrap_for_metadata, rewrap_from_metadata,
};
use crate::sealed::{SealedError, SealedStore};
use crate::store::{DynStore, ListPage, ListRequest, Metadata, ObjectInfo, Pager, StoreError};

use super::progress::Progress;
use super::{ToolError, ToolResult, is_file_object, is_name_object};

/// One object a run could not handle, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ObjectIssue {
    pub key: String,
    pub reason: String,
}

/// What a rewrap run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RewrapReport {
    /// The generation objects were rewrapped under.
    pub generation: u32,
    /// File objects looked at (directory markers and the vault config are not counted).
    pub examined: u64,
    pub rewrapped: u64,
    /// Sealed under, or already rewrapped to, the current generation.
    pub already_current: u64,
    /// Directory markers whose attribute record was sealed again under the current
    /// generation (one metadata copy each; they have no data key).
    pub markers_resealed: u64,
    /// Changed or deleted by someone else during the run: skipped, not overwritten.
    pub changed: Vec<ObjectIssue>,
    /// Unreadable (corrupt, foreign) or a store error.
    pub failed: Vec<ObjectIssue>,
}

impl RewrapReport {
    /// Whether every object now opens with the current generation.
    pub fn is_complete(&self) -> bool {
        self.changed.is_empty() && self.failed.is_empty()
    }
}

enum Outcome {
    Rewrapped,
    AlreadyCurrent,
    Changed(String),
    Failed(String),
}

/// The page of `pager`'s listing (no delimiter) after `token`, checked by the pager.
pub(crate) async fn list_page(
    store: &DynStore,
    pager: &mut Pager,
    token: Option<String>,
) -> ToolResult<ListPage> {
    let page = store
        .list(&ListRequest {
            prefix: pager.prefix().to_owned(),
            delimiter: None,
            continuation_token: token,
            max_keys: 1000,
        })
        .await;
    page.and_then(|page| pager.check(&page).map(|()| page))
        .map_err(|source| ToolError::Store {
            url: pager.prefix().to_owned(),
            source,
        })
}

/// Rewrap every file object under `prefix` to `keys`' current generation, `parallel` objects
/// at a time. Individual failures are collected in the report; only a failing LIST aborts.
pub async fn rewrap_objects(
    store: &DynStore,
    prefix: &str,
    keys: &VaultKeys,
    parallel: usize,
    progress: &Progress,
) -> ToolResult<RewrapReport> {
    let mut report = RewrapReport {
        generation: keys.current_generation(),
        ..RewrapReport::default()
    };
    let sealed = SealedStore::new(store.clone(), Arc::new(keys.clone()));
    let sealed = &sealed;
    let mut token = None;
    let mut pager = Pager::new(prefix);
    loop {
        let page = list_page(store, &mut pager, token.take()).await?;
        let objects: Vec<ObjectInfo> = page
            .objects
            .into_iter()
            .filter(|o| is_file_object(prefix, &o.key) || is_marker(prefix, &o.key))
            .filter(|o| !is_name_object(keys, &o.key))
            .collect();
        let outcomes: Vec<(String, Outcome)> = stream::iter(objects)
            .map(|o| async move {
                let outcome = if o.key.ends_with('/') {
                    reseal_marker(sealed, &o.key).await
                } else {
                    rewrap_one(sealed, &o.key).await
                };
                progress.inc(0);
                if let Outcome::Changed(r) | Outcome::Failed(r) = &outcome {
                    progress.println(&format!("{}: {r}", o.key));
                }
                (o.key, outcome)
            })
            .buffer_unordered(parallel.max(1))
            .collect()
            .await;
        for (key, outcome) in outcomes {
            if !key.ends_with('/') {
                report.examined += 1;
            }
            match outcome {
                Outcome::Rewrapped if key.ends_with('/') => report.markers_resealed += 1,
                Outcome::AlreadyCurrent if key.ends_with('/') => {}
                Outcome::Rewrapped => report.rewrapped += 1,
                Outcome::AlreadyCurrent => report.already_current += 1,
                Outcome::Changed(reason) => report.changed.push(ObjectIssue { key, reason }),
                Outcome::Failed(reason) => report.failed.push(ObjectIssue { key, reason }),
            }
        }
        match page.next_continuation_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    for list in [&mut report.changed, &mut report.failed] {
        list.sort_by(|a, b| a.key.cmp(&b.key));
    }
    Ok(report)
}

fn changed(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::PreconditionFailed { .. } | StoreError::NotFound { .. }
    )
}

/// Whether a sealed-object request failed because the object changed or went away.
fn sealed_changed(e: &SealedError) -> bool {
    match e {
        SealedError::Changed { .. } => true,
        SealedError::Store(e) => changed(e),
        _ => false,
    }
}

const CHANGED: &str = "changed or deleted during the rewrap: skipped (run again with --resume)";

async fn rewrap_one(sealed: &SealedStore, key: &str) -> Outcome {
    let keys = sealed.keys();
    let current = keys.current_generation();
    let info = match sealed.store().head(key).await {
        Ok(info) => info,
        Err(e) if changed(&e) => return Outcome::Changed(CHANGED.into()),
        Err(e) => return Outcome::Failed(format!("HEAD failed: {e}")),
    };
    let metadata = info.metadata.clone().unwrap_or_default();
    // The attribute record is sealed again under the current generation in the same copy.
    let record = match sealed.resealed_record(key, &metadata) {
        Ok(r) => r,
        Err(e) => return Outcome::Failed(format!("attribute record: {e}")),
    };
    if metadata_wrap_generation(&metadata) == Some(current) && record.is_none() {
        return Outcome::AlreadyCurrent;
    }
    // Objects this build uploaded carry a copy of their header's key fields: no GET at all.
    // Older objects, or a copy that does not open, fall back to reading the real header.
    let from_copy = match rewrap_from_metadata(keys, &metadata) {
        Some(Ok(r)) => Some(r),
        Some(Err(e)) => {
            log::debug!("{key}: header copy in metadata not usable ({e}); reading the header");
            None
        }
        None => None,
    };
    let rewrap = match from_copy {
        Some(r) => Ok(r),
        None => {
            let header = match sealed.fetch_header(key, Some(&info.etag)).await {
                Ok(fetched) => fetched.header,
                Err(e) if sealed_changed(&e) => return Outcome::Changed(CHANGED.into()),
                Err(e) => return Outcome::Failed(format!("reading the header failed: {e}")),
            };
            rewrap_for_metadata(keys, &header, info.size, Some(&metadata))
        }
    };
    let mut entries = Metadata::new();
    match rewrap {
        Ok(Rewrap::AlreadyCurrent) if record.is_none() => return Outcome::AlreadyCurrent,
        Ok(Rewrap::AlreadyCurrent) => {}
        Ok(Rewrap::Wrapped { value, .. }) => {
            entries.insert(METADATA_WRAP_KEY.to_owned(), value);
        }
        Err(e) => return Outcome::Failed(format!("not rewrapped: {e}")),
    }
    entries.extend(record);
    match sealed.add_crypto_metadata(&info, entries).await {
        Ok(_) => {
            log::debug!("rewrapped {key} under generation {current}");
            Outcome::Rewrapped
        }
        Err(e) if sealed_changed(&e) => Outcome::Changed(CHANGED.into()),
        Err(e) => Outcome::Failed(format!("copy failed: {e}")),
    }
}

/// A directory marker of the vault under `prefix` (not the vault's own directory).
fn is_marker(prefix: &str, key: &str) -> bool {
    key.strip_prefix(prefix)
        .is_some_and(|r| !r.is_empty() && r.ends_with('/') && !r.starts_with(".s3cryptfs/"))
}

/// A directory marker's attribute record, sealed again under the current generation.
async fn reseal_marker(sealed: &SealedStore, key: &str) -> Outcome {
    let info = match sealed.store().head(key).await {
        Ok(info) => info,
        Err(e) if changed(&e) => return Outcome::Changed(CHANGED.into()),
        Err(e) => return Outcome::Failed(format!("HEAD failed: {e}")),
    };
    let metadata = info.metadata.clone().unwrap_or_default();
    let entries = match sealed.resealed_record(key, &metadata) {
        Ok(Some((k, v))) => Metadata::from([(k, v)]),
        Ok(None) => return Outcome::AlreadyCurrent,
        Err(e) => return Outcome::Failed(format!("attribute record: {e}")),
    };
    match sealed.add_crypto_metadata(&info, entries).await {
        Ok(_) => Outcome::Rewrapped,
        Err(e) if sealed_changed(&e) => Outcome::Changed(CHANGED.into()),
        Err(e) => Outcome::Failed(format!("copy failed: {e}")),
    }
}

/// What stands in the way of retiring a generation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RetireCheck {
    pub generation: u32,
    pub examined: u64,
    /// Objects that open with the generation and not without it.
    pub blockers: Vec<ObjectIssue>,
    /// Objects that do not open even with every generation (they do not block retirement,
    /// but are reported).
    pub unreadable: Vec<ObjectIssue>,
}

/// Check every file object under `prefix`: which would stop opening if `generation` were
/// removed from `keys`. Reads each object's header (and metadata) only.
pub async fn check_retire(
    store: &DynStore,
    prefix: &str,
    keys: &VaultKeys,
    generation: u32,
    parallel: usize,
    progress: &Progress,
) -> ToolResult<RetireCheck> {
    let without = keys.without_generation(generation)?;
    let without = &without;
    let sealed = SealedStore::new(store.clone(), Arc::new(keys.clone()));
    let sealed = &sealed;
    let mut check = RetireCheck {
        generation,
        ..RetireCheck::default()
    };
    let mut token = None;
    let mut pager = Pager::new(prefix);
    loop {
        let page = list_page(store, &mut pager, token.take()).await?;
        let keys_to_check: Vec<String> = page
            .objects
            .into_iter()
            .filter(|o| is_file_object(prefix, &o.key) || is_marker(prefix, &o.key))
            .filter(|o| !is_name_object(keys, &o.key))
            .map(|o| o.key)
            .collect();
        let results: Vec<(String, Option<Result<(), String>>)> = stream::iter(keys_to_check)
            .map(|key| async move {
                let r = retire_check_one(sealed, without, &key).await;
                progress.inc(0);
                (key, r)
            })
            .buffer_unordered(parallel.max(1))
            .collect()
            .await;
        for (key, result) in results {
            if !key.ends_with('/') {
                check.examined += 1;
            }
            match result {
                None => {}
                Some(Ok(())) => check.blockers.push(ObjectIssue {
                    key,
                    reason: format!(
                        "needs key generation {generation} (not rewrapped; run `key rotate \
                         --rewrap --resume`)"
                    ),
                }),
                Some(Err(reason)) => check.unreadable.push(ObjectIssue { key, reason }),
            }
        }
        match page.next_continuation_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    check.blockers.sort_by(|a, b| a.key.cmp(&b.key));
    check.unreadable.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(check)
}

/// `None`: fine without the generation. `Some(Ok)`: needs it. `Some(Err)`: unreadable anyway
/// (or could not be checked).
async fn retire_check_one(
    sealed: &SealedStore,
    without: &VaultKeys,
    key: &str,
) -> Option<Result<(), String>> {
    if key.ends_with('/') {
        // A directory marker has no header: only its record names a generation.
        return match sealed.store().head(key).await {
            Ok(info) => record_needs(info.metadata.as_ref(), sealed, without),
            Err(StoreError::NotFound { .. }) => None,
            Err(e) => Some(Err(format!("could not be checked: {e}"))),
        };
    }
    let fetched = match sealed.fetch_header(key, None).await {
        Ok(fetched) => fetched,
        Err(SealedError::Changed { .. }) => return None,
        Err(e) => return Some(Err(format!("could not be checked: {e}"))),
    };
    if fetched.open(without).is_ok() {
        return record_needs(fetched.info.metadata.as_ref(), sealed, without);
    }
    match fetched.open(sealed.keys()) {
        Ok(_) => Some(Ok(())),
        Err(e) => Some(Err(format!("unreadable with any generation: {e}"))),
    }
}

/// Whether an object's attribute record needs a generation `without` lacks (its record was
/// not resealed by a rewrap).
fn record_needs(
    metadata: Option<&Metadata>,
    sealed: &SealedStore,
    without: &VaultKeys,
) -> Option<Result<(), String>> {
    let value = metadata?.get(ATTR_RECORD_KEY)?;
    let g = record_generation(value)?;
    let needs = !without.generations().contains(&g) && sealed.keys().generations().contains(&g);
    needs.then_some(Ok(()))
}
