//! `s3cryptfs status`: ask running mounts of this user for their [`MountStatus`] through
//! their control sockets (`control.rs`), and say it for a person.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::control::{MountStatus, query};
use super::error::{MountError, MountResult};
use super::table::{find_daemon, live_mounts};
use super::unmount::mountpoint_path;
use crate::fs::UploadState;

/// One mount's answer, or why there is none.
pub type MountAnswer = (PathBuf, Result<MountStatus, String>);

/// The status of the mount at `mountpoint` (or of the daemon behind `socket`), else of
/// every mount of this user.
pub fn status(mountpoint: Option<&Path>, socket: Option<&Path>) -> MountResult<Vec<MountAnswer>> {
    if let Some(socket) = socket {
        let answer = query(socket)
            .map_err(|e| MountError::Other(format!("control socket {}: {e}", socket.display())))?;
        return Ok(vec![(PathBuf::from(&answer.mountpoint), Ok(answer))]);
    }
    let mounts = match mountpoint {
        Some(mp) => {
            let mp = mountpoint_path(mp)?;
            let Some(daemon) = find_daemon(&mp) else {
                return Err(MountError::mountpoint(
                    &mp,
                    "is not an s3cryptfs mount of this user (no running daemon names it)",
                ));
            };
            vec![(mp, daemon.socket)]
        }
        None => live_mounts(),
    };
    Ok(mounts
        .into_iter()
        .map(|(mp, socket)| {
            let answer = query(&socket).map_err(|e| format!("{}: {e}", socket.display()));
            (mp, answer)
        })
        .collect())
}

/// Bytes for a person: `12.3 MiB`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {}s", s / 60, s % 60),
        s if s < 86400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        s => format!("{}d {}h", s / 86400, s % 86400 / 3600),
    }
}

/// The report of one mount for a person.
pub fn render_text(s: &MountStatus) -> String {
    let f = &s.fs;
    let c = &f.counts;
    let mut out = String::new();
    let _ = writeln!(out, "{}", s.mountpoint);
    let _ = writeln!(out, "  store:      {}", s.store_url);
    let _ = writeln!(out, "  vault id:   {}", s.vault_id);
    let _ = writeln!(
        out,
        "  daemon:     pid {}, up {}",
        s.pid,
        duration(s.uptime_secs)
    );
    let _ = writeln!(
        out,
        "  files:      {} open, {} dirty, {} uploading, {} failed; {} pending, {} staged",
        f.open_files,
        f.files_dirty,
        f.files_uploading,
        f.files_failed,
        bytes(f.bytes_pending),
        bytes(f.staged_bytes)
    );
    for p in &f.pending {
        let state = match p.state {
            UploadState::Failed => "FAILED",
            other => other.name(),
        };
        let _ = write!(out, "    {state:<9} {} ({})", p.path, bytes(p.bytes));
        if let Some(e) = &p.last_error {
            let _ = write!(out, ": {e}");
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "  uploads:    {} stored ({}), {} failed attempts",
        c.uploads_completed,
        bytes(c.uploaded_bytes),
        c.upload_failures
    );
    let _ = writeln!(out, "  conflicts:  {} conflict copies", c.conflict_copies);
    for name in &c.recent_conflict_copies {
        let _ = writeln!(out, "    {name}");
    }
    let sent: Vec<String> = f
        .requests
        .iter()
        .filter(|r| r.requests > 0)
        .map(|r| {
            if r.bytes > 0 {
                format!("{} {} ({})", r.kind, r.requests, bytes(r.bytes))
            } else {
                format!("{} {}", r.kind, r.requests)
            }
        })
        .collect();
    let _ = writeln!(
        out,
        "  requests:   {}",
        if f.requests.is_empty() {
            "not counted by this store".to_owned()
        } else if sent.is_empty() {
            "none".to_owned()
        } else {
            sent.join(", ")
        }
    );
    let lookups = f.cache.hits + f.cache.misses;
    let rate = if lookups == 0 {
        "no reads yet".to_owned()
    } else {
        format!(
            "hit rate {:.1}% ({} of {lookups})",
            f.cache.hits as f64 * 100.0 / lookups as f64,
            f.cache.hits
        )
    };
    let _ = writeln!(
        out,
        "  cache:      {} of {}, {rate}",
        bytes(f.cache.bytes),
        bytes(f.cache.capacity)
    );
    let _ = writeln!(
        out,
        "  memory:     {} of {}, at most {} so far",
        bytes(f.memory.in_use),
        bytes(f.memory.limit),
        bytes(f.memory.high_water)
    );
    if !f.metadata.is_empty() {
        let caches: Vec<String> = (f.metadata.iter())
            .map(|c| format!("{} {} ({})", c.name, c.entries, bytes(c.bytes)))
            .collect();
        let _ = writeln!(out, "  metadata:   {}", caches.join(", "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_well() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 * 1024 * 1024 / 2), "1.5 MiB");
        assert_eq!(duration(59), "59s");
        assert_eq!(duration(3 * 3600 + 120), "3h 2m");
        assert_eq!(duration(2 * 86400 + 3600), "2d 1h");
    }
}
