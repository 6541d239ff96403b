//! Property-driven fuzzing of the parsers that read what the bucket sends: the object header
//! (through `ObjectOpener::open` and `open_all`), the attribute record, the metadata wrap.
//! Arbitrary bytes never panic; a valid encoding with any byte flipped, cut or extended never
//! opens as something else. The case count is bounded so the fast tier stays fast; proptest
//! keeps the input of any failure in `proptest-regressions/` (commit it: it is replayed first
//! on every later run, the regression corpus).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;
use zeroize::Zeroizing;

use super::header::MetadataWrap;
use super::record::{AttrRecord, FileType, Timestamp, open_record, seal_record};
use super::*;
use crate::crypto::kdf;
use crate::crypto::keys::{Secret, VaultConfig, VaultKeys};

fn keys() -> VaultKeys {
    let secret = Secret::KeyFile(Zeroizing::new(kdf::random_bytes::<32>().unwrap()));
    VaultConfig::create(&secret, 4096).unwrap().1
}

fn record(size: u64) -> AttrRecord {
    AttrRecord {
        file_type: FileType::Regular,
        mode: 0o644,
        uid: 1000,
        gid: 100,
        mtime: Some(Timestamp {
            secs: 1_700_000_000,
            nsec: 5,
        }),
        ctime: Timestamp {
            secs: 1_700_000_000,
            nsec: 5,
        },
        rdev: 0,
        size: Some(size),
        content_salt: [3; 32],
        xattrs: Vec::new(),
    }
}

/// One change to a valid encoding: flip a byte (xor with a non-zero value), cut it short, or
/// append bytes.
#[derive(Clone, Debug)]
enum Mutation {
    Flip { at: usize, xor: u8 },
    Cut { to: usize },
    Extend { tail: Vec<u8> },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(at, xor)| Mutation::Flip { at, xor }),
        any::<usize>().prop_map(|to| Mutation::Cut { to }),
        proptest::collection::vec(any::<u8>(), 1..64).prop_map(|tail| Mutation::Extend { tail }),
    ]
}

fn mutate(bytes: &[u8], m: &Mutation) -> Vec<u8> {
    let mut out = bytes.to_vec();
    match m {
        Mutation::Flip { at, xor } if !out.is_empty() => {
            let i = at % out.len();
            out[i] ^= xor;
        }
        Mutation::Flip { .. } => out.push(1),
        Mutation::Cut { to } => out.truncate(to % out.len().max(1)),
        Mutation::Extend { tail } => out.extend_from_slice(tail),
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn header_parser_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        object_len in any::<u64>(),
        magic in any::<bool>(),
    ) {
        let k = keys();
        let mut bytes = bytes;
        if magic && bytes.len() >= 8 {
            // Past the magic, version and suite checks, into the field parsing.
            bytes[..6].copy_from_slice(b"S3CF\x01\x01");
        }
        let _ = ObjectOpener::open(&k, &bytes, object_len);
        let _ = open_all(&k, &bytes);
    }

    #[test]
    fn a_mutated_object_never_opens(
        plaintext in proptest::collection::vec(any::<u8>(), 0..9000),
        m in mutation(),
    ) {
        let k = keys();
        let object = seal_all(&k, &plaintext).unwrap();
        let bad = mutate(&object, &m);
        prop_assume!(bad != object);
        prop_assert!(open_all(&k, &bad).is_err(), "{m:?} opened");
    }

    #[test]
    fn record_parser_never_panics(
        text in ".{0,300}",
        bytes in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let k = keys();
        let _ = open_record(&k, "vault/a", &text);
        let _ = open_record(&k, "vault/a", &STANDARD.encode(&bytes));
        let _ = MetadataWrap::parse(&text);
        let _ = MetadataWrap::parse(&STANDARD.encode(&bytes));
    }

    #[test]
    fn a_mutated_record_never_opens(size in any::<u64>(), m in mutation()) {
        let k = keys();
        let sealed = seal_record(&k, "vault/a", &record(size)).unwrap();
        let raw = STANDARD.decode(&sealed).unwrap();
        let bad = mutate(&raw, &m);
        prop_assume!(bad != raw);
        prop_assert!(open_record(&k, "vault/a", &STANDARD.encode(&bad)).is_err(), "{m:?} opened");
        // Nor does the intact record under another name.
        prop_assert!(open_record(&k, "vault/b", &sealed).is_err());
    }
}
