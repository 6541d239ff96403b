//! How glibc's allocator is tuned for this daemon, set first thing in `main`.
//!
//! The daemon's big buffers are a few MiB each (8 MiB multipart parts and fetch chunks, runs of
//! decrypted blocks) and are allocated and freed on every tokio worker and blocking thread.
//! With glibc's defaults this costs far more memory than it holds:
//! - every thread that allocates may get an arena of its own (up to 8 per core), and freed
//!   memory stays in the arena that served it;
//! - the mmap threshold is dynamic: once an mmapped 8 MiB buffer is freed, the threshold rises
//!   to 8 MiB, so every later buffer of that size is carved from an arena's heap and stays
//!   there after it is freed.
//!
//! Measured with `scripts/bench.sh --server moto --only s3cryptfs --size 256` (docs/BENCHMARKS.md):
//! peak RSS of the sequential write 131 → 67 MiB and of the read 161 → 111 MiB with two arenas
//! and a fixed 256 KiB threshold (buffers that large are mapped and unmapped whole, returning
//! their pages at once). A user's own `MALLOC_ARENA_MAX` / `MALLOC_MMAP_THRESHOLD_` (glibc's
//! tunables, read when the process starts) win: each setting is left alone when it is set.

/// Arenas at most (glibc's default is 8 per core).
const ARENA_MAX: i32 = 2;
/// Allocations of at least this many bytes are mapped on their own and unmapped when freed;
/// setting it also turns off glibc's dynamic raising of the threshold.
const MMAP_THRESHOLD: i32 = 256 * 1024;

/// Apply the tuning (glibc only; other C libraries keep their defaults).
pub(super) fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let set = |env: &str, param: libc::c_int, value: i32| {
            if std::env::var_os(env).is_none() {
                // SAFETY: mallopt only changes allocator parameters; any value is accepted or
                // refused with a return of 0, which leaves the defaults in place.
                unsafe { libc::mallopt(param, value) };
            }
        };
        set("MALLOC_ARENA_MAX", libc::M_ARENA_MAX, ARENA_MAX);
        set(
            "MALLOC_MMAP_THRESHOLD_",
            libc::M_MMAP_THRESHOLD,
            MMAP_THRESHOLD,
        );
    }
}
