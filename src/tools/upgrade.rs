//! `upgrade`: give a vault made before attribute records (docs/FORMAT.md §2c) a record on every
//! object, then set the config's `attribute_records` marker (§6), after which an object
//! without a record is refused.
//!
//! Per file object: HEAD; an object whose record opens is done. Otherwise its header is read
//! and opened (so the record binds the real header salt and a size the commitment vouches
//! for), its plaintext `mode`/`uid`/`gid`/`mtime` metadata becomes the record (missing fields:
//! the running user, 0644, the Last-Modified time), and a CopyObject onto itself, conditioned
//! on the ETag read, replaces the plaintext attributes by the record. Directory markers the
//! same, without a header. An object whose record does not open is reported, never
//! overwritten: a record-less object's attributes are vouched for as they are, so run this
//! on a bucket you trust, as you trusted it before. The marker is set only when every object
//! has a record; an interrupted or partly failed run can simply be run again.

use std::sync::Arc;

use futures::stream::{self, StreamExt};
use serde::Serialize;

use crate::crypto::format::metadata::crypto_metadata;
use crate::crypto::format::record::{ATTR_RECORD_KEY, open_record};
use crate::crypto::{Secret, VaultKeys};
use crate::fs::attr::{self, Kind, StoredAttrs};
use crate::fs::{FsOptions, VAULT_DIR};
use crate::sealed::{SealedError, SealedStore};
use crate::store::{DynStore, Metadata, ObjectInfo, Pager, StoreError};
use crate::vault::{self, RollbackGuard};

use super::progress::Progress;
use super::rewrap::{ObjectIssue, list_page};
use super::{Access, Target, ToolError, ToolResult, is_name_object, open_target};

/// Objects upgraded at once.
const PARALLEL: usize = 8;

/// What an upgrade run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct UpgradeReport {
    /// Objects and directory markers looked at.
    pub examined: u64,
    /// Given a record by this run.
    pub upgraded: u64,
    /// Carrying a record that opens already.
    pub already: u64,
    /// Changed or deleted during the run: skipped.
    pub changed: Vec<ObjectIssue>,
    /// Unreadable, a record that does not open, or a store error.
    pub failed: Vec<ObjectIssue>,
    /// Whether the config now carries the `attribute_records` marker.
    pub marked: bool,
}

impl UpgradeReport {
    pub fn is_complete(&self) -> bool {
        self.changed.is_empty() && self.failed.is_empty()
    }
}

enum Outcome {
    Upgraded,
    Already,
    Changed,
    Failed(String),
}

fn sealed_outcome(e: SealedError) -> Outcome {
    match e {
        SealedError::Changed { .. } | SealedError::Store(StoreError::NotFound { .. }) => {
            Outcome::Changed
        }
        e => Outcome::Failed(e.to_string()),
    }
}

/// Give every object and directory marker under `prefix` an attribute record (the marker is
/// left to the caller).
pub async fn upgrade_objects(
    store: &DynStore,
    prefix: &str,
    keys: &VaultKeys,
    progress: &Progress,
) -> ToolResult<UpgradeReport> {
    let sealed = SealedStore::new(store.clone(), Arc::new(keys.clone()));
    let sealed = &sealed;
    // Attributes of objects that carry none: what a mount by the running user shows.
    let defaults = FsOptions::for_current_user(std::env::temp_dir());
    let defaults = &defaults;
    let mut report = UpgradeReport::default();
    let mut token = None;
    let mut pager = Pager::new(prefix);
    loop {
        let page = list_page(store, &mut pager, token.take()).await?;
        let keys_to_check: Vec<String> = page
            .objects
            .into_iter()
            .map(|o| o.key)
            .filter(|k| {
                k.strip_prefix(prefix)
                    .is_some_and(|r| !r.is_empty() && !r.starts_with(&format!("{VAULT_DIR}/")))
                    && !is_name_object(keys, k)
            })
            .collect();
        let outcomes: Vec<(String, Outcome)> = stream::iter(keys_to_check)
            .map(|key| async move {
                let outcome = upgrade_one(sealed, defaults, &key).await;
                progress.inc(0);
                if let Outcome::Failed(r) = &outcome {
                    progress.println(&format!("{key}: {r}"));
                }
                (key, outcome)
            })
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        for (key, outcome) in outcomes {
            report.examined += 1;
            match outcome {
                Outcome::Upgraded => report.upgraded += 1,
                Outcome::Already => report.already += 1,
                Outcome::Changed => report.changed.push(ObjectIssue {
                    key,
                    reason: "changed or deleted during the upgrade: skipped (run it again)".into(),
                }),
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

async fn upgrade_one(sealed: &SealedStore, defaults: &FsOptions, key: &str) -> Outcome {
    let info = match sealed.store().head(key).await {
        Ok(info) => info,
        Err(StoreError::NotFound { .. }) => return Outcome::Changed,
        Err(e) => return Outcome::Failed(format!("HEAD failed: {e}")),
    };
    let m = info.metadata.as_ref();
    if let Some(value) = m.and_then(|m| m.get(ATTR_RECORD_KEY)) {
        return match open_record(sealed.keys(), key, value) {
            Ok(_) => Outcome::Already,
            Err(e) => Outcome::Failed(format!("its attribute record does not open: {e}")),
        };
    }
    if sealed.requires_records() {
        // The vault was marked: a record-less object appeared since, never by s3cryptfs.
        return Outcome::Failed(
            "no attribute record in a vault that requires one: not vouched for (remove it, or \
             restore it from a copy you trust)"
                .into(),
        );
    }
    let record = if key.ends_with('/') {
        if info.size != 0 {
            return Outcome::Failed("a directory marker with content".into());
        }
        let attrs = attr::from_metadata(m, default_attrs(defaults, Kind::Dir, &info));
        attr::record_for(Kind::Dir, &attrs, Some(0), [0; 32])
    } else {
        // The header, opened: the record binds its real salt and a size it commits to.
        let opened = match sealed.open(key, Some(&info.etag)).await {
            Ok(o) => o,
            Err(e) => return sealed_outcome(e),
        };
        let kind = m
            .and_then(attr::kind_from_metadata)
            .filter(|k| *k != Kind::Dir)
            .unwrap_or(Kind::File);
        let attrs = attr::from_metadata(m, default_attrs(defaults, kind, &info));
        attr::record_for(
            kind,
            &attrs,
            Some(opened.version.plaintext_len),
            *opened.opener.salt(),
        )
    };
    let entry = match sealed.record_entry(key, &record) {
        Ok(e) => e,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    // The plaintext attributes go; the other crypto entries stay.
    let stripped = ObjectInfo {
        metadata: Some(m.map(crypto_metadata).unwrap_or_default()),
        ..info
    };
    match sealed
        .add_crypto_metadata(&stripped, Metadata::from([entry]))
        .await
    {
        Ok(_) => Outcome::Upgraded,
        Err(e) => sealed_outcome(e),
    }
}

fn default_attrs(o: &FsOptions, kind: Kind, info: &ObjectInfo) -> StoredAttrs {
    StoredAttrs {
        perm: match kind {
            Kind::Dir => o.dir_mode,
            Kind::Symlink => 0o777,
            _ => o.file_mode,
        },
        uid: o.uid,
        gid: o.gid,
        mtime: info.last_modified,
        xattrs: Default::default(),
        ctime: info.last_modified,
    }
}

/// Upgrade the vault under `prefix` (at `url`, for messages): records on every object, then,
/// if none failed, the `attribute_records` marker in its config (saved with `If-Match` on the
/// config read).
pub async fn upgrade_vault(
    store: &DynStore,
    prefix: &str,
    url: &str,
    secret: &Secret,
    guard: &RollbackGuard,
    progress: &Progress,
) -> ToolResult<UpgradeReport> {
    let stored = vault::load_config(&**store, prefix)
        .await
        .map_err(|e| e.with_location(url))?;
    let mut keys =
        vault::unlock_config(&stored, prefix, secret, guard).map_err(|e| e.with_location(url))?;
    let mut report = upgrade_objects(store, prefix, &keys, progress).await?;
    let mut config = stored.config.clone();
    if report.is_complete() && !config.attribute_records() {
        config.set_attribute_records(&mut keys)?;
        vault::save_config(&**store, prefix, &config, &stored.etag, guard)
            .await
            .map_err(|e| ToolError::Vault(e.with_location(url)))?;
    }
    report.marked = config.attribute_records();
    Ok(report)
}

/// `upgrade [--json] STORE_URL`: records on every object, then the marker.
pub async fn run(t: &Target, json: bool) -> ToolResult<()> {
    let opened = open_target(t, Access::ReadWrite)?;
    // A missing vault is reported before a secret is asked for.
    let stored = vault::load_config(&*opened.store, &opened.prefix)
        .await
        .map_err(|e| e.with_location(&opened.url))?;
    let secret = t.secret.load_for(&stored.config, &opened.url)?;
    let progress = if json {
        Progress::hidden()
    } else {
        Progress::on_stderr("upgrade")
    };
    let report = upgrade_vault(
        &opened.store,
        &opened.prefix,
        &opened.url,
        &secret,
        &t.rollback_guard(),
        &progress,
    )
    .await;
    progress.finish();
    let report = report?;
    if json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| ToolError::Problems(format!("cannot encode JSON: {e}")))?;
        println!("{text}");
    } else {
        for i in report.failed.iter().chain(&report.changed) {
            println!("NOT UPGRADED {}: {}", i.key, i.reason);
        }
        println!(
            "{}: {} objects examined, {} given an attribute record, {} had one{}",
            opened.url,
            report.examined,
            report.upgraded,
            report.already,
            if report.marked {
                "; the vault now requires attribute records"
            } else {
                ""
            }
        );
    }
    if report.is_complete() {
        Ok(())
    } else {
        Err(ToolError::Problems(format!(
            "{} object(s) were not upgraded{}",
            report.failed.len() + report.changed.len(),
            if report.marked {
                ""
            } else {
                "; the vault does not require records yet (run `s3cryptfs upgrade` again)"
            }
        )))
    }
}
