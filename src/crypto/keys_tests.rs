//! Unit tests of the vault config and key slots (`keys.rs`).

use super::*;
use crate::crypto::format::{open_all, seal_all};

const CHEAP: PassphraseParams = PassphraseParams::INSECURE_FOR_TESTS;

fn key_secret(byte: u8) -> Secret {
    Secret::KeyFile(Zeroizing::new([byte; 32]))
}

fn pass_secret(p: &str) -> Secret {
    Secret::Passphrase(Zeroizing::new(p.to_owned()))
}

fn wrong_key_msg<T: std::fmt::Debug>(r: CryptoResult<T>) -> String {
    match r {
        Err(CryptoError::WrongKey(m)) => m,
        other => panic!("expected WrongKey, got {other:?}"),
    }
}

#[test]
fn key_file_vault_roundtrip_through_json() {
    let (config, keys) = VaultConfig::create(&key_secret(1), DEFAULT_BLOCK_SIZE).unwrap();
    assert_eq!(keys.block_size(), 65536);
    assert_eq!(keys.current_generation(), 1);
    assert_eq!(keys.vault_id(), config.vault_id());

    let bytes = config.to_bytes();
    let text = std::str::from_utf8(&bytes).unwrap();
    for field in [
        "\"format_version\": 1",
        "\"vault_id\"",
        "\"block_size\": 65536",
        "\"current_generation\": 1",
        "\"generations\"",
        "\"wrapped_key\"",
        "\"slots\"",
        "\"kind\": \"key_file\"",
        "\"wrapped_vmk\"",
        "\"mac\"",
    ] {
        assert!(text.contains(field), "missing {field} in {text}");
    }
    let parsed = VaultConfig::from_bytes(&bytes).unwrap();
    assert_eq!(parsed, config);

    let unlocked = parsed.unlock(&key_secret(1)).unwrap();
    let obj = seal_all(&keys, b"data").unwrap();
    assert_eq!(open_all(&unlocked, &obj).unwrap(), b"data");
}

#[test]
fn wrong_key_file_is_wrong_key() {
    let (config, _) = VaultConfig::create(&key_secret(1), 4096).unwrap();
    let msg = wrong_key_msg(config.unlock(&key_secret(2)));
    assert_eq!(msg, "the key file or passphrase does not unlock this vault");
    // A passphrase against a vault with only a key-file slot says so.
    let msg = wrong_key_msg(config.unlock(&pass_secret("pw")));
    assert!(msg.contains("has no passphrase slot"), "{msg}");
}

#[test]
fn passphrase_slot_unlocks_and_rejects_wrong_passphrase() {
    let (config, keys) =
        VaultConfig::create_with_params(&pass_secret("correct horse"), 4096, CHEAP).unwrap();
    let text = String::from_utf8(config.to_bytes()).unwrap();
    assert!(text.contains("\"kind\": \"passphrase\""), "{text}");
    assert!(text.contains("\"m_cost_kib\": 64"), "{text}");
    assert!(text.contains("\"t_cost\": 1"), "{text}");
    assert!(text.contains("\"p_cost\": 1"), "{text}");

    let config = VaultConfig::from_bytes(text.as_bytes()).unwrap();
    let unlocked = config.unlock(&pass_secret("correct horse")).unwrap();
    assert_eq!(unlocked.vault_id(), keys.vault_id());
    let obj = seal_all(&keys, b"x").unwrap();
    assert_eq!(open_all(&unlocked, &obj).unwrap(), b"x");

    wrong_key_msg(config.unlock(&pass_secret("correct horse ")));
    wrong_key_msg(config.unlock(&key_secret(0)));
    assert!(matches!(
        VaultConfig::create_with_params(&pass_secret(""), 4096, CHEAP),
        Err(CryptoError::InvalidKeyMaterial(_))
    ));
}

#[test]
fn default_passphrase_params() {
    let p = PassphraseParams::default();
    assert_eq!((p.m_cost_kib, p.t_cost, p.p_cost), (65536, 3, 1));
}

#[test]
fn block_size_is_validated() {
    for bad in [0u32, 1000, 2048, 4095, 5000, 2 << 20] {
        assert!(VaultConfig::create(&key_secret(1), bad).is_err(), "{bad}");
    }
    for good in [4096u32, 8192, 65536, 1 << 20] {
        assert!(VaultConfig::create(&key_secret(1), good).is_ok(), "{good}");
    }
}

#[test]
fn slots_can_be_added_and_removed() {
    let (mut config, keys) = VaultConfig::create(&key_secret(1), 4096).unwrap();
    let idx = config
        .add_slot_with_params(&keys, &pass_secret("backup"), "backup", CHEAP)
        .unwrap();
    assert_eq!(idx, 1);
    assert_eq!(config.slots()[1].kind(), "passphrase");
    assert_eq!(config.slots()[1].label(), "backup");
    let config2 = VaultConfig::from_bytes(&config.to_bytes()).unwrap();
    config2.unlock(&pass_secret("backup")).unwrap();
    config2.unlock(&key_secret(1)).unwrap();

    config.remove_slot(&keys, 0).unwrap();
    wrong_key_msg(config.unlock(&key_secret(1)));
    config.unlock(&pass_secret("backup")).unwrap();
    assert!(config.remove_slot(&keys, 0).is_err(), "last slot must stay");
    assert!(config.remove_slot(&keys, 5).is_err());

    // Keys of another vault cannot edit this config.
    let (_, other) = VaultConfig::create(&key_secret(1), 4096).unwrap();
    assert!(matches!(
        config.add_slot(&other, &key_secret(3), "x"),
        Err(CryptoError::WrongKey(_))
    ));
}

#[test]
fn add_generation_rotates_and_keeps_old_objects_readable() {
    let (mut config, mut keys) = VaultConfig::create(&key_secret(1), 4096).unwrap();
    let old = seal_all(&keys, b"old").unwrap();
    assert_eq!(config.add_generation(&mut keys).unwrap(), 2);
    assert_eq!(keys.current_generation(), 2);
    assert_eq!(config.current_generation(), 2);
    assert_eq!(config.generations(), vec![1, 2]);
    let new = seal_all(&keys, b"new").unwrap();
    assert_eq!(new[11], 2, "new objects use generation 2");

    let reloaded = VaultConfig::from_bytes(&config.to_bytes())
        .unwrap()
        .unlock(&key_secret(1))
        .unwrap();
    assert_eq!(reloaded.generations(), vec![1, 2]);
    assert_eq!(open_all(&reloaded, &old).unwrap(), b"old");
    assert_eq!(open_all(&reloaded, &new).unwrap(), b"new");
}

#[test]
fn tampered_config_is_detected() {
    let (mut config, mut keys) = VaultConfig::create(&key_secret(1), 4096).unwrap();
    config.add_generation(&mut keys).unwrap();
    let good = String::from_utf8(config.to_bytes()).unwrap();

    // Roll current_generation back to the old generation: the MAC catches it.
    let rolled = good.replace("\"current_generation\": 2", "\"current_generation\": 1");
    assert_ne!(rolled, good);
    let msg = match VaultConfig::from_bytes(rolled.as_bytes())
        .unwrap()
        .unlock(&key_secret(1))
    {
        Err(CryptoError::Corrupt(m)) => m,
        other => panic!("expected Corrupt, got {other:?}"),
    };
    assert!(msg.contains("MAC"), "{msg}");

    let bigger = good.replace("\"block_size\": 4096", "\"block_size\": 8192");
    assert!(matches!(
        VaultConfig::from_bytes(bigger.as_bytes())
            .unwrap()
            .unlock(&key_secret(1)),
        Err(CryptoError::Corrupt(_))
    ));
}

#[test]
fn malformed_configs_are_clear_errors() {
    let (config, _) = VaultConfig::create(&key_secret(1), 4096).unwrap();
    let good = String::from_utf8(config.to_bytes()).unwrap();
    assert!(matches!(
        VaultConfig::from_bytes(b"not json"),
        Err(CryptoError::Unsupported(_))
    ));
    assert!(matches!(
        VaultConfig::from_bytes(good.replace("\"format_version\": 1", "\"format_version\": 2").as_bytes()),
        Err(CryptoError::Unsupported(m)) if m.contains("format_version 2")
    ));
    assert!(matches!(
        VaultConfig::from_bytes(
            good.replace("\"block_size\": 4096", "\"block_size\": 4000")
                .as_bytes()
        ),
        Err(CryptoError::Corrupt(_))
    ));
    assert!(matches!(
        VaultConfig::from_bytes(
            good.replace("\"current_generation\": 1", "\"current_generation\": 9")
                .as_bytes()
        ),
        Err(CryptoError::Corrupt(_))
    ));
    let vid = hex::encode(config.vault_id());
    assert!(matches!(
        VaultConfig::from_bytes(good.replace(&vid, "abcd").as_bytes()),
        Err(CryptoError::Corrupt(m)) if m.contains("hex digits")
    ));
    let hostile = good.replace(
        "\"kind\": \"key_file\"",
        "\"kind\": \"passphrase\", \"m_cost_kib\": 4294967295, \"t_cost\": 1, \"p_cost\": 1",
    );
    assert!(matches!(
        VaultConfig::from_bytes(hostile.as_bytes()),
        Err(CryptoError::Corrupt(m)) if m.contains("m_cost_kib")
    ));
}

#[test]
fn debug_output_has_no_secrets() {
    let secret = key_secret(0x5a);
    let (config, keys) = VaultConfig::create(&secret, 4096).unwrap();
    assert_eq!(format!("{secret:?}"), "Secret::KeyFile(<redacted>)");
    let text = format!("{keys:?}");
    assert!(text.contains(&hex::encode(keys.vault_id())), "{text}");
    assert!(!text.contains(&format!("{:?}", &keys.vmk[..])), "{text}");
    assert!(!text.contains(&hex::encode(&keys.vmk[..])), "{text}");
    let gk = keys.generation_key(1).unwrap();
    assert!(!text.contains(&hex::encode(gk)), "{text}");
    // The config holds only wrapped keys; its Debug is fine to print.
    let _ = format!("{config:?}");
}

/// `config` with its slots replaced by `n` copies of slot 0 given `costs` (m, t, p) when set.
fn with_slots(config: &VaultConfig, n: usize, costs: Option<(u32, u32, u32)>) -> Vec<u8> {
    let mut json: serde_json::Value = serde_json::from_slice(&config.to_bytes()).unwrap();
    let mut slot = json["slots"][0].clone();
    if let Some((m, t, p)) = costs {
        slot["m_cost_kib"] = m.into();
        slot["t_cost"] = t.into();
        slot["p_cost"] = p.into();
    }
    json["slots"] = serde_json::Value::Array(vec![slot; n]);
    serde_json::to_vec(&json).unwrap()
}

#[test]
fn config_costs_and_slot_counts_are_capped_before_unlock() {
    let (config, _) = VaultConfig::create_with_params(
        &pass_secret("pw"),
        4096,
        PassphraseParams::INSECURE_FOR_TESTS,
    )
    .unwrap();
    let corrupt = |bytes: Vec<u8>| match VaultConfig::from_bytes(&bytes) {
        Err(CryptoError::Corrupt(m)) => m,
        other => panic!("expected a corrupt config, got {other:?}"),
    };
    // The largest accepted values (init and `key add` write 64 MiB, 3 passes, 1 lane).
    VaultConfig::from_bytes(&with_slots(&config, 32, Some((1 << 20, 16, 16)))).unwrap();
    let m = corrupt(with_slots(&config, 1, Some(((1 << 20) + 1, 3, 1))));
    assert!(m.contains("m_cost_kib 1048577"), "{m}");
    let m = corrupt(with_slots(&config, 1, Some((65536, 17, 1))));
    assert!(m.contains("t_cost 17"), "{m}");
    let m = corrupt(with_slots(&config, 1, Some((65536, 3, 17))));
    assert!(m.contains("p_cost 17"), "{m}");
    let m = corrupt(with_slots(&config, 33, None));
    assert!(m.contains("33 key slots"), "{m}");
    // A key file tries no passphrase slot; the caps still refuse the config before `unlock`
    // looks at any slot.
    let hostile = with_slots(&config, 100, Some((4 << 20, 64, 1)));
    let m = corrupt(hostile);
    assert!(m.contains("100 key slots"), "{m}");
}

#[test]
fn key_add_stops_at_the_slot_cap() {
    let (mut config, keys) = VaultConfig::create(&key_secret(1), 4096).unwrap();
    for i in 1..VaultConfig::MAX_SLOTS {
        config
            .add_slot(&keys, &key_secret(i as u8 + 1), "more")
            .unwrap();
    }
    assert_eq!(config.slots().len(), VaultConfig::MAX_SLOTS);
    VaultConfig::from_bytes(&config.to_bytes()).unwrap();
    let e = config
        .add_slot(&keys, &key_secret(200), "one too many")
        .unwrap_err();
    assert!(e.to_string().contains("32 key slots"), "{e}");
}

/// The config of `tests/vectors/vault.json`, written before the config counter existed, and
/// its key file.
fn vector_config() -> (Vec<u8>, Secret) {
    let vector: serde_json::Value =
        serde_json::from_str(include_str!("../../tests/vectors/vault.json")).unwrap();
    let mut key = [0u8; 32];
    hex::decode_to_slice(vector["key_file_hex"].as_str().unwrap(), &mut key).unwrap();
    let config = serde_json::to_vec(&vector["config"]).unwrap();
    (config, Secret::KeyFile(Zeroizing::new(key)))
}

#[test]
fn configs_without_a_counter_verify_as_before() {
    let (bytes, key) = vector_config();
    let config = VaultConfig::from_bytes(&bytes).unwrap();
    assert_eq!(config.config_counter(), 0);
    config.unlock(&key).unwrap();
    // Written back unchanged: no counter field, the same MAC.
    let text = String::from_utf8(config.to_bytes()).unwrap();
    assert!(!text.contains("config_counter"), "{text}");
    assert_eq!(VaultConfig::from_bytes(text.as_bytes()).unwrap(), config);
    // A new vault has no counter either until its first change.
    let (fresh, _) = VaultConfig::create(&key_secret(1), 4096).unwrap();
    assert_eq!(fresh.config_counter(), 0);
    assert!(
        !String::from_utf8(fresh.to_bytes())
            .unwrap()
            .contains("config_counter")
    );
}

#[test]
fn every_change_raises_the_config_counter() {
    let (mut config, mut keys) =
        VaultConfig::create_with_params(&pass_secret("a"), 4096, CHEAP).unwrap();
    config.add_generation(&mut keys).unwrap();
    assert_eq!(config.config_counter(), 1, "rotate");
    config
        .add_slot_with_params(&keys, &key_secret(7), "backup", CHEAP)
        .unwrap();
    assert_eq!(config.config_counter(), 2, "slot add");
    config
        .replace_slot_secret_with_params(&keys, 0, &pass_secret("b"), Some(CHEAP))
        .unwrap();
    assert_eq!(config.config_counter(), 3, "passphrase change");
    config.remove_generation(&mut keys, 1).unwrap();
    assert_eq!(config.config_counter(), 4, "retire");
    config.remove_slot(&keys, 0).unwrap();
    assert_eq!(config.config_counter(), 5, "slot remove");
    // A refused change leaves it alone.
    assert!(config.remove_slot(&keys, 0).is_err());
    assert_eq!(config.config_counter(), 5);

    let text = String::from_utf8(config.to_bytes()).unwrap();
    assert!(text.contains("\"config_counter\": 5"), "{text}");
    let reopened = VaultConfig::from_bytes(text.as_bytes()).unwrap();
    assert_eq!(reopened.config_counter(), 5);
    reopened.unlock(&key_secret(7)).unwrap();
}

#[test]
fn the_config_counter_is_under_the_mac() {
    let (mut config, mut keys) = VaultConfig::create(&key_secret(1), 4096).unwrap();
    config.add_generation(&mut keys).unwrap();
    config.add_generation(&mut keys).unwrap();
    let text = String::from_utf8(config.to_bytes()).unwrap();
    assert!(text.contains("\"config_counter\": 2"), "{text}");
    for forged in [
        // Raised, lowered, or dropped (a missing counter is 0) without the VMK:
        text.replace("\"config_counter\": 2", "\"config_counter\": 9"),
        text.replace("\"config_counter\": 2", "\"config_counter\": 1"),
        text.replace("  \"config_counter\": 2,\n", ""),
    ] {
        assert_ne!(forged, text);
        let parsed = VaultConfig::from_bytes(forged.as_bytes()).unwrap();
        match parsed.unlock(&key_secret(1)) {
            Err(CryptoError::Corrupt(m)) => assert!(m.contains("MAC"), "{m}"),
            other => panic!("forged counter accepted: {other:?}"),
        }
    }
}

// The vault config parser, fuzzed (see `crypto/format/fuzz_tests.rs` for the approach): any
// bytes parse or fail without a panic, and a valid config with any byte flipped, cut or
// extended never unlocks as a different config.
proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

    #[test]
    fn config_parser_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
        if let Ok(config) = VaultConfig::from_bytes(&bytes) {
            let _ = config.unlock(&key_secret(1));
        }
    }

    #[test]
    fn a_mutated_config_never_unlocks_as_another(
        at in proptest::prelude::any::<usize>(),
        xor in 1u8..=255,
        cut in proptest::prelude::any::<bool>(),
    ) {
        let (config, _) = VaultConfig::create(&key_secret(1), 4096).unwrap();
        let bytes = config.to_bytes();
        let mut bad = bytes.clone();
        if cut {
            bad.truncate(at % bytes.len());
        } else {
            bad[at % bytes.len()] ^= xor;
        }
        if let Ok(parsed) = VaultConfig::from_bytes(&bad) {
            if parsed.unlock(&key_secret(1)).is_ok() {
                // Only a change JSON does not see (whitespace) may still unlock.
                proptest::prop_assert_eq!(parsed, config);
            }
        }
    }
}
