//! `s3cryptfs cleanup`: abort the multipart uploads a crash left behind.
//!
//! A large file is uploaded in parts while it is written (docs/SEMANTICS.md); a daemon killed
//! mid-file leaves that upload open. Its parts are invisible to listings but stored, and
//! billed, until the upload is aborted. Only uploads older than `--older-than` are touched,
//! since a mount writing a large file right now has one open too. No key is needed: upload
//! ids and keys are all this reads.

use std::time::{Duration, SystemTime};

use super::progress::Progress;
use super::{Access, Target, ToolError, ToolResult, open_target};

/// Abort the uploads older than `older_than` (list them only, with `dry_run`).
pub async fn run(t: &Target, older_than: Duration, dry_run: bool) -> ToolResult<()> {
    let access = if dry_run {
        Access::ReadOnly
    } else {
        Access::ReadWrite
    };
    let opened = open_target(t, access)?;
    let store_err = |source| ToolError::Store {
        url: opened.url.clone(),
        source,
    };
    let uploads = opened
        .store
        .list_uploads(&opened.prefix)
        .await
        .map_err(store_err)?;
    let now = SystemTime::now();
    let mut aborted = 0usize;
    let mut kept = 0usize;
    let mut failed = 0usize;
    let progress = Progress::on_stderr("cleanup");
    for u in &uploads {
        progress.inc(0);
        let age = now.duration_since(u.initiated).unwrap_or_default();
        if age < older_than {
            kept += 1;
            continue;
        }
        let started = humanize(age);
        if dry_run {
            println!(
                "would abort {} (upload {}, started {started} ago)",
                u.key, u.upload_id
            );
            aborted += 1;
            continue;
        }
        match opened.store.abort_multipart(&u.key, &u.upload_id).await {
            Ok(()) => {
                println!(
                    "aborted {} (upload {}, started {started} ago)",
                    u.key, u.upload_id
                );
                aborted += 1;
            }
            Err(e) => {
                progress.println(&format!(
                    "s3cryptfs: cannot abort the upload of {}: {e}",
                    u.key
                ));
                failed += 1;
            }
        }
    }
    progress.finish();
    let verb = if dry_run { "would abort" } else { "aborted" };
    println!(
        "{verb} {aborted} incomplete upload(s) under {}; {kept} younger than {} left alone",
        opened.url,
        humanize(older_than)
    );
    if failed > 0 {
        return Err(ToolError::Problems(format!(
            "{failed} upload(s) could not be aborted"
        )));
    }
    Ok(())
}

fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..120 => format!("{s}s"),
        120..7200 => format!("{}m", s / 60),
        7200..172_800 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}
