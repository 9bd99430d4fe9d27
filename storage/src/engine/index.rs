//! The vector index: every user's current vector of every vector definition, in
//! memory as a [`VectorTable`] per definition, with each row's attributes beside
//! it so that attribute filters run without RocksDB.
//!
//! RocksDB stays authoritative; the index is a cache kept in step with writes:
//!
//! - It is built on first use, by a scan, so databases that never rank by
//!   similarity pay nothing.
//! - Once built, the write path sends the ids of users whose vectors or
//!   attributes may have changed over a crossbeam channel, and rings a one-slot
//!   doorbell. A background refresher wakes on the bell and re-reads those users.
//! - The channel is only ever drained under the `apply` lock, by the refresher
//!   or by a query. A query takes that lock and drains what is left before it
//!   reads, so it sees every write acknowledged before it started
//!   (read-your-writes), whatever the refresher is doing.
//! - Refreshing re-reads a user's current state, so applying a change twice, or
//!   out of order, gives the same index.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::{Mutex, RwLock};
use rayon::prelude::*;
use rocksdb::{DB, ReadOptions};

use super::cf::{self, SharedBindings};
use super::engine_err;
use super::read::read_err;
use crate::catalog::{Bindings, VectorRule};
use crate::error::{Error, Result};
use crate::keys;
use crate::merge::cell::Cell;
use crate::merge::record::Record;
use crate::merge::vector::VectorValue;
use crate::row::UserRow;
use crate::vector::IndexTable;

/// The index's contents: a table per vector definition id.
#[derive(Debug, Default)]
struct State {
    /// The vector definitions (id, dimension) the tables were built for; `None`
    /// before the first build.
    vectors: Option<Vec<(u32, u32)>>,
    tables: HashMap<u32, IndexTable>,
}

/// The vector definitions of a catalog, as (id, dimension).
pub(crate) fn vector_defs(bindings: &Bindings) -> Vec<(u32, u32)> {
    bindings
        .catalog
        .vectors
        .iter()
        .map(|d| (d.id, d.dim))
        .collect()
}

/// The in-memory vector index and its refresher.
pub(crate) struct VectorIndex {
    db: Arc<DB>,
    bindings: SharedBindings,
    state: RwLock<State>,
    /// Held while draining the channel and applying what was drained.
    apply: Mutex<()>,
    /// Set once a build has started: from then on writes are sent.
    active: AtomicBool,
    stop: AtomicBool,
    /// Writes between their RocksDB write and their notification.
    inflight: AtomicUsize,
    /// Whether the tables came from a snapshot (and were not rebuilt since).
    from_snapshot: AtomicBool,
    /// Changed users, each with whether its attributes may have changed too.
    tx: Sender<Vec<(String, bool)>>,
    rx: Receiver<Vec<(String, bool)>>,
    bell_tx: Sender<()>,
    bell_rx: Receiver<()>,
}

impl std::fmt::Debug for VectorIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VectorIndex")
            .field("active", &self.active.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A write in flight; see [`VectorIndex::begin_write`].
pub(crate) struct WriteGuard<'a>(&'a VectorIndex);

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A user's attributes (as a row), and the current vector of each vector
/// definition, by id.
type UserVectors = (Arc<UserRow>, Vec<(u32, Option<Vec<f32>>)>);

/// The current vectors of `users` (sorted), read from RocksDB in batches, with
/// their attributes: `cached[i]` when given (its attributes did not change),
/// else read too. `None` for a user that does not exist.
fn read_users(
    db: &DB,
    bindings: &Bindings,
    users: &[String],
    cached: &[Option<Arc<UserRow>>],
) -> Result<Vec<Option<UserVectors>>> {
    let cf_of = |name: &'static str| {
        db.cf_handle(name)
            .ok_or_else(|| Error::Engine(format!("column family '{name}' is missing")))
    };
    // User keys sort as their ids do, so the batch is sorted.
    let keys: Vec<Vec<u8>> = users.iter().map(|u| keys::user_key(u)).collect();
    let feats = db.batched_multi_get_cf(cf_of(cf::FEATURES)?, &keys, true);
    let attr_keys: Vec<&Vec<u8>> = keys
        .iter()
        .zip(cached)
        .filter(|(_, c)| c.is_none())
        .map(|(k, _)| k)
        .collect();
    let mut attrs = db
        .batched_multi_get_cf(cf_of(cf::ATTRIBUTES)?, attr_keys, true)
        .into_iter();
    let ro = ReadOptions::default();
    let mut out = Vec::with_capacity(users.len());
    for (((user, key), feats), cached) in users.iter().zip(&keys).zip(feats).zip(cached) {
        // The attribute lookups were made for the uncached users only, in order.
        let attrs = if cached.is_none() { attrs.next() } else { None };
        let Some(feats) = feats.map_err(|e| read_err(cf::FEATURES, key, e))? else {
            out.push(None);
            continue;
        };
        let feats = Record::decode(&feats).map_err(|e| Error::corruption(cf::FEATURES, key, e))?;
        let row = match (cached, attrs) {
            (Some(row), _) => Arc::clone(row),
            (None, attrs) => {
                let attributes = match attrs {
                    Some(Err(e)) => return Err(read_err(cf::ATTRIBUTES, key, e)),
                    Some(Ok(Some(b))) => {
                        Record::decode(&b).map_err(|e| Error::corruption(cf::ATTRIBUTES, key, e))?
                    }
                    _ => Record::default(),
                };
                Arc::new(UserRow {
                    user: user.clone(),
                    attributes,
                    ..UserRow::default()
                })
            }
        };
        let mut vectors = Vec::with_capacity(bindings.catalog.vectors.len());
        for d in &bindings.catalog.vectors {
            let v = match d.rule {
                VectorRule::Ewma { .. } => match feats.cell(d.id) {
                    Some(Cell::Ewma(e)) => Some(e.mean()),
                    _ => None,
                },
                VectorRule::Sgd { .. } => {
                    let vk = keys::vector_key(user, d.id);
                    match db
                        .get_pinned_cf_opt(cf_of(cf::VECTORS)?, &vk, &ro)
                        .map_err(|e| read_err(cf::VECTORS, &vk, e))?
                    {
                        Some(b) => VectorValue::decode(&b)
                            .map_err(|e| Error::corruption(cf::VECTORS, &vk, e))?
                            .current(),
                        None => None,
                    }
                }
            };
            vectors.push((d.id, v));
        }
        out.push(Some((row, vectors)));
    }
    Ok(out)
}

impl VectorIndex {
    pub(crate) fn new(db: Arc<DB>, bindings: SharedBindings) -> Arc<VectorIndex> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let (bell_tx, bell_rx) = crossbeam_channel::bounded(1);
        Arc::new(VectorIndex {
            db,
            bindings,
            state: RwLock::new(State::default()),
            apply: Mutex::new(()),
            active: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            inflight: AtomicUsize::new(0),
            from_snapshot: AtomicBool::new(false),
            tx,
            rx,
            bell_tx,
            bell_rx,
        })
    }

    /// Starts the refresher thread.
    pub(crate) fn spawn_refresher(index: &Arc<VectorIndex>) -> Result<JoinHandle<()>> {
        let index = Arc::clone(index);
        std::thread::Builder::new()
            .name("profiledb-index".into())
            .spawn(move || {
                while index.bell_rx.recv().is_ok() {
                    if index.stop.load(Ordering::SeqCst) {
                        return;
                    }
                    // A failed refresh leaves the users in no worse state than
                    // stale; the next query's catch-up reports the error.
                    let _ = index.drain();
                }
            })
            .map_err(Error::Io)
    }

    /// Stops the refresher: it exits at its next wake-up, which this rings.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.bell_tx.try_send(());
    }

    /// Marks a write as begun until the guard drops, after its changes are
    /// sent: meanwhile a snapshot cannot be sure it covers every acknowledged write.
    pub(crate) fn begin_write(&self) -> WriteGuard<'_> {
        self.inflight.fetch_add(1, Ordering::SeqCst);
        WriteGuard(self)
    }

    /// Installs tables loaded from a snapshot that covers the database as it is.
    pub(crate) fn install(&self, snap: super::snapshot::Snapshot) {
        let _guard = self.apply.lock();
        self.active.store(true, Ordering::SeqCst);
        *self.state.write() = State {
            vectors: Some(snap.vectors),
            tables: snap.tables,
        };
        self.from_snapshot.store(true, Ordering::SeqCst);
    }

    /// Whether the tables came from a snapshot rather than a scan.
    pub(crate) fn loaded_from_snapshot(&self) -> bool {
        self.from_snapshot.load(Ordering::SeqCst)
    }

    /// Writes a snapshot of the index into `dir` when it is built and covers
    /// every write up to the database's current sequence number; `checkpoint`
    /// (when given) runs in between, as the copy the snapshot describes.
    /// Returns whether a snapshot was written.
    pub(crate) fn write_snapshot(
        &self,
        dir: &std::path::Path,
        checkpoint: Option<&dyn Fn() -> Result<()>>,
    ) -> Result<bool> {
        let _guard = self.apply.lock();
        if let Some(c) = checkpoint {
            c()?;
        }
        if !self.active.load(Ordering::SeqCst) || self.inflight.load(Ordering::SeqCst) != 0 {
            return Ok(false);
        }
        let seq = self.db.latest_sequence_number();
        self.drain_locked()?;
        let state = self.state.read();
        // No write may have begun, or landed, while this ran.
        if self.inflight.load(Ordering::SeqCst) != 0 || self.db.latest_sequence_number() != seq {
            return Ok(false);
        }
        if state.vectors.as_ref() != Some(&vector_defs(&self.bindings.read())) {
            return Ok(false);
        }
        super::snapshot::write(dir, seq, &state.tables)?;
        Ok(true)
    }

    /// Removes the snapshot file from `dir`, if there is one: it may hold users
    /// deleted since it was written.
    pub(crate) fn forget_snapshot(&self, dir: &std::path::Path) -> Result<()> {
        let _guard = self.apply.lock();
        match std::fs::remove_file(dir.join(super::snapshot::FILE)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Whether the index has been built, so that writes must be sent to it.
    pub(crate) fn is_active(&self) -> bool {
        self.active.load(Ordering::SeqCst)
    }

    /// Tells the index that these users' vectors, and where flagged their
    /// attributes, may have changed. Called after RocksDB acknowledged the write.
    pub(crate) fn changed(&self, users: Vec<(String, bool)>) {
        if users.is_empty() || !self.active.load(Ordering::SeqCst) {
            return;
        }
        // The receiver lives as long as `self`, so sending cannot fail.
        let _ = self.tx.send(users);
        let _ = self.bell_tx.try_send(());
    }

    /// Change notices sent but not yet applied.
    pub(crate) fn pending(&self) -> usize {
        self.rx.len()
    }

    /// Removes a deleted user from every table at once.
    pub(crate) fn removed(&self, user: &str) {
        if !self.active.load(Ordering::SeqCst) {
            return;
        }
        for t in self.state.write().tables.values_mut() {
            t.remove(user);
        }
    }

    /// Drains the channel and applies what it held, under the apply lock.
    fn drain(&self) -> Result<()> {
        let _guard = self.apply.lock();
        self.drain_locked()
    }

    fn drain_locked(&self) -> Result<()> {
        let mut changes: Vec<(String, bool)> = Vec::new();
        while let Ok(batch) = self.rx.try_recv() {
            changes.extend(batch);
        }
        if changes.is_empty() {
            return Ok(());
        }
        // One entry per user; attributes changed if any change says so.
        changes.sort_unstable();
        changes.dedup_by(|later, earlier| {
            let same = later.0 == earlier.0;
            if same {
                earlier.1 |= later.1;
            }
            same
        });
        // A user whose attributes did not change keeps its cached row.
        let cached: Vec<Option<Arc<UserRow>>> = {
            let state = self.state.read();
            changes
                .iter()
                .map(|(u, attrs)| {
                    if *attrs {
                        return None;
                    }
                    state.tables.values().find_map(|t| {
                        let row = t.table.row_of(u)?;
                        t.users.get(row)?.clone()
                    })
                })
                .collect()
        };
        let users: Vec<String> = changes.into_iter().map(|(u, _)| u).collect();
        let bindings = Arc::clone(&self.bindings.read());
        // Reads are independent batched lookups: spread them over every core.
        let read = users
            .par_chunks(1024)
            .zip(cached.par_chunks(1024))
            .map(|(chunk, cached)| read_users(&self.db, &bindings, chunk, cached))
            .collect::<Result<Vec<_>>>()?;
        let mut state = self.state.write();
        for (u, r) in users.iter().zip(read.into_iter().flatten()) {
            match r {
                None => {
                    for t in state.tables.values_mut() {
                        t.remove(u);
                    }
                }
                Some((row, vectors)) => {
                    for (id, v) in vectors {
                        if let Some(t) = state.tables.get_mut(&id) {
                            t.set(&row, v.as_deref());
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Builds every table from a scan of the database.
    fn build_locked(&self, bindings: &Bindings) -> Result<State> {
        let mut tables: HashMap<u32, IndexTable> = bindings
            .catalog
            .vectors
            .iter()
            .map(|d| (d.id, IndexTable::new(d.dim as usize)))
            .collect();
        let db = &self.db;
        let cf_of = |name: &'static str| {
            db.cf_handle(name)
                .ok_or_else(|| Error::Engine(format!("column family '{name}' is missing")))
        };
        let snapshot = db.snapshot();
        let ro = || {
            let mut ro = ReadOptions::default();
            ro.set_snapshot(&snapshot);
            ro
        };
        let mut feats = db.raw_iterator_cf_opt(cf_of(cf::FEATURES)?, ro());
        let mut attrs = db.raw_iterator_cf_opt(cf_of(cf::ATTRIBUTES)?, ro());
        let mut sgd = db.raw_iterator_cf_opt(cf_of(cf::VECTORS)?, ro());
        feats.seek_to_first();
        attrs.seek_to_first();
        sgd.seek_to_first();
        while let Some(key) = feats.key() {
            let user = keys::user_of(key)
                .ok_or_else(|| Error::corruption(cf::FEATURES, key, "key is not a user key"))?;
            let record = Record::decode(feats.value().unwrap_or_default())
                .map_err(|e| Error::corruption(cf::FEATURES, key, e))?;
            while attrs.key().is_some_and(|k| k < key) {
                attrs.next();
            }
            let attributes = if attrs.key() == Some(key) {
                Record::decode(attrs.value().unwrap_or_default())
                    .map_err(|e| Error::corruption(cf::ATTRIBUTES, key, e))?
            } else {
                Record::default()
            };
            let row = Arc::new(UserRow {
                user: user.to_owned(),
                attributes,
                ..UserRow::default()
            });
            for d in &bindings.catalog.vectors {
                if let (VectorRule::Ewma { .. }, Some(Cell::Ewma(e))) = (&d.rule, record.cell(d.id))
                    && let Some(t) = tables.get_mut(&d.id)
                {
                    t.set(&row, Some(&e.mean()));
                }
            }
            // The user's sgd vectors: keys `user 0x00 def`, right after `key`.
            while sgd.key().is_some_and(|k| k < key) {
                sgd.next();
            }
            while let Some(k) = sgd.key() {
                let Some((u, def, _)) = keys::split(k) else {
                    return Err(Error::corruption(cf::VECTORS, k, "malformed vector key"));
                };
                if u != user {
                    break;
                }
                if let Some(t) = tables.get_mut(&def) {
                    let v = VectorValue::decode(sgd.value().unwrap_or_default())
                        .map_err(|e| Error::corruption(cf::VECTORS, k, e))?
                        .current();
                    t.set(&row, v.as_deref());
                }
                sgd.next();
            }
            feats.next();
        }
        for it in [&feats, &attrs, &sgd] {
            it.status().map_err(engine_err)?;
        }
        Ok(State {
            vectors: Some(vector_defs(bindings)),
            tables,
        })
    }

    /// Brings the index up to date with every acknowledged write (building it on
    /// first use, and again when vector definitions change), then calls `f` with
    /// the table of vector definition `def`, or `None` when there is no such
    /// vector.
    pub(crate) fn read<R>(&self, def: u32, f: impl FnOnce(Option<&IndexTable>) -> R) -> Result<R> {
        {
            let _guard = self.apply.lock();
            let bindings = Arc::clone(&self.bindings.read());
            let current = self.state.read().vectors.as_ref() == Some(&vector_defs(&bindings));
            if current {
                self.drain_locked()?;
            } else {
                // Writes from now on are sent; the scan below sees every write
                // acknowledged before this point.
                self.active.store(true, Ordering::SeqCst);
                let built = self.build_locked(&bindings)?;
                *self.state.write() = built;
                self.from_snapshot.store(false, Ordering::SeqCst);
                // What was sent during the scan is re-read: harmless, and it
                // covers writes the scan's snapshot missed.
                self.drain_locked()?;
            }
        }
        let state = self.state.read();
        Ok(f(state.tables.get(&def)))
    }
}
