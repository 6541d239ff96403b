//! What SIGHUP re-reads: the config file the mount started with (the log level; other changes
//! are named and wait for the next mount), and the log file, reopened for log rotation.
//!
//! The command-line values a mount started with keep winning over the file, as they did at
//! start: the front hands them over as [`Overrides`], never as clap structs.

use std::path::{Path, PathBuf};

use super::daemon::reopen_log;
use super::logging;
use crate::config::{MountConfig, Overrides};

/// The config file a mount started with, and the command-line values that win over it.
#[derive(Debug)]
pub struct ReloadSource {
    /// Absolute path of the config file, if there was one.
    pub config_path: Option<PathBuf>,
    pub overrides: Overrides,
    /// The merged config the mount started with, to tell what else changed.
    pub started_with: MountConfig,
    /// The log file stderr points at once detached (reopened on SIGHUP).
    pub log_file: Option<PathBuf>,
}

impl ReloadSource {
    /// SIGHUP: reopen the log file, re-read the log level, and say what else would need a
    /// new mount.
    pub(super) fn apply(&self, mp: &Path) {
        if let Some(path) = &self.log_file {
            match reopen_log(path) {
                Ok(()) => log::info!("SIGHUP: reopened the log file {}", path.display()),
                Err(e) => log::error!("SIGHUP: cannot reopen the log file {}: {e}", path.display()),
            }
        }
        let Some(path) = &self.config_path else {
            log::info!(
                "SIGHUP: {} was mounted without --config, so there is no config to reload; log \
                 level stays {}",
                mp.display(),
                logging::level_name(logging::level())
            );
            return;
        };
        let config = match MountConfig::load(path).and_then(|c| c.merge(&self.overrides)) {
            Ok(c) => c,
            Err(e) => {
                log::error!("SIGHUP: not reloaded, keeping the current settings: {e}");
                return;
            }
        };
        let new = config.logging.level;
        if self.overrides.log_level.is_some() {
            log::info!(
                "SIGHUP: log level stays {}: --log-level on the command line wins over {}",
                logging::level_name(logging::level()),
                path.display()
            );
        } else {
            let old = logging::set_level(new);
            // Logged at warn so that it shows whatever the new level is.
            log::warn!(
                "SIGHUP: reloaded {}: log level {} (was {})",
                path.display(),
                logging::level_name(new),
                logging::level_name(old)
            );
        }
        let changed = changed_sections(&self.started_with, &config);
        if !changed.is_empty() {
            log::warn!(
                "SIGHUP: {} changed {} since the mount started; that takes effect at the next \
                 mount (only [logging] level is reloaded)",
                path.display(),
                changed.join(", ")
            );
        }
    }
}

/// The config sections (and fields, for `[logging]`) that differ, except the log level.
fn changed_sections(old: &MountConfig, new: &MountConfig) -> Vec<&'static str> {
    let mut changed = Vec::new();
    if old.store != new.store {
        changed.push("[store]");
    }
    if old.encryption != new.encryption {
        changed.push("[encryption]");
    }
    if old.sse != new.sse {
        changed.push("[sse]");
    }
    if old.mount != new.mount {
        changed.push("[mount]");
    }
    if old.cache != new.cache {
        changed.push("[cache]");
    }
    if old.logging.file != new.logging.file {
        changed.push("[logging] file");
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reload_names_the_changed_sections() {
        let parse = |text: &str| {
            MountConfig::parse(text, Path::new("t.toml"))
                .expect("config")
                .merge(&Default::default())
                .expect("merge")
        };
        let old = parse("[logging]\nlevel = \"info\"\n[cache]\nmetadata_ttl_secs = 1\n");
        let only_level = parse("[logging]\nlevel = \"debug\"\n[cache]\nmetadata_ttl_secs = 1\n");
        assert!(changed_sections(&old, &only_level).is_empty());
        let more = parse(
            "[logging]\nlevel = \"debug\"\nfile = \"/x.log\"\n[cache]\nmetadata_ttl_secs = 5\n",
        );
        assert_eq!(changed_sections(&old, &more), ["[cache]", "[logging] file"]);
    }
}
