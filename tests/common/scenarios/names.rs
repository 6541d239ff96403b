//! Names at the 255-byte limit of a directory entry, ASCII and multi-byte UTF-8.

use super::*;

/// Names of 252 to 255 bytes: ASCII, 2-byte and 3-byte characters, every one a whole name.
pub fn long_test_names() -> Vec<String> {
    let mut names: Vec<String> = (252..=255).map(|n| "a".repeat(n)).collect();
    names.push(format!("{}z", "é".repeat(126))); // 253 bytes
    names.push("é".repeat(127)); // 254
    names.push(format!("{}xyz", "日".repeat(84))); // 255
    names.push(format!("{}x", "日".repeat(84))); // 253
    for n in &names {
        assert!((252..=255).contains(&n.len()), "{n:?} is {} bytes", n.len());
    }
    names
}

/// `name` with its first character replaced by `mark` and ASCII filler: as many bytes, and
/// distinct for distinct names of one set.
fn remark(name: &str, mark: char) -> String {
    let first = name.chars().next().expect("non-empty name");
    let filler = mark.to_ascii_lowercase().to_string();
    format!(
        "{mark}{}{}",
        filler.repeat(first.len_utf8() - 1),
        &name[first.len_utf8()..]
    )
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

fn entries(dir: &Path) -> Vec<String> {
    let mut found: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("readdir {}: {e}", dir.display()))
        .map(|e| {
            let name = e.expect("entry").file_name();
            name.into_string().expect("UTF-8 name")
        })
        .collect();
    found.sort();
    found
}

/// Create, stat, rename, readdir and unlink files and directories named 252 to 255 bytes, in a
/// directory whose own name is 255 bytes; a 256-byte name is ENAMETOOLONG. Survives remount.
pub fn long_names(root: &Path, remount: Remount) {
    let names = long_test_names();
    let top = root.join("b".repeat(255));
    fs::create_dir(&top).expect("mkdir a 255-byte name");
    for (i, name) in names.iter().enumerate() {
        let p = top.join(name);
        fs::write(&p, name.as_bytes())
            .unwrap_or_else(|e| panic!("create {} bytes: {e}", name.len()));
        assert_eq!(fs::metadata(&p).expect("stat").len(), name.len() as u64);
        if i % 2 == 0 {
            let d = top.join(remark(name, 'D'));
            fs::create_dir(&d).expect("mkdir long");
            fs::write(d.join(name), b"inner").expect("create in a long directory");
        }
    }
    let dirs: Vec<String> = names.iter().step_by(2).map(|n| remark(n, 'D')).collect();
    let mut want: Vec<String> = names.iter().chain(&dirs).cloned().collect();
    assert_eq!(entries(&top), sorted(want.clone()));
    assert_errnos([
        fails("create a 256-byte name", libc::ENAMETOOLONG, || {
            File::create(top.join("c".repeat(256)))
        }),
        fails("mkdir a 256-byte name", libc::ENAMETOOLONG, || {
            fs::create_dir(top.join(format!("{}é", "c".repeat(254))))
        }),
    ]);

    // Rename each file to another name of the same length.
    let renamed: Vec<String> = names.iter().map(|n| remark(n, 'R')).collect();
    for (from, to) in names.iter().zip(&renamed) {
        fs::rename(top.join(from), top.join(to))
            .unwrap_or_else(|e| panic!("rename {} -> {} bytes: {e}", from.len(), to.len()));
        assert_errno(
            "stat the old name",
            fs::metadata(top.join(from)),
            libc::ENOENT,
        );
    }
    want = renamed.iter().chain(&dirs).cloned().collect();
    assert_eq!(entries(&top), sorted(want.clone()));
    remount();
    assert_eq!(entries(&top), sorted(want), "after remount");
    for (name, to) in names.iter().zip(&renamed) {
        assert_eq!(fs::read(top.join(to)).expect("read"), name.as_bytes());
    }
    for (d, name) in dirs.iter().zip(names.iter().step_by(2)) {
        assert_eq!(fs::read(top.join(d).join(name)).expect("read"), b"inner");
        fs::remove_dir_all(top.join(d)).expect("rm -r a long directory");
    }
    for to in &renamed {
        fs::remove_file(top.join(to)).expect("unlink");
    }
    assert!(entries(&top).is_empty());
    fs::remove_dir(&top).expect("rmdir a 255-byte name");
    remount();
    assert!(
        !entries(root).iter().any(|n| n.len() > 250),
        "nothing long is left after remount"
    );
}
