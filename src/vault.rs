//! The vault: where `store` meets `crypto`. Creates and opens the vault config object
//! (`PREFIX/.s3cryptfs/config`) and reads the secret that unlocks it (`secret.rs`, [`secret::SecretSource`]).
//!
//! `init` writes the config with `If-None-Match: *`, so two concurrent inits cannot clobber
//! each other (the loser gets "a vault already exists"). Secrets come from a key file, a
//! passphrase file, the environment or a prompt — never from argv; which one is the front's
//! choice (`app::resolve`), and the terminal is the front's too.
//!
//! Every unlock ([`open_vault`], [`unlock_config`]) goes through a [`RollbackGuard`]
//! (`rollback.rs`) once the config's MAC verified: a config older than one this machine has
//! seen is refused ([`VaultError::Rollback`]), and [`save_config`] remembers the config it
//! saved.

use bytes::Bytes;

use crate::crypto::keys::PassphraseParams;
use crate::crypto::{CryptoError, Secret, VaultConfig, VaultKeys};
use crate::store::{GetOutput, ObjectStore, PutOptions, StoreError};

pub mod kms;
pub mod rollback;
pub mod secret;

pub use rollback::RollbackGuard;

/// Key of the vault config object, relative to the mount's prefix.
pub const VAULT_CONFIG_KEY: &str = ".s3cryptfs/config";

/// The largest vault config object read (a real one is a few KiB: one slot is about 300
/// bytes). The object comes from the bucket, so it is fetched with a range that says so.
pub const MAX_CONFIG_BYTES: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(
        "a vault already exists at {location} ({VAULT_CONFIG_KEY} is present); refusing to overwrite it"
    )]
    AlreadyExists { location: String },
    #[error(
        "no s3cryptfs vault at {location} (missing {VAULT_CONFIG_KEY}); create one with `s3cryptfs init {location}`"
    )]
    Missing { location: String },
    #[error("wrong key for the vault at {location}: {reason}")]
    WrongKey { location: String, reason: String },
    #[error("the vault config at {location} is unusable: {source}")]
    BadConfig {
        location: String,
        #[source]
        source: CryptoError,
    },
    /// The config object is larger than [`MAX_CONFIG_BYTES`]; only that much was read.
    #[error(
        "{location}: vault config is larger than 64 KiB (one s3cryptfs writes is a few KiB); \
         refusing to use it"
    )]
    TooLarge { location: String },
    #[error("store {location}: {source}")]
    Store {
        location: String,
        #[source]
        source: StoreError,
    },
    /// Reading or creating a key or passphrase file, or creating keys.
    #[error(transparent)]
    Secret(#[from] CryptoError),
    /// No secret could be had, or the passphrase given is unusable (the message says which).
    #[error("{0}")]
    Passphrase(String),
    /// The config changed between reading and saving it (another key change ran meanwhile).
    #[error(
        "the vault config at {location} was changed by someone else while this command ran; \
         nothing was saved: run the command again"
    )]
    ConcurrentChange { location: String },
    /// A KMS slot could not be opened: KMS refused (`unreachable` false: the exit status of a
    /// wrong key) or could not be reached. `reason` names the key and the fix.
    #[error("KMS cannot unlock the vault at {location}: {reason}")]
    Kms {
        location: String,
        reason: String,
        unreachable: bool,
    },
    /// The config's counter is lower than the highest this machine has seen for the vault.
    #[error(
        "config rollback detected for the vault at {location}: this machine has seen a newer \
         vault config (seen {seen}, got {got}); an older config put back can undo a key \
         rotation, bring back a retired key or a changed passphrase. If the older config was \
         restored on purpose, accept it with --accept-config-rollback (or [encryption] \
         accept_config_rollback = true in the config file)"
    )]
    Rollback {
        location: String,
        seen: u64,
        got: u64,
    },
}

impl VaultError {
    /// Name the vault by its store URL instead of the config object's key in messages.
    pub fn with_location(self, url: &str) -> Self {
        let location = url.to_owned();
        match self {
            VaultError::AlreadyExists { .. } => VaultError::AlreadyExists { location },
            VaultError::Missing { .. } => VaultError::Missing { location },
            VaultError::WrongKey { reason, .. } => VaultError::WrongKey { location, reason },
            VaultError::Kms {
                reason,
                unreachable,
                ..
            } => VaultError::Kms {
                location,
                reason,
                unreachable,
            },
            VaultError::BadConfig { source, .. } => VaultError::BadConfig { location, source },
            VaultError::Store { source, .. } => VaultError::Store { location, source },
            VaultError::TooLarge { .. } => VaultError::TooLarge { location },
            VaultError::ConcurrentChange { .. } => VaultError::ConcurrentChange { location },
            VaultError::Rollback { seen, got, .. } => VaultError::Rollback {
                location,
                seen,
                got,
            },
            other => other,
        }
    }

    pub fn is_wrong_key(&self) -> bool {
        matches!(self, VaultError::WrongKey { .. })
    }

    /// KMS refused to open the vault's KMS slot (disabled key, access denied, ...): exits as a
    /// wrong key does.
    pub fn is_kms_refused(&self) -> bool {
        matches!(
            self,
            VaultError::Kms {
                unreachable: false,
                ..
            }
        )
    }

    /// KMS could not be reached to open the vault's KMS slot.
    pub fn is_kms_unreachable(&self) -> bool {
        matches!(
            self,
            VaultError::Kms {
                unreachable: true,
                ..
            }
        )
    }

    /// A config older than one this machine has seen ([`RollbackGuard`]).
    pub fn is_rollback(&self) -> bool {
        matches!(self, VaultError::Rollback { .. })
    }
}

pub type VaultResult<T> = Result<T, VaultError>;

/// The full key of the vault config object under `prefix` ("" or "a/b" or "a/b/").
pub fn config_key(prefix: &str) -> String {
    if prefix.is_empty() || prefix.ends_with('/') {
        format!("{prefix}{VAULT_CONFIG_KEY}")
    } else {
        format!("{prefix}/{VAULT_CONFIG_KEY}")
    }
}

fn store_err(key: &str, source: StoreError) -> VaultError {
    VaultError::Store {
        location: key.to_owned(),
        source,
    }
}

/// Whether a vault config object exists under `prefix`.
pub async fn vault_exists(store: &dyn ObjectStore, prefix: &str) -> VaultResult<bool> {
    let key = config_key(prefix);
    match store.head(&key).await {
        Ok(_) => Ok(true),
        Err(StoreError::NotFound { .. }) => Ok(false),
        Err(e) => Err(store_err(&key, e)),
    }
}

/// Create a vault under `prefix`: a new vault config with one slot for `secret`.
pub async fn init_vault(
    store: &dyn ObjectStore,
    prefix: &str,
    secret: &Secret,
    block_size: u32,
) -> VaultResult<VaultKeys> {
    init_vault_with_params(
        store,
        prefix,
        secret,
        block_size,
        PassphraseParams::default(),
    )
    .await
}

/// [`init_vault`] with chosen argon2id costs for a passphrase slot (tests use cheap ones).
pub async fn init_vault_with_params(
    store: &dyn ObjectStore,
    prefix: &str,
    secret: &Secret,
    block_size: u32,
    params: PassphraseParams,
) -> VaultResult<VaultKeys> {
    init_vault_with(store, prefix, secret, block_size, params, false).await
}

/// [`init_vault_with_params`] with encrypted (`true`) or plaintext file names
/// (`init --plain-names`).
pub async fn init_vault_with(
    store: &dyn ObjectStore,
    prefix: &str,
    secret: &Secret,
    block_size: u32,
    params: PassphraseParams,
    encrypted_names: bool,
) -> VaultResult<VaultKeys> {
    let key = config_key(prefix);
    // Checked first so an existing vault is reported without spending an argon2 run; the
    // conditional PUT below is what makes it safe against a concurrent init.
    if vault_exists(store, prefix).await? {
        return Err(VaultError::AlreadyExists { location: key });
    }
    let (config, keys) =
        VaultConfig::create_with_names(secret, block_size, params, encrypted_names)
            .map_err(|e| crypto_err(&key, e))?;
    put_new_config(store, &key, &config).await?;
    Ok(keys)
}

/// Create a vault under `prefix` unlocked by `secret` (its first slot, "initial") and by
/// `recovery` (a second slot, "recovery"): `init --kms-key-id` with a key file or passphrase
/// that opens the vault when KMS cannot.
pub async fn init_vault_with_recovery(
    store: &dyn ObjectStore,
    prefix: &str,
    secret: &Secret,
    recovery: &Secret,
    block_size: u32,
    encrypted_names: bool,
) -> VaultResult<VaultKeys> {
    let key = config_key(prefix);
    if vault_exists(store, prefix).await? {
        return Err(VaultError::AlreadyExists { location: key });
    }
    let made = VaultConfig::create_with_names(
        secret,
        block_size,
        PassphraseParams::default(),
        encrypted_names,
    )
    .and_then(|(mut config, keys)| {
        config.add_slot(&keys, recovery, "recovery")?;
        Ok((config, keys))
    });
    let (config, keys) = made.map_err(|e| crypto_err(&key, e))?;
    put_new_config(store, &key, &config).await?;
    Ok(keys)
}

/// A KMS failure as [`VaultError::Kms`] (so it exits as a wrong key, or as KMS unreachable);
/// any other error of making keys as it is.
fn crypto_err(key: &str, e: CryptoError) -> VaultError {
    match e {
        CryptoError::Kms { refused, message } => VaultError::Kms {
            location: key.to_owned(),
            reason: message,
            unreachable: !refused,
        },
        other => VaultError::Secret(other),
    }
}

/// Write the config of a new vault, unless one exists (`If-None-Match: *`).
async fn put_new_config(
    store: &dyn ObjectStore,
    key: &str,
    config: &VaultConfig,
) -> VaultResult<()> {
    let opts = PutOptions {
        if_none_match: true,
        ..PutOptions::default()
    };
    match store.put(key, Bytes::from(config.to_bytes()), opts).await {
        Ok(_) => Ok(()),
        Err(StoreError::PreconditionFailed { .. }) => Err(VaultError::AlreadyExists {
            location: key.to_owned(),
        }),
        Err(e) => Err(store_err(key, e)),
    }
}

/// GET the config object at `key`, at most [`MAX_CONFIG_BYTES`] of it: one byte more is
/// asked for, so that a larger object is told from one of exactly that size without reading
/// it (the store caps bodies at the range asked for).
async fn fetch_config(store: &dyn ObjectStore, key: &str) -> VaultResult<GetOutput> {
    let got = match store.get(key, Some(0..MAX_CONFIG_BYTES + 1), None).await {
        Ok(out) => out,
        Err(StoreError::NotFound { .. }) => {
            return Err(VaultError::Missing {
                location: key.to_owned(),
            });
        }
        Err(e) => return Err(store_err(key, e)),
    };
    if got.data.len() as u64 > MAX_CONFIG_BYTES || got.info.size > MAX_CONFIG_BYTES {
        return Err(VaultError::TooLarge {
            location: key.to_owned(),
        });
    }
    Ok(got)
}

/// Read the vault config under `prefix` and unlock it with `secret`; `guard` refuses a
/// config older than one this machine has seen.
pub async fn open_vault(
    store: &dyn ObjectStore,
    prefix: &str,
    secret: &Secret,
    guard: &RollbackGuard,
) -> VaultResult<VaultKeys> {
    let stored = load_config(store, prefix).await?;
    unlock_config(&stored, prefix, secret, guard)
}

/// `guard`'s rollback check of a config whose MAC verified; `key` names it in the error.
fn check_rollback(guard: &RollbackGuard, config: &VaultConfig, key: &str) -> VaultResult<()> {
    guard
        .check(config, key)
        .map_err(|rollback::Rollback { seen, got }| VaultError::Rollback {
            location: key.to_owned(),
            seen,
            got,
        })
}

/// Re-read the config of a vault open with `keys` (a running mount, on SIGHUP): its MAC must
/// verify under those keys, then `guard` refuses it if it is older than one this machine has
/// seen, and remembers its counter if it is newer. Returns that counter.
pub async fn recheck_config(
    store: &dyn ObjectStore,
    prefix: &str,
    keys: &VaultKeys,
    guard: &RollbackGuard,
) -> VaultResult<u64> {
    let stored = load_config(store, prefix).await?;
    let key = config_key(prefix);
    stored
        .config
        .verify_with(keys)
        .map_err(|source| VaultError::BadConfig {
            location: key.clone(),
            source,
        })?;
    check_rollback(guard, &stored.config, &key)?;
    Ok(stored.config.config_counter())
}

/// The vault config as stored, with the ETag it was read at (for [`save_config`]).
#[derive(Debug)]
pub struct StoredConfig {
    pub config: VaultConfig,
    pub etag: String,
    /// Size of the config object in bytes.
    pub size: u64,
}

/// Read and parse the vault config under `prefix` (without unlocking it).
pub async fn load_config(store: &dyn ObjectStore, prefix: &str) -> VaultResult<StoredConfig> {
    let key = config_key(prefix);
    let got = fetch_config(store, &key).await?;
    let config = VaultConfig::from_bytes(&got.data).map_err(|source| VaultError::BadConfig {
        location: key.clone(),
        source,
    })?;
    Ok(StoredConfig {
        config,
        etag: got.info.etag,
        size: got.info.size,
    })
}

/// Unlock a config read by [`load_config`]: the slot, the MAC, the generation keys, then
/// `guard`'s rollback check (the one place every command's unlock goes through).
pub fn unlock_config(
    stored: &StoredConfig,
    prefix: &str,
    secret: &Secret,
    guard: &RollbackGuard,
) -> VaultResult<VaultKeys> {
    let key = config_key(prefix);
    let keys = stored.config.unlock(secret).map_err(|e| match e {
        CryptoError::WrongKey(reason) => VaultError::WrongKey {
            location: key.clone(),
            reason,
        },
        e @ CryptoError::Kms { .. } => crypto_err(&key, e),
        source => VaultError::BadConfig {
            location: key.clone(),
            source,
        },
    })?;
    // Only now is the config known to be the vault's own (MAC verified).
    check_rollback(guard, &stored.config, &key)?;
    Ok(keys)
}

/// Save a changed config over the one read at `etag` (`If-Match`), so two concurrent key
/// changes cannot silently undo each other: the later one fails with
/// [`VaultError::ConcurrentChange`]. Returns the new ETag. `guard` remembers the saved
/// config's counter, so this machine refuses the config it replaced from now on.
pub async fn save_config(
    store: &dyn ObjectStore,
    prefix: &str,
    config: &VaultConfig,
    etag: &str,
    guard: &RollbackGuard,
) -> VaultResult<String> {
    let key = config_key(prefix);
    let opts = PutOptions {
        if_match: Some(etag.to_owned()),
        ..PutOptions::default()
    };
    match store.put(&key, Bytes::from(config.to_bytes()), opts).await {
        Ok(out) => {
            guard.record(config);
            Ok(out.etag)
        }
        Err(StoreError::PreconditionFailed { .. } | StoreError::NotFound { .. }) => {
            Err(VaultError::ConcurrentChange { location: key })
        }
        Err(e) => Err(store_err(&key, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use zeroize::Zeroizing;

    fn key(b: u8) -> Secret {
        Secret::KeyFile(Zeroizing::new([b; 32]))
    }

    /// No rollback state.
    fn none() -> RollbackGuard {
        RollbackGuard::default()
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn config_keys_under_prefixes() {
        assert_eq!(config_key(""), ".s3cryptfs/config");
        assert_eq!(config_key("a/b"), "a/b/.s3cryptfs/config");
        assert_eq!(config_key("a/b/"), "a/b/.s3cryptfs/config");
    }

    #[test]
    fn init_then_open() {
        block_on(async {
            let store = MemoryStore::new();
            let keys = init_vault(&*store, "p/", &key(1), 65536)
                .await
                .expect("init");
            assert!(vault_exists(&*store, "p/").await.expect("exists"));
            let again = open_vault(&*store, "p/", &key(1), &none())
                .await
                .expect("open");
            assert_eq!(again.vault_id(), keys.vault_id());
            assert_eq!(again.block_size(), 65536);
        });
    }

    #[test]
    fn second_init_is_refused() {
        block_on(async {
            let store = MemoryStore::new();
            init_vault(&*store, "", &key(1), 65536).await.expect("init");
            let e = init_vault(&*store, "", &key(2), 65536)
                .await
                .expect_err("second init");
            assert!(matches!(e, VaultError::AlreadyExists { .. }));
            let msg = e.with_location("mem://x").to_string();
            assert!(msg.contains("already exists at mem://x"), "{msg}");
            // The first vault is untouched.
            open_vault(&*store, "", &key(1), &none())
                .await
                .expect("still opens");
        });
    }

    #[test]
    fn wrong_key_and_missing_vault() {
        block_on(async {
            let store = MemoryStore::new();
            let e = open_vault(&*store, "", &key(1), &none())
                .await
                .expect_err("missing");
            let msg = e.with_location("file:///v").to_string();
            assert!(msg.contains("no s3cryptfs vault at file:///v"), "{msg}");
            assert!(msg.contains("s3cryptfs init file:///v"), "{msg}");

            init_vault(&*store, "", &key(1), 65536).await.expect("init");
            let e = open_vault(&*store, "", &key(2), &none())
                .await
                .expect_err("wrong key");
            assert!(e.is_wrong_key());
            assert!(e.to_string().contains("wrong key"), "{e}");
            let pass = Secret::Passphrase(Zeroizing::new("hunter2".to_owned()));
            let e = open_vault(&*store, "", &pass, &none())
                .await
                .expect_err("wrong kind");
            assert!(e.to_string().contains("wrong key"), "{e}");
        });
    }

    #[test]
    fn passphrase_vault() {
        block_on(async {
            let store = MemoryStore::new();
            let pass = || Secret::Passphrase(Zeroizing::new("correct horse".to_owned()));
            init_vault_with_params(
                &*store,
                "",
                &pass(),
                65536,
                PassphraseParams::INSECURE_FOR_TESTS,
            )
            .await
            .expect("init");
            open_vault(&*store, "", &pass(), &none())
                .await
                .expect("open");
        });
    }

    #[test]
    fn config_saves_are_conditional() {
        block_on(async {
            let store = MemoryStore::new();
            let mut keys = init_vault(&*store, "p/", &key(1), 65536)
                .await
                .expect("init");
            let mut a = load_config(&*store, "p/").await.expect("load");
            let b = load_config(&*store, "p/").await.expect("load");
            a.config.add_generation(&mut keys).expect("rotate");
            save_config(&*store, "p/", &a.config, &a.etag, &none())
                .await
                .expect("first save");
            let mut other = b.config.clone();
            other.add_slot(&keys, &key(2), "late").expect("add slot");
            let e = save_config(&*store, "p/", &other, &b.etag, &none())
                .await
                .expect_err("stale etag");
            assert!(matches!(e, VaultError::ConcurrentChange { .. }), "{e}");
            let now = load_config(&*store, "p/").await.expect("load");
            assert_eq!(now.config.current_generation(), 2);
            assert_eq!(now.config.slots().len(), 1);
            unlock_config(&now, "p/", &key(1), &none()).expect("unlock");
            assert!(
                unlock_config(&now, "p/", &key(2), &none())
                    .expect_err("wrong")
                    .is_wrong_key()
            );
        });
    }

    #[test]
    fn garbage_config_is_reported() {
        block_on(async {
            let store = MemoryStore::new();
            store
                .put(
                    ".s3cryptfs/config",
                    Bytes::from_static(b"nope"),
                    PutOptions::default(),
                )
                .await
                .expect("put");
            let e = open_vault(&*store, "", &key(1), &none())
                .await
                .expect_err("garbage");
            assert!(matches!(e, VaultError::BadConfig { .. }), "{e}");
        });
    }

    #[test]
    fn a_config_put_back_after_a_rotation_is_refused() {
        block_on(async {
            let state = tempfile::tempdir().expect("tempdir");
            let guard = RollbackGuard::new(Some(state.path().to_path_buf()), false);
            let store = MemoryStore::new();
            let mut keys = init_vault(&*store, "", &key(1), 4096).await.expect("init");
            open_vault(&*store, "", &key(1), &guard)
                .await
                .expect("first sight");
            let old = store
                .get(".s3cryptfs/config", None, None)
                .await
                .expect("get")
                .data;
            let stored = load_config(&*store, "").await.expect("load");
            let mut config = stored.config.clone();
            config.add_generation(&mut keys).expect("rotate");
            save_config(&*store, "", &config, &stored.etag, &guard)
                .await
                .expect("save");
            open_vault(&*store, "", &key(1), &guard)
                .await
                .expect("the rotated config");

            store
                .put(".s3cryptfs/config", old, PutOptions::default())
                .await
                .expect("put back");
            let e = open_vault(&*store, "", &key(1), &guard)
                .await
                .expect_err("rolled back");
            assert!(e.is_rollback(), "{e}");
            let msg = e.with_location("mem://v").to_string();
            assert!(msg.contains("rollback detected"), "{msg}");
            assert!(msg.contains("mem://v"), "{msg}");
            assert!(msg.contains("(seen 1, got 0)"), "{msg}");
            assert!(msg.contains("--accept-config-rollback"), "{msg}");
            // A wrong key is still reported as such, before any rollback check.
            let e = open_vault(&*store, "", &key(2), &guard)
                .await
                .expect_err("wrong key");
            assert!(e.is_wrong_key(), "{e}");

            let accept = RollbackGuard::new(Some(state.path().to_path_buf()), true);
            let keys = open_vault(&*store, "", &key(1), &accept)
                .await
                .expect("accepted");
            assert_eq!(keys.current_generation(), 1);
            open_vault(&*store, "", &key(1), &guard)
                .await
                .expect("the accepted config is the new mark");
        });
    }

    #[test]
    fn a_running_mount_rechecks_the_config() {
        block_on(async {
            let state = tempfile::tempdir().expect("tempdir");
            let guard = RollbackGuard::new(Some(state.path().to_path_buf()), false);
            let store = MemoryStore::new();
            let mut keys = init_vault(&*store, "", &key(1), 4096).await.expect("init");
            let old = store
                .get(".s3cryptfs/config", None, None)
                .await
                .expect("get")
                .data;
            assert_eq!(
                recheck_config(&*store, "", &keys, &guard).await.expect("0"),
                0
            );
            // Rotated elsewhere: the newer counter is remembered.
            let stored = load_config(&*store, "").await.expect("load");
            let mut config = stored.config.clone();
            config.add_generation(&mut keys).expect("rotate");
            save_config(&*store, "", &config, &stored.etag, &none())
                .await
                .expect("save");
            assert_eq!(
                recheck_config(&*store, "", &keys, &guard).await.expect("1"),
                1
            );
            store
                .put(".s3cryptfs/config", old, PutOptions::default())
                .await
                .expect("put back");
            let e = recheck_config(&*store, "", &keys, &guard)
                .await
                .expect_err("rolled back");
            assert!(e.is_rollback(), "{e}");
            // Another vault's config is not this vault's.
            let other = MemoryStore::new();
            init_vault(&*other, "", &key(1), 4096).await.expect("init");
            let e = recheck_config(&*other, "", &keys, &guard)
                .await
                .expect_err("another vault");
            assert!(matches!(e, VaultError::BadConfig { .. }), "{e}");
        });
    }

    /// The stored config padded with trailing whitespace (still the same JSON) to `len` bytes.
    fn padded_config(store: &MemoryStore, len: usize) {
        let mut bytes = store.raw_get(".s3cryptfs/config").expect("config");
        assert!(bytes.len() <= len);
        bytes.resize(len, b' ');
        store.raw_put(".s3cryptfs/config", bytes);
    }

    #[test]
    fn a_config_over_64_kib_is_refused_and_never_read_whole() {
        block_on(async {
            let store = MemoryStore::new();
            init_vault(&*store, "", &key(1), 65536).await.expect("init");
            padded_config(&store, 64 * 1024);
            open_vault(&*store, "", &key(1), &none())
                .await
                .expect("64 KiB opens");
            load_config(&*store, "").await.expect("64 KiB loads");

            padded_config(&store, 8 * 1024 * 1024);
            store.reset_stats();
            let e = open_vault(&*store, "", &key(1), &none())
                .await
                .expect_err("8 MiB");
            assert!(matches!(e, VaultError::TooLarge { .. }), "{e}");
            let msg = e.with_location("mem://x").to_string();
            assert!(msg.contains("vault config is larger than 64 KiB"), "{msg}");
            assert!(msg.contains("mem://x"), "{msg}");
            let e = load_config(&*store, "").await.expect_err("8 MiB");
            assert!(matches!(e, VaultError::TooLarge { .. }), "{e}");
            let stats = store.stats().expect("stats");
            assert_eq!(stats.requests(crate::store::Op::Get), 2);
            assert!(
                stats.bytes(crate::store::Op::Get) <= 2 * (MAX_CONFIG_BYTES + 1),
                "{} bytes read",
                stats.bytes(crate::store::Op::Get)
            );
        });
    }

    /// A config as a hostile bucket could hold: argon2 costs no `init` writes, and 100 slots.
    /// The MAC cannot be checked before a slot opens, so these are refused on sight.
    fn hostile_config(store: &MemoryStore) {
        let bytes = store.raw_get(".s3cryptfs/config").expect("config");
        let mut json: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        let mut slot = json["slots"][0].clone();
        slot["m_cost_kib"] = 4_194_304.into();
        slot["t_cost"] = 64.into();
        json["slots"] = serde_json::Value::Array(vec![slot; 100]);
        store.raw_put(
            ".s3cryptfs/config",
            serde_json::to_vec(&json).expect("serialize"),
        );
    }

    #[test]
    fn hostile_argon2_costs_and_slot_counts_are_refused_before_any_kdf() {
        block_on(async {
            let store = MemoryStore::new();
            let pass = || Secret::Passphrase(Zeroizing::new("correct horse".to_owned()));
            init_vault_with_params(
                &*store,
                "",
                &pass(),
                65536,
                PassphraseParams::INSECURE_FOR_TESTS,
            )
            .await
            .expect("init");
            hostile_config(&store);
            let e = load_config(&*store, "").await.expect_err("hostile config");
            assert!(matches!(e, VaultError::BadConfig { .. }), "{e}");
            assert!(e.to_string().contains("100 key slots"), "{e}");
            // A key file tries no passphrase slot, so this ran no KDF even before the caps.
            let e = open_vault(&*store, "", &key(1), &none())
                .await
                .expect_err("hostile config");
            assert!(matches!(e, VaultError::BadConfig { .. }), "{e}");
            assert!(e.to_string().contains("100 key slots"), "{e}");
            let e = open_vault(&*store, "", &pass(), &none())
                .await
                .expect_err("hostile config");
            assert!(matches!(e, VaultError::BadConfig { .. }), "{e}");
            assert!(e.to_string().contains("100 key slots"), "{e}");
        });
    }
}
