//! The stores the conformance suite runs against. Adding a backend = one constructor here and
//! its name in the `conformance!` list of `tests/store_conformance.rs`.

use s3cryptfs::store::{DirStore, DynStore, MemoryStore};

/// A store under test, with whatever must live as long as it does.
pub struct Backend {
    pub store: DynStore,
    _dir: Option<tempfile::TempDir>,
}

/// A fresh in-process store.
pub async fn memory() -> Option<Backend> {
    Some(Backend {
        store: MemoryStore::new(),
        _dir: None,
    })
}

/// A fresh directory store in a temporary directory (removed when the backend drops).
pub async fn dir() -> Option<Backend> {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let store = DirStore::open(dir.path()).expect("open a directory store in an empty dir");
    Some(Backend {
        store: std::sync::Arc::new(store),
        _dir: Some(dir),
    })
}
