//! The vector index: every user's current vector of every vector definition, in
//! memory as a [`crate::VectorTable`] per definition, with each row's
//! attributes beside it so that attribute filters run without reading the store.
//!
//! The store stays authoritative; the index is a cache kept in step with writes:
//!
//! - It is built on first use, by a scan, so databases that never rank by
//!   similarity pay nothing.
//! - Once built, every write sends the ids of users whose vectors or
//!   attributes may have changed over a crossbeam channel, and rings a one-slot
//!   doorbell. A background refresher wakes on the bell and re-reads those users.
//! - The channel is only ever drained under the `apply` lock. Re-reading a
//!   user reads its current state, so applying a change twice, or out of
//!   order, gives the same index.
//!
//! # One moment per answer
//!
//! A query that ranks by similarity pins the index together with its storage
//! snapshot ([`VectorIndex::pin`]), so that the rows it ranks, the scores it
//! prints and the rows it fetches are all one moment's:
//!
//! 1. Every write holds the `gate` (shared) from before its store write until
//!    its change notice is sent.
//! 2. Under the `apply` lock, the pin takes the `gate` exclusively for an
//!    instant: no write is then between its store write and its notice, so the
//!    notices in the channel name every user that changed since the index last
//!    read it. It takes the storage snapshot and the pending notices together,
//!    and lets writers go on.
//! 3. It re-reads those users *through that snapshot*, applies them, and
//!    downgrades its write lock on the tables to a read lock that the query
//!    holds to its end. The tables then equal the snapshot, user for user.
//!
//! Writers wait only for step 2. A drain that wants to apply while queries
//! hold the tables waits for them to end (it holds `apply`, so later pins wait
//! too); ingest never does.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use rayon::prelude::*;

use super::read::RowReader;
use crate::catalog::{Bindings, SharedBindings};
use crate::error::{Error, Result};
use crate::kv::Kv;
use crate::row::{RowNeeds, UserRange, UserRow, current_vector, vector_needs};
use crate::vector::IndexTable;

/// The index's contents: a table per vector definition id.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// The vector definitions (id, dimension) the tables were built for; `None`
    /// before the first build.
    vectors: Option<Vec<(u32, u32)>>,
    pub(crate) tables: HashMap<u32, IndexTable>,
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
pub(crate) struct VectorIndex<K: Kv> {
    kv: Arc<K>,
    bindings: SharedBindings,
    state: RwLock<State>,
    /// Held while draining the channel and applying what was drained.
    apply: Mutex<()>,
    /// Held shared by every write from its store write to its notice, and
    /// exclusively by a pin for an instant; see the module documentation.
    gate: RwLock<()>,
    /// Set once a build has started: from then on writes are sent.
    active: AtomicBool,
    stop: AtomicBool,
    /// Whether the tables came from a snapshot (and were not rebuilt since).
    from_snapshot: AtomicBool,
    /// Users whose vectors may have changed, each with whether its
    /// attributes may have changed too.
    tx: Sender<Vec<(String, bool)>>,
    rx: Receiver<Vec<(String, bool)>>,
    bell_tx: Sender<()>,
    bell_rx: Receiver<()>,
}

impl<K: Kv> std::fmt::Debug for VectorIndex<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VectorIndex")
            .field("active", &self.active.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A write in flight; see [`VectorIndex::begin_write`].
pub(crate) type WriteGuard<'a> = RwLockReadGuard<'a, ()>;

/// The index pinned at one storage snapshot: the snapshot, the catalog it was
/// read with, and the tables, equal to the snapshot, held until dropped.
pub(crate) type Pinned<'a, K> = (
    <K as Kv>::Snapshot<'a>,
    Arc<Bindings>,
    RwLockReadGuard<'a, State>,
);

/// A user's attributes (as a row), and the current vector of each vector
/// definition, by id; `None` for a user that does not exist.
type UserVectors = Option<(Arc<UserRow>, Vec<(u32, Option<Vec<f32>>)>)>;

impl<K: Kv> VectorIndex<K> {
    pub(crate) fn new(kv: Arc<K>, bindings: SharedBindings) -> Arc<VectorIndex<K>> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let (bell_tx, bell_rx) = crossbeam_channel::bounded(1);
        Arc::new(VectorIndex {
            kv,
            bindings,
            state: RwLock::new(State::default()),
            apply: Mutex::new(()),
            gate: RwLock::new(()),
            active: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            from_snapshot: AtomicBool::new(false),
            tx,
            rx,
            bell_tx,
            bell_rx,
        })
    }

    /// Starts the refresher thread.
    pub(crate) fn spawn_refresher(index: &Arc<VectorIndex<K>>) -> Result<JoinHandle<()>> {
        let index = Arc::clone(index);
        std::thread::Builder::new()
            .name("profiledb-index".into())
            .spawn(move || {
                while index.bell_rx.recv().is_ok() {
                    if index.stop.load(Ordering::SeqCst) {
                        return;
                    }
                    // A failed refresh puts its users back; the next query's
                    // catch-up reports the error.
                    let _guard = index.apply.lock();
                    let _ = index.drain_latest();
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
    /// sent; see the module documentation.
    pub(crate) fn begin_write(&self) -> WriteGuard<'_> {
        self.gate.read()
    }

    /// Installs tables loaded from a snapshot that covers the store as it is.
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
    #[cfg(feature = "testing")]
    pub(crate) fn loaded_from_snapshot(&self) -> bool {
        self.from_snapshot.load(Ordering::SeqCst)
    }

    /// Writes a snapshot of the index into `dir` when it is built, covering
    /// every write up to the store's sequence number at that moment;
    /// `checkpoint` (when given) runs first, as the copy the snapshot
    /// describes. Writers go on meanwhile: a copy that misses writes the
    /// snapshot covers has a lower sequence number than the snapshot, and
    /// ignores it when opened. Returns whether a snapshot was written.
    pub(crate) fn write_snapshot(
        &self,
        dir: &std::path::Path,
        checkpoint: Option<&dyn Fn() -> Result<()>>,
    ) -> Result<bool> {
        let _apply = self.apply.lock();
        if let Some(c) = checkpoint {
            c()?;
        }
        if !self.active.load(Ordering::SeqCst) {
            return Ok(false);
        }
        let (snap, seq, bindings) = {
            let _gate = self.gate.write();
            (
                self.kv.snapshot(),
                self.kv.sequence(),
                Arc::clone(&self.bindings.read()),
            )
        };
        if self.state.read().vectors.as_ref() != Some(&vector_defs(&bindings)) {
            return Ok(false);
        }
        // Notices taken after the snapshot name writes it may not hold; they
        // are re-read through it, which is harmless, and stay due for the
        // next catch-up, which reads them again.
        let users = self.take_pending();
        let state =
            RwLockWriteGuard::downgrade(self.apply_users(&snap, &bindings, users.clone())?);
        self.requeue(users);
        super::snapshot::write(dir, seq, &state.tables)?;
        Ok(true)
    }

    /// Whether the index has been built, so that writes must be sent to it.
    pub(crate) fn is_active(&self) -> bool {
        self.active.load(Ordering::SeqCst)
    }

    /// Tells the index that these users' vectors, and where flagged their
    /// attributes, may have changed. Called after the store acknowledged the
    /// write, before the write's guard is dropped.
    pub(crate) fn changed(&self, users: Vec<(String, bool)>) {
        if users.is_empty() || !self.active.load(Ordering::SeqCst) {
            return;
        }
        // The receiver lives as long as `self`, so sending cannot fail.
        let _ = self.tx.send(users);
        let _ = self.bell_tx.try_send(());
    }

    /// Change notices sent but not yet applied.
    #[cfg(feature = "rocksdb")]
    pub(crate) fn pending(&self) -> usize {
        self.rx.len()
    }

    /// Every pending notice, one entry per user, sorted; attributes changed
    /// when any notice says so.
    fn take_pending(&self) -> Vec<(String, bool)> {
        let mut users: Vec<(String, bool)> = Vec::new();
        while let Ok(batch) = self.rx.try_recv() {
            users.extend(batch);
        }
        users.sort_unstable();
        users.dedup_by(|later, earlier| {
            let same = later.0 == earlier.0;
            if same {
                earlier.1 |= later.1;
            }
            same
        });
        users
    }

    /// Sends `users` again, so that the next catch-up re-reads them.
    fn requeue(&self, users: Vec<(String, bool)>) {
        if !users.is_empty() {
            let _ = self.tx.send(users);
        }
    }

    /// Drains the channel, reading the users' latest state. Under `apply`.
    fn drain_latest(&self) -> Result<()> {
        let users = self.take_pending();
        if users.is_empty() {
            return Ok(());
        }
        let snap = self.kv.snapshot();
        let bindings = Arc::clone(&self.bindings.read());
        self.apply_users(&snap, &bindings, users).map(drop)
    }

    /// Re-reads `users` through `snap` and applies them, returning the tables
    /// write-locked. Under `apply`. On failure the users are sent again, so
    /// that a later drain retries them.
    fn apply_users<'s>(
        &'s self,
        snap: &K::Snapshot<'_>,
        bindings: &Bindings,
        users: Vec<(String, bool)>,
    ) -> Result<RwLockWriteGuard<'s, State>> {
        // A user whose attributes did not change keeps its cached row.
        let cached: Vec<Option<Arc<UserRow>>> = {
            let state = self.state.read();
            users
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
        // Reads are independent batched lookups: spread them over every core.
        let read = users
            .par_chunks(1024)
            .zip(cached.par_chunks(1024))
            .map(|(chunk, cached)| read_users(snap, bindings, chunk, cached))
            .collect::<Result<Vec<_>>>();
        let read = match read {
            Ok(r) => r,
            Err(e) => {
                let _ = self.tx.send(users);
                return Err(e);
            }
        };
        let mut state = self.state.write();
        for ((u, _), r) in users.iter().zip(read.into_iter().flatten()) {
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
        Ok(state)
    }

    /// Builds every table from a scan of `snap`.
    fn build(&self, snap: &K::Snapshot<'_>, bindings: &Bindings) -> Result<State> {
        let mut tables: HashMap<u32, IndexTable> = bindings
            .catalog
            .vectors
            .iter()
            .map(|d| (d.id, IndexTable::new(d.dim as usize)))
            .collect();
        let needs = vector_needs(bindings);
        RowReader::new(snap).scan(&UserRange::all(), &needs, &mut |row| {
            let user = Arc::new(UserRow {
                user: row.user.clone(),
                attributes: row.attributes.clone(),
                ..UserRow::default()
            });
            for d in &bindings.catalog.vectors {
                if let (Some(t), Some(v)) = (tables.get_mut(&d.id), current_vector(d, row)) {
                    t.set(&user, Some(&v));
                }
            }
            true
        })?;
        Ok(State {
            vectors: Some(vector_defs(bindings)),
            tables,
        })
    }

    /// (Re)builds the tables from a snapshot when they were built for other
    /// vector definitions than `bindings`'s, or never. Under `apply`.
    fn build_if_stale(&self, snap: &K::Snapshot<'_>, bindings: &Bindings) -> Result<bool> {
        if self.state.read().vectors.as_ref() == Some(&vector_defs(bindings)) {
            return Ok(false);
        }
        let built = self.build(snap, bindings)?;
        *self.state.write() = built;
        self.from_snapshot.store(false, Ordering::SeqCst);
        Ok(true)
    }

    /// Pins the index at a storage snapshot: see the module documentation.
    /// Builds the index on first use, and again when the vector definitions
    /// changed.
    pub(crate) fn pin(&self) -> Result<Pinned<'_, K>> {
        let _apply = self.apply.lock();
        if !self.active.load(Ordering::SeqCst)
            || self.state.read().vectors.as_ref() != Some(&vector_defs(&self.bindings.read()))
        {
            // Writes from now on are sent; the scan below sees every write
            // acknowledged before it, and those after it are sent.
            self.active.store(true, Ordering::SeqCst);
            let snap = self.kv.snapshot();
            let bindings = Arc::clone(&self.bindings.read());
            self.build_if_stale(&snap, &bindings)?;
        }
        let (snap, bindings, users) = {
            let _gate = self.gate.write();
            (
                self.kv.snapshot(),
                Arc::clone(&self.bindings.read()),
                self.take_pending(),
            )
        };
        if self.build_if_stale(&snap, &bindings)? {
            // The build read the snapshot itself.
            return Ok((snap, bindings, self.state.read()));
        }
        let state = self.apply_users(&snap, &bindings, users)?;
        Ok((snap, bindings, RwLockWriteGuard::downgrade(state)))
    }
}

/// The current vectors of `users` (sorted) through `snap`, with their
/// attributes: `cached[i]` when given (its attributes did not change), else
/// read too.
fn read_users<S: crate::kv::KvSnapshot>(
    snap: &S,
    bindings: &Bindings,
    users: &[(String, bool)],
    cached: &[Option<Arc<UserRow>>],
) -> Result<Vec<UserVectors>> {
    let with_attrs = vector_needs(bindings);
    let without = RowNeeds {
        attributes: false,
        ..with_attrs.clone()
    };
    let (fresh, kept): (Vec<usize>, Vec<usize>) =
        (0..users.len()).partition(|&i| cached[i].is_none());
    let ids = |at: &[usize]| at.iter().map(|&i| users[i].0.clone()).collect::<Vec<_>>();
    let mut reader = RowReader::new(snap);
    let mut rows: Vec<Option<UserRow>> = vec![None; users.len()];
    for (at, needs) in [(&fresh, &with_attrs), (&kept, &without)] {
        if at.is_empty() {
            continue;
        }
        for (&i, row) in at.iter().zip(reader.get_many(&ids(at), needs)?) {
            rows[i] = row;
        }
    }
    Ok(rows
        .into_iter()
        .zip(cached)
        .map(|(row, cached)| {
            let row = row?;
            let vectors = bindings
                .catalog
                .vectors
                .iter()
                .map(|d| (d.id, current_vector(d, &row)))
                .collect();
            let user = match cached {
                Some(c) => Arc::clone(c),
                None => Arc::new(UserRow {
                    user: row.user,
                    attributes: row.attributes,
                    ..UserRow::default()
                }),
            };
            Some((user, vectors))
        })
        .collect())
}
