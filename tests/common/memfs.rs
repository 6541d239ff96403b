//! A vault on a `MemoryStore` and the `Fs` over it, without a kernel: the fixture of the fs-layer
//! and tool tests, and the one place the tests build an `Fs`.
//!
//! Two ways to make the vault, as the code under test needs it: [`MemVault::create`] only makes
//! keys (the fs layer needs nothing else), [`MemVault::init`] stores the vault config the way
//! `s3cryptfs init` does (the tools unlock the vault from it).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use s3cryptfs::crypto::{Secret, VaultConfig, VaultKeys};
use s3cryptfs::fs::{Fs, FsOptions};
use s3cryptfs::store::{DynStore, MemoryStore};
use s3cryptfs::vault;
use tempfile::TempDir;
use zeroize::Zeroizing;

/// A vault on a fresh `MemoryStore`, with a staging directory for the `Fs`s over it (removed
/// when this drops).
pub struct MemVault {
    pub mem: Arc<MemoryStore>,
    pub keys: Arc<VaultKeys>,
    staging: TempDir,
}

impl MemVault {
    /// Keys for a key file of 32 `key_byte`s; the store stays empty.
    pub fn create(key_byte: u8, block_size: u32) -> MemVault {
        let secret = Secret::KeyFile(Zeroizing::new([key_byte; 32]));
        let (_config, keys) = VaultConfig::create(&secret, block_size).expect("vault");
        MemVault::with_keys(MemoryStore::new(), keys)
    }

    /// A vault initialized in the store with `secret`, as `s3cryptfs init` does.
    pub async fn init(secret: &Secret, block_size: u32) -> MemVault {
        let mem = MemoryStore::new();
        let keys = vault::init_vault(&*mem, "", secret, block_size)
            .await
            .expect("init");
        MemVault::with_keys(mem, keys)
    }

    fn with_keys(mem: Arc<MemoryStore>, keys: VaultKeys) -> MemVault {
        MemVault {
            mem,
            keys: Arc::new(keys),
            staging: tempfile::tempdir().expect("staging"),
        }
    }

    /// An `Fs` over the vault's store.
    pub fn fs(&self) -> Arc<Fs> {
        self.fs_over(self.mem.clone())
    }

    /// [`MemVault::fs`] with cached attributes and listings kept for `metadata_ttl`: a test
    /// that counts the requests of operations whose caches it has just filled must not see
    /// them expire because the machine was slow.
    pub fn fs_with_ttl(&self, metadata_ttl: Duration) -> Arc<Fs> {
        let mut opts = options(self.staging().to_path_buf());
        opts.metadata_ttl = metadata_ttl;
        fs_with(self.mem.clone(), self.keys.clone(), opts)
    }

    /// An `Fs` with the vault's keys over `store` (the vault's store behind a `FaultyStore`,
    /// say).
    pub fn fs_over(&self, store: DynStore) -> Arc<Fs> {
        fs_over(store, self.keys.clone(), self.staging())
    }

    /// Where the `Fs`s over this vault stage files.
    pub fn staging(&self) -> &Path {
        self.staging.path()
    }
}

/// An `Fs` over `store` (vault at the store's root) as the current user, staging in `staging`.
pub fn fs_over(store: DynStore, keys: Arc<VaultKeys>, staging: &Path) -> Arc<Fs> {
    fs_with(store, keys, options(staging.to_path_buf()))
}

/// The options of [`fs_over`]: the defaults, as the current user, staging in `staging`.
pub fn options(staging: PathBuf) -> FsOptions {
    FsOptions::for_current_user(staging)
}

/// An `Fs` over `store` (vault at the store's root) with `opts`.
pub fn fs_with(store: DynStore, keys: Arc<VaultKeys>, opts: FsOptions) -> Arc<Fs> {
    Fs::new(store, String::new(), keys, opts).expect("fs")
}
