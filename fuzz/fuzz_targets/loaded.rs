//! Shared by the statement targets: one in-memory database per process, loaded
//! once, that each input runs on a copy of.

use std::sync::OnceLock;

use profiledb_query::{Limits, execute};
use profiledb_storage::MemoryEngine;
use profiledb_storage::kv::memory::MemoryKv;

/// The database `script` loads, built on first use.
pub fn loaded(cell: &'static OnceLock<MemoryEngine>, script: &str) -> MemoryEngine {
    cell.get_or_init(|| {
        let db = match MemoryEngine::over(MemoryKv::new().with_parts(2)) {
            Ok(db) => db.with_now(1_000_000),
            Err(e) => panic!("an empty store opens: {e}"),
        };
        if let Err(e) = execute(&db, script, &Limits::default()) {
            panic!("the schema must load: {e}");
        }
        db
    })
    .fork()
}
