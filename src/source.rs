//! The one place the query crate meets storage: [`DataSource`] over the RocksDB
//! engine.

use std::sync::Arc;

use profiledb_query::{DataSource, Snapshot};
use profiledb_storage::catalog::Bindings;
use profiledb_storage::{
    DefKind, Definition, Engine, Event, IndexTable, Reader, Result, RowNeeds, UserRange, UserRow,
    Value,
};

/// The engine, as the query executor sees it.
#[derive(Debug)]
pub(crate) struct RocksSource<'a>(pub &'a Engine);

/// An engine snapshot, as the query executor sees it.
#[derive(Debug)]
struct RocksSnapshot<'a>(Reader<'a>);

impl DataSource for RocksSource<'_> {
    fn bindings(&self) -> Arc<Bindings> {
        self.0.bindings()
    }

    fn define(&self, def: Definition) -> Result<()> {
        self.0.define(def).map(|_| ())
    }

    fn drop_item(&self, kind: DefKind, name: &str) -> Result<()> {
        self.0.drop_item(kind, name)
    }

    fn ingest(&self, events: &[Event]) -> Result<usize> {
        self.0.ingest(events)
    }

    fn set_attributes(&self, user: &str, ts: i64, values: &[(String, Value)]) -> Result<()> {
        self.0.set_attributes(user, ts, values)
    }

    fn delete_user(&self, user: &str) -> Result<bool> {
        self.0.delete_user(user, false)
    }

    fn vacuum(&self, deadline: Option<std::time::Instant>) -> Result<bool> {
        self.0.vacuum_until(deadline)
    }

    fn snapshot(&self) -> Result<Box<dyn Snapshot + '_>> {
        Ok(Box::new(RocksSnapshot(self.0.reader())))
    }

    fn with_vectors(&self, def: u32, f: &mut dyn FnMut(Option<&IndexTable>)) -> Result<()> {
        self.0.with_vectors(def, f)
    }

    fn now(&self) -> i64 {
        self.0.now()
    }
}

impl Snapshot for RocksSnapshot<'_> {
    fn get(&self, user: &str, needs: &RowNeeds) -> Result<Option<UserRow>> {
        self.0.get(user, needs)
    }

    fn partitions(&self, n: usize) -> Result<Vec<UserRange>> {
        self.0.split_ranges(n)
    }

    fn scan(
        &self,
        range: &UserRange,
        needs: &RowNeeds,
        visit: &mut dyn FnMut(&UserRow) -> bool,
    ) -> Result<()> {
        self.0.scan(range, needs, visit)
    }
}
