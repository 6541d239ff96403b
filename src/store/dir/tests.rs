//! DirStore-specific tests: opening, on-disk layout and crash safety. The S3 behaviour shared
//! with the other stores is tested in `tests/fast/store_conformance.rs`.

use super::*;

fn store() -> (tempfile::TempDir, DirStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = DirStore::open(dir.path()).expect("open empty dir");
    (dir, store)
}

/// Every file under `dir` whose name starts with `.`.
fn hidden_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).expect("read_dir") {
        let entry = entry.expect("entry");
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            found.push(path.clone());
        }
        if entry.file_type().expect("file type").is_dir() {
            found.extend(hidden_files(&path));
        }
    }
    found
}

async fn keys(store: &DirStore) -> Vec<String> {
    let page = store.list(&ListRequest::default()).await.expect("list");
    page.objects.into_iter().map(|o| o.key).collect()
}

#[test]
fn open_creates_layout_and_reopens() {
    let (dir, store) = store();
    assert!(dir.path().join(MARKER_FILE).is_file());
    assert!(dir.path().join(OBJECTS_DIR).is_dir());
    assert!(dir.path().join(UPLOADS_DIR).is_dir());
    drop(store);
    DirStore::open(dir.path()).expect("reopen");
}

#[test]
fn open_creates_a_missing_directory_whose_parent_exists() {
    let parent = tempfile::tempdir().expect("tempdir");
    let path = parent.path().join("new");
    DirStore::open(&path).expect("create");
    assert!(path.join(MARKER_FILE).is_file());

    let err = DirStore::open(&parent.path().join("x/y")).expect_err("no parent");
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[test]
fn open_refuses_files_and_foreign_directories() {
    let parent = tempfile::tempdir().expect("tempdir");
    let file = parent.path().join("file");
    fs::write(&file, b"x").expect("write");
    let err = DirStore::open(&file).expect_err("a file");
    assert!(err.to_string().contains("not a directory"), "{err}");

    let err = DirStore::open(parent.path()).expect_err("not empty");
    assert!(err.to_string().contains("not empty"), "{err}");

    let other = tempfile::tempdir().expect("tempdir");
    fs::write(
        other.path().join(MARKER_FILE),
        br#"{"format":"s3cryptfs-dirstore","version":99}"#,
    )
    .expect("write");
    let err = DirStore::open(other.path()).expect_err("future version");
    assert!(err.to_string().contains("version 99"), "{err}");
}

#[tokio::test]
async fn puts_leave_no_temporary_files() {
    let (dir, store) = store();
    for key in ["a", "a/", "a/b", "deep/er/key", &"long".repeat(100)] {
        store
            .put(key, Bytes::from_static(b"body"), PutOptions::default())
            .await
            .expect("put");
    }
    let id = store
        .create_multipart("mp", PutOptions::default())
        .await
        .expect("create");
    let etag = store
        .upload_part("mp", &id, 1, Bytes::from_static(b"part"))
        .await
        .expect("part");
    store
        .complete_multipart(
            "mp",
            &id,
            &[CompletedPart {
                part_number: 1,
                etag,
            }],
        )
        .await
        .expect("complete");
    store
        .copy("a", "copied", CopyOptions::default())
        .await
        .expect("copy");
    // A failed conditional put must clean up too.
    let refused = store
        .put(
            "a",
            Bytes::from_static(b"x"),
            PutOptions {
                if_none_match: true,
                ..PutOptions::default()
            },
        )
        .await;
    assert!(matches!(
        refused,
        Err(StoreError::PreconditionFailed { .. })
    ));
    assert_eq!(hidden_files(dir.path()), Vec::<PathBuf>::new());
    assert_eq!(
        fs::read_dir(dir.path().join(UPLOADS_DIR))
            .expect("uploads")
            .count(),
        0
    );
}

#[tokio::test]
async fn leftover_temporary_files_are_ignored() {
    let (dir, store) = store();
    store
        .put("a/b", Bytes::from_static(b"real"), PutOptions::default())
        .await
        .expect("put");
    // What a crash between create and rename leaves behind, at the top and in a subdirectory.
    let objects = dir.path().join(OBJECTS_DIR);
    fs::write(objects.join(".tmp-0123456789abcdef"), b"half-written").expect("write");
    fs::write(objects.join("a.d/.tmp-fedcba9876543210"), b"half").expect("write");
    // A directory holding only a temporary file has no objects and is no common prefix.
    fs::create_dir(objects.join("ghost.d")).expect("mkdir");
    fs::write(objects.join("ghost.d/.tmp-0000000000000000"), b"x").expect("write");

    assert_eq!(keys(&store).await, vec!["a/b".to_owned()]);
    let page = store
        .list(&ListRequest {
            delimiter: Some("/".into()),
            ..ListRequest::default()
        })
        .await
        .expect("list");
    assert!(page.objects.is_empty());
    assert_eq!(page.common_prefixes, vec!["a/".to_owned()]);
    let got = store.get("a/b", None, None).await.expect("get");
    assert_eq!(&got.data[..], b"real");
    assert!(matches!(
        store.head(".tmp-0123456789abcdef").await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn deletes_prune_empty_directories() {
    let (dir, store) = store();
    store
        .put("x/y/z", Bytes::from_static(b"1"), PutOptions::default())
        .await
        .expect("put");
    store.delete("x/y/z").await.expect("delete");
    let objects = dir.path().join(OBJECTS_DIR);
    assert_eq!(fs::read_dir(&objects).expect("objects").count(), 0);
    // Long directory names carry a %name file; pruning removes it too.
    let long_dir_key = format!("{}/k", "d".repeat(300));
    store
        .put(
            &long_dir_key,
            Bytes::from_static(b"1"),
            PutOptions::default(),
        )
        .await
        .expect("put");
    assert_eq!(keys(&store).await, vec![long_dir_key.clone()]);
    store.delete(&long_dir_key).await.expect("delete");
    assert_eq!(fs::read_dir(&objects).expect("objects").count(), 0);
}

#[tokio::test]
async fn corrupt_files_are_errors_not_data() {
    let (dir, store) = store();
    store
        .put("k", Bytes::from_static(b"hello"), PutOptions::default())
        .await
        .expect("put");
    let path = dir.path().join(OBJECTS_DIR).join("k.obj");
    let mut bytes = fs::read(&path).expect("read");
    bytes.truncate(bytes.len() - 1);
    fs::write(&path, &bytes).expect("write");
    match store.get("k", None, None).await {
        Err(StoreError::Io { source, .. }) => {
            assert_eq!(source.kind(), io::ErrorKind::InvalidData);
        }
        other => panic!("expected a corruption error, got {other:?}"),
    }
}

#[tokio::test]
async fn long_keys_round_trip_and_list_in_order() {
    let (_dir, store) = store();
    let long = "n".repeat(300);
    let keys_in = vec![
        format!("{long}"),
        format!("{long}/"),
        format!("{long}/x"),
        format!("{long}0"),
        "m".to_owned(),
    ];
    for key in &keys_in {
        store
            .put(
                key,
                Bytes::from(key.clone().into_bytes()),
                PutOptions::default(),
            )
            .await
            .expect("put");
    }
    let mut sorted = keys_in.clone();
    sorted.sort();
    assert_eq!(keys(&store).await, sorted);
    for key in &keys_in {
        let got = store.get(key, None, None).await.expect("get");
        assert_eq!(got.data, key.as_bytes());
    }
}

#[tokio::test]
async fn two_handles_on_one_root_share_objects() {
    let (dir, a) = store();
    let b = DirStore::open(dir.path()).expect("second handle");
    a.put("k", Bytes::from_static(b"v"), PutOptions::default())
        .await
        .expect("put");
    assert_eq!(b.head("k").await.expect("head").size, 1);
    assert!(Arc::ptr_eq(&a.inner.commit, &b.inner.commit));
}

#[tokio::test]
async fn upload_ids_cannot_escape_the_uploads_directory() {
    let (_dir, store) = store();
    let result = store
        .upload_part("k", "../../objects", 1, Bytes::from_static(b"x"))
        .await;
    assert!(matches!(result, Err(StoreError::NoSuchUpload { .. })));
}

// The object-file parser, fuzzed: whatever a file under the store's directory holds (another
// program's, a torn or hostile write), opening it fails or succeeds without a panic and
// without allocating more than the file holds.
proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

    #[test]
    fn object_file_parser_never_panics(
        body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        header_len in proptest::prelude::any::<u32>(),
        with_trailer in proptest::prelude::any::<bool>(),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("obj");
        let mut bytes = body;
        if with_trailer {
            bytes.extend_from_slice(&header_len.to_be_bytes());
            bytes.extend_from_slice(object_file::MAGIC);
        }
        fs::write(&path, &bytes).expect("write");
        if let Ok(file) = object_file::ObjectFile::open(&path) {
            proptest::prop_assert!(file.header.size <= bytes.len() as u64);
        }
    }
}

/// A tampered store directory (a `%name` that is a symlink to an endless file, an object file
/// that is a fifo or a symlink) makes listings skip the entry and reads fail, never hang or
/// allocate without bound; the next write through the long directory repairs its `%name`.
#[tokio::test]
async fn tampered_long_names_and_special_files_are_refused() {
    let (dir, store) = store();
    let long_dir = "d".repeat(300);
    let long_file = "f".repeat(300);
    for key in [
        format!("{long_dir}/k"),
        long_file.clone(),
        "plain".to_owned(),
    ] {
        store
            .put(&key, Bytes::from_static(b"v"), PutOptions::default())
            .await
            .expect("put");
    }
    let objects = dir.path().join(OBJECTS_DIR);
    let dir_path = layout::object_path(&objects, &format!("{long_dir}/k")).dirs[0]
        .path
        .clone();
    let name_file = dir_path.join(layout::LONG_NAME_FILE);
    fs::remove_file(&name_file).expect("rm %name");
    std::os::unix::fs::symlink("/dev/zero", &name_file).expect("symlink %name");
    let file_path = layout::object_path(&objects, &long_file).file;
    fs::remove_file(&file_path).expect("rm object");
    nix::unistd::mkfifo(&file_path, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    let plain_path = layout::object_path(&objects, "plain").file;
    let moved = dir.path().join("elsewhere");
    fs::rename(&plain_path, &moved).expect("move object out");
    std::os::unix::fs::symlink(&moved, &plain_path).expect("symlink object");

    assert_eq!(keys(&store).await, Vec::<String>::new());
    // The object itself is found by its hashed path, whatever `%name` says.
    let got = store.get(&format!("{long_dir}/k"), None, None).await;
    assert_eq!(got.expect("get").data, &b"v"[..]);
    for key in [long_file.clone(), "plain".to_owned()] {
        match store.get(&key, None, None).await {
            Err(StoreError::Io { source, .. }) => {
                assert_eq!(source.kind(), io::ErrorKind::InvalidData, "{key}");
            }
            other => panic!("{key}: expected a corruption error, got {other:?}"),
        }
    }
    store
        .put(
            &format!("{long_dir}/k2"),
            Bytes::from_static(b"v"),
            PutOptions::default(),
        )
        .await
        .expect("put repairs the %name");
    assert_eq!(
        keys(&store).await,
        vec![format!("{long_dir}/k"), format!("{long_dir}/k2")]
    );
}
