//! POSIX ACLs in their xattr form (`system.posix_acl_access`, `system.posix_acl_default`),
//! as the kernel hands them to a FUSE file system that asked for `FUSE_POSIX_ACL`: the
//! kernel enforces them, the file system keeps them and keeps them in step with the mode, as
//! ext4's `posix_acl_chmod`, `posix_acl_update_mode` and `posix_acl_create` do.
//!
//! ```text
//! xattr = LE32(2) || { LE16(tag) || LE16(perm) || LE32(id) }
//! ```

/// Name of the access ACL.
pub const ACCESS: &[u8] = b"system.posix_acl_access";
/// Name of the default ACL (directories: inherited by new entries).
pub const DEFAULT: &[u8] = b"system.posix_acl_default";

const VERSION: u32 = 2;
const USER_OBJ: u16 = 0x01;
const USER: u16 = 0x02;
const GROUP_OBJ: u16 = 0x04;
const GROUP: u16 = 0x08;
const MASK: u16 = 0x10;
const OTHER: u16 = 0x20;
/// Most entries accepted (the kernel's own limit for an xattr of 64 KiB is larger; no real
/// ACL comes near).
const MAX_ENTRIES: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct AclEntry {
    tag: u16,
    perm: u16,
    id: u32,
}

/// A parsed ACL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acl(Vec<AclEntry>);

impl Acl {
    /// Parse and check the xattr form: version 2, known tags, permissions within rwx,
    /// exactly one owner, owning group and other entry, a mask when there are named entries.
    pub fn parse(bytes: &[u8]) -> Result<Acl, String> {
        let Some((head, body)) = bytes.split_first_chunk::<4>() else {
            return Err("an ACL shorter than its header".into());
        };
        if u32::from_le_bytes(*head) != VERSION {
            return Err("an ACL of an unknown version".into());
        }
        if body.len() % 8 != 0 || body.len() / 8 > MAX_ENTRIES {
            return Err("an ACL of a size that is not whole entries".into());
        }
        let entries: Vec<AclEntry> = body
            .chunks_exact(8)
            .map(|c| AclEntry {
                tag: u16::from_le_bytes([c[0], c[1]]),
                perm: u16::from_le_bytes([c[2], c[3]]),
                id: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
        let count = |t: u16| entries.iter().filter(|e| e.tag == t).count();
        if entries.iter().any(|e| {
            e.perm & !7 != 0 || ![USER_OBJ, USER, GROUP_OBJ, GROUP, MASK, OTHER].contains(&e.tag)
        }) {
            return Err("an ACL entry with an unknown tag or permission".into());
        }
        if entries.is_empty() {
            return Ok(Acl(entries));
        }
        let named = count(USER) + count(GROUP);
        if count(USER_OBJ) != 1
            || count(GROUP_OBJ) != 1
            || count(OTHER) != 1
            || count(MASK) > 1
            || (named > 0 && count(MASK) == 0)
        {
            return Err("an ACL without exactly one owner, group and other entry".into());
        }
        Ok(Acl(entries))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = VERSION.to_le_bytes().to_vec();
        for e in &self.0 {
            out.extend_from_slice(&e.tag.to_le_bytes());
            out.extend_from_slice(&e.perm.to_le_bytes());
            out.extend_from_slice(&e.id.to_le_bytes());
        }
        out
    }

    /// Whether the mode bits say all of it (owner, group and other entries only).
    fn equivalent_to_mode(&self) -> bool {
        self.0
            .iter()
            .all(|e| matches!(e.tag, USER_OBJ | GROUP_OBJ | OTHER))
    }

    /// The permission bits an access ACL sets (`posix_acl_update_mode`): owner from the
    /// owner entry, group from the mask (or the owning group without one), other from other;
    /// setuid, setgid and sticky bits of `mode` are kept. With the ACL itself when the mode
    /// bits do not say everything (`None`: store no ACL, as ext4 does).
    pub fn apply_to_mode(&self, mode: u32) -> (u32, Option<Acl>) {
        let mut m = mode & 0o7000;
        for e in &self.0 {
            let p = u32::from(e.perm);
            match e.tag {
                USER_OBJ => m |= p << 6,
                OTHER => m |= p,
                MASK => m |= p << 3,
                GROUP_OBJ if !self.0.iter().any(|x| x.tag == MASK) => m |= p << 3,
                _ => {}
            }
        }
        (m, (!self.equivalent_to_mode()).then(|| self.clone()))
    }

    /// The access ACL after `chmod(mode)` (`posix_acl_chmod`): the owner, mask (or owning
    /// group) and other entries take the new bits.
    pub fn chmod(&self, mode: u32) -> Acl {
        let has_mask = self.0.iter().any(|e| e.tag == MASK);
        let bits = |shift: u32| ((mode >> shift) & 7) as u16;
        Acl(self
            .0
            .iter()
            .map(|e| {
                let perm = match e.tag {
                    USER_OBJ => bits(6),
                    MASK => bits(3),
                    GROUP_OBJ if !has_mask => bits(3),
                    OTHER => bits(0),
                    _ => e.perm,
                };
                AclEntry { perm, ..*e }
            })
            .collect())
    }

    /// A new entry in a directory with this default ACL, asked for with `mode`
    /// (`posix_acl_create`, the umask not applied): its mode and its access ACL (`None` when
    /// the mode says it all).
    pub fn inherit(&self, mode: u32) -> (u32, Option<Acl>) {
        let mut mode = mode;
        let mut acl = self.0.clone();
        let has_mask = acl.iter().any(|e| e.tag == MASK);
        for e in &mut acl {
            let p = u32::from(e.perm);
            match e.tag {
                USER_OBJ => {
                    e.perm &= ((mode >> 6) & 7) as u16;
                    mode &= (p << 6) | !0o700;
                }
                OTHER => {
                    e.perm &= (mode & 7) as u16;
                    mode &= p | !0o007;
                }
                MASK | GROUP_OBJ if (e.tag == MASK) == has_mask => {
                    e.perm &= ((mode >> 3) & 7) as u16;
                    mode &= (p << 3) | !0o070;
                }
                _ => {}
            }
        }
        let acl = Acl(acl);
        let keep = (!acl.equivalent_to_mode()).then_some(acl);
        (mode, keep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(entries: &[(u16, u16, u32)]) -> Vec<u8> {
        let mut out = 2u32.to_le_bytes().to_vec();
        for (t, p, id) in entries {
            out.extend_from_slice(&t.to_le_bytes());
            out.extend_from_slice(&p.to_le_bytes());
            out.extend_from_slice(&id.to_le_bytes());
        }
        out
    }

    #[test]
    fn access_acl_sets_the_mode_from_its_mask() {
        // user::rwx user:1000:rw- group::r-x mask::rw- other::r--
        let bytes = acl(&[
            (USER_OBJ, 7, u32::MAX),
            (USER, 6, 1000),
            (GROUP_OBJ, 5, u32::MAX),
            (MASK, 6, u32::MAX),
            (OTHER, 4, u32::MAX),
        ]);
        let a = Acl::parse(&bytes).unwrap();
        assert_eq!(a.to_bytes(), bytes);
        let (mode, keep) = a.apply_to_mode(0o4000);
        assert_eq!(mode, 0o4764);
        assert_eq!(keep, Some(a.clone()));
        // chmod 750 changes the mask, not the owning group's entry.
        let c = a.chmod(0o750);
        assert_eq!(c.apply_to_mode(0).0, 0o750);
        assert_eq!(c.0[2].perm, 5);
        // An ACL the mode says all of is not kept.
        let plain =
            Acl::parse(&acl(&[(USER_OBJ, 6, 0), (GROUP_OBJ, 4, 0), (OTHER, 0, 0)])).unwrap();
        assert_eq!(plain.apply_to_mode(0o777), (0o640, None));
    }

    #[test]
    fn default_acl_is_inherited_as_posix_acl_create_does() {
        let d = Acl::parse(&acl(&[
            (USER_OBJ, 7, 0),
            (GROUP, 7, 100),
            (GROUP_OBJ, 5, 0),
            (MASK, 7, 0),
            (OTHER, 0, 0),
        ]))
        .unwrap();
        // open(O_CREAT, 0666): rw for the owner, the mask limits to rw, other nothing.
        let (mode, a) = d.inherit(0o666);
        assert_eq!(mode, 0o660);
        let a = a.unwrap();
        assert_eq!(a.apply_to_mode(0).0, 0o660);
        assert_eq!(a.0[1].perm, 7, "named entries keep their permissions");
        let base = Acl::parse(&acl(&[(USER_OBJ, 7, 0), (GROUP_OBJ, 5, 0), (OTHER, 5, 0)])).unwrap();
        assert_eq!(base.inherit(0o777), (0o755, None));
    }

    #[test]
    fn malformed_acls_are_refused() {
        for bad in [
            vec![],
            vec![1, 0, 0, 0],
            acl(&[(USER_OBJ, 8, 0), (GROUP_OBJ, 0, 0), (OTHER, 0, 0)]),
            acl(&[(USER_OBJ, 7, 0), (OTHER, 0, 0)]),
            acl(&[
                (USER_OBJ, 7, 0),
                (USER, 7, 5),
                (GROUP_OBJ, 0, 0),
                (OTHER, 0, 0),
            ]),
            acl(&[(0x40, 7, 0)]),
        ] {
            assert!(Acl::parse(&bad).is_err(), "{bad:?}");
        }
        let mut cut = acl(&[(USER_OBJ, 7, 0)]);
        cut.pop();
        assert!(Acl::parse(&cut).is_err());
    }
}
