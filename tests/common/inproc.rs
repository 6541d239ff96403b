//! A real kernel mount served by this test process: `Fs` over any store, behind fuser, on a
//! dedicated tokio runtime. The vault config is written to the store on first mount and
//! unlocked from it on every remount, as `s3cryptfs mount` does.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fuser::MountOption;
use s3cryptfs::crypto::{PassphraseParams, Secret, VaultConfig};
use s3cryptfs::fuse::FuseAdapter;
use s3cryptfs::store::{DynStore, PutOptions, StoreError};
use tempfile::TempDir;
use zeroize::Zeroizing;

use super::memfs;
use super::{force_unmount, is_mounted, require_fuse, wait_until};

/// Key of the vault config object (the in-process mounts use an empty prefix).
pub const VAULT_CONFIG_KEY: &str = ".s3cryptfs/config";
/// Block size of the in-process vaults.
pub const BLOCK_SIZE: u32 = 65536;

fn test_secret() -> Secret {
    Secret::KeyFile(Zeroizing::new([7u8; 32]))
}

/// A mounted vault; unmounted on drop.
pub struct MountedFs {
    /// Holds `mnt/` and `staging/`.
    dir: TempDir,
    pub mountpoint: PathBuf,
    /// Where the file system stages open files (must never hold plaintext).
    pub staging_dir: PathBuf,
    pub store: DynStore,
    session: Option<fuser::BackgroundSession>,
    runtime: Option<tokio::runtime::Runtime>,
    /// A vault this mount creates encrypts its names (as `s3cryptfs init` does by default).
    encrypted_names: bool,
    /// The file system's `metadata_ttl` (the default, 1 s, unless a test asks otherwise).
    metadata_ttl: Duration,
}

/// Mounts the vault in `store` (creating it with plaintext names if the store holds none) at
/// a fresh mount point.
pub fn mount_in_process(store: DynStore) -> MountedFs {
    mount_in_process_with(store, false)
}

/// [`mount_in_process`]; a vault it creates has encrypted names when `encrypted_names`.
pub fn mount_in_process_with(store: DynStore, encrypted_names: bool) -> MountedFs {
    let ttl = memfs::options(PathBuf::new()).metadata_ttl;
    mount_in_process_with_ttl(store, encrypted_names, ttl)
}

/// [`mount_in_process_with`] with cached attributes and listings kept for `metadata_ttl`: a
/// test that counts the requests of operations whose caches it has just filled must not see
/// them expire because the machine was slow.
pub fn mount_in_process_with_ttl(
    store: DynStore,
    encrypted_names: bool,
    metadata_ttl: Duration,
) -> MountedFs {
    require_fuse();
    let dir = tempfile::Builder::new()
        .prefix("s3cryptfs-test-")
        .tempdir()
        .expect("create temp dir");
    let mountpoint = dir.path().join("mnt");
    let staging_dir = dir.path().join("staging");
    std::fs::create_dir(&mountpoint).expect("create mount point");
    std::fs::create_dir(&staging_dir).expect("create staging dir");
    let mut m = MountedFs {
        dir,
        mountpoint,
        staging_dir,
        store,
        session: None,
        runtime: None,
        encrypted_names,
        metadata_ttl,
    };
    m.mount();
    m
}

impl MountedFs {
    /// `rel` inside the mount.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.mountpoint.join(rel)
    }

    /// A scratch directory outside the mount, removed with the mount.
    pub fn scratch(&self) -> PathBuf {
        let p = self.dir.path().join("scratch");
        std::fs::create_dir_all(&p).expect("create scratch dir");
        p
    }

    /// Mounts again (after `unmount`).
    pub fn mount(&mut self) {
        assert!(self.session.is_none(), "already mounted");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("s3cryptfs-test-rt")
            .enable_all()
            .build()
            .expect("build tokio runtime");
        let store = self.store.clone();
        let encrypted_names = self.encrypted_names;
        let keys = runtime.block_on(async move {
            match store.get(VAULT_CONFIG_KEY, None, None).await {
                Ok(out) => VaultConfig::from_bytes(&out.data)
                    .expect("parse vault config")
                    .unlock(&test_secret())
                    .expect("unlock vault"),
                Err(StoreError::NotFound { .. }) => {
                    let (config, keys) = VaultConfig::create_with_names(
                        &test_secret(),
                        BLOCK_SIZE,
                        PassphraseParams::default(),
                        encrypted_names,
                    )
                    .expect("create vault");
                    store
                        .put(
                            VAULT_CONFIG_KEY,
                            Bytes::from(config.to_bytes()),
                            PutOptions::default(),
                        )
                        .await
                        .expect("store vault config");
                    keys
                }
                Err(e) => panic!("read vault config: {e}"),
            }
        });
        let mut opts = memfs::options(self.staging_dir.clone());
        opts.metadata_ttl = self.metadata_ttl;
        let fs = memfs::fs_with(self.store.clone(), Arc::new(keys), opts);
        let adapter = FuseAdapter::new(fs, runtime.handle().clone());
        let mut config = fuser::Config::default();
        config.mount_options = vec![
            MountOption::FSName("s3cryptfs-test".into()),
            MountOption::Subtype("s3cryptfs".into()),
            MountOption::DefaultPermissions,
        ];
        config.n_threads = Some(2);
        let session = fuser::Session::new(adapter, &self.mountpoint, &config)
            .unwrap_or_else(|e| panic!("mount {}: {e}", self.mountpoint.display()))
            .spawn()
            .expect("start FUSE session thread");
        assert!(
            wait_until(Duration::from_secs(10), || is_mounted(&self.mountpoint)),
            "{} is not in /proc/self/mountinfo after mounting",
            self.mountpoint.display()
        );
        self.session = Some(session);
        self.runtime = Some(runtime);
    }

    /// Unmounts (every file must be closed) and stops the file system.
    pub fn unmount(&mut self) {
        let Some(session) = self.session.take() else {
            return;
        };
        if let Err(e) = session.umount_and_join() {
            eprintln!(
                "unmount of {} failed ({e}); detaching it lazily",
                self.mountpoint.display()
            );
            force_unmount(&self.mountpoint);
        }
        assert!(
            wait_until(Duration::from_secs(10), || !is_mounted(&self.mountpoint)),
            "{} still mounted after unmount",
            self.mountpoint.display()
        );
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }

    /// Unmounts and mounts the same store again: nothing survives but what is in the store.
    pub fn remount(&mut self) {
        self.unmount();
        self.mount();
    }
}

impl Drop for MountedFs {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Never hang a failing test on a busy mount.
            force_unmount(&self.mountpoint);
            if let Some(s) = self.session.take() {
                drop(s);
            }
            if let Some(rt) = self.runtime.take() {
                rt.shutdown_background();
            }
        } else {
            self.unmount();
        }
    }
}
