//! The query crate's golden files, run on the engine over RocksDB: each file
//! on a fresh database, with the clock at the same moment as the in-memory
//! run. Both runs check the same expected outputs, so the two stores answer
//! byte for byte alike; only the number of partitions `EXPLAIN` reports for
//! a scan, which follows the store's physical layout, is left out.

#[path = "../query/tests/golden/runner.rs"]
mod runner;

use profiledb_storage::{EngineOptions, RocksEngine};

#[test]
fn golden_files_on_rocksdb() -> Result<(), Box<dyn std::error::Error>> {
    let root = tempfile::tempdir()?;
    let next = std::cell::Cell::new(0);
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("query/tests/golden");
    runner::run_golden_files(&golden, runner::Layout::AnyPartitions, &|| {
        next.set(next.get() + 1);
        let dir = root.path().join(next.get().to_string());
        Ok(RocksEngine::open(EngineOptions::new(dir))?.with_now(runner::NOW))
    })
}
