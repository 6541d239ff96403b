//! Per-operation request and byte counters a store may keep ([`RequestStats`]), and the
//! snapshots [`ObjectStore::stats`](super::ObjectStore::stats) returns.
//!
//! Lock-free atomics: every request records, so counting must not contend.

use std::sync::atomic::{AtomicU64, Ordering};

/// How many operations [`RequestStats`] counts.
const OPS: usize = 11;

/// The operations counted by [`RequestStats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Head,
    Get,
    Put,
    CreateMultipart,
    UploadPart,
    CompleteMultipart,
    AbortMultipart,
    List,
    Copy,
    Delete,
    /// One DeleteObjects request (up to 1,000 keys).
    DeleteBatch,
}

impl Op {
    pub const ALL: [Op; OPS] = [
        Op::Head,
        Op::Get,
        Op::Put,
        Op::CreateMultipart,
        Op::UploadPart,
        Op::CompleteMultipart,
        Op::AbortMultipart,
        Op::List,
        Op::Copy,
        Op::Delete,
        Op::DeleteBatch,
    ];
    fn index(self) -> usize {
        self as usize
    }

    /// The name status reports and metrics labels use.
    pub fn name(self) -> &'static str {
        match self {
            Op::Head => "head",
            Op::Get => "get",
            Op::Put => "put",
            Op::CreateMultipart => "create_multipart",
            Op::UploadPart => "upload_part",
            Op::CompleteMultipart => "complete_multipart",
            Op::AbortMultipart => "abort_multipart",
            Op::List => "list",
            Op::Copy => "copy",
            Op::Delete => "delete",
            Op::DeleteBatch => "delete_batch",
        }
    }
}

/// Lock-free per-operation counters of requests and body bytes (sent for PUT/part, received
/// for GET).
#[derive(Debug, Default)]
pub struct RequestStats {
    requests: [AtomicU64; OPS],
    bytes: [AtomicU64; OPS],
}

impl RequestStats {
    pub fn record(&self, op: Op, bytes: u64) {
        self.requests[op.index()].fetch_add(1, Ordering::Relaxed);
        self.bytes[op.index()].fetch_add(bytes, Ordering::Relaxed);
    }
    pub fn snapshot(&self) -> StatsSnapshot {
        let mut s = StatsSnapshot::default();
        for op in Op::ALL {
            s.requests[op.index()] = self.requests[op.index()].load(Ordering::Relaxed);
            s.bytes[op.index()] = self.bytes[op.index()].load(Ordering::Relaxed);
        }
        s
    }
    pub fn reset(&self) {
        for op in Op::ALL {
            self.requests[op.index()].store(0, Ordering::Relaxed);
            self.bytes[op.index()].store(0, Ordering::Relaxed);
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    requests: [u64; OPS],
    bytes: [u64; OPS],
}

impl StatsSnapshot {
    pub fn requests(&self, op: Op) -> u64 {
        self.requests[op.index()]
    }
    pub fn bytes(&self, op: Op) -> u64 {
        self.bytes[op.index()]
    }
    pub fn total_requests(&self) -> u64 {
        self.requests.iter().sum()
    }
    /// Counters since `earlier`.
    pub fn since(&self, earlier: &StatsSnapshot) -> StatsSnapshot {
        let mut s = *self;
        for i in 0..OPS {
            s.requests[i] -= earlier.requests[i];
            s.bytes[i] -= earlier.bytes[i];
        }
        s
    }
}
