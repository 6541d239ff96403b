//! Extended attributes in the attribute record's xattr area, and the sealed sidecar that
//! holds them when they do not fit (docs/FORMAT.md §2d).
//!
//! ```text
//! area    = empty                                   no extended attributes
//!         | 01 || entries                           inline
//!         | 02 || id (16) || key (32) || BE32(len)  in the sidecar object `.s3cryptfs/xattr/hex(id)`
//! entries = { u8 len(name) || name || BE16(len(value)) || value }, names strictly ascending
//! sidecar = 01 || AES-256-GCM(key, nonce = 12 zero bytes, aad, entries)        (len bytes)
//! aad     = "s3cryptfs v1 xattr sidecar" || vault_id || id
//! ```
//!
//! The sidecar's key is random per sidecar and lives only inside the sealed record, which is
//! bound to the object's key and content: the sidecar opens only through the record that
//! names it, so one moved under another id, edited, cut or swapped does not authenticate.
//! Pure: bytes in, bytes out; `fs/xattr.rs` decides where they go.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use super::super::aead::{Aead, DefaultAead, NONCE_LEN, TAG_LEN};
use super::super::error::{CryptoError, CryptoResult};
use super::super::kdf;

/// Longest xattr name (XATTR_NAME_MAX).
pub const MAX_NAME_LEN: usize = 255;
/// Largest value (XATTR_SIZE_MAX).
pub const MAX_VALUE_LEN: usize = 65_535;
/// Largest encoding of all of a file's extended attributes (the sidecar's plaintext):
/// setting more is refused with ENOSPC, as ext4 refuses what does not fit its block.
pub const MAX_ENTRIES_LEN: usize = 64 * 1024;
/// Bytes of a sealed sidecar at most.
pub const MAX_SIDECAR_LEN: usize = 1 + MAX_ENTRIES_LEN + TAG_LEN;
/// Where sidecars live, below the vault prefix (inside the vault's own directory, which the
/// mount hides and the tools skip).
pub const SIDECAR_DIR: &str = ".s3cryptfs/xattr/";

const INLINE: u8 = 1;
const SIDECAR: u8 = 2;
const SIDECAR_VERSION: u8 = 1;
const SIDECAR_REF_LEN: usize = 1 + 16 + 32 + 4;
const AAD_DOMAIN: &[u8] = b"s3cryptfs v1 xattr sidecar";

/// A file's extended attributes by name.
pub type XattrMap = BTreeMap<Vec<u8>, Vec<u8>>;

/// Where a sidecar is and the key that opens it.
#[derive(Clone, PartialEq, Eq)]
pub struct SidecarRef {
    pub id: [u8; 16],
    key: [u8; 32],
    /// Sealed length.
    pub len: u32,
}

impl fmt::Debug for SidecarRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        write!(
            f,
            "SidecarRef({}, {} bytes)",
            hex::encode(self.id),
            self.len
        )
    }
}

impl SidecarRef {
    /// The sidecar's object key below the vault prefix.
    pub fn object_name(&self) -> String {
        format!("{SIDECAR_DIR}{}", hex::encode(self.id))
    }
}

/// What a record's xattr area says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum XattrArea {
    #[default]
    Empty,
    Inline(Arc<XattrMap>),
    Sidecar(SidecarRef),
}

impl XattrArea {
    /// The area's bytes in the record.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            XattrArea::Empty => Vec::new(),
            XattrArea::Inline(map) => {
                let mut out = vec![INLINE];
                encode_entries_into(map, &mut out);
                out
            }
            XattrArea::Sidecar(r) => {
                let mut out = Vec::with_capacity(SIDECAR_REF_LEN);
                out.push(SIDECAR);
                out.extend_from_slice(&r.id);
                out.extend_from_slice(&r.key);
                out.extend_from_slice(&r.len.to_be_bytes());
                out
            }
        }
    }

    /// Parse a record's area (already authenticated with the record; still checked, since a
    /// bug or a future writer must not make it panic or allocate).
    pub fn decode(area: &[u8]) -> CryptoResult<XattrArea> {
        let Some((&tag, rest)) = area.split_first() else {
            return Ok(XattrArea::Empty);
        };
        match tag {
            INLINE => Ok(XattrArea::Inline(Arc::new(decode_entries(rest)?))),
            SIDECAR if area.len() == SIDECAR_REF_LEN => {
                let mut id = [0u8; 16];
                id.copy_from_slice(&rest[..16]);
                let mut key = [0u8; 32];
                key.copy_from_slice(&rest[16..48]);
                let len = u32::from_be_bytes([rest[48], rest[49], rest[50], rest[51]]);
                if len as usize > MAX_SIDECAR_LEN || (len as usize) < 1 + TAG_LEN {
                    return Err(corrupt("sidecar length out of range"));
                }
                Ok(XattrArea::Sidecar(SidecarRef { id, key, len }))
            }
            _ => Err(corrupt("unknown xattr area")),
        }
    }

    pub fn sidecar(&self) -> Option<&SidecarRef> {
        match self {
            XattrArea::Sidecar(r) => Some(r),
            _ => None,
        }
    }
}

fn corrupt(m: &str) -> CryptoError {
    CryptoError::Corrupt(format!("extended attributes: {m}"))
}

/// Bytes `map` takes encoded as entries.
pub fn entries_len(map: &XattrMap) -> usize {
    map.iter().map(|(n, v)| 1 + n.len() + 2 + v.len()).sum()
}

fn encode_entries_into(map: &XattrMap, out: &mut Vec<u8>) {
    out.reserve(entries_len(map));
    for (name, value) in map {
        // Names and values were checked against the limits when set.
        out.push(name.len() as u8);
        out.extend_from_slice(name);
        out.extend_from_slice(&(value.len() as u16).to_be_bytes());
        out.extend_from_slice(value);
    }
}

fn decode_entries(mut p: &[u8]) -> CryptoResult<XattrMap> {
    let mut map = XattrMap::new();
    while let Some((&n, rest)) = p.split_first() {
        let n = n as usize;
        if n == 0 || rest.len() < n + 2 {
            return Err(corrupt("truncated entry"));
        }
        let (name, rest) = rest.split_at(n);
        let v = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        let rest = &rest[2..];
        if rest.len() < v {
            return Err(corrupt("truncated value"));
        }
        if map
            .last_key_value()
            .is_some_and(|(last, _)| last.as_slice() >= name)
        {
            return Err(corrupt("names not in ascending order"));
        }
        map.insert(name.to_vec(), rest[..v].to_vec());
        p = &rest[v..];
    }
    Ok(map)
}

/// The area for `map` when its encoding is at most `inline_limit` bytes (the room the record
/// has): `Empty` or `Inline`. `None` when it needs a sidecar.
pub fn inline_area(map: &XattrMap, inline_limit: usize) -> Option<XattrArea> {
    if map.is_empty() {
        return Some(XattrArea::Empty);
    }
    (entries_len(map) < inline_limit).then(|| XattrArea::Inline(Arc::new(map.clone())))
}

fn aad(vault_id: &[u8; 16], id: &[u8; 16]) -> Vec<u8> {
    [AAD_DOMAIN, vault_id, id].concat()
}

/// Seal `map` as a new sidecar (fresh id and key): its reference for the record and its
/// bytes. Refused over [`MAX_ENTRIES_LEN`].
pub fn seal_sidecar(vault_id: &[u8; 16], map: &XattrMap) -> CryptoResult<(SidecarRef, Vec<u8>)> {
    if entries_len(map) > MAX_ENTRIES_LEN {
        return Err(CryptoError::InvalidKeyMaterial(format!(
            "{} bytes of extended attributes (at most {MAX_ENTRIES_LEN})",
            entries_len(map)
        )));
    }
    let id = kdf::random_bytes::<16>()?;
    let key = kdf::random_bytes::<32>()?;
    let mut body = Vec::new();
    encode_entries_into(map, &mut body);
    let tag =
        DefaultAead::new(&key)?.seal_in_place(&[0; NONCE_LEN], &aad(vault_id, &id), &mut body)?;
    let mut out = Vec::with_capacity(1 + body.len() + TAG_LEN);
    out.push(SIDECAR_VERSION);
    out.extend_from_slice(&body);
    out.extend_from_slice(&tag);
    let len = out.len() as u32;
    Ok((SidecarRef { id, key, len }, out))
}

/// Open the bytes fetched for sidecar `r`: `Corrupt` unless they are exactly what its record
/// names.
pub fn open_sidecar(vault_id: &[u8; 16], r: &SidecarRef, bytes: &[u8]) -> CryptoResult<XattrMap> {
    if bytes.len() != r.len as usize {
        return Err(corrupt(&format!(
            "sidecar of {} bytes where its record names {}",
            bytes.len(),
            r.len
        )));
    }
    if bytes.first() != Some(&SIDECAR_VERSION) {
        return Err(corrupt("sidecar of an unknown version"));
    }
    let mut buf = bytes[1..].to_vec();
    let plain = DefaultAead::new(&r.key)?
        .open_in_place(&[0; NONCE_LEN], &aad(vault_id, &r.id), &mut buf)
        .map_err(|_| {
            corrupt("sidecar does not authenticate (edited, or not the one its record names)")
        })?;
    decode_entries(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(n: usize, value_len: usize) -> XattrMap {
        (0..n)
            .map(|i| {
                (
                    format!("user.k{i:04}").into_bytes(),
                    vec![i as u8; value_len],
                )
            })
            .collect()
    }

    #[test]
    fn inline_and_sidecar_areas_roundtrip() {
        assert_eq!(XattrArea::decode(&[]).unwrap(), XattrArea::Empty);
        let m = map(3, 10);
        let area = inline_area(&m, 1000).unwrap();
        assert_eq!(XattrArea::decode(&area.encode()).unwrap(), area);
        // One byte of room short: needs a sidecar.
        assert!(inline_area(&m, 1 + entries_len(&m) - 1).is_none());
        assert!(inline_area(&m, 1 + entries_len(&m)).is_some());
        let (r, bytes) = seal_sidecar(&[1; 16], &m).unwrap();
        let area = XattrArea::Sidecar(r.clone());
        assert_eq!(XattrArea::decode(&area.encode()).unwrap(), area);
        assert_eq!(open_sidecar(&[1; 16], &r, &bytes).unwrap(), m);
        assert!(!format!("{r:?}").contains(&hex::encode(r.key)));
    }

    #[test]
    fn sidecar_at_the_size_limit_and_over_it() {
        // One value filling the whole sidecar plaintext: entries of exactly the limit.
        let name = b"user.big".to_vec();
        let fill = MAX_ENTRIES_LEN - (1 + name.len() + 2);
        let mut m: XattrMap = [(name.clone(), vec![7; fill.min(MAX_VALUE_LEN)])].into();
        let rest = MAX_ENTRIES_LEN - entries_len(&m);
        if rest > 0 {
            m.insert(b"user.c".to_vec(), vec![1; rest - (1 + 6 + 2)]);
        }
        assert_eq!(entries_len(&m), MAX_ENTRIES_LEN);
        let (r, bytes) = seal_sidecar(&[1; 16], &m).unwrap();
        assert_eq!(bytes.len(), MAX_SIDECAR_LEN);
        assert_eq!(open_sidecar(&[1; 16], &r, &bytes).unwrap(), m);
        m.insert(b"user.d".to_vec(), Vec::new());
        assert!(seal_sidecar(&[1; 16], &m).is_err());
    }

    #[test]
    fn tampered_moved_or_foreign_sidecars_do_not_open() {
        let m = map(40, 100);
        let (r, bytes) = seal_sidecar(&[1; 16], &m).unwrap();
        for i in [0, 1, bytes.len() / 2, bytes.len() - 1] {
            let mut b = bytes.clone();
            b[i] ^= 1;
            assert!(open_sidecar(&[1; 16], &r, &b).is_err(), "byte {i}");
        }
        assert!(open_sidecar(&[1; 16], &r, &bytes[..bytes.len() - 1]).is_err());
        assert!(open_sidecar(&[2; 16], &r, &bytes).is_err(), "another vault");
        // Another sidecar's bytes under this reference (moved, or an older one).
        let (_, other) = seal_sidecar(&[1; 16], &m).unwrap();
        assert!(open_sidecar(&[1; 16], &r, &other).is_err());
        let moved = SidecarRef {
            id: [9; 16],
            ..r.clone()
        };
        assert!(open_sidecar(&[1; 16], &moved, &bytes).is_err());
    }

    #[test]
    fn malformed_areas_are_refused_without_panicking() {
        for bad in [
            vec![3],
            vec![SIDECAR, 1, 2],
            vec![INLINE, 0],
            vec![INLINE, 5, b'a'],
            vec![INLINE, 1, b'a', 0, 9, 1],
            // Names out of order.
            vec![INLINE, 1, b'b', 0, 0, 1, b'a', 0, 0],
            // Duplicate names.
            vec![INLINE, 1, b'a', 0, 0, 1, b'a', 0, 0],
        ] {
            assert!(XattrArea::decode(&bad).is_err(), "{bad:?}");
        }
        let mut huge = vec![SIDECAR];
        huge.extend_from_slice(&[0; 48]);
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(XattrArea::decode(&huge).is_err());
    }
}
