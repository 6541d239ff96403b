use std::sync::Arc;

use super::*;
use crate::fs::block_cache::ByteLru;

const MIB: u64 = 1024 * 1024;

/// A budget whose reclaimer is a cache, as the block reader sets it up.
fn with_cache(limit: u64) -> (MemoryBudget, Arc<ByteLru<u64, u64>>) {
    let m = MemoryBudget::new(limit);
    let cache = Arc::new(ByteLru::new(limit));
    let weak = Arc::downgrade(&cache);
    m.set_reclaim(move |bytes| {
        if let Some(c) = weak.upgrade() {
            c.shrink(bytes);
        }
    });
    (m, cache)
}

/// Fail instead of hanging if the budget deadlocks (a generous bound, not a speed test).
async fn no_deadlock<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(std::time::Duration::from_secs(120), f)
        .await
        .expect("the memory budget deadlocked")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reservations_stay_within_the_limit() {
    let m = MemoryBudget::new(32 * MIB);
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let m = m.clone();
            tokio::spawn(async move {
                for k in 0..50u64 {
                    let r = m.acquire((1 + (i + k) % 8) * MIB).await;
                    tokio::task::yield_now().await;
                    drop(r);
                }
            })
        })
        .collect();
    no_deadlock(futures::future::join_all(tasks)).await;
    assert!(
        m.high_water() <= m.limit(),
        "{} > {}",
        m.high_water(),
        m.limit()
    );
    assert!(m.high_water() >= 8 * MIB);
    assert_eq!(m.in_use(), 0);
}

#[tokio::test]
async fn a_request_larger_than_the_budget_still_progresses() {
    let m = MemoryBudget::new(32 * MIB);
    let other = m.acquire(4 * MIB).await;
    let big = no_deadlock(m.acquire(100 * MIB)).await;
    assert_eq!(big.bytes(), 100 * MIB);
    drop((other, big));
    assert_eq!(m.in_use(), 0);
}

#[tokio::test]
async fn a_waiter_gets_what_the_cache_gives_back() {
    let (m, cache) = with_cache(32 * MIB);
    for key in 0..4 {
        let held = m.acquire(8 * MIB).await;
        cache.upsert(key, |_| (key, 8 * MIB), held, m.shortfall());
    }
    assert_eq!(m.in_use(), 32 * MIB);
    let r = no_deadlock(m.acquire(8 * MIB)).await;
    assert_eq!(cache.bytes(), 24 * MIB);
    assert_eq!(cache.get(&0), None, "the oldest entry went first");
    drop(r);
    assert!(m.high_water() <= 32 * MIB);
}

#[tokio::test]
async fn part_buffers_take_about_three_quarters_and_never_wait() {
    let m = MemoryBudget::new(32 * MIB);
    let held: Vec<_> = (0..2)
        .map(|_| m.try_buffer(10 * MIB).expect("room"))
        .collect();
    assert!(m.try_buffer(4 * MIB).is_none());
    // A quarter and a bit stays for the rest: an 8 MiB part and its tags.
    let r = no_deadlock(m.acquire(8 * MIB + 2048)).await;
    assert_eq!(m.in_use(), 28 * MIB + 2048);
    drop(held);
    assert!(m.try_buffer(8 * MIB).is_some());
    drop(r);
}

#[tokio::test]
async fn overdraw_never_waits_and_is_counted() {
    let m = MemoryBudget::new(32 * MIB);
    let full = m.acquire(8 * MIB + MIB / 2).await;
    let buffers = m.try_buffer(23 * MIB + MIB / 2).expect("room");
    let over = m.overdraw(MIB).await;
    assert_eq!(m.in_use(), 33 * MIB);
    drop((full, buffers, over));
    assert_eq!(m.in_use(), 0);
    // What was overdrawn took no permits: the whole budget is free again.
    let again = m.try_buffer(23 * MIB + MIB / 2);
    assert!(again.is_some());
}

/// Issue 17: overdrawn reservations past the limit never hold more than the slack (a
/// sixteenth of the limit) at once; one that would pass it waits for another to end, and an
/// overdrawn run that the limit has room for again moves there, giving its slack back.
#[tokio::test]
async fn overdraw_past_the_limit_is_bounded_by_the_slack() {
    use futures::FutureExt;
    let m = MemoryBudget::new(32 * MIB);
    assert_eq!(m.slack(), 2 * MIB);
    let full = m.acquire(8 * MIB + MIB / 2).await;
    let buffers = m.try_buffer(23 * MIB + MIB / 2).expect("room");
    let mut first = m.overdraw(2 * MIB).await;
    assert_eq!(m.in_use(), 34 * MIB);
    let mut second = Box::pin(m.overdraw(MIB));
    assert!((&mut second).now_or_never().is_none(), "passed the slack");
    // A run larger than the slack takes all of it and waits the same way.
    let mut large = Box::pin(m.overdraw(16 * MIB));
    assert!((&mut large).now_or_never().is_none(), "passed the slack");
    drop(large);
    // No room within the limit: it stays on the slack.
    assert!(!m.rebase(&mut first));
    drop(full);
    assert!(m.rebase(&mut first), "room within the limit again");
    let second = no_deadlock(second).await;
    assert_eq!(m.in_use(), 23 * MIB + MIB / 2 + 3 * MIB);
    drop((first, second, buffers));
    assert_eq!(m.in_use(), 0);
    assert!(m.high_water() <= 32 * MIB + m.slack());
    // Everything was given back to where it came from: the limit and the slack are free.
    let _all = m.try_buffer(23 * MIB + MIB / 2).expect("room");
    let _rest = m.acquire(8 * MIB + MIB / 2).await;
    let _slack = no_deadlock(m.overdraw(2 * MIB)).await;
}

/// Many files at once, each like a streaming writer: part buffers (try only, staged without
/// room), part bodies it waits for, and reads whose runs the cache keeps. All finish, and the
/// reserved bytes never pass the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_files_at_once_all_finish_within_the_limit() {
    let (m, cache) = with_cache(32 * MIB);
    let files: Vec<_> = (0..24u64)
        .map(|f| {
            let (m, cache) = (m.clone(), cache.clone());
            tokio::spawn(async move {
                let mut buffers = Vec::new();
                for part in 0..20u64 {
                    match m.try_buffer(8 * MIB) {
                        Some(b) => buffers.push(b),
                        None => {
                            // Staged instead: its body is reserved when it is sent.
                            let body = m.acquire(8 * MIB).await;
                            tokio::task::yield_now().await;
                            drop(body);
                        }
                    }
                    if buffers.len() > 2 {
                        buffers.remove(0);
                    }
                    let fetch = m.acquire(4 * MIB).await;
                    cache.upsert(f * 100 + part, |_| (part, 4 * MIB), fetch, m.shortfall());
                }
            })
        })
        .collect();
    no_deadlock(futures::future::join_all(files)).await;
    assert!(
        m.high_water() <= m.limit(),
        "{} > {}",
        m.high_water(),
        m.limit()
    );
    assert_eq!(m.in_use(), cache.bytes());
}

#[test]
fn attached_bytes_hold_the_reservation_until_the_last_is_dropped() {
    let m = MemoryBudget::new(32 * MIB);
    let r = m.try_buffer(MIB).expect("room");
    let b = r.attach(vec![7u8; MIB as usize]);
    let slice = b.slice(10..20);
    drop(b);
    assert_eq!(m.in_use(), MIB);
    assert_eq!(&slice[..], &[7u8; 10]);
    drop(slice);
    assert_eq!(m.in_use(), 0);
}
