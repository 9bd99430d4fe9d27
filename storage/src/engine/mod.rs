//! The engine: schema changes, ingest, deletes, reads and the vector index,
//! written once over the key-value seam ([`crate::kv::Kv`]).
//!
//! [`RocksEngine`] is the engine over RocksDB, the database on disk;
//! [`MemoryEngine`] is the same engine over the in-memory store, which builds
//! without any C++ and which the query crate's tests run on.
//!
//! Writes never read: every event becomes merge operands (one per column family
//! where possible, see [`crate::event::plan`]) in one atomic batch, so a batch
//! is all-or-nothing. Reads go through a [`ReadView`], which pins the catalog,
//! a storage snapshot and (when asked) the vector index together, so that one
//! answer is read at one moment.

mod build;
mod index;
mod read;
#[cfg(feature = "rocksdb")]
mod rocks;
mod rows;
mod snapshot;
mod write;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use parking_lot::{Mutex, RwLock};

pub use crate::row::UserRange;
pub use index::{Pins, RowTableStats};
pub use read::{NearestFilter, ProfileRows, ReadView};
#[cfg(feature = "rocksdb")]
pub use rocks::EngineStats;
#[cfg(feature = "rocksdb")]
pub(crate) use snapshot::FILE as INDEX_SNAPSHOT_FILE;
pub use write::{Ingested, LogApplied, LogNote};

use crate::catalog::{Bindings, Catalog, SharedBindings};
use crate::error::{Error, Result};
use crate::kv::memory::MemoryKv;
use crate::kv::{CATALOG, Kv, KvBatch, KvSnapshot};

const CATALOG_KEY: &[u8] = b"catalog";

/// The row table's default memory limit: 2 GiB.
pub const DEFAULT_ROW_TABLE_BYTES: usize = 2 << 30;

/// The engine over RocksDB.
#[cfg(feature = "rocksdb")]
pub type RocksEngine = Engine<crate::kv::rocks::RocksKv>;

/// The engine over the in-memory store.
pub type MemoryEngine = Engine<MemoryKv>;

/// An open database over store `K`.
pub struct Engine<K: Kv> {
    kv: Arc<K>,
    index: Arc<index::Index<K>>,
    refresher: Option<std::thread::JoinHandle<()>>,
    bindings: SharedBindings,
    /// Serializes schema changes (read-modify-write of the catalog).
    ddl: Mutex<()>,
    /// Where the vector index snapshot is kept; `None` for a store without
    /// files.
    dir: Option<PathBuf>,
    /// The next history sequence number. It starts past the store's own
    /// sequence, which every write advances by at least its number of
    /// entries, so numbers are never reused across restarts.
    history_seq: std::sync::atomic::AtomicU64,
    /// Serialize accepting event ids, per user.
    id_locks: IdLocks,
    /// While an item is built over the event history, the users written
    /// since it began (see `build.rs`).
    touched: Mutex<Option<std::collections::HashSet<String>>>,
}

/// Striped locks that serialize, per user, checking a batch's event ids
/// against those accepted and writing it: two batches carrying the same id
/// never both find it new.
pub(crate) struct IdLocks {
    stripes: Vec<Mutex<()>>,
}

impl IdLocks {
    fn new() -> IdLocks {
        IdLocks {
            stripes: (0..64).map(|_| Mutex::new(())).collect(),
        }
    }

    /// Locks the stripes of `users`, in stripe order, so that two batches
    /// never wait for each other in a cycle.
    pub(crate) fn lock<'a>(
        &self,
        users: impl Iterator<Item = &'a str>,
    ) -> Vec<parking_lot::MutexGuard<'_, ()>> {
        use std::hash::{Hash, Hasher};
        let mut stripes: Vec<usize> = users
            .map(|u| {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                u.hash(&mut h);
                (h.finish() % self.stripes.len() as u64) as usize
            })
            .collect();
        stripes.sort_unstable();
        stripes.dedup();
        stripes
            .into_iter()
            .map(|i| self.stripes[i].lock())
            .collect()
    }
}

impl<K: Kv> std::fmt::Debug for Engine<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl<K: Kv> Drop for Engine<K> {
    /// Stops the index refresher and waits for it, so that the store is closed
    /// (a database's lock released) when the engine is gone, and saves the
    /// vector index so that reopening need not rebuild it.
    fn drop(&mut self) {
        self.index.stop();
        if let Some(handle) = self.refresher.take() {
            let _ = handle.join();
        }
        if let Some(dir) = &self.dir
            && let Err(e) = self.index.write_snapshot(dir, None)
        {
            log::warn!("vector index snapshot not written: {e}");
        }
    }
}

impl<K: Kv> Engine<K> {
    /// The engine over `kv`, whose compaction filters (if any) read `bindings`;
    /// `dir` is where the vector index snapshot is kept. Reads the stored
    /// catalog, and the index snapshot when it is current.
    fn with_kv(
        kv: K,
        bindings: SharedBindings,
        dir: Option<PathBuf>,
        rows_limit: usize,
    ) -> Result<Engine<K>> {
        let engine = Engine::assemble(kv, bindings, dir, rows_limit);
        let catalog = engine.load_catalog()?;
        *engine.bindings.write() = Arc::new(Bindings::new(catalog));
        engine.forget_unfinished_builds()?;
        if engine.bindings().catalog.history_ms == 0 {
            engine.clear_history()?;
        }
        engine.load_index_snapshot();
        engine.index.keep_rows_if_empty()?;
        Ok(engine)
    }

    /// The engine over `kv` with the catalog `bindings` holds, as is.
    fn assemble(
        kv: K,
        bindings: SharedBindings,
        dir: Option<PathBuf>,
        rows_limit: usize,
    ) -> Engine<K> {
        let kv = Arc::new(kv);
        let index = index::Index::new(Arc::clone(&kv), Arc::clone(&bindings), rows_limit);
        // Without the refresher the engine still answers: every query that
        // reads the index catches it up itself.
        let refresher = index::Index::spawn_refresher(&index)
            .inspect_err(|e| log::warn!("vector index refresher not started: {e}"))
            .ok();
        let history_seq = std::sync::atomic::AtomicU64::new(kv.sequence().saturating_add(1));
        Engine {
            kv,
            index,
            refresher,
            bindings,
            ddl: Mutex::new(()),
            dir,
            history_seq,
            id_locks: IdLocks::new(),
            touched: Mutex::new(None),
        }
    }

    /// Installs the vector index snapshot when it covers the store as it is;
    /// otherwise the index is rebuilt on first use. A corrupt snapshot is
    /// logged and ignored.
    fn load_index_snapshot(&self) {
        let Some(dir) = &self.dir else { return };
        match snapshot::read(dir) {
            Ok(Some(s)) => {
                let current = s.seq == self.kv.sequence()
                    && s.vectors == index::vector_defs(&self.bindings());
                if current {
                    self.index.install(s);
                }
            }
            Ok(None) => {}
            Err(e) => log::warn!("ignoring the vector index snapshot: {e}"),
        }
    }

    fn load_catalog(&self) -> Result<Catalog> {
        let snap = self.kv.snapshot();
        match snap.get(CATALOG, CATALOG_KEY)? {
            None => Ok(Catalog::default()),
            Some(bytes) => {
                Catalog::decode(&bytes).map_err(|e| Error::corruption(CATALOG, CATALOG_KEY, e))
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

    /// The current time, epoch ms: the wall clock, or the clock fixed by
    /// [`Engine::set_now`].
    pub fn now(&self) -> i64 {
        self.index.now()
    }

    /// Fixes the clock at `now` (epoch ms), so that the default `AS OF` of a
    /// query is reproducible; 0 returns to the wall clock.
    pub fn set_now(&self, now: i64) {
        self.index.clock.store(now, Ordering::Relaxed);
    }

    /// The engine with its clock fixed at `now`; see [`Engine::set_now`].
    #[must_use]
    pub fn with_now(self, now: i64) -> Engine<K> {
        self.set_now(now);
        self
    }

    /// The directory of a database on disk; `None` in memory.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Figures on the row table that scans read: whether it is built, its
    /// users and memory, and the changes it has yet to apply.
    pub fn row_table_stats(&self) -> RowTableStats {
        self.index.row_stats()
    }

    /// The store, for what only it can do.
    #[cfg(feature = "rocksdb")]
    pub(crate) fn kv(&self) -> &K {
        &self.kv
    }

    fn store_catalog(&self, catalog: Catalog) -> Result<()> {
        self.store_catalog_with(catalog, self.kv.batch())
    }

    /// [`Engine::store_catalog`], with the writes of `batch` in the same
    /// atomic batch.
    fn store_catalog_with(&self, catalog: Catalog, batch: K::Batch) -> Result<()> {
        // A schema change is a write the vector index must not see half of,
        // and no write planned under the old catalog may follow it (writers
        // check the catalog with their write guard held).
        let _held = self.index.hold_writes();
        self.store_catalog_held(catalog, batch)
    }

    /// [`Engine::store_catalog_with`], for a caller already holding writes
    /// off ([`index::Index::hold_writes`]).
    fn store_catalog_held(&self, catalog: Catalog, mut batch: K::Batch) -> Result<()> {
        batch.put(CATALOG, CATALOG_KEY, &catalog.encode());
        self.kv.write(batch, true)?;
        *self.bindings.write() = Arc::new(Bindings::new(catalog));
        Ok(())
    }
}

impl MemoryEngine {
    /// An empty database in memory.
    pub fn memory() -> MemoryEngine {
        let bindings: SharedBindings = Arc::new(RwLock::new(Arc::new(Bindings::default())));
        Engine::assemble(MemoryKv::new(), bindings, None, DEFAULT_ROW_TABLE_BYTES)
    }

    /// The engine over an in-memory store (for example one made with
    /// [`MemoryKv::with_parts`]), with the catalog the store holds.
    ///
    /// # Errors
    /// [`crate::Error::Corruption`] when the store's catalog does not decode.
    pub fn over(kv: MemoryKv) -> Result<MemoryEngine> {
        let bindings: SharedBindings = Arc::new(RwLock::new(Arc::new(Bindings::default())));
        Engine::with_kv(kv, bindings, None, DEFAULT_ROW_TABLE_BYTES)
    }

    /// An independent copy of this database as it is now, clock included.
    pub fn fork(&self) -> MemoryEngine {
        let bindings: SharedBindings = Arc::new(RwLock::new(self.bindings()));
        let e = Engine::assemble(
            self.kv.as_ref().clone(),
            bindings,
            None,
            self.index.rows_limit(),
        );
        e.set_now(self.index.clock.load(Ordering::Relaxed));
        e
    }
}
