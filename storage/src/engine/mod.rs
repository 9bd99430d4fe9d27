//! The RocksDB-backed engine: open, schema changes, ingest, reads, deletes and
//! housekeeping.
//!
//! Writes never read: every event becomes merge operands (one per column family
//! where possible, see [`crate::event::plan`]) in one atomic `WriteBatch`, so a
//! batch is all-or-nothing. The write-ahead log is always on.

mod cf;
mod ffi;
mod index;
mod purge;
mod read;
mod rows;
mod snapshot;
mod sync;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use rocksdb::{
    BottommostLevelCompaction, Cache, ColumnFamily, ColumnFamilyDescriptor, CompactOptions, DB,
    IteratorMode, Options, WriteBatch, WriteOptions,
};

pub use crate::row::UserRange;
pub use cf::{ALL as COLUMN_FAMILIES, ATTRIBUTES, CATALOG, FEATURES, VECTORS, WINDOWS};
pub use read::Scan;
pub use rows::Reader;
pub use sync::SyncPolicy;

use crate::catalog::{Bindings, Catalog, DefKind, Definition};
use crate::error::{Error, Result};
use crate::event::{self, Event, EventOps};
use crate::keys;
use crate::merge::record::Record;
use crate::time::now_ms;
use crate::value::Value;
use crate::vector::IndexTable;

const CATALOG_KEY: &[u8] = b"catalog";

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
    /// Change notices the vector index has not applied yet (its lag); a query
    /// applies them before it reads.
    pub index_pending: u64,
    /// RocksDB's latest sequence number.
    pub last_sequence: u64,
}

/// How to open a database.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Database directory.
    pub path: PathBuf,
    /// Create the database when the directory holds none (default true).
    pub create_if_missing: bool,
    /// Durability of acknowledged writes (default [`SyncPolicy::None`]).
    pub sync: SyncPolicy,
    /// Block cache shared by all column families, in bytes (default 256 MiB).
    pub block_cache_bytes: usize,
    /// Memtable size per column family, in bytes (default 64 MiB); the windows
    /// family, whose entries are small, uses a quarter of it.
    pub write_buffer_bytes: usize,
    /// Longest chain of sgd steps kept on one key in the memtable before RocksDB
    /// folds it into a value (default 64). Bounds the work of reading an sgd vector.
    pub max_successive_merges: usize,
    /// How long after a delete the engine purges deleted users from disk by
    /// itself, as [`Engine::vacuum`] does (default 10 minutes); `None` leaves
    /// it to `vacuum`.
    pub purge_delay: Option<std::time::Duration>,
    /// Largest total size of the write-ahead log files, in bytes (default 512
    /// MiB): past it, RocksDB flushes the memtables that hold the oldest log
    /// so that it can be deleted.
    pub max_wal_bytes: u64,
}

impl EngineOptions {
    /// Defaults for a database at `path`.
    pub fn new(path: impl Into<PathBuf>) -> EngineOptions {
        EngineOptions {
            path: path.into(),
            create_if_missing: true,
            sync: SyncPolicy::None,
            block_cache_bytes: 256 << 20,
            write_buffer_bytes: 64 << 20,
            max_successive_merges: 64,
            purge_delay: Some(std::time::Duration::from_secs(600)),
            max_wal_bytes: 512 << 20,
        }
    }
}

/// An open database.
pub struct Engine {
    db: Arc<DB>,
    index: Arc<index::VectorIndex>,
    refresher: Option<std::thread::JoinHandle<()>>,
    purger: Arc<purge::Purger>,
    /// The background purge: dropping the sender stops it.
    purge_thread: Option<(crossbeam_channel::Sender<()>, std::thread::JoinHandle<()>)>,
    bindings: cf::SharedBindings,
    /// Serializes schema changes (read-modify-write of the catalog).
    ddl: Mutex<()>,
    sync: SyncPolicy,
    group: sync::GroupCommit,
    path: PathBuf,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("path", &self.path)
            .field("sync", &self.sync)
            .finish_non_exhaustive()
    }
}

impl Drop for Engine {
    /// Stops the index refresher and waits for it, so that the database is
    /// closed (its lock released) when the engine is gone.
    fn drop(&mut self) {
        if let Some((stop, handle)) = self.purge_thread.take() {
            drop(stop);
            let _ = handle.join();
        }
        self.index.stop();
        if let Some(handle) = self.refresher.take() {
            let _ = handle.join();
        }
        // Save the vector index, so that reopening need not rebuild it.
        if let Err(e) = self.index.write_snapshot(&self.path, None) {
            log::warn!("vector index snapshot not written: {e}");
        }
    }
}

pub(crate) fn engine_err(e: rocksdb::Error) -> Error {
    let msg = e.into_string();
    if is_no_space(&msg) {
        Error::NoSpace(msg)
    } else {
        Error::Engine(msg)
    }
}

/// Options for a manual compaction that rewrites down to the last level, so
/// that deleted data and its tombstones leave the disk, without blocking other
/// compactions.
pub(crate) fn to_last_level() -> CompactOptions {
    let mut co = CompactOptions::default();
    co.set_bottommost_level_compaction(BottommostLevelCompaction::Force);
    co.set_exclusive_manual_compaction(false);
    co
}

/// Whether a RocksDB error is a full disk. Its status keeps a "no space"
/// subcode that the C API does not pass on; the text is the one sign of it.
fn is_no_space(msg: &str) -> bool {
    msg.contains("No space left on device") || msg.contains("NoSpace")
}

impl Engine {
    /// Opens (or creates) the database at `opts.path`.
    ///
    /// # Errors
    /// [`Error::Locked`] when another process has it open; [`Error::NotFound`] when it
    /// does not exist and `create_if_missing` is off; [`Error::Corruption`] when the
    /// stored catalog does not decode; [`Error::Engine`] for RocksDB failures.
    pub fn open(opts: EngineOptions) -> Result<Engine> {
        let path = opts.path.clone();
        if !opts.create_if_missing && !path.join("CURRENT").exists() {
            return Err(Error::NotFound {
                kind: "database",
                name: path.display().to_string(),
            });
        }
        let settings = cf::CfSettings {
            block_cache: Cache::new_lru_cache(opts.block_cache_bytes),
            max_successive_merges: opts.max_successive_merges,
            write_buffer_bytes: opts.write_buffer_bytes,
        };
        let shared: cf::SharedBindings = Arc::new(RwLock::new(Arc::new(Bindings::default())));
        let mut db_opts = Options::default();
        db_opts.create_if_missing(opts.create_if_missing);
        db_opts.create_missing_column_families(true);
        db_opts.increase_parallelism(2);
        db_opts.set_max_background_jobs(4);
        db_opts.set_bytes_per_sync(1 << 20);
        db_opts.set_keep_log_file_num(5);
        db_opts.set_max_total_wal_size(opts.max_wal_bytes);
        // Opening replays the write-ahead log into memtables without writing
        // tables, so that a database on a nearly full disk still opens.
        ffi::avoid_flush_during_recovery(&mut db_opts);
        // RocksDB's own `default` family holds nothing, but it is opened with our
        // memtable size too: after a full disk, RocksDB resumes writes once the
        // largest memtable of any family would fit, and rust-rocksdb would give
        // it the 64 MiB default.
        let descriptors = cf::ALL
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(*name, cf::options(name, &settings, &shared)))
            .chain(std::iter::once(ColumnFamilyDescriptor::new(
                rocksdb::DEFAULT_COLUMN_FAMILY_NAME,
                cf::options(rocksdb::DEFAULT_COLUMN_FAMILY_NAME, &settings, &shared),
            )));
        let db = DB::open_cf_descriptors(&db_opts, &path, descriptors).map_err(|e| {
            let msg = e.into_string();
            if msg.contains("While lock file") || msg.contains("lock hold by current process") {
                Error::Locked {
                    path: path.display().to_string(),
                }
            } else if is_no_space(&msg) {
                // Opening writes a new MANIFEST, an OPTIONS file and a log that
                // RocksDB preallocates at 1.1 memtables; the log it replays stays
                // in memory (no tables are written during recovery).
                let needs = (opts.write_buffer_bytes as u64).saturating_mul(11) / 10 + (1 << 20);
                Error::NoSpace(format!(
                    "cannot open {}: {} free, and opening needs about {} (the write-ahead log to replay holds {}): {msg}",
                    path.display(),
                    crate::disk::free_bytes(&path).map_or("unknown".to_owned(), crate::disk::human),
                    crate::disk::human(needs),
                    crate::disk::human(crate::disk::wal_bytes(&path)),
                ))
            } else {
                Error::Engine(msg)
            }
        })?;
        let db = Arc::new(db);
        let index = index::VectorIndex::new(Arc::clone(&db), Arc::clone(&shared));
        let refresher = Some(index::VectorIndex::spawn_refresher(&index)?);
        let purger = Arc::new(purge::Purger::new(
            Arc::clone(&db),
            Arc::clone(&index),
            path.clone(),
        )?);
        let purge_thread = match opts.purge_delay {
            Some(delay) => Some(purge::spawn(Arc::clone(&purger), delay)?),
            None => None,
        };
        let engine = Engine {
            db,
            index,
            refresher,
            purger,
            purge_thread,
            bindings: shared,
            ddl: Mutex::new(()),
            sync: opts.sync,
            group: sync::GroupCommit::default(),
            path,
        };
        let catalog = engine.load_catalog()?;
        *engine.bindings.write() = Arc::new(Bindings::new(catalog));
        engine.load_index_snapshot();
        Ok(engine)
    }

    /// Installs the vector index snapshot when it covers the database as it is;
    /// otherwise the index is rebuilt on first use. A corrupt snapshot is
    /// logged and ignored.
    fn load_index_snapshot(&self) {
        match snapshot::read(&self.path) {
            Ok(Some(s)) => {
                let current = s.seq == self.db.latest_sequence_number()
                    && s.vectors == index::vector_defs(&self.bindings());
                if current {
                    self.index.install(s);
                }
            }
            Ok(None) => {}
            Err(e) => log::warn!("ignoring the vector index snapshot: {e}"),
        }
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn cf(&self, name: &'static str) -> Result<&ColumnFamily> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| Error::Engine(format!("column family '{name}' is missing")))
    }

    /// The underlying RocksDB handle, for housekeeping the engine does not wrap.
    pub fn rocksdb(&self) -> &DB {
        &self.db
    }

    fn load_catalog(&self) -> Result<Catalog> {
        let cf = self.cf(cf::CATALOG)?;
        match self.db.get_pinned_cf(cf, CATALOG_KEY).map_err(engine_err)? {
            None => Ok(Catalog::default()),
            Some(bytes) => {
                Catalog::decode(&bytes).map_err(|e| Error::corruption(cf::CATALOG, CATALOG_KEY, e))
            }
        }
    }

    /// The current catalog snapshot.
    pub fn bindings(&self) -> Arc<Bindings> {
        Arc::clone(&self.bindings.read())
    }

    /// The current catalog.
    pub fn catalog(&self) -> Catalog {
        self.bindings().catalog.clone()
    }

    fn store_catalog(&self, catalog: Catalog) -> Result<()> {
        let cf = self.cf(cf::CATALOG)?;
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        let mut batch = WriteBatch::default();
        batch.put_cf(cf, CATALOG_KEY, catalog.encode());
        self.db.write_opt(batch, &wo).map_err(engine_err)?;
        *self.bindings.write() = Arc::new(Bindings::new(catalog));
        Ok(())
    }

    /// Adds a schema item and returns its id. Schema changes are always synced.
    ///
    /// # Errors
    /// See [`Catalog::define`].
    pub fn define(&self, def: Definition) -> Result<u32> {
        let _guard = self.ddl.lock();
        let mut catalog = self.catalog();
        let id = catalog.define(def)?;
        self.store_catalog(catalog)?;
        Ok(id)
    }

    /// Drops a schema item and its data. Readers stop seeing the data at once.
    /// Attribute, feature and ewma vector cells are forgotten in every user's record
    /// now; window buckets and sgd vectors are removed by compaction (run [`Engine::compact`] to
    /// reclaim the space at once).
    ///
    /// # Errors
    /// [`Error::NotFound`] when no such item exists.
    pub fn drop_item(&self, kind: DefKind, name: &str) -> Result<()> {
        let _guard = self.ddl.lock();
        let mut catalog = self.catalog();
        let is_ewma = catalog
            .vector(name)
            .is_some_and(|v| matches!(v.rule, crate::catalog::VectorRule::Ewma { .. }));
        let id = catalog.drop_item(kind, name)?;
        self.store_catalog(catalog)?;
        match kind {
            DefKind::Attribute => self.forget_everywhere(cf::ATTRIBUTES, id),
            DefKind::Feature => self.forget_everywhere(cf::FEATURES, id),
            DefKind::Vector if is_ewma => self.forget_everywhere(cf::FEATURES, id),
            DefKind::Window | DefKind::Vector | DefKind::Segment | DefKind::SegmentGroup => Ok(()),
        }
    }

    /// Writes a "forget id" operand to every user's record in `cf_name`.
    fn forget_everywhere(&self, cf_name: &'static str, id: u32) -> Result<()> {
        let cf = self.cf(cf_name)?;
        let op = Record::forget(id).encode();
        let mut it = self.db.raw_iterator_cf(cf);
        it.seek_to_first();
        let mut batch = WriteBatch::default();
        while let Some(key) = it.key() {
            batch.merge_cf(cf, key, &op);
            if batch.len() >= 10_000 {
                self.db
                    .write(std::mem::take(&mut batch))
                    .map_err(engine_err)?;
            }
            it.next();
        }
        it.status().map_err(engine_err)?;
        self.db.write(batch).map_err(engine_err)
    }

    /// Ingests a batch of events atomically: either every event is applied or, when
    /// any is invalid, nothing is. Returns the number of events written.
    ///
    /// # Errors
    /// [`Error::InvalidEvent`] naming the first bad event's index, field and reason;
    /// [`Error::Engine`] when the write fails.
    pub fn ingest(&self, events: &[Event]) -> Result<usize> {
        let bindings = self.bindings();
        let planned = events
            .iter()
            .enumerate()
            .map(|(index, ev)| {
                event::plan(&bindings, ev).map_err(|e| Error::InvalidEvent {
                    index,
                    field: e.field,
                    reason: e.reason,
                })
            })
            .collect::<Result<Vec<EventOps>>>()?;
        let _in_flight = self.index.begin_write();
        self.write(sorted_batch(self.data_cfs()?, &planned))?;
        if self.index.is_active() {
            let users = events
                .iter()
                .filter_map(|ev| {
                    let b = bindings.event(&ev.event_type)?;
                    (!b.vectors.is_empty() || !b.attributes.is_empty())
                        .then(|| (ev.user.clone(), !b.attributes.is_empty()))
                })
                .collect();
            self.index.changed(users);
        }
        Ok(events.len())
    }

    /// Decodes JSON events (an array, one object, or JSON Lines) and ingests them
    /// atomically. Returns the number of events written.
    ///
    /// # Errors
    /// [`Error::InvalidEvent`] for JSON that does not decode or an invalid event.
    pub fn ingest_json(&self, text: &str) -> Result<usize> {
        let events = event::events_from_json(text).map_err(|(index, e)| Error::InvalidEvent {
            index,
            field: e.field,
            reason: e.reason,
        })?;
        self.ingest(&events)
    }

    /// Sets attributes of `user` directly (last writer wins at time `ts`), creating
    /// the user if needed.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an unknown attribute, a value of the wrong
    /// type, or a bad user id.
    pub fn set_attributes(&self, user: &str, ts: i64, values: &[(String, Value)]) -> Result<()> {
        let bindings = self.bindings();
        let ops = event::plan_attributes(&bindings, user, ts, values)
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let _in_flight = self.index.begin_write();
        self.write(sorted_batch(self.data_cfs()?, std::slice::from_ref(&ops)))?;
        self.index.changed(vec![(user.to_owned(), true)]);
        Ok(())
    }

    fn data_cfs(&self) -> Result<[&ColumnFamily; 4]> {
        Ok([
            self.cf(cf::ATTRIBUTES)?,
            self.cf(cf::FEATURES)?,
            self.cf(cf::WINDOWS)?,
            self.cf(cf::VECTORS)?,
        ])
    }

    fn write(&self, batch: WriteBatch) -> Result<()> {
        let mut wo = WriteOptions::default();
        wo.set_sync(self.sync == SyncPolicy::EveryBatch);
        // Batches are sorted by key (see `sorted_batch`): each insert starts its
        // skiplist search from the previous one's position.
        wo.set_memtable_insert_hint_per_batch(true);
        self.db.write_opt(batch, &wo).map_err(engine_err)?;
        if self.sync == SyncPolicy::Group {
            self.group
                .wait(|| self.db.flush_wal(true))
                .map_err(engine_err)?;
        }
        Ok(())
    }

    /// Deletes every key of `user` in every column family, atomically. With `purge`,
    /// also compacts the user's key range so the data leaves the disk, not only
    /// hides behind tombstones. Returns whether the user existed; deleting a user
    /// that does not exist writes nothing (a tombstone would carry the id).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a malformed id; [`Error::Engine`] on failure.
    pub fn delete_user(&self, user: &str, purge: bool) -> Result<bool> {
        keys::check_stored_user(user)?;
        if !self.user_exists(user)? {
            return Ok(false);
        }
        let (start, end) = keys::user_range(user);
        let mut batch = WriteBatch::default();
        for name in cf::DATA {
            batch.delete_range_cf(self.cf(name)?, &start, &end);
        }
        self.purger.mark(&mut batch)?;
        let _in_flight = self.index.begin_write();
        self.purger
            .deleting((start.clone(), end.clone()), || self.write(batch))?;
        // Out of the index at once; and re-read at the next drain, in case the
        // refresher read the user just before the delete and applies it after.
        self.index.removed(user);
        self.index.changed(vec![(user.to_owned(), false)]);
        if purge {
            self.compact_range(Some(&start), Some(&end))?;
        }
        Ok(true)
    }

    /// Purges deleted users from disk: once it returns, no file in the database
    /// directory holds a byte of a user deleted before it began (their data,
    /// their tombstones, their entries in the MANIFEST and in the vector index
    /// snapshot). It flushes every family and compacts the deleted users' key
    /// ranges to the last level (the whole database when it does not know them:
    /// deletes from before it was opened, or more than 10,000). The engine runs
    /// it by itself `purge_delay` after a delete; see [`EngineOptions::purge_delay`].
    ///
    /// # Errors
    /// [`Error::Engine`] on failure; a failed purge is retried by the next.
    pub fn vacuum(&self) -> Result<()> {
        self.purger.purge(None).map(drop)
    }

    /// As [`Engine::vacuum`], stopping at `deadline`: returns `false` when it
    /// stopped before the purge was complete (it stays due, and the automatic
    /// purge finishes it).
    ///
    /// # Errors
    /// As [`Engine::vacuum`].
    pub fn vacuum_until(&self, deadline: Option<std::time::Instant>) -> Result<bool> {
        self.purger.purge(deadline)
    }

    /// Compacts every data column family fully: merges operands, applies retention,
    /// and drops the data of deleted users and dropped definitions from disk.
    ///
    /// # Errors
    /// [`Error::Engine`] on failure.
    pub fn compact(&self) -> Result<()> {
        self.compact_range(None, None)
    }

    fn compact_range(&self, start: Option<&[u8]>, end: Option<&[u8]>) -> Result<()> {
        let co = to_last_level();
        for name in cf::DATA {
            let cf = self.cf(name)?;
            self.db.flush_cf(cf).map_err(engine_err)?;
            self.db.compact_range_cf_opt(cf, start, end, &co);
        }
        Ok(())
    }

    /// Writes a consistent, openable copy of the database to `dir` (which must not
    /// exist), using RocksDB checkpoints (hard links where possible).
    ///
    /// # Errors
    /// [`Error::Engine`] when `dir` exists or the checkpoint fails.
    pub fn checkpoint(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        let create = || {
            let cp = rocksdb::checkpoint::Checkpoint::new(&self.db).map_err(engine_err)?;
            cp.create_checkpoint(dir).map_err(engine_err)
        };
        // With the vector index built, the copy gets its snapshot too, when no
        // write ran meanwhile; otherwise the copy rebuilds it on first use.
        self.index.write_snapshot(dir, Some(&create))?;
        Ok(())
    }

    /// Flushes memtables and syncs the log, so everything written is on disk.
    ///
    /// # Errors
    /// [`Error::Engine`] on failure.
    pub fn flush(&self) -> Result<()> {
        self.db.flush_wal(true).map_err(engine_err)?;
        for name in cf::ALL {
            self.db.flush_cf(self.cf(name)?).map_err(engine_err)?;
        }
        Ok(())
    }

    /// Checks one event against the current schema without writing it: the
    /// same checks [`Engine::ingest`] makes.
    ///
    /// # Errors
    /// The [`event::EventError`] naming the field at fault and why.
    pub fn validate(&self, ev: &Event) -> std::result::Result<(), event::EventError> {
        event::plan(&self.bindings(), ev).map(drop)
    }

    /// Figures for monitoring: memtables, compactions and the vector index.
    pub fn stats(&self) -> EngineStats {
        let int = |name: &str| self.db.property_int_value(name).ok().flatten().unwrap_or(0);
        let mut stats = EngineStats {
            memtable_bytes: 0,
            immutable_memtables: 0,
            running_compactions: int("rocksdb.num-running-compactions"),
            running_flushes: int("rocksdb.num-running-flushes"),
            pending_compaction_bytes: 0,
            index_pending: self.index.pending() as u64,
            last_sequence: self.db.latest_sequence_number(),
        };
        for name in cf::ALL {
            if let Ok(cf) = self.cf(name) {
                let int_cf = |p: &str| {
                    self.db
                        .property_int_value_cf(cf, p)
                        .ok()
                        .flatten()
                        .unwrap_or(0)
                };
                stats.memtable_bytes += int_cf("rocksdb.cur-size-all-mem-tables");
                stats.immutable_memtables += int_cf("rocksdb.num-immutable-mem-table");
                stats.pending_compaction_bytes +=
                    int_cf("rocksdb.estimate-pending-compaction-bytes");
            }
        }
        stats
    }

    /// The number of live keys RocksDB estimates for family `name`.
    ///
    /// # Errors
    /// [`Error::Engine`] on failure.
    pub fn estimate_keys(&self, name: &'static str) -> Result<u64> {
        let cf = self.cf(name)?;
        Ok(self
            .db
            .property_int_value_cf(cf, "rocksdb.estimate-num-keys")
            .map_err(engine_err)?
            .unwrap_or(0))
    }

    /// Every key in family `name`, for tests and diagnostics.
    ///
    /// # Errors
    /// [`Error::Engine`] on failure.
    pub fn raw_keys(&self, name: &'static str) -> Result<Vec<Vec<u8>>> {
        let cf = self.cf(name)?;
        self.db
            .iterator_cf(cf, IteratorMode::Start)
            .map(|r| r.map(|(k, _)| k.to_vec()).map_err(engine_err))
            .collect()
    }

    /// Writes raw bytes under a key, bypassing every codec. For tests of corruption
    /// handling only.
    #[doc(hidden)]
    pub fn raw_put(&self, name: &'static str, key: &[u8], value: &[u8]) -> Result<()> {
        self.db
            .put_cf(self.cf(name)?, key, value)
            .map_err(engine_err)
    }

    /// Reads raw bytes under a key, bypassing every codec. For tests and the
    /// read-modify-write benchmark baseline.
    #[doc(hidden)]
    pub fn raw_get(&self, name: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.db.get_cf(self.cf(name)?, key).map_err(engine_err)
    }

    /// Writes raw values in one atomic batch, bypassing every codec. For the
    /// read-modify-write benchmark baseline.
    #[doc(hidden)]
    pub fn raw_put_batch(&self, puts: &[(&'static str, Vec<u8>, Vec<u8>)]) -> Result<()> {
        let mut batch = WriteBatch::default();
        for (name, k, v) in puts {
            batch.put_cf(self.cf(name)?, k, v);
        }
        self.write(batch)
    }

    /// Writes a raw merge operand, bypassing every codec. For tests only.
    #[doc(hidden)]
    pub fn raw_merge(&self, name: &'static str, key: &[u8], value: &[u8]) -> Result<()> {
        self.db
            .merge_cf(self.cf(name)?, key, value)
            .map_err(engine_err)
    }

    /// Brings the vector index up to date with every acknowledged write (building
    /// it on first use), then calls `f` with the table of the vector definition
    /// whose id is `def`, or `None` when there is none.
    ///
    /// # Errors
    /// [`Error::Corruption`] or [`Error::Engine`] from reading the changes.
    pub fn with_vectors<R>(&self, def: u32, f: impl FnOnce(Option<&IndexTable>) -> R) -> Result<R> {
        self.index.read(def, f)
    }

    /// Whether the vector index was loaded from its snapshot file, not built by
    /// a scan. For tests.
    #[doc(hidden)]
    pub fn vector_index_from_snapshot(&self) -> bool {
        self.index.loaded_from_snapshot()
    }

    /// The current wall-clock time, epoch ms.
    pub fn now(&self) -> i64 {
        now_ms()
    }
}

/// Builds the batch of a group of planned events, its operands sorted by column
/// family and key. Sorting lets each memtable insert start from the position of
/// the one before (see `memtable_insert_hint_per_batch` in `Engine::write`),
/// which saves most of the skiplist search on a large memtable. The sort is
/// stable, so operands on one key keep their write order, which sgd depends on.
fn sorted_batch(cfs: [&ColumnFamily; 4], planned: &[EventOps]) -> WriteBatch {
    let [attrs, feats, wins, vecs] = cfs;
    let mut ops: Vec<(u8, &[u8], &[u8])> = Vec::with_capacity(planned.len() * 4);
    for p in planned {
        ops.push((1, &p.user_key, &p.features));
        if let Some(a) = &p.attributes {
            ops.push((0, &p.user_key, a));
        }
        ops.extend(
            p.windows
                .iter()
                .map(|(k, v)| (2, k.as_slice(), v.as_slice())),
        );
        ops.extend(p.sgd.iter().map(|(k, v)| (3, k.as_slice(), v.as_slice())));
    }
    ops.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let mut batch = WriteBatch::default();
    for (cf, k, v) in ops {
        let cf = match cf {
            0 => attrs,
            1 => feats,
            2 => wins,
            _ => vecs,
        };
        batch.merge_cf(cf, k, v);
    }
    batch
}
