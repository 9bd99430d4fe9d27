//! What only the engine over RocksDB does: open a database directory, purge
//! deleted users from disk, compact, flush, checkpoint, and report RocksDB's
//! figures. Test hooks that write raw bytes sit here too, hidden from the docs.

use std::path::Path;
use std::sync::Arc;

use parking_lot::RwLock;

use super::{Engine, RocksEngine};
use crate::catalog::{Bindings, SharedBindings};
use crate::error::Result;
use crate::kv::ALL;
use crate::kv::rocks::{EngineOptions, RocksKv, rocks_err};

/// Monitoring figures of an open engine; see [`Engine::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EngineStats {
    /// Bytes in memtables, active and immutable, over all column families.
    pub memtable_bytes: u64,
    /// Immutable memtables waiting to be flushed.
    pub immutable_memtables: u64,
    /// Compactions running now.
    pub running_compactions: u64,
    /// Memtable flushes running now.
    pub running_flushes: u64,
    /// Bytes RocksDB estimates compaction still has to rewrite.
    pub pending_compaction_bytes: u64,
    /// Bytes the block cache holds: blocks reads found on disk, and those
    /// flushes and compactions of the read families wrote.
    pub block_cache_bytes: u64,
    /// Change notices the vector index has not applied yet (its lag); a query
    /// applies them before it reads.
    pub index_pending: u64,
    /// RocksDB's latest sequence number.
    pub last_sequence: u64,
    /// The row table that scans read.
    pub row_table: super::RowTableStats,
    /// Users deleted for the user TTL since the database was opened.
    pub users_expired: u64,
}

impl Engine<RocksKv> {
    /// Opens (or creates) the database at `opts.path`.
    ///
    /// # Errors
    /// [`crate::Error::Locked`] when another process has it open;
    /// [`crate::Error::NotFound`] when it does not exist and
    /// `create_if_missing` is off; [`crate::Error::Corruption`] when the stored
    /// catalog does not decode; [`crate::Error::Engine`] for RocksDB failures.
    pub fn open(opts: EngineOptions) -> Result<RocksEngine> {
        let bindings: SharedBindings = Arc::new(RwLock::new(Arc::new(Bindings::default())));
        let kv = RocksKv::open(&opts, &bindings)?;
        Engine::with_kv(kv, bindings, Some(opts.path), opts.row_table_bytes)
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        self.kv().path()
    }

    /// Compacts every data column family fully: merges operands, applies retention,
    /// and drops the data of deleted users and dropped definitions from disk.
    ///
    /// # Errors
    /// [`crate::Error::Engine`] on failure.
    pub fn compact(&self) -> Result<()> {
        self.kv().compact(None, None)
    }

    /// Writes a consistent, openable copy of the database to `dir` (which must not
    /// exist), using RocksDB checkpoints (hard links where possible).
    ///
    /// # Errors
    /// [`crate::Error::Engine`] when `dir` exists or the checkpoint fails.
    pub fn checkpoint(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        let create = || {
            let cp = rocksdb::checkpoint::Checkpoint::new(self.kv().db()).map_err(rocks_err)?;
            cp.create_checkpoint(dir).map_err(rocks_err)
        };
        // With the vector index built, the copy gets its snapshot too;
        // otherwise the copy builds its index on first use.
        self.index.write_snapshot(dir, Some(&create))?;
        Ok(())
    }

    /// Flushes memtables and syncs the log, so everything written is on disk.
    ///
    /// # Errors
    /// [`crate::Error::Engine`] on failure.
    pub fn flush(&self) -> Result<()> {
        let kv = self.kv();
        kv.db().flush_wal(true).map_err(rocks_err)?;
        for name in ALL {
            kv.db().flush_cf(kv.cf(name)?).map_err(rocks_err)?;
        }
        Ok(())
    }

    /// Figures for monitoring: memtables, compactions and the vector index.
    pub fn stats(&self) -> EngineStats {
        let db = self.kv().db();
        let int = |name: &str| db.property_int_value(name).ok().flatten().unwrap_or(0);
        let mut stats = EngineStats {
            memtable_bytes: 0,
            immutable_memtables: 0,
            running_compactions: int("rocksdb.num-running-compactions"),
            running_flushes: int("rocksdb.num-running-flushes"),
            pending_compaction_bytes: 0,
            block_cache_bytes: int("rocksdb.block-cache-usage"),
            index_pending: self.index.pending() as u64,
            last_sequence: db.latest_sequence_number(),
            row_table: self.row_table_stats(),
            users_expired: self
                .index
                .users_expired
                .load(std::sync::atomic::Ordering::Relaxed),
        };
        for name in ALL {
            if let Ok(cf) = self.kv().cf(name) {
                let int_cf = |p: &str| db.property_int_value_cf(cf, p).ok().flatten().unwrap_or(0);
                stats.memtable_bytes += int_cf("rocksdb.cur-size-all-mem-tables");
                stats.immutable_memtables += int_cf("rocksdb.num-immutable-mem-table");
                stats.pending_compaction_bytes +=
                    int_cf("rocksdb.estimate-pending-compaction-bytes");
            }
        }
        stats
    }

    /// The RocksDB database itself. For tests only (feature `testing`).
    #[cfg(feature = "testing")]
    pub fn rocksdb(&self) -> &rocksdb::DB {
        self.kv().db()
    }

    /// Every key in family `name`, for tests and diagnostics.
    ///
    /// # Errors
    /// [`crate::Error::Engine`] on failure.
    #[cfg(feature = "testing")]
    pub fn raw_keys(&self, name: &'static str) -> Result<Vec<Vec<u8>>> {
        let kv = self.kv();
        kv.db()
            .iterator_cf(kv.cf(name)?, rocksdb::IteratorMode::Start)
            .map(|r| r.map(|(k, _)| k.to_vec()).map_err(rocks_err))
            .collect()
    }

    /// Writes raw bytes under a key, bypassing every codec. For tests of corruption
    /// handling only.
    #[cfg(feature = "testing")]
    pub fn raw_put(&self, name: &'static str, key: &[u8], value: &[u8]) -> Result<()> {
        let kv = self.kv();
        kv.db().put_cf(kv.cf(name)?, key, value).map_err(rocks_err)
    }

    /// Reads raw bytes under a key, bypassing every codec. For tests and the
    /// read-modify-write benchmark baseline.
    #[cfg(feature = "testing")]
    pub fn raw_get(&self, name: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let kv = self.kv();
        kv.db().get_cf(kv.cf(name)?, key).map_err(rocks_err)
    }

    /// Writes raw values in one atomic batch, bypassing every codec. For the
    /// read-modify-write benchmark baseline.
    #[cfg(feature = "testing")]
    pub fn raw_put_batch(&self, puts: &[(&'static str, Vec<u8>, Vec<u8>)]) -> Result<()> {
        use crate::kv::{Kv as _, KvBatch as _};
        let mut batch = self.kv().batch();
        for (name, k, v) in puts {
            batch.put(name, k, v);
        }
        self.kv().write(batch, false)
    }

    /// Writes a raw merge operand, bypassing every codec. For tests only.
    #[cfg(feature = "testing")]
    pub fn raw_merge(&self, name: &'static str, key: &[u8], value: &[u8]) -> Result<()> {
        let kv = self.kv();
        kv.db()
            .merge_cf(kv.cf(name)?, key, value)
            .map_err(rocks_err)
    }

    /// Whether the vector index was loaded from its snapshot file, not built by
    /// a scan. For tests.
    #[cfg(feature = "testing")]
    pub fn vector_index_from_snapshot(&self) -> bool {
        self.index.loaded_from_snapshot()
    }
}
