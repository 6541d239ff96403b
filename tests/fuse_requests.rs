//! Request counts of the operations rsync and `ls -l` do most, through a real kernel mount of
//! a MemoryStore. The numbers are recorded in docs/SEMANTICS.md; the bounds here fail when a
//! change makes them worse.

mod common;

use std::process::Command;
use std::sync::Arc;

use common::mount_in_process;
use s3cryptfs::store::{DynStore, MemoryStore, ObjectStore, Op, StatsSnapshot};

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
    let mem = MemoryStore::new();
    let store: DynStore = mem.clone();
    let mut m = mount_in_process(store);
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
    // for the rename, PUT of the directory marker for the directory's new mtime.
    assert!(one.requests(Op::Put) <= 2, "{line}");
    assert!(one.requests(Op::Copy) <= 1, "{line}");
    assert!(one.requests(Op::Delete) <= 1, "{line}");
    assert_eq!(one.requests(Op::Get), 0, "{line}");
    assert!(one.total_requests() <= 12, "{line}");

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
    // One HEAD per file (rsync stats each by name), nothing per file beyond that.
    assert!(none.requests(Op::Head) <= 1010, "{line}");
    let _ = Arc::strong_count(&mem);
}
