//! Server-side encryption: SSE-S3/KMS recorded and echoed, SSE-C objects answering only to their
//! key, SSE-C key rotation.

use s3cryptfs::store::{
    CopyOptions, ListRequest, ObjectSse, Op, PutOptions, SseCKey, SseMode, StoreError,
};

use crate::common::store::Backend;
use crate::conformance::helpers::*;

// ---- server-side encryption ----

pub(crate) fn sse_c_key(byte: u8, name: &str) -> SseCKey {
    SseCKey::from_bytes(&[byte; 32], name).expect("32 bytes")
}

pub(crate) fn customer_keys(keys: &[&SseCKey]) -> SseMode {
    SseMode::customer_keys(keys.iter().map(|k| (*k).clone()).collect()).expect("keys")
}

/// What HEAD should report for an object written with `key`.
pub(crate) fn written_with(b: &Backend, key: &SseCKey) -> Option<ObjectSse> {
    Some(if b.quirks.echoes_sse_c {
        ObjectSse::C {
            key_md5: key.key_md5_base64().to_owned(),
        }
    } else {
        ObjectSse::None
    })
}

/// Whether `result` is the refusal of a read or copy with the wrong SSE-C key: 403, or 400 on
/// a backend without [`Quirks::wrong_sse_c_key_is_403`](crate::common::store::Quirks).
pub(crate) fn wrong_key_refused<T>(b: &Backend, result: &Result<T, StoreError>) -> bool {
    match result {
        Err(StoreError::AccessDenied { .. }) => b.quirks.wrong_sse_c_key_is_403,
        Err(StoreError::InvalidArgument(_)) => !b.quirks.wrong_sse_c_key_is_403,
        _ => false,
    }
}

pub(crate) async fn sse_s3_and_kms_are_recorded_and_echoed(b: &Backend) {
    let kms = SseMode::Kms {
        key_id: Some(b.kms_key_id.into()),
        bucket_key: false,
    };
    let kms_sse = ObjectSse::Kms {
        key_id: Some(b.kms_key_id.into()),
    };
    let (supported, unsupported): (Vec<_>, Vec<_>) = [
        (SseMode::S3, ObjectSse::S3, b.quirks.sse_s3),
        (kms, kms_sse, b.quirks.sse_kms),
    ]
    .into_iter()
    .partition(|(_, _, supported)| *supported);
    unconfirmed_sse(b, unsupported.into_iter().map(|(mode, ..)| mode)).await;
    let Some((first, ..)) = supported.first() else {
        return;
    };
    let first = first.name();
    for (mode, expected, _) in supported {
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
        let before = s.stats();
        s.copy(
            &format!("{name}/put"),
            &format!("{name}/copy"),
            CopyOptions::default(),
        )
        .await
        .expect("copy");
        if let (Some(before), Some(after)) = (before, s.stats()) {
            let d = after.since(&before);
            let sent = [Op::Copy, Op::Get, Op::Put].map(|op| d.requests(op));
            // Where the server refuses to copy a KMS object, the store reads and writes it.
            let client_side = !b.quirks.copies_sse_objects && matches!(mode, SseMode::Kms { .. });
            let expected = if client_side { [1, 1, 1] } else { [1, 0, 0] };
            assert_eq!(
                sent, expected,
                "{name}: copy, GET, PUT requests of the copy"
            );
        }
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
        .copy(
            &format!("{first}/put"),
            "plain-copy",
            CopyOptions::default(),
        )
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

/// On a server without SSE-S3 and SSE-KMS (s3rver stores the object and does not say it is
/// encrypted), every write asked to use them fails, saying the server did not confirm it:
/// never a silent fall back to no SSE.
async fn unconfirmed_sse(b: &Backend, modes: impl Iterator<Item = SseMode>) {
    for mode in modes {
        let s = b.client(mode.clone()).await;
        let name = mode.name();
        b.store
            .put(
                &format!("{name}/src"),
                bytes::Bytes::from_static(b"x"),
                PutOptions::default(),
            )
            .await
            .expect("a write without SSE");
        let put = put_with(&s, &format!("{name}/put"), b"x", PutOptions::default()).await;
        let mp = multipart(
            &s,
            &format!("{name}/mp"),
            &[b"y".to_vec()],
            PutOptions::default(),
        )
        .await;
        let copy = s
            .copy(
                &format!("{name}/src"),
                &format!("{name}/copy"),
                CopyOptions::default(),
            )
            .await
            .map(|out| out.etag);
        for (what, result) in [("put", put), ("multipart", mp), ("copy", copy)] {
            match result {
                Err(StoreError::Io { ref source, .. })
                    if source.to_string().contains(
                        "was not confirmed with the requested server-side encryption",
                    ) => {}
                other => panic!("{name} {what}: {other:?}"),
            }
        }
    }
}

pub(crate) async fn sse_c_objects_answer_only_to_their_key(b: &Backend) {
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
        // Without the key: 400 InvalidRequest. With another key: 403 (Ceph: 400).
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
            wrong_key_refused(b, &wrong),
            "GET {key} with the wrong key: {wrong:?}"
        );
        let wrong = other.head(key).await;
        assert!(
            wrong_key_refused(b, &wrong),
            "HEAD {key} with the wrong key: {wrong:?}"
        );
    }
    assert_eq!(get(&writer, "c").await, b"secret");
    // A key sent for an object stored without SSE-C is refused as well (Ceph: ignored).
    let keyed = writer.get("p", None, None).await;
    if b.quirks.sse_c_key_on_plain_object_refused {
        assert!(
            matches!(keyed, Err(StoreError::InvalidArgument(_))),
            "GET of a plain object with a key: {keyed:?}"
        );
    } else {
        let got = keyed.expect("this backend is said to ignore the key");
        assert_eq!(
            (&got.data[..], got.info.sse),
            (&b"plain"[..], Some(ObjectSse::None))
        );
    }

    // CopyObject needs the source's key.
    let copied = plain.copy("c", "c-copy", CopyOptions::default()).await;
    assert!(
        matches!(copied, Err(StoreError::InvalidArgument(_))),
        "copy without the source key: {copied:?}"
    );
    let copied = other.copy("c", "c-copy", CopyOptions::default()).await;
    assert!(
        wrong_key_refused(b, &copied),
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
pub(crate) async fn sse_c_key_rotation(b: &Backend) {
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
        let d = after.since(&before);
        let sent = [Op::Copy, Op::Get, Op::Put].map(|op| d.requests(op));
        if b.quirks.copies_sse_objects {
            assert_eq!(
                sent,
                [2, 0, 0],
                "refused with the new source key, then the old"
            );
        } else {
            // One CopyObject refused (501), then GETs with the new key and the old, one PUT.
            assert_eq!(
                sent,
                [1, 2, 1],
                "copy, GET, PUT requests of a client-side copy"
            );
        }
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
        wrong_key_refused(b, &refused),
        "old object without the old key: {refused:?}"
    );
    let only_old = b.client(customer_keys(&[&old])).await;
    let refused = only_old.get("written-with-new", None, None).await;
    assert!(
        wrong_key_refused(b, &refused),
        "new object without the new key: {refused:?}"
    );
}
