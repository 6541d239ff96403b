//! Reads, ETags and keys: ranges, empty and missing objects, If-Match, metadata,
//! object/marker/child coexistence, unusual and long keys.

use s3cryptfs::store::{CopyOptions, ListRequest, PutOptions, StoreError};

use crate::common::store::Backend;
use crate::conformance::helpers::*;

// ---- reads ----

pub(crate) async fn ranged_gets(b: &Backend) {
    let store = &b.store;
    let body: Vec<u8> = (0..100u8).collect();
    let etag = put(store, "r", &body).await;
    let range = |r: std::ops::Range<u64>| store.get("r", Some(r), None);

    let first = range(0..1).await.expect("first byte");
    assert_eq!(&first.data[..], &[0]);
    assert_eq!(first.info.size, 100, "info describes the whole object");
    assert_eq!(first.info.etag, etag);
    assert_eq!(
        &range(40..60).await.expect("middle").data[..],
        &body[40..60]
    );
    assert_eq!(&range(99..100).await.expect("last byte").data[..], &[99]);
    assert_eq!(
        &range(90..1000).await.expect("clipped").data[..],
        &body[90..]
    );
    assert_eq!(&range(0..100).await.expect("exact").data[..], &body[..]);
    for start in [100, 150] {
        match range(start..start + 10).await {
            Err(StoreError::InvalidRange { size: 100, .. }) => {}
            other => panic!("range from {start}: expected InvalidRange, got {other:?}"),
        }
    }
    assert!(matches!(
        range(5..5).await,
        Err(StoreError::InvalidArgument(_))
    ));
}

pub(crate) async fn empty_object(b: &Backend) {
    let store = &b.store;
    let etag = put(store, "empty", b"").await;
    assert_eq!(etag, "\"d41d8cd98f00b204e9800998ecf8427e\"");
    let info = store.head("empty").await.expect("head");
    assert_eq!(info.size, 0);
    assert!(get(store, "empty").await.is_empty());
    let ranged = store
        .get("empty", Some(0..10), None)
        .await
        .expect("range of empty");
    assert!(ranged.data.is_empty());
}

pub(crate) async fn missing_objects(b: &Backend) {
    let store = &b.store;
    assert!(matches!(
        store.head("nope").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.get("nope", None, None).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.get("nope", Some(0..1), Some("\"x\"")).await,
        Err(StoreError::NotFound { .. })
    ));
}

pub(crate) async fn get_with_if_match(b: &Backend) {
    let store = &b.store;
    let etag = put(store, "k", b"v1").await;
    let got = store
        .get("k", Some(0..1), Some(&etag))
        .await
        .expect("matching etag");
    assert_eq!(&got.data[..], b"v");
    put(store, "k", b"v2").await;
    assert!(matches!(
        store.get("k", None, Some(&etag)).await,
        Err(StoreError::PreconditionFailed { .. })
    ));
}

pub(crate) async fn head_returns_metadata_and_list_does_not(b: &Backend) {
    let store = &b.store;
    let meta = metadata(&[("mode", "33188"), ("mtime", "1700000000")]);
    let opts = PutOptions {
        metadata: meta.clone(),
        ..PutOptions::default()
    };
    let etag = put_with(store, "m", b"abc", opts).await.expect("put");
    let info = store.head("m").await.expect("head");
    assert_eq!(info.key, "m");
    assert_eq!(info.size, 3);
    assert_eq!(info.etag, etag);
    assert_eq!(info.metadata, Some(meta));
    let page = store.list(&ListRequest::default()).await.expect("list");
    assert_eq!(page.objects.len(), 1);
    let listed = &page.objects[0];
    assert_eq!(
        (listed.key.as_str(), listed.size, listed.etag.as_str()),
        ("m", 3, etag.as_str())
    );
    assert_eq!(listed.metadata, None);
}

// ---- etags and keys ----

pub(crate) async fn etags_follow_content(b: &Backend) {
    let store = &b.store;
    let a = put(store, "x1", b"same body").await;
    let b = put(store, "dir/x2", b"same body").await;
    let c = put(store, "x3", b"other body").await;
    assert!(quoted_md5_hex(&a), "{a}");
    assert_eq!(a, b);
    assert_ne!(a, c);
    let before = store.head("x1").await.expect("head");
    let d = put(store, "x1", b"changed").await;
    assert_ne!(a, d);
    let after = store.head("x1").await.expect("head");
    assert_eq!(after.etag, d);
    assert!(after.last_modified >= before.last_modified);
}

pub(crate) async fn objects_markers_and_children_coexist(b: &Backend) {
    let store = &b.store;
    put(store, "a", b"object a").await;
    put(store, "a/", b"").await;
    put(store, "a/b", b"object a/b").await;
    put(store, "a//c", b"double slash").await;
    assert_eq!(get(store, "a").await, b"object a");
    assert!(get(store, "a/").await.is_empty());
    assert_eq!(get(store, "a/b").await, b"object a/b");
    assert_eq!(get(store, "a//c").await, b"double slash");
    let (objects, _) = list_all(store, "", None, 0).await;
    assert_eq!(objects, strings(&["a", "a/", "a//c", "a/b"]));

    store.delete("a").await.expect("delete a");
    assert!(get(store, "a/").await.is_empty());
    assert_eq!(get(store, "a/b").await, b"object a/b");
    store.delete("a/").await.expect("delete marker");
    assert_eq!(get(store, "a/b").await, b"object a/b");
    let (objects, _) = list_all(store, "", None, 0).await;
    assert_eq!(objects, strings(&["a//c", "a/b"]));
}

pub(crate) async fn unusual_keys(b: &Backend) {
    let store = &b.store;
    let keys = [
        "ünïcödé/fïle ✓.txt",
        "with space/file name",
        "日本語/ファイル",
        "emoji 🎉",
        "100%",
        "%41",
        "A",
        ".hidden",
        "dir/..",
        "dir/.",
        "a/./b",
        "tab\tand\nnewline",
        "plus+equals=&amp;?#",
    ];
    let keys: Vec<&str> = keys
        .into_iter()
        .filter(|k| b.quirks.newline_in_keys || !k.contains('\n'))
        .collect();
    if !b.quirks.newline_in_keys {
        assert!(
            put_with(store, "new\nline", b"x", PutOptions::default())
                .await
                .is_err(),
            "this backend is said to refuse keys with a newline"
        );
    }
    for &key in &keys {
        put(store, key, key.as_bytes()).await;
    }
    for &key in &keys {
        assert_eq!(get(store, key).await, key.as_bytes(), "{key:?}");
    }
    let mut sorted: Vec<String> = strings(&keys);
    sorted.sort();
    let (objects, _) = list_all(store, "", None, 0).await;
    assert_eq!(objects, sorted, "UTF-8 byte order");
    let (objects, prefixes) = list_all(store, "dir/", Some("/"), 0).await;
    assert_eq!(objects, strings(&["dir/.", "dir/.."]));
    assert!(prefixes.is_empty());
}

pub(crate) async fn long_keys(b: &Backend) {
    let store = &b.store;
    let long_component = "x".repeat(300);
    let key = format!("{long_component}/{}", "y".repeat(600));
    put(store, &key, b"long").await;
    assert_eq!(get(store, &key).await, b"long");
    let (_, prefixes) = list_all(store, "", Some("/"), 0).await;
    assert_eq!(prefixes, vec![format!("{long_component}/")]);
    assert!(matches!(
        put_with(store, &"k".repeat(1025), b"", PutOptions::default()).await,
        Err(StoreError::InvalidArgument(_))
    ));
    assert!(matches!(
        put_with(store, "", b"", PutOptions::default()).await,
        Err(StoreError::InvalidArgument(_))
    ));
}

/// Key components around a file name's 255-byte limit (a local store must map them to names
/// it can hold): files, directories with a child and a marker, ASCII and multi-byte UTF-8,
/// copied and deleted, listed in byte order across pages and rolled up by a delimiter.
pub(crate) async fn name_length_boundaries(b: &Backend) {
    let store = &b.store;
    let mut components: Vec<String> = (249..=256).map(|n| "n".repeat(n)).collect();
    // 2-byte and 3-byte characters, 252 to 255 bytes in all.
    components.push(format!("{}z", "é".repeat(127)));
    components.push("é".repeat(126));
    components.push(format!("{}yz", "日".repeat(84)));
    components.push("日".repeat(85));
    let mut keys = Vec::new();
    for c in &components {
        keys.extend([c.clone(), format!("{c}/"), format!("{c}/child")]);
    }
    for key in &keys {
        put(store, key, key.as_bytes()).await;
    }
    for key in &keys {
        assert_eq!(get(store, key).await, key.as_bytes(), "{key:?}");
    }
    let mut sorted = keys.clone();
    sorted.sort();
    for max_keys in [0, 1, 5] {
        let (objects, _) = list_all(store, "", None, max_keys).await;
        assert_eq!(objects, sorted, "byte order, {max_keys} keys a page");
    }
    let (objects, prefixes) = list_all(store, "", Some("/"), 2).await;
    let mut files: Vec<String> = components.clone();
    files.sort();
    assert_eq!(objects, files);
    let dirs: Vec<String> = files.iter().map(|c| format!("{c}/")).collect();
    assert_eq!(prefixes, dirs);
    let (objects, prefixes) = list_all(store, &dirs[3], Some("/"), 0).await;
    assert_eq!(objects, vec![dirs[3].clone(), format!("{}child", dirs[3])]);
    assert!(prefixes.is_empty());

    let (src, dst) = (
        &components[6],
        format!("{}/{}", components[7], components[8]),
    );
    store
        .copy(src, &dst, CopyOptions::default())
        .await
        .unwrap_or_else(|e| panic!("copy {src} -> {dst}: {e}"));
    assert_eq!(get(store, &dst).await, src.as_bytes());
    keys.push(dst);
    for key in &keys {
        store
            .delete(key)
            .await
            .unwrap_or_else(|e| panic!("delete {key}: {e}"));
    }
    assert_eq!(list_all(store, "", None, 0).await, (vec![], vec![]));
}
