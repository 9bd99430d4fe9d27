//! Shared by the statement targets: one in-memory database per process, loaded
//! once, that each input runs on a copy of.

use std::sync::OnceLock;

use profiledb_query::{Limits, MemorySource, execute};

/// The database `script` loads, built on first use.
pub fn loaded(cell: &'static OnceLock<MemorySource>, script: &str) -> MemorySource {
    cell.get_or_init(|| {
        let db = MemorySource::new().with_now(1_000_000).with_partitions(2);
        if let Err(e) = execute(&db, script, &Limits::default()) {
            panic!("the schema must load: {e}");
        }
        db
    })
    .clone()
}
