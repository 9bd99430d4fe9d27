//! The key-value seam: the few operations the engine needs from a store, and
//! the table of column families both backends are built from.
//!
//! The engine ([`crate::engine`]) is written once, over [`Kv`]: ingest
//! planning, row reading, deletes, range splitting and the vector index
//! refresher do not know which store they run on. Two stores implement it:
//!
//! - [`rocks::RocksKv`] (feature `rocksdb`): the database on disk;
//! - [`memory::MemoryKv`]: persistent ordered maps in memory, which build
//!   without any C++. The query crate's tests and golden files run the same
//!   engine on it.
//!
//! The seam is narrow on purpose, in the spirit of TiKV's `engine_traits`:
//! point and batched reads, ordered iteration and snapshots for reading; one
//! atomic batch of puts, merge operands and deletes for writing. (No range
//! deletes: RocksDB refuses them beside the row cache that point reads use,
//! so a range is read and deleted key by key.)
//! Everything RocksDB alone can do (compaction, checkpoints, the MANIFEST roll
//! of a purge) stays on the RocksDB engine's own methods.
//!
//! Both backends take their families from [`FAMILIES`]: the name, and the merge
//! functions ([`Merge`]) the family's operands combine with. The in-memory
//! store applies every operand at once with the full merge; RocksDB calls the
//! same functions from its merge operator.

pub mod memory;
#[cfg(feature = "rocksdb")]
pub mod rocks;

use std::ops::Deref;

use crate::codec::DecodeError;
use crate::error::Result;
use crate::merge::{record, vector, window};

/// The catalog document and the purge marker.
pub const CATALOG: &str = "catalog";
/// One record per user: attribute cells.
pub const ATTRIBUTES: &str = "attributes";
/// One record per user: feature cells, ewma vector cells and the user's
/// bookkeeping. Every user has one, so this family is also the list of users.
pub const FEATURES: &str = "features";
/// One key per user, window and bucket.
pub const WINDOWS: &str = "windows";
/// One key per user and sgd vector. (ewma vectors merge associatively, so they
/// are cells of the features record instead: one operand and one read fewer.)
pub const VECTORS: &str = "vectors";
/// Every accepted write, per user, for the history horizon ([`crate::history`]):
/// puts only.
pub const HISTORY: &str = "history";

/// How the operands of a family combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// Records of cells ([`record`]): associative, so partial merges fold.
    Record,
    /// Window buckets ([`window`]): associative.
    Window,
    /// sgd steps ([`vector`]): ordered, so a partial merge declines.
    Sgd,
}

impl Merge {
    /// The name RocksDB stores with the family's tables.
    pub fn name(self) -> &'static str {
        match self {
            Merge::Record => "profiledb.record.v1",
            Merge::Window => "profiledb.window.v1",
            Merge::Sgd => "profiledb.sgd.v1",
        }
    }

    /// The value `existing` becomes after `operands`, in write order.
    ///
    /// # Errors
    /// A [`DecodeError`] for bytes that are not this family's.
    pub fn full<'a>(
        self,
        existing: Option<&[u8]>,
        operands: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Vec<u8>, DecodeError> {
        match self {
            Merge::Record => record::full_merge(existing, operands),
            Merge::Window => window::merge(existing, operands),
            Merge::Sgd => vector::full_merge(existing, operands),
        }
    }

    /// One operand equal to `operands` applied in order, or `None` when they do
    /// not combine without the base value.
    ///
    /// # Errors
    /// A [`DecodeError`] for bytes that are not this family's.
    pub fn partial<'a>(
        self,
        operands: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Option<Vec<u8>>, DecodeError> {
        match self {
            Merge::Record => record::partial_merge(operands).map(Some),
            Merge::Window => window::merge(None, operands).map(Some),
            Merge::Sgd => vector::partial_merge(operands),
        }
    }
}

/// One column family: its name and how its operands merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    /// The family's name.
    pub name: &'static str,
    /// The merge functions of its operands; `None` for a family written with
    /// puts only.
    pub merge: Option<Merge>,
}

/// Every column family, in a fixed order: the schema of a database. Opening a
/// RocksDB database that lacks one creates it; one holding a family not in
/// this list does not open.
pub const FAMILIES: [Family; 6] = [
    Family {
        name: CATALOG,
        merge: None,
    },
    Family {
        name: ATTRIBUTES,
        merge: Some(Merge::Record),
    },
    Family {
        name: FEATURES,
        merge: Some(Merge::Record),
    },
    Family {
        name: WINDOWS,
        merge: Some(Merge::Window),
    },
    Family {
        name: VECTORS,
        merge: Some(Merge::Sgd),
    },
    Family {
        name: HISTORY,
        merge: None,
    },
];

/// Every column family's name, in [`FAMILIES`] order.
pub const ALL: [&str; 6] = [CATALOG, ATTRIBUTES, FEATURES, WINDOWS, VECTORS, HISTORY];

/// The families holding user data (all but the catalog), keyed by user prefix.
pub const DATA: [&str; 5] = [ATTRIBUTES, FEATURES, WINDOWS, VECTORS, HISTORY];

/// The position of family `name` in [`FAMILIES`].
pub(crate) fn family_index(name: &str) -> Option<usize> {
    ALL.iter().position(|n| *n == name)
}

/// A key-value store with column families, merge operands and snapshots.
pub trait Kv: Send + Sync + 'static {
    /// A consistent view of the store at one moment.
    type Snapshot<'a>: KvSnapshot
    where
        Self: 'a;
    /// A batch of writes, applied all or nothing.
    type Batch: KvBatch;

    /// A view of everything written so far.
    fn snapshot(&self) -> Self::Snapshot<'_>;
    /// An empty batch.
    fn batch(&self) -> Self::Batch;
    /// An empty batch with room for `bytes` of records (keys, values and
    /// what the store frames each with), so that a large batch is not
    /// copied as it grows.
    fn batch_with_capacity(&self, bytes: usize) -> Self::Batch {
        let _ = bytes;
        self.batch()
    }
    /// Applies `batch` atomically. With `durable`, the write is on stable
    /// storage before this returns, whatever the store's sync policy.
    ///
    /// # Errors
    /// The store's failure; nothing of the batch is applied then.
    fn write(&self, batch: Self::Batch, durable: bool) -> Result<()>;
    /// A number that grows with every write: equal numbers mean nothing was
    /// written between them.
    fn sequence(&self) -> u64;
    /// Up to `n - 1` keys, ascending, that split family `cf` into parts of
    /// roughly equal size; fewer when the store cannot tell (a store with
    /// everything in its memtable gives none).
    ///
    /// # Errors
    /// The store's failure.
    fn split_keys(&self, cf: &'static str, n: usize) -> Result<Vec<Vec<u8>>>;
    /// Writes `batch`, a delete of the key ranges `ranges`: a store that keeps
    /// deleted bytes on disk notes the ranges (and, in the same batch, that a
    /// purge is due), to purge them later; see [`Kv::vacuum`].
    ///
    /// # Errors
    /// As [`Kv::write`].
    fn write_delete(&self, batch: Self::Batch, ranges: Vec<(Vec<u8>, Vec<u8>)>) -> Result<()> {
        let _ = ranges;
        self.write(batch, false)
    }
    /// Purges deleted data from every file the store keeps, stopping at
    /// `deadline`: `false` when it stopped before it was complete. A store
    /// that keeps no files has nothing to do.
    ///
    /// # Errors
    /// The store's failure.
    fn vacuum(&self, deadline: Option<std::time::Instant>) -> Result<bool> {
        let _ = deadline;
        Ok(true)
    }
}

/// Writes to apply together.
pub trait KvBatch: Send {
    /// Sets `key` to `value`.
    fn put(&mut self, cf: &'static str, key: &[u8], value: &[u8]);
    /// Adds a merge operand to `key`.
    fn merge(&mut self, cf: &'static str, key: &[u8], value: &[u8]);
    /// Removes `key`.
    fn delete(&mut self, cf: &'static str, key: &[u8]);
    /// The number of writes in the batch.
    fn len(&self) -> usize;
    /// Whether the batch holds no write.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Reads through one consistent view.
pub trait KvSnapshot: Sync {
    /// A stored value.
    type Value<'a>: Deref<Target = [u8]>
    where
        Self: 'a;
    /// An ordered iterator.
    type Iter<'a>: KvIter
    where
        Self: 'a;

    /// The value of `key` in family `cf`, with its operands merged.
    ///
    /// # Errors
    /// [`crate::Error::Corruption`] when the value or an operand does not decode.
    fn get(&self, cf: &'static str, key: &[u8]) -> Result<Option<Self::Value<'_>>>;
    /// The values of `keys` (sorted) in family `cf`.
    ///
    /// # Errors
    /// As [`KvSnapshot::get`].
    fn multi_get(&self, cf: &'static str, keys: &[Vec<u8>])
    -> Result<Vec<Option<Self::Value<'_>>>>;
    /// An iterator over family `cf`, confined to `[lower, upper)` where given,
    /// not yet positioned.
    ///
    /// # Errors
    /// The store's failure.
    fn iter(
        &self,
        cf: &'static str,
        lower: Option<Vec<u8>>,
        upper: Option<Vec<u8>>,
    ) -> Result<Self::Iter<'_>>;
}

/// A cursor over one family, in key order.
pub trait KvIter {
    /// Moves to the first key at or after `key`.
    fn seek(&mut self, key: &[u8]);
    /// Moves to the first key.
    fn seek_to_first(&mut self);
    /// The current key, or `None` past the end (or after a failure: see
    /// [`KvIter::status`]).
    fn key(&self) -> Option<&[u8]>;
    /// The current value (empty past the end).
    fn value(&self) -> &[u8];
    /// Moves to the next key.
    fn next(&mut self);
    /// Whether the iteration failed.
    ///
    /// # Errors
    /// [`crate::Error::Corruption`] or the store's failure.
    fn status(&self) -> Result<()>;
}
