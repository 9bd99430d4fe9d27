//! What the executor needs from storage: the catalog, writes, and reads
//! through a [`View`] that pins one moment.
//!
//! Both are implemented here once, for the storage engine over any store
//! ([`Engine`]): the facade runs statements on the engine over RocksDB, and this
//! crate's own tests run the same engine in memory
//! ([`profiledb_storage::MemoryEngine`]), so the crate never links RocksDB.

use std::sync::Arc;

use profiledb_storage::catalog::{Bindings, EventChange};
use profiledb_storage::kv::Kv;
use profiledb_storage::{
    DefKind, Definition, Engine, Event, IndexTable, Ingested, Measurement, Metric, NearestFilter,
    Pins, ReadView, Result, RowNeeds, UserRange, UserRow, Value,
};

/// A database the executor can run statements against.
pub trait DataSource: Sync {
    /// The current schema, with its per-event-type index.
    fn bindings(&self) -> Arc<Bindings>;
    /// Adds a schema item.
    fn define(&self, def: Definition) -> Result<()>;
    /// Replaces the schema item of `def`'s name (re-derived from the event
    /// history), or adds it.
    fn replace(&self, def: Definition) -> Result<()>;
    /// Drops a schema item and its data.
    fn drop_item(&self, kind: DefKind, name: &str) -> Result<()>;
    /// Writes a batch of events atomically, skipping those whose event id
    /// was accepted before.
    fn ingest(&self, events: &[Event]) -> Result<Ingested>;
    /// Sets attributes of one user at time `ts`.
    fn set_attributes(&self, user: &str, ts: i64, values: &[(String, Value)]) -> Result<()>;
    /// Deletes a user; returns whether it existed.
    fn delete_user(&self, user: &str) -> Result<bool>;
    /// Sets the event history's horizon, in ms (0 keeps no history).
    fn set_history(&self, ms: i64) -> Result<()>;
    /// Sets how long a user is kept without a write, in ms (0 keeps all).
    fn set_user_ttl(&self, ms: i64) -> Result<()>;
    /// Changes in place what an item only reads with (a prior, a retention).
    fn alter_in_place(&self, def: &Definition) -> Result<()>;
    /// Declares an event type, adds a field to one, or drops a declaration.
    fn change_events(&self, change: EventChange) -> Result<()>;
    /// The oldest time `AS OF` can answer for every user; `None` when every
    /// time can be.
    fn history_cutoff(&self) -> Result<Option<i64>>;
    /// Purges deleted users' data from every file the database keeps, stopping
    /// at `deadline`: returns `false` when it stopped before it was complete.
    fn vacuum(&self, deadline: Option<std::time::Instant>) -> Result<bool>;
    /// A view of the database as it is now: its catalog, its data and the
    /// indexes `pins` names, all of one moment.
    fn view(&self, pins: Pins) -> Result<Box<dyn View + '_>>;
    /// Measures index `name`'s recall@`k` against the exact scan, with up
    /// to `queries` of its rows as queries (kept for `DESCRIBE`), stopping
    /// at `deadline`.
    fn analyze_index(
        &self,
        name: &str,
        metric: Metric,
        k: usize,
        queries: usize,
        probes: Option<usize>,
        deadline: Option<std::time::Instant>,
    ) -> Result<Measurement>;
    /// The current time, epoch ms: the default `AS OF`.
    fn now(&self) -> i64;
    /// The other machines holding the rest of the users, when this source
    /// holds only some of a database spread over several: a `SELECT` then
    /// runs on each and merges their parts (see [`crate::Peers`]).
    fn peers(&self) -> Option<&dyn crate::Peers> {
        None
    }
}

/// One moment of the database. Scans of disjoint ranges may run on different
/// threads at once.
pub trait View: Sync {
    /// The catalog of this moment.
    fn bindings(&self) -> &Arc<Bindings>;
    /// The row of `user`, or `None` when the user does not exist.
    fn get(&self, user: &str, needs: &RowNeeds) -> Result<Option<UserRow>>;
    /// The rows of `user` as of each time of `asks` (ascending), each read
    /// as its needs ask, reading the user's history once; `emit` gets each
    /// ask's index and row (`None` when the user did not exist then).
    fn rows_as_of(
        &self,
        user: &str,
        asks: &[(i64, &RowNeeds)],
        emit: &mut dyn FnMut(usize, Option<&UserRow>) -> Result<()>,
    ) -> Result<()>;
    /// At most `n` disjoint ranges that together cover every user.
    fn partitions(&self, n: usize) -> Result<Vec<UserRange>>;
    /// Visits the rows of `range` in id order until `visit` returns `false`.
    fn scan(
        &self,
        range: &UserRange,
        needs: &RowNeeds,
        visit: &mut dyn FnMut(&UserRow) -> bool,
    ) -> Result<()>;
    /// The `k` users nearest to `query` under vector definition `def` by
    /// `metric`, among those `filter` admits, best first, as (id, score),
    /// from this moment's vector index (approximately when the vector has an
    /// IVF index and `filter` does not ask for the exact scan): every id is
    /// in this view, and its score is that of the vector [`View::get`]
    /// reads. Empty when the view was taken without vectors.
    fn nearest(
        &self,
        def: u32,
        query: &[f32],
        metric: Metric,
        k: usize,
        filter: &NearestFilter<'_>,
    ) -> Vec<(String, f64)>;
    /// The vector index's table of vector definition `def` at this moment:
    /// every user's vector equals the one [`View::get`] reads. `None` when
    /// there is no such vector, or the view was taken without vectors.
    fn vectors(&self, def: u32) -> Option<&IndexTable>;
}

impl<K: Kv> DataSource for Engine<K> {
    fn bindings(&self) -> Arc<Bindings> {
        Engine::bindings(self)
    }

    fn define(&self, def: Definition) -> Result<()> {
        Engine::define(self, def).map(drop)
    }

    fn replace(&self, def: Definition) -> Result<()> {
        Engine::replace(self, def).map(drop)
    }

    fn drop_item(&self, kind: DefKind, name: &str) -> Result<()> {
        Engine::drop_item(self, kind, name)
    }

    fn set_history(&self, ms: i64) -> Result<()> {
        Engine::set_history(self, ms)
    }

    fn set_user_ttl(&self, ms: i64) -> Result<()> {
        Engine::set_user_ttl(self, ms)
    }

    fn alter_in_place(&self, def: &Definition) -> Result<()> {
        Engine::alter_in_place(self, def).map(drop)
    }

    fn history_cutoff(&self) -> Result<Option<i64>> {
        Engine::history_cutoff(self)
    }

    fn change_events(&self, change: EventChange) -> Result<()> {
        Engine::change_events(self, change)
    }

    fn ingest(&self, events: &[Event]) -> Result<Ingested> {
        Engine::ingest_counted(self, events)
    }

    fn set_attributes(&self, user: &str, ts: i64, values: &[(String, Value)]) -> Result<()> {
        Engine::set_attributes(self, user, ts, values)
    }

    fn delete_user(&self, user: &str) -> Result<bool> {
        Engine::delete_user(self, user)
    }

    fn vacuum(&self, deadline: Option<std::time::Instant>) -> Result<bool> {
        Engine::vacuum_until(self, deadline)
    }

    fn view(&self, pins: Pins) -> Result<Box<dyn View + '_>> {
        Ok(Box::new(Engine::view(self, pins)?))
    }

    fn now(&self) -> i64 {
        Engine::now(self)
    }

    fn analyze_index(
        &self,
        name: &str,
        metric: Metric,
        k: usize,
        queries: usize,
        probes: Option<usize>,
        deadline: Option<std::time::Instant>,
    ) -> Result<Measurement> {
        Engine::analyze_index(self, name, metric, k, queries, probes, deadline)
    }
}

impl<K: Kv> View for ReadView<'_, K> {
    fn bindings(&self) -> &Arc<Bindings> {
        ReadView::bindings(self)
    }

    fn get(&self, user: &str, needs: &RowNeeds) -> Result<Option<UserRow>> {
        ReadView::get(self, user, needs)
    }

    fn rows_as_of(
        &self,
        user: &str,
        asks: &[(i64, &RowNeeds)],
        emit: &mut dyn FnMut(usize, Option<&UserRow>) -> Result<()>,
    ) -> Result<()> {
        ReadView::rows_as_of(self, user, asks, emit)
    }

    fn partitions(&self, n: usize) -> Result<Vec<UserRange>> {
        self.split_ranges(n)
    }

    fn scan(
        &self,
        range: &UserRange,
        needs: &RowNeeds,
        visit: &mut dyn FnMut(&UserRow) -> bool,
    ) -> Result<()> {
        ReadView::scan(self, range, needs, visit)
    }

    fn nearest(
        &self,
        def: u32,
        query: &[f32],
        metric: Metric,
        k: usize,
        filter: &NearestFilter<'_>,
    ) -> Vec<(String, f64)> {
        ReadView::nearest(self, def, query, metric, k, filter)
    }

    fn vectors(&self, def: u32) -> Option<&IndexTable> {
        ReadView::vectors(self, def)
    }
}
