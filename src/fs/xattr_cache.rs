//! The caches of `xattr.rs`, owned by `Fs` (apart, so that `mod.rs` need not name
//! `xattr.rs`, which names `Fs`).

use std::collections::HashMap;
use std::sync::Arc;

use crate::crypto::format::xattr::{XattrArea, XattrMap};

/// Caches of this component, owned by `Fs`.
#[derive(Default)]
pub(crate) struct XattrCaches {
    pub(super) sidecars: std::sync::Mutex<HashMap<[u8; 16], Arc<XattrMap>>>,
    pub(super) dir_areas: std::sync::Mutex<HashMap<u64, XattrArea>>,
}

pub(super) fn bounded_insert<K: std::hash::Hash + Eq, V>(
    m: &std::sync::Mutex<HashMap<K, V>>,
    cap: usize,
    k: K,
    v: V,
) {
    let mut m = m.lock().unwrap_or_else(|p| p.into_inner());
    if m.len() >= cap {
        m.clear();
    }
    m.insert(k, v);
}
