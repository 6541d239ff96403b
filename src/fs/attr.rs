//! File attributes and how they are stored.
//!
//! Every writer stores them in the object's sealed attribute record
//! (`crypto::format::record`, docs/FORMAT.md §2c), bound to the object's key: [`record_for`]
//! and [`from_record`] convert. Objects of vaults made before records existed may carry them
//! instead in plaintext metadata under the names s3fs uses (`mode`, `uid`, `gid`, `mtime` as
//! `x-amz-meta-*`, `mtime-nsec` for the nanoseconds): [`from_metadata`] reads those, only
//! for objects without a record in a vault that does not require one. Objects without
//! either get the mount-wide defaults.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::crypto::format::record::{AttrRecord, FileType, Timestamp};
use crate::crypto::format::xattr::XattrArea;
use crate::store::Metadata;

pub const S_IFMT: u32 = libc::S_IFMT;
pub const S_IFREG: u32 = libc::S_IFREG;
pub const S_IFDIR: u32 = libc::S_IFDIR;
pub const S_IFLNK: u32 = libc::S_IFLNK;

/// The type of an inode. Fifos, sockets and devices are nodes only: stored as an empty
/// sealed object whose attribute record says the type (and a device's number), opened by the
/// kernel, never by the file system.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    /// A character device with its device number (`rdev`).
    CharDevice(u64),
    /// A block device with its device number (`rdev`).
    BlockDevice(u64),
}

impl Kind {
    pub fn type_bits(self) -> u32 {
        match self {
            Kind::File => S_IFREG,
            Kind::Dir => S_IFDIR,
            Kind::Symlink => S_IFLNK,
            Kind::Fifo => libc::S_IFIFO,
            Kind::Socket => libc::S_IFSOCK,
            Kind::CharDevice(_) => libc::S_IFCHR,
            Kind::BlockDevice(_) => libc::S_IFBLK,
        }
    }

    /// The device number of a device (0 for every other kind).
    pub fn rdev(self) -> u64 {
        match self {
            Kind::CharDevice(r) | Kind::BlockDevice(r) => r,
            _ => 0,
        }
    }

    /// A fifo, socket or device: a node without content.
    pub fn is_special(self) -> bool {
        matches!(
            self,
            Kind::Fifo | Kind::Socket | Kind::CharDevice(_) | Kind::BlockDevice(_)
        )
    }

    /// The kind `mknod(2)` asks for with `mode` (its `S_IFMT` bits) and `rdev`; `None` for
    /// a type bits value that names no file type.
    pub fn from_mknod(mode: u32, rdev: u64) -> Option<Kind> {
        Some(match mode & S_IFMT {
            // mknod(2) with no type bits makes a regular file.
            0 | S_IFREG => Kind::File,
            libc::S_IFIFO => Kind::Fifo,
            libc::S_IFSOCK => Kind::Socket,
            libc::S_IFCHR => Kind::CharDevice(rdev),
            libc::S_IFBLK => Kind::BlockDevice(rdev),
            _ => return None,
        })
    }
}

/// Attributes kept in object metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredAttrs {
    /// Permission bits only (0o7777).
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: SystemTime,
    /// Extended attributes (ACLs included), inline or the sidecar that holds them.
    pub xattrs: XattrArea,
    /// The last change of content or attributes (kept in the record; plaintext metadata of
    /// older writers has none, so it reads as the mtime there).
    pub ctime: SystemTime,
}

/// What the kernel is told about an inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr {
    pub ino: u64,
    pub kind: Kind,
    /// Plaintext size.
    pub size: u64,
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: SystemTime,
    pub ctime: SystemTime,
}

/// The attribute record of an object of `kind` with `attrs`: `size` and `content_salt` as the
/// writer knows them (the seam fills both for whole objects and copies).
pub fn record_for(
    kind: Kind,
    attrs: &StoredAttrs,
    size: Option<u64>,
    content_salt: [u8; 32],
) -> AttrRecord {
    AttrRecord {
        file_type: match kind {
            Kind::File => FileType::Regular,
            Kind::Dir => FileType::Directory,
            Kind::Symlink => FileType::Symlink,
            Kind::Fifo => FileType::Fifo,
            Kind::Socket => FileType::Socket,
            Kind::CharDevice(_) => FileType::CharDevice,
            Kind::BlockDevice(_) => FileType::BlockDevice,
        },
        mode: (attrs.perm & 0o7777) as u16,
        uid: attrs.uid,
        gid: attrs.gid,
        mtime: Some(timestamp(attrs.mtime)),
        ctime: timestamp(attrs.ctime),
        rdev: kind.rdev(),
        size,
        content_salt,
        xattrs: attrs.xattrs.encode(),
    }
}

/// The kind and attributes a record holds (`last_modified` stands for an mtime the record
/// leaves to the object); `Err` with the reason for a record that does not fit its type (a
/// device number on anything but a device).
pub fn from_record(
    rec: &AttrRecord,
    last_modified: SystemTime,
) -> Result<(Kind, StoredAttrs), String> {
    let kind = match rec.file_type {
        FileType::Regular => Kind::File,
        FileType::Directory => Kind::Dir,
        FileType::Symlink => Kind::Symlink,
        FileType::Fifo => Kind::Fifo,
        FileType::Socket => Kind::Socket,
        FileType::CharDevice => Kind::CharDevice(rec.rdev),
        FileType::BlockDevice => Kind::BlockDevice(rec.rdev),
    };
    if kind.rdev() != rec.rdev {
        return Err(format!(
            "attribute record of a {:?} with a device number",
            rec.file_type
        ));
    }
    let mtime = match rec.mtime {
        Some(t) => time_of(t.secs, t.nsec).ok_or("attribute record mtime out of range")?,
        None => last_modified,
    };
    let xattrs = XattrArea::decode(&rec.xattrs).map_err(|e| e.to_string())?;
    let ctime =
        time_of(rec.ctime.secs, rec.ctime.nsec).ok_or("attribute record ctime out of range")?;
    Ok((
        kind,
        StoredAttrs {
            perm: u32::from(rec.mode & 0o7777),
            uid: rec.uid,
            gid: rec.gid,
            mtime,
            xattrs,
            ctime,
        },
    ))
}

fn timestamp(t: SystemTime) -> Timestamp {
    let (secs, nsec) = split_time(t);
    Timestamp { secs, nsec }
}

fn time_of(secs: i64, ns: u32) -> Option<SystemTime> {
    if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::new(secs as u64, ns))
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::from_secs(secs.unsigned_abs()))?
            .checked_add(Duration::from_nanos(u64::from(ns)))
    }
}

/// Encode attributes (and the file type) into plaintext object metadata, as versions before
/// attribute records wrote them (no writer does any more; tests of older vaults use it).
pub fn to_metadata(kind: Kind, attrs: &StoredAttrs) -> Metadata {
    let mut m = Metadata::new();
    m.insert(
        "mode".into(),
        (kind.type_bits() | (attrs.perm & 0o7777)).to_string(),
    );
    m.insert("uid".into(), attrs.uid.to_string());
    m.insert("gid".into(), attrs.gid.to_string());
    let (secs, nsec) = split_time(attrs.mtime);
    m.insert("mtime".into(), secs.to_string());
    m.insert("mtime-nsec".into(), nsec.to_string());
    m
}

/// The file type recorded in metadata, if any.
pub fn kind_from_metadata(m: &Metadata) -> Option<Kind> {
    let mode: u32 = m.get("mode")?.trim().parse().ok()?;
    match mode & S_IFMT {
        S_IFDIR => Some(Kind::Dir),
        S_IFLNK => Some(Kind::Symlink),
        S_IFREG => Some(Kind::File),
        _ => None,
    }
}

/// Decode attributes, falling back to `defaults` field by field (malformed values count as
/// missing, so a foreign writer's odd metadata never makes a file unreadable).
pub fn from_metadata(m: Option<&Metadata>, defaults: StoredAttrs) -> StoredAttrs {
    let Some(m) = m else { return defaults };
    let num = |k: &str| m.get(k).and_then(|v| v.trim().parse::<u64>().ok());
    let perm = num("mode")
        .map(|v| (v as u32) & 0o7777)
        .unwrap_or(defaults.perm);
    let uid = num("uid")
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(defaults.uid);
    let gid = num("gid")
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(defaults.gid);
    let mtime = match m.get("mtime").map(|v| v.trim()) {
        Some(v) => parse_mtime(v, num("mtime-nsec")).unwrap_or(defaults.mtime),
        None => defaults.mtime,
    };
    StoredAttrs {
        perm,
        uid,
        gid,
        mtime,
        xattrs: XattrArea::Empty,
        ctime: mtime,
    }
}

/// s3fs writes integer seconds; some tools write fractional seconds. Negative times (before
/// 1970) are kept.
fn parse_mtime(v: &str, nsec: Option<u64>) -> Option<SystemTime> {
    let (secs, frac_ns) = match v.split_once('.') {
        Some((s, f)) => {
            let s: i64 = s.parse().ok()?;
            let digits: String = f.chars().take(9).collect();
            let scale = 10u64.pow(9 - digits.len() as u32);
            (s, digits.parse::<u64>().ok()? * scale)
        }
        None => (v.parse::<i64>().ok()?, 0),
    };
    let ns = nsec.filter(|n| *n < 1_000_000_000).unwrap_or(frac_ns);
    time_of(secs, ns as u32)
}

/// (seconds, nanoseconds) since the epoch; seconds may be negative.
pub fn split_time(t: SystemTime) -> (i64, u32) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        Err(e) => {
            let d = e.duration();
            if d.subsec_nanos() == 0 {
                (-(d.as_secs() as i64), 0)
            } else {
                (-(d.as_secs() as i64) - 1, 1_000_000_000 - d.subsec_nanos())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> StoredAttrs {
        StoredAttrs {
            perm: 0o644,
            uid: 1,
            gid: 2,
            mtime: UNIX_EPOCH + Duration::from_secs(5),
            xattrs: Default::default(),
            ctime: UNIX_EPOCH + Duration::from_secs(5),
        }
    }

    #[test]
    fn roundtrip_with_nanoseconds_and_old_times() {
        for t in [
            UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789),
            UNIX_EPOCH - Duration::new(86_400, 500),
            UNIX_EPOCH,
        ] {
            let a = StoredAttrs {
                perm: 0o4755,
                uid: 1000,
                gid: 100,
                mtime: t,
                xattrs: Default::default(),
                ctime: t,
            };
            let m = to_metadata(Kind::File, &a);
            assert_eq!(from_metadata(Some(&m), defaults()), a);
            assert_eq!(kind_from_metadata(&m), Some(Kind::File));
        }
    }

    #[test]
    fn record_roundtrip_keeps_kind_and_attributes() {
        for (kind, t) in [
            (
                Kind::File,
                UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789),
            ),
            (Kind::Symlink, UNIX_EPOCH - Duration::new(86_400, 500)),
            (Kind::Dir, UNIX_EPOCH),
        ] {
            let a = StoredAttrs {
                perm: 0o4755,
                uid: 1000,
                gid: 100,
                mtime: t,
                xattrs: Default::default(),
                ctime: t + Duration::new(7, 9),
            };
            let rec = record_for(kind, &a, Some(3), [1; 32]);
            assert_eq!(from_record(&rec, UNIX_EPOCH), Ok((kind, a)));
        }
        let later = UNIX_EPOCH + Duration::from_secs(9);
        let rec = AttrRecord {
            mtime: None,
            ..record_for(Kind::File, &defaults(), None, [0; 32])
        };
        assert_eq!(from_record(&rec, later).map(|(_, a)| a.mtime), Ok(later));
        for kind in [
            Kind::Fifo,
            Kind::Socket,
            Kind::CharDevice(0x103),
            Kind::BlockDevice(0x700),
        ] {
            let r = record_for(kind, &defaults(), Some(0), [1; 32]);
            assert_eq!(r.rdev, kind.rdev());
            assert_eq!(from_record(&r, later), Ok((kind, defaults())));
        }
        let fifo_with_rdev = AttrRecord {
            file_type: FileType::Fifo,
            rdev: 5,
            ..rec
        };
        assert!(from_record(&fifo_with_rdev, later).is_err());
    }

    #[test]
    fn s3fs_style_and_garbage_metadata() {
        let mut m = Metadata::new();
        m.insert("mode".into(), "16877".into()); // S_IFDIR | 0755, as s3fs writes it
        m.insert("mtime".into(), "1600000000".into());
        m.insert("uid".into(), "not a number".into());
        let a = from_metadata(Some(&m), defaults());
        assert_eq!(a.perm, 0o755);
        assert_eq!(a.uid, 1);
        assert_eq!(a.mtime, UNIX_EPOCH + Duration::from_secs(1_600_000_000));
        assert_eq!(kind_from_metadata(&m), Some(Kind::Dir));
        m.insert("mtime".into(), "1600000000.5".into());
        let a = from_metadata(Some(&m), defaults());
        assert_eq!(
            a.mtime,
            UNIX_EPOCH + Duration::from_millis(1_600_000_000_500)
        );
    }
}
