//! Unit and property tests of the object format as a whole: size math against sealed
//! objects, tampering, wrong keys, test-vector seams.

use proptest::prelude::*;
use zeroize::Zeroizing;

use super::header::{SALT_OFFSET, WRAPPED_DEK_OFFSET};
use super::*;
use crate::crypto::error::{CryptoError, CryptoResult};
use crate::crypto::kdf;
use crate::crypto::keys::{Secret, VaultConfig, VaultKeys};

const B: u32 = 4096;
const BU: usize = B as usize;
const H: u64 = HEADER_LEN as u64;

fn vault(block_size: u32) -> (VaultConfig, VaultKeys) {
    let secret = Secret::KeyFile(Zeroizing::new(kdf::random_bytes::<32>().unwrap()));
    VaultConfig::create(&secret, block_size).unwrap()
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + 7) as u8).collect()
}

fn corrupt_msg(r: CryptoResult<Vec<u8>>) -> String {
    match r {
        Err(CryptoError::Corrupt(m)) => m,
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn size_math_examples() {
    assert_eq!(block_count(0, B), 1);
    assert_eq!(block_count(1, B), 1);
    assert_eq!(block_count(4096, B), 1);
    assert_eq!(block_count(4097, B), 2);
    assert_eq!(ciphertext_len(0, B), H + 16);
    assert_eq!(ciphertext_len(1, B), H + 17);
    assert_eq!(ciphertext_len(4096, B), H + 4096 + 16);
    assert_eq!(ciphertext_len(4097, B), H + 4097 + 32);
    assert_eq!(ciphertext_len(10240, B), H + 10240 + 48);
    // 64 KiB blocks: 0.024% overhead.
    assert_eq!(ciphertext_len(1 << 30, 65536), H + (1 << 30) + 16 * 16384);

    assert_eq!(plaintext_len(H + 16, B), Some(0));
    assert_eq!(plaintext_len(H + 4096 + 16, B), Some(4096));
    assert_eq!(plaintext_len(H + 4097 + 32, B), Some(4097));
    for bad in [0, 1, H - 1, H, H + 15] {
        assert_eq!(plaintext_len(bad, B), None, "{bad}");
    }
    // Between one full block and the smallest two-block object: no valid n.
    for k in 1..=16 {
        assert_eq!(plaintext_len(H + 4096 + 16 + k, B), None, "{k}");
    }
    assert_eq!(plaintext_len(H + 4096 + 16 + 17, B), Some(4097));
    // Huge sizes neither panic nor break the inverse.
    for c in [u64::MAX, u64::MAX - 1, u64::MAX / 2] {
        if let Some(p) = plaintext_len(c, B) {
            assert_eq!(ciphertext_len(p, B), c);
        }
    }
    // Degenerate block sizes never panic.
    let _ = (
        plaintext_len(1000, 0),
        ciphertext_len(1000, 0),
        block_count(5, 0),
    );
}

#[test]
fn size_math_is_a_bijection_on_small_sizes() {
    let mut hits = 0;
    for c in 0..H + 5 * (u64::from(B) + 16) {
        if let Some(p) = plaintext_len(c, B) {
            assert_eq!(ciphertext_len(p, B), c);
            hits += 1;
        }
    }
    // Every plaintext size below 5 full blocks maps to a distinct valid stored size below
    // the 5-block object's.
    assert_eq!(hits, 5 * u64::from(B));
}

proptest! {
    #[test]
    fn plaintext_len_inverts_ciphertext_len(p in 0u64..(1 << 42), shift in 12u32..=20) {
        let b = 1u32 << shift;
        prop_assert_eq!(plaintext_len(ciphertext_len(p, b), b), Some(p));
    }

    #[test]
    fn plaintext_len_accepts_only_images(c in 0u64..(1 << 42), shift in 12u32..=20) {
        let b = 1u32 << shift;
        match plaintext_len(c, b) {
            Some(p) => prop_assert_eq!(ciphertext_len(p, b), c),
            None => {
                // No p near the obvious candidate maps to c.
                let body = c.saturating_sub(H);
                let n = body.div_ceil(u64::from(b) + 16).max(1);
                for nn in n.saturating_sub(1)..=n + 1 {
                    let p = body.saturating_sub(16 * nn);
                    prop_assert_ne!(ciphertext_len(p, b), c);
                }
            }
        }
    }

    #[test]
    fn ranges_cover_requested_bytes(p in 1u64..100_000, a in 0u64..100_000, len in 1u64..50_000) {
        let start = a % p;
        let end = (start + len).min(p);
        let span = ciphertext_range_for(start..end, p, B);
        prop_assert_eq!(span.first_block, start / u64::from(B));
        prop_assert_eq!(span.last_block, (end - 1) / u64::from(B));
        prop_assert!(span.ciphertext.end <= ciphertext_len(p, B));
        // The span is exactly the concatenation of its blocks.
        let first = ciphertext_range_for_block(span.first_block, p, B);
        let last = ciphertext_range_for_block(span.last_block, p, B);
        prop_assert_eq!(span.ciphertext.clone(), first.start..last.end);
    }
}

#[test]
fn range_math_examples() {
    let p = 10240; // 2.5 blocks
    let s = ciphertext_range_for(0..1, p, B);
    assert_eq!((s.first_block, s.last_block), (0, 0));
    assert_eq!(s.ciphertext, H..H + 4096 + 16);
    let s = ciphertext_range_for(4095..4097, p, B);
    assert_eq!((s.first_block, s.last_block), (0, 1));
    assert_eq!(s.ciphertext, H..H + 2 * 4112);
    let s = ciphertext_range_for(9000..20000, p, B);
    assert_eq!((s.first_block, s.last_block), (2, 2));
    assert_eq!(s.ciphertext, H + 2 * 4112..H + 2 * 4112 + 2048 + 16);
    assert_eq!(s.ciphertext.end, ciphertext_len(p, B));
    // Clipped and degenerate inputs never panic.
    let s = ciphertext_range_for(50_000..60_000, p, B);
    assert_eq!((s.first_block, s.last_block), (2, 2));
    let s = ciphertext_range_for(5..5, p, B);
    assert_eq!((s.first_block, s.last_block), (0, 0));
    let s = ciphertext_range_for(0..10, 0, B);
    assert_eq!(s.ciphertext, H..H + 16);
}

#[test]
fn nonce_layout() {
    assert_eq!(
        block_nonce(0x0102030405060708, true),
        [1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 1]
    );
    assert_eq!(block_nonce(0, false), [0; 12]);
}

#[test]
fn roundtrip_sizes() {
    let (_, keys) = vault(B);
    for len in [0, 1, BU - 1, BU, BU + 1, 3 * BU, 2 * BU + BU / 2] {
        let pt = data(len);
        let obj = seal_all(&keys, &pt).unwrap();
        assert_eq!(obj.len() as u64, ciphertext_len(len as u64, B), "len {len}");
        assert_eq!(&obj[..4], b"S3CF");
        assert_eq!(open_all(&keys, &obj).unwrap(), pt, "len {len}");
        let opener = ObjectOpener::open(&keys, &obj[..HEADER_LEN], obj.len() as u64).unwrap();
        assert_eq!(opener.plaintext_len(), len as u64);
        assert_eq!(opener.block_size(), B);
        assert_eq!(opener.generation(), 1);
    }
}

#[test]
fn fresh_dek_and_salt_per_object() {
    let (_, keys) = vault(B);
    let a = seal_all(&keys, b"same plaintext").unwrap();
    let b = seal_all(&keys, b"same plaintext").unwrap();
    assert_eq!(a[..PREFIX_LEN], b[..PREFIX_LEN]);
    assert_ne!(
        a[SALT_OFFSET..WRAPPED_DEK_OFFSET],
        b[SALT_OFFSET..WRAPPED_DEK_OFFSET]
    );
    assert_ne!(a[HEADER_LEN..], b[HEADER_LEN..]);
}

#[test]
fn random_block_access_via_ranges() {
    let (_, keys) = vault(B);
    let pt = data(3 * BU + 100);
    let obj = seal_all(&keys, &pt).unwrap();
    let opener = ObjectOpener::open(&keys, &obj, obj.len() as u64).unwrap();
    let span = ciphertext_range_for(5000..9000, pt.len() as u64, B);
    assert_eq!((span.first_block, span.last_block), (1, 2));
    let ct = &obj[span.ciphertext.start as usize..span.ciphertext.end as usize];
    let stride = BU + 16;
    let b1 = opener.open_block(1, &ct[..stride]).unwrap();
    let b2 = opener.open_block(2, &ct[stride..]).unwrap();
    assert_eq!(b1, pt[BU..2 * BU]);
    assert_eq!(b2, pt[2 * BU..3 * BU]);
    let r3 = ciphertext_range_for_block(3, pt.len() as u64, B);
    let b3 = opener
        .open_block(3, &obj[r3.start as usize..r3.end as usize])
        .unwrap();
    assert_eq!(b3, pt[3 * BU..]);
}

#[test]
fn streaming_sealer_matches_seal_all_layout() {
    let (_, keys) = vault(B);
    let pt = data(2 * BU + 10);
    let sealer = ObjectSealer::new(&keys).unwrap();
    assert_eq!(sealer.block_size(), B);
    let mut obj = sealer.header(pt.len() as u64).to_vec();
    obj.extend(sealer.seal_block(0, &pt[..BU], false).unwrap());
    obj.extend(sealer.seal_block(1, &pt[BU..2 * BU], false).unwrap());
    obj.extend(sealer.seal_block(2, &pt[2 * BU..], true).unwrap());
    assert_eq!(open_all(&keys, &obj).unwrap(), pt);
    // Re-sealing a block (a retried upload part) yields identical bytes.
    assert_eq!(
        sealer.seal_block(1, &pt[BU..2 * BU], false).unwrap(),
        obj[HEADER_LEN + BU + 16..HEADER_LEN + 2 * (BU + 16)]
    );
}

#[test]
fn seal_block_rejects_misuse() {
    let (_, keys) = vault(B);
    let sealer = ObjectSealer::new(&keys).unwrap();
    assert!(sealer.seal_block(0, &[0; 10], false).is_err());
    assert!(sealer.seal_block(0, &data(BU + 1), true).is_err());
    assert!(sealer.seal_block(3, &[], true).is_err());
    assert!(sealer.seal_block(0, &[], true).is_ok());
    assert!(sealer.seal_block(0, &data(BU), true).is_ok());
}

#[test]
fn flipped_header_byte_is_detected() {
    let (_, keys) = vault(B);
    let obj = seal_all(&keys, &data(BU + 5)).unwrap();
    for i in 0..HEADER_LEN {
        for bit in [0x01u8, 0x80] {
            let mut bad = obj.clone();
            bad[i] ^= bit;
            let err = open_all(&keys, &bad).unwrap_err();
            match (i, &err) {
                (0..=7, CryptoError::Unsupported(_) | CryptoError::Corrupt(_)) => {}
                (8..=83, CryptoError::WrongKey(_)) => {}
                (84.., CryptoError::Corrupt(m)) => assert!(m.contains("commitment"), "{m}"),
                _ => panic!("byte {i} bit {bit:#x}: unexpected {err:?}"),
            }
        }
    }
}

#[test]
fn flipped_block_byte_names_the_block() {
    let (_, keys) = vault(B);
    let pt = data(3 * BU);
    let obj = seal_all(&keys, &pt).unwrap();
    for block in 0..3usize {
        let start = HEADER_LEN + block * (BU + 16);
        for off in [0, 1, BU / 2, BU - 1, BU, BU + 15] {
            let mut bad = obj.clone();
            bad[start + off] ^= 0x20;
            let msg = corrupt_msg(open_all(&keys, &bad));
            assert!(msg.contains(&format!("block {block} ")), "{msg}");
        }
    }
}

#[test]
fn truncation_and_extension_are_corrupt() {
    let (_, keys) = vault(B);
    let obj = seal_all(&keys, &data(3 * BU)).unwrap();
    // Drop the whole last block: the size is valid but the commitment disagrees.
    let dropped = &obj[..obj.len() - (BU + 16)];
    assert!(plaintext_len(dropped.len() as u64, B).is_some());
    let msg = corrupt_msg(open_all(&keys, dropped));
    assert!(msg.contains("truncated"), "{msg}");
    // Cut a few bytes off the tail.
    for cut in [1usize, 16, 17, 100] {
        corrupt_msg(open_all(&keys, &obj[..obj.len() - cut]));
    }
    // Append bytes, or a whole extra block.
    let mut longer = obj.clone();
    longer.extend_from_slice(&[0u8; 20]);
    corrupt_msg(open_all(&keys, &longer));
    let mut extra_block = obj.clone();
    extra_block.extend_from_slice(&obj[HEADER_LEN..HEADER_LEN + 17]);
    corrupt_msg(open_all(&keys, &extra_block));
    // Header only.
    assert!(open_all(&keys, &obj[..HEADER_LEN]).is_err());
}

#[test]
fn truncation_at_block_boundary_with_forged_length_fails_on_last_flag() {
    // Even with a header committing to the shorter length (which an attacker cannot make),
    // a full block sealed as "not last" cannot pose as the final block.
    let (_, keys) = vault(B);
    let pt = data(2 * BU);
    let sealer = ObjectSealer::new(&keys).unwrap();
    let mut obj = sealer.header(BU as u64).to_vec();
    obj.extend(sealer.seal_block(0, &pt[..BU], false).unwrap());
    let msg = corrupt_msg(open_all(&keys, &obj));
    assert!(msg.contains("block 0 "), "{msg}");
}

#[test]
fn swapped_blocks_are_corrupt() {
    let (_, keys) = vault(B);
    let obj = seal_all(&keys, &data(3 * BU)).unwrap();
    let stride = BU + 16;
    let mut swapped = obj.clone();
    let (a, b) = (HEADER_LEN, HEADER_LEN + stride);
    let block0 = obj[a..a + stride].to_vec();
    swapped.copy_within(b..b + stride, a);
    swapped[b..b + stride].copy_from_slice(&block0);
    corrupt_msg(open_all(&keys, &swapped));

    // A block from another object of the same vault, same index.
    let other = seal_all(&keys, &data(3 * BU)).unwrap();
    let mut mixed = obj.clone();
    mixed[b..b + stride].copy_from_slice(&other[b..b + stride]);
    let msg = corrupt_msg(open_all(&keys, &mixed));
    assert!(msg.contains("block 1 "), "{msg}");
}

#[test]
fn open_block_checks_index_and_length() {
    let (_, keys) = vault(B);
    let pt = data(BU + 10);
    let obj = seal_all(&keys, &pt).unwrap();
    let opener = ObjectOpener::open(&keys, &obj, obj.len() as u64).unwrap();
    assert_eq!(opener.block_count(), 2);
    let last = &obj[HEADER_LEN + BU + 16..];
    assert_eq!(opener.open_block(1, last).unwrap(), pt[BU..]);
    assert!(opener.open_block(2, last).is_err());
    assert!(opener.open_block(1, &last[..last.len() - 1]).is_err());
    // The last block presented as block 0: wrong length for block 0.
    assert!(opener.open_block(0, last).is_err());
}

#[test]
fn wrong_key_and_other_vault() {
    let (_, keys) = vault(B);
    let (_, other) = vault(B);
    let obj = seal_all(&keys, b"hello").unwrap();
    match open_all(&other, &obj) {
        Err(CryptoError::WrongKey(m)) => {
            assert!(m.contains("another key or belongs to another vault"), "{m}")
        }
        r => panic!("expected WrongKey, got {r:?}"),
    }

    // Same generation key, different vault id: ctx differs, so the DEK does not unwrap.
    let gk = [9u8; 32];
    let v1 = VaultKeys::from_raw_parts([1; 16], B, 1, vec![(1, gk)], [0; 32]).unwrap();
    let v2 = VaultKeys::from_raw_parts([2; 16], B, 1, vec![(1, gk)], [0; 32]).unwrap();
    let obj = seal_all(&v1, b"hello").unwrap();
    assert!(matches!(open_all(&v2, &obj), Err(CryptoError::WrongKey(_))));
    assert_eq!(open_all(&v1, &obj).unwrap(), b"hello");

    // Another block size: refused before any key work.
    let (_, big) = vault(65536);
    assert!(matches!(open_all(&big, &obj), Err(CryptoError::Corrupt(_))));
}

#[test]
fn unknown_generation_is_a_clear_wrong_key() {
    let v2 = VaultKeys::from_raw_parts([1; 16], B, 2, vec![(1, [1; 32]), (2, [2; 32])], [0; 32])
        .unwrap();
    let v1 = VaultKeys::from_raw_parts([1; 16], B, 1, vec![(1, [1; 32])], [0; 32]).unwrap();
    let obj = seal_all(&v2, b"new").unwrap();
    match open_all(&v1, &obj) {
        Err(CryptoError::WrongKey(m)) => assert!(m.contains("generation 2"), "{m}"),
        r => panic!("expected WrongKey, got {r:?}"),
    }
    // Older generations stay readable after rotation.
    let old = seal_all(&v1, b"old").unwrap();
    assert_eq!(open_all(&v2, &old).unwrap(), b"old");
}

#[test]
fn foreign_and_future_headers_are_unsupported() {
    let (_, keys) = vault(B);
    let obj = seal_all(&keys, b"x").unwrap();
    assert!(matches!(
        ObjectOpener::open(&keys, b"plain text file", 15),
        Err(CryptoError::Unsupported(_))
    ));
    assert!(matches!(
        ObjectOpener::open(&keys, &obj[..50], obj.len() as u64),
        Err(CryptoError::Corrupt(_))
    ));
    for (offset, value) in [(4usize, 2u8), (5, 2), (7, 1)] {
        let mut bad = obj.clone();
        bad[offset] = value;
        assert!(
            matches!(open_all(&keys, &bad), Err(CryptoError::Unsupported(_))),
            "offset {offset}"
        );
    }
}

#[test]
fn header_layout() {
    let keys = VaultKeys::from_raw_parts([0xaa; 16], B, 7, vec![(7, [3; 32])], [0; 32]).unwrap();
    let sealer = ObjectSealer::with_fixed_material(&keys, [1; 32], [2; 32]).unwrap();
    assert_eq!(sealer.generation(), 7);
    let h = sealer.header(5);
    assert_eq!(&h[..12], &[b'S', b'3', b'C', b'F', 1, 1, 12, 0, 0, 0, 0, 7]);
    assert_eq!(&h[12..44], &[2u8; 32]);
    assert_ne!(h[84..], sealer.header(6)[84..]);
    assert_eq!(h, sealer.header(5));
}

#[test]
fn opener_and_sealer_are_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<ObjectSealer>();
    check::<ObjectOpener>();
    check::<VaultKeys>();
}

#[test]
fn debug_prints_no_secrets() {
    let keys =
        VaultKeys::from_raw_parts([0xaa; 16], B, 1, vec![(1, [0x42; 32])], [0x43; 32]).unwrap();
    let sealer = ObjectSealer::with_fixed_material(&keys, [0x44; 32], [0x45; 32]).unwrap();
    let text = format!("{keys:?} {sealer:?}");
    assert!(!text.contains("42, 42") && !text.contains("4242"), "{text}");
    assert!(!text.contains("43, 43") && !text.contains("4343"), "{text}");
    assert!(!text.contains("44, 44") && !text.contains("4444"), "{text}");
}

#[test]
fn open_run_in_place_decrypts_a_run_and_rejects_tampering() {
    let (_, keys) = vault(B);
    let pt = data(3 * BU + 100);
    let obj = seal_all(&keys, &pt).unwrap();
    let opener = ObjectOpener::open(&keys, &obj, obj.len() as u64).unwrap();
    let stride = BU + 16;
    let body = &obj[HEADER_LEN..];

    // Blocks 1..=3 (the last one short) in one buffer.
    let mut run = body[stride..].to_vec();
    let n = opener.open_run_in_place(1, &mut run).unwrap();
    assert_eq!(&run[..n], &pt[BU..]);

    // A flipped bit in the second block of the run.
    let mut flipped = body[stride..].to_vec();
    flipped[stride + 5] ^= 1;
    let msg = corrupt_msg(opener.open_run_in_place(1, &mut flipped).map(|_| vec![]));
    assert!(msg.contains("block 2 "), "{msg}");

    // Two full blocks swapped.
    let mut swapped = [&body[stride..2 * stride], &body[..stride]].concat();
    assert!(opener.open_run_in_place(0, &mut swapped).is_err());

    // The right blocks asked for at the wrong index.
    let mut shifted = body[..2 * stride].to_vec();
    assert!(opener.open_run_in_place(1, &mut shifted).is_err());

    // Truncated: the last block cut short, or nothing at all.
    let mut short = body[stride..body.len() - 1].to_vec();
    assert!(opener.open_run_in_place(1, &mut short).is_err());
    assert!(opener.open_run_in_place(0, &mut []).is_err());

    // Extended: bytes past the object's last block.
    let mut long = [&body[3 * stride..], &[0u8; 16][..]].concat();
    assert!(opener.open_run_in_place(3, &mut long).is_err());
}
