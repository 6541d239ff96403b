//! Config rollback detection: this machine's memory of the highest config counter it has seen
//! per vault.
//!
//! The vault config carries a counter under its MAC, raised by one at every change (key
//! rotate, retire, slot add/remove, passphrase change). Whoever controls the bucket cannot
//! forge a config, but can put back an older one, whose MAC is still valid: that would undo a
//! rotation, bring back a retired key or a passphrase that was changed. So each machine keeps,
//! per vault id, the highest counter it has seen in a small file
//! (`STATE_DIR/<vault id>.counter`, the decimal counter and a newline; the directory is created
//! mode 0700), and refuses a config with a lower one unless told to accept it
//! ([`RollbackGuard::accept_rollback`]), which then becomes the new high-water mark.
//!
//! Several processes (mounts, tools) and threads may raise the same counter at once. Each
//! update holds an exclusive `flock` on the state directory itself (no lock file to leave
//! behind or to remove racily) while it reads the file, takes the larger of what it holds and the new counter, writes that to a temporary file and
//! renames it over the old one: no raise is lost, the counter never goes down (except by an
//! accepted rollback, which sets it on purpose), and a reader without the lock sees the old or
//! the new number, never a partial one.
//!
//! The state is read and written only after the config's MAC verified. A missing state file is
//! a vault never seen here (first sight: accepted and recorded); an unreadable or garbled one is
//! warned about and treated the same, as is a state file that cannot be written: the command
//! goes on, only the protection is weaker. A machine that never saw the newer config cannot
//! tell an older one from the latest (docs/FORMAT.md §7).

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::crypto::VaultConfig;

/// Name of the state file of a vault: its id in hex and this suffix.
pub const STATE_FILE_SUFFIX: &str = ".counter";

/// How an update combines the counter it brings with the one in the state file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Update {
    /// Keep the larger (every config seen or saved).
    Raise,
    /// Take the new one even if lower (a rollback accepted on purpose).
    Set,
}

/// A config older than one this machine has seen: the counters (`vault.rs` makes it a
/// `VaultError::Rollback` naming the vault).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rollback {
    /// The highest counter this machine has seen.
    pub seen: u64,
    /// The counter of the config in the store.
    pub got: u64,
}

/// Where the highest config counters seen are kept, and whether an older config is accepted.
///
/// The default remembers and checks nothing (library use and tests); commands get theirs from
/// the front (`[encryption] accept_config_rollback`, `--accept-config-rollback`, and the state
/// directory from `config::default_state_dir`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RollbackGuard {
    /// The state directory; `None`: nothing is remembered or checked.
    pub state_dir: Option<PathBuf>,
    /// Accept a config older than the one remembered, and remember its counter instead.
    pub accept_rollback: bool,
}

impl RollbackGuard {
    /// A guard keeping its state in `state_dir`.
    pub fn new(state_dir: Option<PathBuf>, accept_rollback: bool) -> Self {
        RollbackGuard {
            state_dir,
            accept_rollback,
        }
    }

    /// The state file of the vault `vault_id`, if there is a state directory.
    pub fn state_file(&self, vault_id: &[u8; 16]) -> Option<PathBuf> {
        self.state_dir
            .as_ref()
            .map(|dir| dir.join(format!("{}{STATE_FILE_SUFFIX}", hex::encode(vault_id))))
    }

    /// The highest counter this machine has seen for `vault_id`; `None` when never seen, or
    /// when the state cannot be read (with a warning).
    pub fn seen(&self, vault_id: &[u8; 16]) -> Option<u64> {
        read_counter(&self.state_file(vault_id)?)
    }

    /// After the MAC of `config` verified: refuse it if it is older than a config this
    /// machine has seen (unless accepting that), and remember its counter if it is higher (or
    /// accepted). `location` names the vault in the warning about an accepted rollback.
    pub fn check(&self, config: &VaultConfig, location: &str) -> Result<(), Rollback> {
        if self.state_dir.is_none() {
            return Ok(());
        }
        let vault_id = config.vault_id();
        let got = config.config_counter();
        match self.seen(&vault_id) {
            Some(seen) if got < seen => {
                if !self.accept_rollback {
                    return Err(Rollback { seen, got });
                }
                log::warn!(
                    "accepting the vault config at {location} although this machine has seen a \
                     newer one (seen {seen}, got {got}): --accept-config-rollback"
                );
                self.update(&vault_id, got, Update::Set);
            }
            Some(seen) if got == seen => {}
            _ => self.remember(&vault_id, got),
        }
        Ok(())
    }

    /// After this machine saved `config`: remember its counter if it is higher than the one
    /// remembered.
    pub fn record(&self, config: &VaultConfig) {
        if self.state_dir.is_some() {
            self.update(&config.vault_id(), config.config_counter(), Update::Raise);
        }
    }

    /// Raise the high-water mark of `vault_id` to `counter` (never lower it), under the lock
    /// of its state file; a failure is a warning.
    fn remember(&self, vault_id: &[u8; 16], counter: u64) {
        self.update(vault_id, counter, Update::Raise);
    }

    /// Combine `counter` with the mark of `vault_id` as `how` says, holding the state
    /// directory's lock across the read and the write; a failure is a warning.
    fn update(&self, vault_id: &[u8; 16], counter: u64, how: Update) {
        let (Some(dir), Some(path)) = (&self.state_dir, self.state_file(vault_id)) else {
            return;
        };
        if let Err(e) = update_locked(dir, &path, counter, how) {
            log::warn!(
                "cannot record the vault config counter in {}: {e}; a later rollback of this \
                 vault's config may go unnoticed on this machine",
                path.display()
            );
        }
    }
}

/// Under an exclusive `flock` on `dir` (created mode 0700): read `path`, combine its counter
/// with `counter` (`how`), and write the result if it changed.
fn update_locked(dir: &Path, path: &Path, counter: u64, how: Update) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)?;
    // Released when the guard drops, after the rename.
    let _held = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| e)?;
    let current = read_counter(path);
    let new = match (how, current) {
        (Update::Raise, Some(current)) => current.max(counter),
        _ => counter,
    };
    if current == Some(new) {
        return Ok(());
    }
    write_atomically(dir, path, new)
}

/// `counter` into `path` (in `dir`): a temporary file in the same directory, synced, then
/// renamed over `path`, so a reader sees the old or the new number. Callers hold the lock, so
/// one temporary name per process is enough.
fn write_atomically(dir: &Path, path: &Path, counter: u64) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        writeln!(file, "{counter}")?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// The counter in the state file `path` (see [`RollbackGuard::seen`]).
fn read_counter(path: &Path) -> Option<u64> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            log::warn!(
                "cannot read {}: {e}; config rollback is not checked this time",
                path.display()
            );
            return None;
        }
    };
    match text.trim().parse::<u64>() {
        Ok(n) => Some(n),
        Err(_) => {
            log::warn!(
                "{} does not hold a config counter; config rollback is not checked this time",
                path.display()
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Secret;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Barrier;
    use std::sync::atomic::{AtomicBool, Ordering};
    use zeroize::Zeroizing;

    fn key() -> Secret {
        Secret::KeyFile(Zeroizing::new([3; 32]))
    }

    #[test]
    fn older_configs_are_refused_unless_accepted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state/s3cryptfs");
        let guard = RollbackGuard::new(Some(state.clone()), false);
        let (old, mut keys) = VaultConfig::create(&key(), 4096).expect("create");
        let mut new = old.clone();
        new.add_generation(&mut keys).expect("rotate");
        new.add_generation(&mut keys).expect("rotate");
        let id = old.vault_id();

        // First sight: accepted and remembered, in a private directory.
        guard.check(&new, "mem://v").expect("first sight");
        assert_eq!(guard.seen(&id), Some(2));
        let mode = std::fs::metadata(&state).expect("dir").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let file = guard.state_file(&id).expect("file");
        assert_eq!(std::fs::read_to_string(&file).expect("read"), "2\n");
        assert_eq!(
            std::fs::read_dir(&state).expect("ls").count(),
            1,
            "no temporary file left"
        );

        let e = guard.check(&old, "mem://v").expect_err("rollback");
        assert_eq!(e, Rollback { seen: 2, got: 0 });
        assert_eq!(
            guard.seen(&id),
            Some(2),
            "a refused config is not remembered"
        );

        // Accepted on purpose: the lower counter is the new mark.
        let accept = RollbackGuard::new(Some(state.clone()), true);
        accept.check(&old, "mem://v").expect("accepted");
        assert_eq!(guard.seen(&id), Some(0));
        guard.check(&old, "mem://v").expect("now the mark");
        guard.check(&new, "mem://v").expect("newer is fine");
        assert_eq!(guard.seen(&id), Some(2));

        // `record` (after a save) only raises the mark.
        guard.record(&old);
        assert_eq!(guard.seen(&id), Some(2));
    }

    /// Threads with guards of their own, as mounts and tools of one machine are, raising the
    /// counters of two vaults at the same moment: in each round every thread brings another
    /// counter, released together by a barrier. No raise is lost (the mark is the round's
    /// largest), and a reader never sees a counter go down.
    #[test]
    fn concurrent_raises_are_never_lost() {
        const THREADS: usize = 8;
        const ROUNDS: usize = 12;
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("s3cryptfs");
        // Configs of two vaults with counters 0..=THREADS * ROUNDS.
        let vaults: Vec<Vec<VaultConfig>> = (0..2)
            .map(|_| {
                let (mut config, mut keys) = VaultConfig::create(&key(), 4096).expect("create");
                let mut all = vec![config.clone()];
                for _ in 0..THREADS * ROUNDS {
                    config.add_generation(&mut keys).expect("rotate");
                    all.push(config.clone());
                }
                all
            })
            .collect();
        let done = AtomicBool::new(false);
        let start = Barrier::new(THREADS + 1);
        let end = Barrier::new(THREADS + 1);
        let mut marks = Vec::new();
        std::thread::scope(|scope| {
            for configs in &vaults {
                let (state, done) = (&state, &done);
                let id = configs[0].vault_id();
                scope.spawn(move || {
                    let guard = RollbackGuard::new(Some(state.clone()), false);
                    let mut last = 0;
                    while !done.load(Ordering::SeqCst) {
                        if let Some(seen) = guard.seen(&id) {
                            assert!(seen >= last, "the counter went down: {last} -> {seen}");
                            last = seen;
                        }
                    }
                });
            }
            for t in 0..THREADS {
                let (state, vaults, start, end) = (&state, &vaults, &start, &end);
                scope.spawn(move || {
                    let guard = RollbackGuard::new(Some(state.clone()), false);
                    for round in 0..ROUNDS {
                        start.wait();
                        // Thread t brings counter round * THREADS + t + 1 to one vault and
                        // the mirror counter to the other.
                        let mine = round * THREADS + t + 1;
                        let mirror = round * THREADS + THREADS - t;
                        // Refused when another thread's raise came first: that is a rollback.
                        let _ = guard.check(&vaults[0][mine], "mem://a");
                        guard.record(&vaults[1][mirror]);
                        end.wait();
                    }
                });
            }
            // Checked after the scope: a panic here would leave the writers at the barrier.
            for round in 0..ROUNDS {
                start.wait();
                end.wait();
                let guard = RollbackGuard::new(Some(state.clone()), false);
                marks.extend(vaults.iter().map(|c| (round, guard.seen(&c[0].vault_id()))));
            }
            done.store(true, Ordering::SeqCst);
        });
        for (round, seen) in marks {
            let top = ((round + 1) * THREADS) as u64;
            assert_eq!(seen, Some(top), "round {round}: a raise was lost");
        }
        let mut left: Vec<String> = std::fs::read_dir(&state)
            .expect("ls")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        left.sort();
        assert!(left.is_empty(), "temporary files left: {left:?}");
    }

    #[test]
    fn unreadable_state_is_no_knowledge() {
        let dir = tempfile::tempdir().expect("tempdir");
        let guard = RollbackGuard::new(Some(dir.path().to_path_buf()), false);
        let (config, _) = VaultConfig::create(&key(), 4096).expect("create");
        let file = guard.state_file(&config.vault_id()).expect("file");
        std::fs::write(&file, "garbage\n").expect("write");
        assert_eq!(guard.seen(&config.vault_id()), None);
        guard
            .check(&config, "mem://v")
            .expect("garbage is no knowledge");
        assert_eq!(guard.seen(&config.vault_id()), Some(0), "and is replaced");

        // A state directory that cannot be written warns and lets the command go on.
        let blocked = RollbackGuard::new(Some(file.join("sub")), false);
        blocked.check(&config, "mem://v").expect("unwritable state");
        assert_eq!(blocked.seen(&config.vault_id()), None);

        // No state directory: nothing is checked.
        RollbackGuard::default()
            .check(&config, "mem://v")
            .expect("no state");
    }
}
