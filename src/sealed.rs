//! Sealed objects: the object store seen through the vault's keys.
//!
//! [`SealedStore`] owns the store and the unlocked [`VaultKeys`] and is the one place that
//! turns stored objects into plaintext and back: it fetches a header, chooses the wrap of the
//! data key (the header's own, or a newer one from the object's `s3cryptfs-wrap` metadata),
//! opens; it fetches exactly the ciphertext of the blocks a read needs and authenticates it;
//! it seals and PUTs whole objects; and it copies an object with new metadata, keeping the
//! object's own crypto metadata. The file system, `verify` and `key rotate --rewrap` go through
//! it, so none of them computes a layout or handles a wrap; a multipart writer gets an
//! [`ObjectSealer`] from here and seals its parts with it.
//!
//! Two decisions a reader must know:
//!
//! - Every read of a known version names it (`If-Match` on its ETag), so blocks of two
//!   versions are never mixed; a version that is no longer at its key is
//!   [`SealedError::Changed`], never a read of whatever is there now.
//! - Openers are cached per version (key, ETag): a version's header is fetched and checked
//!   once, and a read that starts at block 0 of a version not open yet fetches header and
//!   blocks in one GET. Clones of a `SealedStore` share the cache.
//!
//! This module may use `crypto` and `store`; neither knows it, and `fs` and `tools` build on it.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::crypto::format::metadata::{crypto_metadata, metadata_wraps};
use crate::crypto::format::record::{
    ATTR_RECORD_KEY, AttrRecord, open_record, record_generation, seal_record,
};
use crate::crypto::format::{
    HEADER_LEN, block_count, ciphertext_len, ciphertext_range_for_blocks, open_all_with_wraps,
    plaintext_len, seal_all_with, short_object_error,
};
use crate::crypto::{CryptoError, CryptoResult, ObjectOpener, ObjectSealer, VaultKeys};
use crate::store::{
    CopyOptions, DynStore, GetOutput, Metadata, MetadataDirective, ObjectInfo, PutOptions,
    PutOutput, StoreError,
};

/// Versions whose opener is kept (an opener is a few hundred bytes of key schedule).
pub const OPENER_CACHE_ENTRIES: u64 = 4096;
/// Runs up to this many bytes are decrypted on the task that fetched them (a random read's
/// block or two: no hand-off latency); larger ones on the blocking pool, so the chunks of a
/// read-ahead decrypt on every core.
const INLINE_DECRYPT_BYTES: usize = 256 * 1024;

/// One version of one sealed object, as a listing, a HEAD or an upload saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectVersion {
    pub key: String,
    pub etag: String,
    pub plaintext_len: u64,
    /// The object's own crypto metadata (`s3cryptfs-*`: the header's key copy, a data key
    /// rewrapped by `key rotate --rewrap`), carried into every metadata-replacing copy so the
    /// object stays readable after an old key generation is retired and rewraps need no GET.
    pub carried: Metadata,
    /// The header salt this version's attribute record binds (its content binding), when
    /// known: every opener of the version must have this salt, so a body swapped in from
    /// another object (or an older record paired with newer content) is refused at its
    /// header. `None` for objects read without a record (vaults made before records).
    pub content_salt: Option<[u8; 32]>,
}

/// What reading or writing a sealed object can fail with.
#[derive(Debug, thiserror::Error)]
pub enum SealedError {
    /// The object is no longer the version named (a condition on its ETag failed, or a version
    /// being read vanished): replaced or deleted by someone else meanwhile.
    #[error("object {key} was replaced or deleted by another client meanwhile")]
    Changed { key: String },
    /// The object does not open or authenticate under the vault's keys.
    #[error("object {key}: {source}")]
    Crypto {
        key: String,
        #[source]
        source: CryptoError,
    },
    #[error(transparent)]
    Store(StoreError),
    /// A bug or a panicked task: reported rather than answered with wrong data.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type SealedResult<T> = Result<T, SealedError>;

fn crypto_err(key: &str, source: CryptoError) -> SealedError {
    SealedError::Crypto {
        key: key.to_string(),
        source,
    }
}

/// A failed request for a version named by its ETag: 412 means it was replaced, and a 404 of
/// a version being read means it was deleted; both are `Changed`.
fn version_gone(e: StoreError) -> SealedError {
    match e {
        StoreError::PreconditionFailed { key } | StoreError::NotFound { key } => {
            SealedError::Changed { key }
        }
        other => SealedError::Store(other),
    }
}

/// A failed write or copy conditioned on an ETag: only 412 is `Changed` (a missing source stays
/// `NotFound`, which callers report as such).
fn precondition(e: StoreError) -> SealedError {
    match e {
        StoreError::PreconditionFailed { key } => SealedError::Changed { key },
        other => SealedError::Store(other),
    }
}

/// An object's first bytes as one GET returned them, with the object's info; its metadata is
/// always present (asked with HEAD when a store's GET left it out).
#[derive(Clone, Debug)]
pub struct FetchedHeader {
    /// Up to [`HEADER_LEN`] bytes (fewer only when the object is shorter).
    pub header: Bytes,
    pub info: ObjectInfo,
}

impl FetchedHeader {
    /// Choose the wrap and open: the well-formed metadata wraps are the candidates tried first,
    /// then the header's own wrap (see [`ObjectOpener::open_with_wraps`]).
    pub fn open(&self, keys: &VaultKeys) -> CryptoResult<ObjectOpener> {
        let size = self.info.size;
        if size < HEADER_LEN as u64 {
            return Err(short_object_error(&self.header, size));
        }
        let wraps = metadata_wraps(self.info.metadata.as_ref());
        ObjectOpener::open_with_wraps(keys, &self.header, size, &wraps)
    }
}

/// An object opened by [`SealedStore::open`]: the version it is and how to read it.
#[derive(Clone, Debug)]
pub struct OpenedObject {
    pub version: ObjectVersion,
    pub opener: Arc<ObjectOpener>,
    /// What the GET said about the object (stored size, metadata, ...).
    pub info: ObjectInfo,
}

/// The store seen through the vault's keys; cheap to clone (clones share the opener cache).
#[derive(Clone)]
pub struct SealedStore {
    store: DynStore,
    keys: Arc<VaultKeys>,
    openers: moka::future::Cache<(String, String), Arc<ObjectOpener>>,
}

impl fmt::Debug for SealedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedStore")
            .field("store", &self.store)
            .field("block_size", &self.keys.block_size())
            .finish_non_exhaustive()
    }
}

impl SealedStore {
    pub fn new(store: DynStore, keys: Arc<VaultKeys>) -> Self {
        SealedStore {
            store,
            keys,
            openers: moka::future::Cache::builder()
                .max_capacity(OPENER_CACHE_ENTRIES)
                .build(),
        }
    }

    pub fn store(&self) -> &DynStore {
        &self.store
    }

    pub fn keys(&self) -> &Arc<VaultKeys> {
        &self.keys
    }

    pub fn block_size(&self) -> u32 {
        self.keys.block_size()
    }

    /// The version a HEAD, GET or listing entry describes; `None` when its stored size is not
    /// the size of any sealed object (truncated or extended, or not an s3cryptfs object).
    pub fn version_of(&self, info: &ObjectInfo) -> Option<ObjectVersion> {
        Some(ObjectVersion {
            key: info.key.clone(),
            etag: info.etag.clone(),
            plaintext_len: plaintext_len(info.size, self.block_size())?,
            carried: info
                .metadata
                .as_ref()
                .map(crypto_metadata)
                .unwrap_or_default(),
            content_salt: None,
        })
    }

    /// Stored size of a version: what a copy of it moves.
    pub fn stored_len(&self, v: &ObjectVersion) -> u64 {
        ciphertext_len(v.plaintext_len, self.block_size())
    }

    /// GET the header of `key` (ranged: never a data block), at ETag `if_match` when given.
    /// A 404, or a 412 on `if_match`, is [`SealedError::Changed`].
    pub async fn fetch_header(
        &self,
        key: &str,
        if_match: Option<&str>,
    ) -> SealedResult<FetchedHeader> {
        let got = self
            .store
            .get(key, Some(0..HEADER_LEN as u64), if_match)
            .await
            .map_err(version_gone)?;
        self.with_metadata(got).await
    }

    /// The GET's answer as a [`FetchedHeader`] (its first [`HEADER_LEN`] bytes), asking HEAD
    /// for the metadata if the GET did not carry it.
    async fn with_metadata(&self, got: GetOutput) -> SealedResult<FetchedHeader> {
        let header = got.data.slice(..got.data.len().min(HEADER_LEN));
        let mut info = got.info;
        if info.metadata.is_none() {
            let head = self.store.head(&info.key).await.map_err(version_gone)?;
            if head.etag != info.etag {
                return Err(SealedError::Changed { key: info.key });
            }
            info.metadata = Some(head.metadata.unwrap_or_default());
        }
        Ok(FetchedHeader { header, info })
    }

    /// Open `fetched` under the vault's keys and keep the opener for its version.
    async fn remember(&self, fetched: &FetchedHeader) -> SealedResult<Arc<ObjectOpener>> {
        let info = &fetched.info;
        let opener = Arc::new(
            fetched
                .open(&self.keys)
                .map_err(|e| crypto_err(&info.key, e))?,
        );
        self.openers
            .insert((info.key.clone(), info.etag.clone()), opener.clone())
            .await;
        Ok(opener)
    }

    /// GET the header of `key` (at ETag `if_match` when given), choose the wrap, open: the
    /// object as it is now, checked against its stored size. The opener is kept for the
    /// version read.
    pub async fn open(&self, key: &str, if_match: Option<&str>) -> SealedResult<OpenedObject> {
        let fetched = self.fetch_header(key, if_match).await?;
        let opener = self.remember(&fetched).await?;
        let info = fetched.info;
        Ok(OpenedObject {
            version: ObjectVersion {
                key: info.key.clone(),
                etag: info.etag.clone(),
                plaintext_len: opener.plaintext_len(),
                carried: info
                    .metadata
                    .as_ref()
                    .map(crypto_metadata)
                    .unwrap_or_default(),
                content_salt: Some(*opener.salt()),
            },
            opener,
            info,
        })
    }

    /// The opener of version `v`, from the cache or by fetching its header; refused when its
    /// header is not the content `v`'s attribute record binds.
    pub async fn opener(&self, v: &ObjectVersion) -> SealedResult<Arc<ObjectOpener>> {
        if let Some(o) = self.openers.get(&(v.key.clone(), v.etag.clone())).await {
            check_binding(v, o.salt())?;
            return Ok(o);
        }
        let fetched = self.fetch_header(&v.key, Some(&v.etag)).await?;
        let o = self.remember(&fetched).await?;
        check_binding(v, o.salt())?;
        Ok(o)
    }

    /// Whether every object must carry an attribute record (the vault config's marker).
    pub fn requires_records(&self) -> bool {
        self.keys.requires_attribute_records()
    }

    /// The attribute record in the metadata of the object at `key`, opened with `key` in its
    /// AAD. `Ok(None)` only when there is none and the vault does not require one (its
    /// attributes are then the unauthenticated plaintext metadata of older writers). Missing
    /// where required, undecryptable, or sealed for another key: `Crypto`.
    pub fn open_record(
        &self,
        key: &str,
        metadata: Option<&Metadata>,
    ) -> SealedResult<Option<AttrRecord>> {
        match metadata.and_then(|m| m.get(ATTR_RECORD_KEY)) {
            Some(value) => open_record(&self.keys, key, value)
                .map(Some)
                .map_err(|e| crypto_err(key, e)),
            None if self.requires_records() => Err(crypto_err(
                key,
                CryptoError::Corrupt(
                    "no attribute record (the vault requires one on every object): metadata \
                     replaced or object not written by s3cryptfs"
                        .into(),
                ),
            )),
            None => Ok(None),
        }
    }

    /// The record of the object `key` with `metadata`, sealed again under the current key
    /// generation when it names an older one (`key rotate --rewrap`): `Ok(None)` when there is
    /// none or it is current already; a record that does not open is an error (never resealed).
    pub fn resealed_record(
        &self,
        key: &str,
        metadata: &Metadata,
    ) -> SealedResult<Option<(String, String)>> {
        let Some(value) = metadata.get(ATTR_RECORD_KEY) else {
            return Ok(None);
        };
        if record_generation(value) == Some(self.keys.current_generation()) {
            return Ok(None);
        }
        let rec = open_record(&self.keys, key, value).map_err(|e| crypto_err(key, e))?;
        self.record_entry(key, &rec).map(Some)
    }

    /// The metadata entry holding `rec` sealed for the object at `key`.
    pub fn record_entry(&self, key: &str, rec: &AttrRecord) -> SealedResult<(String, String)> {
        let value = seal_record(&self.keys, key, rec).map_err(|e| crypto_err(key, e))?;
        Ok((ATTR_RECORD_KEY.to_string(), value))
    }

    /// Forget the opener of a version (after it was replaced or deleted).
    pub async fn forget(&self, key: &str, etag: &str) {
        self.openers
            .invalidate(&(key.to_string(), etag.to_string()))
            .await;
    }

    /// The plaintext of blocks `blocks` of `v` (the range is clipped to the object's blocks
    /// and must start inside it), back to back: one ranged GET of exactly their ciphertext
    /// with `If-Match` on `v`'s ETag, authenticated and decrypted in place. The header rides
    /// along when the range starts at block 0 and `v` is not open yet.
    ///
    /// `Changed` when `v` is no longer stored, or its header says another length than
    /// `v.plaintext_len`; `Crypto` when a block does not authenticate (the message names it).
    pub async fn read_blocks(&self, v: &ObjectVersion, blocks: Range<u64>) -> SealedResult<Bytes> {
        let n_blocks = block_count(v.plaintext_len, self.block_size());
        if blocks.start >= n_blocks || blocks.is_empty() {
            return Err(SealedError::Internal(format!(
                "{}: blocks {}..{} asked of an object of {n_blocks} block(s)",
                v.key, blocks.start, blocks.end
            )));
        }
        let (first, last) = (blocks.start, blocks.end.min(n_blocks) - 1);
        let span = ciphertext_range_for_blocks(blocks, v.plaintext_len, self.block_size());
        let cached = self.openers.get(&(v.key.clone(), v.etag.clone())).await;
        let (opener, body) = match cached {
            None if first == 0 => {
                let got = self
                    .store
                    .get(&v.key, Some(0..span.end), Some(&v.etag))
                    .await
                    .map_err(version_gone)?;
                if got.data.len() < HEADER_LEN {
                    return Err(crypto_err(
                        &v.key,
                        CryptoError::Corrupt("object shorter than its header".into()),
                    ));
                }
                let body = got.data.slice(HEADER_LEN..);
                let opener = self.remember(&self.with_metadata(got).await?).await?;
                (opener, body)
            }
            cached => {
                let opener = match cached {
                    Some(o) => o,
                    None => self.opener(v).await?,
                };
                let got = self
                    .store
                    .get(&v.key, Some(span.clone()), Some(&v.etag))
                    .await
                    .map_err(version_gone)?;
                (opener, got.data)
            }
        };
        check_binding(v, opener.salt())?;
        if opener.plaintext_len() != v.plaintext_len {
            return Err(SealedError::Changed { key: v.key.clone() });
        }
        let expected = (span.end - span.start) as usize;
        if body.len() != expected {
            return Err(crypto_err(
                &v.key,
                CryptoError::Corrupt(format!(
                    "short read: expected {expected} bytes of blocks {first}..={last}, got {}",
                    body.len()
                )),
            ));
        }
        // The body is ours alone when it came off the network; a memory store shares it.
        let buf = body
            .try_into_mut()
            .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
        if buf.len() <= INLINE_DECRYPT_BYTES {
            open_run(&opener, first, buf)
        } else {
            tokio::task::spawn_blocking(move || open_run(&opener, first, buf))
                .await
                .map_err(|e| SealedError::Internal(format!("decrypting {}: {e}", v.key)))?
        }
        .map_err(|e| crypto_err(&v.key, e))
    }

    /// The whole plaintext of `v` with one GET (`If-Match` on its ETag): small objects such as
    /// symlink targets. A 412 is `Changed`; a 404 stays `Store(NotFound)` (the object is gone,
    /// not a version under an open reader).
    pub async fn read_all(&self, v: &ObjectVersion) -> SealedResult<Vec<u8>> {
        // Ranged to the size this version has, so no answer can make it hold more.
        let got = self
            .store
            .get(&v.key, Some(0..self.stored_len(v)), Some(&v.etag))
            .await
            .map_err(precondition)?;
        let wraps = metadata_wraps(got.info.metadata.as_ref());
        let plain = open_all_with_wraps(&self.keys, &got.data, &wraps)
            .map_err(|e| crypto_err(&v.key, e))?;
        // The header opened, so it is whole: its salt is bytes 12..44.
        let mut salt = [0u8; 32];
        salt.copy_from_slice(&got.data[SALT_RANGE]);
        check_binding(v, &salt)?;
        Ok(plain)
    }

    /// A sealer for a new object version (fresh data key, current generation): what a
    /// multipart writer seals its parts with. The object's crypto metadata is
    /// [`ObjectSealer::crypto_metadata`]; [`SealedStore::put_sealed`] adds it itself.
    pub fn new_sealer(&self) -> CryptoResult<ObjectSealer> {
        ObjectSealer::new(&self.keys)
    }

    /// Seal `plaintext` whole under a fresh data key and PUT it with `opts` (its metadata
    /// plus the object's crypto metadata) and, when given, the attribute record `record` with
    /// its size and content binding set to this object's. A failed condition of `opts` is
    /// `Changed`.
    pub async fn put_all(
        &self,
        key: &str,
        plaintext: &[u8],
        mut opts: PutOptions,
        record: Option<AttrRecord>,
    ) -> SealedResult<ObjectVersion> {
        let sealer = self.new_sealer().map_err(|e| crypto_err(key, e))?;
        if let Some(rec) = record {
            let rec = AttrRecord {
                size: Some(plaintext.len() as u64),
                content_salt: *sealer.salt(),
                ..rec
            };
            let (k, v) = self.record_entry(key, &rec)?;
            opts.metadata.insert(k, v);
        }
        let body = seal_all_with(&sealer, plaintext).map_err(|e| crypto_err(key, e))?;
        self.put_sealed(
            key,
            &sealer,
            Bytes::from(body),
            plaintext.len() as u64,
            opts,
        )
        .await
    }

    /// PUT `body`, a whole object the caller sealed with `sealer` (header for `plaintext_len`
    /// bytes, then every block), with `opts` plus the sealer's crypto metadata. A failed
    /// condition of `opts` is `Changed`.
    pub async fn put_sealed(
        &self,
        key: &str,
        sealer: &ObjectSealer,
        body: Bytes,
        plaintext_len: u64,
        mut opts: PutOptions,
    ) -> SealedResult<ObjectVersion> {
        let carried = sealer.crypto_metadata();
        if body.len() as u64 != ciphertext_len(plaintext_len, sealer.block_size()) {
            return Err(SealedError::Internal(format!(
                "{key}: a sealed body of {} bytes for {plaintext_len} plaintext bytes",
                body.len()
            )));
        }
        opts.metadata
            .extend(carried.iter().map(|(k, v)| (k.clone(), v.clone())));
        // With If-Match, a 404 says the version it replaces was deleted: changed, as a 412.
        let refused = if opts.if_match.is_some() {
            version_gone
        } else {
            precondition
        };
        let out = self.store.put(key, body, opts).await.map_err(refused)?;
        Ok(ObjectVersion {
            key: key.to_string(),
            etag: out.etag,
            plaintext_len,
            carried,
            content_salt: Some(*sealer.salt()),
        })
    }

    /// CopyObject of version `v` to `dst` (onto itself for a metadata change), only while the
    /// source is still `v`. `metadata: None` keeps the stored metadata; `Some(m)` replaces it
    /// with `m` plus `v`'s crypto metadata, so the copy opens exactly as `v` did; `record`
    /// (size and content binding set to `v`'s) is sealed for `dst` into the same copy, so a
    /// rename or an attribute change costs no request more. A failed condition is `Changed`;
    /// a missing source stays `Store(NotFound)`.
    pub async fn copy(
        &self,
        v: &ObjectVersion,
        dst: &str,
        metadata: Option<Metadata>,
        record: Option<AttrRecord>,
    ) -> SealedResult<ObjectVersion> {
        let mut content_salt = v.content_salt;
        let directive = match (metadata, record) {
            (None, None) => MetadataDirective::Copy,
            (m, record) => {
                let mut m = m.unwrap_or_default();
                m.extend(v.carried.iter().map(|(k, v)| (k.clone(), v.clone())));
                if let Some(rec) = record {
                    let salt = match v.content_salt {
                        Some(s) => s,
                        None => *self.opener(v).await?.salt(),
                    };
                    content_salt = Some(salt);
                    let rec = AttrRecord {
                        size: Some(v.plaintext_len),
                        content_salt: salt,
                        ..rec
                    };
                    let (k, value) = self.record_entry(dst, &rec)?;
                    m.insert(k, value);
                }
                MetadataDirective::Replace(m)
            }
        };
        let out = self
            .copy_object(&v.key, &v.etag, self.stored_len(v), dst, directive)
            .await?;
        Ok(ObjectVersion {
            key: dst.to_string(),
            etag: out.etag,
            plaintext_len: v.plaintext_len,
            carried: v.carried.clone(),
            content_salt,
        })
    }

    /// Add (or replace) crypto metadata entries of the object `info` describes, keeping the
    /// rest of its metadata: a CopyObject onto itself, only while it still has `info.etag`
    /// (`key rotate --rewrap` stores a wrap this way). A failed condition is `Changed`.
    pub async fn add_crypto_metadata(
        &self,
        info: &ObjectInfo,
        entries: Metadata,
    ) -> SealedResult<PutOutput> {
        let mut metadata = info.metadata.clone().unwrap_or_default();
        metadata.extend(entries);
        self.copy_object(
            &info.key,
            &info.etag,
            info.size,
            &info.key,
            MetadataDirective::Replace(metadata),
        )
        .await
    }

    async fn copy_object(
        &self,
        src: &str,
        etag: &str,
        stored_len: u64,
        dst: &str,
        metadata: MetadataDirective,
    ) -> SealedResult<PutOutput> {
        let opts = CopyOptions {
            metadata,
            source_if_match: Some(etag.to_string()),
            source_size: Some(stored_len),
        };
        self.store.copy(src, dst, opts).await.map_err(precondition)
    }
}

/// Header bytes of the salt.
const SALT_RANGE: Range<usize> = 12..44;

/// Refuse an opener whose header salt is not the content `v`'s attribute record binds.
fn check_binding(v: &ObjectVersion, salt: &[u8; 32]) -> SealedResult<()> {
    match v.content_salt {
        Some(expected) if expected != *salt => Err(crypto_err(
            &v.key,
            CryptoError::Corrupt(
                "the object's content is not the one its attribute record names (the body \
                 of another object, or an older record with newer content)"
                    .into(),
            ),
        )),
        _ => Ok(()),
    }
}

/// Decrypts a fetched run of blocks starting at `first` in place; the plaintext, frozen.
fn open_run(opener: &ObjectOpener, first: u64, mut buf: BytesMut) -> CryptoResult<Bytes> {
    let len = opener.open_run_in_place(first, &mut buf)?;
    buf.truncate(len);
    Ok(buf.freeze())
}

#[cfg(test)]
#[path = "sealed_tests.rs"]
mod tests;
