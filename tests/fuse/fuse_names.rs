//! Encrypted names on a mounted vault whose bucket was tampered with (docs/FORMAT.md §9): an
//! entry whose name does not decrypt is hidden from `ls`, logged once naming its store key,
//! and never shown as garbage, while every other entry lists and reads as before.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use bytes::Bytes;
use s3cryptfs::store::{CopyOptions, DirStore, ListRequest, ObjectStore, PutOptions};

use crate::common::CliVault;

/// Shortened names made in directory `long`: one stays intact, three are damaged.
const LONG_NAMES: usize = 4;

/// A 240-byte name: its encrypted segment is too long for a key segment, so it is stored as
/// `H.long` plus the name object `H.name`.
fn long_name(i: usize) -> String {
    format!("{i}-{}", "n".repeat(238))
}

fn long_content(name: &str) -> Vec<u8> {
    format!("content of {}", &name[..2]).into_bytes()
}

fn sorted_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("ls {}: {e}", dir.display()))
        .map(|e| {
            let e = e.expect("directory entry");
            // `ls -l`: every listed entry has attributes.
            e.metadata()
                .unwrap_or_else(|err| panic!("stat {}: {err}", e.path().display()));
            e.file_name().into_string().expect("a UTF-8 name")
        })
        .collect();
    names.sort();
    names
}

/// Every key of the store, in order.
async fn all_keys(store: &DirStore) -> Vec<String> {
    let mut keys = Vec::new();
    let mut token = None;
    loop {
        let page = store
            .list(&ListRequest {
                prefix: String::new(),
                delimiter: None,
                continuation_token: token.take(),
                max_keys: 1000,
            })
            .await
            .expect("list the store");
        keys.extend(page.objects.into_iter().map(|o| o.key));
        match page.next_continuation_token {
            Some(t) => token = Some(t),
            None => return keys,
        }
    }
}

async fn body(store: &DirStore, key: &str) -> Bytes {
    store.get(key, None, None).await.expect("get").data
}

async fn put(store: &DirStore, key: &str, data: Bytes) {
    store
        .put(key, data, PutOptions::default())
        .await
        .unwrap_or_else(|e| panic!("put {key}: {e}"));
}

/// Damages the bucket of a vault holding `one/only.txt`, `two/{a,b}.txt` and `LONG_NAMES`
/// shortened names in `long/`; returns the store keys of the entries that no longer decrypt.
async fn tamper(store: &DirStore) -> Vec<String> {
    // The encrypted directories of the root, told apart by how many objects each holds
    // besides its marker: `one` 1, `two` 2, `long` 2 per name.
    let mut dirs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for key in all_keys(store).await {
        if let Some((dir, rest)) = key.split_once('/')
            && !dir.starts_with('.')
            && !rest.is_empty()
        {
            dirs.entry(dir.to_owned()).or_default().push(key.clone());
        }
    }
    let holding = |n: usize| -> (String, Vec<String>) {
        let found: Vec<_> = dirs.iter().filter(|(_, keys)| keys.len() == n).collect();
        assert_eq!(found.len(), 1, "one directory holds {n} objects: {dirs:?}");
        (found[0].0.clone(), found[0].1.clone())
    };
    let (_, one) = holding(1);
    let (two, _) = holding(2);
    let (_, long) = holding(2 * LONG_NAMES);
    let mut bad = Vec::new();

    // (a) Names that are no encrypted name, or do not decrypt: a file with a well-formed
    // segment under another key (43 base64url characters, a 32-byte SIV + block), one that is
    // not base64url at all, and a directory of garbage.
    for key in ["A".repeat(43), "not base64!.txt".to_owned()] {
        put(store, &key, Bytes::from_static(b"garbage")).await;
        bad.push(key);
    }
    put(store, &format!("{}/x", "B".repeat(43)), Bytes::new()).await;
    bad.push(format!("{}/", "B".repeat(43)));

    // (b) A file moved at the store into another directory: its name is bound to the first.
    let from = &one[0];
    let segment = from.rsplit('/').next().expect("a segment");
    let to = format!("{two}/{segment}");
    store
        .copy(from, &to, CopyOptions::default())
        .await
        .expect("copy");
    store.delete(from).await.expect("delete");
    bad.push(to);

    // (c) Shortened names: one name object missing, two swapped, one left intact.
    let hashes: Vec<&str> = long
        .iter()
        .filter_map(|k| k.strip_suffix(".long"))
        .collect();
    assert_eq!(hashes.len(), LONG_NAMES, "shortened entries: {long:?}");
    store
        .delete(&format!("{}.name", hashes[0]))
        .await
        .expect("delete a name object");
    let (n1, n2) = (format!("{}.name", hashes[1]), format!("{}.name", hashes[2]));
    let (b1, b2) = (body(store, &n1).await, body(store, &n2).await);
    put(store, &n1, b2).await;
    put(store, &n2, b1).await;
    bad.extend(hashes[..3].iter().map(|h| format!("{h}.long")));
    bad
}

/// (a) garbage names, (b) a file moved into another directory at the store, (c) shortened
/// names whose name object is missing or swapped: `ls` hides each, however often it lists,
/// the daemon logs one line per bad entry naming its store key, and the other entries list
/// and read as before.
#[test]
fn undecryptable_names_are_hidden_and_logged_once() {
    let v = CliVault::init();
    let mut m = v.mount();
    let root = m.mountpoint.clone();
    for dir in ["one", "two", "long"] {
        fs::create_dir(root.join(dir)).expect("mkdir");
    }
    fs::write(root.join("one/only.txt"), b"only").expect("write");
    fs::write(root.join("two/a.txt"), b"a").expect("write");
    fs::write(root.join("two/b.txt"), b"b").expect("write");
    let long: Vec<String> = (0..LONG_NAMES).map(long_name).collect();
    for name in &long {
        fs::write(root.join("long").join(name), long_content(name)).expect("write");
    }
    m.unmount();

    let store = DirStore::open(&v.store_dir).expect("open the vault's store");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let bad = rt.block_on(tamper(&store));
    drop(store);

    m.remount();
    for _ in 0..3 {
        assert_eq!(sorted_names(&root), ["long", "one", "two"]);
        assert!(sorted_names(&root.join("one")).is_empty());
        assert_eq!(sorted_names(&root.join("two")), ["a.txt", "b.txt"]);
        let kept = sorted_names(&root.join("long"));
        assert_eq!(kept.len(), 1, "one shortened name is intact: {kept:?}");
        assert!(long.contains(&kept[0]), "{kept:?} is one of the names");
        assert_eq!(
            fs::read(root.join("long").join(&kept[0])).expect("read"),
            long_content(&kept[0])
        );
    }
    assert_eq!(fs::read(root.join("two/a.txt")).expect("read"), b"a");
    assert_eq!(fs::read(root.join("two/b.txt")).expect("read"), b"b");
    for gone in ["one/only.txt", "two/only.txt"] {
        let err = fs::metadata(root.join(gone)).expect_err("the moved file is not found");
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{gone}");
    }

    let log = m.log();
    let hidden: Vec<&str> = log.lines().filter(|l| l.contains("not listing")).collect();
    for key in &bad {
        let lines = hidden.iter().filter(|l| l.contains(key.as_str())).count();
        assert_eq!(lines, 1, "one log line names {key:?}; log:\n{log}");
    }
    assert_eq!(
        hidden.len(),
        bad.len(),
        "a log line per bad entry, none for a good one: {hidden:#?}"
    );
}
