//! Tests of the sealed-object seam over a memory store.

use std::sync::Arc;

use zeroize::Zeroizing;

use super::*;
use crate::crypto::format::metadata::METADATA_WRAP_KEY;
use crate::crypto::rewrap::{Rewrap, rewrap_for_metadata};
use crate::crypto::{Secret, VaultConfig};
use crate::store::{MemoryStore, ObjectStore, Op};

const B: u32 = 4096;

fn vault() -> (VaultConfig, VaultKeys) {
    VaultConfig::create(&Secret::KeyFile(Zeroizing::new([7u8; 32])), B).expect("vault")
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + 7) as u8).collect()
}

fn sealed_over(mem: &Arc<MemoryStore>, keys: VaultKeys) -> SealedStore {
    SealedStore::new(mem.clone(), Arc::new(keys))
}

fn gets(mem: &MemoryStore) -> u64 {
    mem.stats().expect("memory store counts").requests(Op::Get)
}

#[tokio::test]
async fn a_first_read_from_block_0_fetches_header_and_blocks_at_once() {
    let mem = MemoryStore::new();
    let (_, keys) = vault();
    let sealed = sealed_over(&mem, keys);
    let plain = data(3 * B as usize + 100);
    let v = sealed
        .put_all("f", &plain, PutOptions::default(), None)
        .await
        .expect("put");
    assert_eq!(v.plaintext_len, plain.len() as u64);
    assert!(v.carried.contains_key("s3cryptfs-key"), "{:?}", v.carried);

    let before = gets(&mem);
    let got = sealed.read_blocks(&v, 0..2).await.expect("blocks 0..2");
    assert_eq!(&got[..], &plain[..2 * B as usize]);
    assert_eq!(gets(&mem) - before, 1, "header and blocks in one GET");
    // The opener is kept: the next read is one GET of exactly its blocks.
    let got = sealed.read_blocks(&v, 2..9).await.expect("blocks 2..");
    assert_eq!(&got[..], &plain[2 * B as usize..]);
    assert_eq!(gets(&mem) - before, 2);
    // Forgotten, and read elsewhere than at block 0: the header alone, then the blocks.
    sealed.forget(&v.key, &v.etag).await;
    let got = sealed.read_blocks(&v, 1..2).await.expect("block 1");
    assert_eq!(&got[..], &plain[B as usize..2 * B as usize]);
    assert_eq!(gets(&mem) - before, 4);
}

#[tokio::test]
async fn a_replaced_version_is_changed_not_read() {
    let mem = MemoryStore::new();
    let (_, keys) = vault();
    let sealed = sealed_over(&mem, keys);
    let v = sealed
        .put_all("f", b"first", PutOptions::default(), None)
        .await
        .expect("put");
    sealed
        .put_all("f", b"second", PutOptions::default(), None)
        .await
        .expect("put again");
    for r in [
        sealed.read_blocks(&v, 0..1).await.map(|_| ()),
        sealed.opener(&v).await.map(|_| ()),
    ] {
        assert!(matches!(r, Err(SealedError::Changed { .. })), "{r:?}");
    }
    mem.delete("f").await.expect("delete");
    let r = sealed.read_blocks(&v, 0..1).await;
    assert!(matches!(r, Err(SealedError::Changed { .. })), "{r:?}");
    // A version whose length is not what its header says is no version at all.
    let w = sealed
        .put_all("g", b"0123456789", PutOptions::default(), None)
        .await
        .expect("put");
    let wrong = ObjectVersion {
        plaintext_len: 11,
        ..w.clone()
    };
    let r = sealed.read_blocks(&wrong, 0..1).await;
    assert!(matches!(r, Err(SealedError::Changed { .. })), "{r:?}");
    assert_eq!(
        &sealed.read_blocks(&w, 0..1).await.expect("read")[..],
        b"0123456789"
    );
}

#[tokio::test]
async fn a_flipped_byte_names_its_block() {
    let mem = MemoryStore::new();
    let (_, keys) = vault();
    let sealed = sealed_over(&mem, keys);
    sealed
        .put_all("f", &data(10_000), PutOptions::default(), None)
        .await
        .expect("put");
    let mut bytes = mem.raw_get("f").expect("object");
    bytes[HEADER_LEN + 5000] ^= 1;
    mem.raw_put("f", bytes);
    let opened = sealed.open("f", None).await.expect("header is fine");
    let r = sealed.read_blocks(&opened.version, 0..3).await;
    let Err(SealedError::Crypto { source, .. }) = r else {
        panic!("expected a crypto error, got {r:?}");
    };
    assert!(source.to_string().contains("block 1 "), "{source}");
    let r = sealed.read_blocks(&opened.version, 0..1).await;
    assert!(r.is_ok(), "block 0 is intact: {r:?}");
}

#[tokio::test]
async fn the_metadata_wrap_opens_an_object_without_its_old_generation() {
    let mem = MemoryStore::new();
    let (mut config, mut keys) = vault();
    let plain = data(5000);
    let object = crate::crypto::format::seal_all(&keys, &plain).expect("seal");
    config.add_generation(&mut keys).expect("rotate");
    let Rewrap::Wrapped { value, .. } =
        rewrap_for_metadata(&keys, &object, object.len() as u64, None).expect("rewrap")
    else {
        panic!("expected a wrap");
    };
    let only_new = keys.without_generation(1).expect("without 1");
    mem.raw_put("f", object);
    let sealed = sealed_over(&mem, only_new);
    let e = sealed.open("f", None).await.expect_err("header wrap only");
    assert!(
        matches!(
            e,
            SealedError::Crypto {
                source: CryptoError::WrongKey(_),
                ..
            }
        ),
        "{e}"
    );
    let info = mem.head("f").await.expect("head");
    let mut entries = Metadata::new();
    entries.insert(METADATA_WRAP_KEY.to_owned(), value);
    let full = sealed_over(&mem, keys);
    full.add_crypto_metadata(&info, entries)
        .await
        .expect("store the wrap");
    let opened = sealed.open("f", None).await.expect("metadata wrap");
    assert_eq!(
        (opened.opener.generation(), opened.opener.unwrapped_with()),
        (1, 2)
    );
    assert!(opened.version.carried.contains_key(METADATA_WRAP_KEY));
    let got = sealed
        .read_blocks(&opened.version, 0..2)
        .await
        .expect("read");
    assert_eq!(&got[..], &plain[..]);
    // The copy an attribute change makes keeps the wrap: still readable without generation 1.
    let mut attrs = Metadata::new();
    attrs.insert("mode".to_owned(), "33188".to_owned());
    let moved = sealed
        .copy(&opened.version, "g", Some(attrs), None)
        .await
        .expect("copy");
    let stored = mem
        .head("g")
        .await
        .expect("head")
        .metadata
        .expect("metadata");
    assert_eq!(stored.get("mode").map(String::as_str), Some("33188"));
    assert_eq!(
        &sealed.read_all(&moved).await.expect("read")[..],
        &plain[..]
    );
}

#[tokio::test]
async fn copies_are_conditional_on_the_source_version() {
    let mem = MemoryStore::new();
    let (_, keys) = vault();
    let sealed = sealed_over(&mem, keys);
    let v = sealed
        .put_all("f", b"data", PutOptions::default(), None)
        .await
        .expect("put");
    let kept = sealed.copy(&v, "g", None, None).await.expect("copy");
    assert_eq!((kept.key.as_str(), kept.plaintext_len), ("g", 4));
    assert_eq!(sealed.read_all(&kept).await.expect("read"), b"data");
    sealed
        .put_all("f", b"other", PutOptions::default(), None)
        .await
        .expect("replace");
    let r = sealed.copy(&v, "h", None, None).await;
    assert!(matches!(r, Err(SealedError::Changed { .. })), "{r:?}");
    mem.delete("f").await.expect("delete");
    let r = sealed.copy(&v, "h", None, None).await;
    assert!(
        matches!(r, Err(SealedError::Store(StoreError::NotFound { .. }))),
        "{r:?}"
    );
    // A conditional PUT that fails is Changed too.
    let opts = PutOptions {
        if_none_match: true,
        ..PutOptions::default()
    };
    let r = sealed.put_all("g", b"x", opts, None).await;
    assert!(matches!(r, Err(SealedError::Changed { .. })), "{r:?}");
}

#[tokio::test]
async fn short_and_foreign_objects_say_what_they_are() {
    let mem = MemoryStore::new();
    let (_, keys) = vault();
    let sealed = sealed_over(&mem, keys);
    mem.raw_put("empty", Vec::new());
    mem.raw_put("plain", &b"hello"[..]);
    mem.raw_put("cut", &b"S3CF\x01\x01"[..]);
    let kind = |e: SealedError| match e {
        SealedError::Crypto { source, .. } => source,
        other => panic!("expected a crypto error, got {other:?}"),
    };
    for (key, unsupported) in [("empty", true), ("plain", true), ("cut", false)] {
        let e = kind(sealed.open(key, None).await.expect_err(key));
        match e {
            CryptoError::Unsupported(m) => {
                assert!(unsupported && m.contains("no S3CF magic"), "{key}: {m}")
            }
            CryptoError::Corrupt(m) => assert!(!unsupported && m.contains("truncated"), "{m}"),
            other => panic!("{key}: {other}"),
        }
    }
    let r = sealed.open("missing", None).await;
    assert!(matches!(r, Err(SealedError::Changed { .. })), "{r:?}");
}

#[tokio::test]
async fn sealed_bodies_must_have_their_length() {
    let mem = MemoryStore::new();
    let (_, keys) = vault();
    let sealed = sealed_over(&mem, keys);
    let sealer = sealed.new_sealer().expect("sealer");
    let body = crate::crypto::format::seal_all_with(&sealer, b"abc").expect("seal");
    let r = sealed
        .put_sealed(
            "f",
            &sealer,
            Bytes::from(body.clone()),
            4,
            PutOptions::default(),
        )
        .await;
    assert!(matches!(r, Err(SealedError::Internal(_))), "{r:?}");
    let v = sealed
        .put_sealed("f", &sealer, Bytes::from(body), 3, PutOptions::default())
        .await
        .expect("put");
    assert_eq!(v.carried, sealer.crypto_metadata());
    assert_eq!(v.content_salt, Some(*sealer.salt()));
    let info = mem.head("f").await.expect("head");
    // A listing entry says nothing of the content binding: the record does, at lookup.
    assert_eq!(
        sealed.version_of(&info),
        Some(ObjectVersion {
            content_salt: None,
            ..v
        })
    );
}
