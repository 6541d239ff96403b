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

    let first_bytes = if b.quirks.range_ending_at_byte_0 {
        0..1
    } else {
        // The server answers `bytes=0-0` with the whole object: the store refuses an answer
        // longer than the range asked for rather than read past it.
        let refused = range(0..1).await;
        assert!(
            matches!(refused, Err(StoreError::Transient { .. })),
            "{refused:?}"
        );
        0..2
    };
    let first = range(first_bytes.clone()).await.expect("first byte");
    assert_eq!(
        &first.data[..],
        &body[first_bytes.start as usize..first_bytes.end as usize]
    );
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
    // `bytes=0-0` is the whole object on a server without `range_ending_at_byte_0`
    // (`ranged_gets` checks what the store does about it).
    let first: &[u8] = if b.quirks.range_ending_at_byte_0 {
        b"v"
    } else {
        b"v1"
    };
    let got = store
        .get("k", Some(0..first.len() as u64), Some(&etag))
        .await
        .expect("matching etag");
    assert_eq!(&got.data[..], first);
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
    // Where keys are file paths, a key with an empty segment is refused (the mount never
    // makes one: it refuses empty names).
    let double = b.quirks.verbatim_key_segments;
    put(store, "a", b"object a").await;
    put(store, "a/", b"").await;
    put(store, "a/b", b"object a/b").await;
    if double {
        put(store, "a//c", b"double slash").await;
    } else {
        let refused = put_with(store, "a//c", b"double slash", PutOptions::default()).await;
        assert!(
            refused.is_err(),
            "this backend is said to refuse a key with an empty segment"
        );
    }
    assert_eq!(get(store, "a").await, b"object a");
    assert!(get(store, "a/").await.is_empty());
    assert_eq!(get(store, "a/b").await, b"object a/b");
    if double {
        assert_eq!(get(store, "a//c").await, b"double slash");
    }
    let (objects, _) = list_all_on(&b.quirks, store, "", None, 0).await;
    let all = ["a", "a/", "a//c", "a/b"];
    let expected: Vec<&str> = all.into_iter().filter(|k| double || *k != "a//c").collect();
    assert_eq!(objects, strings(&expected));

    store.delete("a").await.expect("delete a");
    assert!(get(store, "a/").await.is_empty());
    assert_eq!(get(store, "a/b").await, b"object a/b");
    store.delete("a/").await.expect("delete marker");
    assert_eq!(get(store, "a/b").await, b"object a/b");
    let (objects, _) = list_all_on(&b.quirks, store, "", None, 0).await;
    assert_eq!(objects, strings(&expected[2..]));
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
    // `.` and `..` segments, which a server keeping keys as file paths resolves away (the
    // mount never makes them: it refuses such names).
    let dot_segment = |k: &str| k.split('/').any(|s| s == "." || s == "..");
    let keys: Vec<&str> = keys
        .into_iter()
        .filter(|k| b.quirks.newline_in_keys || !k.contains('\n'))
        .filter(|k| b.quirks.verbatim_key_segments || !dot_segment(k))
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
    if b.quirks.verbatim_key_segments {
        assert_eq!(objects, strings(&["dir/.", "dir/.."]));
    } else {
        assert!(objects.is_empty(), "{objects:?}");
        // What such a server makes of a `.` segment: another key's object.
        put(store, "x/./y", b"dot").await;
        assert_eq!(
            get(store, "x/y").await,
            b"dot",
            "this backend is said to resolve `.` segments"
        );
    }
    assert!(prefixes.is_empty());
}

pub(crate) async fn long_keys(b: &Backend) {
    let store = &b.store;
    let segment = b.quirks.max_key_segment;
    let long_component = "x".repeat(300.min(segment));
    // A key of 901 bytes, or of 935 in segments the backend can hold.
    let tail = "y".repeat(600.min(segment));
    let pieces = 600usize.div_ceil(tail.len());
    let key = format!(
        "{long_component}/{}",
        [tail.as_str(); 3][..pieces].join("/")
    );
    put(store, &key, b"long").await;
    assert_eq!(get(store, &key).await, b"long");
    let (objects, prefixes) = list_all(store, "", Some("/"), 0).await;
    assert!(objects.is_empty(), "{objects:?}");
    if b.quirks.deep_common_prefixes || pieces == 1 {
        assert_eq!(prefixes, vec![format!("{long_component}/")]);
    } else {
        assert!(
            prefixes.is_empty(),
            "this backend is said to roll up only keys one level down: {prefixes:?}"
        );
        assert_eq!(list_all(store, "", None, 0).await.0, vec![key.clone()]);
    }
    assert!(matches!(
        put_with(store, &"k".repeat(1025), b"", PutOptions::default()).await,
        Err(StoreError::InvalidArgument(_))
    ));
    assert!(matches!(
        put_with(store, "", b"", PutOptions::default()).await,
        Err(StoreError::InvalidArgument(_))
    ));
    if segment < 1024 {
        // A longer last segment fails; s3rver has written the object's body by then but not
        // its metadata file, and every later listing of the bucket fails (docs/SERVERS.md:
        // what this means for file names on s3rver).
        let too_long = "z".repeat(segment + 1);
        let refused = put_with(store, &too_long, b"", PutOptions::default()).await;
        assert!(
            refused.is_err(),
            "a {}-byte segment: {refused:?}",
            segment + 1
        );
        let listed = store.list(&ListRequest::default()).await;
        assert!(
            matches!(listed, Err(ref e) if e.is_transient()),
            "this backend is said to fail listings after such a write: {listed:?}"
        );
    }
}

/// Key components around a file name's 255-byte limit (a local store must map them to names
/// it can hold): files, directories with a child and a marker, ASCII and multi-byte UTF-8,
/// copied and deleted, listed in byte order across pages and rolled up by a delimiter.
pub(crate) async fn name_length_boundaries(b: &Backend) {
    let store = &b.store;
    // 249 to 256 bytes, or up to the longest segment the backend holds.
    let top = b.quirks.max_key_segment.min(256);
    let mut components: Vec<String> = (top - 7..=top).map(|n| "n".repeat(n)).collect();
    // 2-byte and 3-byte characters, 252 to 255 bytes in all (for a `top` of 256).
    let max = top - 1;
    components.push(format!("{}z", "é".repeat((max - 1) / 2)));
    components.push("é".repeat((max - 3) / 2));
    components.push(format!("{}yz", "日".repeat((max - 2) / 3)));
    components.push("日".repeat(max / 3));
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
    // An unsorted backend's continuation skips a key listed after the keys below it (`x`
    // after `x/...`, both here); s3cryptfs never stores a file and a directory of one name.
    let page_sizes: &[usize] = if b.quirks.sorted_listings {
        &[0, 1, 5]
    } else {
        &[0]
    };
    for &max_keys in page_sizes {
        let (objects, _) = list_all_on(&b.quirks, store, "", None, max_keys).await;
        assert_eq!(objects, sorted, "byte order, {max_keys} keys a page");
    }
    let (objects, prefixes) = list_all_on(&b.quirks, store, "", Some("/"), 2).await;
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
