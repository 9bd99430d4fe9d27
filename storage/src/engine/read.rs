//! Reads: whole profiles as of T, window buckets, and scans over users.
//!
//! Every read goes through one RocksDB snapshot, so a profile never shows half of
//! an atomic batch.

use std::sync::Arc;

use rocksdb::{DB, DBRawIteratorWithThreadMode, ReadOptions, SnapshotWithThreadMode};

use super::{Engine, cf, engine_err};
use crate::catalog::{Bindings, META_ID, VectorRule, WindowDef};
use crate::error::{Error, Result};
use crate::keys;
use crate::merge::cell::Cell;
use crate::merge::record::Record;
use crate::merge::vector::VectorValue;
use crate::merge::window::Bucket;
use crate::profile::{Profile, evaluate_feature};
use crate::row::UserRange;
use crate::value::Value;

pub(super) fn read_err(cf: &'static str, key: &[u8], e: rocksdb::Error) -> Error {
    if e.kind() == rocksdb::ErrorKind::Corruption {
        Error::corruption(cf, key, e.into_string())
    } else {
        engine_err(e)
    }
}

pub(super) fn snapshot_opts(snapshot: &SnapshotWithThreadMode<'_, DB>) -> ReadOptions {
    let mut ro = ReadOptions::default();
    ro.set_snapshot(snapshot);
    ro
}

/// Reads the parts of profiles through one snapshot.
struct ProfileReader<'a> {
    db: &'a DB,
    bindings: Arc<Bindings>,
    attributes: &'a rocksdb::ColumnFamily,
    vectors: &'a rocksdb::ColumnFamily,
    /// Present when any window is defined: readers of profiles without windows
    /// never pay for creating it.
    windows_it: Option<DBRawIteratorWithThreadMode<'a, DB>>,
    ro: ReadOptions,
}

impl<'a> ProfileReader<'a> {
    /// A reader through `snapshot`. With `only_user`, a window iterator is bounded
    /// to that user's keys, which lets RocksDB skip every file that holds none.
    fn new(
        engine: &'a Engine,
        snapshot: &SnapshotWithThreadMode<'a, DB>,
        only_user: Option<&str>,
    ) -> Result<ProfileReader<'a>> {
        let bindings = engine.bindings();
        let windows_it = if bindings.catalog.windows.is_empty() {
            None
        } else {
            let mut ro = snapshot_opts(snapshot);
            if let Some(u) = only_user {
                let (lo, hi) = keys::user_range(u);
                ro.set_iterate_lower_bound(lo);
                ro.set_iterate_upper_bound(hi);
            }
            Some(engine.db.raw_iterator_cf_opt(engine.cf(cf::WINDOWS)?, ro))
        };
        Ok(ProfileReader {
            db: &engine.db,
            bindings,
            attributes: engine.cf(cf::ATTRIBUTES)?,
            vectors: engine.cf(cf::VECTORS)?,
            windows_it,
            ro: snapshot_opts(snapshot),
        })
    }

    /// Builds the profile of `user` whose features record is `features`.
    fn read(&mut self, user: &str, features: &[u8], as_of: i64, span: i64) -> Result<Profile> {
        let key = keys::user_key(user);
        let feats =
            Record::decode(features).map_err(|e| Error::corruption(cf::FEATURES, &key, e))?;
        let (first_seen, last_seen, events) = match feats.cell(META_ID) {
            Some(Cell::Meta {
                first,
                last,
                events,
            }) => (*first, *last, *events),
            _ => {
                return Err(Error::corruption(
                    cf::FEATURES,
                    &key,
                    "record lacks the user cell",
                ));
            }
        };
        let attrs = match self
            .db
            .get_pinned_cf_opt(self.attributes, &key, &self.ro)
            .map_err(|e| read_err(cf::ATTRIBUTES, &key, e))?
        {
            Some(b) => {
                Record::decode(&b).map_err(|e| Error::corruption(cf::ATTRIBUTES, &key, e))?
            }
            None => Record::default(),
        };
        let bindings = Arc::clone(&self.bindings);
        let catalog = &bindings.catalog;
        let attributes = catalog
            .attributes
            .iter()
            .map(|d| {
                let v = match attrs.cell(d.id) {
                    Some(Cell::Attr { value, .. }) => value.clone(),
                    _ => Value::Null,
                };
                (d.name.clone(), v)
            })
            .collect();
        let features = catalog
            .features
            .iter()
            .map(|d| (d.name.clone(), evaluate_feature(d, feats.cell(d.id), as_of)))
            .collect();
        let mut vectors = Vec::with_capacity(catalog.vectors.len());
        for d in &catalog.vectors {
            let v = match d.rule {
                VectorRule::Ewma { .. } => match feats.cell(d.id) {
                    Some(Cell::Ewma(e)) => Value::Vector(e.mean()),
                    _ => Value::Null,
                },
                VectorRule::Sgd { .. } => {
                    let vk = keys::vector_key(user, d.id);
                    match self
                        .db
                        .get_pinned_cf_opt(self.vectors, &vk, &self.ro)
                        .map_err(|e| read_err(cf::VECTORS, &vk, e))?
                    {
                        Some(b) => VectorValue::decode(&b)
                            .map_err(|e| Error::corruption(cf::VECTORS, &vk, e))?
                            .current()
                            .map_or(Value::Null, Value::Vector),
                        None => Value::Null,
                    }
                }
            };
            vectors.push((d.name.clone(), v));
        }
        let mut windows = Vec::with_capacity(catalog.windows.len());
        for d in &catalog.windows {
            let mut agg = Bucket::empty();
            for (_, b) in self.buckets(user, d, as_of.saturating_sub(span), as_of)? {
                agg.merge(&b);
            }
            windows.push((d.name.clone(), agg));
        }
        Ok(Profile {
            user: user.to_owned(),
            as_of,
            first_seen,
            last_seen,
            events,
            attributes,
            features,
            vectors,
            windows,
        })
    }

    /// The buckets of window `d` for `user` that overlap `[from, to]`. A bucket that
    /// starts before `from` but reaches into the range counts whole.
    fn buckets(
        &mut self,
        user: &str,
        d: &WindowDef,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, Bucket)>> {
        let mut out = Vec::new();
        // Without an iterator there is no window definition, so no bucket to read.
        if let Some(it) = self.windows_it.as_mut() {
            read_buckets(it, user, d.id, d.bucket_ms, from, to, &mut out)?;
        }
        Ok(out)
    }
}

/// Appends to `out` the buckets of window `id` (of width `bucket_ms`) for `user`
/// that overlap `[from, to]`, oldest first. A bucket that starts before `from` but
/// reaches into the range counts whole.
pub(super) fn read_buckets(
    it: &mut DBRawIteratorWithThreadMode<'_, DB>,
    user: &str,
    id: u32,
    bucket_ms: i64,
    from: i64,
    to: i64,
    out: &mut Vec<(i64, Bucket)>,
) -> Result<()> {
    if to < from {
        return Ok(());
    }
    let (lo, hi) = (
        keys::bucket_start(from, bucket_ms),
        keys::bucket_start(to, bucket_ms),
    );
    let first = keys::window_key(user, id, lo);
    let last = keys::window_key(user, id, hi);
    it.seek(&first);
    while let Some(k) = it.key() {
        if k > last.as_slice() {
            break;
        }
        let start = keys::split(k)
            .and_then(|(_, _, tail)| keys::bucket_of(tail))
            .ok_or_else(|| Error::corruption(cf::WINDOWS, k, "malformed window key"))?;
        let v = it.value().unwrap_or_default();
        let b = Bucket::decode(v).map_err(|e| Error::corruption(cf::WINDOWS, k, e))?;
        out.push((start, b));
        it.next();
    }
    it.status().map_err(|e| read_err(cf::WINDOWS, &first, e))
}

impl Engine {
    /// Whether `user` exists (has had an event or an attribute write).
    ///
    /// # Errors
    /// [`Error::Engine`] on failure.
    pub fn user_exists(&self, user: &str) -> Result<bool> {
        let key = keys::user_key(user);
        let cf = self.cf(cf::FEATURES)?;
        Ok(self
            .db
            .get_pinned_cf(cf, &key)
            .map_err(|e| read_err(cf::FEATURES, &key, e))?
            .is_some())
    }

    /// The profile of `user` as of `as_of`, with window aggregates over the span
    /// `[as_of − window_span_ms, as_of]`. `None` when the user does not exist.
    ///
    /// # Errors
    /// [`Error::Corruption`] naming the column family and key of a value that does
    /// not decode; [`Error::Engine`] on failure.
    pub fn profile(&self, user: &str, as_of: i64, window_span_ms: i64) -> Result<Option<Profile>> {
        let snapshot = self.db.snapshot();
        let key = keys::user_key(user);
        let ro = snapshot_opts(&snapshot);
        let feats = self
            .db
            .get_pinned_cf_opt(self.cf(cf::FEATURES)?, &key, &ro)
            .map_err(|e| read_err(cf::FEATURES, &key, e))?;
        let Some(feats) = feats else {
            return Ok(None);
        };
        let mut reader = ProfileReader::new(self, &snapshot, Some(user))?;
        reader.read(user, &feats, as_of, window_span_ms).map(Some)
    }

    /// The buckets of window `window` for `user` overlapping `[from, to]`, oldest
    /// first, as (bucket start, aggregate).
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown window; [`Error::Corruption`] for a bad bucket.
    pub fn window_buckets(
        &self,
        user: &str,
        window: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, Bucket)>> {
        let bindings = self.bindings();
        let d = bindings
            .catalog
            .window(window)
            .ok_or_else(|| Error::NotFound {
                kind: "window",
                name: window.to_owned(),
            })?;
        let snapshot = self.db.snapshot();
        let mut reader = ProfileReader::new(self, &snapshot, Some(user))?;
        reader.buckets(user, d, from, to)
    }

    /// Scans the profiles of every user in `range`, in id order, through one
    /// snapshot. Scans of disjoint ranges (see [`Engine::split_ranges`]) may run on
    /// different threads.
    ///
    /// # Errors
    /// [`Error::Engine`] when the column families are missing.
    pub fn scan(&self, range: &UserRange, as_of: i64, window_span_ms: i64) -> Result<Scan<'_>> {
        let snapshot = self.db.snapshot();
        let mut ro = snapshot_opts(&snapshot);
        let end = range.end.as_deref().map(keys::user_key);
        if let Some(end) = &end {
            ro.set_iterate_upper_bound(end.clone());
        }
        let mut it = self.db.raw_iterator_cf_opt(self.cf(cf::FEATURES)?, ro);
        match &range.start {
            Some(s) => it.seek(keys::user_key(s)),
            None => it.seek_to_first(),
        }
        let reader = ProfileReader::new(self, &snapshot, None)?;
        Ok(Scan {
            it,
            reader,
            as_of,
            span: window_span_ms,
            failed: false,
            _snapshot: snapshot,
        })
    }

    /// Splits the user key space into at most `n` contiguous ranges of roughly
    /// similar size, from the boundaries of the stored files.
    ///
    /// # Errors
    /// [`Error::Engine`] on failure.
    pub fn split_ranges(&self, n: usize) -> Result<Vec<UserRange>> {
        let mut bounds: Vec<String> = self
            .db
            .live_files()
            .map_err(engine_err)?
            .into_iter()
            .filter(|f| f.column_family_name == cf::FEATURES)
            .filter_map(|f| {
                f.start_key
                    .and_then(|k| keys::user_of(&k).map(str::to_owned))
            })
            .collect();
        bounds.sort();
        bounds.dedup();
        let n = n.max(1);
        let step = bounds.len().div_ceil(n).max(1);
        let picked: Vec<String> = bounds
            .into_iter()
            .skip(1)
            .step_by(step)
            .take(n - 1)
            .collect();
        let mut out = Vec::with_capacity(picked.len() + 1);
        let mut start = None;
        for b in picked {
            out.push(UserRange {
                start: start.take(),
                end: Some(b.clone()),
            });
            start = Some(b);
        }
        out.push(UserRange { start, end: None });
        Ok(out)
    }
}

/// An iterator over the profiles of a range of users.
pub struct Scan<'a> {
    it: DBRawIteratorWithThreadMode<'a, DB>,
    reader: ProfileReader<'a>,
    as_of: i64,
    span: i64,
    failed: bool,
    // Declared last: dropped after the iterators that read through it.
    _snapshot: SnapshotWithThreadMode<'a, DB>,
}

impl std::fmt::Debug for Scan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scan")
            .field("as_of", &self.as_of)
            .finish_non_exhaustive()
    }
}

impl Iterator for Scan<'_> {
    type Item = Result<Profile>;

    fn next(&mut self) -> Option<Result<Profile>> {
        if self.failed {
            return None;
        }
        let Some(key) = self.it.key() else {
            if let Err(e) = self.it.status() {
                self.failed = true;
                return Some(Err(engine_err(e)));
            }
            return None;
        };
        let result = match keys::user_of(key) {
            Some(user) => {
                let value = self.it.value().unwrap_or_default();
                self.reader.read(user, value, self.as_of, self.span)
            }
            None => Err(Error::corruption(
                cf::FEATURES,
                key,
                "key is not a user key",
            )),
        };
        if result.is_err() {
            self.failed = true;
        }
        self.it.next();
        Some(result)
    }
}
