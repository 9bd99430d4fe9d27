//! An in-memory [`DataSource`]: the storage crate's catalog, event planning and
//! merge functions over `BTreeMap`s instead of RocksDB.
//!
//! It applies every operand at once (a full merge per write), so it is a plain
//! model of what the engine stores. The query crate's own tests run on it, which
//! keeps them free of the C++ build; the facade's tests run the same statements
//! on RocksDB.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use profiledb_storage::catalog::VectorRule;
use profiledb_storage::catalog::{Bindings, Catalog};
use profiledb_storage::event::{EventOps, plan, plan_attributes};
use profiledb_storage::merge::cell::Cell;
use profiledb_storage::merge::record::{self, Record};
use profiledb_storage::merge::vector::{self, VectorValue};
use profiledb_storage::merge::window;
use profiledb_storage::{
    Bucket, DefKind, Definition, Error, Event, IndexTable, Result, RowNeeds, UserRange, UserRow,
    Value, keys,
};

use crate::source::{DataSource, Snapshot};

/// The stored state: one map per column family, keyed as the engine keys them.
#[derive(Debug, Clone, Default)]
struct Tables {
    features: BTreeMap<Vec<u8>, Vec<u8>>,
    attributes: BTreeMap<Vec<u8>, Vec<u8>>,
    windows: BTreeMap<Vec<u8>, Vec<u8>>,
    vectors: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Tables {
    fn apply(&mut self, ops: &EventOps) -> Result<()> {
        fn rec(
            map: &mut BTreeMap<Vec<u8>, Vec<u8>>,
            cf: &'static str,
            key: &[u8],
            op: &[u8],
        ) -> Result<()> {
            let merged = record::full_merge(map.get(key).map(Vec::as_slice), [op])
                .map_err(|e| Error::corruption(cf, key, e))?;
            map.insert(key.to_vec(), merged);
            Ok(())
        }
        rec(&mut self.features, "features", &ops.user_key, &ops.features)?;
        if let Some(a) = &ops.attributes {
            rec(&mut self.attributes, "attributes", &ops.user_key, a)?;
        }
        for (k, op) in &ops.windows {
            let merged = window::merge(self.windows.get(k).map(Vec::as_slice), [op.as_slice()])
                .map_err(|e| Error::corruption("windows", k, e))?;
            self.windows.insert(k.clone(), merged);
        }
        for (k, op) in &ops.sgd {
            let merged =
                vector::full_merge(self.vectors.get(k).map(Vec::as_slice), [op.as_slice()])
                    .map_err(|e| Error::corruption("vectors", k, e))?;
            self.vectors.insert(k.clone(), merged);
        }
        Ok(())
    }
}

/// A database held in memory. Writes are atomic per call, as with the engine.
///
/// # Examples
/// ```
/// use profiledb_query::{Limits, MemorySource, execute};
///
/// let db = MemorySource::new();
/// let sql = "CREATE FEATURE n ON view AS COUNT();
///            INSERT INTO view (user, ts) VALUES ('u1', 1), ('u1', 2), ('u2', 3);
///            SELECT id, n FROM users ORDER BY n DESC LIMIT 1";
/// let out = execute(&db, sql, &Limits::default())?;
/// let rows = out[2].rows().expect("rows");
/// assert_eq!(rows.rows[0][0], profiledb_storage::Value::String("u1".into()));
/// # Ok::<(), profiledb_query::Error>(())
/// ```
#[derive(Debug)]
pub struct MemorySource {
    bindings: Mutex<Arc<Bindings>>,
    tables: Mutex<Tables>,
    now: i64,
    partitions: usize,
}

impl Clone for MemorySource {
    /// An independent copy of the database as it is now.
    fn clone(&self) -> MemorySource {
        MemorySource {
            bindings: Mutex::new(Arc::clone(&lock(&self.bindings))),
            tables: Mutex::new(lock(&self.tables).clone()),
            now: self.now,
            partitions: self.partitions,
        }
    }
}

impl Default for MemorySource {
    fn default() -> MemorySource {
        MemorySource::new()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MemorySource {
    /// An empty database whose clock reads the wall clock.
    pub fn new() -> MemorySource {
        MemorySource {
            bindings: Mutex::new(Arc::new(Bindings::new(Catalog::default()))),
            tables: Mutex::new(Tables::default()),
            now: 0,
            partitions: 0,
        }
    }

    /// Fixes the clock at `now` (epoch ms), the default `AS OF`.
    #[must_use]
    pub fn with_now(mut self, now: i64) -> MemorySource {
        self.now = now;
        self
    }

    /// Splits scans into `n` partitions of similar size (by default, as many as asked).
    #[must_use]
    pub fn with_partitions(mut self, n: usize) -> MemorySource {
        self.partitions = n;
        self
    }

    fn change_catalog(&self, f: impl FnOnce(&mut Catalog) -> Result<u32>) -> Result<u32> {
        let mut guard = lock(&self.bindings);
        let mut catalog = guard.catalog.clone();
        let id = f(&mut catalog)?;
        *guard = Arc::new(Bindings::new(catalog));
        Ok(id)
    }
}

impl DataSource for MemorySource {
    fn bindings(&self) -> Arc<Bindings> {
        Arc::clone(&lock(&self.bindings))
    }

    fn define(&self, def: Definition) -> Result<()> {
        self.change_catalog(|c| c.define(def)).map(|_| ())
    }

    fn drop_item(&self, kind: DefKind, name: &str) -> Result<()> {
        let id = self.change_catalog(|c| c.drop_item(kind, name))?;
        let forget = Record::forget(id).encode();
        let mut t = lock(&self.tables);
        let t = &mut *t;
        for (cf, map) in [
            ("features", &mut t.features),
            ("attributes", &mut t.attributes),
        ] {
            for (k, v) in map.iter_mut() {
                *v = record::full_merge(Some(v), [forget.as_slice()])
                    .map_err(|e| Error::corruption(cf, k, e))?;
            }
        }
        Ok(())
    }

    fn ingest(&self, events: &[Event]) -> Result<usize> {
        let bindings = self.bindings();
        let planned = events
            .iter()
            .enumerate()
            .map(|(index, ev)| {
                plan(&bindings, ev).map_err(|e| Error::InvalidEvent {
                    index,
                    field: e.field,
                    reason: e.reason,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut tables = lock(&self.tables);
        // Apply to a copy, so that a failure part-way writes nothing.
        let mut next = tables.clone();
        for ops in &planned {
            next.apply(ops)?;
        }
        *tables = next;
        Ok(events.len())
    }

    fn set_attributes(&self, user: &str, ts: i64, values: &[(String, Value)]) -> Result<()> {
        let ops = plan_attributes(&self.bindings(), user, ts, values)
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        lock(&self.tables).apply(&ops)
    }

    fn delete_user(&self, user: &str) -> Result<bool> {
        keys::check_stored_user(user)?;
        let (lo, hi) = keys::user_range(user);
        let mut guard = lock(&self.tables);
        let t = &mut *guard;
        let existed = t.features.contains_key(&keys::user_key(user));
        for map in [
            &mut t.features,
            &mut t.attributes,
            &mut t.windows,
            &mut t.vectors,
        ] {
            let doomed: Vec<Vec<u8>> = map
                .range(lo.clone()..hi.clone())
                .map(|(k, _)| k.clone())
                .collect();
            for k in doomed {
                map.remove(&k);
            }
        }
        Ok(existed)
    }

    fn snapshot(&self) -> Result<Box<dyn Snapshot + '_>> {
        Ok(Box::new(MemorySnapshot {
            tables: lock(&self.tables).clone(),
            partitions: self.partitions,
        }))
    }

    fn with_vectors(&self, def: u32, f: &mut dyn FnMut(Option<&IndexTable>)) -> Result<()> {
        let bindings = self.bindings();
        let Some(d) = bindings.catalog.vectors.iter().find(|d| d.id == def) else {
            f(None);
            return Ok(());
        };
        // The model builds the table afresh from its data on every call.
        let snap = self.snapshot()?;
        let needs = RowNeeds {
            attributes: true,
            sgd: vec![d.id],
            windows: Vec::new(),
        };
        let mut table = IndexTable::new(d.dim as usize);
        snap.scan(&UserRange::all(), &needs, &mut |row| {
            let v = match &d.rule {
                VectorRule::Ewma { .. } => match row.features.cell(d.id) {
                    Some(Cell::Ewma(e)) => Some(e.mean()),
                    _ => None,
                },
                VectorRule::Sgd { .. } => row.sgd.first().cloned().flatten(),
            };
            if v.is_some() {
                let user = UserRow {
                    user: row.user.clone(),
                    attributes: row.attributes.clone(),
                    ..UserRow::default()
                };
                table.set(&Arc::new(user), v.as_deref());
            }
            true
        })?;
        f(Some(&table));
        Ok(())
    }

    fn now(&self) -> i64 {
        if self.now == 0 {
            profiledb_storage::time::now_ms()
        } else {
            self.now
        }
    }
}

/// A copy of the tables at one moment.
#[derive(Debug)]
struct MemorySnapshot {
    tables: Tables,
    partitions: usize,
}

impl MemorySnapshot {
    fn row(&self, key: &[u8], feats: &[u8], needs: &RowNeeds) -> Result<UserRow> {
        let user = keys::user_of(key)
            .ok_or_else(|| Error::corruption("features", key, "key is not a user key"))?;
        let features = Record::decode(feats).map_err(|e| Error::corruption("features", key, e))?;
        let attributes = match (needs.attributes, self.tables.attributes.get(key)) {
            (true, Some(a)) => {
                Record::decode(a).map_err(|e| Error::corruption("attributes", key, e))?
            }
            _ => Record::default(),
        };
        let mut sgd = Vec::with_capacity(needs.sgd.len());
        for &id in &needs.sgd {
            let k = keys::vector_key(user, id);
            sgd.push(match self.tables.vectors.get(&k) {
                Some(v) => VectorValue::decode(v)
                    .map_err(|e| Error::corruption("vectors", &k, e))?
                    .current(),
                None => None,
            });
        }
        let mut windows = Vec::with_capacity(needs.windows.len());
        for w in &needs.windows {
            let mut out: Vec<(i64, Bucket)> = Vec::new();
            if w.from <= w.to {
                let lo = keys::window_key(user, w.id, keys::bucket_start(w.from, w.bucket_ms));
                let hi = keys::window_key(user, w.id, keys::bucket_start(w.to, w.bucket_ms));
                for (k, v) in self.tables.windows.range(lo..=hi) {
                    let start = keys::split(k)
                        .and_then(|(_, _, tail)| keys::bucket_of(tail))
                        .ok_or_else(|| Error::corruption("windows", k, "malformed window key"))?;
                    let b = Bucket::decode(v).map_err(|e| Error::corruption("windows", k, e))?;
                    out.push((start, b));
                }
            }
            windows.push(out);
        }
        Ok(UserRow {
            user: user.to_owned(),
            attributes,
            features,
            sgd,
            windows,
        })
    }
}

impl Snapshot for MemorySnapshot {
    fn get(&self, user: &str, needs: &RowNeeds) -> Result<Option<UserRow>> {
        let key = keys::user_key(user);
        match self.tables.features.get(&key) {
            Some(f) => self.row(&key, f, needs).map(Some),
            None => Ok(None),
        }
    }

    fn partitions(&self, n: usize) -> Result<Vec<UserRange>> {
        let n = if self.partitions == 0 {
            n
        } else {
            self.partitions
        }
        .max(1);
        let users: Vec<&str> = self
            .tables
            .features
            .keys()
            .filter_map(|k| keys::user_of(k))
            .collect();
        let step = users.len().div_ceil(n).max(1);
        let mut out = Vec::new();
        let mut start = None;
        for b in users.iter().skip(step).step_by(step) {
            out.push(UserRange {
                start: start.take(),
                end: Some((*b).to_owned()),
            });
            start = Some((*b).to_owned());
        }
        out.push(UserRange { start, end: None });
        Ok(out)
    }

    fn scan(
        &self,
        range: &UserRange,
        needs: &RowNeeds,
        visit: &mut dyn FnMut(&UserRow) -> bool,
    ) -> Result<()> {
        let lo = range
            .start
            .as_deref()
            .map_or(Bound::Unbounded, |s| Bound::Included(keys::user_key(s)));
        let hi = range
            .end
            .as_deref()
            .map_or(Bound::Unbounded, |s| Bound::Excluded(keys::user_key(s)));
        for (k, f) in self.tables.features.range((lo, hi)) {
            if !visit(&self.row(k, f, needs)?) {
                break;
            }
        }
        Ok(())
    }
}
