//! Helpers the conformance tests share: writes and reads that panic with the key on failure, whole
//! listings, multipart uploads.

use bytes::Bytes;
use s3cryptfs::store::{
    CompletedPart, DynStore, ListPage, ListRequest, Metadata, PutOptions, StoreError,
};

use crate::common::store::Quirks;

// ---- helpers ----

pub(crate) async fn put(store: &DynStore, key: &str, body: &[u8]) -> String {
    store
        .put(key, Bytes::copy_from_slice(body), PutOptions::default())
        .await
        .unwrap_or_else(|e| panic!("put {key}: {e}"))
        .etag
}

pub(crate) async fn put_with(
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

pub(crate) async fn get(store: &DynStore, key: &str) -> Vec<u8> {
    store
        .get(key, None, None)
        .await
        .unwrap_or_else(|e| panic!("get {key}: {e}"))
        .data
        .to_vec()
}

pub(crate) fn metadata(pairs: &[(&str, &str)]) -> Metadata {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

pub(crate) fn quoted_md5_hex(etag: &str) -> bool {
    let inner = etag.strip_prefix('"').and_then(|e| e.strip_suffix('"'));
    inner.is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Every page of a listing, following continuation tokens.
pub(crate) async fn list_pages(
    store: &DynStore,
    prefix: &str,
    delimiter: Option<&str>,
    max_keys: usize,
) -> Vec<ListPage> {
    list_pages_on(&Quirks::S3, store, prefix, delimiter, max_keys).await
}

/// [`list_pages`] on a backend with `quirks`: where max-keys with a delimiter counts objects
/// only, a page may hold more common prefixes than that.
pub(crate) async fn list_pages_on(
    quirks: &Quirks,
    store: &DynStore,
    prefix: &str,
    delimiter: Option<&str>,
    max_keys: usize,
) -> Vec<ListPage> {
    let ignored = delimiter.is_some() && !quirks.max_keys_with_delimiter;
    let mut req = ListRequest {
        prefix: prefix.into(),
        delimiter: delimiter.map(Into::into),
        continuation_token: None,
        max_keys,
    };
    let mut pages = Vec::new();
    loop {
        let page = store.list(&req).await.expect("list");
        let prefixes = if ignored {
            0
        } else {
            page.common_prefixes.len()
        };
        let entries = page.objects.len() + prefixes;
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
pub(crate) async fn list_all(
    store: &DynStore,
    prefix: &str,
    delimiter: Option<&str>,
    max_keys: usize,
) -> (Vec<String>, Vec<String>) {
    list_all_on(&Quirks::S3, store, prefix, delimiter, max_keys).await
}

/// [`list_all`] on a backend with `quirks` (see [`list_pages_on`]). Where listings are not in
/// byte order, or repeat common prefixes across pages, what the listing holds is compared:
/// sorted, each common prefix once, and never an object twice.
pub(crate) async fn list_all_on(
    quirks: &Quirks,
    store: &DynStore,
    prefix: &str,
    delimiter: Option<&str>,
    max_keys: usize,
) -> (Vec<String>, Vec<String>) {
    let mut objects = Vec::new();
    let mut prefixes = Vec::new();
    for page in list_pages_on(quirks, store, prefix, delimiter, max_keys).await {
        objects.extend(page.objects.into_iter().map(|o| o.key));
        prefixes.extend(page.common_prefixes);
    }
    if !quirks.sorted_listings || !quirks.max_keys_with_delimiter {
        objects.sort();
        let listed = objects.len();
        objects.dedup();
        assert_eq!(objects.len(), listed, "an object listed twice");
        prefixes.sort();
        prefixes.dedup();
    }
    (objects, prefixes)
}

pub(crate) fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Upload `parts` as a multipart upload and complete it.
pub(crate) async fn multipart(
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

pub(crate) fn patterned(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}
