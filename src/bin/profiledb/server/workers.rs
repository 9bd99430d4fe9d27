//! The threads that serve connections: one single-threaded tokio runtime per
//! core, each connection kept on one of them from its first request to its
//! last.
//!
//! A request on a kept-alive connection is then one wake-up of one thread:
//! its I/O driver sees the socket readable, polls the connection, reads the
//! profile, writes the answer and waits again. Tokio's work-stealing runtime
//! does the same work, but a connection's task may move between workers, and
//! a worker that queues a task while another is idle wakes that one to look
//! for work; on a small virtual machine a wake-up costs more than the read
//! it serves. Measured with two clients paced at 10,000 reads/s, the median
//! latency fell by about a seventh and the 99th percentile by more (the
//! README's serving figures).
//! Statements still run on each runtime's blocking pool, so that a slow query
//! never holds up the connections beside it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// Pins the threads of rayon's global pool, which reads a batch of profiles
/// and scans on every core, one to each core the process may run on, when
/// the pool has one thread per such core (no CPU quota below the set the
/// process may use). Call it before anything runs on the pool.
///
/// Without it a batch read split in two took about as long as on one core
/// one time in five, as if the two woken threads were placed on the core of
/// the thread that woke them until the scheduler moved one, which on a
/// small virtual machine came after the batch. Measured over HTTP (`POST /v1/profiles` of 200
/// users paced at 100/s, the server's own time for the read): p90 0.70–0.83
/// ms pinned against 1.12–1.27 ms, and the client's p99 1.30–1.60 against
/// 1.71–2.23 ms (the README's serving figures). A pinned thread cannot move
/// off a busy core, but a batch's other thread takes every share it finds
/// waiting.
pub(crate) fn pin_pool() {
    use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};
    let Ok(allowed) = sched_getaffinity(None) else {
        return;
    };
    let cores: Vec<usize> = (0..CpuSet::MAX_CPU)
        .filter(|&c| allowed.is_set(c))
        .collect();
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    if cores.len() < 2 || cores.len() != threads {
        return;
    }
    let built = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("profiledb-pool-{i}"))
        .start_handler(move |i| {
            let mut one = CpuSet::new();
            one.set(cores[i % cores.len()]);
            if let Err(e) = sched_setaffinity(None, &one) {
                tracing::warn!("cannot pin a worker thread to its core: {e}");
            }
        })
        .build_global();
    if let Err(e) = built {
        tracing::warn!("the worker threads are not pinned to cores: {e}");
    }
}

/// Blocking threads (statements, ingest, deletes) the server may run at
/// once over all its runtimes: tokio's default for one runtime.
const BLOCKING_THREADS: usize = 512;

/// The serving runtimes, each on a thread of its own.
#[derive(Debug)]
pub(crate) struct Workers {
    handles: Vec<Handle>,
    /// Each thread's stop signal and its join handle.
    threads: Vec<(oneshot::Sender<()>, std::thread::JoinHandle<()>)>,
    /// The runtime the next connection goes to.
    next: AtomicUsize,
}

impl Workers {
    /// Starts one runtime per core (at least one).
    pub(crate) fn start() -> Result<Workers, String> {
        let n = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let mut handles = Vec::with_capacity(n);
        let mut threads = Vec::with_capacity(n);
        for i in 0..n {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .max_blocking_threads(BLOCKING_THREADS.div_ceil(n))
                .thread_name("profiledb-http")
                .build()
                .map_err(|e| format!("cannot start the runtime: {e}"))?;
            handles.push(runtime.handle().clone());
            let (stop, stopped) = oneshot::channel::<()>();
            let thread = std::thread::Builder::new()
                .name(format!("profiledb-http-{i}"))
                .spawn(move || {
                    // A dropped sender stops the thread too.
                    let _ = runtime.block_on(stopped);
                    // Let blocking calls still running finish before the
                    // database closes.
                    runtime.shutdown_timeout(Duration::from_secs(30));
                })
                .map_err(|e| format!("cannot start a serving thread: {e}"))?;
            threads.push((stop, thread));
        }
        Ok(Workers {
            handles,
            threads,
            next: AtomicUsize::new(0),
        })
    }

    /// The runtime the next connection is served on, in turn.
    pub(crate) fn next(&self) -> &Handle {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        &self.handles[i]
    }

    /// Stops every runtime once what runs on it has finished (at most 30 s
    /// for a blocking call), and waits for their threads.
    pub(crate) fn stop(self) {
        let mut joins = Vec::with_capacity(self.threads.len());
        for (stop, thread) in self.threads {
            let _ = stop.send(());
            joins.push(thread);
        }
        for thread in joins {
            let _ = thread.join();
        }
    }
}
