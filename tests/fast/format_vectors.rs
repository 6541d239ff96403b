//! Format test vectors (tests/vectors/*.json), checked two ways:
//!
//! 1. an independent decryptor built only from the RustCrypto oracle crates (aes-gcm, hkdf,
//!    sha2, aes-kw) following docs/FORMAT.md, which shares no code with `s3cryptfs::crypto`;
//! 2. the production code, which must produce byte-identical output from the same fixed
//!    inputs and open it.
//!
//! `S3CRYPTFS_REGEN_VECTORS=1 cargo test --test integration format_vectors` rewrites the vector
//! files from the production code (then runs both checks on them). Without it the files are
//! only read, so a format change that is not deliberate fails here.

use std::path::PathBuf;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use aes_kw::KekAes256;
use hkdf::Hkdf;
use hkdf::hmac::{Hmac, Mac};
use s3cryptfs::crypto::format::{self, ObjectSealer};
use s3cryptfs::crypto::{PassphraseParams, Secret, VaultConfig};
use serde_json::{Value, json};
use sha2::Sha256;
use zeroize::Zeroizing;

const BLOCK_SIZE: u32 = 4096;

fn seq<const N: usize>(start: u8) -> [u8; N] {
    std::array::from_fn(|i| start.wrapping_add(i as u8))
}

/// Fixed inputs of the vault every object vector belongs to.
struct VaultInputs {
    key_file: [u8; 32],
    slot_salt: [u8; 32],
    vault_id: [u8; 16],
    vmk: [u8; 32],
    generation_key: [u8; 32],
}

fn vault_inputs() -> VaultInputs {
    VaultInputs {
        key_file: seq(0x10),
        slot_salt: seq(0x30),
        vault_id: seq(0x00),
        vmk: seq(0x50),
        generation_key: seq(0x70),
    }
}

struct ObjectInputs {
    file: &'static str,
    description: &'static str,
    dek: [u8; 32],
    salt: [u8; 32],
    plaintext: Vec<u8>,
}

fn object_inputs() -> Vec<ObjectInputs> {
    vec![
        ObjectInputs {
            file: "object_empty.json",
            description: "empty file: one empty final block",
            dek: seq(0x90),
            salt: seq(0xb0),
            plaintext: Vec::new(),
        },
        ObjectInputs {
            file: "object_5_bytes.json",
            description: "5-byte file \"hello\": one short final block",
            dek: seq(0x91),
            salt: seq(0xb1),
            plaintext: b"hello".to_vec(),
        },
        ObjectInputs {
            file: "object_2_5_blocks.json",
            description: "10240-byte file (2.5 blocks of 4096): two full blocks and a 2048-byte \
                          final block; plaintext byte i = (i * 7 + 3) mod 251",
            dek: seq(0x92),
            salt: seq(0xb2),
            plaintext: (0..10240u32).map(|i| ((i * 7 + 3) % 251) as u8).collect(),
        },
    ]
}

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn production_vault(v: &VaultInputs) -> (VaultConfig, s3cryptfs::crypto::VaultKeys) {
    VaultConfig::create_from_parts(
        &Secret::KeyFile(Zeroizing::new(v.key_file)),
        PassphraseParams::default(),
        v.slot_salt,
        v.vault_id,
        &v.vmk,
        &v.generation_key,
        BLOCK_SIZE,
    )
    .expect("vault from fixed material")
}

/// Writes the vector files from the production code.
fn regenerate() {
    let v = vault_inputs();
    let (config, keys) = production_vault(&v);
    let config_json: Value = serde_json::from_slice(&config.to_bytes()).unwrap();
    let vault = json!({
        "description": "vault with one key-file slot and key generation 1; every object vector \
                        belongs to it",
        "key_file_hex": hex::encode(v.key_file),
        "slot_salt_hex": hex::encode(v.slot_salt),
        "vault_id_hex": hex::encode(v.vault_id),
        "vmk_hex": hex::encode(v.vmk),
        "generation": 1,
        "generation_key_hex": hex::encode(v.generation_key),
        "block_size": BLOCK_SIZE,
        "config": config_json,
    });
    write_json("vault.json", &vault);

    for o in object_inputs() {
        let sealer = ObjectSealer::with_fixed_material(&keys, o.dek, o.salt).unwrap();
        let object = format::seal_all_with(&sealer, &o.plaintext).unwrap();
        let header = &object[..format::HEADER_LEN];
        let oracle = OracleObject::derive(&v.generation_key, &v.vault_id, header);
        let vector = json!({
            "description": o.description,
            "block_size": BLOCK_SIZE,
            "vault_id_hex": hex::encode(v.vault_id),
            "generation": 1,
            "generation_key_hex": hex::encode(v.generation_key),
            "dek_hex": hex::encode(o.dek),
            "salt_hex": hex::encode(o.salt),
            "plaintext_len": o.plaintext.len(),
            "plaintext_hex": hex::encode(&o.plaintext),
            "ctx_hex": hex::encode(&oracle.ctx),
            "wrap_key_hex": hex::encode(oracle.wrap_key),
            "k_data_hex": hex::encode(oracle.k_data),
            "commit_hex": hex::encode(oracle.commit(o.plaintext.len() as u64)),
            "header_hex": hex::encode(header),
            "object_len": object.len(),
            "object_hex": hex::encode(&object),
        });
        write_json(o.file, &vector);
    }
}

fn write_json(name: &str, value: &Value) {
    let mut text = serde_json::to_string_pretty(value).unwrap();
    text.push('\n');
    std::fs::create_dir_all(vectors_dir()).unwrap();
    std::fs::write(vectors_dir().join(name), text).unwrap();
}

fn read_json(name: &str) -> Value {
    let path = vectors_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run S3CRYPTFS_REGEN_VECTORS=1 cargo test --test integration format_vectors",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

fn hex_field(v: &Value, field: &str) -> Vec<u8> {
    hex::decode(v[field].as_str().unwrap_or_else(|| panic!("field {field}"))).unwrap()
}

fn arr<const N: usize>(bytes: &[u8]) -> [u8; N] {
    bytes.try_into().unwrap()
}

// ---------------------------------------------------------------------------------------
// The oracle: docs/FORMAT.md re-implemented with RustCrypto crates only.
// ---------------------------------------------------------------------------------------

fn oracle_hkdf(ikm: &[u8], salt: &[u8], info: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, &mut out)
        .unwrap();
    out
}

fn oracle_unwrap(kek: &[u8; 32], wrapped: &[u8]) -> [u8; 32] {
    let kek = KekAes256::new(kek.into());
    arr(&kek.unwrap_vec(wrapped).expect("AES-KW integrity check"))
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Oracle size math: C = H + P + 16 n, n = max(1, ceil(P / B)).
fn oracle_plaintext_len(object_len: u64, block_size: u64) -> u64 {
    let body = object_len - 116;
    let n = body.div_ceil(block_size + 16).max(1);
    let p = body - 16 * n;
    assert_eq!(p.div_ceil(block_size).max(1), n, "no valid block count");
    p
}

struct OracleObject {
    ctx: Vec<u8>,
    wrap_key: [u8; 32],
    k_data: [u8; 32],
    prk_hkdf: Hkdf<Sha256>,
}

impl OracleObject {
    /// Parses the header (FORMAT.md layout) and derives the object keys.
    fn derive(generation_key: &[u8; 32], vault_id: &[u8; 16], header: &[u8]) -> OracleObject {
        assert_eq!(header.len(), 116);
        assert_eq!(&header[0..4], b"S3CF");
        assert_eq!(header[4], 1, "version");
        assert_eq!(header[5], 1, "suite");
        assert_eq!(header[7], 0, "flags");
        let salt = &header[12..44];
        let wrapped_dek = &header[44..84];
        let ctx = cat(&[&header[0..12], vault_id]);
        let wrap_key = oracle_hkdf(generation_key, salt, &cat(&[b"s3cryptfs v1 wrap", &ctx]));
        let dek = oracle_unwrap(&wrap_key, wrapped_dek);
        let prk_hkdf = Hkdf::<Sha256>::new(Some(salt), &dek);
        let mut k_data = [0u8; 32];
        prk_hkdf
            .expand(&cat(&[b"s3cryptfs v1 data", &ctx]), &mut k_data)
            .unwrap();
        OracleObject {
            ctx,
            wrap_key,
            k_data,
            prk_hkdf,
        }
    }

    fn commit(&self, plaintext_len: u64) -> [u8; 32] {
        let mut out = [0u8; 32];
        self.prk_hkdf
            .expand(
                &cat(&[
                    b"s3cryptfs v1 commit",
                    &self.ctx,
                    &plaintext_len.to_be_bytes(),
                ]),
                &mut out,
            )
            .unwrap();
        out
    }
}

/// Decrypts a whole object with the oracle.
fn oracle_open(generation_key: &[u8; 32], vault_id: &[u8; 16], object: &[u8]) -> Vec<u8> {
    let header = &object[..116];
    let block_size = 1u64 << header[6];
    let o = OracleObject::derive(generation_key, vault_id, header);
    let p = oracle_plaintext_len(object.len() as u64, block_size);
    assert_eq!(o.commit(p), header[84..116], "commitment");

    let gcm = Aes256Gcm::new_from_slice(&o.k_data).unwrap();
    let n = p.div_ceil(block_size).max(1);
    let mut out = Vec::new();
    let mut pos = 116usize;
    for i in 0..n {
        let plain_len = (p - i * block_size).min(block_size) as usize;
        let ct = &object[pos..pos + plain_len + 16];
        pos += plain_len + 16;
        let mut nonce = [0u8; 12];
        nonce[..8].copy_from_slice(&i.to_be_bytes());
        nonce[11] = u8::from(i + 1 == n);
        let pt = gcm
            .decrypt(Nonce::from_slice(&nonce), Payload { msg: ct, aad: b"" })
            .unwrap_or_else(|_| panic!("block {i} fails GCM authentication"));
        out.extend_from_slice(&pt);
    }
    assert_eq!(pos, object.len());
    out
}

/// The oracle's view of the vault config: key file → slot KEK → VMK → generation key, plus
/// the config MAC.
fn oracle_unlock(config: &Value, key_file: &[u8]) -> ([u8; 32], [u8; 32]) {
    assert_eq!(config["format_version"], 1);
    let vault_id = hex_field(config, "vault_id");
    let slot = &config["slots"][0];
    assert_eq!(slot["kind"], "key_file");
    let kek = oracle_hkdf(
        key_file,
        &hex_field(slot, "salt"),
        b"s3cryptfs v1 key-file slot",
    );
    let vmk = oracle_unwrap(&kek, &hex_field(slot, "wrapped_vmk"));

    let gen_entry = &config["generations"][0];
    assert_eq!(gen_entry["generation"], 1);
    let gen_wrap = oracle_hkdf(&vmk, &vault_id, b"s3cryptfs v1 generation wrap");
    let generation_key = oracle_unwrap(&gen_wrap, &hex_field(gen_entry, "wrapped_key"));

    // MAC over the binary encoding of FORMAT.md.
    let label = slot["label"].as_str().unwrap().as_bytes();
    let mac_input = cat(&[
        b"s3cryptfs v1 config",
        &1u32.to_be_bytes(),
        &vault_id,
        &(config["block_size"].as_u64().unwrap() as u32).to_be_bytes(),
        &(config["current_generation"].as_u64().unwrap() as u32).to_be_bytes(),
        &1u64.to_be_bytes(),
        &1u32.to_be_bytes(),
        &hex_field(gen_entry, "wrapped_key"),
        &1u64.to_be_bytes(),
        &[1u8],
        &(label.len() as u64).to_be_bytes(),
        label,
        &hex_field(slot, "salt"),
        &hex_field(slot, "wrapped_vmk"),
    ]);
    let mac_key = oracle_hkdf(&vmk, &vault_id, b"s3cryptfs v1 config mac");
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&mac_key).unwrap();
    mac.update(&mac_input);
    mac.verify_slice(&hex_field(config, "mac"))
        .expect("config MAC");
    (vmk, generation_key)
}

#[test]
fn format_vectors() {
    if std::env::var("S3CRYPTFS_REGEN_VECTORS").as_deref() == Ok("1") {
        regenerate();
    }
    let inputs = vault_inputs();

    // Vault: the oracle unlocks the stored config with the key file.
    let vault = read_json("vault.json");
    let key_file = hex_field(&vault, "key_file_hex");
    assert_eq!(key_file, inputs.key_file);
    let (vmk, generation_key) = oracle_unlock(&vault["config"], &key_file);
    assert_eq!(vmk, inputs.vmk);
    assert_eq!(generation_key, inputs.generation_key);
    assert_eq!(
        hex_field(&vault, "generation_key_hex"),
        inputs.generation_key
    );

    // Production: the same fixed inputs give the same config, which unlocks.
    let (config, keys) = production_vault(&inputs);
    let produced: Value = serde_json::from_slice(&config.to_bytes()).unwrap();
    assert_eq!(
        produced, vault["config"],
        "config JSON differs from the vector"
    );
    let stored = serde_json::to_vec(&vault["config"]).unwrap();
    let unlocked = VaultConfig::from_bytes(&stored)
        .unwrap()
        .unlock(&Secret::KeyFile(Zeroizing::new(inputs.key_file)))
        .unwrap();
    assert_eq!(unlocked.vault_id(), inputs.vault_id);

    for o in object_inputs() {
        let v = read_json(o.file);
        let object = hex_field(&v, "object_hex");
        let header = hex_field(&v, "header_hex");
        let plaintext = hex_field(&v, "plaintext_hex");
        assert_eq!(plaintext, o.plaintext, "{}", o.file);
        assert_eq!(header, object[..116], "{}", o.file);
        assert_eq!(v["object_len"].as_u64().unwrap(), object.len() as u64);
        assert_eq!(hex_field(&v, "dek_hex"), o.dek);
        assert_eq!(hex_field(&v, "salt_hex"), o.salt);

        // (1) The oracle decrypts the vector and agrees on every intermediate value.
        assert_eq!(
            oracle_open(&generation_key, &inputs.vault_id, &object),
            o.plaintext,
            "{}",
            o.file
        );
        let oracle = OracleObject::derive(&generation_key, &inputs.vault_id, &header);
        assert_eq!(hex_field(&v, "ctx_hex"), oracle.ctx);
        assert_eq!(hex_field(&v, "wrap_key_hex"), oracle.wrap_key);
        assert_eq!(hex_field(&v, "k_data_hex"), oracle.k_data);
        assert_eq!(
            hex_field(&v, "commit_hex"),
            oracle.commit(o.plaintext.len() as u64)
        );
        assert_eq!(header[12..44], o.salt);

        // (2) Production output is byte-identical and opens, under the fixed keys and under
        // the keys unlocked from the stored config.
        let sealer = ObjectSealer::with_fixed_material(&keys, o.dek, o.salt).unwrap();
        let produced = format::seal_all_with(&sealer, &o.plaintext).unwrap();
        assert!(produced == object, "{}: production bytes differ", o.file);
        assert_eq!(format::open_all(&keys, &object).unwrap(), o.plaintext);
        assert_eq!(format::open_all(&unlocked, &object).unwrap(), o.plaintext);
        assert_eq!(
            format::plaintext_len(object.len() as u64, BLOCK_SIZE),
            Some(o.plaintext.len() as u64)
        );
    }
}
