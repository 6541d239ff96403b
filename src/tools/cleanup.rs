//! `s3cryptfs cleanup`: abort the multipart uploads a crash left behind.
//!
//! A large file is uploaded in parts while it is written (docs/SEMANTICS.md); a daemon killed
//! mid-file leaves that upload open. Its parts are invisible to listings but stored, and
//! billed, until the upload is aborted. Only uploads older than `--older-than` are touched,
//! since a mount writing a large file right now has one open too. No key is needed: upload
//! ids and keys are all this reads.

use std::time::{Duration, SystemTime};

use super::{Access, ToolError, ToolResult, open_store_args};
use crate::cli::CleanupArgs;

/// Parse `90s`, `30m`, `24h`, `7d` or a number of seconds.
pub fn parse_age(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not an age like 90s, 30m, 24h or 7d"))?;
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{s:?}: the unit must be s, m, h or d")),
    };
    n.checked_mul(unit_secs)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{s:?} is too long"))
}

pub async fn run(args: &CleanupArgs) -> ToolResult<()> {
    let access = if args.dry_run {
        Access::ReadOnly
    } else {
        Access::ReadWrite
    };
    let opened = open_store_args(&args.store, access)?;
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
    for u in &uploads {
        let age = now.duration_since(u.initiated).unwrap_or_default();
        if age < args.older_than {
            kept += 1;
            continue;
        }
        let started = humanize(age);
        if args.dry_run {
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
                eprintln!("s3cryptfs: cannot abort the upload of {}: {e}", u.key);
                failed += 1;
            }
        }
    }
    let verb = if args.dry_run {
        "would abort"
    } else {
        "aborted"
    };
    println!(
        "{verb} {aborted} incomplete upload(s) under {}; {kept} younger than {} left alone",
        opened.url,
        humanize(args.older_than)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_parse_with_units() {
        assert_eq!(parse_age("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_age("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_age("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_age("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_age("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_age("0"), Ok(Duration::ZERO));
        assert!(parse_age("1w").unwrap_err().contains("unit"));
        assert!(parse_age("h").is_err());
        assert!(parse_age("99999999999999999999d").is_err());
    }
}
