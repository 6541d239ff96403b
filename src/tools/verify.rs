//! `verify`: walk a vault's objects and check each one as a reader would.
//!
//! Without `--deep`: the object is opened as a reader would (`SealedStore::open`: one ranged
//! GET of the header with its metadata, the format checks, the DEK unwrap from the header or
//! a metadata wrap, the commitment to the size the store reports): this catches truncation,
//! extension, foreign objects and header damage without reading data. `--deep` then
//! authenticates every block, in chunks of whole blocks read with If-Match, so a flipped byte
//! anywhere is found.
//!
//! Every problem is reported by key with a kind and a reason; the command exits 0 only when
//! there are none. A missing or unusable vault config is itself a problem (reported without
//! asking for a key).

use std::sync::Arc;

use futures::stream::{self, StreamExt};
use serde::Serialize;

use crate::crypto::format::blocks_within;
use crate::crypto::format::record::FileType;
use crate::crypto::names::{LONG_SUFFIX, NAME_OBJECT_SUFFIX};
use crate::crypto::{CryptoError, VaultKeys};
use crate::fs::keymap::KeyMap;
use crate::sealed::{OpenedObject, SealedError, SealedStore};
use crate::store::{DynStore, Pager, StoreError};
use crate::vault::{self, VaultError};

use super::progress::Progress;
use super::rewrap::list_page;
use super::{
    Access, Target, ToolError, ToolResult, format_bytes, is_file_object, is_name_object,
    open_target,
};

/// Objects checked at once.
const PARALLEL: usize = 8;
/// Largest single GET of `--deep`.
const DEEP_CHUNK_BYTES: u64 = 8 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// No `.s3cryptfs/config`: nothing can be opened.
    MissingConfig,
    /// The config does not parse, or fails its MAC.
    BadConfig,
    /// Not an s3cryptfs object at all (no magic).
    NotEncrypted,
    /// A format version, suite or flag this build does not read.
    Unsupported,
    /// Sealed with keys this vault does not have (another vault, a retired generation).
    Foreign,
    /// Truncated, extended, or modified.
    Corrupt,
    /// Its attribute record is missing (in a vault that requires one), does not open for its
    /// key, or does not match the object (type, size, content).
    BadRecord,
    /// In a vault with encrypted names: its stored path does not decrypt (a mount does not
    /// list it), or a name object that does not decrypt.
    BadName,
    /// The store failed to return it.
    Unreadable,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub key: String,
    /// In a vault with encrypted names, the plaintext path the key stands for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub kind: ProblemKind,
    pub reason: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub ok: bool,
    pub deep: bool,
    /// File objects checked (directory markers and the vault config not counted).
    pub objects: u64,
    pub directory_markers: u64,
    /// Name objects of shortened encrypted names checked (docs/FORMAT.md §9).
    pub name_objects: u64,
    pub stored_bytes: u64,
    pub plaintext_bytes: u64,
    /// Objects without an attribute record, in a vault whose config does not require them
    /// (made before records): their attributes are unauthenticated until it is upgraded.
    pub without_record: u64,
    /// Objects replaced or deleted while being checked: not judged.
    pub changed_during_check: Vec<String>,
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    fn finish(mut self) -> Self {
        self.problems.sort_by(|a, b| a.key.cmp(&b.key));
        self.changed_during_check.sort();
        self.ok = self.problems.is_empty();
        self
    }

    /// A report for a vault whose config could not be used.
    pub fn config_problem(key: String, err: &VaultError) -> VerifyReport {
        let kind = match err {
            VaultError::Missing { .. } => ProblemKind::MissingConfig,
            VaultError::Store { .. } => ProblemKind::Unreadable,
            _ => ProblemKind::BadConfig,
        };
        VerifyReport {
            problems: vec![Problem {
                key,
                name: None,
                kind,
                reason: err.to_string(),
            }],
            ..VerifyReport::default()
        }
        .finish()
    }
}

fn classify(e: &CryptoError) -> ProblemKind {
    match e {
        CryptoError::Unsupported(m) if m.contains("no S3CF magic") => ProblemKind::NotEncrypted,
        CryptoError::Unsupported(_) => ProblemKind::Unsupported,
        CryptoError::WrongKey(_) => ProblemKind::Foreign,
        CryptoError::Corrupt(_) => ProblemKind::Corrupt,
        _ => ProblemKind::Unreadable,
    }
}

enum Checked {
    Sound {
        stored: u64,
        plain: u64,
        record: bool,
    },
    Changed,
    Bad(ProblemKind, String),
}

/// Check the file objects of the vault under `prefix` (only those below `path`, a vault path,
/// when given).
pub async fn verify_objects(
    store: &DynStore,
    prefix: &str,
    keys: &VaultKeys,
    path: Option<&str>,
    deep: bool,
    progress: &Progress,
) -> ToolResult<VerifyReport> {
    let mut report = VerifyReport {
        deep,
        ..VerifyReport::default()
    };
    let path = path.map(|p| p.trim_matches('/')).unwrap_or("");
    let names = KeyMap::new(prefix.to_owned(), keys.name_cipher());
    let names = &names;
    // A path names a file (that key) or a directory (everything below it).
    let mut list_prefixes = vec![names.dir_prefix(path)];
    if !path.is_empty() {
        let file_key = names.key_of(path);
        match store.head(&file_key).await {
            Ok(_) => list_prefixes = vec![file_key],
            Err(StoreError::NotFound { .. }) => {}
            Err(source) => {
                return Err(ToolError::Store {
                    url: file_key,
                    source,
                });
            }
        }
    }
    let exact_file = !path.is_empty() && !list_prefixes[0].ends_with('/');
    let sealed = SealedStore::new(store.clone(), Arc::new(keys.clone()));
    let sealed = &sealed;
    for list_prefix in list_prefixes {
        let mut token = None;
        let mut pager = Pager::new(&list_prefix);
        loop {
            let page = list_page(store, &mut pager, token.take()).await?;
            let mut keys_to_check = Vec::new();
            let mut name_objects = Vec::new();
            for o in page.objects {
                if exact_file && o.key != list_prefix {
                    continue;
                }
                if is_name_object(keys, &o.key) {
                    name_objects.push(o.key);
                } else if is_file_object(prefix, &o.key) {
                    keys_to_check.push((o.key, false));
                } else if o.key.ends_with('/') {
                    report.directory_markers += 1;
                    if is_marker(prefix, &o.key) {
                        keys_to_check.push((o.key, true));
                    }
                }
            }
            let results: Vec<(String, Option<String>, bool, Checked)> = stream::iter(keys_to_check)
                .map(|(key, marker)| async move {
                    let mut checked = if marker {
                        check_marker(sealed, &key).await
                    } else {
                        check_object(sealed, &key, deep).await
                    };
                    let mut name = None;
                    if names.encrypted() {
                        match names.decode_key(&**store, &key).await {
                            Ok(path) => name = Some(path),
                            Err(why) if matches!(checked, Checked::Sound { .. }) => {
                                checked = Checked::Bad(ProblemKind::BadName, name_problem(&why));
                            }
                            Err(_) => {}
                        }
                    }
                    match &checked {
                        Checked::Sound { stored, .. } => progress.inc(*stored),
                        Checked::Bad(kind, reason) => {
                            progress.inc(0);
                            progress.println(&format!("{key}: {kind:?}: {reason}"));
                        }
                        Checked::Changed => progress.inc(0),
                    }
                    (key, name, marker, checked)
                })
                .buffer_unordered(PARALLEL)
                .collect()
                .await;
            for key in name_objects {
                report.name_objects += 1;
                // Its entry `H.long` must decrypt through it.
                let entry = key.replace(NAME_OBJECT_SUFFIX, LONG_SUFFIX);
                if let Err(why) = names.decode_key(&**store, &entry).await {
                    report.problems.push(Problem {
                        key,
                        name: None,
                        kind: ProblemKind::BadName,
                        reason: name_problem(&why),
                    });
                }
            }
            for (key, name, marker, checked) in results {
                if !marker {
                    report.objects += 1;
                }
                match checked {
                    Checked::Sound {
                        stored,
                        plain,
                        record,
                    } => {
                        report.stored_bytes += stored;
                        report.plaintext_bytes += plain;
                        if !record {
                            report.without_record += 1;
                        }
                    }
                    Checked::Changed => report.changed_during_check.push(key),
                    Checked::Bad(kind, reason) => report.problems.push(Problem {
                        key,
                        name,
                        kind,
                        reason,
                    }),
                }
            }
            match page.next_continuation_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
    }
    if !path.is_empty() && report.objects == 0 && report.directory_markers == 0 {
        return Err(ToolError::Usage(format!(
            "{path}: no such file or directory in the vault"
        )));
    }
    Ok(report.finish())
}

/// The reason of a [`ProblemKind::BadName`].
fn name_problem(why: &str) -> String {
    format!("its name does not decrypt, so a mount does not show it: {why}")
}

/// A problem (or a change under the check) from the sealed-object layer.
fn checked_err(e: SealedError) -> Checked {
    match e {
        SealedError::Changed { .. } => Checked::Changed,
        SealedError::Crypto { source, .. } => Checked::Bad(classify(&source), source.to_string()),
        SealedError::Store(e) => Checked::Bad(ProblemKind::Unreadable, e.to_string()),
        SealedError::Internal(m) => Checked::Bad(ProblemKind::Unreadable, m),
    }
}

async fn check_object(sealed: &SealedStore, key: &str, deep: bool) -> Checked {
    let opened = match sealed.open(key, None).await {
        Ok(opened) => opened,
        Err(e) => return checked_err(e),
    };
    // The attribute record, from the metadata the header's GET returned: it must open for
    // this key, be a file's or a symlink's, and name this content and size.
    let record = match sealed.open_record(key, opened.info.metadata.as_ref()) {
        Ok(record) => record,
        Err(e) => return record_err(e),
    };
    if let Some(rec) = &record {
        let node = matches!(
            rec.file_type,
            FileType::Fifo | FileType::Socket | FileType::CharDevice | FileType::BlockDevice
        );
        let device = matches!(rec.file_type, FileType::CharDevice | FileType::BlockDevice);
        let reason = if matches!(rec.file_type, FileType::Directory) {
            Some("a directory's attribute record on a file object".to_owned())
        } else if node && opened.version.plaintext_len != 0 {
            Some("a fifo, socket or device node with content".to_owned())
        } else if !device && rec.rdev != 0 {
            Some("a device number in the record of something not a device".to_owned())
        } else if rec.content_salt != *opened.opener.salt() {
            Some(
                "the attribute record names other content (the body of another object, or an \
                 older record)"
                    .to_owned(),
            )
        } else {
            rec.size
                .filter(|s| *s != opened.version.plaintext_len)
                .map(|s| {
                    format!(
                        "{} plaintext bytes stored, {s} in the attribute record",
                        opened.version.plaintext_len
                    )
                })
        };
        if let Some(reason) = reason {
            return Checked::Bad(ProblemKind::BadRecord, reason);
        }
    }
    if deep || opened.version.plaintext_len == 0 {
        if let Err(bad) = check_blocks(sealed, &opened).await {
            return bad;
        }
    }
    Checked::Sound {
        stored: opened.info.size,
        plain: opened.version.plaintext_len,
        record: record.is_some(),
    }
}

/// A directory marker: empty, with a directory's attribute record for its key.
async fn check_marker(sealed: &SealedStore, key: &str) -> Checked {
    let info = match sealed.store().head(key).await {
        Ok(info) => info,
        Err(StoreError::NotFound { .. }) => return Checked::Changed,
        Err(e) => return Checked::Bad(ProblemKind::Unreadable, e.to_string()),
    };
    let record = match sealed.open_record(key, info.metadata.as_ref()) {
        Ok(record) => record,
        Err(e) => return record_err(e),
    };
    if let Some(rec) = &record
        && (!matches!(rec.file_type, FileType::Directory)
            || rec.content_salt != [0; 32]
            || info.size != 0)
    {
        return Checked::Bad(
            ProblemKind::BadRecord,
            "a directory marker whose attribute record is not a directory's".into(),
        );
    }
    Checked::Sound {
        stored: 0,
        plain: 0,
        record: record.is_some(),
    }
}

/// A directory marker of the vault (not the vault's own directory, not the root's).
fn is_marker(prefix: &str, key: &str) -> bool {
    key.strip_prefix(prefix)
        .is_some_and(|r| !r.is_empty() && r.ends_with('/') && !r.starts_with(".s3cryptfs/"))
}

/// A record that is missing where required or does not open.
fn record_err(e: SealedError) -> Checked {
    match e {
        SealedError::Crypto { source, .. } => {
            Checked::Bad(ProblemKind::BadRecord, source.to_string())
        }
        other => checked_err(other),
    }
}

/// Authenticate every block, a few MiB per GET (each with If-Match on the version opened).
async fn check_blocks(sealed: &SealedStore, opened: &OpenedObject) -> Result<(), Checked> {
    let per_chunk = blocks_within(DEEP_CHUNK_BYTES, opened.opener.block_size());
    let n = opened.opener.block_count();
    let mut first = 0u64;
    while first < n {
        let end = (first + per_chunk).min(n);
        sealed
            .read_blocks(&opened.version, first..end)
            .await
            .map_err(checked_err)?;
        first = end;
    }
    Ok(())
}

/// The report as text lines.
pub fn report_text(url: &str, report: &VerifyReport) -> String {
    let mut out = String::new();
    for p in &report.problems {
        let name = p
            .name
            .as_ref()
            .map(|n| format!(" (/{n})"))
            .unwrap_or_default();
        out.push_str(&format!(
            "PROBLEM {}{name}: {}: {}\n",
            p.key,
            serde_json::to_value(p.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            p.reason
        ));
    }
    for key in &report.changed_during_check {
        out.push_str(&format!("skipped {key}: changed while being checked\n"));
    }
    if report.without_record > 0 {
        out.push_str(&format!(
            "note: {} object(s) carry no attribute record: their mode, owner and times are \
             unauthenticated until the vault is upgraded\n",
            report.without_record
        ));
    }
    out.push_str(&format!(
        "{url}: {} objects ({} stored, {} of file data) and {} directory markers checked{}: {}\n",
        report.objects,
        format_bytes(report.stored_bytes),
        format_bytes(report.plaintext_bytes),
        report.directory_markers,
        if report.deep { " deeply" } else { "" },
        if report.ok {
            "all sound".to_owned()
        } else {
            format!("{} problem(s)", report.problems.len())
        }
    ));
    out
}

/// `verify [--deep] [--json] [PATH]`.
pub async fn run(t: &Target, path: Option<&str>, deep: bool, json: bool) -> ToolResult<()> {
    let opened = open_target(t, Access::ReadOnly)?;
    let config_key = vault::config_key(&opened.prefix);
    let report = match vault::load_config(&*opened.store, &opened.prefix).await {
        Err(e) => VerifyReport::config_problem(config_key, &e.with_location(&opened.url)),
        Ok(stored) => {
            let secret = t
                .secret
                .load(vault::secret::SecretUse::Unlock, &opened.url)?;
            match vault::unlock_config(&stored, &opened.prefix, &secret, &t.rollback_guard()) {
                Err(e) if e.is_wrong_key() || e.is_rollback() => {
                    return Err(e.with_location(&opened.url).into());
                }
                Err(e) => VerifyReport::config_problem(config_key, &e.with_location(&opened.url)),
                Ok(keys) => {
                    let progress = if json {
                        Progress::hidden()
                    } else {
                        Progress::on_stderr("verify")
                    };
                    let report =
                        verify_objects(&opened.store, &opened.prefix, &keys, path, deep, &progress)
                            .await;
                    progress.finish();
                    report?
                }
            }
        }
    };
    let report = VerifyReport { deep, ..report };
    if json {
        let json = serde_json::to_string_pretty(&report)
            .map_err(|e| ToolError::Problems(format!("cannot encode JSON: {e}")))?;
        println!("{json}");
    } else {
        print!("{}", report_text(&opened.url, &report));
    }
    if report.ok {
        Ok(())
    } else {
        Err(ToolError::Problems(format!(
            "verify found {} problem(s) in {}",
            report.problems.len(),
            opened.url
        )))
    }
}
