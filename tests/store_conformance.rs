//! One conformance suite for every `ObjectStore`: each test is an `async fn(&Backend)` and the
//! `conformance!` macro at the bottom instantiates all of them for every backend in
//! `common/store.rs` (MemoryStore, DirStore, and S3Store on moto's S3 server over HTTP). The
//! expectations are S3's (ListObjectsV2, conditional requests, multipart limits, CopyObject,
//! SSE), so a new backend is added with one name in that list; where a test server
//! legitimately differs from S3, its [`Quirks`] say how, and the test asserts that instead.

#[path = "common/store.rs"]
mod backends;
#[path = "common/s3server.rs"]
mod s3server;

use backends::Backend;

use std::collections::BTreeSet;

use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};
use s3cryptfs::store::{
    CompletedPart, CopyOptions, DynStore, ListPage, ListRequest, MIN_PART_SIZE, Metadata,
    MetadataDirective, ObjectSse, Op, PutOptions, SseCKey, SseMode, StoreError,
};

// ---- helpers ----

async fn put(store: &DynStore, key: &str, body: &[u8]) -> String {
    store
        .put(key, Bytes::copy_from_slice(body), PutOptions::default())
        .await
        .unwrap_or_else(|e| panic!("put {key}: {e}"))
        .etag
}

async fn put_with(
    store: &DynStore,
    key: &str,
    body: &[u8],
    opts: PutOptions,
) -> Result<String, StoreError> {
    store
        .put(key, Bytes::copy_from_slice(body), opts)
        .await
        .map(|out| out.etag)
}

async fn get(store: &DynStore, key: &str) -> Vec<u8> {
    store
        .get(key, None, None)
        .await
        .unwrap_or_else(|e| panic!("get {key}: {e}"))
        .data
        .to_vec()
}

fn metadata(pairs: &[(&str, &str)]) -> Metadata {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn quoted_md5_hex(etag: &str) -> bool {
    let inner = etag.strip_prefix('"').and_then(|e| e.strip_suffix('"'));
    inner.is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Every page of a listing, following continuation tokens.
async fn list_pages(
    store: &DynStore,
    prefix: &str,
    delimiter: Option<&str>,
    max_keys: usize,
) -> Vec<ListPage> {
    let mut req = ListRequest {
        prefix: prefix.into(),
        delimiter: delimiter.map(Into::into),
        continuation_token: None,
        max_keys,
    };
    let mut pages = Vec::new();
    loop {
        let page = store.list(&req).await.expect("list");
        let entries = page.objects.len() + page.common_prefixes.len();
        let limit = if max_keys == 0 {
            1000
        } else {
            max_keys.min(1000)
        };
        assert!(
            entries <= limit,
            "page of {entries} entries with max_keys {max_keys}"
        );
        let token = page.next_continuation_token.clone();
        pages.push(page);
        match token {
            Some(token) => req.continuation_token = Some(token),
            None => return pages,
        }
        assert!(pages.len() < 10_000, "listing does not end");
    }
}

/// Objects and common prefixes of a whole listing, in the order returned.
async fn list_all(
    store: &DynStore,
    prefix: &str,
    delimiter: Option<&str>,
    max_keys: usize,
) -> (Vec<String>, Vec<String>) {
    let mut objects = Vec::new();
    let mut prefixes = Vec::new();
    for page in list_pages(store, prefix, delimiter, max_keys).await {
        objects.extend(page.objects.into_iter().map(|o| o.key));
        prefixes.extend(page.common_prefixes);
    }
    (objects, prefixes)
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Upload `parts` as a multipart upload and complete it.
async fn multipart(
    store: &DynStore,
    key: &str,
    parts: &[Vec<u8>],
    opts: PutOptions,
) -> Result<String, StoreError> {
    let id = store.create_multipart(key, opts).await?;
    let mut completed = Vec::new();
    for (i, body) in parts.iter().enumerate() {
        let part_number = u32::try_from(i + 1).expect("few parts");
        let etag = store
            .upload_part(key, &id, part_number, Bytes::copy_from_slice(body))
            .await?;
        completed.push(CompletedPart { part_number, etag });
    }
    Ok(store.complete_multipart(key, &id, &completed).await?.etag)
}

fn patterned(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

// ---- reads ----

async fn ranged_gets(b: &Backend) {
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

async fn empty_object(b: &Backend) {
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

async fn missing_objects(b: &Backend) {
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

async fn get_with_if_match(b: &Backend) {
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

async fn head_returns_metadata_and_list_does_not(b: &Backend) {
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

async fn etags_follow_content(b: &Backend) {
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

async fn objects_markers_and_children_coexist(b: &Backend) {
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

async fn unusual_keys(b: &Backend) {
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

async fn long_keys(b: &Backend) {
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

// ---- listing ----

async fn pagination_over_many_keys(b: &Backend) {
    let store = &b.store;
    let keys: BTreeSet<String> = (0..2500)
        .map(|i| match i % 3 {
            0 => format!("k/{i:05}"),
            1 => format!("k/sub{}/{i:05}", i % 7),
            _ => format!("k{i:05}"),
        })
        .collect();
    stream::iter(keys.iter())
        .map(|key| async move { put_with(store, key, key.as_bytes(), PutOptions::default()).await })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await
        .expect("put 2500 keys");

    for max_keys in [0, 1000, 333, 5000] {
        let pages = list_pages(store, "", None, max_keys).await;
        let per_page = if max_keys == 0 || max_keys > 1000 {
            1000
        } else {
            max_keys
        };
        assert_eq!(
            pages.len(),
            2500_usize.div_ceil(per_page),
            "max_keys {max_keys}"
        );
        let listed: Vec<String> = pages
            .into_iter()
            .flat_map(|p| p.objects)
            .map(|o| o.key)
            .collect();
        let expected: Vec<String> = keys.iter().cloned().collect();
        assert_eq!(
            listed.len(),
            expected.len(),
            "max_keys {max_keys}: no duplicates"
        );
        assert_eq!(listed, expected, "max_keys {max_keys}");
    }
    let (objects, _) = list_all(store, "k/sub3/", None, 50).await;
    let expected: Vec<String> = keys
        .iter()
        .filter(|k| k.starts_with("k/sub3/"))
        .cloned()
        .collect();
    assert_eq!(objects, expected);
    let (objects, prefixes) = list_all(store, "k/", Some("/"), 3).await;
    assert_eq!(
        objects.len(),
        keys.iter().filter(|k| k.starts_with("k/0")).count()
    );
    assert_eq!(
        prefixes,
        (0..7).map(|i| format!("k/sub{i}/")).collect::<Vec<_>>()
    );
}

const TREE: &[&str] = &[
    "a", "a/", "a/b", "a/c/d", "a/c/e", "a/c/f/g", "ab", "b/x", "b/y/z", "c",
];

async fn put_tree(store: &DynStore) {
    for key in TREE {
        put(store, key, key.as_bytes()).await;
    }
}

/// prefix, delimiter, expected objects, expected common prefixes
type ListingCase<'a> = (&'a str, Option<&'a str>, &'a [&'a str], &'a [&'a str]);

async fn delimiter_listings(b: &Backend) {
    let store = &b.store;
    put_tree(store).await;
    let cases: &[ListingCase] = &[
        ("", Some("/"), &["a", "ab", "c"], &["a/", "b/"]),
        ("a/", Some("/"), &["a/", "a/b"], &["a/c/"]),
        ("a", Some("/"), &["a", "ab"], &["a/"]),
        ("a/c/", Some("/"), &["a/c/d", "a/c/e"], &["a/c/f/"]),
        ("a/c", Some("/"), &[], &["a/c/"]),
        ("a/", None, &["a/", "a/b", "a/c/d", "a/c/e", "a/c/f/g"], &[]),
        ("b/", Some("/"), &["b/x"], &["b/y/"]),
        ("zz", Some("/"), &[], &[]),
        ("a/", Some("c/"), &["a/", "a/b"], &["a/c/"]),
        (
            "",
            Some("b"),
            &["a", "a/", "a/c/d", "a/c/e", "a/c/f/g", "c"],
            &["a/b", "ab", "b"],
        ),
    ];
    for (prefix, delimiter, objects, prefixes) in cases {
        for max_keys in [0, 1, 2] {
            let got = list_all(store, prefix, *delimiter, max_keys).await;
            assert_eq!(
                got,
                (strings(objects), strings(prefixes)),
                "prefix {prefix:?} delimiter {delimiter:?} max_keys {max_keys}"
            );
        }
    }
}

async fn common_prefixes_across_pages(b: &Backend) {
    let store = &b.store;
    // Prefixes with many keys each, interleaved with plain objects.
    for i in 0..6 {
        put(store, &format!("p/{i}"), b"o").await;
        for j in 0..5 {
            put(store, &format!("p/{i}/{j}"), b"x").await;
        }
    }
    let mut expected = Vec::new();
    for i in 0..6 {
        expected.push(format!("p/{i}"));
        expected.push(format!("p/{i}/*"));
    }
    for max_keys in 1..=5 {
        let mut entries = Vec::new();
        for page in list_pages(store, "p/", Some("/"), max_keys).await {
            let mut page_entries: Vec<String> = page.objects.into_iter().map(|o| o.key).collect();
            page_entries.extend(page.common_prefixes.into_iter().map(|p| format!("{p}*")));
            // Each common prefix counts once against max_keys, as one entry.
            assert!(page_entries.len() <= max_keys);
            page_entries.sort_by(|a, b| a.trim_end_matches('*').cmp(b.trim_end_matches('*')));
            entries.extend(page_entries);
        }
        assert_eq!(entries, expected, "max_keys {max_keys}");
    }
    let pages = list_pages(store, "p/", Some("/"), 12).await;
    assert_eq!(pages.len(), 1, "an exactly full page is not truncated");
}

async fn bad_continuation_token(b: &Backend) {
    let store = &b.store;
    put(store, "x", b"x").await;
    let req = ListRequest {
        continuation_token: Some("not a token!".into()),
        ..ListRequest::default()
    };
    assert!(store.list(&req).await.is_err());
}

// ---- writes ----

async fn conditional_puts(b: &Backend) {
    let store = &b.store;
    let create_only = PutOptions {
        if_none_match: true,
        ..PutOptions::default()
    };
    let v1 = put_with(store, "c", b"v1", create_only.clone())
        .await
        .expect("create");
    assert!(matches!(
        put_with(store, "c", b"v2", create_only.clone()).await,
        Err(StoreError::PreconditionFailed { .. })
    ));
    assert_eq!(get(store, "c").await, b"v1");

    let swap = |etag: &str| PutOptions {
        if_match: Some(etag.to_owned()),
        ..PutOptions::default()
    };
    let v2 = put_with(store, "c", b"v2", swap(&v1))
        .await
        .expect("matching if_match");
    assert!(matches!(
        put_with(store, "c", b"v3", swap(&v1)).await,
        Err(StoreError::PreconditionFailed { .. })
    ));
    assert_eq!(get(store, "c").await, b"v2");
    assert_eq!(store.head("c").await.expect("head").etag, v2);
    // S3 answers 404, not 412, to If-Match on a missing key.
    assert!(matches!(
        put_with(store, "missing", b"x", swap(&v1)).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.head("missing").await,
        Err(StoreError::NotFound { .. })
    ));
}

/// Writes `bodies` to one key at once, all with `opts`; returns each body with its outcome.
async fn race<'b>(
    store: &DynStore,
    bodies: &'b [Vec<u8>],
    opts: &PutOptions,
) -> Vec<(&'b Vec<u8>, Result<String, StoreError>)> {
    futures::future::join_all(
        bodies
            .iter()
            .map(|body| async move { (body, put_with(store, "race", body, opts.clone()).await) }),
    )
    .await
}

/// The one write of a race that succeeded; every other one must have lost cleanly.
fn single_winner(results: Vec<(&Vec<u8>, Result<String, StoreError>)>) -> (Vec<u8>, String) {
    let mut winners = Vec::new();
    for (body, result) in results {
        match result {
            Ok(etag) => winners.push((body.clone(), etag)),
            Err(StoreError::PreconditionFailed { .. }) => {}
            Err(e) if e.is_transient() => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one conditional write wins");
    winners.remove(0)
}

/// Conditional writes racing on one key: exactly one of them wins.
async fn racing_conditional_writes(b: &Backend) {
    let store = &b.store;
    // Distinct bodies per round: a swap writing the bytes already there keeps the ETag, and
    // would let a second If-Match writer win too.
    let creators: Vec<Vec<u8>> = (0..8)
        .map(|i| format!("creator {i}").into_bytes())
        .collect();
    let swappers: Vec<Vec<u8>> = (0..8)
        .map(|i| format!("swapper {i}").into_bytes())
        .collect();

    let create_only = PutOptions {
        if_none_match: true,
        ..PutOptions::default()
    };
    let (body, etag) = single_winner(race(store, &creators, &create_only).await);
    assert_eq!(get(store, "race").await, body);

    let swap = PutOptions {
        if_match: Some(etag),
        ..PutOptions::default()
    };
    let (body, etag) = single_winner(race(store, &swappers, &swap).await);
    assert_eq!(get(store, "race").await, body);
    assert_eq!(store.head("race").await.expect("head").etag, etag);
}

async fn deletes(b: &Backend) {
    let store = &b.store;
    put(store, "d/1", b"1").await;
    put(store, "d/2", b"2").await;
    store.delete("d/1").await.expect("delete");
    assert!(matches!(
        store.head("d/1").await,
        Err(StoreError::NotFound { .. })
    ));
    store
        .delete("d/1")
        .await
        .expect("deleting a missing key succeeds");
    store
        .delete("never/was")
        .await
        .expect("deleting a missing key succeeds");
    let (objects, prefixes) = list_all(store, "", Some("/"), 0).await;
    assert!(objects.is_empty());
    assert_eq!(prefixes, strings(&["d/"]));
    store.delete("d/2").await.expect("delete");
    let (objects, prefixes) = list_all(store, "", Some("/"), 0).await;
    assert!(
        objects.is_empty() && prefixes.is_empty(),
        "{objects:?} {prefixes:?}"
    );
}

// ---- copy ----

async fn copy_with_metadata_directives(b: &Backend) {
    let store = &b.store;
    let meta = metadata(&[("mode", "33188")]);
    let etag = put_with(
        store,
        "src",
        b"payload",
        PutOptions {
            metadata: meta.clone(),
            ..PutOptions::default()
        },
    )
    .await
    .expect("put");

    let copied = store
        .copy("src", "dst", CopyOptions::default())
        .await
        .expect("copy");
    assert_eq!(copied.etag, etag);
    let info = store.head("dst").await.expect("head dst");
    assert_eq!(info.metadata, Some(meta.clone()));
    assert_eq!(get(store, "dst").await, b"payload");

    let replaced = metadata(&[("mode", "33261"), ("uid", "1000")]);
    let opts = CopyOptions {
        metadata: MetadataDirective::Replace(replaced.clone()),
        ..CopyOptions::default()
    };
    store
        .copy("src", "dst2/nested", opts)
        .await
        .expect("copy with replace");
    assert_eq!(
        store.head("dst2/nested").await.expect("head").metadata,
        Some(replaced)
    );
    assert_eq!(
        store.head("src").await.expect("source untouched").metadata,
        Some(meta)
    );

    let guarded = |etag: &str| CopyOptions {
        source_if_match: Some(etag.to_owned()),
        ..CopyOptions::default()
    };
    store
        .copy("src", "dst3", guarded(&etag))
        .await
        .expect("source etag matches");
    let stale = store
        .copy(
            "src",
            "dst4",
            guarded("\"0123456789abcdef0123456789abcdef\""),
        )
        .await;
    if b.quirks.copy_source_if_match {
        assert!(
            matches!(stale, Err(StoreError::PreconditionFailed { .. })),
            "{stale:?}"
        );
        assert!(matches!(
            store.head("dst4").await,
            Err(StoreError::NotFound { .. })
        ));
    } else {
        stale.expect("this backend is said to ignore x-amz-copy-source-if-match");
    }
    assert!(matches!(
        store.copy("absent", "dst5", CopyOptions::default()).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn copy_onto_itself(b: &Backend) {
    let store = &b.store;
    let etag = put_with(
        store,
        "self",
        b"data",
        PutOptions {
            metadata: metadata(&[("mode", "1")]),
            ..PutOptions::default()
        },
    )
    .await
    .expect("put");
    assert!(matches!(
        store.copy("self", "self", CopyOptions::default()).await,
        Err(StoreError::InvalidArgument(_))
    ));
    let opts = CopyOptions {
        metadata: MetadataDirective::Replace(metadata(&[("mode", "2")])),
        source_if_match: Some(etag.clone()),
    };
    let out = store
        .copy("self", "self", opts)
        .await
        .expect("self copy with replace");
    assert_eq!(out.etag, etag, "same bytes, same ETag");
    let info = store.head("self").await.expect("head");
    assert_eq!(info.metadata, Some(metadata(&[("mode", "2")])));
    assert_eq!(get(store, "self").await, b"data");
}

// ---- multipart ----

async fn multipart_upload(b: &Backend) {
    let store = &b.store;
    let part_size = usize::try_from(MIN_PART_SIZE).expect("5 MiB fits");
    let parts = vec![
        patterned(part_size, 1),
        patterned(part_size, 2),
        patterned(123_457, 3),
    ];
    let meta = metadata(&[("mode", "33188")]);
    let etag = multipart(
        store,
        "mp/big",
        &parts,
        PutOptions {
            metadata: meta.clone(),
            ..PutOptions::default()
        },
    )
    .await
    .expect("multipart");
    assert!(etag.ends_with("-3\""), "{etag}");
    let whole: Vec<u8> = parts.concat();
    let info = store.head("mp/big").await.expect("head");
    assert_eq!(info.size, whole.len() as u64);
    assert_eq!(info.etag, etag);
    assert_eq!(info.metadata, Some(meta));
    assert!(
        get(store, "mp/big").await == whole,
        "body is the parts in order"
    );
    let boundary = MIN_PART_SIZE;
    let across = store
        .get("mp/big", Some(boundary - 10..boundary + 10), None)
        .await
        .expect("range");
    assert_eq!(&across.data[..], &whole[part_size - 10..part_size + 10]);

    // Equal parts give equal multipart ETags; a copy is a single-part object with an MD5 ETag.
    let again = multipart(store, "mp/again", &parts, PutOptions::default())
        .await
        .expect("multipart");
    assert_eq!(again, etag);
    let copied = store
        .copy("mp/big", "mp/copy", CopyOptions::default())
        .await
        .expect("copy");
    assert!(quoted_md5_hex(&copied.etag), "{}", copied.etag);
}

async fn multipart_part_rules(b: &Backend) {
    let store = &b.store;
    let small = [patterned(1024, 1), patterned(1024, 2)];
    let id = store
        .create_multipart("mp", PutOptions::default())
        .await
        .expect("create");
    let mut completed = Vec::new();
    for (i, body) in small.iter().enumerate() {
        let part_number = i as u32 + 1;
        let etag = store
            .upload_part("mp", &id, part_number, Bytes::copy_from_slice(body))
            .await
            .expect("part");
        completed.push(CompletedPart { part_number, etag });
    }
    match store.complete_multipart("mp", &id, &completed).await {
        Err(StoreError::EntityTooSmall {
            part_number: 1,
            size: 1024,
            ..
        }) => {}
        other => panic!("expected EntityTooSmall, got {other:?}"),
    }
    let reversed: Vec<CompletedPart> = completed.iter().rev().cloned().collect();
    assert!(matches!(
        store.complete_multipart("mp", &id, &reversed).await,
        Err(StoreError::InvalidPart { .. })
    ));
    let missing = vec![CompletedPart {
        part_number: 7,
        etag: completed[0].etag.clone(),
    }];
    assert!(matches!(
        store.complete_multipart("mp", &id, &missing).await,
        Err(StoreError::InvalidPart { .. })
    ));
    let wrong_etag = vec![CompletedPart {
        part_number: 1,
        etag: completed[1].etag.clone(),
    }];
    assert!(matches!(
        store.complete_multipart("mp", &id, &wrong_etag).await,
        Err(StoreError::InvalidPart { .. })
    ));
    assert!(matches!(
        store.complete_multipart("mp", &id, &[]).await,
        Err(StoreError::InvalidPart { .. })
    ));
    assert!(matches!(
        store.upload_part("mp", &id, 0, Bytes::new()).await,
        Err(StoreError::InvalidArgument(_))
    ));

    // A single small part is fine (the last part may be any size), and uploading a part number
    // again replaces it. A failed completion left the upload open.
    let replaced = store
        .upload_part("mp", &id, 1, Bytes::from_static(b"final"))
        .await
        .expect("re-upload");
    let etag = store
        .complete_multipart(
            "mp",
            &id,
            &[CompletedPart {
                part_number: 1,
                etag: replaced,
            }],
        )
        .await
        .expect("complete one small part");
    assert!(etag.etag.ends_with("-1\""), "{}", etag.etag);
    assert_eq!(get(store, "mp").await, b"final");

    // The upload is gone once completed.
    let result = store
        .upload_part("mp", &id, 2, Bytes::from_static(b"x"))
        .await;
    assert_no_such_upload(b, "UploadPart of a completed upload", result, false);
    assert!(matches!(
        store.abort_multipart("mp", &id).await,
        Err(StoreError::NoSuchUpload { .. })
    ));
}

/// S3 answers NoSuchUpload; a backend without `no_such_upload_everywhere` answers 500 (a
/// transient error once the store's retries are spent) or, for `foreign_ok`, accepts it.
fn assert_no_such_upload<T: std::fmt::Debug>(
    b: &Backend,
    what: &str,
    result: Result<T, StoreError>,
    foreign_ok: bool,
) {
    match result {
        Err(StoreError::NoSuchUpload { .. }) => {}
        Err(ref e) if !b.quirks.no_such_upload_everywhere && !foreign_ok && e.is_transient() => {}
        Ok(_) if !b.quirks.no_such_upload_everywhere && foreign_ok => {}
        other => panic!("{what}: expected NoSuchUpload, got {other:?}"),
    }
}

async fn multipart_unknown_uploads_and_abort(b: &Backend) {
    let store = &b.store;
    let bogus = "0123456789abcdef0123456789abcdef";
    let result = store
        .upload_part("k", bogus, 1, Bytes::from_static(b"x"))
        .await;
    assert_no_such_upload(b, "UploadPart of an unknown upload", result, false);
    let part = [CompletedPart {
        part_number: 1,
        etag: "\"0123456789abcdef0123456789abcdef\"".into(),
    }];
    let result = store.complete_multipart("k", "not-an-id", &part).await;
    assert_no_such_upload(b, "completing an unknown upload", result, false);
    assert!(matches!(
        store.abort_multipart("k", bogus).await,
        Err(StoreError::NoSuchUpload { .. })
    ));

    let id = store
        .create_multipart("k", PutOptions::default())
        .await
        .expect("create");
    // An upload id belongs to its key.
    let result = store
        .upload_part("other", &id, 1, Bytes::from_static(b"x"))
        .await;
    assert_no_such_upload(b, "UploadPart under another key", result, true);
    let etag = store
        .upload_part("k", &id, 1, Bytes::from_static(b"x"))
        .await
        .expect("part");
    store.abort_multipart("k", &id).await.expect("abort");
    let result = store
        .complete_multipart(
            "k",
            &id,
            &[CompletedPart {
                part_number: 1,
                etag,
            }],
        )
        .await;
    assert_no_such_upload(b, "completing an aborted upload", result, false);
    assert!(matches!(
        store.head("k").await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn multipart_conditions_checked_at_completion(b: &Backend) {
    let store = &b.store;
    let create_only = PutOptions {
        if_none_match: true,
        ..PutOptions::default()
    };
    let id = store
        .create_multipart("cond", create_only.clone())
        .await
        .expect("create");
    let etag = store
        .upload_part("cond", &id, 1, Bytes::from_static(b"mine"))
        .await
        .expect("part");
    // Someone else creates the object meanwhile.
    let theirs = put(store, "cond", b"theirs").await;
    assert!(matches!(
        store
            .complete_multipart(
                "cond",
                &id,
                &[CompletedPart {
                    part_number: 1,
                    etag
                }]
            )
            .await,
        Err(StoreError::PreconditionFailed { .. })
    ));
    assert_eq!(get(store, "cond").await, b"theirs");

    let swap = PutOptions {
        if_match: Some(theirs),
        ..PutOptions::default()
    };
    let new = multipart(store, "cond", &[b"replacement".to_vec()], swap.clone())
        .await
        .expect("if_match holds");
    let late = multipart(store, "cond", &[b"late".to_vec()], swap).await;
    if b.quirks.if_match_at_completion {
        assert!(
            matches!(late, Err(StoreError::PreconditionFailed { .. })),
            "{late:?}"
        );
        assert_eq!(store.head("cond").await.expect("head").etag, new);
    } else {
        late.expect("this backend is said to ignore If-Match at completion");
    }
}

// ---- counters ----

async fn request_counters(b: &Backend) {
    let store = &b.store;
    let Some(before) = store.stats() else {
        return; // This backend does not count requests.
    };
    put(store, "s", b"0123456789").await;
    store.get("s", Some(2..4), None).await.expect("get");
    store.head("s").await.expect("head");
    store.list(&ListRequest::default()).await.expect("list");
    store
        .copy("s", "t", CopyOptions::default())
        .await
        .expect("copy");
    store.delete("t").await.expect("delete");
    let _ = store.head("missing").await;
    let after = store.stats().expect("still counting");
    let d = after.since(&before);
    assert_eq!((d.requests(Op::Put), d.bytes(Op::Put)), (1, 10));
    assert_eq!((d.requests(Op::Get), d.bytes(Op::Get)), (1, 2));
    assert_eq!(d.requests(Op::Head), 2, "failed requests count too");
    assert_eq!(d.requests(Op::List), 1);
    assert_eq!(d.requests(Op::Copy), 1);
    assert_eq!(d.requests(Op::Delete), 1);
    assert_eq!(d.total_requests(), 7);
}

// ---- server-side encryption ----

fn sse_c_key(byte: u8, name: &str) -> SseCKey {
    SseCKey::from_bytes(&[byte; 32], name).expect("32 bytes")
}

fn customer_keys(keys: &[&SseCKey]) -> SseMode {
    SseMode::customer_keys(keys.iter().map(|k| (*k).clone()).collect()).expect("keys")
}

/// What HEAD should report for an object written with `key`.
fn written_with(b: &Backend, key: &SseCKey) -> Option<ObjectSse> {
    Some(if b.quirks.echoes_sse_c {
        ObjectSse::C {
            key_md5: key.key_md5_base64().to_owned(),
        }
    } else {
        ObjectSse::None
    })
}

async fn sse_s3_and_kms_are_recorded_and_echoed(b: &Backend) {
    let kms = SseMode::Kms {
        key_id: Some("test-key-id".into()),
        bucket_key: false,
    };
    let kms_sse = ObjectSse::Kms {
        key_id: Some("test-key-id".into()),
    };
    for (mode, expected) in [(SseMode::S3, ObjectSse::S3), (kms, kms_sse)] {
        let s = b.client(mode.clone()).await;
        let name = mode.name();
        put(&s, &format!("{name}/put"), b"x").await;
        multipart(
            &s,
            &format!("{name}/mp"),
            &[b"y".to_vec()],
            PutOptions::default(),
        )
        .await
        .expect("multipart");
        s.copy(
            &format!("{name}/put"),
            &format!("{name}/copy"),
            CopyOptions::default(),
        )
        .await
        .expect("copy");
        for what in ["put", "mp", "copy"] {
            let key = format!("{name}/{what}");
            let info = s.head(&key).await.expect("head");
            assert_eq!(info.sse.as_ref(), Some(&expected), "HEAD {key}");
            // Reads of SSE-S3/KMS objects need no headers: a client without SSE reads them.
            let got = b.store.get(&key, None, None).await.expect("get");
            assert_eq!(got.info.sse.as_ref(), Some(&expected), "GET {key}");
        }
    }
    // A copy asks for its own SSE: one made without SSE headers is stored without SSE.
    b.store
        .copy("s3/put", "plain-copy", CopyOptions::default())
        .await
        .expect("copy");
    let info = b.store.head("plain-copy").await.expect("head");
    assert_eq!(info.sse, Some(ObjectSse::None));
    let page = b.store.list(&ListRequest::default()).await.expect("list");
    assert!(
        page.objects.iter().all(|o| o.sse.is_none()),
        "LIST reports no SSE"
    );
}

async fn sse_c_objects_answer_only_to_their_key(b: &Backend) {
    let k1 = sse_c_key(1, "k1.key");
    let k2 = sse_c_key(2, "k2.key");
    let writer = b.client(customer_keys(&[&k1])).await;
    let other = b.client(customer_keys(&[&k2])).await;
    let plain = &b.store;
    put(&writer, "c", b"secret").await;
    multipart(
        &writer,
        "c-mp",
        &[b"in parts".to_vec()],
        PutOptions::default(),
    )
    .await
    .expect("SSE-C multipart");
    put(plain, "p", b"plain").await;

    for key in ["c", "c-mp"] {
        let info = writer.head(key).await.expect("head with the key");
        assert_eq!(info.sse, written_with(b, &k1), "{key}");
        assert_eq!(
            &writer
                .get(key, Some(1..3), None)
                .await
                .expect("ranged get with the key")
                .data[..],
            &get(&writer, key).await[1..3]
        );
        // Without the key: 400 InvalidRequest. With another key: 403.
        let without = plain.get(key, None, None).await;
        assert!(
            matches!(without, Err(StoreError::InvalidArgument(_))),
            "GET {key} without the key: {without:?}"
        );
        let without = plain.head(key).await;
        assert!(
            matches!(without, Err(StoreError::InvalidArgument(_))),
            "HEAD {key} without the key: {without:?}"
        );
        let wrong = other.get(key, Some(0..1), None).await;
        assert!(
            matches!(wrong, Err(StoreError::AccessDenied { .. })),
            "GET {key} with the wrong key: {wrong:?}"
        );
        let wrong = other.head(key).await;
        assert!(
            matches!(wrong, Err(StoreError::AccessDenied { .. })),
            "HEAD {key} with the wrong key: {wrong:?}"
        );
    }
    assert_eq!(get(&writer, "c").await, b"secret");
    // A key sent for an object stored without SSE-C is refused as well.
    let keyed = writer.get("p", None, None).await;
    assert!(
        matches!(keyed, Err(StoreError::InvalidArgument(_))),
        "GET of a plain object with a key: {keyed:?}"
    );

    // CopyObject needs the source's key.
    let copied = plain.copy("c", "c-copy", CopyOptions::default()).await;
    assert!(
        matches!(copied, Err(StoreError::InvalidArgument(_))),
        "copy without the source key: {copied:?}"
    );
    let copied = other.copy("c", "c-copy", CopyOptions::default()).await;
    assert!(
        matches!(copied, Err(StoreError::AccessDenied { .. })),
        "copy with the wrong source key: {copied:?}"
    );
    assert!(matches!(
        writer.head("c-copy").await,
        Err(StoreError::NotFound { .. })
    ));
    writer
        .copy("c", "c-copy", CopyOptions::default())
        .await
        .expect("copy with the source key");
    assert_eq!(get(&writer, "c-copy").await, b"secret");
    assert!(matches!(
        plain.get("c-copy", None, None).await,
        Err(StoreError::InvalidArgument(_))
    ));
}

/// SSE-C key rotation: the first key writes, every key reads; a read refused with one key is
/// tried with the next (one more request each).
async fn sse_c_key_rotation(b: &Backend) {
    let old = sse_c_key(1, "old.key");
    let new = sse_c_key(2, "new.key");
    let before_rotation = b.client(customer_keys(&[&old])).await;
    put(&before_rotation, "written-with-old", b"old data").await;

    let rotated = b.client(customer_keys(&[&new, &old])).await;
    let before = rotated.stats();
    assert_eq!(get(&rotated, "written-with-old").await, b"old data");
    assert_eq!(
        &rotated
            .get("written-with-old", Some(4..8), None)
            .await
            .expect("ranged read with the old key")
            .data[..],
        b"data"
    );
    let info = rotated.head("written-with-old").await.expect("head");
    assert_eq!(info.size, 8, "HEAD falls back to the old key too");
    assert_eq!(info.sse, written_with(b, &old));
    if let (Some(before), Some(after)) = (before, rotated.stats()) {
        let d = after.since(&before);
        assert_eq!(
            (d.requests(Op::Get), d.requests(Op::Head)),
            (4, 2),
            "one refused try with the new key, one with the old"
        );
    }

    put(&rotated, "written-with-new", b"new data").await;
    let info = rotated.head("written-with-new").await.expect("head");
    assert_eq!(
        info.sse,
        written_with(b, &new),
        "new writes use the new key"
    );
    let before = rotated.stats();
    rotated
        .copy("written-with-old", "copied", CopyOptions::default())
        .await
        .expect("copy reads the source with the old key");
    if let (Some(before), Some(after)) = (before, rotated.stats()) {
        assert_eq!(
            after.since(&before).requests(Op::Copy),
            2,
            "refused with the new source key, then the old"
        );
    }

    let only_new = b.client(customer_keys(&[&new])).await;
    assert_eq!(get(&only_new, "written-with-new").await, b"new data");
    assert_eq!(
        get(&only_new, "copied").await,
        b"old data",
        "the copy is written with the new key"
    );
    let refused = only_new.get("written-with-old", None, None).await;
    assert!(
        matches!(refused, Err(StoreError::AccessDenied { .. })),
        "old object without the old key: {refused:?}"
    );
    let only_old = b.client(customer_keys(&[&old])).await;
    let refused = only_old.get("written-with-new", None, None).await;
    assert!(
        matches!(refused, Err(StoreError::AccessDenied { .. })),
        "new object without the new key: {refused:?}"
    );
}

// ---- instantiation ----

/// One `#[tokio::test]` per (backend, test) pair, in a module per backend. A backend that
/// cannot be set up fails its tests (its constructor panics saying how to install what is
/// missing).
macro_rules! backend_tests {
    ($backend:ident, [$($test:ident),* $(,)?]) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let backend = crate::backends::$backend().await;
                    crate::$test(&backend).await;
                }
            )*
        }
    };
}

macro_rules! conformance {
    ([$($backend:ident),* $(,)?], $tests:tt) => {
        $( backend_tests!($backend, $tests); )*
    };
}

conformance!(
    [memory, dir, s3],
    [
        ranged_gets,
        empty_object,
        missing_objects,
        get_with_if_match,
        head_returns_metadata_and_list_does_not,
        etags_follow_content,
        objects_markers_and_children_coexist,
        unusual_keys,
        long_keys,
        pagination_over_many_keys,
        delimiter_listings,
        common_prefixes_across_pages,
        bad_continuation_token,
        conditional_puts,
        racing_conditional_writes,
        deletes,
        copy_with_metadata_directives,
        copy_onto_itself,
        multipart_upload,
        multipart_part_rules,
        multipart_unknown_uploads_and_abort,
        multipart_conditions_checked_at_completion,
        request_counters,
        sse_s3_and_kms_are_recorded_and_echoed,
        sse_c_objects_answer_only_to_their_key,
        sse_c_key_rotation,
    ]
);
