//! Items computed over the event history. An attribute, feature, window or
//! vector made while the database keeps history is backfilled from it, and
//! `CREATE OR REPLACE` (so `ALTER … SET HALF_LIFE` too) re-derives one: the
//! item then holds exactly what it would had it existed for every write the
//! history holds.
//!
//! A build never holds writes off while it reads the history:
//! 1. The item's id is reserved in the catalog as *building*
//!    ([`Catalog::building`]): compaction keeps its state, but nothing is
//!    bound to it and nothing reads it.
//! 2. From a snapshot, every user's history is replayed through the new
//!    definition alone, and the item's state is written for each user: a
//!    record cell that replaces any before it, window buckets and an sgd
//!    vector put whole. Writing it again is harmless.
//! 3. Meanwhile every write notes its users. Those are derived again from a
//!    later snapshot, in rounds, until few remain; the last round runs with
//!    writes held off and writes its states together with the catalog that
//!    makes the item live (and drops the one it replaces), in one atomic
//!    batch. A reader pins the old catalog or the new one, so it sees the old
//!    item or the new one, never a half-built one.
//!
//! A write planned under one catalog and written after a swap would miss the
//! new item, so writers check, with their write guard held, that the catalog
//! they planned under is still the current one, and plan again when it is not
//! (a swap holds writes off). A failed build forgets the state it wrote; one a
//! crash cut short is found *building* when the engine opens, and forgotten
//! then. A fold of old history and a build wait for each other
//! (`Index::history_work`), so neither sees the history move under it.

use std::collections::HashSet;

use super::Engine;
use super::read::{Planner, Replay, Wanted, history_cutoff};
use crate::catalog::{Bindings, Catalog, DefKind, Definition, VectorRule, WindowDef};
use crate::error::{Error, Result};
use crate::history::{self, Entry};
use crate::keys;
use crate::kv::{
    ATTRIBUTES, DATA, FEATURES, HISTORY, Kv, KvBatch, KvIter, KvSnapshot, VECTORS, WINDOWS,
};
use crate::merge::record::Record;

/// Written users left to derive again that the last round, with writes held
/// off, takes on.
const LAST_ROUND: usize = 256;

/// Rounds of deriving written users again before the last one, however many
/// are left.
const MAX_ROUNDS: usize = 8;

/// Operations per batch of a build's writes.
const BATCH_OPS: usize = 10_000;

impl<K: Kv> Engine<K> {
    /// Adds a schema item and returns its id. While the database keeps an
    /// event history, an attribute, feature, window or vector is first
    /// computed over it (how, without stopping writes, is told in `build.rs`), and its
    /// definition says from when (`backfilled_from`). Schema changes are
    /// always synced.
    ///
    /// # Errors
    /// See [`crate::Catalog::define`]; [`Error::InvalidArgument`] naming the
    /// write when a write the history holds does not plan under the new
    /// definition (nothing is made then).
    pub fn define(&self, def: Definition) -> Result<u32> {
        self.put_definition(def, false)
    }

    /// Replaces the item of `def`'s name and kind with `def` (or adds it,
    /// when there is none), atomically: readers see the old item or the new
    /// one. An attribute, feature, window or vector is re-derived from the
    /// event history, so replacing one needs the history on; a segment's
    /// predicate is simply swapped. Returns the new item's id.
    ///
    /// # Errors
    /// As [`Engine::define`]; [`Error::InvalidArgument`] when an item of
    /// another kind has the name, or when the history is off.
    pub fn replace(&self, def: Definition) -> Result<u32> {
        self.put_definition(def, true)
    }

    /// Measures the recall@`k` of index `name` against the exact scan, with
    /// up to `queries` of its own rows as queries, probing `probes` lists
    /// (the index's own with `None`), under `metric`, stopping at `deadline`;
    /// `DESCRIBE` shows the last measurement.
    ///
    /// # Errors
    /// [`Error::NotFound`] for no such index; [`Error::InvalidArgument`] when
    /// it is not built yet (fewer vectors than lists) or `deadline` passed
    /// first; the store's failure.
    pub fn analyze_index(
        &self,
        name: &str,
        metric: crate::Metric,
        k: usize,
        queries: usize,
        probes: Option<usize>,
        deadline: Option<std::time::Instant>,
    ) -> Result<crate::vector::Measurement> {
        let catalog = self.catalog();
        let def = catalog.index(name).ok_or_else(|| Error::NotFound {
            kind: "index",
            name: name.to_owned(),
        })?;
        self.index
            .measure_ivf(def, metric, k, queries, probes, self.now(), deadline)?
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "index '{name}' is not built yet: it is built once its vector has at least {} rows, one per list",
                    def.lists
                ))
            })
    }

    fn put_definition(&self, def: Definition, replace: bool) -> Result<u32> {
        let _ddl = self.ddl.lock();
        let current = self.catalog();
        let kind = def.kind();
        let name = def.name().to_owned();
        let mut next = current.clone();
        let old = match current.kind_of(&name) {
            Some(k) if replace && k == kind => Some(next.drop_item(kind, &name)?),
            Some(k) if replace => {
                return Err(Error::InvalidArgument(format!(
                    "'{name}' is a {}: CREATE OR REPLACE {} replaces only a {}",
                    k.name(),
                    kind.name().to_uppercase(),
                    kind.name()
                )));
            }
            // `define` refuses the name.
            _ => None,
        };
        let id = next.define(def)?;
        let derived = matches!(
            kind,
            DefKind::Attribute | DefKind::Feature | DefKind::Window | DefKind::Vector
        );
        if !derived || current.history_ms == 0 {
            if derived && old.is_some() {
                return Err(Error::InvalidArgument(format!(
                    "replacing {} '{name}' re-derives it from the event history, which this database does not keep; DROP it and CREATE it again to start it empty",
                    kind.name()
                )));
            }
            let index = next
                .index(&name)
                .cloned()
                .filter(|_| kind == DefKind::Index);
            self.store_catalog(next)?;
            if let Some(def) = index {
                // Built before the statement returns (when there are enough
                // vectors to train it), so that the next query uses it.
                self.index.build_ivf(&def)?;
            }
            return Ok(id);
        }
        let old = old.map(|o| (kind, o, forgets_in(&current, kind, &name)));
        self.build(current, next, id, old)
    }

    /// Builds item `id` of `next` over the history and swaps `next` in, with
    /// `old` (its kind, id and the record family its cells are in) dropped.
    fn build(
        &self,
        current: Catalog,
        next: Catalog,
        id: u32,
        old: Option<(DefKind, u32, Option<&'static str>)>,
    ) -> Result<u32> {
        let _work = self.index.history_work.lock();
        let mut reserved = current;
        reserved.next_id = next.next_id;
        reserved.building.push(id);
        reserved.version += 1;
        self.store_catalog(reserved.clone())?;
        let target = Target::of(&next, id);
        let built = self.derive_all(&next, &reserved, id, target);
        let forget_new = target.record_family();
        match built {
            Ok(()) => {
                if let Some((kind, old_id, family)) = old {
                    if let Some(family) = family {
                        self.forget_everywhere(family, old_id)?;
                    }
                    log::info!("{} re-derived from the event history", kind.name());
                }
                self.index.reset_rows();
                if matches!(target, Target::Record(ATTRIBUTES)) {
                    // The vector tables keep each row's attributes.
                    self.index.reset_vectors();
                }
                Ok(id)
            }
            Err(e) => {
                let mut undone = reserved;
                undone.building.retain(|&b| b != id);
                undone.version += 1;
                self.store_catalog(undone)?;
                if let Some(family) = forget_new {
                    self.forget_everywhere(family, id)?;
                }
                Err(e)
            }
        }
    }

    /// Writes item `id`'s state for every user from the history, then swaps
    /// in `next` (with the item live, marked backfilled) over `reserved`.
    fn derive_all(
        &self,
        next: &Catalog,
        reserved: &Catalog,
        id: u32,
        target: Target,
    ) -> Result<()> {
        let only = Bindings::new(only_item(next, id));
        *self.touched.lock() = Some(HashSet::new());
        let result = (|| {
            let mut derive = Derive {
                planner: Planner::new(&only, Wanted::ALL),
                id,
                target,
                now: self.now(),
                first: i64::MAX,
            };
            let snap = self.kv.snapshot();
            let cutoff = history_cutoff(&snap)?;
            let mut out = Out::new(&*self.kv);
            derive.users(&snap, &[], &history::users_end(), false, &mut out)?;
            drop(snap);
            out.flush()?;
            // Users written meanwhile, again, until few are left.
            for _ in 0..MAX_ROUNDS {
                let users = self.take_touched();
                if users.len() <= LAST_ROUND {
                    self.put_touched(users);
                    break;
                }
                let snap = self.kv.snapshot();
                derive.each(&snap, users, &mut out)?;
                drop(snap);
                out.flush()?;
            }
            let _held = self.index.hold_writes();
            let users = self.take_touched();
            *self.touched.lock() = None;
            let snap = self.kv.snapshot();
            derive.each(&snap, users, &mut out)?;
            drop(snap);
            let mut live = next.clone();
            live.building = reserved.building.clone();
            live.building.retain(|&b| b != id);
            live.version = reserved.version + 1;
            // The item holds every write accepted under the reserving
            // catalog or later (writers noted them all), so it is dated
            // from it; and, when there was history to replay, every write
            // since the time older ones were folded to (whether or not a
            // fold under way has reached each user yet), or since the
            // first write when none were.
            let from = (derive.first != i64::MAX).then_some(if cutoff == i64::MIN {
                derive.first
            } else {
                cutoff
            });
            live.mark_backfilled(id, from, reserved.version);
            out.flush()?;
            // Synced, which makes the states before it durable too.
            self.store_catalog_held(live, self.kv.batch())
        })();
        *self.touched.lock() = None;
        result
    }

    fn take_touched(&self) -> Vec<String> {
        let mut t = self.touched.lock();
        let mut users: Vec<String> = t
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
            .into_iter()
            .collect();
        users.sort_unstable();
        users
    }

    fn put_touched(&self, users: Vec<String>) {
        if let Some(t) = self.touched.lock().as_mut() {
            t.extend(users);
        }
    }

    /// Notes that `users` were written, for a build over the history in
    /// progress. Called with the write guard held, after the write.
    pub(crate) fn note_written<'u>(&self, users: impl Iterator<Item = &'u str>) {
        if let Some(t) = self.touched.lock().as_mut() {
            t.extend(users.map(str::to_owned));
        }
    }

    /// Forgets the state of items a build left half-made when the process
    /// stopped in the middle of it (ids the stored catalog still marks as
    /// building): called as the engine opens.
    pub(crate) fn forget_unfinished_builds(&self) -> Result<()> {
        let mut catalog = self.catalog();
        if catalog.building.is_empty() {
            return Ok(());
        }
        let ids = std::mem::take(&mut catalog.building);
        catalog.version += 1;
        self.store_catalog(catalog)?;
        for id in ids {
            // Windows and sgd vectors go with compaction, as a dropped
            // item's; record cells are forgotten in both families.
            self.forget_everywhere(FEATURES, id)?;
            self.forget_everywhere(ATTRIBUTES, id)?;
            log::warn!(
                "an item being computed over the event history when the database stopped was not made; its state is forgotten"
            );
        }
        Ok(())
    }
}

/// Where an item's state is kept.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// A cell of the user's record in this family.
    Record(&'static str),
    /// Window buckets.
    Window { bucket_ms: i64, retain_ms: i64 },
    /// An sgd vector.
    Sgd,
}

impl Target {
    fn of(catalog: &Catalog, id: u32) -> Target {
        if catalog.attributes.iter().any(|d| d.id == id) {
            Target::Record(ATTRIBUTES)
        } else if let Some(WindowDef {
            bucket_ms,
            retain_ms,
            ..
        }) = catalog.window_by_id(id)
        {
            Target::Window {
                bucket_ms: *bucket_ms,
                retain_ms: *retain_ms,
            }
        } else if catalog
            .vector_by_id(id)
            .is_some_and(|v| matches!(v.rule, VectorRule::Sgd { .. }))
        {
            Target::Sgd
        } else {
            Target::Record(FEATURES)
        }
    }

    fn record_family(self) -> Option<&'static str> {
        match self {
            Target::Record(f) => Some(f),
            _ => None,
        }
    }
}

/// The record family the cells of item `name` of `kind` in `catalog` are in
/// (the others' state goes with compaction once the item is dropped).
pub(super) fn forgets_in(catalog: &Catalog, kind: DefKind, name: &str) -> Option<&'static str> {
    match kind {
        DefKind::Attribute => Some(ATTRIBUTES),
        DefKind::Feature => Some(FEATURES),
        DefKind::Vector => catalog
            .vector(name)
            .filter(|v| matches!(v.rule, VectorRule::Ewma { .. }))
            .map(|_| FEATURES),
        _ => None,
    }
}

/// `catalog` with item `id` alone, marked as computed over the history (so
/// that every write plans through it, whenever it was accepted).
fn only_item(catalog: &Catalog, id: u32) -> Catalog {
    let mut c = catalog.clone();
    c.attributes.retain(|d| d.id == id);
    c.features.retain(|d| d.id == id);
    c.windows.retain(|d| d.id == id);
    c.vectors.retain(|d| d.id == id);
    c.segments.clear();
    c.segment_groups.clear();
    let version = c.version;
    c.mark_backfilled(id, Some(i64::MIN), version);
    c
}

/// Derives one item's state from users' histories.
struct Derive<'b> {
    planner: Planner<'b>,
    id: u32,
    target: Target,
    now: i64,
    /// The earliest write time seen.
    first: i64,
}

impl Derive<'_> {
    /// Writes to `out` the item's state for every user whose history keys
    /// lie in `[lo, hi)` in `snap`; with `again`, also clears what an earlier
    /// pass wrote that the history no longer gives (users deleted since).
    fn users<S: KvSnapshot>(
        &mut self,
        snap: &S,
        lo: &[u8],
        hi: &[u8],
        again: bool,
        out: &mut Out<'_, impl Kv>,
    ) -> Result<()> {
        let mut it = snap.iter(HISTORY, Some(lo.to_vec()), Some(hi.to_vec()))?;
        it.seek(lo);
        let mut user: Option<String> = None;
        let mut state = Replay::default();
        let mut entry = Entry::default();
        while let Some(k) = it.key() {
            let Some(owner) = keys::user_of(k) else {
                return Err(Error::corruption(HISTORY, k, "key is not a user's"));
            };
            if user.as_deref() != Some(owner) {
                if let Some(u) = user.take() {
                    self.write(snap, &u, &mut std::mem::take(&mut state), again, out)?;
                }
                user = Some(owner.to_owned());
            }
            if history::parse_entry_key(k).is_some() {
                let bad = |e: &dyn std::fmt::Display| Error::corruption(HISTORY, k, e);
                entry.decode_into(k, it.value()).map_err(|e| bad(&e))?;
                let ts = entry.write.ts();
                self.first = self.first.min(ts);
                self.planner
                    .plan(&entry, &mut state)
                    .map_err(|e| {
                        Error::InvalidArgument(format!(
                            "the event history does not fit the new definition: the write of user '{owner}' at {}: {e}",
                            crate::time::format_timestamp(ts)
                        ))
                    })?;
            }
            it.next();
        }
        it.status()?;
        if let Some(u) = user {
            self.write(snap, &u, &mut state, again, out)?;
        }
        Ok(())
    }

    /// Derives `users` again from `snap`; a user without history there was
    /// deleted, and whatever an earlier pass wrote for it is deleted too.
    fn each<S: KvSnapshot>(
        &mut self,
        snap: &S,
        users: Vec<String>,
        out: &mut Out<'_, impl Kv>,
    ) -> Result<()> {
        for user in users {
            let (lo, hi) = keys::user_range(&user);
            let mut it = snap.iter(HISTORY, Some(lo.clone()), Some(hi.clone()))?;
            it.seek(&lo);
            let kept = it.key().is_some();
            it.status()?;
            drop(it);
            if kept {
                self.users(snap, &lo, &hi, true, out)?;
            } else {
                for cf in DATA {
                    super::write::delete_keys(snap, &mut out.batch, cf, &lo, &hi, &mut |_| {})?;
                }
                out.purge.push((lo, hi));
            }
            out.flush_if_full()?;
        }
        Ok(())
    }

    /// Adds `user`'s state of the item to `out`.
    fn write<S: KvSnapshot>(
        &mut self,
        snap: &S,
        user: &str,
        state: &mut Replay,
        again: bool,
        out: &mut Out<'_, impl Kv>,
    ) -> Result<()> {
        let id = self.id;
        let batch = &mut out.batch;
        match self.target {
            Target::Record(family) => {
                let record = if family == ATTRIBUTES {
                    &state.attributes
                } else {
                    &state.features
                };
                let op = match record.cell(id) {
                    Some(cell) => Some(Record::replacing(id, cell.clone())),
                    None => again.then(|| Record::forget(id)),
                };
                if let Some(op) = op {
                    batch.merge(family, &keys::user_key(user), &op.encode());
                }
            }
            Target::Window {
                bucket_ms,
                retain_ms,
            } => {
                if again {
                    // The item is building: no write but the build's has
                    // buckets of it, so the snapshot holds them all.
                    super::write::delete_keys(
                        snap,
                        batch,
                        WINDOWS,
                        &keys::vector_key(user, id),
                        &keys::vector_key(user, id.saturating_add(1)),
                        &mut |_| {},
                    )?;
                }
                for ((_, start), b) in state.buckets.range((id, i64::MIN)..=(id, i64::MAX)) {
                    if !keys::bucket_expired(*start, bucket_ms, retain_ms, self.now) {
                        batch.put(WINDOWS, &keys::window_key(user, id, *start), &b.encode());
                    }
                }
            }
            Target::Sgd => {
                let key = keys::vector_key(user, id);
                match state
                    .sgd_state(id)
                    .map_err(|e| Error::corruption(HISTORY, &key, e))?
                {
                    Some(v) => batch.put(VECTORS, &key, &v),
                    None if again => batch.delete(VECTORS, &key),
                    None => {}
                }
            }
        }
        out.flush_if_full()
    }
}

/// A build's pending writes.
struct Out<'k, K: Kv> {
    kv: &'k K,
    batch: K::Batch,
    /// Key ranges of users deleted while the build ran, to purge from disk.
    purge: Vec<(Vec<u8>, Vec<u8>)>,
}

impl<'k, K: Kv> Out<'k, K> {
    fn new(kv: &'k K) -> Self {
        Out {
            kv,
            batch: kv.batch(),
            purge: Vec::new(),
        }
    }

    fn flush_if_full(&mut self) -> Result<()> {
        if self.batch.len() >= BATCH_OPS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.batch.len() == 0 {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, self.kv.batch());
        if self.purge.is_empty() {
            self.kv.write(batch, false)
        } else {
            self.kv.write_delete(batch, std::mem::take(&mut self.purge))
        }
    }
}
