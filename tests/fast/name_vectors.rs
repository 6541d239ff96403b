//! Encrypted-name vectors (tests/vectors/names.json), produced by `scripts/name-vectors.py`
//! from docs/FORMAT.md §9 with Python `cryptography` (OpenSSL's AES-SIV and HKDF), an
//! implementation that shares nothing with the RustCrypto `aes-siv` crate the production code
//! uses. The RFC 5297 vectors of the crate itself are a unit test of `crypto::names`.

use s3cryptfs::crypto::names::{NameCipher, StoredName};
use serde_json::Value;

fn vectors() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/names.json");
    let text = std::fs::read_to_string(path).expect("read tests/vectors/names.json");
    serde_json::from_str(&text).expect("names.json is JSON")
}

fn bytes<const N: usize>(v: &Value) -> [u8; N] {
    hex::decode(v.as_str().expect("hex string"))
        .expect("hex")
        .try_into()
        .expect("length")
}

#[test]
fn names_match_an_independent_aes_siv() {
    let v = vectors();
    let derived = NameCipher::derive(&bytes(&v["vmk"]), &bytes(&v["vault_id"]));
    let given = NameCipher::from_key(bytes(&v["k_names"]));
    let list = v["vectors"].as_array().expect("vectors");
    assert!(list.len() >= 8);
    let mut long = 0;
    for case in list {
        let (parent, name) = (
            case["parent"].as_str().unwrap(),
            case["name"].as_str().unwrap(),
        );
        let segment = case["segment"].as_str().unwrap();
        for cipher in [&derived, &given] {
            assert_eq!(
                cipher.encrypt_segment(parent, name),
                segment,
                "{parent:?} {name:?}"
            );
            assert_eq!(cipher.decrypt(parent, segment).as_deref(), Ok(name));
        }
        match derived.encrypt(parent, name) {
            StoredName::Short(s) => assert_eq!(s, case["entry"].as_str().unwrap()),
            StoredName::Long { entry, full } => {
                long += 1;
                assert_eq!(entry, case["entry"].as_str().unwrap());
                assert_eq!(full, segment);
                let hash = entry.strip_suffix(".long").unwrap();
                assert_eq!(
                    format!("{hash}.name"),
                    case["name_object"].as_str().unwrap()
                );
                assert_eq!(
                    derived
                        .decrypt_long(parent, hash, full.as_bytes())
                        .as_deref(),
                    Ok(name)
                );
            }
        }
    }
    assert!(long >= 2, "the vectors cover shortened names");
}
