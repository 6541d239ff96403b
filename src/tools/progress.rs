//! Progress of a walk over many objects or files: a spinner with counts on a terminal
//! (indicatif), nothing otherwise (logs, cron mail and scripts get only the command's own
//! output and the problems found), nothing in tests.
//!
//! The total is unknown while the listing is paged, so it is a count, not a percentage.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::format_bytes;

enum Mode {
    Hidden,
    Bar(ProgressBar),
    /// Not a terminal: no progress, problems still printed.
    Quiet,
}

pub struct Progress {
    mode: Mode,
    objects: AtomicU64,
    bytes: AtomicU64,
}

impl Progress {
    /// No output at all (library use, tests).
    pub fn hidden() -> Progress {
        Self::with_mode(Mode::Hidden)
    }

    /// A bar on stderr when it is a terminal, quiet otherwise. `what` names the work
    /// ("verify", "rewrap").
    pub fn on_stderr(what: &str) -> Progress {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new_spinner();
            let style = ProgressStyle::with_template(
                "{spinner} {prefix}: {pos} objects, {msg} [{elapsed_precise}]",
            )
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
            bar.set_style(style);
            bar.set_prefix(what.to_owned());
            bar.enable_steady_tick(Duration::from_millis(200));
            Self::with_mode(Mode::Bar(bar))
        } else {
            Self::with_mode(Mode::Quiet)
        }
    }

    fn with_mode(mode: Mode) -> Progress {
        Progress {
            mode,
            objects: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        }
    }

    /// One more object done, `bytes` of it read or checked.
    pub fn inc(&self, bytes: u64) {
        let objects = self.objects.fetch_add(1, Ordering::Relaxed) + 1;
        let total = self.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if let Mode::Bar(bar) = &self.mode {
            bar.set_position(objects);
            bar.set_message(format_bytes(total));
        }
    }

    /// Print a line (a problem found) without tearing the bar.
    pub fn println(&self, line: &str) {
        match &self.mode {
            Mode::Hidden => {}
            Mode::Bar(bar) => bar.println(line),
            Mode::Quiet => eprintln!("{line}"),
        }
    }

    /// Objects counted so far.
    pub fn objects(&self) -> u64 {
        self.objects.load(Ordering::Relaxed)
    }

    /// Remove the bar.
    pub fn finish(&self) {
        if let Mode::Bar(bar) = &self.mode {
            bar.finish_and_clear();
        }
    }
}
