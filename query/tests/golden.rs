//! Golden tests on the in-memory engine: every file in `tests/golden/` runs
//! on a fresh database whose clock reads 2026-11-15T00:00:00Z and whose scans
//! split into three partitions. The same files run on RocksDB in the facade's
//! `tests/golden_rocksdb.rs`; see `tests/golden/runner.rs` for the format.
//!
//! `REWRITE=1 cargo test -p profiledb-query --test golden` rewrites the expected
//! outputs from the actual ones; review the diff before committing it.

#[path = "golden/runner.rs"]
mod runner;

use profiledb_storage::MemoryEngine;
use profiledb_storage::kv::memory::MemoryKv;

#[test]
fn golden_files_in_memory() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    runner::run_golden_files(&dir, runner::Layout::Exact, &|| {
        Ok(MemoryEngine::over(MemoryKv::new().with_parts(3))?.with_now(runner::NOW))
    })
}
