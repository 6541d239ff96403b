//! The attribute record (docs/FORMAT.md §2c): an object's file type, permission bits, owner,
//! times, size and the salt of its content's header, sealed under a key of the vault and bound
//! to the object's key, stored as one user-metadata entry ([`ATTR_RECORD_KEY`]).
//!
//! ```text
//! value  = base64( record )
//! record = 01 || BE32(g) || salt (16) || AES-256-GCM(K_rec, nonce = 12 zero bytes, aad, plaintext)
//! K_rec  = HKDF(ikm = G_g, salt = record salt, "s3cryptfs v1 attribute record" || vault_id)
//! aad    = "s3cryptfs v1 attr" || vault_id || BE32(len(object key)) || object key
//!          || record[0..21]  (version, generation and salt)
//! ```
//!
//! A fresh random salt per record gives every record a key of its own, so the constant nonce
//! never seals two plaintexts under one key. Pure: keys and bytes in, bytes out; the seam
//! (`sealed.rs`) decides when a record is written or required.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::super::aead::{Aead, DefaultAead, NONCE_LEN, TAG_LEN};
use super::super::error::{CryptoError, CryptoResult};
use super::super::kdf;
use super::super::keys::VaultKeys;

/// The user-metadata key (without `x-amz-meta-`) of the attribute record.
pub const ATTR_RECORD_KEY: &str = "s3cryptfs-attr";
/// Version byte of the sealed record (and of its plaintext encoding).
pub const RECORD_VERSION: u8 = 1;
/// Bytes of the per-record salt.
pub const RECORD_SALT_LEN: usize = 16;
/// Sealed prefix: version, generation, salt.
const PREFIX_LEN: usize = 1 + 4 + RECORD_SALT_LEN;
/// Plaintext bytes before the xattr area (see [`AttrRecord::encode`]).
const FIXED_PLAINTEXT_LEN: usize = 1 + 1 + 2 + 4 + 4 + 12 + 12 + 8 + 1 + 8 + 32 + 2;
/// Sealed bytes of a record with an empty xattr area.
pub const MIN_RECORD_LEN: usize = PREFIX_LEN + FIXED_PLAINTEXT_LEN + TAG_LEN;

/// S3's limit on user metadata: the UTF-8 bytes of every key and value, summed.
pub const USER_METADATA_LIMIT: usize = 2048;
/// What the other `s3cryptfs-*` entries may take of that limit at most: a metadata wrap
/// (`s3cryptfs-wrap`, 60 characters) and the header key copy (`s3cryptfs-key`, 112).
pub const OTHER_CRYPTO_METADATA_BUDGET: usize = 14 + 60 + 13 + 112;
/// Longest [`ATTR_RECORD_KEY`] value: what is left of [`USER_METADATA_LIMIT`] after its key
/// and the other entries. Sealing a record that would not fit is refused.
pub const MAX_RECORD_VALUE_LEN: usize =
    USER_METADATA_LIMIT - OTHER_CRYPTO_METADATA_BUDGET - ATTR_RECORD_KEY.len();

/// Largest xattr area a record holds: what fits in [`MAX_RECORD_VALUE_LEN`] once base64
/// encoded, after the sealed prefix, the fixed plaintext and the tag.
pub const MAX_XATTR_AREA_LEN: usize =
    MAX_RECORD_VALUE_LEN / 4 * 3 - PREFIX_LEN - TAG_LEN - FIXED_PLAINTEXT_LEN;

const INFO_RECORD_KEY: &[u8] = b"s3cryptfs v1 attribute record";
const AAD_DOMAIN: &[u8] = b"s3cryptfs v1 attr";
const SIZE_KNOWN: u8 = 0x01;
const MTIME_KNOWN: u8 = 0x02;

/// The type of the object a record describes (the values are the encoding).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileType {
    Regular = 1,
    Directory = 2,
    Symlink = 3,
    Fifo = 4,
    Socket = 5,
    CharDevice = 6,
    BlockDevice = 7,
}

impl FileType {
    fn from_byte(b: u8) -> Option<FileType> {
        Some(match b {
            1 => FileType::Regular,
            2 => FileType::Directory,
            3 => FileType::Symlink,
            4 => FileType::Fifo,
            5 => FileType::Socket,
            6 => FileType::CharDevice,
            7 => FileType::BlockDevice,
            _ => return None,
        })
    }
}

/// A point in time: seconds since the epoch (negative before 1970) and nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timestamp {
    pub secs: i64,
    pub nsec: u32,
}

/// The attributes of one object, as its writer sealed them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttrRecord {
    pub file_type: FileType,
    /// Permission bits only (0o7777).
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
    /// `None`: the object's Last-Modified time stands for it (a streamed upload whose writer
    /// set no mtime fixes its metadata before the last write).
    pub mtime: Option<Timestamp>,
    pub ctime: Timestamp,
    /// Device number of a character or block device (0 otherwise).
    pub rdev: u64,
    /// Plaintext size; `None` when the writer did not know it yet (a streamed multipart upload
    /// fixes its metadata before its last byte is written): the object's size then says it,
    /// and the header's commitment authenticates that size when the object is opened.
    pub size: Option<u64>,
    /// The salt of the object's header (its bytes 12..44), binding the record to exactly one
    /// sealed content; all zero for directory markers, which have none.
    pub content_salt: [u8; 32],
    /// The xattr area, opaque here (`crypto::format::xattr` encodes it; docs/FORMAT.md §2d).
    pub xattrs: Vec<u8>,
}

impl AttrRecord {
    /// The plaintext encoding:
    /// `01 || type || BE16(mode) || BE32(uid) || BE32(gid) || BE64(mtime secs) || BE32(mtime
    /// nsec) || BE64(ctime secs) || BE32(ctime nsec) || BE64(rdev) || flags (01: size known,
    /// 02: mtime known) || BE64(size or 0) || content salt (32) || BE16(len(xattrs)) || xattrs`.
    fn encode(&self) -> CryptoResult<Vec<u8>> {
        let xattr_len = u16::try_from(self.xattrs.len()).map_err(|_| too_large(self))?;
        let mut out = Vec::with_capacity(FIXED_PLAINTEXT_LEN + self.xattrs.len());
        out.push(RECORD_VERSION);
        out.push(self.file_type as u8);
        out.extend_from_slice(&(self.mode & 0o7777).to_be_bytes());
        out.extend_from_slice(&self.uid.to_be_bytes());
        out.extend_from_slice(&self.gid.to_be_bytes());
        for t in [self.mtime.unwrap_or_default(), self.ctime] {
            out.extend_from_slice(&t.secs.to_be_bytes());
            out.extend_from_slice(&t.nsec.to_be_bytes());
        }
        out.extend_from_slice(&self.rdev.to_be_bytes());
        let mut flags = 0;
        if self.size.is_some() {
            flags |= SIZE_KNOWN;
        }
        if self.mtime.is_some() {
            flags |= MTIME_KNOWN;
        }
        out.push(flags);
        out.extend_from_slice(&self.size.unwrap_or(0).to_be_bytes());
        out.extend_from_slice(&self.content_salt);
        out.extend_from_slice(&xattr_len.to_be_bytes());
        out.extend_from_slice(&self.xattrs);
        Ok(out)
    }

    fn decode(p: &[u8]) -> CryptoResult<AttrRecord> {
        let bad = |m: &str| CryptoError::Corrupt(format!("attribute record: {m}"));
        let mut r = Reader(p);
        if r.take::<1>()?[0] != RECORD_VERSION {
            return Err(CryptoError::Unsupported(
                "attribute record plaintext of an unknown version".into(),
            ));
        }
        let file_type = FileType::from_byte(r.take::<1>()?[0]).ok_or_else(|| bad("file type"))?;
        let mode = u16::from_be_bytes(r.take()?);
        if mode & !0o7777 != 0 {
            return Err(bad("mode has bits outside 0o7777"));
        }
        let uid = u32::from_be_bytes(r.take()?);
        let gid = u32::from_be_bytes(r.take()?);
        let mut times = [Timestamp::default(); 2];
        for t in &mut times {
            t.secs = i64::from_be_bytes(r.take()?);
            t.nsec = u32::from_be_bytes(r.take()?);
            if t.nsec >= 1_000_000_000 {
                return Err(bad("nanoseconds out of range"));
            }
        }
        let rdev = u64::from_be_bytes(r.take()?);
        let flags = r.take::<1>()?[0];
        if flags & !(SIZE_KNOWN | MTIME_KNOWN) != 0 {
            return Err(bad("unknown flags"));
        }
        let size = u64::from_be_bytes(r.take()?);
        let content_salt = r.take::<32>()?;
        let xattr_len = u16::from_be_bytes(r.take()?) as usize;
        if r.0.len() != xattr_len {
            return Err(bad("xattr area length does not match"));
        }
        Ok(AttrRecord {
            file_type,
            mode,
            uid,
            gid,
            mtime: (flags & MTIME_KNOWN != 0).then_some(times[0]),
            ctime: times[1],
            rdev,
            size: (flags & SIZE_KNOWN != 0).then_some(size),
            content_salt,
            xattrs: r.0.to_vec(),
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> CryptoResult<[u8; N]> {
        if self.0.len() < N {
            return Err(CryptoError::Corrupt("attribute record: truncated".into()));
        }
        let (head, rest) = self.0.split_at(N);
        self.0 = rest;
        let mut out = [0u8; N];
        out.copy_from_slice(head);
        Ok(out)
    }
}

fn too_large(rec: &AttrRecord) -> CryptoError {
    CryptoError::InvalidKeyMaterial(format!(
        "attribute record with {} bytes of extended attributes does not fit in S3's 2 KiB of \
         user metadata (at most {} characters for {ATTR_RECORD_KEY})",
        rec.xattrs.len(),
        MAX_RECORD_VALUE_LEN
    ))
}

fn record_key(
    generation_key: &[u8; 32],
    salt: &[u8],
    vault_id: &[u8; 16],
) -> CryptoResult<DefaultAead> {
    let k = kdf::hkdf_sha256(generation_key, salt, &[INFO_RECORD_KEY, &vault_id[..]]);
    DefaultAead::new(&k)
}

fn aad(vault_id: &[u8; 16], object_key: &str, prefix: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(AAD_DOMAIN.len() + 16 + 4 + object_key.len() + PREFIX_LEN);
    a.extend_from_slice(AAD_DOMAIN);
    a.extend_from_slice(vault_id);
    a.extend_from_slice(&(object_key.len() as u32).to_be_bytes());
    a.extend_from_slice(object_key.as_bytes());
    a.extend_from_slice(prefix);
    a
}

/// Seal `rec` for the object at `object_key` under the vault's current generation with a
/// fresh random salt: the [`ATTR_RECORD_KEY`] value. Refused (never truncated) when it would
/// not fit in [`MAX_RECORD_VALUE_LEN`].
pub fn seal_record(keys: &VaultKeys, object_key: &str, rec: &AttrRecord) -> CryptoResult<String> {
    seal_record_with_salt(keys, object_key, rec, kdf::random_bytes()?)
}

/// [`seal_record`] with a caller-chosen salt (test vectors; never reuse a salt).
#[doc(hidden)]
pub fn seal_record_with_salt(
    keys: &VaultKeys,
    object_key: &str,
    rec: &AttrRecord,
    salt: [u8; RECORD_SALT_LEN],
) -> CryptoResult<String> {
    let plaintext = rec.encode()?;
    if (PREFIX_LEN + plaintext.len() + TAG_LEN).div_ceil(3) * 4 > MAX_RECORD_VALUE_LEN {
        return Err(too_large(rec));
    }
    let generation = keys.current_generation();
    let gkey = keys.generation_key(generation).ok_or_else(|| {
        CryptoError::Internal(format!("no key for the current generation {generation}"))
    })?;
    let vault_id = keys.vault_id();
    let mut out = Vec::with_capacity(PREFIX_LEN + plaintext.len() + TAG_LEN);
    out.push(RECORD_VERSION);
    out.extend_from_slice(&generation.to_be_bytes());
    out.extend_from_slice(&salt);
    let aad = aad(&vault_id, object_key, &out);
    let mut body = plaintext;
    let tag =
        record_key(gkey, &salt, &vault_id)?.seal_in_place(&[0u8; NONCE_LEN], &aad, &mut body)?;
    out.extend_from_slice(&body);
    out.extend_from_slice(&tag);
    Ok(STANDARD.encode(out))
}

/// The key generation a record value names (no key needed; `None` when malformed): what
/// `key rotate --rewrap` reseals and `--retire` checks.
pub fn record_generation(value: &str) -> Option<u32> {
    let bytes = STANDARD.decode(value.trim()).ok()?;
    let g: [u8; 4] = bytes.get(1..5)?.try_into().ok()?;
    Some(u32::from_be_bytes(g))
}

/// Open the [`ATTR_RECORD_KEY`] value of the object at `object_key`.
///
/// `Corrupt` when it is not base64, too short, does not authenticate (edited, sealed for
/// another key or vault) or decodes to nonsense; `WrongKey` when its generation is not one the
/// vault holds (a retired generation); `Unsupported` for an unknown version.
pub fn open_record(keys: &VaultKeys, object_key: &str, value: &str) -> CryptoResult<AttrRecord> {
    if value.len() > MAX_RECORD_VALUE_LEN {
        return Err(CryptoError::Corrupt(
            "attribute record longer than any record sealed".into(),
        ));
    }
    let bytes = STANDARD
        .decode(value.trim())
        .map_err(|_| CryptoError::Corrupt("attribute record is not base64".into()))?;
    if bytes.len() < MIN_RECORD_LEN {
        return Err(CryptoError::Corrupt("attribute record too short".into()));
    }
    if bytes[0] != RECORD_VERSION {
        return Err(CryptoError::Unsupported(format!(
            "attribute record version {}",
            bytes[0]
        )));
    }
    let (prefix, sealed) = bytes.split_at(PREFIX_LEN);
    let mut g = [0u8; 4];
    g.copy_from_slice(&prefix[1..5]);
    let generation = u32::from_be_bytes(g);
    let gkey = keys.generation_key(generation).ok_or_else(|| {
        CryptoError::WrongKey(format!(
            "attribute record sealed under key generation {generation}, which this vault does \
             not hold"
        ))
    })?;
    let vault_id = keys.vault_id();
    let aad = aad(&vault_id, object_key, prefix);
    let mut buf = sealed.to_vec();
    let plain = record_key(gkey, &prefix[5..], &vault_id)?
        .open_in_place(&[0u8; NONCE_LEN], &aad, &mut buf)
        .map_err(|_| {
            CryptoError::Corrupt(
                "attribute record does not authenticate for this object key (edited, or \
                 copied from another object)"
                    .into(),
            )
        })?;
    AttrRecord::decode(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> VaultKeys {
        VaultKeys::from_raw_parts([1; 16], 4096, 2, vec![(1, [2; 32]), (2, [3; 32])], [4; 32])
            .unwrap()
    }

    fn record() -> AttrRecord {
        AttrRecord {
            file_type: FileType::Regular,
            mode: 0o4755,
            uid: 1000,
            gid: 100,
            mtime: Some(Timestamp {
                secs: -5,
                nsec: 999_999_999,
            }),
            ctime: Timestamp {
                secs: 1_700_000_000,
                nsec: 1,
            },
            rdev: 0,
            size: Some(12345),
            content_salt: [7; 32],
            xattrs: Vec::new(),
        }
    }

    #[test]
    fn roundtrip_and_binding_to_the_object_key() {
        let k = keys();
        let v = seal_record(&k, "vault/a", &record()).unwrap();
        assert_eq!(open_record(&k, "vault/a", &v).unwrap(), record());
        assert!(matches!(
            open_record(&k, "vault/b", &v),
            Err(CryptoError::Corrupt(_))
        ));
        // Same length, other key: the length prefix is not enough on its own.
        assert!(open_record(&k, "vault/A", &v).is_err());
        let unknown = AttrRecord {
            size: None,
            mtime: None,
            file_type: FileType::Directory,
            ..record()
        };
        let v2 = seal_record(&k, "d/", &unknown).unwrap();
        assert_eq!(open_record(&k, "d/", &v2).unwrap(), unknown);
        // Fresh salt per record: two seals of one record differ.
        assert_ne!(v2, seal_record(&k, "d/", &unknown).unwrap());
    }

    #[test]
    fn tampering_other_vaults_and_retired_generations_fail() {
        let k = keys();
        let v = seal_record(&k, "a", &record()).unwrap();
        let mut bytes = STANDARD.decode(&v).unwrap();
        for i in [0, 4, 5, PREFIX_LEN, bytes.len() - 1] {
            let mut b = bytes.clone();
            b[i] ^= 1;
            assert!(
                open_record(&k, "a", &STANDARD.encode(&b)).is_err(),
                "byte {i}"
            );
        }
        // Generation swapped to another the vault holds: another key, fails.
        bytes[4] = 1;
        assert!(open_record(&k, "a", &STANDARD.encode(&bytes)).is_err());
        let other =
            VaultKeys::from_raw_parts([9; 16], 4096, 2, vec![(1, [2; 32]), (2, [3; 32])], [4; 32])
                .unwrap();
        assert!(open_record(&other, "a", &v).is_err());
        let retired =
            VaultKeys::from_raw_parts([1; 16], 4096, 1, vec![(1, [2; 32])], [4; 32]).unwrap();
        assert!(matches!(
            open_record(&retired, "a", &v),
            Err(CryptoError::WrongKey(_))
        ));
        assert!(open_record(&k, "a", "not base64!").is_err());
        assert!(open_record(&k, "a", "").is_err());
    }

    /// The record with every field at its widest, plus the other `s3cryptfs-*` entries at
    /// their sizes, fits S3's 2 KiB of user metadata; one xattr byte more is refused.
    #[test]
    fn fits_the_user_metadata_limit_and_refuses_overflow() {
        let k = keys();
        let base_len = seal_record(&k, "k", &record()).unwrap().len();
        assert_eq!(base_len, MIN_RECORD_LEN.div_ceil(3) * 4);
        // The largest xattr area that still fits.
        let max_plain = MAX_XATTR_AREA_LEN;
        assert_eq!(max_plain, 1250);
        let widest = AttrRecord {
            file_type: FileType::BlockDevice,
            mode: 0o7777,
            uid: u32::MAX,
            gid: u32::MAX,
            mtime: Some(Timestamp {
                secs: i64::MIN,
                nsec: 999_999_999,
            }),
            ctime: Timestamp {
                secs: i64::MAX,
                nsec: 999_999_999,
            },
            rdev: u64::MAX,
            size: Some(u64::MAX),
            content_salt: [0xff; 32],
            xattrs: vec![0xab; max_plain],
        };
        let value = seal_record(&k, "k", &widest).unwrap();
        assert_eq!(open_record(&k, "k", &value).unwrap(), widest);
        let wrap = "w".repeat(60);
        let key_copy = "k".repeat(112);
        let total: usize = [
            ("s3cryptfs-wrap", wrap.as_str()),
            ("s3cryptfs-key", key_copy.as_str()),
            (ATTR_RECORD_KEY, value.as_str()),
        ]
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .sum();
        assert!(total <= USER_METADATA_LIMIT, "{total} bytes of metadata");
        let over = AttrRecord {
            xattrs: vec![0; max_plain + 1],
            ..widest
        };
        let err = seal_record(&k, "k", &over).unwrap_err().to_string();
        assert!(err.contains("does not fit"), "{err}");
        let way_over = AttrRecord {
            xattrs: vec![0; 70_000],
            ..record()
        };
        assert!(seal_record(&k, "k", &way_over).is_err());
    }
}
