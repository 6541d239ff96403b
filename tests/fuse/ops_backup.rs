//! `scripts/backup.sh` into a vault mounted with `s3cryptfs mount` (a directory store).
//!
//! A generated tree of more than 2,000 files (0 B to 50 MiB, nested directories, symlinks, names
//! with spaces and UTF-8, modes, mtimes in the past) is backed up; after unmounting and mounting again,
//! `diff -r` finds no difference and every mtime and mode matches. A second run after
//! changing 10 files transfers exactly those 10 (rsync's itemized output, from the script's
//! log, is checked); a third with `--delete` removes what left the source. The script's exit
//! codes are checked for the refusals cron and systemd act on.
//!
//! The store and staging directory live in /dev/shm when it exists: the directory store
//! fsyncs every object, and on a shared CI disk the fsyncs of 2,000 files take a minute,
//! while what is under test is the script and the mount, not the disk.

use std::collections::BTreeSet;
use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

use crate::common::cli::{args, run_cli};
use crate::common::{CliMount, require_fuse};

/// Regular files in the generated tree that the backup copies (excluded ones not counted).
const FILES: usize = 2_016;
/// 2001-09-09T01:46:40Z: every generated mtime is after it, and years in the past.
const BASE_MTIME: i64 = 1_000_000_000;

fn backup_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/backup.sh")
}

/// A vault on a directory store, with its key file, staging directory and log.
struct Vault {
    dir: TempDir,
    url: String,
    key_file: PathBuf,
}

impl Vault {
    fn init() -> Vault {
        require_fuse();
        let builder = {
            let mut b = tempfile::Builder::new();
            b.prefix("s3cryptfs-backup-");
            b
        };
        let dir = if Path::new("/dev/shm").is_dir() {
            builder.tempdir_in("/dev/shm")
        } else {
            builder.tempdir()
        }
        .expect("temp dir");
        let url = format!("file://{}", dir.path().join("store").display());
        let key_file = dir.path().join("vault.key");
        run_cli(
            &args([
                OsStr::new("init"),
                OsStr::new("--key-file"),
                key_file.as_os_str(),
                OsStr::new(&url),
            ]),
            &[],
        )
        .assert_ok();
        Vault { dir, url, key_file }
    }

    /// `s3cryptfs mount [EXTRA...] URL MP`.
    fn mount(&self, mp: &Path, extra: &[&str]) -> CliMount {
        std::fs::create_dir_all(mp).expect("create mount point");
        let staging = self.dir.path().join("staging");
        let log = self.dir.path().join("mount.log");
        let mut a = args([
            OsStr::new("mount"),
            OsStr::new("--key-file"),
            self.key_file.as_os_str(),
            OsStr::new("--staging-dir"),
            staging.as_os_str(),
            OsStr::new("--log-file"),
            log.as_os_str(),
        ]);
        a.extend(args(extra));
        a.extend(args([OsStr::new(&self.url), mp.as_os_str()]));
        let mut m = CliMount::start(mp.to_path_buf(), a);
        m.log_file = Some(log);
        m
    }
}

/// A small deterministic generator (xorshift64*), so a failure can be reproduced.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Set the mtime of `path` itself (not a symlink's target), with nanoseconds.
fn set_mtime(path: &Path, secs: i64, nsec: i64) {
    let c = CString::new(path.as_os_str().as_bytes()).expect("path without NUL");
    let times = [
        libc::timespec {
            tv_sec: secs,
            tv_nsec: nsec,
        },
        libc::timespec {
            tv_sec: secs,
            tv_nsec: nsec,
        },
    ];
    // SAFETY: c is a valid NUL-terminated path and times holds the two timespecs utimensat
    // reads.
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(
        r,
        0,
        "utimensat {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

/// Generated file contents: `len` bytes from `seed`.
fn contents(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = Rng(seed | 1);
    (0..len).map(|_| rng.next() as u8).collect()
}

/// The source tree: returns the relative paths of the regular files the backup copies.
fn generate_tree(root: &Path) -> Vec<String> {
    let mut rng = Rng(0x5eed_0001);
    let mut dirs = vec![String::new()];
    for a in 0..6 {
        let top = format!("dir {a}");
        dirs.push(top.clone());
        for b in 0..4 {
            let mid = format!("{top}/sous-répertoire {b}");
            dirs.push(mid.clone());
            for c in 0..3 {
                dirs.push(format!("{mid}/日本語 {c}"));
            }
        }
    }
    dirs.push("empty dir".to_owned());
    for d in &dirs {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    let names = [
        "file",
        "ünïcödé",
        "with  two  spaces",
        "emoji 🎉",
        ".hidden",
        "naïve résumé",
    ];
    let mut files = Vec::with_capacity(FILES);
    for i in 0..FILES {
        // "empty dir" stays empty.
        let dir = &dirs[i % (dirs.len() - 1)];
        let name = format!("{} {i}.dat", names[i % names.len()]);
        let rel = if dir.is_empty() {
            name
        } else {
            format!("{dir}/{name}")
        };
        let len = if i % 500 == 13 {
            // Five large files up to 50 MiB: multipart uploads streamed while rsync writes its
            // temp file, then renamed.
            [50 << 20, 17 << 20, (9 << 20) + 1, 33 << 20, (1 << 20) + 3][i / 500]
        } else if i % 250 == 7 {
            // A few files of several 64 KiB encryption blocks.
            200 * 1024 + rng.below(4096) as usize
        } else {
            rng.below(3000) as usize
        };
        let path = root.join(&rel);
        std::fs::write(&path, contents(i as u64, len)).expect("write file");
        let mode = [0o644, 0o600, 0o755, 0o640][i % 4];
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        set_mtime(
            &path,
            BASE_MTIME + i as i64 * 3_600,
            (i as i64 * 7_919) % 1_000_000_000,
        );
        files.push(rel);
    }
    // Symlinks: relative, absolute, into other directories, to directories, and dangling.
    for i in 0..40 {
        let dir = &dirs[1 + i % (dirs.len() - 2)];
        let link = root.join(dir).join(format!("link {i} → ✓"));
        let target = match i % 4 {
            0 => format!("../{}", files[i * 7].rsplit('/').next().unwrap_or("x")),
            1 => root.join(&files[i * 11]).display().to_string(),
            2 => "../../".to_owned(),
            _ => format!("does not exist {i}"),
        };
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        set_mtime(&link, BASE_MTIME - 86_400 * (i as i64 + 1), 123_456_789);
    }
    // Excluded by the backup: *.tmp anywhere, and the top-level "skip me".
    std::fs::write(root.join("dir 0/cache 1.tmp"), b"scratch").expect("write");
    std::fs::write(root.join("cache 2.tmp"), b"scratch").expect("write");
    std::fs::create_dir(root.join("skip me")).expect("mkdir");
    std::fs::write(root.join("skip me/private.txt"), b"not backed up").expect("write");
    // Directories last (writing into them changed their mtimes), deepest first.
    let mut all_dirs: Vec<&String> = dirs.iter().collect();
    all_dirs
        .sort_by_key(|d| std::cmp::Reverse(d.matches('/').count() + usize::from(!d.is_empty())));
    for (i, d) in all_dirs.iter().enumerate() {
        set_mtime(
            &root.join(d),
            BASE_MTIME + 500_000_000 + i as i64 * 60,
            5_000 + i as i64,
        );
    }
    set_mtime(&root.join("skip me"), BASE_MTIME, 0);
    files
}

/// The exclude file the backups use.
fn write_excludes(dir: &Path) -> PathBuf {
    let path = dir.join("excludes");
    std::fs::write(&path, "# scratch files\n*.tmp\n/skip me/\n").expect("write excludes");
    path
}

/// Runs backup.sh with `args`.
fn backup(args: &[&OsStr]) -> Output {
    Command::new("bash")
        .arg(backup_script())
        .args(args)
        .output()
        .expect("run scripts/backup.sh")
}

#[track_caller]
fn assert_exit(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: backup.sh should exit {code}:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The itemized changes of the last run in `log`: (11-character code, path).
fn itemized_changes(log: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(log).expect("read backup log");
    let last_run = text
        .rfind("s3cryptfs-backup: start:")
        .map_or(&text[..], |at| &text[at..]);
    last_run
        .lines()
        .filter_map(|line| {
            let code = line.get(..11)?;
            let name = line.get(12..)?;
            let is_change = code.starts_with("*deleting")
                || (line.as_bytes().get(11) == Some(&b' ')
                    && "<>ch.".contains(&code[..1])
                    && "fdLDS".contains(&code[1..2]));
            is_change.then(|| (code.to_owned(), name.to_owned()))
        })
        .collect()
}

/// Every path below `root`, relative, with "" for the root itself (symlinks not followed).
fn walk(root: &Path) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut stack = vec![String::new()];
    while let Some(rel) = stack.pop() {
        for entry in std::fs::read_dir(root.join(&rel))
            .expect("read dir")
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            let child = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if entry.file_type().expect("file type").is_dir() {
                stack.push(child.clone());
            }
            out.push(child);
        }
    }
    out.sort();
    out
}

fn is_excluded(rel: &str) -> bool {
    rel.ends_with(".tmp") || rel == "skip me" || rel.starts_with("skip me/")
}

/// Every entry of `src` (except the excluded) has the same mtime (with nanoseconds), mode
/// and type at the same place under `dest`.
fn assert_same_metadata(src: &Path, dest: &Path) {
    let mut checked = 0;
    for rel in walk(src).iter().filter(|r| !is_excluded(r)) {
        let a = std::fs::symlink_metadata(src.join(rel)).expect("source metadata");
        let b = std::fs::symlink_metadata(dest.join(rel))
            .unwrap_or_else(|e| panic!("backup of {rel:?}: {e}"));
        assert_eq!(
            a.file_type(),
            b.file_type(),
            "{rel:?}: type differs in the backup"
        );
        assert_eq!(
            (a.mtime(), a.mtime_nsec()),
            (b.mtime(), b.mtime_nsec()),
            "{rel:?}: mtime differs in the backup"
        );
        if !a.file_type().is_symlink() {
            assert_eq!(
                a.mode() & 0o7777,
                b.mode() & 0o7777,
                "{rel:?}: mode differs in the backup"
            );
        }
        checked += 1;
    }
    assert!(checked > FILES, "only {checked} entries compared");
}

fn diff_r(src: &Path, dest: &Path) {
    let out = Command::new("diff")
        .args(["-r", "--no-dereference", "-x", "*.tmp", "-x", "skip me"])
        .arg(src)
        .arg(dest)
        .output()
        .expect("run diff");
    assert!(
        out.status.success(),
        "diff -r {} {} found differences:\n{}{}",
        src.display(),
        dest.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn backup_round_trip_incremental_and_delete() {
    let vault = Vault::init();
    let work = tempfile::Builder::new()
        .prefix("s3cryptfs-backup-work-")
        .tempdir()
        .expect("temp dir");
    let src = work.path().join("source tree");
    std::fs::create_dir(&src).expect("mkdir source");
    let files = generate_tree(&src);
    let excludes = write_excludes(work.path());
    let log = work.path().join("logs/backup.log");
    let mp = work.path().join("mnt");
    let mut mount = vault.mount(&mp, &[]);
    let dest = mp.join("backups/source tree");
    let run = |extra: &[&str]| {
        let mut a: Vec<&OsStr> = vec![
            OsStr::new("--exclude-from"),
            excludes.as_os_str(),
            OsStr::new("--log"),
            log.as_os_str(),
        ];
        a.extend(extra.iter().map(OsStr::new));
        a.push(src.as_os_str());
        a.push(dest.as_os_str());
        backup(&a)
    };

    // 1. The first backup copies everything but the excluded.
    let out = run(&[]);
    assert_exit(&out, 0, "first backup");
    let changes = itemized_changes(&log);
    let created: BTreeSet<&str> = changes
        .iter()
        .filter(|(code, _)| code == ">f+++++++++")
        .map(|(_, name)| name.as_str())
        .collect();
    let expected: BTreeSet<&str> = files.iter().map(String::as_str).collect();
    assert_eq!(created, expected, "the first run should create every file");
    assert!(
        changes.iter().filter(|(c, _)| c.starts_with("cL")).count() == 40,
        "40 symlinks should be created: {changes:?}"
    );

    // 2. Everything survives an unmount and a new mount.
    mount.remount();
    diff_r(&src, &dest);
    assert_same_metadata(&src, &dest);
    for excluded in ["dir 0/cache 1.tmp", "cache 2.tmp", "skip me"] {
        assert!(
            !dest.join(excluded).exists(),
            "{excluded} is excluded but was backed up"
        );
    }

    // 3. After changing 10 files, exactly those are transferred.
    let changed: Vec<&String> = (0..10).map(|k| &files[k * 199 + 3]).collect();
    for (k, rel) in changed.iter().enumerate() {
        let path = src.join(rel);
        let old_len = std::fs::metadata(&path).expect("stat").len() as usize;
        // Half keep their size (only content and mtime differ), half grow.
        let len = if k % 2 == 0 { old_len } else { old_len + 100 };
        std::fs::write(&path, contents(1_000_000 + k as u64, len)).expect("rewrite");
        set_mtime(&path, BASE_MTIME + 400_000_000 + k as i64, 42);
    }
    let out = run(&[]);
    assert_exit(&out, 0, "second backup");
    let changes = itemized_changes(&log);
    let transferred: BTreeSet<&str> = changes
        .iter()
        .filter(|(code, _)| code.starts_with(">f"))
        .map(|(_, name)| name.as_str())
        .collect();
    let want: BTreeSet<&str> = changed.iter().map(|s| s.as_str()).collect();
    assert_eq!(
        transferred, want,
        "the second run should transfer exactly the 10 changed files; all changes: {changes:?}"
    );
    assert!(
        !changes
            .iter()
            .any(|(code, _)| code.starts_with('c') || code.starts_with('*')),
        "the second run created or deleted something: {changes:?}"
    );
    mount.remount();
    diff_r(&src, &dest);
    assert_same_metadata(&src, &dest);

    // 4. --delete removes what left the source.
    let gone = [&files[5], &files[500], &files[1500]];
    for rel in gone {
        std::fs::remove_file(src.join(rel)).expect("remove");
    }
    std::fs::remove_dir(src.join("empty dir")).expect("rmdir");
    let out = run(&["--delete"]);
    assert_exit(&out, 0, "backup with --delete");
    let deleted: BTreeSet<String> = itemized_changes(&log)
        .into_iter()
        .filter(|(code, _)| code.starts_with("*deleting"))
        .map(|(_, name)| name.trim().trim_end_matches('/').to_owned())
        .collect();
    let want: BTreeSet<String> = gone
        .iter()
        .map(|s| s.to_string())
        .chain(["empty dir".to_owned()])
        .collect();
    assert_eq!(deleted, want, "--delete should remove exactly what left");
    diff_r(&src, &dest);
    mount.unmount();
}

#[test]
fn refusals_have_distinct_exit_codes() {
    let vault = Vault::init();
    let work = tempfile::Builder::new()
        .prefix("s3cryptfs-backup-refuse-")
        .tempdir()
        .expect("temp dir");
    let src = work.path().join("src");
    std::fs::create_dir_all(src.join("d")).expect("mkdir");
    std::fs::write(src.join("d/f"), b"x").expect("write");
    let plain = work.path().join("plain dir");

    // Not a mounted vault: 3, and nothing copied.
    let out = backup(&[src.as_os_str(), plain.as_os_str()]);
    assert_exit(&out, 3, "plain directory destination");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not on a mounted s3cryptfs"));
    assert!(!plain.exists(), "nothing may be created when refusing");

    // Bad command lines and a missing source or exclude file: 2.
    assert_exit(&backup(&[src.as_os_str()]), 2, "one operand");
    assert_exit(
        &backup(&[
            OsStr::new("--frobnicate"),
            src.as_os_str(),
            plain.as_os_str(),
        ]),
        2,
        "unknown option",
    );
    let missing = work.path().join("missing");
    assert_exit(
        &backup(&[missing.as_os_str(), plain.as_os_str()]),
        2,
        "missing source",
    );
    assert_exit(
        &backup(&[
            OsStr::new("--exclude-from"),
            missing.as_os_str(),
            src.as_os_str(),
            plain.as_os_str(),
        ]),
        2,
        "missing exclude file",
    );

    // A read-only mount of the vault: 3.
    let ro_mp = work.path().join("ro");
    let mut ro = vault.mount(&ro_mp, &["-o", "ro"]);
    let out = backup(&[src.as_os_str(), ro_mp.join("b").as_os_str()]);
    assert_exit(&out, 3, "read-only vault");
    assert!(String::from_utf8_lossy(&out.stderr).contains("read-only"));
    ro.unmount();

    // Another backup to the same destination holds the lock: 4. Then it works: 0.
    let mp = work.path().join("mnt");
    let mut mount = vault.mount(&mp, &[]);
    let dest = mp.join("b");
    let lock = lock_path(&dest);
    let lock_file = std::fs::File::create(&lock).expect("create lock file");
    assert_eq!(
        // SAFETY: flock on a descriptor we own.
        unsafe {
            libc::flock(
                std::os::fd::AsRawFd::as_raw_fd(&lock_file),
                libc::LOCK_EX | libc::LOCK_NB,
            )
        },
        0
    );
    let out = backup(&[src.as_os_str(), dest.as_os_str()]);
    assert_exit(&out, 4, "lock held");
    drop(lock_file);
    let out = backup(&[src.as_os_str(), dest.as_os_str()]);
    assert_exit(&out, 0, "lock released");
    assert_eq!(std::fs::read(dest.join("d/f")).expect("backed up"), b"x");
    // Without --log, the itemized changes go to stdout.
    assert!(String::from_utf8_lossy(&out.stdout).contains(">f+++++++++ d/f"));
    mount.unmount();
}

/// The lock file backup.sh takes for `dest` (see the script).
fn lock_path(dest: &Path) -> PathBuf {
    use md5::{Digest, Md5};
    // SAFETY: geteuid has no preconditions.
    let dir = if unsafe { libc::geteuid() } == 0 {
        PathBuf::from("/run/lock")
    } else {
        std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/tmp"))
    };
    // As `realpath -m`: the existing parent resolved, the missing last component kept.
    let parent = dest
        .parent()
        .expect("parent")
        .canonicalize()
        .expect("canonical parent");
    let dest = parent.join(dest.file_name().expect("name"));
    let hash = Md5::digest(dest.as_os_str().as_bytes());
    dir.join(format!(
        "s3cryptfs-backup-{}.lock",
        &hex::encode(hash)[..16]
    ))
}
