//! The RocksDB store: [`Kv`] over a RocksDB database, and what only RocksDB
//! does (options, compaction filters, group commit, the purge of deleted
//! users, checkpoints, its statistics).
//!
//! Every family's options are built from the family table in `options.rs`;
//! the C calls rust-rocksdb does not wrap sit in `ffi.rs`.

mod disk;
mod ffi;
mod options;
mod purge;
mod sync;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rocksdb::{
    BottommostLevelCompaction, Cache, ColumnFamily, ColumnFamilyDescriptor, CompactOptions, DB,
    DBPinnableSlice, DBRawIteratorWithThreadMode, Options, ReadOptions, SnapshotWithThreadMode,
    WriteBatch, WriteOptions,
};

pub use sync::SyncPolicy;

use super::{ALL, CATALOG, DATA, Kv, KvBatch, KvIter, KvSnapshot};
use crate::catalog::SharedBindings;
use crate::error::{Error, Result, Status};

/// RocksDB's default environment (shared by every database the process
/// opens), its flush and compaction threads at the lowest CPU priority (nice
/// 19, set by each thread as it takes its next job).
///
/// Queries and reads come first: on a machine with few cores a flush or a
/// compaction running beside a scan otherwise takes a core from it. Measured
/// with the `scan` bench (a count over 100k users right after ingesting 100k
/// events, rayon's pool pinned): counts that met a flush or compaction took
/// 10–27 ms against 6–7.7 ms for those that did not; with the background
/// threads at low priority, 6–11 ms. Background work still gets every cycle
/// the foreground leaves, so ingest kept its rate (the `ingest` bench, one
/// writer and two, no difference outside the noise); and a writer whose
/// flush falls behind stalls on RocksDB's own memtable limit until it
/// catches up, as before.
fn background_env() -> Result<rocksdb::Env> {
    let mut env = rocksdb::Env::new().map_err(|e| Error::Store {
        status: status(e.kind()),
        message: format!("cannot set up RocksDB's environment: {}", e.into_string()),
    })?;
    env.lower_thread_pool_cpu_priority();
    env.lower_high_priority_thread_pool_cpu_priority();
    Ok(env)
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
    /// Block cache shared by all column families, in bytes (default 1 GiB):
    /// the blocks reads found and those flushes and compactions of the read
    /// families wrote, taken only as they come. Blocks outside it are read
    /// through the operating system's page cache, which not every host
    /// keeps; 1 GiB holds the tables of about 3.5M users of the benchmarks'
    /// schema, so that reads of them stay in memory as the row table's
    /// default (2 GiB) keeps their scans there.
    pub block_cache_bytes: usize,
    /// RocksDB's row cache, in bytes (default 64 MiB; 0 turns it off): the
    /// values point reads found in each table file, kept whole, so that a
    /// profile read again skips the file's index, filter and data block.
    /// It about doubles warm whole-profile reads (`cargo bench --bench
    /// profile_read`); scans do not use it. RocksDB refuses range deletions
    /// beside it, so the engine deletes key by key.
    pub row_cache_bytes: usize,
    /// Memtable size per column family, in bytes (default 64 MiB); the windows
    /// family, whose entries are small, uses a quarter of it.
    pub write_buffer_bytes: usize,
    /// Longest chain of sgd steps kept on one key in the memtable before RocksDB
    /// folds it into a value (default 64). Bounds the work of reading an sgd vector.
    pub max_successive_merges: usize,
    /// How long after a delete the engine purges deleted users from disk by
    /// itself, as [`crate::Engine::vacuum`] does (default 10 minutes); `None`
    /// leaves it to `vacuum`.
    pub purge_delay: Option<std::time::Duration>,
    /// Largest total size of the write-ahead log files, in bytes (default 512
    /// MiB): past it, RocksDB flushes the memtables that hold the oldest log
    /// so that it can be deleted.
    pub max_wal_bytes: u64,
    /// Most memory the row table that scans read may take, in bytes (default
    /// 2 GiB; see [`crate::RowTableStats`]). A database whose users' records
    /// take more is scanned from RocksDB; 0 always does. A store without
    /// users keeps the table from its first write, the writes waiting for the
    /// first scan in at most a quarter of this.
    pub row_table_bytes: usize,
}

impl EngineOptions {
    /// Defaults for a database at `path`.
    pub fn new(path: impl Into<PathBuf>) -> EngineOptions {
        EngineOptions {
            path: path.into(),
            create_if_missing: true,
            sync: SyncPolicy::None,
            block_cache_bytes: 1 << 30,
            row_cache_bytes: 64 << 20,
            write_buffer_bytes: 64 << 20,
            max_successive_merges: 64,
            purge_delay: Some(std::time::Duration::from_secs(600)),
            max_wal_bytes: 512 << 20,
            row_table_bytes: crate::engine::DEFAULT_ROW_TABLE_BYTES,
        }
    }
}

/// The file whose presence says the database holds no range tombstone, so
/// that it may open with RocksDB's row cache: RocksDB refuses range
/// deletions beside a row cache, and can answer past one a table file holds
/// when it serves the file's row from the cache (an earlier version of the
/// engine deleted users by range).
const ROW_CACHE_READY: &str = "ROW_CACHE_READY";

/// Flushes every family, compacts away the range tombstones any table file
/// holds, and writes [`ROW_CACHE_READY`] once none is left. Run at the open
/// of a database without that file, before any read.
fn clear_range_tombstones(db: &DB, path: &Path) -> Result<()> {
    let count = |cf: &ColumnFamily| -> Result<u64> {
        let props = db
            .property_value_cf(cf, "rocksdb.aggregated-table-properties")
            .map_err(rocks_err)?
            .unwrap_or_default();
        Ok(range_deletions(&props))
    };
    for name in ALL {
        let cf = handle(db, name)?;
        db.flush_cf(cf).map_err(rocks_err)?;
        if count(cf)? > 0 {
            db.compact_range_cf_opt(cf, None::<&[u8]>, None::<&[u8]>, &to_last_level());
            let left = count(cf)?;
            if left > 0 {
                return Err(Error::Io(std::io::Error::other(format!(
                    "{left} range tombstones are left in family {name}"
                ))));
            }
        }
    }
    let file = path.join(ROW_CACHE_READY);
    std::fs::write(&file, b"")?;
    std::fs::File::open(&file)?.sync_all()?;
    Ok(())
}

/// The number of range deletions in RocksDB's table properties text
/// (`…; # range deletions=3; …`); 0 when it names none.
fn range_deletions(props: &str) -> u64 {
    props
        .split(';')
        .filter_map(|p| p.trim().strip_prefix("# range deletions="))
        .filter_map(|n| n.trim().parse::<u64>().ok())
        .sum()
}

/// A RocksDB error as a storage error, keeping its status.
pub(crate) fn rocks_err(e: rocksdb::Error) -> Error {
    let kind = e.kind();
    let message = e.into_string();
    if is_no_space(&message) {
        return Error::NoSpace(message);
    }
    Error::Store {
        status: status(kind),
        message,
    }
}

/// Our name for a RocksDB status.
fn status(kind: rocksdb::ErrorKind) -> Status {
    use rocksdb::ErrorKind as K;
    match kind {
        K::Busy | K::TryAgain => Status::Busy,
        K::TimedOut | K::Expired => Status::TimedOut,
        K::Aborted | K::Incomplete | K::MergeInProgress => Status::Aborted,
        K::IOError => Status::Io,
        K::Corruption => Status::Corruption,
        K::NotSupported => Status::NotSupported,
        K::InvalidArgument => Status::InvalidArgument,
        K::ShutdownInProgress => Status::ShutdownInProgress,
        _ => Status::Other,
    }
}

/// A RocksDB error from reading `key` of family `cf`: corruption names them.
pub(crate) fn read_err(cf: &'static str, key: &[u8], e: rocksdb::Error) -> Error {
    if e.kind() == rocksdb::ErrorKind::Corruption {
        Error::corruption(cf, key, e.into_string())
    } else {
        rocks_err(e)
    }
}

/// Whether a RocksDB error is a full disk. Its status keeps a "no space"
/// subcode that the C API does not pass on; the text is the one sign of it.
/// (So is a held lock, an I/O status whose subcode is lost the same way; see
/// [`RocksKv::open`].)
fn is_no_space(msg: &str) -> bool {
    msg.contains("No space left on device") || msg.contains("NoSpace")
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

fn handle<'d>(db: &'d DB, name: &str) -> Result<&'d ColumnFamily> {
    db.cf_handle(name)
        .ok_or_else(|| Error::Engine(format!("column family '{name}' is missing")))
}

/// A RocksDB database as a [`Kv`] store.
pub struct RocksKv {
    db: Arc<DB>,
    purger: Arc<purge::Purger>,
    /// The background purge: dropping the sender stops it.
    purge_thread: Option<(crossbeam_channel::Sender<()>, std::thread::JoinHandle<()>)>,
    sync: SyncPolicy,
    group: sync::GroupCommit,
    path: PathBuf,
}

impl std::fmt::Debug for RocksKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksKv")
            .field("path", &self.path)
            .field("sync", &self.sync)
            .finish_non_exhaustive()
    }
}

impl Drop for RocksKv {
    fn drop(&mut self) {
        if let Some((stop, handle)) = self.purge_thread.take() {
            drop(stop);
            let _ = handle.join();
        }
    }
}

impl RocksKv {
    /// Opens (or creates) the database at `opts.path`; compaction filters read
    /// the catalog from `bindings`.
    ///
    /// # Errors
    /// [`Error::Locked`] when another process has it open; [`Error::NotFound`]
    /// when it does not exist and `create_if_missing` is off;
    /// [`Error::NoSpace`] when the disk cannot hold what opening writes;
    /// [`Error::Engine`] for other RocksDB failures.
    pub(crate) fn open(opts: &EngineOptions, bindings: &SharedBindings) -> Result<RocksKv> {
        let path = opts.path.clone();
        if !opts.create_if_missing && !path.join("CURRENT").exists() {
            return Err(Error::NotFound {
                kind: "database",
                name: path.display().to_string(),
            });
        }
        let settings = options::CfSettings {
            block_cache: Cache::new_lru_cache(opts.block_cache_bytes),
            max_successive_merges: opts.max_successive_merges,
            write_buffer_bytes: opts.write_buffer_bytes,
        };
        let mut db_opts = Options::default();
        db_opts.create_if_missing(opts.create_if_missing);
        db_opts.create_missing_column_families(true);
        db_opts.increase_parallelism(2);
        db_opts.set_max_background_jobs(4);
        db_opts.set_env(&background_env()?);
        // A database an earlier version wrote may hold range tombstones,
        // which RocksDB's row cache can read past: such a database opens
        // without the cache until it is shown to hold none (below).
        let fresh = !path.join("CURRENT").exists();
        let marked = path.join(ROW_CACHE_READY).exists();
        if opts.row_cache_bytes > 0 && (fresh || marked) {
            db_opts.set_row_cache(&Cache::new_lru_cache(opts.row_cache_bytes));
        }
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
        let descriptors = ALL
            .iter()
            .map(|name| {
                ColumnFamilyDescriptor::new(*name, options::options(name, &settings, bindings))
            })
            .chain(std::iter::once(ColumnFamilyDescriptor::new(
                rocksdb::DEFAULT_COLUMN_FAMILY_NAME,
                options::options(rocksdb::DEFAULT_COLUMN_FAMILY_NAME, &settings, bindings),
            )));
        let db = DB::open_cf_descriptors(&db_opts, &path, descriptors).map_err(|e| {
            let kind = e.kind();
            let msg = e.into_string();
            if kind == rocksdb::ErrorKind::IOError
                && (msg.contains("While lock file") || msg.contains("lock hold by current process"))
            {
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
                    disk::free_bytes(&path).map_or("unknown".to_owned(), disk::human),
                    disk::human(needs),
                    disk::human(disk::wal_bytes(&path)),
                ))
            } else {
                Error::Store {
                    status: status(kind),
                    message: msg,
                }
            }
        })?;
        if !marked && let Err(e) = clear_range_tombstones(&db, &path) {
            log::warn!("the row cache stays off until a later open: {e}");
        }
        options::warm_block_cache(&db);
        let db = Arc::new(db);
        let purger = Arc::new(purge::Purger::new(Arc::clone(&db), path.clone())?);
        let purge_thread = match opts.purge_delay {
            Some(delay) => Some(purge::spawn(Arc::clone(&purger), delay)?),
            None => None,
        };
        Ok(RocksKv {
            db,
            purger,
            purge_thread,
            sync: opts.sync,
            group: sync::GroupCommit::default(),
            path,
        })
    }

    /// The database.
    pub(crate) fn db(&self) -> &DB {
        &self.db
    }

    /// The database directory.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The handle of family `name`.
    pub(crate) fn cf(&self, name: &str) -> Result<&ColumnFamily> {
        handle(&self.db, name)
    }

    /// Flushes every family's memtable (data and catalog alike), and, for
    /// `range` (all keys when `None`), compacts the data families to the last
    /// level.
    pub(crate) fn compact(&self, start: Option<&[u8]>, end: Option<&[u8]>) -> Result<()> {
        let co = to_last_level();
        for name in DATA {
            let cf = self.cf(name)?;
            self.db.flush_cf(cf).map_err(rocks_err)?;
            self.db.compact_range_cf_opt(cf, start, end, &co);
        }
        Ok(())
    }
}

/// A batch for [`RocksKv`]: a RocksDB `WriteBatch`, built in place.
pub struct RocksBatch {
    db: Arc<DB>,
    inner: WriteBatch,
    /// A family the batch named that the database lacks.
    missing: Option<&'static str>,
}

impl std::fmt::Debug for RocksBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksBatch")
            .field("len", &self.inner.len())
            .finish_non_exhaustive()
    }
}

impl RocksBatch {
    fn with_cf(&mut self, cf: &'static str, f: impl FnOnce(&mut WriteBatch, &ColumnFamily)) {
        match self.db.cf_handle(cf) {
            Some(h) => f(&mut self.inner, h),
            None => self.missing = Some(cf),
        }
    }
}

impl KvBatch for RocksBatch {
    fn put(&mut self, cf: &'static str, key: &[u8], value: &[u8]) {
        self.with_cf(cf, |b, h| b.put_cf(h, key, value));
    }

    fn merge(&mut self, cf: &'static str, key: &[u8], value: &[u8]) {
        self.with_cf(cf, |b, h| b.merge_cf(h, key, value));
    }

    fn delete(&mut self, cf: &'static str, key: &[u8]) {
        self.with_cf(cf, |b, h| b.delete_cf(h, key));
    }

    fn len(&self) -> usize {
        self.inner.len()
    }
}

impl Kv for RocksKv {
    type Snapshot<'a> = RocksSnapshot<'a>;
    type Batch = RocksBatch;

    fn snapshot(&self) -> RocksSnapshot<'_> {
        let snapshot = self.db.snapshot();
        let mut ro = ReadOptions::default();
        ro.set_snapshot(&snapshot);
        RocksSnapshot {
            db: &self.db,
            ro,
            snapshot,
        }
    }

    fn batch(&self) -> RocksBatch {
        self.batch_with_capacity(0)
    }

    fn batch_with_capacity(&self, bytes: usize) -> RocksBatch {
        // The batch's header takes 12 bytes beside its records.
        RocksBatch {
            db: Arc::clone(&self.db),
            inner: WriteBatch::with_capacity_bytes(bytes.saturating_add(12)),
            missing: None,
        }
    }

    fn write(&self, batch: RocksBatch, durable: bool) -> Result<()> {
        if let Some(cf) = batch.missing {
            return Err(Error::Engine(format!("column family '{cf}' is missing")));
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(durable || self.sync == SyncPolicy::EveryBatch);
        // The engine sorts its batches by key: each insert starts its skiplist
        // search from the previous one's position.
        wo.set_memtable_insert_hint_per_batch(true);
        self.db.write_opt(batch.inner, &wo).map_err(rocks_err)?;
        if !durable && self.sync == SyncPolicy::Group {
            self.group
                .wait(|| self.db.flush_wal(true))
                .map_err(rocks_err)?;
        }
        Ok(())
    }

    fn sequence(&self) -> u64 {
        self.db.latest_sequence_number()
    }

    fn split_keys(&self, cf: &'static str, n: usize) -> Result<Vec<Vec<u8>>> {
        let files: Vec<_> = self
            .db
            .live_files()
            .map_err(rocks_err)?
            .into_iter()
            .filter(|f| f.column_family_name == cf)
            .collect();
        let mut bounds: Vec<Vec<u8>> = files.iter().filter_map(|f| f.start_key.clone()).collect();
        bounds.sort();
        bounds.dedup();
        let n = n.max(1);
        if bounds.len() < n {
            // Too few files to cut at (a bulk load flushed at once): cut
            // between the first user and the last evenly.
            let last = files.iter().filter_map(|f| f.end_key.as_deref()).max();
            if let (Some(lo), Some(hi)) = (
                bounds.first().and_then(|k| crate::keys::user_of(k)),
                last.and_then(crate::keys::user_of),
            ) {
                return Ok(crate::keys::ids_between(lo, hi, n)
                    .iter()
                    .map(|id| crate::keys::user_key(id))
                    .collect());
            }
        }
        let step = bounds.len().div_ceil(n).max(1);
        Ok(bounds
            .into_iter()
            .skip(1)
            .step_by(step)
            .take(n - 1)
            .collect())
    }

    fn write_delete(&self, mut batch: RocksBatch, ranges: Vec<(Vec<u8>, Vec<u8>)>) -> Result<()> {
        // The marker says a purge is due, and survives a crash.
        batch.put(CATALOG, purge::PENDING_KEY, b"");
        self.purger.deleting(ranges, || self.write(batch, false))
    }

    /// Purges deleted users from disk; see `purge.rs`.
    fn vacuum(&self, deadline: Option<std::time::Instant>) -> Result<bool> {
        self.purger.purge(deadline)
    }
}

/// A RocksDB snapshot, with the read options that read through it.
pub struct RocksSnapshot<'a> {
    db: &'a DB,
    // Declared before the snapshot it points to, so dropped first.
    ro: ReadOptions,
    snapshot: SnapshotWithThreadMode<'a, DB>,
}

impl std::fmt::Debug for RocksSnapshot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksSnapshot").finish_non_exhaustive()
    }
}

impl<'a> KvSnapshot for RocksSnapshot<'a> {
    type Value<'s>
        = DBPinnableSlice<'s>
    where
        Self: 's;
    type Iter<'s>
        = RocksIter<'s>
    where
        Self: 's;

    fn get(&self, cf: &'static str, key: &[u8]) -> Result<Option<DBPinnableSlice<'_>>> {
        self.db
            .get_pinned_cf_opt(handle(self.db, cf)?, key, &self.ro)
            .map_err(|e| read_err(cf, key, e))
    }

    fn multi_get(
        &self,
        cf: &'static str,
        keys: &[Vec<u8>],
    ) -> Result<Vec<Option<DBPinnableSlice<'_>>>> {
        self.db
            .batched_multi_get_cf_opt(handle(self.db, cf)?, keys, true, &self.ro)
            .into_iter()
            .zip(keys)
            .map(|(r, k)| r.map_err(|e| read_err(cf, k, e)))
            .collect()
    }

    fn iter(
        &self,
        cf: &'static str,
        lower: Option<Vec<u8>>,
        upper: Option<Vec<u8>>,
    ) -> Result<RocksIter<'_>> {
        let mut ro = ReadOptions::default();
        ro.set_snapshot(&self.snapshot);
        if let Some(l) = lower {
            ro.set_iterate_lower_bound(l);
        }
        if let Some(u) = upper {
            ro.set_iterate_upper_bound(u);
        }
        Ok(RocksIter {
            cf,
            it: self.db.raw_iterator_cf_opt(handle(self.db, cf)?, ro),
        })
    }
}

/// A RocksDB iterator over one family.
pub struct RocksIter<'a> {
    cf: &'static str,
    it: DBRawIteratorWithThreadMode<'a, DB>,
}

impl std::fmt::Debug for RocksIter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksIter")
            .field("cf", &self.cf)
            .finish_non_exhaustive()
    }
}

impl KvIter for RocksIter<'_> {
    fn seek(&mut self, key: &[u8]) {
        self.it.seek(key);
    }

    fn seek_to_first(&mut self) {
        self.it.seek_to_first();
    }

    fn key(&self) -> Option<&[u8]> {
        self.it.key()
    }

    fn value(&self) -> &[u8] {
        self.it.value().unwrap_or_default()
    }

    fn next(&mut self) {
        self.it.next();
    }

    fn status(&self) -> Result<()> {
        self.it
            .status()
            .map_err(|e| read_err(self.cf, self.it.key().unwrap_or_default(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::range_deletions;

    #[test]
    fn range_deletions_are_read_from_the_properties_text() {
        let text = "# data blocks=12; # entries=340; # deletions=2; # range deletions=3; raw key size=5000";
        assert_eq!(range_deletions(text), 3);
        assert_eq!(range_deletions("# entries=1; # range deletions=0"), 0);
        assert_eq!(range_deletions(""), 0);
        assert_eq!(range_deletions("# deletions=7"), 0);
    }
}
