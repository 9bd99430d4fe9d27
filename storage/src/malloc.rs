//! The C library's malloc, set for a process that holds a database:
//! [`tune_malloc`].
//!
//! glibc's malloc gives threads other than the main one arenas of heaps,
//! regions of 64 MiB reserved at once and made writable as they grow, one
//! `mprotect` call for each page a heap grows by. Work that allocates much
//! on rayon's pool pays that call every 4 KiB: the row table's first build
//! after a bulk load (a million users, about 800 MB of rows decoded on every
//! core) spent 45% of its time in it (`perf`, 2026-12-04), its two threads
//! also waiting on each other for the process's memory map. A top pad of 64
//! MiB makes each new heap writable whole when it is made.
//!
//! Setting the pad turns off malloc's dynamic mmap threshold, which rises
//! with the blocks a process frees, up to 32 MiB, so that blocks of a size
//! freed before come from the heaps rather than from fresh mappings. The
//! threshold is set at that top instead: a write's packed row operands or a
//! query's result buffers are then reused rather than mapped and faulted in
//! each time.
//!
//! The price: each arena keeps up to 64 MiB of freed memory at its top
//! rather than returning it to the system (a process has a few arenas, about
//! one a thread that allocates at once), and blocks up to 32 MiB come from
//! the heaps, as they would once the dynamic threshold had risen.
//!
//! The `profiledb` program sets it when it starts, and the Python package
//! when it opens a database; the library leaves malloc to the application,
//! which calls this early, before opening a database, when it owns its
//! process (as the benches do).

/// The pad each new heap of malloc gets, and the top's memory each arena
/// keeps when it trims.
const TOP_PAD: usize = 64 << 20;

/// Blocks from this size up are mapped on their own, below it taken from
/// the heaps: the top the dynamic threshold would reach.
const MMAP_THRESHOLD: usize = 32 << 20;

/// Sets the C library's malloc for a process that holds a database (see the
/// module documentation): a 64 MiB top pad, so that the heaps of threads
/// other than the main one are made writable whole rather than a page at a
/// time, and blocks up to 32 MiB from the heaps. Later calls set the same
/// again; heaps made before the first keep their size.
///
/// Returns whether it was set: `false` on a system whose C library is not
/// glibc.
///
/// # Examples
/// ```
/// // At the start of a program that owns its process, before it opens a
/// // database:
/// let tuned = profiledb_storage::tune_malloc();
/// println!("malloc tuned: {tuned}");
/// ```
pub fn tune_malloc() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let as_int = |n: usize| libc::c_int::try_from(n).unwrap_or(libc::c_int::MAX);
        // SAFETY: `mallopt` takes a parameter number and a value and
        // changes malloc's settings; any thread may call it at any time
        // (glibc takes its arenas' locks to apply it).
        #[allow(unsafe_code)]
        let set = unsafe {
            libc::mallopt(libc::M_TOP_PAD, as_int(TOP_PAD)) == 1
                && libc::mallopt(libc::M_MMAP_THRESHOLD, as_int(MMAP_THRESHOLD)) == 1
        };
        set
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    false
}

#[cfg(test)]
mod tests {
    /// On glibc, both settings are taken (`mallopt` answers 1 for each).
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_takes_the_settings() {
        assert!(super::tune_malloc());
        assert!(super::tune_malloc(), "a second call sets the same");
    }
}
