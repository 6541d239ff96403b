//! Request counts of the operations rsync and `ls -l` do most, through a real kernel mount of
//! a MemoryStore. The numbers are recorded in docs/SEMANTICS.md; the bounds here fail when a
//! change makes them worse.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use s3cryptfs::store::{DynStore, MemoryStore, ObjectStore, Op, StatsSnapshot};

use crate::common::inproc::{mount_in_process_with, mount_in_process_with_ttl};
use crate::common::mount_in_process;

fn show(what: &str, s: &StatsSnapshot) -> String {
    let parts: Vec<String> = Op::ALL
        .iter()
        .filter(|op| s.requests(**op) > 0)
        .map(|op| format!("{op:?}={}", s.requests(*op)))
        .collect();
    let line = format!(
        "{what}: {} requests ({})",
        s.total_requests(),
        parts.join(", ")
    );
    println!("{line}");
    line
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn ls_l_and_rsync_request_counts() {
    ls_l_and_rsync_request_counts_with(false);
}

/// Encrypted names cost no request of their own: the same bounds hold.
#[test]
fn ls_l_and_rsync_request_counts_with_encrypted_names() {
    ls_l_and_rsync_request_counts_with(true);
}

fn ls_l_and_rsync_request_counts_with(encrypted_names: bool) {
    let mem = MemoryStore::new();
    let store: DynStore = mem.clone();
    // Every change is this mount's: an hour's TTL keeps the bounds below from depending on how
    // fast the machine runs `ls` and rsync (each lookup after a 1 s TTL would list or HEAD).
    let mut m = mount_in_process_with_ttl(store, encrypted_names, Duration::from_secs(3600));
    let src = m.scratch().join("src");
    std::fs::create_dir_all(src.join("many")).expect("mkdir");
    for i in 0..1000 {
        std::fs::write(src.join("many").join(format!("f{i:04}")), format!("{i}")).expect("write");
    }
    let dest = format!("{}/", m.path("dst").display());
    let src_arg = format!("{}/", src.display());
    run(Command::new("rsync").args(["-a", &src_arg, &dest]));

    // ls -l of 1,000 files, cold (after remount) and warm.
    m.remount();
    mem.reset_stats();
    let listing = run(Command::new("ls").arg("-l").arg(m.path("dst/many")));
    assert_eq!(listing.lines().count(), 1001);
    let cold = mem.stats().expect("stats");
    let line = show("ls -l 1000 files cold", &cold);
    // 1,001 keys (the files and the directory's marker): two LIST pages of up to 1,000.
    assert!(cold.requests(Op::List) <= 2, "{line}");
    assert!(cold.requests(Op::Head) <= 1010, "{line}");
    assert_eq!(cold.requests(Op::Get), 0, "{line}");
    mem.reset_stats();
    run(Command::new("ls").arg("-l").arg(m.path("dst/many")));
    let warm = mem.stats().expect("stats");
    show("ls -l 1000 files warm", &warm);

    // rsync of one new small file.
    std::fs::write(src.join("many").join("new-file"), b"new").expect("write");
    mem.reset_stats();
    let out = run(Command::new("rsync").args(["-a", "--itemize-changes", &src_arg, &dest]));
    assert!(out.contains("new-file"), "{out}");
    let one = mem.stats().expect("stats");
    let line = show("rsync one new small file", &one);
    // PUT of the temp file at close, COPY (with the attributes rsync set after close) + DELETE
    // for the rename, PUT of the directory marker for the directory's new mtime. The lookups
    // of the new name and of the temporary name are answered by the directory's listing (the
    // `ls -l` above took it; rsync's generator looks up names one by one). rsync's generator
    // sets the directory's mtime while its receiver creates and renames the file in it, which
    // change that mtime again (as on a local file system): when the generator's final
    // touch-up sees that, it sets the mtime once more, a second PUT of the marker.
    assert!(one.requests(Op::Put) <= 3, "{line}");
    assert!(one.requests(Op::Copy) <= 1, "{line}");
    assert!(one.requests(Op::Delete) <= 1, "{line}");
    assert_eq!(one.requests(Op::Get), 0, "{line}");
    assert!(one.total_requests() <= 6, "{line}");

    // A second rsync with nothing to do, after remount.
    m.remount();
    mem.reset_stats();
    let out = run(Command::new("rsync").args(["-a", "--itemize-changes", &src_arg, &dest]));
    assert!(out.trim().is_empty(), "no-change rsync transferred: {out}");
    let none = mem.stats().expect("stats");
    let line = show("rsync no change (cold)", &none);
    assert_eq!(
        none.requests(Op::Put) + none.requests(Op::Copy),
        0,
        "{line}"
    );
    assert_eq!(none.requests(Op::Get), 0, "{line}");
    // One HEAD per file (rsync stats each by name; the second name looked up in a directory
    // lists it and fetches its files' attributes in parallel), nothing per file beyond that.
    assert!(none.requests(Op::Head) <= 1010, "{line}");
    assert!(none.requests(Op::List) <= 3, "{line}");
    let _ = Arc::strong_count(&mem);
}

/// Creating files in a directory this mount made costs one PUT per file: the kernel's lookup
/// of each new name is answered by the directory's listing, not by HEADs and LISTs.
#[test]
fn creating_many_files_costs_one_put_each() {
    creating_many_files_costs_one_put_each_with(false);
}

/// With encrypted names too: a name is encrypted, not looked up.
#[test]
fn creating_many_files_with_encrypted_names_costs_one_put_each() {
    creating_many_files_costs_one_put_each_with(true);
}

fn creating_many_files_costs_one_put_each_with(encrypted_names: bool) {
    let mem = MemoryStore::new();
    let store: DynStore = mem.clone();
    // An hour's TTL: the listing made at mkdir answers every lookup however slow the run.
    let m = mount_in_process_with_ttl(store, encrypted_names, Duration::from_secs(3600));
    let dir = m.path("many");
    std::fs::create_dir(&dir).expect("mkdir");
    mem.reset_stats();
    for i in 0..300 {
        std::fs::write(dir.join(format!("f{i:03}")), format!("{i}")).expect("write");
    }
    let s = mem.stats().expect("stats");
    let line = show("create 300 files in a new directory", &s);
    assert_eq!(s.requests(Op::Put), 300, "{line}");
    assert_eq!(s.requests(Op::Head), 0, "{line}");
    // Nor a LIST: the listing lasts the hour (with the default 1 s TTL a slow run would
    // refresh it now and then).
    assert_eq!(s.requests(Op::List), 0, "{line}");
    assert_eq!(s.requests(Op::Get), 0, "{line}");
    // Every file is there and reads back, and a name never created is still missing.
    let names = std::fs::read_dir(&dir).expect("readdir").count();
    assert_eq!(names, 300);
    assert_eq!(std::fs::read(dir.join("f123")).expect("read"), b"123");
    assert!(!dir.join("f300").exists());
    // The names really are encrypted, or plaintext, as the vault says.
    let keys = mem.keys();
    let plain = keys.iter().any(|k| k.contains("many/f123"));
    assert_eq!(plain, !encrypted_names, "{:?}", &keys[..keys.len().min(5)]);
}

/// Directory times cost no request per entry operation: creating 1,000 files in a directory
/// costs one PUT each, as before directories had times (a PUT of the directory's marker on
/// each would double it). The new times are one PUT of the marker, at `fsync` of the
/// directory, and survive a remount.
#[test]
fn creating_1000_files_costs_no_request_for_directory_times() {
    use std::os::unix::fs::MetadataExt;
    let mem = MemoryStore::new();
    let store: DynStore = mem.clone();
    let mut m = mount_in_process_with_ttl(store, false, Duration::from_secs(3600));
    let dir = m.path("many");
    std::fs::create_dir(&dir).expect("mkdir");
    let made = std::fs::metadata(&dir).expect("stat");
    std::thread::sleep(std::time::Duration::from_millis(20));
    mem.reset_stats();
    for i in 0..1000 {
        std::fs::write(dir.join(format!("f{i:04}")), format!("{i}")).expect("write");
    }
    let s = mem.stats().expect("stats");
    let line = show("create 1000 files in a new directory", &s);
    // Directory times are written in the background 30 s after the first change: a run that
    // slow may see that one PUT.
    let created_puts = s.requests(Op::Put);
    assert!((1000..=1001).contains(&created_puts), "{line}");
    assert_eq!(s.requests(Op::Copy), 0, "{line}");
    // The directory's listing answers the lookups of new names for the metadata TTL (an hour
    // here; with the default 1 s, on a slow run a lookup after it expired would cost a HEAD of
    // the name and of the marker and a LIST). Times cost no HEAD either.
    assert_eq!(s.requests(Op::Head), 0, "{line}");
    assert_eq!(s.requests(Op::List), 0, "{line}");
    let changed = std::fs::metadata(&dir).expect("stat");
    assert!(changed.mtime_nsec() != made.mtime_nsec() || changed.mtime() > made.mtime());
    mem.reset_stats();
    std::fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .expect("fsync directory");
    let s = mem.stats().expect("stats");
    let line = show("fsync of the directory", &s);
    // opendir lists the directory (2 pages); the fsync itself is the one PUT (none when the
    // background write came first).
    if created_puts == 1000 {
        assert_eq!(s.requests(Op::Put), 1, "{line}");
    }
    // No COPY: the times go in the marker's PUT.
    assert_eq!(s.requests(Op::Copy), 0, "{line}");
    m.remount();
    let stored = std::fs::metadata(&dir).expect("stat after remount");
    assert_eq!(
        (
            stored.mtime(),
            stored.mtime_nsec(),
            stored.ctime(),
            stored.ctime_nsec()
        ),
        (
            changed.mtime(),
            changed.mtime_nsec(),
            changed.ctime(),
            changed.ctime_nsec()
        )
    );
}

/// A name another client creates after this mount listed the directory shows once the
/// listing's TTL has passed.
#[test]
fn a_file_made_elsewhere_shows_after_the_ttl() {
    let mem = MemoryStore::new();
    let store: DynStore = mem.clone();
    let m = mount_in_process(store.clone());
    let dir = m.path("d");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(dir.join("mine"), b"mine").expect("write");
    assert!(!dir.join("theirs").exists());
    // The other client writes with its own mount of the same store.
    let other = mount_in_process(store);
    std::fs::write(other.path("d/theirs"), b"theirs").expect("write elsewhere");
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert_eq!(std::fs::read(dir.join("theirs")).expect("read"), b"theirs");
    let names: Vec<String> = std::fs::read_dir(&dir)
        .expect("readdir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.contains(&"theirs".to_string()), "{names:?}");
}

/// A directory rename of N objects is N server-side copies and ceil(N / 1000) DeleteObjects
/// batches for the sources, not N DeleteObject requests.
#[test]
fn renaming_a_directory_deletes_its_sources_in_batches() {
    let mem = MemoryStore::new();
    let store: DynStore = mem.clone();
    let m = mount_in_process_with(store, false);
    let dir = m.path("from");
    std::fs::create_dir(&dir).expect("mkdir");
    // 1,499 files and the directory's marker: 1,500 objects, two batches.
    for i in 0..1499 {
        std::fs::write(dir.join(format!("f{i:04}")), format!("{i}")).expect("write");
    }
    mem.reset_stats();
    std::fs::rename(&dir, m.path("to")).expect("rename the directory");
    let s = mem.stats().expect("stats");
    let line = show("rename a directory of 1,500 objects", &s);
    assert_eq!(s.requests(Op::Copy), 1500, "{line}");
    assert_eq!(s.requests(Op::DeleteBatch), 2, "{line}");
    assert_eq!(s.requests(Op::Delete), 0, "{line}");
    assert!(!dir.exists());
    assert_eq!(
        std::fs::read_dir(m.path("to")).expect("readdir").count(),
        1499
    );
    assert_eq!(std::fs::read(m.path("to/f1234")).expect("read"), b"1234");
    assert!(mem.keys().iter().all(|k| !k.contains("from/")));
}
