//! Some partitions of a node's database, as the query layer sees them: a
//! [`DataSource`] whose reads keep only the users of the partitions this
//! node answers for (a node also holds partitions it stands by for, and
//! ones it is handing over), and which reaches the nodes answering for the
//! rest through [`Peers`]. Writes pass through: a node's writes come from
//! the log, and the server refuses direct ones before they get here.

use std::num::NonZeroU32;
use std::sync::Arc;

use profiledb_query::{DataSource, Peers, View};
use profiledb_storage::catalog::{Bindings, EventChange};
use profiledb_storage::{
    DefKind, Definition, Event, IndexTable, Ingested, Measurement, Metric, NearestFilter, Pins,
    Result, RowNeeds, UserRange, UserRow, Value,
};

use super::partition_of;
use crate::RocksEngine;

/// A node's database seen as the partitions `keep` marks.
pub struct Shard<'a> {
    engine: &'a RocksEngine,
    partitions: NonZeroU32,
    keep: Vec<bool>,
    peers: Option<&'a dyn Peers>,
    now: i64,
}

impl std::fmt::Debug for Shard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard")
            .field("partitions", &self.partitions)
            .field("keep", &self.keep.iter().filter(|k| **k).count())
            .field("peers", &self.peers.is_some())
            .field("now", &self.now)
            .finish()
    }
}

impl<'a> Shard<'a> {
    /// The users of `keep` (partitions among `partitions`) in `engine`, at
    /// time `now` (every part of one query reads at the same time), with
    /// `peers` answering for the other partitions.
    pub fn new(
        engine: &'a RocksEngine,
        partitions: NonZeroU32,
        keep: &[u32],
        peers: Option<&'a dyn Peers>,
        now: i64,
    ) -> Shard<'a> {
        let mut mask = vec![false; partitions.get() as usize];
        for p in keep {
            if let Some(k) = mask.get_mut(*p as usize) {
                *k = true;
            }
        }
        Shard {
            engine,
            partitions,
            keep: mask,
            peers,
            now,
        }
    }

    fn keeps(&self, user: &str) -> bool {
        self.keep
            .get(partition_of(user, self.partitions) as usize)
            .copied()
            .unwrap_or(false)
    }
}

impl DataSource for Shard<'_> {
    fn bindings(&self) -> Arc<Bindings> {
        DataSource::bindings(self.engine)
    }
    fn define(&self, def: Definition) -> Result<()> {
        DataSource::define(self.engine, def)
    }
    fn replace(&self, def: Definition) -> Result<()> {
        DataSource::replace(self.engine, def)
    }
    fn drop_item(&self, kind: DefKind, name: &str) -> Result<()> {
        DataSource::drop_item(self.engine, kind, name)
    }
    fn ingest(&self, events: &[Event]) -> Result<Ingested> {
        DataSource::ingest(self.engine, events)
    }
    fn set_attributes(&self, user: &str, ts: i64, values: &[(String, Value)]) -> Result<()> {
        DataSource::set_attributes(self.engine, user, ts, values)
    }
    fn delete_user(&self, user: &str) -> Result<bool> {
        DataSource::delete_user(self.engine, user)
    }
    fn set_history(&self, ms: i64) -> Result<()> {
        DataSource::set_history(self.engine, ms)
    }
    fn set_user_ttl(&self, ms: i64) -> Result<()> {
        DataSource::set_user_ttl(self.engine, ms)
    }
    fn alter_in_place(&self, def: &Definition) -> Result<()> {
        DataSource::alter_in_place(self.engine, def)
    }
    fn change_events(&self, change: EventChange) -> Result<()> {
        DataSource::change_events(self.engine, change)
    }
    fn history_cutoff(&self) -> Result<Option<i64>> {
        DataSource::history_cutoff(self.engine)
    }
    fn vacuum(&self, deadline: Option<std::time::Instant>) -> Result<bool> {
        DataSource::vacuum(self.engine, deadline)
    }
    fn view(&self, pins: Pins) -> Result<Box<dyn View + '_>> {
        Ok(Box::new(ShardView {
            inner: DataSource::view(self.engine, pins)?,
            shard: self,
        }))
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
        DataSource::analyze_index(self.engine, name, metric, k, queries, probes, deadline)
    }
    fn now(&self) -> i64 {
        self.now
    }
    fn peers(&self) -> Option<&dyn Peers> {
        self.peers
    }
}

/// A view of the shard's users alone.
struct ShardView<'a> {
    inner: Box<dyn View + 'a>,
    shard: &'a Shard<'a>,
}

impl View for ShardView<'_> {
    fn bindings(&self) -> &Arc<Bindings> {
        self.inner.bindings()
    }
    fn get(&self, user: &str, needs: &RowNeeds) -> Result<Option<UserRow>> {
        if self.shard.keeps(user) {
            self.inner.get(user, needs)
        } else {
            Ok(None)
        }
    }
    fn rows_as_of(
        &self,
        user: &str,
        asks: &[(i64, &RowNeeds)],
        emit: &mut dyn FnMut(usize, Option<&UserRow>) -> Result<()>,
    ) -> Result<()> {
        if self.shard.keeps(user) {
            self.inner.rows_as_of(user, asks, emit)
        } else {
            (0..asks.len()).try_for_each(|i| emit(i, None))
        }
    }
    fn partitions(&self, n: usize) -> Result<Vec<UserRange>> {
        self.inner.partitions(n)
    }
    fn scan(
        &self,
        range: &UserRange,
        needs: &RowNeeds,
        visit: &mut dyn FnMut(&UserRow) -> bool,
    ) -> Result<()> {
        self.inner.scan(range, needs, &mut |row| {
            !self.shard.keeps(&row.user) || visit(row)
        })
    }
    /// The shard's users among the whole index's nearest: fewer than `k`
    /// when others rank high. Queries across nodes do not rank by
    /// similarity yet (the query layer refuses them), so nothing asks this
    /// of a shard today.
    fn nearest(
        &self,
        def: u32,
        query: &[f32],
        metric: Metric,
        k: usize,
        filter: &NearestFilter<'_>,
    ) -> Vec<(String, f64)> {
        let mut out = self.inner.nearest(def, query, metric, k, filter);
        out.retain(|(id, _)| self.shard.keeps(id));
        out
    }
    /// No table: the index holds users of other partitions too, and a
    /// shard's reads never see them.
    fn vectors(&self, _def: u32) -> Option<&IndexTable> {
        None
    }
}
