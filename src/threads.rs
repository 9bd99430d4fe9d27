//! Rayon's global pool, which scans, batch reads and rankings run on, with
//! one thread pinned to each core: [`pin_threads`].
//!
//! Some virtual machines' kernels place a woken thread on the core of the
//! thread that woke it, and move it only when the scheduler next balances
//! (this project's development machine packs threads onto few virtual CPUs:
//! its kernel's `sched_vcpu_pack`). A query's two shares then run on one core
//! one time in two, and take twice as long: a count over 100k users took
//! 6 ms or 12 ms, in turn, on a machine doing nothing else (the `scan`
//! bench); a batch read of 200 users over HTTP (`POST /v1/profiles` paced at
//! 100/s) took the server p90 1.12–1.27 ms against 0.70–0.83 ms pinned, and
//! its client's p99 1.71–2.23 ms against 1.30–1.60 ms. Pinning each of the
//! pool's threads to its own core removes the slow mode. A pinned thread
//! cannot move off a busy core, but a query's other thread takes every share
//! it finds waiting.
//!
//! The `profiledb` program pins at start, whatever its command; the library
//! leaves rayon's pool to the application, which calls this before anything
//! runs on the pool when it owns the process (as the benches do).
//!
//! Affinity goes through `rustix` (already the store's way to the system's
//! calls), so that no `unsafe` is needed here.

/// Builds rayon's global pool with one thread per core this process may run
/// on, each pinned to its core and named `profiledb-pool-N`. Call it once,
/// before anything runs on the pool (opening a database may already).
///
/// Returns `Ok(true)` when the pool is pinned, `Ok(false)` when it is left
/// as rayon builds it: on a system other than Linux, with one core, or when
/// the process may use fewer threads than the cores it may run on (a CPU
/// quota, where pinned threads would wait for each other).
///
/// # Errors
/// An error naming why when rayon's global pool was already built (it is
/// then left as it is) or a core's affinity cannot be read.
///
/// # Examples
/// ```
/// // At the start of a program that owns its process:
/// match profiledb::pin_threads() {
///     Ok(pinned) => println!("pool pinned: {pinned}"),
///     Err(e) => eprintln!("pool not pinned: {e}"),
/// }
/// ```
pub fn pin_threads() -> std::io::Result<bool> {
    #[cfg(target_os = "linux")]
    {
        use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};
        let allowed = sched_getaffinity(None).map_err(|e| {
            std::io::Error::other(format!("cannot read the cores this process may use: {e}"))
        })?;
        let cores: Vec<usize> = (0..CpuSet::MAX_CPU)
            .filter(|&c| allowed.is_set(c))
            .collect();
        let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        if cores.len() < 2 || cores.len() != threads {
            return Ok(false);
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("profiledb-pool-{i}"))
            .start_handler(move |i| {
                let mut one = CpuSet::new();
                one.set(cores[i % cores.len()]);
                if let Err(e) = sched_setaffinity(None, &one) {
                    log::warn!("cannot pin a worker thread to its core: {e}");
                }
            })
            .build_global()
            .map_err(|e| {
                std::io::Error::other(format!(
                    "rayon's global pool is not pinned: {e} (call pin_threads before anything runs on it)"
                ))
            })?;
        Ok(true)
    }
    #[cfg(not(target_os = "linux"))]
    Ok(false)
}
