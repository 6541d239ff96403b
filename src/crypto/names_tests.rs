use super::*;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).expect("hex")
}

/// RFC 5297 appendix A.1 (deterministic) and A.2 (nonce as the last header): the AES-SIV
/// implementation is the RFC's.
#[test]
fn aes_siv_matches_rfc_5297_vectors() {
    let key: [u8; 32] =
        h("fffefdfc fbfaf9f8 f7f6f5f4 f3f2f1f0 f0f1f2f3 f4f5f6f7 f8f9fafb fcfdfeff")
            .try_into()
            .expect("32 bytes");
    let ad = h("10111213 14151617 18191a1b 1c1d1e1f 20212223 24252627");
    let out = rfc5297_siv(&key, &[&ad], &h("11223344 55667788 99aabbcc ddee"));
    assert_eq!(
        out,
        h("85632d07 c6e8f37f 950acd32 0a2ecc93 40c02b96 90c4dc04 daef7f6a fe5c")
    );

    let key: [u8; 32] =
        h("7f7e7d7c 7b7a7978 77767574 73727170 40414243 44454647 48494a4b 4c4d4e4f")
            .try_into()
            .expect("32 bytes");
    let ad1 = h(
        "00112233 44556677 8899aabb ccddeeff deaddada deaddada ffeeddcc bbaa9988 \
                 77665544 33221100",
    );
    let ad2 = h("10203040 50607080 90a0");
    let nonce = h("09f91102 9d74e35b d84156c5 635688c0");
    let pt = h(
        "74686973 20697320 736f6d65 20706c61 696e7465 78742074 6f20656e 63727970 \
                74207573 696e6720 5349562d 414553",
    );
    let out = rfc5297_siv(&key, &[&ad1, &ad2, &nonce], &pt);
    assert_eq!(
        out,
        h(
            "7bdb6e3b 432667eb 06f4d14b ff2fbd0f cb900f2f ddbe4043 26601965 c889bf17 \
           dba77ceb 094fa663 b7a3f748 ba8af829 ea64ad54 4a272e9c 485b62a3 fd5c0d"
        )
    );
}

fn cipher() -> NameCipher {
    NameCipher::derive(&[7u8; 32], &[9u8; 16])
}

#[test]
fn names_round_trip_in_their_directory_only() {
    let c = cipher();
    for name in [
        "a",
        "2026-tax-return.pdf",
        "späces and ünïcode ✓",
        &"x".repeat(255),
    ] {
        let stored = c.encrypt("patients/jane", name);
        let full = match &stored {
            StoredName::Short(s) => {
                assert_eq!(classify(s), Segment::Encrypted(s));
                s.clone()
            }
            StoredName::Long { entry, full } => {
                let Segment::Long(hash) = classify(entry) else {
                    panic!("{entry} is not a long entry");
                };
                assert_eq!(
                    c.decrypt_long("patients/jane", hash, full.as_bytes())
                        .unwrap(),
                    name
                );
                full.clone()
            }
        };
        assert!(name.len() < 4 || !full.contains(name));
        assert!(!full.contains('/') && !full.contains('='));
        assert_eq!(c.decrypt("patients/jane", &full).unwrap(), name);
        // Moved into another directory, or read with another vault's key: refused.
        assert_eq!(
            c.decrypt("patients/john", &full),
            Err(NameError::Authentication)
        );
        assert_eq!(c.decrypt("", &full), Err(NameError::Authentication));
        let other = NameCipher::derive(&[8u8; 32], &[9u8; 16]);
        assert_eq!(
            other.decrypt("patients/jane", &full),
            Err(NameError::Authentication)
        );
    }
    // Deterministic: a lookup finds the name without listing.
    assert_eq!(c.encrypt("d", "n"), c.encrypt("d", "n"));
}

#[test]
fn lengths_are_padded_and_long_names_are_shortened() {
    let c = cipher();
    // 0..=15 bytes: 16 padded + 16 SIV = 32 bytes, 43 characters.
    assert_eq!(c.encrypt_segment("", "a").len(), 43);
    assert_eq!(c.encrypt_segment("", &"a".repeat(15)).len(), 43);
    assert_eq!(c.encrypt_segment("", &"a".repeat(16)).len(), 64);
    // Up to 159 bytes fit in 255 characters; 160 do not.
    assert!(matches!(
        c.encrypt("", &"a".repeat(159)),
        StoredName::Short(_)
    ));
    let StoredName::Long { entry, full } = c.encrypt("", &"a".repeat(160)) else {
        panic!("160 bytes should be shortened");
    };
    assert_eq!(entry.len(), 43 + LONG_SUFFIX.len());
    assert!(full.len() > MAX_SEGMENT_LEN && full.len() <= MAX_FULL_SEGMENT_LEN);
    assert!(c.encrypt_segment("", &"a".repeat(255)).len() <= MAX_FULL_SEGMENT_LEN);
}

#[test]
fn forged_segments_are_refused() {
    let c = cipher();
    let good = c.encrypt_segment("d", "name");
    let mut flipped = good.clone().into_bytes();
    flipped[5] = if flipped[5] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    assert_eq!(c.decrypt("d", &flipped), Err(NameError::Authentication));
    assert_eq!(c.decrypt("d", "plain.txt"), Err(NameError::Encoding));
    assert_eq!(c.decrypt("d", "AAAA"), Err(NameError::Length(3)));
    assert_eq!(c.decrypt("d", &"A".repeat(2000)), Err(NameError::Encoding));
    assert_eq!(classify("plain.txt"), Segment::Foreign);
    assert_eq!(classify(".s3cryptfs"), Segment::Foreign);
    // A name object's content must hash to its entry: another entry's full name does not.
    let StoredName::Long { entry, .. } = c.encrypt("d", &"a".repeat(200)) else {
        panic!()
    };
    let StoredName::Long { full: other, .. } = c.encrypt("d", &"b".repeat(200)) else {
        panic!()
    };
    let Segment::Long(hash) = classify(&entry) else {
        panic!()
    };
    assert_eq!(
        c.decrypt_long("d", hash, other.as_bytes()),
        Err(NameError::Authentication)
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Arbitrary listed segments never panic and never decrypt.
    #[test]
    fn arbitrary_segments_do_not_decrypt(seg in "[A-Za-z0-9_\\-.]{0,400}") {
        let c = cipher();
        proptest::prop_assert!(c.decrypt("d", &seg).is_err());
        let _ = classify(&seg);
    }
}
