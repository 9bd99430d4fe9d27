//! The engine's in-memory indexes, kept in step with writes: the vector index
//! (every user's current vector of every vector definition, as a
//! [`crate::VectorTable`] per definition, with each row's attributes beside it
//! so that attribute filters run without reading the store) and the row table
//! (every user's decoded records, for scans; see `super::rows`).
//!
//! The store stays authoritative; each index is a cache:
//!
//! - It is built on first use, by a scan: the vector index by the first
//!   similarity query, which waits for it; the row table by the refresher,
//!   in the background, when the first scan asks for it (scans read the store
//!   until it is built). Databases that never rank or scan pay nothing, but
//!   for this: a store without users keeps the row table from the start, its
//!   writes waiting, up to a bound, for the first view that pins it
//!   ([`Index::keep_rows_if_empty`]).
//! - Once built, every write tells each built index what changed, over that
//!   index's crossbeam channel, and rings a one-slot doorbell; a background
//!   refresher wakes on the bell and applies what was sent. Channels are only
//!   ever drained under the `apply` lock.
//! - The vector index hears the ids of users whose vectors or attributes may
//!   have changed, and re-reads them: re-reading reads a user's current
//!   state, so applying a change twice, or out of order, gives the same index.
//! - The row table hears the merge operands themselves ([`RowChange`]) and
//!   merges them into its records as the store does, so that keeping it
//!   current costs a merge per event and no read: the store's operands may
//!   pile up until compaction folds them, but scans never read them. Merges
//!   commute (up to floating-point rounding, which compaction's own grouping
//!   of operands changes too), but must each be applied exactly once: the
//!   table is built from a snapshot taken with its channel opened under the
//!   `gate` (below), so that every write is either in that snapshot or sent.
//!   Deletes and attribute writes ask for a re-read, which is made through a
//!   snapshot taken with the drain, again under the `gate`.

//! # One moment per answer
//!
//! A query pins what it reads together with its storage snapshot
//! ([`Index::pin`]), so that the rows it ranks or scans, the scores it prints
//! and the rows it fetches are all one moment's:
//!
//! 1. Every write holds the `gate` (shared) from before its store write until
//!    its change notices are sent.
//! 2. Under the `apply` lock, the pin takes the `gate` exclusively for an
//!    instant: no write is then between its store write and its notices, so the
//!    notices in a channel name every user that changed since that index last
//!    read it. It takes the storage snapshot and the pending notices together,
//!    and lets writers go on.
//! 3. It re-reads those users *through that snapshot* and applies them. The
//!    vector tables are then downgraded from a write lock to a read lock that
//!    the query holds to its end; the row table is persistent, so the query
//!    keeps the version it pinned and later changes make new ones. Either way
//!    the index equals the snapshot, user for user.
//!
//! Writers wait only for step 2. A drain that wants to apply to the vector
//! tables while queries hold them waits for them to end (it holds `apply`, so
//! later pins wait too); ingest never does, and the row table never waits.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use rayon::iter::Either;
use rayon::prelude::*;

use super::read::RowReader;
use super::rows::RowTable;
use crate::catalog::{Bindings, SharedBindings};
use crate::error::{Error, Result};
use crate::kv::{Kv, KvIter, KvSnapshot};
use crate::merge::record::Record;
use crate::row::{RowNeeds, UserRange, UserRow, current_vector, vector_needs};
use crate::vector::IndexTable;

mod ivf;

/// The vector index's contents: a table per vector definition id.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// The vector definitions (id, dimension) the tables were built for; `None`
    /// before the first build.
    vectors: Option<Vec<(u32, u32)>>,
    pub(crate) tables: HashMap<u32, IndexTable>,
}

/// The vector definitions of a catalog, as (id, dimension).
/// How often the refresher folds the event history past its horizon.
const FOLD_EVERY_MS: i64 = 3_600_000;

pub(crate) fn vector_defs(bindings: &Bindings) -> Vec<(u32, u32)> {
    bindings
        .catalog
        .vectors
        .iter()
        .map(|d| (d.id, d.dim))
        .collect()
}

/// What a read view pins beside the catalog and a storage snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pins {
    /// The vector index, for rankings ([`super::ReadView::nearest`]); built
    /// on first use.
    pub vectors: bool,
    /// The row table, for scans ([`super::ReadView::scan`] with needs the
    /// table holds, see [`RowNeeds::in_row_table`]). The first view that asks
    /// for it has it built in the background, and reads the store, as every
    /// view does until it is built.
    pub rows: bool,
}

impl Pins {
    /// The data alone.
    pub const NONE: Pins = Pins {
        vectors: false,
        rows: false,
    };
    /// The vector index.
    pub const VECTORS: Pins = Pins {
        vectors: true,
        rows: false,
    };
    /// The row table.
    pub const ROWS: Pins = Pins {
        vectors: false,
        rows: true,
    };
}

/// Where the row table stands.
#[derive(Debug, Clone)]
pub(crate) enum Rows {
    /// Not built: no scan asked for it yet, or a dropped definition made it stale.
    Off,
    /// Being built by the refresher, from a snapshot taken when its channel
    /// opened; what was sent since waits in the channel.
    Building,
    /// Built, and kept in step with writes.
    On(RowTable),
    /// The rows took more memory than the limit when last built (users, bytes
    /// seen by then): scans read the store, until the database is reopened.
    TooLarge { users: usize, bytes: usize },
}

/// Figures on the row table, for monitoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RowTableStats {
    /// Whether scans read the table.
    pub built: bool,
    /// Whether it was refused for being larger than the limit.
    pub too_large: bool,
    /// Users in it (or seen when it was refused).
    pub users: u64,
    /// Its estimated memory, in bytes (or seen when it was refused).
    pub bytes: u64,
    /// Change notices not yet applied.
    pub pending: u64,
}

/// A change the row table learns of, in the order of no particular write:
/// record merges commute (up to floating-point rounding), and a re-read reads
/// through a snapshot that holds every write whose change was taken with it.
#[derive(Debug)]
pub(crate) enum RowChange {
    /// The merge operands (encoded records) a write added to its users'
    /// features records and attributes records.
    Merges(RowMerges),
    /// The user's state changed in another way (deleted, attributes set):
    /// read it again.
    Reread(String),
}

impl RowChange {
    /// Memory the change takes while it waits, estimated.
    fn bytes(&self) -> usize {
        std::mem::size_of::<RowChange>()
            + match self {
                RowChange::Merges(m) => m.bytes(),
                RowChange::Reread(user) => user.len(),
            }
    }
}

/// One write's merge operands for the row table, packed: each event's user,
/// features operand and attributes operand one after another in one
/// buffer, so that a write keeps one allocation waiting (the operands
/// themselves are freed as they would be without the table) rather than
/// three an event.
#[derive(Debug, Default)]
pub(crate) struct RowMerges {
    buf: Vec<u8>,
    /// Where each event's parts end in `buf`: its user, its features
    /// operand, its attributes operand (as long as the features one when
    /// it has none), and whether it has one.
    ends: Vec<(usize, usize, usize, bool)>,
}

/// One event's merge, borrowed from its [`RowMerges`]: the user, the
/// features operand and the attributes operand, if any.
type Merge<'a> = (&'a str, &'a [u8], Option<&'a [u8]>);

impl RowMerges {
    /// Room for `events` events of about `bytes` bytes in all.
    pub(crate) fn with_capacity(events: usize, bytes: usize) -> RowMerges {
        RowMerges {
            buf: Vec::with_capacity(bytes),
            ends: Vec::with_capacity(events),
        }
    }

    /// Adds an event's operands.
    pub(crate) fn push(&mut self, user: &str, features: &[u8], attributes: Option<&[u8]>) {
        self.buf.extend_from_slice(user.as_bytes());
        let u = self.buf.len();
        self.buf.extend_from_slice(features);
        let f = self.buf.len();
        if let Some(a) = attributes {
            self.buf.extend_from_slice(a);
        }
        self.ends.push((u, f, self.buf.len(), attributes.is_some()));
    }

    /// The events pushed.
    fn len(&self) -> usize {
        self.ends.len()
    }

    /// Memory the operands take, estimated.
    fn bytes(&self) -> usize {
        self.buf.capacity()
            + self.ends.capacity() * std::mem::size_of::<(usize, usize, usize, bool)>()
    }

    /// Each event's merge, in the order pushed.
    fn iter(&self) -> impl Iterator<Item = Merge<'_>> {
        let mut start = 0;
        self.ends
            .iter()
            .filter_map(move |&(u, f, a, has_attributes)| {
                let from = std::mem::replace(&mut start, a);
                // Pushed from a `&str`: always whole characters.
                let user = std::str::from_utf8(self.buf.get(from..u)?).ok()?;
                Some((
                    user,
                    self.buf.get(u..f)?,
                    has_attributes.then(|| self.buf.get(f..a)).flatten(),
                ))
            })
    }
}

/// One index's change notices.
struct Queue<T> {
    /// Set once the index's build has started: from then on writes are sent.
    active: AtomicBool,
    tx: Sender<Vec<T>>,
    rx: Receiver<Vec<T>>,
}

impl<T> Queue<T> {
    fn new() -> Queue<T> {
        let (tx, rx) = crossbeam_channel::unbounded();
        Queue {
            active: AtomicBool::new(false),
            tx,
            rx,
        }
    }

    fn is_active(&self) -> bool {
        self.active.load(Ordering::SeqCst)
    }

    fn send(&self, items: Vec<T>) {
        if !items.is_empty() {
            // The receiver lives as long as the sender, so sending cannot fail.
            let _ = self.tx.send(items);
        }
    }

    /// Every pending notice, in the order sent.
    fn drain(&self) -> Vec<T> {
        let mut out = Vec::new();
        while let Ok(batch) = self.rx.try_recv() {
            out.extend(batch);
        }
        out
    }
}

impl Queue<(String, bool)> {
    /// Every pending notice, one entry per user, sorted; attributes changed
    /// when any notice says so.
    fn take(&self) -> Vec<(String, bool)> {
        let mut users = self.drain();
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
}

/// The in-memory indexes and their refresher.
pub(crate) struct Index<K: Kv> {
    kv: Arc<K>,
    bindings: SharedBindings,
    state: RwLock<State>,
    /// Held by an IVF build, so that one runs at a time.
    ivf_build: Mutex<()>,
    /// The current version of the row table.
    rows: Mutex<Rows>,
    /// Most memory the row table may take, in bytes.
    rows_limit: usize,
    /// Set by a scan that found no row table: the refresher builds it.
    rows_wanted: AtomicBool,
    /// Set while the row table is kept from an empty store and no view has
    /// pinned it yet: writes' changes wait in its channel, and the first
    /// view that pins it applies them all at once (see
    /// [`Index::keep_rows_if_empty`]).
    rows_deferred: AtomicBool,
    /// Bytes of the changes waiting while [`Index::rows_deferred`] is set.
    deferred_bytes: AtomicUsize,
    /// Figures on the row table as last set (pending changes aside), kept
    /// apart so that they stay right while a drain has the table out.
    row_figures: Mutex<RowTableStats>,
    /// Held while draining a channel and applying what was drained.
    apply: Mutex<()>,
    /// Held shared by every write from its store write to its notices, and
    /// exclusively by a pin for an instant; see the module documentation.
    gate: RwLock<()>,
    /// When the refresher last folded the event history.
    last_fold: std::sync::atomic::AtomicI64,
    /// Held by a fold of the event history and by a build of an item over
    /// it, which must not see history move under them.
    pub(crate) history_work: Mutex<()>,
    /// When the refresher last deleted users past the user TTL.
    last_expiry: std::sync::atomic::AtomicI64,
    /// Users deleted for the user TTL since the engine opened.
    pub(crate) users_expired: std::sync::atomic::AtomicU64,
    /// The engine's clock: fixed (epoch ms) for tests, or 0 for the wall
    /// clock; see [`super::Engine::now`].
    pub(crate) clock: std::sync::atomic::AtomicI64,
    vector_queue: Queue<(String, bool)>,
    row_queue: Queue<RowChange>,
    stop: AtomicBool,
    /// Whether the tables came from a snapshot (and were not rebuilt since).
    from_snapshot: AtomicBool,
    bell_tx: Sender<()>,
    bell_rx: Receiver<()>,
}

impl<K: Kv> std::fmt::Debug for Index<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("vectors", &self.vector_queue.is_active())
            .field("rows", &self.row_queue.is_active())
            .finish_non_exhaustive()
    }
}

/// A write in flight; see [`Index::begin_write`].
pub(crate) type WriteGuard<'a> = RwLockReadGuard<'a, ()>;

/// What a pin holds: the snapshot, the catalog it was read with, and (as
/// asked) the vector tables and the row table, equal to the snapshot.
pub(crate) struct Pinned<'a, K: Kv> {
    pub(crate) snap: K::Snapshot<'a>,
    pub(crate) bindings: Arc<Bindings>,
    pub(crate) vectors: Option<RwLockReadGuard<'a, State>>,
    pub(crate) rows: Option<RowTable>,
}

/// A user's row as the indexes keep it (id and records), and the current
/// vector of each vector definition, by id; `None` for a user that does not
/// exist.
type UserState = Option<(Arc<UserRow>, Vec<(u32, Option<Vec<f32>>)>)>;

impl<K: Kv> Index<K> {
    pub(crate) fn new(kv: Arc<K>, bindings: SharedBindings, rows_limit: usize) -> Arc<Index<K>> {
        let (bell_tx, bell_rx) = crossbeam_channel::bounded(1);
        Arc::new(Index {
            kv,
            bindings,
            state: RwLock::new(State::default()),
            rows: Mutex::new(Rows::Off),
            rows_limit,
            rows_wanted: AtomicBool::new(false),
            rows_deferred: AtomicBool::new(false),
            deferred_bytes: AtomicUsize::new(0),
            row_figures: Mutex::new(RowTableStats::default()),
            apply: Mutex::new(()),
            ivf_build: Mutex::new(()),
            gate: RwLock::new(()),
            last_fold: std::sync::atomic::AtomicI64::new(i64::MIN),
            history_work: Mutex::new(()),
            last_expiry: std::sync::atomic::AtomicI64::new(i64::MIN),
            users_expired: std::sync::atomic::AtomicU64::new(0),
            clock: std::sync::atomic::AtomicI64::new(0),
            vector_queue: Queue::new(),
            row_queue: Queue::new(),
            stop: AtomicBool::new(false),
            from_snapshot: AtomicBool::new(false),
            bell_tx,
            bell_rx,
        })
    }

    /// Starts the refresher thread.
    pub(crate) fn spawn_refresher(index: &Arc<Index<K>>) -> Result<JoinHandle<()>> {
        let index = Arc::clone(index);
        std::thread::Builder::new()
            .name("profiledb-index".into())
            .spawn(move || {
                while index.bell_rx.recv().is_ok() {
                    if index.stop.load(Ordering::SeqCst) {
                        return;
                    }
                    if index.rows_wanted.swap(false, Ordering::SeqCst) {
                        index.build_rows_now();
                    }
                    if index.deferred_over_limit() {
                        // Nothing scanned while far more was written than
                        // a first scan should apply at once: the first
                        // scan builds the table from the store instead.
                        index.reset_rows();
                    }
                    // A failed refresh puts its users back; the next query's
                    // catch-up reports the error.
                    {
                        let _guard = index.apply.lock();
                        let _ = index.drain_latest();
                    }
                    if index.vector_queue.is_active() {
                        index.maintain_ivf();
                    }
                    index.fold_history_if_due();
                    index.expire_users_if_due();
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

    /// Folds the event history past its horizon, at most hourly (as writes
    /// wake the refresher: without writes there is nothing new to fold).
    fn fold_history_if_due(&self) {
        let now = self.now();
        let last = self.last_fold.load(Ordering::Relaxed);
        if !self.history_due(now)
            || self
                .last_fold
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        if let Err(e) = super::write::fold_history(&*self.kv, self, now) {
            log::warn!("the event history was not folded: {e}; the next fold retries");
        }
    }

    /// The current catalog.
    pub(crate) fn bindings(&self) -> Arc<Bindings> {
        Arc::clone(&self.bindings.read())
    }

    /// Deletes the users past the user TTL, at most hourly (as writes wake
    /// the refresher).
    fn expire_users_if_due(&self) {
        let now = self.now();
        let last = self.last_expiry.load(Ordering::Relaxed);
        if !self.expiry_due(now)
            || self
                .last_expiry
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        if let Err(e) = super::write::expire_users(&*self.kv, self, now) {
            log::warn!("users past the user TTL were not deleted: {e}; the next run retries");
        }
    }

    /// Holds every write off (between its store write and its notices, so
    /// none is in flight) until the guard is dropped: for a read and a write
    /// of the store that no write may come between.
    pub(crate) fn hold_writes(&self) -> parking_lot::RwLockWriteGuard<'_, ()> {
        self.gate.write()
    }

    /// Installs tables loaded from a snapshot that covers the store as it is.
    pub(crate) fn install(&self, snap: super::snapshot::Snapshot) {
        let _guard = self.apply.lock();
        self.vector_queue.active.store(true, Ordering::SeqCst);
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

    /// Writes a snapshot of the vector index into `dir` when it is built,
    /// covering every write up to the store's sequence number at that moment;
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
        if !self.vector_queue.is_active() {
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
        let users = self.vector_queue.take();
        let state = RwLockWriteGuard::downgrade(self.apply_vectors(&snap, &bindings, &users)?);
        self.vector_queue.send(users);
        super::snapshot::write(dir, seq, &state.tables)?;
        Ok(true)
    }

    /// Whether the vector index has been built, so that writes to users of
    /// event types that feed vectors or attributes must be sent to it.
    pub(crate) fn wants_vector_changes(&self) -> bool {
        self.vector_queue.is_active()
    }

    /// Whether the row table has been built, so that every write must be sent
    /// to it.
    pub(crate) fn wants_row_changes(&self) -> bool {
        self.row_queue.is_active()
    }

    /// Tells the indexes of a write: the vector index that these users'
    /// state, and where flagged their attributes, may have changed; the row
    /// table of `rows`. Called after the store acknowledged the write, before
    /// the write's guard is dropped.
    pub(crate) fn changed(&self, vectors: Vec<(String, bool)>, rows: Vec<RowChange>) {
        let mut rang = false;
        if !vectors.is_empty() && self.vector_queue.is_active() {
            self.vector_queue.send(vectors);
            rang = true;
        }
        if !rows.is_empty() && self.row_queue.is_active() {
            if self.rows_deferred.load(Ordering::SeqCst) {
                // Waiting for the first view that pins the table: the
                // refresher has nothing to do unless they grew too large.
                let bytes: usize = rows.iter().map(RowChange::bytes).sum();
                self.deferred_bytes.fetch_add(bytes, Ordering::SeqCst);
                rang |= self.deferred_over_limit();
            } else {
                rang = true;
            }
            self.row_queue.send(rows);
        }
        if rang || self.fold_due(self.now()) {
            let _ = self.bell_tx.try_send(());
        }
    }

    /// The engine's clock: the fixed time, or the wall clock's.
    pub(crate) fn now(&self) -> i64 {
        match self.clock.load(Ordering::Relaxed) {
            0 => crate::time::now_ms(),
            t => t,
        }
    }

    /// Whether the event history is kept and was last folded an hour ago or
    /// more, or users have a TTL and were last expired an hour ago or more:
    /// the refresher has housekeeping to do.
    fn fold_due(&self, now: i64) -> bool {
        self.history_due(now) || self.expiry_due(now)
    }

    /// Whether the history is kept and was last folded an hour ago or more.
    fn history_due(&self, now: i64) -> bool {
        now.saturating_sub(self.last_fold.load(Ordering::Relaxed)) >= FOLD_EVERY_MS
            && self.bindings.read().catalog.history_ms > 0
    }

    /// Whether users have a TTL and were last expired an hour ago or more.
    fn expiry_due(&self, now: i64) -> bool {
        now.saturating_sub(self.last_expiry.load(Ordering::Relaxed)) >= FOLD_EVERY_MS
            && self.bindings.read().catalog.user_ttl_ms > 0
    }

    /// Tells both indexes that `user` changed, attributes included, in a way
    /// only reading it again tells.
    pub(crate) fn changed_user(&self, user: &str) {
        self.changed(
            vec![(user.to_owned(), true)],
            vec![RowChange::Reread(user.to_owned())],
        );
    }

    /// Forgets the row table: a dropped definition's cells are in every
    /// row, and the next scan builds the table afresh.
    /// A store that holds no user (yet) keeps it from then on (see
    /// [`Index::keep_rows_if_empty`]).
    pub(crate) fn reset_rows(&self) {
        {
            let _apply = self.apply.lock();
            self.row_queue.active.store(false, Ordering::SeqCst);
            self.rows_deferred.store(false, Ordering::SeqCst);
            self.set_rows(Rows::Off);
            drop(self.row_queue.drain());
        }
        if let Err(e) = self.keep_rows_if_empty() {
            log::warn!("the store could not be read: {e}; the first scan builds the row table");
        }
    }

    /// Keeps the row table from now on when the store holds no user: an
    /// empty table equals it, so keeping it costs nothing to build. Writes'
    /// changes then wait in its channel until the first view pins the table
    /// and applies them all at once, in parallel (the first scan after a
    /// bulk load of an empty database reads a table rather than reading the
    /// store while building one beside it), or until they take a quarter of
    /// the table's memory limit: the table is then dropped, and built from
    /// the store when a scan first asks for it, as for a store opened with
    /// users in it. A database that is never scanned holds at most that
    /// much, and only until then.
    pub(crate) fn keep_rows_if_empty(&self) -> Result<()> {
        if self.rows_limit == 0 {
            return Ok(());
        }
        let _apply = self.apply.lock();
        if !matches!(*self.rows.lock(), Rows::Off) {
            return Ok(());
        }
        // No write in flight: every write is either in the snapshot checked
        // here or sent from now on.
        let _gate = self.gate.write();
        let snap = self.kv.snapshot();
        let mut users = snap.iter(crate::kv::FEATURES, None, None)?;
        users.seek_to_first();
        users.status()?;
        if users.key().is_some() {
            return Ok(());
        }
        drop(self.row_queue.drain());
        self.deferred_bytes.store(0, Ordering::SeqCst);
        self.rows_deferred.store(true, Ordering::SeqCst);
        self.row_queue.active.store(true, Ordering::SeqCst);
        self.set_rows(Rows::On(RowTable::default()));
        Ok(())
    }

    /// Whether changes waiting for the first pin of a table kept from an
    /// empty store outgrew their limit, a quarter of the table's.
    fn deferred_over_limit(&self) -> bool {
        self.rows_deferred.load(Ordering::SeqCst)
            && self.deferred_bytes.load(Ordering::SeqCst) > self.rows_limit / 4
    }

    /// Forgets the vector tables: the next use builds them from the store.
    pub(crate) fn reset_vectors(&self) {
        let _apply = self.apply.lock();
        self.state.write().vectors = None;
    }

    /// Makes `rows` the row table's state, and its figures the published ones.
    fn set_rows(&self, rows: Rows) {
        let figures = match &rows {
            Rows::Off | Rows::Building => RowTableStats::default(),
            Rows::On(t) => RowTableStats {
                built: true,
                users: t.len() as u64,
                bytes: t.bytes() as u64,
                ..RowTableStats::default()
            },
            Rows::TooLarge { users, bytes } => RowTableStats {
                too_large: true,
                users: *users as u64,
                bytes: *bytes as u64,
                ..RowTableStats::default()
            },
        };
        *self.rows.lock() = rows;
        *self.row_figures.lock() = figures;
    }

    /// Vector index change notices sent but not yet applied.
    #[cfg(feature = "rocksdb")]
    pub(crate) fn pending(&self) -> usize {
        self.vector_queue.rx.len()
    }

    /// Most memory the row table may take, in bytes.
    pub(crate) fn rows_limit(&self) -> usize {
        self.rows_limit
    }

    /// Figures on the row table.
    pub(crate) fn row_stats(&self) -> RowTableStats {
        RowTableStats {
            pending: self.row_queue.rx.len() as u64,
            ..*self.row_figures.lock()
        }
    }

    /// Drains both channels and applies them, through a snapshot taken with
    /// them (see the module documentation); writers are held off for that
    /// instant only when the row table has merges due. Under `apply`.
    fn drain_latest(&self) -> Result<()> {
        let rows_due = matches!(*self.rows.lock(), Rows::On(_))
            && !self.rows_deferred.load(Ordering::SeqCst)
            && !self.row_queue.rx.is_empty();
        let (snap, bindings, vectors, rows) = if rows_due {
            // Merges must meet a snapshot taken with them: hold writers off
            // for that instant.
            let _gate = self.gate.write();
            (
                self.kv.snapshot(),
                Arc::clone(&self.bindings.read()),
                self.vector_queue.take(),
                self.row_changes_due(),
            )
        } else {
            // Re-reads alone need no gate: a snapshot taken after the drain
            // holds every write drained (and maybe later ones, read again
            // when their notices come).
            let vectors = self.vector_queue.take();
            (
                self.kv.snapshot(),
                Arc::clone(&self.bindings.read()),
                vectors,
                Vec::new(),
            )
        };
        // The row table first: applying to it never waits for queries.
        let applied = self.apply_rows(&snap, &bindings, rows);
        if !vectors.is_empty() {
            self.apply_vectors(&snap, &bindings, &vectors).map(drop)?;
        }
        applied
    }

    /// Re-reads `users` through `snap` and applies them to the vector tables,
    /// returning them write-locked. Under `apply`. On failure the users are
    /// sent again, so that a later drain retries them.
    fn apply_vectors<'s>(
        &'s self,
        snap: &K::Snapshot<'_>,
        bindings: &Bindings,
        users: &[(String, bool)],
    ) -> Result<RwLockWriteGuard<'s, State>> {
        if users.is_empty() {
            return Ok(self.state.write());
        }
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
        let read = match read_users(snap, bindings, users, &cached, true) {
            Ok(r) => r,
            Err(e) => {
                self.vector_queue.send(users.to_vec());
                return Err(e);
            }
        };
        let mut state = self.state.write();
        for ((u, _), r) in users.iter().zip(read) {
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

    /// Applies `changes`, taken together with `snap`, to the row table, if it
    /// is built: merges in memory, and re-reads (through `snap`) the users a
    /// change says to, and those whose merge failed. Under `apply`. On
    /// failure the re-reads are sent again, so that a later drain retries them.
    fn apply_rows(
        &self,
        snap: &K::Snapshot<'_>,
        bindings: &Bindings,
        changes: Vec<RowChange>,
    ) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        // The current version is changed in place (its chunks are copied
        // only where a pinned view shares them); scans in flight keep theirs.
        // (Its published figures stay as they were meanwhile.)
        let mut table = match std::mem::replace(&mut *self.rows.lock(), Rows::Off) {
            Rows::On(t) => t,
            other => {
                *self.rows.lock() = other;
                return Ok(());
            }
        };
        let mut reread: Vec<String> = Vec::new();
        let mut writes: Vec<RowMerges> = Vec::new();
        for change in changes {
            match change {
                RowChange::Reread(u) => reread.push(u),
                RowChange::Merges(m) => writes.push(m),
            }
        }
        reread.sort_unstable();
        reread.dedup();
        // A re-read reads these writes too.
        let keep = |m: &Merge<'_>| reread.binary_search_by(|r| r.as_str().cmp(m.0)).is_err();
        let total = writes.iter().map(RowMerges::len).sum();
        let mut merges: Vec<Merge<'_>> = Vec::with_capacity(total);
        if total >= BULK_CHANGES {
            // In the order written, on every core: the writes' buffers are
            // read again long after they were filled.
            merges.par_extend(writes.par_iter().flat_map_iter(|w| w.iter().filter(keep)));
        } else {
            merges.extend(writes.iter().flat_map(RowMerges::iter).filter(keep));
        }
        // In id order, a batch walks the table once; a user's merges stay
        // in the order written.
        let failed = if merges.len() >= BULK_CHANGES {
            merges.par_sort_by(|a, b| a.0.cmp(b.0));
            merge_bulk(&mut table, &merges)
        } else {
            merges.sort_by(|a, b| a.0.cmp(b.0));
            merge_each(&mut table, &merges)
        };
        drop(merges);
        reread.extend(failed);
        reread.sort_unstable();
        reread.dedup();
        let users: Vec<(String, bool)> = reread.into_iter().map(|u| (u, true)).collect();
        let none = vec![None; users.len()];
        let read = read_users(snap, bindings, &users, &none, false);
        let result = match read {
            Ok(read) => {
                for ((u, _), r) in users.iter().zip(read) {
                    table.set(u, r.map(|(row, _)| row));
                }
                Ok(())
            }
            Err(e) => {
                self.row_queue.send(
                    users
                        .into_iter()
                        .map(|(u, _)| RowChange::Reread(u))
                        .collect(),
                );
                Err(e)
            }
        };
        self.set_rows(if table.bytes() > self.rows_limit {
            log::warn!(
                "the row table outgrew its limit ({} bytes for {} users, limit {}); scans read the store from now on",
                table.bytes(),
                table.len(),
                self.rows_limit
            );
            self.row_queue.active.store(false, Ordering::SeqCst);
            drop(self.row_queue.drain());
            Rows::TooLarge {
                users: table.len(),
                bytes: table.bytes(),
            }
        } else {
            Rows::On(table)
        });
        result
    }

    /// Builds every vector table from a scan of `snap`.
    fn build_vectors(&self, snap: &K::Snapshot<'_>, bindings: &Bindings) -> Result<State> {
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

    /// (Re)builds the vector tables from a snapshot when they were built for
    /// other vector definitions than `bindings`'s, or never. Under `apply`.
    fn build_if_stale(&self, snap: &K::Snapshot<'_>, bindings: &Bindings) -> Result<()> {
        if self.state.read().vectors.as_ref() == Some(&vector_defs(bindings)) {
            return Ok(());
        }
        let built = self.build_vectors(snap, bindings)?;
        *self.state.write() = built;
        self.from_snapshot.store(false, Ordering::SeqCst);
        if !bindings.catalog.indexes.is_empty() {
            // The refresher builds the indexes; queries scan exactly until then.
            let _ = self.bell_tx.try_send(());
        }
        Ok(())
    }

    /// Builds the row table from a scan of `snap`, stopping when it outgrows
    /// the limit.
    fn build_rows(&self, snap: &K::Snapshot<'_>) -> Result<Rows> {
        let needs = RowNeeds {
            attributes: true,
            ..RowNeeds::default()
        };
        let mut rows = Vec::new();
        let mut bytes = 0usize;
        RowReader::new(snap).scan(&UserRange::all(), &needs, &mut |row| {
            let row = Arc::new(UserRow {
                user: row.user.clone(),
                features: row.features.clone(),
                attributes: row.attributes.clone(),
                ..UserRow::default()
            });
            bytes += super::rows::row_bytes(&row);
            rows.push(row);
            bytes <= self.rows_limit
        })?;
        if bytes > self.rows_limit {
            log::warn!(
                "the row table would take more than its limit of {} bytes (over {} users); scans read the store",
                self.rows_limit,
                rows.len()
            );
            return Ok(Rows::TooLarge {
                users: rows.len(),
                bytes,
            });
        }
        Ok(Rows::On(RowTable::from_sorted(rows)))
    }

    /// Pins the indexes `pins` names at a storage snapshot: see the module
    /// documentation. Builds each on first use, and the vector index again
    /// when the vector definitions changed. A row table over its limit is
    /// not pinned: scans then read the snapshot.
    pub(crate) fn pin(&self, pins: Pins) -> Result<Pinned<'_, K>> {
        let _apply = self.apply.lock();
        if pins.vectors
            && (!self.vector_queue.is_active()
                || self.state.read().vectors.as_ref() != Some(&vector_defs(&self.bindings.read())))
        {
            // Writes from now on are sent; the scan below sees every write
            // acknowledged before it, and those after it are sent.
            self.vector_queue.active.store(true, Ordering::SeqCst);
            let snap = self.kv.snapshot();
            let bindings = Arc::clone(&self.bindings.read());
            self.build_if_stale(&snap, &bindings)?;
        }
        if pins.rows && self.rows_deferred.swap(false, Ordering::SeqCst) {
            // Kept from an empty store: what waited is applied below.
            self.deferred_bytes.store(0, Ordering::SeqCst);
        }
        if pins.rows && matches!(*self.rows.lock(), Rows::Off) {
            // The refresher builds it; this answer reads the snapshot.
            self.rows_wanted.store(true, Ordering::SeqCst);
            let _ = self.bell_tx.try_send(());
        }
        let (snap, bindings, vector_users, row_users) = {
            let _gate = self.gate.write();
            (
                self.kv.snapshot(),
                Arc::clone(&self.bindings.read()),
                pins.vectors.then(|| self.vector_queue.take()),
                pins.rows.then(|| self.row_changes_due()),
            )
        };
        let rows = match row_users {
            Some(changes) => {
                self.apply_rows(&snap, &bindings, changes)?;
                match &*self.rows.lock() {
                    Rows::On(t) => Some(t.clone()),
                    _ => None,
                }
            }
            None => None,
        };
        let vectors = match vector_users {
            Some(users) => {
                // A definition changed since the build above: build again,
                // from this snapshot (re-reading its users is then harmless).
                self.build_if_stale(&snap, &bindings)?;
                let state = self.apply_vectors(&snap, &bindings, &users)?;
                Some(RwLockWriteGuard::downgrade(state))
            }
            None => None,
        };
        Ok(Pinned {
            snap,
            bindings,
            vectors,
            rows,
        })
    }

    /// The row table's pending changes when it is built; none (they wait)
    /// while it is being built. Under the `gate`.
    fn row_changes_due(&self) -> Vec<RowChange> {
        match &*self.rows.lock() {
            Rows::On(_) => self.row_queue.drain(),
            _ => Vec::new(),
        }
    }

    /// Builds the row table when it is off: opens its channel and takes the
    /// snapshot to build from (under `apply` and the `gate`), builds without
    /// holding either, and installs the table unless a dropped definition
    /// made it stale meanwhile. Its pending changes are applied by the next
    /// drain or pin.
    fn build_rows_now(&self) {
        let snap = {
            let _apply = self.apply.lock();
            if !matches!(*self.rows.lock(), Rows::Off) {
                return;
            }
            // Merges are applied, not re-read, so none may be applied twice:
            // with no write between its store write and its notice, every
            // write is either in the build's snapshot or sent from now on.
            let _gate = self.gate.write();
            self.row_queue.active.store(true, Ordering::SeqCst);
            drop(self.row_queue.drain());
            self.set_rows(Rows::Building);
            self.kv.snapshot()
        };
        let built = self.build_rows(&snap);
        let _apply = self.apply.lock();
        if !matches!(*self.rows.lock(), Rows::Building) {
            return;
        }
        self.set_rows(match built {
            Ok(Rows::On(t)) => Rows::On(t),
            Ok(refused) => {
                self.reset_queue_after_failed_build();
                refused
            }
            Err(e) => {
                log::warn!("the row table was not built: {e}; scans read the store");
                self.reset_queue_after_failed_build();
                Rows::Off
            }
        });
    }

    /// After a row table build that failed or was refused: writes stop being
    /// sent to it.
    fn reset_queue_after_failed_build(&self) {
        self.row_queue.active.store(false, Ordering::SeqCst);
        drop(self.row_queue.drain());
    }
}

/// Changes applied at once from which the row table merges on every core
/// ([`merge_bulk`]) rather than one change at a time.
const BULK_CHANGES: usize = 4096;

/// Merges `merges` (sorted by user) into `table` one at a time. Returns
/// the users whose merge failed.
fn merge_each(table: &mut RowTable, merges: &[Merge<'_>]) -> Vec<String> {
    let mut failed = Vec::new();
    for &(user, features, attributes) in merges {
        let merged = table.update(user, |row| {
            row.features.merge(Record::decode(features)?)?;
            row.features.finalize();
            if let Some(a) = attributes {
                row.attributes.merge(Record::decode(a)?)?;
                row.attributes.finalize();
            }
            Ok::<(), crate::codec::DecodeError>(())
        });
        if merged.is_err() {
            // The store merged it or refused it; either way it knows.
            failed.push(user.to_owned());
        }
    }
    failed
}

/// [`merge_each`] for many merges (the first pin of a table kept from an
/// empty store, after a bulk load): each user's operands are merged into a
/// copy of their row on every core, as a full merge does (in order, the
/// result finalized once), and the rows are put back in one pass.
fn merge_bulk(table: &mut RowTable, merges: &[Merge<'_>]) -> Vec<String> {
    let current = &*table;
    // Merged rows and failed users, each in id order.
    let (merged, failed): (Vec<Arc<UserRow>>, Vec<String>) =
        merges.par_chunk_by(|a, b| a.0 == b.0).partition_map(|ops| {
            let user = ops[0].0;
            let mut row = match current.get(user) {
                Some(r) => UserRow::clone(r),
                None => UserRow {
                    user: user.to_owned(),
                    ..UserRow::default()
                },
            };
            let merged = ops.iter().try_for_each(|&(_, features, attributes)| {
                row.features.merge(Record::decode(features)?)?;
                if let Some(a) = attributes {
                    row.attributes.merge(Record::decode(a)?)?;
                }
                Ok::<(), crate::codec::DecodeError>(())
            });
            match merged {
                Ok(()) => {
                    row.features.finalize();
                    row.attributes.finalize();
                    Either::Left(Arc::new(row))
                }
                // The store merged it or refused it; either way it knows.
                Err(_) => Either::Right(row.user),
            }
        });
    table.put_sorted(merged);
    failed
}

/// The rows of `users` (sorted) through `snap` (ids, features and
/// attributes), with their current vectors when `vectors`: a user's
/// attributes come from `cached[i]` when given (they did not change), else
/// are read too. Reads are independent batched lookups, spread over every core.
fn read_users<S: crate::kv::KvSnapshot + Sync>(
    snap: &S,
    bindings: &Bindings,
    users: &[(String, bool)],
    cached: &[Option<Arc<UserRow>>],
    vectors: bool,
) -> Result<Vec<UserState>> {
    let read = users
        .par_chunks(1024)
        .zip(cached.par_chunks(1024))
        .map(|(chunk, cached)| read_chunk(snap, bindings, chunk, cached, vectors))
        .collect::<Result<Vec<_>>>()?;
    Ok(read.into_iter().flatten().collect())
}

fn read_chunk<S: crate::kv::KvSnapshot>(
    snap: &S,
    bindings: &Bindings,
    users: &[(String, bool)],
    cached: &[Option<Arc<UserRow>>],
    vectors: bool,
) -> Result<Vec<UserState>> {
    let with_attrs = if vectors {
        vector_needs(bindings)
    } else {
        RowNeeds {
            attributes: true,
            ..RowNeeds::default()
        }
    };
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
            let current = if vectors {
                bindings
                    .catalog
                    .vectors
                    .iter()
                    .map(|d| (d.id, current_vector(d, &row)))
                    .collect()
            } else {
                Vec::new()
            };
            let user = match cached {
                // The vector tables keep attributes alone.
                Some(c) if vectors => Arc::clone(c),
                Some(c) => Arc::new(UserRow {
                    user: row.user,
                    attributes: c.attributes.clone(),
                    features: row.features,
                    ..UserRow::default()
                }),
                None => Arc::new(UserRow {
                    user: row.user,
                    attributes: row.attributes,
                    features: if vectors {
                        Record::default()
                    } else {
                        row.features
                    },
                    ..UserRow::default()
                }),
            };
            Some((user, current))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::merge::cell::Cell;

    fn count(r: &Record, id: u32) -> u64 {
        match r.cell(id) {
            Some(Cell::Count(n)) => *n,
            _ => 0,
        }
    }

    /// Many merges (merged on every core) and a few (one by one) leave each
    /// user with what the row held plus what every write added, onto rows
    /// in the table and rows new to it, in both records; an operand that
    /// does not decode fails its user alone.
    #[test]
    fn merges_in_bulk_and_one_by_one_add_up() {
        let mut rng = StdRng::seed_from_u64(9);
        let user = |i: u32| format!("u{i:04}");
        let mut features: BTreeMap<String, u64> = BTreeMap::new();
        for i in (0..600).step_by(2) {
            features.insert(user(i), u64::from(i));
        }
        let table = RowTable::from_sorted(
            features
                .iter()
                .map(|(u, n)| {
                    Arc::new(UserRow {
                        user: u.clone(),
                        features: Record::from_cells([(1, Cell::Count(*n))]),
                        ..UserRow::default()
                    })
                })
                .collect(),
        );
        for writes in [200, 9000] {
            let mut merges = RowMerges::default();
            let mut want_features = features.clone();
            let mut want_attributes: BTreeMap<String, u64> = BTreeMap::new();
            for _ in 0..writes {
                let u = user(rng.random_range(0..600));
                let k = rng.random_range(1..5);
                let a = rng.random_bool(0.3).then(|| rng.random_range(1..5));
                merges.push(
                    &u,
                    &Record::from_cells([(1, Cell::Count(k))]).encode(),
                    a.map(|a| Record::from_cells([(2, Cell::Count(a))]).encode())
                        .as_deref(),
                );
                *want_features.entry(u.clone()).or_insert(0) += k;
                if let Some(a) = a {
                    *want_attributes.entry(u).or_insert(0) += a;
                }
            }
            // A user in the table: its row is then read again, as is.
            merges.push("u0008", b"not a record", None);
            let mut list: Vec<Merge<'_>> = merges.iter().collect();
            assert_eq!(list.len(), writes + 1);
            list.sort_by(|a, b| a.0.cmp(b.0));
            let mut bulk = table.clone();
            let mut each = table.clone();
            assert_eq!(merge_bulk(&mut bulk, &list), vec!["u0008".to_owned()]);
            assert_eq!(merge_each(&mut each, &list), vec!["u0008".to_owned()]);
            for (t, how) in [(&bulk, "bulk"), (&each, "one by one")] {
                for (u, n) in &want_features {
                    if u == "u0008" {
                        continue;
                    }
                    let row = t.get(u).unwrap_or_else(|| panic!("{how}: {u} missing"));
                    assert_eq!(count(&row.features, 1), *n, "{how}: {u}");
                    assert_eq!(
                        count(&row.attributes, 2),
                        want_attributes.get(u).copied().unwrap_or(0),
                        "{how}: {u}"
                    );
                }
                assert_eq!(t.len(), want_features.len(), "{how}");
            }
        }
    }
}
