//! Progress of a walk over many objects: a spinner with counts on a terminal (indicatif),
//! a plain line every few seconds otherwise (logs and CI stay readable), nothing in tests.
//!
//! The total is unknown while the listing is paged, so it is a count, not a percentage.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use super::format_bytes;

/// How often the plain form prints a line.
const PLAIN_INTERVAL: Duration = Duration::from_secs(5);

enum Mode {
    Hidden,
    Bar(ProgressBar),
    Plain { last: Mutex<Instant> },
}

pub struct Progress {
    what: String,
    mode: Mode,
    objects: AtomicU64,
    bytes: AtomicU64,
}

impl Progress {
    /// No output at all (library use, tests).
    pub fn hidden() -> Progress {
        Self::with_mode("", Mode::Hidden)
    }

    /// A bar on stderr when it is a terminal, plain lines on stderr otherwise. `what` names
    /// the work ("verify", "rewrap").
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
            Self::with_mode(what, Mode::Bar(bar))
        } else {
            Self::with_mode(
                what,
                Mode::Plain {
                    last: Mutex::new(Instant::now()),
                },
            )
        }
    }

    fn with_mode(what: &str, mode: Mode) -> Progress {
        Progress {
            what: what.to_owned(),
            mode,
            objects: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        }
    }

    /// One more object done, `bytes` of it read or checked.
    pub fn inc(&self, bytes: u64) {
        let objects = self.objects.fetch_add(1, Ordering::Relaxed) + 1;
        let total = self.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        match &self.mode {
            Mode::Hidden => {}
            Mode::Bar(bar) => {
                bar.set_position(objects);
                bar.set_message(format_bytes(total));
            }
            Mode::Plain { last } => {
                let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
                if last.elapsed() >= PLAIN_INTERVAL {
                    *last = Instant::now();
                    eprintln!("{}: {objects} objects, {}", self.what, format_bytes(total));
                }
            }
        }
    }

    /// Print a line (a problem found) without tearing the bar.
    pub fn println(&self, line: &str) {
        match &self.mode {
            Mode::Hidden => {}
            Mode::Bar(bar) => bar.println(line),
            Mode::Plain { .. } => eprintln!("{line}"),
        }
    }

    /// Objects counted so far.
    pub fn objects(&self) -> u64 {
        self.objects.load(Ordering::Relaxed)
    }

    /// Remove the bar (or print the final count).
    pub fn finish(&self) {
        match &self.mode {
            Mode::Hidden => {}
            Mode::Bar(bar) => bar.finish_and_clear(),
            Mode::Plain { .. } => {
                let bytes = self.bytes.load(Ordering::Relaxed);
                let bytes = if bytes == 0 {
                    String::new()
                } else {
                    format!(", {}", format_bytes(bytes))
                };
                eprintln!("{}: {} objects{bytes}, done", self.what, self.objects());
            }
        }
    }
}
