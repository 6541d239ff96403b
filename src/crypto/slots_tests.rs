//! Unit tests of KMS key slots (`slots.rs`) against a fake KMS: the slot's JSON, that the
//! vault id is the encryption context, that the config's MAC covers the key id and the blob,
//! the bounds a config from the bucket is held to, and which error a refusing KMS gives.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use zeroize::Zeroizing;

use super::super::error::{CryptoError, CryptoResult};
use super::super::kdf;
use super::super::keyfile::{KmsSecret, Secret};
use super::super::keys::{DEFAULT_BLOCK_SIZE, VaultConfig};
use super::super::kms::KmsWrap;

/// A stand-in for KMS: blob = nonce (8) || plaintext XOR mask || tag, the mask and the tag
/// derived from the key id (unless `lenient`: then any key id decrypts, as if KMS ignored
/// it) and the encryption context. Keys in `disabled` refuse.
#[derive(Default)]
struct FakeKms {
    lenient: bool,
    disabled: Mutex<Vec<String>>,
    nonce: AtomicU64,
    calls: AtomicU64,
}

impl FakeKms {
    fn mask(&self, key_id: &str, context: &str, nonce: &[u8]) -> Zeroizing<[u8; 32]> {
        let key = if self.lenient { "any" } else { key_id };
        kdf::hkdf_sha256(key.as_bytes(), nonce, &[context.as_bytes()])
    }
}

impl KmsWrap for FakeKms {
    fn encrypt(&self, key_id: &str, context: &str, plaintext: &[u8; 32]) -> CryptoResult<Vec<u8>> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let nonce = self.nonce.fetch_add(1, Ordering::Relaxed).to_be_bytes();
        let mask = self.mask(key_id, context, &nonce);
        let mut blob = nonce.to_vec();
        blob.extend(plaintext.iter().zip(mask.iter()).map(|(p, m)| p ^ m));
        let tag = kdf::hmac_sha256(&mask, &blob);
        blob.extend_from_slice(&tag);
        Ok(blob)
    }

    fn decrypt(
        &self,
        key_id: &str,
        context: &str,
        blob: &[u8],
    ) -> CryptoResult<Zeroizing<Vec<u8>>> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if self.disabled.lock().unwrap().iter().any(|k| k == key_id) {
            return Err(CryptoError::Kms {
                refused: true,
                message: format!("KMS key {key_id} is disabled"),
            });
        }
        let refused = || CryptoError::Kms {
            refused: true,
            message: format!("KMS key {key_id}: InvalidCiphertextException"),
        };
        if blob.len() != 8 + 32 + 32 {
            return Err(refused());
        }
        let mask = self.mask(key_id, context, &blob[..8]);
        if !kdf::ct_eq(&kdf::hmac_sha256(&mask, &blob[..40]), &blob[40..]) {
            return Err(refused());
        }
        Ok(Zeroizing::new(
            blob[8..40]
                .iter()
                .zip(mask.iter())
                .map(|(c, m)| c ^ m)
                .collect(),
        ))
    }

    fn describe(&self) -> String {
        "fake KMS".into()
    }
}

fn kms(client: &Arc<FakeKms>, new_key_id: Option<&str>) -> Secret {
    Secret::Kms(KmsSecret {
        client: client.clone(),
        new_key_id: new_key_id.map(str::to_owned),
    })
}

fn json(config: &VaultConfig) -> serde_json::Value {
    serde_json::from_slice(&config.to_bytes()).unwrap()
}

fn from_json(v: &serde_json::Value) -> CryptoResult<VaultConfig> {
    VaultConfig::from_bytes(&serde_json::to_vec(v).unwrap())
}

#[test]
fn a_kms_slot_is_json_the_vault_id_is_the_context_and_one_call_unlocks() {
    let fake = Arc::new(FakeKms::default());
    let (config, keys) =
        VaultConfig::create(&kms(&fake, Some("alias/vault")), DEFAULT_BLOCK_SIZE).unwrap();
    assert_eq!(fake.calls.load(Ordering::Relaxed), 1, "one Encrypt at init");
    let v = json(&config);
    let slot = &v["slots"][0];
    assert_eq!(slot["kind"], "kms");
    assert_eq!(slot["key_id"], "alias/vault");
    assert_eq!(slot["label"], "initial");
    let blob = hex::decode(slot["ciphertext"].as_str().unwrap()).unwrap();
    assert_eq!(blob.len(), 72);
    assert_eq!(config.slots()[0].kms_key_id(), Some("alias/vault"));
    // The blob decrypts only with the vault id as the context.
    let id = hex::encode(config.vault_id());
    fake.decrypt("alias/vault", &id, &blob)
        .expect("own context");
    assert!(fake.decrypt("alias/vault", &"0".repeat(32), &blob).is_err());

    let again = VaultConfig::from_bytes(&config.to_bytes()).unwrap();
    let before = fake.calls.load(Ordering::Relaxed);
    let unlocked = again.unlock(&kms(&fake, None)).expect("unlock");
    assert_eq!(
        fake.calls.load(Ordering::Relaxed) - before,
        1,
        "one Decrypt"
    );
    assert_eq!(unlocked.vault_id(), keys.vault_id());
    assert_eq!(unlocked.generations(), keys.generations());
    // A key file does not open a KMS-only vault, and says why.
    let e = again
        .unlock(&Secret::KeyFile(Zeroizing::new([1; 32])))
        .expect_err("key file");
    assert!(e.to_string().contains("no key file slot"), "{e}");
}

/// The key id or blob of a slot changed in the bucket, even to something KMS decrypts to the
/// very same master key, is refused by the MAC.
#[test]
fn the_mac_covers_the_key_id_and_the_blob() {
    let fake = Arc::new(FakeKms {
        lenient: true,
        ..FakeKms::default()
    });
    let (config, _) = VaultConfig::create(&kms(&fake, Some("key-a")), DEFAULT_BLOCK_SIZE).unwrap();
    let v = json(&config);
    let id = hex::encode(config.vault_id());
    let blob = hex::decode(v["slots"][0]["ciphertext"].as_str().unwrap()).unwrap();
    let vmk: [u8; 32] = fake
        .decrypt("key-a", &id, &blob)
        .unwrap()
        .as_slice()
        .try_into()
        .unwrap();

    let mut other_key = v.clone();
    other_key["slots"][0]["key_id"] = "key-b".into();
    let e = from_json(&other_key)
        .unwrap()
        .unlock(&kms(&fake, None))
        .expect_err("key id changed");
    assert!(
        matches!(e, CryptoError::Corrupt(ref m) if m.contains("MAC mismatch")),
        "{e}"
    );

    let mut other_blob = v.clone();
    let reencrypted = fake.encrypt("key-a", &id, &vmk).unwrap();
    assert_ne!(reencrypted, blob);
    other_blob["slots"][0]["ciphertext"] = hex::encode(&reencrypted).into();
    let e = from_json(&other_blob)
        .unwrap()
        .unlock(&kms(&fake, None))
        .expect_err("blob changed");
    assert!(
        matches!(e, CryptoError::Corrupt(ref m) if m.contains("MAC mismatch")),
        "{e}"
    );
    // The untouched config still opens.
    from_json(&v)
        .unwrap()
        .unlock(&kms(&fake, None))
        .expect("untouched");
}

#[test]
fn a_blob_of_another_key_is_refused_by_kms() {
    let fake = Arc::new(FakeKms::default());
    let (config, _) = VaultConfig::create(&kms(&fake, Some("key-a")), DEFAULT_BLOCK_SIZE).unwrap();
    let mut v = json(&config);
    v["slots"][0]["key_id"] = "key-b".into();
    let e = from_json(&v)
        .unwrap()
        .unlock(&kms(&fake, None))
        .expect_err("other key");
    assert!(matches!(e, CryptoError::Kms { refused: true, .. }), "{e}");
    assert!(e.to_string().contains("key-b"), "{e}");
}

#[test]
fn hostile_kms_slots_are_refused_on_sight() {
    let fake = Arc::new(FakeKms::default());
    let (config, _) = VaultConfig::create(&kms(&fake, Some("key-a")), DEFAULT_BLOCK_SIZE).unwrap();
    let v = json(&config);
    for (field, value, says) in [
        (
            "key_id",
            serde_json::Value::from(""),
            "KMS key id of 0 bytes",
        ),
        (
            "key_id",
            "k".repeat(2049).into(),
            "KMS key id of 2049 bytes",
        ),
        ("ciphertext", "".into(), "KMS ciphertext of 0 bytes"),
        (
            "ciphertext",
            "ab".repeat(6145).into(),
            "KMS ciphertext of 6145 bytes",
        ),
        ("ciphertext", "not hex".into(), "hex"),
    ] {
        let mut bad = v.clone();
        bad["slots"][0][field] = value;
        let e = from_json(&bad).expect_err(says);
        assert!(e.to_string().contains(says), "{field}: {e}");
    }
    // A blob of the largest size KMS returns is accepted.
    let mut largest = v.clone();
    largest["slots"][0]["ciphertext"] = "ab".repeat(6144).into();
    from_json(&largest).expect("6144 bytes");
}

/// While a vault moves to a new KMS key the old one may be disabled: the next slot opens it,
/// and only when none does is KMS's refusal the error.
#[test]
fn a_refused_kms_slot_falls_through_to_the_next() {
    let fake = Arc::new(FakeKms::default());
    let (mut config, keys) =
        VaultConfig::create(&kms(&fake, Some("old")), DEFAULT_BLOCK_SIZE).unwrap();
    config
        .add_slot(&keys, &kms(&fake, Some("new")), "moved")
        .unwrap();
    assert_eq!(config.slots()[1].kms_key_id(), Some("new"));
    fake.disabled.lock().unwrap().push("old".into());
    let unlocked = config.unlock(&kms(&fake, None)).expect("the new key opens");
    assert_eq!(unlocked.vault_id(), keys.vault_id());
    assert_eq!(config.slot_index_for(&kms(&fake, None)).unwrap(), Some(1));

    fake.disabled.lock().unwrap().push("new".into());
    let e = config.unlock(&kms(&fake, None)).expect_err("both disabled");
    assert!(matches!(e, CryptoError::Kms { refused: true, .. }), "{e}");
    assert!(e.to_string().contains("KMS key old is disabled"), "{e}");
}

#[test]
fn a_kms_secret_without_a_key_id_cannot_make_a_slot() {
    let fake = Arc::new(FakeKms::default());
    let e = VaultConfig::create(&kms(&fake, None), DEFAULT_BLOCK_SIZE).expect_err("no key id");
    assert!(e.to_string().contains("--kms-key-id"), "{e}");
    assert_eq!(fake.calls.load(Ordering::Relaxed), 0);
}
