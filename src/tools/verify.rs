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
use crate::crypto::{CryptoError, VaultKeys};
use crate::sealed::{OpenedObject, SealedError, SealedStore};
use crate::store::{DynStore, StoreError};
use crate::vault::{self, VaultError};

use super::progress::Progress;
use super::rewrap::list_page;
use super::{Access, Target, ToolError, ToolResult, format_bytes, is_file_object, open_target};

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
    /// The store failed to return it.
    Unreadable,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub key: String,
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
    pub stored_bytes: u64,
    pub plaintext_bytes: u64,
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
    Sound { stored: u64, plain: u64 },
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
    // A path names a file (that key) or a directory (everything below it).
    let mut list_prefixes = vec![format!("{prefix}{path}/")];
    if path.is_empty() {
        list_prefixes = vec![prefix.to_owned()];
    } else {
        match store.head(&format!("{prefix}{path}")).await {
            Ok(_) => list_prefixes = vec![format!("{prefix}{path}")],
            Err(StoreError::NotFound { .. }) => {}
            Err(source) => {
                return Err(ToolError::Store {
                    url: format!("{prefix}{path}"),
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
        loop {
            let page = list_page(store, &list_prefix, token.take()).await?;
            let mut keys_to_check = Vec::new();
            for o in page.objects {
                if exact_file && o.key != list_prefix {
                    continue;
                }
                if is_file_object(prefix, &o.key) {
                    keys_to_check.push(o.key);
                } else if o.key.ends_with('/') {
                    report.directory_markers += 1;
                }
            }
            let results: Vec<(String, Checked)> = stream::iter(keys_to_check)
                .map(|key| async move {
                    let checked = check_object(sealed, &key, deep).await;
                    match &checked {
                        Checked::Sound { stored, .. } => progress.inc(*stored),
                        Checked::Bad(kind, reason) => {
                            progress.inc(0);
                            progress.println(&format!("{key}: {kind:?}: {reason}"));
                        }
                        Checked::Changed => progress.inc(0),
                    }
                    (key, checked)
                })
                .buffer_unordered(PARALLEL)
                .collect()
                .await;
            for (key, checked) in results {
                report.objects += 1;
                match checked {
                    Checked::Sound { stored, plain } => {
                        report.stored_bytes += stored;
                        report.plaintext_bytes += plain;
                    }
                    Checked::Changed => report.changed_during_check.push(key),
                    Checked::Bad(kind, reason) => {
                        report.problems.push(Problem { key, kind, reason })
                    }
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
    if deep {
        if let Err(bad) = check_blocks(sealed, &opened).await {
            return bad;
        }
    }
    Checked::Sound {
        stored: opened.info.size,
        plain: opened.version.plaintext_len,
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
        out.push_str(&format!(
            "PROBLEM {}: {}: {}\n",
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
