//! The logger of every command: env_logger's format behind a level that can change while a
//! mount runs (SIGHUP re-reads `[logging] level`).
//!
//! env_logger fixes its filter when it is built, so it is built to pass everything and the
//! wrapper here applies the current level, an atomic that [`set_level`] changes. fuser's own
//! lines are shown only at debug and above: its info lines ("Mounting ...") are noise, and it
//! warns about unmounting an already unmounted file system after every external unmount.

use std::sync::atomic::{AtomicU8, Ordering};

use log::{Log, Metadata, Record};

use super::daemon::stderr_is_journal;
use crate::config::LogLevel;

static LEVEL: AtomicU8 = AtomicU8::new(2);

fn to_u8(level: LogLevel) -> u8 {
    match level {
        LogLevel::Error => 0,
        LogLevel::Warn => 1,
        LogLevel::Info => 2,
        LogLevel::Debug => 3,
        LogLevel::Trace => 4,
    }
}

fn from_u8(v: u8) -> LogLevel {
    match v {
        0 => LogLevel::Error,
        1 => LogLevel::Warn,
        2 => LogLevel::Info,
        3 => LogLevel::Debug,
        _ => LogLevel::Trace,
    }
}

/// The name of a level as the config file and `--log-level` spell it.
pub fn level_name(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Error => "error",
        LogLevel::Warn => "warn",
        LogLevel::Info => "info",
        LogLevel::Debug => "debug",
        LogLevel::Trace => "trace",
    }
}

/// The current level.
pub fn level() -> LogLevel {
    from_u8(LEVEL.load(Ordering::Relaxed))
}

/// Whether a record of `record_level` from `target` passes at `level`.
fn passes(level: LogLevel, target: &str, record_level: log::Level) -> bool {
    let is_fuser = target == "fuser" || target.starts_with("fuser::");
    let max = if is_fuser && level < LogLevel::Debug {
        LogLevel::Error
    } else {
        level
    };
    record_level <= max.to_filter()
}

struct ReloadableLogger {
    inner: env_logger::Logger,
}

impl Log for ReloadableLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        passes(level(), metadata.target(), metadata.level())
    }

    fn log(&self, record: &Record) {
        if self.enabled(record.metadata()) {
            self.inner.log(record);
        }
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

/// The syslog priority of a record (`sd-daemon(3)`'s `<N>` prefix).
fn journal_priority(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

/// Install the logger (writing to stderr) at `level`; a second call only sets the level.
/// When stderr is the journal (a systemd unit), each line starts with its priority
/// (`<3>` for errors, ...), which journald reads as the entry's priority, and carries no
/// timestamp of its own (the journal keeps one).
pub fn init(level: LogLevel, colors: bool) {
    let mut builder = env_logger::Builder::new();
    builder.filter_level(log::LevelFilter::Trace);
    if stderr_is_journal() {
        builder.format(|buf, record| {
            use std::io::Write;
            writeln!(
                buf,
                "<{}>{}: {}",
                journal_priority(record.level()),
                record.target(),
                record.args()
            )
        });
    } else {
        builder.format_timestamp_millis().write_style(if colors {
            env_logger::WriteStyle::Auto
        } else {
            env_logger::WriteStyle::Never
        });
    }
    let inner = builder.build();
    let _ = log::set_boxed_logger(Box::new(ReloadableLogger { inner }));
    set_level(level);
}

/// Change the level at run time; returns the previous one.
pub fn set_level(level: LogLevel) -> LogLevel {
    let previous = from_u8(LEVEL.swap(to_u8(level), Ordering::Relaxed));
    log::set_max_level(level.to_filter());
    previous
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_round_trip() {
        for l in [
            LogLevel::Error,
            LogLevel::Warn,
            LogLevel::Info,
            LogLevel::Debug,
            LogLevel::Trace,
        ] {
            assert_eq!(from_u8(to_u8(l)), l);
        }
    }

    #[test]
    fn journal_priorities_follow_syslog() {
        assert_eq!(journal_priority(log::Level::Error), 3);
        assert_eq!(journal_priority(log::Level::Warn), 4);
        assert_eq!(journal_priority(log::Level::Info), 6);
        assert_eq!(journal_priority(log::Level::Trace), 7);
    }

    #[test]
    fn fuser_is_quiet_below_debug() {
        assert!(passes(LogLevel::Info, "s3cryptfs::fs", log::Level::Info));
        assert!(!passes(LogLevel::Info, "s3cryptfs::fs", log::Level::Debug));
        assert!(!passes(LogLevel::Info, "fuser::session", log::Level::Warn));
        assert!(passes(LogLevel::Info, "fuser::session", log::Level::Error));
        assert!(passes(LogLevel::Debug, "fuser", log::Level::Debug));
        assert!(!passes(LogLevel::Debug, "fuser", log::Level::Trace));
    }
}
