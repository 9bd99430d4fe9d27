//! What the executor needs from storage: the catalog, writes, and row reads
//! through a snapshot. The `profiledb` facade implements it over the RocksDB
//! engine; the crate itself never links RocksDB.

use std::sync::Arc;

use profiledb_storage::catalog::Bindings;
use profiledb_storage::{
    DefKind, Definition, Event, IndexTable, Result, RowNeeds, UserRange, UserRow, Value,
};

/// A database the executor can run statements against.
pub trait DataSource: Sync {
    /// The current schema, with its per-event-type index.
    fn bindings(&self) -> Arc<Bindings>;
    /// Adds a schema item.
    fn define(&self, def: Definition) -> Result<()>;
    /// Drops a schema item and its data.
    fn drop_item(&self, kind: DefKind, name: &str) -> Result<()>;
    /// Writes a batch of events atomically.
    fn ingest(&self, events: &[Event]) -> Result<usize>;
    /// Sets attributes of one user at time `ts`.
    fn set_attributes(&self, user: &str, ts: i64, values: &[(String, Value)]) -> Result<()>;
    /// Deletes a user; returns whether it existed.
    fn delete_user(&self, user: &str) -> Result<bool>;
    /// Purges deleted users' data from every file the database keeps, stopping
    /// at `deadline`: returns `false` when it stopped before it was complete. A
    /// source that keeps no files has nothing to do.
    fn vacuum(&self, deadline: Option<std::time::Instant>) -> Result<bool> {
        let _ = deadline;
        Ok(true)
    }
    /// A consistent view for reads.
    fn snapshot(&self) -> Result<Box<dyn Snapshot + '_>>;
    /// Brings the vector index up to date with every acknowledged write, then
    /// calls `f` with the table of vector definition `def` (`None` when there
    /// is no such vector).
    fn with_vectors(&self, def: u32, f: &mut dyn FnMut(Option<&IndexTable>)) -> Result<()>;
    /// The current time, epoch ms: the default `AS OF`.
    fn now(&self) -> i64 {
        profiledb_storage::time::now_ms()
    }
}

/// A consistent view of users' rows. Scans of disjoint ranges may run on
/// different threads at once.
pub trait Snapshot: Sync {
    /// The row of `user`, or `None` when the user does not exist.
    fn get(&self, user: &str, needs: &RowNeeds) -> Result<Option<UserRow>>;
    /// At most `n` disjoint ranges that together cover every user.
    fn partitions(&self, n: usize) -> Result<Vec<UserRange>>;
    /// Visits the rows of `range` in id order until `visit` returns `false`.
    fn scan(
        &self,
        range: &UserRange,
        needs: &RowNeeds,
        visit: &mut dyn FnMut(&UserRow) -> bool,
    ) -> Result<()>;
}
