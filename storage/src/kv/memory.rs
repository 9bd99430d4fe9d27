//! The in-memory store: one persistent ordered map per column family.
//!
//! `imbl`'s `OrdMap` shares structure between versions, so a snapshot is a
//! clone of the maps (a reference count, not a copy) and a write builds the
//! next version beside the current one: a batch whose operand does not decode
//! leaves the store as it was. Every merge operand is applied at once with the
//! family's full merge, so the maps always hold final values, as RocksDB
//! returns them after merging.
//!
//! It keeps nothing on disk and does no compaction: retention and dropped
//! definitions' leftovers stay in memory until their users are deleted, and
//! readers skip them as they do in RocksDB before a compaction.

use std::ops::Bound;
use std::sync::Arc;

use imbl::OrdMap;
use parking_lot::Mutex;

use super::{ALL, FAMILIES, Kv, KvBatch, KvIter, KvSnapshot, family_index};
use crate::error::{Error, Result};

type Map = OrdMap<Vec<u8>, Arc<[u8]>>;

/// Every family's map, and the number of writes applied.
#[derive(Clone, Default)]
struct Tables {
    maps: [Map; ALL.len()],
    sequence: u64,
}

/// A store held in memory; see the module documentation.
#[derive(Default)]
pub struct MemoryKv {
    tables: Mutex<Tables>,
    /// How many parts [`Kv::split_keys`] cuts a family into at most (0: as
    /// many as asked).
    parts: usize,
}

impl std::fmt::Debug for MemoryKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryKv")
            .field("sequence", &self.tables.lock().sequence)
            .finish_non_exhaustive()
    }
}

impl Clone for MemoryKv {
    /// An independent store holding what this one holds now.
    fn clone(&self) -> MemoryKv {
        MemoryKv {
            tables: Mutex::new(self.tables.lock().clone()),
            parts: self.parts,
        }
    }
}

impl MemoryKv {
    /// An empty store.
    pub fn new() -> MemoryKv {
        MemoryKv::default()
    }

    /// Splits families into at most `n` parts for parallel scans (by default,
    /// as many as a scan asks for), so that tests can choose the split.
    #[must_use]
    pub fn with_parts(mut self, n: usize) -> MemoryKv {
        self.parts = n;
        self
    }
}

fn unknown_family(cf: &str) -> Error {
    Error::Engine(format!("column family '{cf}' is missing"))
}

fn map<'t>(tables: &'t Tables, cf: &str) -> Result<&'t Map> {
    family_index(cf)
        .map(|i| &tables.maps[i])
        .ok_or_else(|| unknown_family(cf))
}

/// One write of a batch.
#[derive(Debug, Clone)]
enum Op {
    Put(&'static str, Vec<u8>, Vec<u8>),
    Merge(&'static str, Vec<u8>, Vec<u8>),
    Delete(&'static str, Vec<u8>),
}

/// A batch for [`MemoryKv`].
#[derive(Debug, Clone, Default)]
pub struct MemoryBatch {
    ops: Vec<Op>,
}

impl KvBatch for MemoryBatch {
    fn put(&mut self, cf: &'static str, key: &[u8], value: &[u8]) {
        self.ops.push(Op::Put(cf, key.to_vec(), value.to_vec()));
    }

    fn merge(&mut self, cf: &'static str, key: &[u8], value: &[u8]) {
        self.ops.push(Op::Merge(cf, key.to_vec(), value.to_vec()));
    }

    fn delete(&mut self, cf: &'static str, key: &[u8]) {
        self.ops.push(Op::Delete(cf, key.to_vec()));
    }

    fn len(&self) -> usize {
        self.ops.len()
    }
}

impl Tables {
    fn map_mut(&mut self, cf: &str) -> Result<(usize, &mut Map)> {
        let i = family_index(cf).ok_or_else(|| unknown_family(cf))?;
        Ok((i, &mut self.maps[i]))
    }

    fn apply(&mut self, op: Op) -> Result<()> {
        match op {
            Op::Put(cf, k, v) => {
                self.map_mut(cf)?.1.insert(k, v.into());
            }
            Op::Merge(cf, k, v) => {
                let (i, map) = self.map_mut(cf)?;
                let merge = FAMILIES[i].merge.ok_or_else(|| {
                    Error::invalid(format!("column family '{cf}' takes no merge operands"))
                })?;
                let merged = merge
                    .full(map.get(&k).map(|v| &v[..]), [v.as_slice()])
                    .map_err(|e| Error::corruption(FAMILIES[i].name, &k, e))?;
                map.insert(k, merged.into());
            }
            Op::Delete(cf, k) => {
                self.map_mut(cf)?.1.remove(&k);
            }
        }
        Ok(())
    }
}

impl Kv for MemoryKv {
    type Snapshot<'a> = MemorySnapshot;
    type Batch = MemoryBatch;

    fn snapshot(&self) -> MemorySnapshot {
        MemorySnapshot {
            tables: self.tables.lock().clone(),
        }
    }

    fn batch(&self) -> MemoryBatch {
        MemoryBatch::default()
    }

    fn write(&self, batch: MemoryBatch, _durable: bool) -> Result<()> {
        let mut tables = self.tables.lock();
        // The next version is built beside the current one, which a failure
        // part-way leaves untouched.
        let mut next = tables.clone();
        for op in batch.ops {
            next.apply(op)?;
        }
        next.sequence += 1;
        *tables = next;
        Ok(())
    }

    fn sequence(&self) -> u64 {
        self.tables.lock().sequence
    }

    fn split_keys(&self, cf: &'static str, n: usize) -> Result<Vec<Vec<u8>>> {
        let tables = self.tables.lock().clone();
        let map = map(&tables, cf)?;
        let n = if self.parts == 0 { n } else { self.parts }.max(1);
        let step = map.len().div_ceil(n).max(1);
        Ok(map
            .keys()
            .skip(step)
            .step_by(step)
            .take(n - 1)
            .cloned()
            .collect())
    }
}

/// The store at one moment.
#[derive(Clone)]
pub struct MemorySnapshot {
    tables: Tables,
}

impl std::fmt::Debug for MemorySnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemorySnapshot")
            .field("sequence", &self.tables.sequence)
            .finish_non_exhaustive()
    }
}

impl KvSnapshot for MemorySnapshot {
    type Value<'a> = Arc<[u8]>;
    type Iter<'a> = MemoryIter<'a>;

    fn get(&self, cf: &'static str, key: &[u8]) -> Result<Option<Arc<[u8]>>> {
        Ok(map(&self.tables, cf)?.get(key).cloned())
    }

    fn multi_get(&self, cf: &'static str, keys: &[Vec<u8>]) -> Result<Vec<Option<Arc<[u8]>>>> {
        let map = map(&self.tables, cf)?;
        Ok(keys
            .iter()
            .map(|k| map.get(k.as_slice()).cloned())
            .collect())
    }

    fn iter(
        &self,
        cf: &'static str,
        lower: Option<Vec<u8>>,
        upper: Option<Vec<u8>>,
    ) -> Result<MemoryIter<'_>> {
        Ok(MemoryIter {
            map: map(&self.tables, cf)?,
            lower,
            upper,
            current: None,
        })
    }
}

/// A cursor over one family of a [`MemorySnapshot`].
pub struct MemoryIter<'a> {
    map: &'a Map,
    lower: Option<Vec<u8>>,
    upper: Option<Vec<u8>>,
    current: Option<(&'a [u8], &'a [u8])>,
}

impl std::fmt::Debug for MemoryIter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryIter")
            .field("current", &self.current.map(|(k, _)| k))
            .finish_non_exhaustive()
    }
}

impl<'a> MemoryIter<'a> {
    fn first_from(&mut self, from: Bound<&[u8]>) {
        let upper = match &self.upper {
            Some(u) => Bound::Excluded(u.as_slice()),
            None => Bound::Unbounded,
        };
        let map: &'a Map = self.map;
        self.current = map
            .range::<_, [u8]>((from, upper))
            .next()
            .map(|(k, v)| (k.as_slice(), &v[..]));
    }
}

impl KvIter for MemoryIter<'_> {
    fn seek(&mut self, key: &[u8]) {
        let lower = self.lower.take();
        match &lower {
            Some(l) if l.as_slice() > key => self.first_from(Bound::Included(l)),
            _ => self.first_from(Bound::Included(key)),
        }
        self.lower = lower;
    }

    fn seek_to_first(&mut self) {
        let lower = self.lower.take();
        match &lower {
            Some(l) => self.first_from(Bound::Included(l)),
            None => self.first_from(Bound::Unbounded),
        }
        self.lower = lower;
    }

    fn key(&self) -> Option<&[u8]> {
        self.current.map(|(k, _)| k)
    }

    fn value(&self) -> &[u8] {
        self.current.map_or(&[], |(_, v)| v)
    }

    fn next(&mut self) {
        if let Some((k, _)) = self.current {
            self.first_from(Bound::Excluded(k));
        }
    }

    fn status(&self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::{ATTRIBUTES, CATALOG, WINDOWS};
    use crate::merge::window::Bucket;

    #[test]
    fn iterates_in_order_within_bounds() -> Result<()> {
        let kv = MemoryKv::new();
        let mut b = kv.batch();
        for k in [b"a".as_slice(), b"b", b"c", b"d"] {
            b.put(CATALOG, k, k);
        }
        kv.write(b, false)?;
        let snap = kv.snapshot();
        let mut it = snap.iter(CATALOG, Some(b"b".to_vec()), Some(b"d".to_vec()))?;
        it.seek_to_first();
        let mut seen = Vec::new();
        while let Some(k) = it.key() {
            seen.push(k.to_vec());
            it.next();
        }
        assert_eq!(seen, vec![b"b".to_vec(), b"c".to_vec()]);
        it.seek(b"a");
        assert_eq!(it.key(), Some(b"b".as_slice()));
        it.seek(b"bb");
        assert_eq!(it.key(), Some(b"c".as_slice()));
        Ok(())
    }

    #[test]
    fn a_bad_operand_leaves_the_store_as_it_was() -> Result<()> {
        let kv = MemoryKv::new();
        let mut b = kv.batch();
        b.merge(WINDOWS, b"k", &Bucket::single(2.0).encode());
        kv.write(b, false)?;
        let before = kv.snapshot();
        let mut b = kv.batch();
        b.put(CATALOG, b"x", b"1");
        b.merge(ATTRIBUTES, b"k", b"\xff garbage");
        assert!(matches!(
            kv.write(b, false),
            Err(Error::Corruption { cf: ATTRIBUTES, .. })
        ));
        let after = kv.snapshot();
        assert_eq!(after.get(CATALOG, b"x")?, None);
        assert_eq!(kv.sequence(), 1);
        // A snapshot does not see later writes.
        let mut b = kv.batch();
        b.delete(WINDOWS, b"k");
        kv.write(b, false)?;
        assert!(before.get(WINDOWS, b"k")?.is_some());
        assert!(kv.snapshot().get(WINDOWS, b"k")?.is_none());
        Ok(())
    }
}
