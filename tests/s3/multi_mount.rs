//! Several mounts of one vault on moto, as several machines would have it (each its own daemon,
//! staging directory and caches; one host, so their conflict names share the host part).
//!
//! `two_writers_of_one_file_keep_both_versions`: both open one file, both write, both close:
//! the second `close` fails with ESTALE, its data is kept as `NAME.conflict-HOST-TIME`, `status`
//! names it, and `unmount` exits 0 with nothing left unstored.
//! `a_conflict_told_to_another_close_fails_the_fsync_too`: the same when another descriptor's
//! close (a forked child's) met the conflict first: the application's `fsync` still fails.
//!
//! `three_mounts_random_namespace_stress`: three mounts run seeded random create / write /
//! rename / unlink / mkdir / rmdir / directory renames over a small set of shared names, after
//! two scripted rounds that make conflicts certain (three writers of one file; a directory
//! renamed by one mount while another writes inside it). Afterwards `verify --deep` is clean
//! and a fresh mount's tree holds every write as the model requires.
//!
//! What "acknowledged" means, and what the check allows. Every write is a whole file (open with
//! `O_CREAT` and `O_TRUNC` or `O_EXCL`, one `write`, `close`) whose content names itself: a
//! header with the mount, the operation number and the SHA-256 of the rest. A write is
//! *acknowledged* when its `write` and `close` returned success; a write whose `close` failed
//! (ESTALE/EIO: another client changed or deleted the file meanwhile) is held to the same
//! rule, since its data must be kept as a conflict copy. Contents move (file and directory
//! renames, by any mount) but the check finds them by their header anywhere in the tree, so
//! a move never excuses a missing write. A write W may be missing only when an operation that
//! destroys content on purpose may have hit it: one that succeeded, did not end before W
//! began, and acted on a name W's content may have been at (W's name and every name renames
//! not ended before W began may have moved it to), being an `unlink` of that name, a file
//! rename onto it, or an acknowledged write to it that was *opened after W's close returned*
//! (a write opened while W was open is concurrent: it must conflict, not replace W). Every
//! other acknowledged (or refused-at-close) write must be in the tree exactly once; no write
//! may be there twice; a write whose `open` failed must not be there at all; every file must
//! be a whole, intact write. The clock is one counter shared by the three workers, read just
//! before each call starts and just after it returns.
//!
//! The seed (printed; `S3CRYPTFS_TEST_SEED` replays it) fixes each worker's operations; the
//! interleaving of the three is the scheduler's, so a failure prints the whole log.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::fuse_s3::moto;
use crate::common::cli::{CliMount, run_cli};
use crate::common::s3vault::S3Vault;
use crate::common::scenarios;
use crate::common::wait_until;

fn status_json(m: &CliMount) -> Value {
    let out = run_cli(
        &[
            OsStr::new("status"),
            OsStr::new("--json"),
            m.mountpoint.as_os_str(),
        ],
        &[],
    );
    out.assert_ok();
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.describe()))
}

/// Waits until `m` sees `rel` (another mount made it; this one may have cached its absence
/// for `metadata_ttl`).
fn wait_visible(m: &CliMount, rel: &str) {
    assert!(
        wait_until(Duration::from_secs(20), || m.path(rel).exists()),
        "{} never saw {rel}",
        m.mountpoint.display()
    );
}

/// `rel` in `m`, opened for writing and truncated.
fn open_trunc(m: &CliMount, rel: &str) -> fs::File {
    OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(m.path(rel))
        .unwrap_or_else(|e| panic!("open {rel}: {e}"))
}

/// The one conflict copy of `name` that `m` lists next to it.
fn conflict_copy(m: &CliMount, name: &str) -> String {
    let names: Vec<String> = fs::read_dir(&m.mountpoint)
        .expect("list the mount")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .collect();
    let prefix = format!("{name}.conflict-");
    let copies: Vec<&String> = names.iter().filter(|n| n.starts_with(&prefix)).collect();
    assert_eq!(copies.len(), 1, "{names:?}");
    copies[0].clone()
}

/// Mounts `a` and `b` of one vault; both open `s.txt` (which `a` wrote) truncated and write
/// to it, then `a` stores its version first. Returns `b`'s handle, whose version lost.
fn b_opened_then_a_stored(hint: &str) -> (S3Vault, CliMount, CliMount, fs::File) {
    let v = S3Vault::init(moto(), hint, &[]);
    let a = v.mount_named("a", &[]);
    let b = v.mount_named("b", &[]);
    fs::write(a.path("s.txt"), b"first").expect("write s.txt");
    wait_visible(&b, "s.txt");
    let mut fa = open_trunc(&a, "s.txt");
    let mut fb = open_trunc(&b, "s.txt");
    fa.write_all(b"from a").expect("write a");
    fb.write_all(b"from b").expect("write b");
    fa.sync_all().expect("a's fsync: the first to store wins");
    drop(fa);
    (v, a, b, fb)
}

#[test]
fn two_writers_of_one_file_keep_both_versions() {
    let (v, mut a, mut b, fb) = b_opened_then_a_stored("two-writers");
    let err = fb
        .sync_all()
        .expect_err("b's fsync must fail: a replaced the file b opened");
    assert!(
        matches!(err.raw_os_error(), Some(libc::ESTALE) | Some(libc::EIO)),
        "b's fsync failed with {err}"
    );
    drop(fb);
    // b's version is kept next to the file, named for the conflict.
    let copy = &conflict_copy(&b, "s.txt");
    let host_time = &copy["s.txt.conflict-".len()..];
    let time = host_time.rsplit('-').next().unwrap_or_default();
    assert!(
        time.len() == 16 && time.ends_with('Z') && time.as_bytes()[8] == b'T',
        "{copy}: no HOST-TIME suffix"
    );
    assert_eq!(fs::read(b.path(copy)).expect("read copy"), b"from b");
    assert_eq!(fs::read(b.path("s.txt")).expect("read s.txt"), b"from a");
    let st = status_json(&b);
    assert_eq!(st["counts"]["conflict_copies"], 1, "{st:#}");
    let recent = st["counts"]["recent_conflict_copies"].to_string();
    assert!(recent.contains(copy.as_str()), "{st:#}");
    assert!(b.log().contains("conflict"), "{}", b.log());
    // Nothing is unstored, so both unmount at once with success; a third mount sees both.
    let out = b.try_unmount(&[]);
    out.assert_ok();
    a.unmount();
    let mut c = v.mount_named("c", &[]);
    assert_eq!(fs::read(c.path(copy)).expect("read copy"), b"from b");
    assert_eq!(fs::read(c.path("s.txt")).expect("read s.txt"), b"from a");
    c.unmount();
}

/// The conflict is told to whichever `close` of the handle comes first, and that need not be
/// the application's: a child forked while the file was open closes its copy of the
/// descriptor (at exec or exit), and that close sends a flush, which uploads and meets the
/// conflict. The application's own `fsync` after it must fail too, not find nothing left to
/// upload and succeed (round 1 of the stress test saw that when another test forked).
#[test]
fn a_conflict_told_to_another_close_fails_the_fsync_too() {
    let (_v, mut a, mut b, fb) = b_opened_then_a_stored("other-close");
    // What a forked child does to its inherited descriptor: close it.
    drop(fb.try_clone().expect("dup b's descriptor"));
    let err = fb
        .sync_all()
        .expect_err("b's fsync must fail: its data is not at the name");
    assert_eq!(err.raw_os_error(), Some(libc::ESTALE), "b's fsync: {err}");
    drop(fb);
    let copy = conflict_copy(&b, "s.txt");
    assert_eq!(fs::read(b.path(&copy)).expect("read copy"), b"from b");
    assert_eq!(fs::read(b.path("s.txt")).expect("read s.txt"), b"from a");
    b.unmount();
    a.unmount();
}

// ---- the stress test ----

const MOUNTS: usize = 3;
const DIRS: [&str; 3] = ["d0", "d1", "d2"];
const FILES: [&str; 3] = ["f0", "f1", "f2"];

#[derive(Clone, Debug)]
enum Op {
    Write { path: String, excl: bool },
    Rename { from: String, to: String },
    Unlink(String),
    Mkdir(String),
    Rmdir(String),
    RenameDir { from: String, to: String },
}

/// How far a write got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wrote {
    NotOpened,
    WriteFailed,
    CloseFailed(i32),
    Acked,
    /// Not a write.
    None,
}

#[derive(Clone, Debug)]
struct Record {
    id: String,
    op: Op,
    start: u64,
    end: u64,
    ok: bool,
    errno: i32,
    wrote: Wrote,
}

/// The shared clock.
static CLOCK: AtomicU64 = AtomicU64::new(0);

fn tick() -> u64 {
    CLOCK.fetch_add(1, Ordering::SeqCst)
}

fn payload(seed: u64, id: &str, rng: &mut StdRng) -> Vec<u8> {
    let len = rng.gen_range(16..3000);
    let mut body = vec![0u8; len];
    StdRng::seed_from_u64(seed ^ rng.r#gen::<u64>()).fill(&mut body[..]);
    let hash = hex::encode(Sha256::digest(&body));
    let mut out = format!("S3CFS-STRESS {id} {hash}\n").into_bytes();
    out.extend_from_slice(&body);
    out
}

/// The write a file holds, if it is a whole one.
fn parse(content: &[u8]) -> Option<String> {
    let nl = content.iter().position(|&b| b == b'\n')?;
    let header = std::str::from_utf8(&content[..nl]).ok()?;
    let mut parts = header.split(' ');
    let (magic, id, hash) = (parts.next()?, parts.next()?, parts.next()?);
    let body = &content[nl + 1..];
    (magic == "S3CFS-STRESS" && hex::encode(Sha256::digest(body)) == hash).then(|| id.to_owned())
}

fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(-1)
}

/// One whole-file write through `root`, held open `hold` before the close.
fn do_write(root: &Path, path: &str, excl: bool, data: &[u8], hold: Duration) -> (Wrote, i32) {
    let mut o = OpenOptions::new();
    o.write(true);
    if excl {
        o.create_new(true);
    } else {
        o.create(true).truncate(true);
    }
    let mut f = match o.open(root.join(path)) {
        Ok(f) => f,
        Err(e) => return (Wrote::NotOpened, errno(&e)),
    };
    if let Err(e) = f.write_all(data) {
        return (Wrote::WriteFailed, errno(&e));
    }
    std::thread::sleep(hold);
    // close(2)'s error is the flush's: fsync first reports it, then close repeats nothing.
    match f.sync_all() {
        Ok(()) => (Wrote::Acked, 0),
        Err(e) => (Wrote::CloseFailed(errno(&e)), errno(&e)),
    }
}

fn run_op(root: &Path, op: &Op) -> Result<(), i32> {
    let p = |s: &str| root.join(s);
    let r = match op {
        Op::Write { .. } => unreachable!("writes go through do_write"),
        Op::Rename { from, to } | Op::RenameDir { from, to } => fs::rename(p(from), p(to)),
        Op::Unlink(path) => fs::remove_file(p(path)),
        Op::Mkdir(path) => fs::create_dir(p(path)),
        Op::Rmdir(path) => fs::remove_dir(p(path)),
    };
    r.map_err(|e| errno(&e))
}

fn random_file(rng: &mut StdRng) -> String {
    let f = FILES[rng.gen_range(0..FILES.len())];
    match rng.gen_range(0..4) {
        0 => f.to_owned(),
        _ => format!("{}/{f}", DIRS[rng.gen_range(0..DIRS.len())]),
    }
}

fn random_op(rng: &mut StdRng) -> Op {
    let dir = |rng: &mut StdRng| DIRS[rng.gen_range(0..DIRS.len())].to_owned();
    match rng.gen_range(0..100) {
        0..40 => Op::Write {
            path: random_file(rng),
            excl: false,
        },
        40..46 => Op::Write {
            path: random_file(rng),
            excl: true,
        },
        46..60 => Op::Rename {
            from: random_file(rng),
            to: random_file(rng),
        },
        60..70 => Op::Unlink(random_file(rng)),
        70..80 => Op::Mkdir(dir(rng)),
        80..88 => Op::Rmdir(dir(rng)),
        _ => Op::RenameDir {
            from: dir(rng),
            to: dir(rng),
        },
    }
}

/// Runs `op` as write `id` (or any other operation) on `root`, recording it.
fn record(root: &Path, id: String, op: Op, data: &[u8], hold: Duration) -> Record {
    let start = tick();
    let (ok, errno, wrote) = match &op {
        Op::Write { path, excl } => {
            let (w, e) = do_write(root, path, *excl, data, hold);
            (w == Wrote::Acked, e, w)
        }
        other => match run_op(root, other) {
            Ok(()) => (true, 0, Wrote::None),
            Err(e) => (false, e, Wrote::None),
        },
    };
    Record {
        id,
        op,
        start,
        end: tick(),
        ok,
        errno,
        wrote,
    }
}

/// Directory renames of the random round run alone (`dir_moves` held for writing), every other
/// operation side by side (held for reading): a directory rename lists its sources again
/// before deleting them and keeps those changed since their copy, but an overwrite landing
/// between that listing and the delete is deleted with them (docs/SEMANTICS.md, "Consistency
/// with other clients"). File renames delete their source only if it is still the version
/// copied, so they run side by side. Round 2 keeps a write open across a directory rename,
/// which is safe.
fn worker(root: &Path, mount: usize, seed: u64, ops: usize, dir_moves: &RwLock<()>) -> Vec<Record> {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_add(mount as u64 * 0x9E37_79B9));
    (0..ops)
        .map(|n| {
            let op = random_op(&mut rng);
            let id = format!("m{mount}-op{n}");
            let data = payload(seed, &id, &mut rng);
            let hold = Duration::from_millis(rng.gen_range(0..60));
            if matches!(op, Op::RenameDir { .. }) {
                let _alone = dir_moves.write().unwrap_or_else(|p| p.into_inner());
                record(root, id, op, &data, hold)
            } else {
                let _shared = dir_moves.read().unwrap_or_else(|p| p.into_inner());
                record(root, id, op, &data, hold)
            }
        })
        .collect()
}

/// The names the content of a write (to `path`, begun at `start`) may have been moved to.
fn locations(path: &str, start: u64, log: &[Record]) -> BTreeSet<String> {
    let mut locs = BTreeSet::from([path.to_owned()]);
    loop {
        let before = locs.len();
        for r in log.iter().filter(|r| r.end > start) {
            match &r.op {
                Op::Rename { from, to } if locs.contains(from) => {
                    locs.insert(to.clone());
                }
                Op::RenameDir { from, to } => {
                    let below = format!("{from}/");
                    let moved: Vec<String> = locs
                        .iter()
                        .filter_map(|l| l.strip_prefix(&below).map(|rest| format!("{to}/{rest}")))
                        .collect();
                    locs.extend(moved);
                }
                _ => {}
            }
        }
        if locs.len() == before {
            return locs;
        }
    }
}

/// Whether an operation of `log` may have destroyed write `w` on purpose (module comment).
fn excused(w: &Record, path: &str, log: &[Record]) -> Option<String> {
    let locs = locations(path, w.start, log);
    log.iter()
        .filter(|d| d.ok && d.end > w.start && d.id != w.id)
        .find(|d| match &d.op {
            Op::Unlink(l) => locs.contains(l),
            Op::Rename { to, .. } => locs.contains(to),
            Op::Write { path: l, .. } => d.start > w.end && locs.contains(l),
            _ => false,
        })
        .map(|d| format!("{} {:?}", d.id, d.op))
}

/// Every regular file below `root` (relative path -> content).
fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap_or_else(|e| panic!("list {}: {e}", dir.display())) {
            let e = e.expect("entry");
            let p = e.path();
            if e.file_type().expect("type").is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(root).expect("below").display().to_string();
                let data = fs::read(&p).unwrap_or_else(|e| panic!("read {rel}: {e}"));
                out.insert(rel, data);
            }
        }
    }
    out
}

/// Checks the tree against the log (module comment); returns the problems found.
fn check(files: &BTreeMap<String, Vec<u8>>, log: &[Record]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, data) in files {
        match parse(data) {
            Some(id) => found.entry(id).or_default().push(name.clone()),
            None => problems.push(format!("{name}: not a whole write ({} bytes)", data.len())),
        }
    }
    for w in log {
        let Op::Write { path, .. } = &w.op else {
            continue;
        };
        let at = found.remove(&w.id).unwrap_or_default();
        let must = matches!(w.wrote, Wrote::Acked | Wrote::CloseFailed(_));
        match (w.wrote, at.len()) {
            (_, n) if n > 1 => {
                problems.push(format!("{} ({path}) is stored {n} times: {at:?}", w.id))
            }
            (Wrote::NotOpened, 1) => problems.push(format!(
                "{} ({path}) was never opened but is at {at:?}",
                w.id
            )),
            (_, 0) if must && excused(w, path, log).is_none() => problems.push(format!(
                "{} ({path}, {:?}, clock {}..{}) is lost",
                w.id, w.wrote, w.start, w.end
            )),
            _ => {}
        }
    }
    for (id, at) in found {
        problems.push(format!("{id} at {at:?} is no write of the log"));
    }
    problems
}

#[test]
fn three_mounts_random_namespace_stress() {
    let seed = scenarios::test_seed(0x5EED_3A17);
    let ops = scenarios::test_ops(40);
    let v = S3Vault::init(moto(), "multi-mount", &[]);
    let mut mounts: Vec<CliMount> = (0..MOUNTS)
        .map(|i| v.mount_named(&format!("m{i}"), &[]))
        .collect();
    let roots: Vec<_> = mounts.iter().map(|m| m.mountpoint.clone()).collect();
    let mut log = Vec::new();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut scripted = |log: &mut Vec<Record>, m: usize, id: &str, op: Op| {
        let data = payload(seed, id, &mut rng);
        let r = record(&roots[m], id.to_owned(), op, &data, Duration::ZERO);
        log.push(r.clone());
        r
    };

    // Round 1: three writers of one file, closing in turn; the last two must conflict.
    let first = scripted(&mut log, 0, "s-hot", write_op("hot"));
    assert!(first.ok, "{first:?}");
    for m in &mounts {
        wait_visible(m, "hot");
    }
    let mut handles: Vec<(String, fs::File)> = (0..MOUNTS)
        .map(|i| {
            let id = format!("s-hot-{i}");
            let mut f = OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(roots[i].join("hot"))
                .expect("open hot");
            f.write_all(&payload(seed, &id, &mut StdRng::seed_from_u64(i as u64)))
                .expect("write hot");
            (id, f)
        })
        .collect();
    let opened = tick();
    for (id, f) in handles.drain(..) {
        log.push(closed(id, "hot", opened, f));
    }
    let refused = log.iter().filter(|r| r.id.starts_with("s-hot-") && !r.ok);
    let logs: Vec<String> = mounts.iter().map(|m| m.log()).collect();
    assert_eq!(
        refused.count(),
        2,
        "{log:#?}\ndaemon logs:\n{}",
        logs.join("\n---\n")
    );

    // Round 2: a directory renamed by one mount while another writes inside it (a new file
    // and one that existed).
    assert!(scripted(&mut log, 0, "s-mkdir", Op::Mkdir("d0".into())).ok);
    assert!(scripted(&mut log, 0, "s-old", write_op("d0/f0")).ok);
    wait_visible(&mounts[1], "d0/f0");
    let mut inside: Vec<(String, fs::File)> = ["d0/f0", "d0/f1"]
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let id = format!("s-inside-{i}");
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(roots[1].join(p))
                .expect("open inside");
            f.write_all(&payload(
                seed,
                &id,
                &mut StdRng::seed_from_u64(9 + i as u64),
            ))
            .expect("write inside");
            (id, f)
        })
        .collect();
    let opened = tick();
    let moved = scripted(
        &mut log,
        0,
        "s-move",
        Op::RenameDir {
            from: "d0".into(),
            to: "d1".into(),
        },
    );
    assert!(moved.ok, "{moved:?}");
    for ((id, f), p) in inside.drain(..).zip(["d0/f0", "d0/f1"]) {
        log.push(closed(id, p, opened, f));
    }

    // Round 3: the three at random.
    let dir_moves = RwLock::new(());
    let logs: Vec<Vec<Record>> = std::thread::scope(|s| {
        let workers: Vec<_> = roots
            .iter()
            .enumerate()
            .map(|(i, root)| {
                let dir_moves = &dir_moves;
                s.spawn(move || worker(root, i, seed, ops, dir_moves))
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("worker"))
            .collect()
    });
    log.extend(logs.into_iter().flatten());

    // Every mount stores what it holds before its unmount returns, with success.
    for m in &mut mounts {
        m.unmount();
    }
    v.run(&["verify", "--deep"]).assert_ok();
    let check_mount = v.mount_named("check", &[]);
    let files = tree(&check_mount.mountpoint);
    let copies = files.keys().filter(|n| n.contains(".conflict-")).count();
    let problems = check(&files, &log);
    let summary = summarize(&log);
    assert!(
        problems.is_empty(),
        "seed {seed}: {} problem(s):\n{}\n{summary}\nfiles: {:?}\nlog: {log:#?}",
        problems.len(),
        problems.join("\n"),
        files.keys().collect::<Vec<_>>()
    );
    assert!(
        copies >= 2,
        "seed {seed}: {copies} conflict copies\n{summary}"
    );
    eprintln!(
        "seed {seed}: {} files, {copies} conflict copies; {summary}",
        files.len()
    );
}

/// The record of write `id` to `path`, opened (and written) at clock `opened`, once `f` is
/// synced and closed.
fn closed(id: String, path: &str, opened: u64, f: fs::File) -> Record {
    let r = f.sync_all();
    Record {
        id,
        op: write_op(path),
        start: opened,
        end: tick(),
        ok: r.is_ok(),
        errno: r.as_ref().err().map(errno).unwrap_or(0),
        wrote: match &r {
            Ok(()) => Wrote::Acked,
            Err(e) => Wrote::CloseFailed(errno(e)),
        },
    }
}

fn write_op(path: &str) -> Op {
    Op::Write {
        path: path.to_owned(),
        excl: false,
    }
}

/// Operations by kind and outcome, for the messages.
fn summarize(log: &[Record]) -> String {
    let mut by: BTreeMap<String, u32> = BTreeMap::new();
    for r in log {
        let kind = format!("{:?}", r.op);
        let kind = kind.split([' ', '(']).next().unwrap_or_default().to_owned();
        let outcome = match (r.ok, r.wrote) {
            (true, _) => "ok".to_owned(),
            (false, Wrote::CloseFailed(e)) => format!("close errno {e}"),
            (false, _) => format!("errno {}", r.errno),
        };
        *by.entry(format!("{kind} {outcome}")).or_default() += 1;
    }
    format!("{by:?}")
}
