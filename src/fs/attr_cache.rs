//! The attribute cache on local disk: what `settled.rs` keeps in memory, kept across mounts.
//!
//! `settled.rs` lets a fresh listing that shows an object unchanged since a HEAD answer a
//! `stat` without a HEAD; after a remount its memory is empty, so a no-change rsync HEADs every
//! file again. This cache keeps, per object, what that HEAD returned: the validators a listing
//! shows (ETag, stored size, Last-Modified) and the object's `s3cryptfs-*` metadata exactly as
//! the store returned it (the sealed attribute record, the header key copy and wraps). It is
//! used under the same rule as `settled.rs` (docs/SEMANTICS.md), and what it gives back goes
//! through `Fs::entry_from_head` again: the record is opened with the object's key in the AAD,
//! so an entry that does not authenticate is dropped and the file HEADed.
//!
//! On disk: one file per vault, `DIR/<vault id in hex>/attrs` (directory 0700, file 0600),
//! holding neither names nor attributes in plaintext: entries are named by an HMAC of the
//! object key under a key derived from the vault's master key ([`VaultKeys::local_cache_key`]),
//! and the record is the sealed one. The file ends with an HMAC of all of it under the same
//! key, so a torn, truncated or edited file is ignored whole (and rewritten at the next
//! flush). New entries are written in the background [`FLUSH_DELAY`] after the first one
//! (one write for a whole `ls -l` or rsync), at unmount, and when the cache is dropped: a new
//! file then renamed over the old one. At most [`MAX_ENTRIES`] entries and [`MAX_BYTES`] bytes
//! (on disk and in memory); beyond, the oldest entries go.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::crypto::VaultKeys;
use crate::crypto::format::metadata::CRYPTO_METADATA_PREFIX;
use crate::crypto::format::record::ATTR_RECORD_KEY;
use crate::crypto::kdf::{self, SecretKey};
use crate::store::{Metadata, ObjectInfo};

use super::settled::{settled_second, shows_version};

/// Entries kept at most (one per file; about 500 bytes each).
pub const MAX_ENTRIES: usize = 20_000;
/// Bytes of the cache file at most, and of the entries held in memory.
pub const MAX_BYTES: usize = 8 << 20;
/// New entries wait this long to be written, so that one write takes a whole walk's.
pub const FLUSH_DELAY: Duration = Duration::from_secs(2);

/// The file's first bytes (the format's version is in them).
const MAGIC: &[u8] = b"s3cryptfs attribute cache 1\n";
const MAC_LEN: usize = 32;
/// Domain separation of the two uses of the cache key.
const ID_DOMAIN: &[u8] = b"entry id\0";
const FILE_DOMAIN: &[u8] = b"file mac\0";
/// What one entry costs besides its ETag and metadata (id, lengths, size, time).
const ENTRY_OVERHEAD: usize = 32 + 1 + 8 + 8 + 4 + 1;

/// One object version as a HEAD returned it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Rec {
    /// Order of recording: the smallest goes first when the cache is full.
    seq: u64,
    etag: String,
    size: u64,
    modified_secs: u64,
    modified_nanos: u32,
    /// The `s3cryptfs-*` entries of the object's metadata, as the file holds them
    /// ([`encode_metadata`]): a map of strings would take three times the memory.
    metadata: Box<[u8]>,
}

impl Rec {
    fn encoded_len(&self) -> usize {
        ENTRY_OVERHEAD - 1 + self.etag.len() + self.metadata.len()
    }
}

/// Metadata as the file holds it: a count, then each key (a length byte) and value (two
/// length bytes). The caller checked that the lengths fit.
fn encode_metadata(metadata: &Metadata) -> Box<[u8]> {
    let mut out = vec![metadata.len() as u8];
    for (k, v) in metadata {
        out.push(k.len() as u8);
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(&(v.len() as u16).to_be_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out.into_boxed_slice()
}

/// Read encoded metadata from `r`; `None` when it is not well formed.
fn decode_metadata(r: &mut Reader<'_>) -> Option<Metadata> {
    let mut metadata = Metadata::new();
    for _ in 0..r.u8()? {
        let k_len = usize::from(r.u8()?);
        let k = String::from_utf8(r.take(k_len)?.to_vec()).ok()?;
        let v_len = usize::from(u16::from_be_bytes(r.take(2)?.try_into().ok()?));
        let v = String::from_utf8(r.take(v_len)?.to_vec()).ok()?;
        metadata.insert(k, v);
    }
    Some(metadata)
}

#[derive(Default)]
struct State {
    entries: HashMap<[u8; 32], Rec>,
    /// `seq` -> id, oldest first.
    order: BTreeMap<u64, [u8; 32]>,
    next_seq: u64,
    bytes: usize,
    dirty: bool,
}

impl State {
    fn remove(&mut self, id: &[u8; 32]) -> bool {
        match self.entries.remove(id) {
            Some(rec) => {
                self.order.remove(&rec.seq);
                self.bytes -= rec.encoded_len();
                self.dirty = true;
                true
            }
            None => false,
        }
    }

    fn insert(&mut self, id: [u8; 32], mut rec: Rec) {
        self.remove(&id);
        rec.seq = self.next_seq;
        self.next_seq += 1;
        self.bytes += rec.encoded_len();
        self.order.insert(rec.seq, id);
        self.entries.insert(id, rec);
        self.dirty = true;
        while self.entries.len() > MAX_ENTRIES || self.bytes + MAGIC.len() + 4 + MAC_LEN > MAX_BYTES
        {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some(rec) = self.entries.remove(&oldest) {
                self.bytes -= rec.encoded_len();
            }
        }
    }
}

/// The attribute cache of one vault on this machine.
pub(crate) struct AttrCache {
    file: PathBuf,
    key: SecretKey,
    settled_after: Duration,
    state: Mutex<State>,
    /// One writer at a time, so that the newest snapshot is the one left on disk.
    writing: Mutex<()>,
    flush_scheduled: AtomicBool,
}

impl AttrCache {
    /// The cache of `keys`' vault below `dir`, with what its file holds (nothing when it is
    /// missing, torn or not authentic). `Err` when the directory cannot be made private.
    pub fn open(dir: &Path, keys: &VaultKeys, settled_after: Duration) -> std::io::Result<Self> {
        let vault_dir = dir.join(hex::encode(keys.vault_id()));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&vault_dir)?;
        std::fs::set_permissions(&vault_dir, std::fs::Permissions::from_mode(0o700))?;
        let cache = AttrCache {
            file: vault_dir.join("attrs"),
            key: keys.local_cache_key(),
            settled_after,
            state: Mutex::new(State::default()),
            writing: Mutex::new(()),
            flush_scheduled: AtomicBool::new(false),
        };
        cache.load();
        Ok(cache)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn id(&self, key: &str) -> [u8; 32] {
        kdf::hmac_sha256_parts(&self.key, &[ID_DOMAIN, key.as_bytes()])
    }

    fn file_mac(&self, body: &[u8]) -> [u8; 32] {
        kdf::hmac_sha256_parts(&self.key, &[FILE_DOMAIN, body])
    }

    /// A HEAD at `now` returned `info` (a file object whose record authenticated): keep it if
    /// the object had settled, else drop what was kept for its key.
    pub fn headed(self: &Arc<Self>, info: &ObjectInfo, now: SystemTime) {
        let id = self.id(&info.key);
        let metadata: Metadata = (info.metadata.iter().flatten())
            .filter(|(k, _)| k.starts_with(CRYPTO_METADATA_PREFIX))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let fits = info.etag.len() <= usize::from(u8::MAX)
            && metadata.len() <= usize::from(u8::MAX)
            && (metadata.iter())
                .all(|(k, v)| k.len() <= usize::from(u8::MAX) && v.len() <= usize::from(u16::MAX))
            && metadata.contains_key(ATTR_RECORD_KEY);
        let settled = settled_second(info, self.settled_after, now).filter(|_| fits);
        let mut st = self.lock();
        let Some(modified_secs) = settled else {
            st.remove(&id);
            return;
        };
        let rec = Rec {
            seq: 0,
            etag: info.etag.clone(),
            size: info.size,
            modified_secs,
            modified_nanos: (info.last_modified.duration_since(UNIX_EPOCH))
                .map_or(0, |d| d.subsec_nanos()),
            metadata: encode_metadata(&metadata),
        };
        if st.entries.get(&id).is_some_and(|old| {
            Rec {
                seq: 0,
                ..old.clone()
            } == rec
        }) {
            return;
        }
        st.insert(id, rec);
        drop(st);
        self.schedule_flush();
    }

    /// What a HEAD of `listed.key` returned, if `listed` (a fresh listing's entry) shows the
    /// same object version; a different version drops what was kept.
    pub fn listed(&self, listed: &ObjectInfo) -> Option<ObjectInfo> {
        let id = self.id(&listed.key);
        let mut st = self.lock();
        let rec = st.entries.get(&id)?;
        let metadata = decode_metadata(&mut Reader(&rec.metadata));
        if !shows_version(listed, &rec.etag, rec.size, rec.modified_secs) || metadata.is_none() {
            st.remove(&id);
            return None;
        }
        Some(ObjectInfo {
            key: listed.key.clone(),
            size: rec.size,
            etag: rec.etag.clone(),
            last_modified: UNIX_EPOCH + Duration::new(rec.modified_secs, rec.modified_nanos),
            metadata,
            sse: None,
        })
    }

    /// Entries kept and their bytes (as the file holds them).
    pub fn usage(&self) -> (u64, u64) {
        let st = self.lock();
        (st.entries.len() as u64, st.bytes as u64)
    }

    /// Drop the entry of `key` (it did not authenticate).
    pub fn forget(&self, key: &str) {
        let id = self.id(key);
        self.lock().remove(&id);
    }

    /// Write the entries [`FLUSH_DELAY`] from now, off the caller's path.
    fn schedule_flush(self: &Arc<Self>) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return; // written at unmount or drop
        };
        if self.flush_scheduled.swap(true, Ordering::SeqCst) {
            return;
        }
        let me = Arc::downgrade(self);
        rt.spawn(async move {
            tokio::time::sleep(FLUSH_DELAY).await;
            let Some(me) = me.upgrade() else { return };
            me.flush_scheduled.store(false, Ordering::SeqCst);
            let _ = tokio::task::spawn_blocking(move || me.flush()).await;
        });
    }

    /// Write the entries if any changed since the last write: a new file, made durable, then
    /// renamed over the old one (a crash leaves the old file or the new one).
    pub fn flush(&self) {
        let _writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let body = {
            let mut st = self.lock();
            if !st.dirty {
                return;
            }
            st.dirty = false;
            self.encode(&st)
        };
        if let Err(e) = self.write(&body) {
            log::warn!(
                "writing the attribute cache {}: {e} (it is written again later)",
                self.file.display()
            );
            self.lock().dirty = true;
        }
    }

    fn write(&self, body: &[u8]) -> std::io::Result<()> {
        let tmp = self
            .file
            .with_extension(format!("{}.tmp", std::process::id()));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        f.write_all(body)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &self.file)
    }

    fn encode(&self, st: &State) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAGIC.len() + st.bytes + 4 + MAC_LEN);
        out.extend_from_slice(MAGIC);
        for id in st.order.values() {
            let Some(rec) = st.entries.get(id) else {
                continue;
            };
            out.extend_from_slice(id);
            out.push(rec.etag.len() as u8);
            out.extend_from_slice(rec.etag.as_bytes());
            out.extend_from_slice(&rec.size.to_be_bytes());
            out.extend_from_slice(&rec.modified_secs.to_be_bytes());
            out.extend_from_slice(&rec.modified_nanos.to_be_bytes());
            out.extend_from_slice(&rec.metadata);
        }
        out.extend_from_slice(&(st.entries.len() as u32).to_be_bytes());
        let mac = self.file_mac(&out);
        out.extend_from_slice(&mac);
        out
    }

    /// Read the file into memory; a file that is not whole and authentic is ignored (logged).
    fn load(&self) {
        let data = match read_bounded(&self.file) {
            Ok(Some(data)) => data,
            Ok(None) => return,
            Err(e) => {
                log::info!(
                    "ignoring the attribute cache {}: {e}; it is rebuilt",
                    self.file.display()
                );
                return;
            }
        };
        match self.decode(&data) {
            Some(st) => *self.lock() = st,
            None => log::info!(
                "ignoring the attribute cache {}: torn, damaged or not this vault's; it is \
                 rebuilt",
                self.file.display()
            ),
        }
    }

    fn decode(&self, data: &[u8]) -> Option<State> {
        let (body, mac) = data.split_at_checked(data.len().checked_sub(MAC_LEN)?)?;
        if !kdf::ct_eq(&self.file_mac(body), mac) {
            return None;
        }
        let (entries, count) = body.split_at_checked(body.len().checked_sub(4)?)?;
        let count = u32::from_be_bytes(count.try_into().ok()?) as usize;
        let mut r = Reader(entries.strip_prefix(MAGIC)?);
        let mut st = State::default();
        while !r.0.is_empty() {
            let id: [u8; 32] = r.take(32)?.try_into().ok()?;
            let etag_len = usize::from(r.u8()?);
            let etag = String::from_utf8(r.take(etag_len)?.to_vec()).ok()?;
            let size = u64::from_be_bytes(r.take(8)?.try_into().ok()?);
            let modified_secs = u64::from_be_bytes(r.take(8)?.try_into().ok()?);
            let modified_nanos = u32::from_be_bytes(r.take(4)?.try_into().ok()?);
            let before = r.0;
            decode_metadata(&mut r)?;
            let metadata = before[..before.len() - r.0.len()].into();
            if modified_nanos >= 1_000_000_000 {
                return None;
            }
            let rec = Rec {
                seq: 0,
                etag,
                size,
                modified_secs,
                modified_nanos,
                metadata,
            };
            st.insert(id, rec);
        }
        if st.entries.len() != count {
            return None;
        }
        st.dirty = false;
        Some(st)
    }
}

impl Drop for AttrCache {
    fn drop(&mut self) {
        self.flush();
    }
}

/// The file at `path` if it exists, refused when larger than the cache may be.
fn read_bounded(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    let f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    if len > MAX_BYTES as u64 {
        return Err(std::io::Error::other(format!(
            "{len} bytes, more than the {MAX_BYTES} it may hold"
        )));
    }
    let mut data = Vec::with_capacity(len as usize);
    std::io::Read::read_to_end(&mut std::io::Read::take(f, MAX_BYTES as u64 + 1), &mut data)?;
    Ok(Some(data))
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
}

#[cfg(test)]
#[path = "attr_cache_tests.rs"]
mod tests;
