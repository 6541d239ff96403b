//! Conditional writes (and races between them), deletes (one key and many), and CopyObject.

use futures::stream::{self, StreamExt};
use s3cryptfs::store::{
    CopyOptions, DynStore, MAX_DELETE_BATCH, MetadataDirective, Op, PutOptions, StoreError,
};

use crate::common::store::Backend;
use crate::conformance::helpers::*;

// ---- writes ----

pub(crate) async fn conditional_puts(b: &Backend) {
    let store = &b.store;
    let create_only = PutOptions {
        if_none_match: true,
        ..PutOptions::default()
    };
    let v1 = put_with(store, "c", b"v1", create_only.clone())
        .await
        .expect("create");
    if !b.quirks.conditional_writes {
        return ignored_conditions(b, v1).await;
    }
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
    // S3 answers 404, not 412, to If-Match on a missing key (Ceph RGW 16.2: 412).
    let missing = put_with(store, "missing", b"x", swap(&v1)).await;
    if b.quirks.if_match_on_missing_is_404 {
        assert!(
            matches!(missing, Err(StoreError::NotFound { .. })),
            "{missing:?}"
        );
    } else {
        assert!(
            matches!(missing, Err(StoreError::PreconditionFailed { .. })),
            "this backend is said to answer 412: {missing:?}"
        );
    }
    assert!(matches!(
        store.head("missing").await,
        Err(StoreError::NotFound { .. })
    ));
}

/// On a server that ignores `If-None-Match` and `If-Match` on PUT, every such write happens
/// and the last one stays (docs/SERVERS.md: the multi-mount conflict handling needs a server
/// that honours them). What the store still does: it sends the conditions (so a server that
/// honours them refuses), and reports each write's own ETag.
async fn ignored_conditions(b: &Backend, v1: String) {
    let store = &b.store;
    let create_only = PutOptions {
        if_none_match: true,
        ..PutOptions::default()
    };
    let v2 = put_with(store, "c", b"v2", create_only)
        .await
        .expect("this backend is said to ignore If-None-Match");
    assert_ne!(v2, v1);
    assert_eq!(get(store, "c").await, b"v2", "the later write stays");
    let stale = PutOptions {
        if_match: Some(v1),
        ..PutOptions::default()
    };
    let v3 = put_with(store, "c", b"v3", stale.clone())
        .await
        .expect("this backend is said to ignore If-Match");
    assert_eq!(get(store, "c").await, b"v3");
    assert_eq!(store.head("c").await.expect("head").etag, v3);
    put_with(store, "missing", b"x", stale)
        .await
        .expect("If-Match on a missing key creates it here");
    assert_eq!(get(store, "missing").await, b"x");
}

/// Writes `bodies` to one key at once, all with `opts`; returns each body with its outcome.
pub(crate) async fn race<'b>(
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
pub(crate) fn single_winner(
    results: Vec<(&Vec<u8>, Result<String, StoreError>)>,
) -> (Vec<u8>, String) {
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
pub(crate) async fn racing_conditional_writes(b: &Backend) {
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
    if !b.quirks.conditional_writes {
        // Every write wins; the object left is one of them, whole, with that write's ETag.
        let mut opts = create_only;
        for bodies in [&creators, &swappers] {
            let results = race(store, bodies, &opts).await;
            let stored = get(store, "race").await;
            let etag = store.head("race").await.expect("head").etag;
            let winner = results
                .into_iter()
                .map(|(body, result)| (body, result.expect("this backend ignores conditions")))
                .find(|(body, _)| **body == stored);
            let (_, winner_etag) = winner.expect("the object is one of the bodies written");
            assert_eq!(etag, winner_etag);
            opts = PutOptions {
                if_match: Some(etag),
                ..PutOptions::default()
            };
        }
        return;
    }
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

/// `delete_many` of more keys than one DeleteObjects takes: every key goes (missing ones
/// count as deleted), an invalid key fails alone and is named, keys not asked for stay, and the
/// requests are batches of at most 1,000 keys (moto and s3rver have DeleteObjects too; the
/// fallback to single deletes for servers without it is `src/store/s3/hostile_tests.rs`'s),
/// or single deletes where the store has no batch request (the directory store).
pub(crate) async fn batch_deletes(b: &Backend) {
    let store = &b.store;
    let n = MAX_DELETE_BATCH + 3;
    let keys: Vec<String> = (0..n).map(|i| format!("many/{i:05}")).collect();
    stream::iter(&keys)
        .for_each_concurrent(16, |k| async move {
            put(store, k, k.as_bytes()).await;
        })
        .await;
    put(store, "many-kept", b"kept").await;
    put(store, "many/kept/below", b"kept").await;
    let mut asked = keys.clone();
    asked.push("many/never-was".into());
    asked.push(String::new());
    let before = store.stats().expect("counting");
    let failed = store.delete_many(&asked).await.expect("delete_many");
    let d = store.stats().expect("counting").since(&before);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].key, "", "{failed:?}");
    assert!(
        matches!(failed[0].error, StoreError::InvalidArgument(_)),
        "{failed:?}"
    );
    let (mut left, _) = list_all(store, "many", None, 0).await;
    left.sort();
    assert_eq!(left, strings(&["many-kept", "many/kept/below"]));
    // One request per key where deletes are single (the invalid key's may be counted too).
    let valid = (n + 1) as u64;
    let (batches, singles) = (d.requests(Op::DeleteBatch), d.requests(Op::Delete));
    assert!(
        (batches == 2 && singles == 0) || (batches <= 1 && (valid..=valid + 1).contains(&singles)),
        "{n} keys deleted with {batches} DeleteObjects and {singles} DeleteObject requests"
    );
    println!("{n} keys deleted with {batches} DeleteObjects and {singles} DeleteObject requests");
    assert!(
        store
            .delete_many(&[])
            .await
            .expect("nothing to delete")
            .is_empty()
    );
}

pub(crate) async fn deletes(b: &Backend) {
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

/// DeleteObject with If-Match (what a rename deletes its source with): another version of
/// the key stays, the version named goes, a missing key is no error.
pub(crate) async fn conditional_deletes(b: &Backend) {
    let store = &b.store;
    let old = put(store, "cd/k", b"copied").await;
    let new = put(store, "cd/k", b"written since").await;
    assert_ne!(old, new);
    if !b.quirks.conditional_deletes {
        // The condition is ignored: the delete happens (docs/SERVERS.md).
        store
            .delete_if_match("cd/k", &old)
            .await
            .expect("the server deletes regardless");
        assert!(matches!(
            store.head("cd/k").await,
            Err(StoreError::NotFound { .. })
        ));
        return;
    }
    assert!(
        matches!(
            store.delete_if_match("cd/k", &old).await,
            Err(StoreError::PreconditionFailed { .. })
        ),
        "a delete conditional on a replaced version must be refused"
    );
    assert_eq!(get(store, "cd/k").await, b"written since");
    store
        .delete_if_match("cd/k", &new)
        .await
        .expect("the version named is deleted");
    assert!(matches!(
        store.head("cd/k").await,
        Err(StoreError::NotFound { .. })
    ));
    store
        .delete_if_match("cd/k", &new)
        .await
        .expect("a conditional delete of a missing key succeeds");
}

// ---- copy ----

pub(crate) async fn copy_with_metadata_directives(b: &Backend) {
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

pub(crate) async fn copy_onto_itself(b: &Backend) {
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
        source_size: None,
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
