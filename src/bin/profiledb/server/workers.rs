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
