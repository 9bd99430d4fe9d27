//! Row reads for queries: a snapshot that point-reads or scans users, fetching
//! only what the query names (see [`crate::row`]).
//!
//! A scan walks the features family (the list of users) and, when attributes are
//! needed, the attributes family in lockstep with it, so a filter on an attribute
//! costs an iterator step per user, not a point lookup.

use rocksdb::{DB, DBRawIteratorWithThreadMode, ReadOptions, SnapshotWithThreadMode};

use super::read::{read_buckets, read_err, snapshot_opts};
use super::{Engine, cf, engine_err};
use crate::error::{Error, Result};
use crate::keys;
use crate::merge::record::Record;
use crate::merge::vector::VectorValue;
use crate::row::{RowNeeds, UserRange, UserRow};

/// A consistent view of the database for reading rows. It is `Sync`: scans of
/// disjoint ranges may run on different threads and all see the same data.
pub struct Reader<'a> {
    engine: &'a Engine,
    snapshot: SnapshotWithThreadMode<'a, DB>,
}

impl std::fmt::Debug for Reader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader").finish_non_exhaustive()
    }
}

impl Engine {
    /// A reader over the database as it is now.
    pub fn reader(&self) -> Reader<'_> {
        Reader {
            engine: self,
            snapshot: self.db.snapshot(),
        }
    }
}

/// Reads the parts of rows other than the features record.
struct Parts<'a> {
    db: &'a DB,
    ro: ReadOptions,
    vectors: &'a rocksdb::ColumnFamily,
    windows: Option<DBRawIteratorWithThreadMode<'a, DB>>,
}

impl Parts<'_> {
    /// Fills `row`'s sgd vectors and window buckets, as `needs` asks.
    fn fill(&mut self, row: &mut UserRow, needs: &RowNeeds) -> Result<()> {
        row.sgd.clear();
        for &id in &needs.sgd {
            let vk = keys::vector_key(&row.user, id);
            let v = match self
                .db
                .get_pinned_cf_opt(self.vectors, &vk, &self.ro)
                .map_err(|e| read_err(cf::VECTORS, &vk, e))?
            {
                Some(b) => VectorValue::decode(&b)
                    .map_err(|e| Error::corruption(cf::VECTORS, &vk, e))?
                    .current(),
                None => None,
            };
            row.sgd.push(v);
        }
        row.windows.resize_with(needs.windows.len(), Vec::new);
        for (w, out) in needs.windows.iter().zip(&mut row.windows) {
            out.clear();
            if let Some(it) = self.windows.as_mut() {
                read_buckets(it, &row.user, w.id, w.bucket_ms, w.from, w.to, out)?;
            }
        }
        Ok(())
    }
}

impl<'a> Reader<'a> {
    fn ro(&self) -> ReadOptions {
        snapshot_opts(&self.snapshot)
    }

    fn parts(&self, only_user: Option<&str>, needs: &RowNeeds) -> Result<Parts<'a>> {
        let windows = if needs.windows.is_empty() {
            None
        } else {
            let mut ro = self.ro();
            if let Some(u) = only_user {
                let (lo, hi) = keys::user_range(u);
                ro.set_iterate_lower_bound(lo);
                ro.set_iterate_upper_bound(hi);
            }
            Some(
                self.engine
                    .db
                    .raw_iterator_cf_opt(self.engine.cf(cf::WINDOWS)?, ro),
            )
        };
        Ok(Parts {
            db: &self.engine.db,
            ro: self.ro(),
            vectors: self.engine.cf(cf::VECTORS)?,
            windows,
        })
    }

    /// The row of `user`, or `None` when the user does not exist.
    ///
    /// # Errors
    /// [`Error::Corruption`] for a stored value that does not decode.
    pub fn get(&self, user: &str, needs: &RowNeeds) -> Result<Option<UserRow>> {
        let key = keys::user_key(user);
        let ro = self.ro();
        let db = &self.engine.db;
        let Some(feats) = db
            .get_pinned_cf_opt(self.engine.cf(cf::FEATURES)?, &key, &ro)
            .map_err(|e| read_err(cf::FEATURES, &key, e))?
        else {
            return Ok(None);
        };
        let features =
            Record::decode(&feats).map_err(|e| Error::corruption(cf::FEATURES, &key, e))?;
        let attributes = if needs.attributes {
            match db
                .get_pinned_cf_opt(self.engine.cf(cf::ATTRIBUTES)?, &key, &ro)
                .map_err(|e| read_err(cf::ATTRIBUTES, &key, e))?
            {
                Some(b) => {
                    Record::decode(&b).map_err(|e| Error::corruption(cf::ATTRIBUTES, &key, e))?
                }
                None => Record::default(),
            }
        } else {
            Record::default()
        };
        let mut row = UserRow {
            user: user.to_owned(),
            attributes,
            features,
            ..UserRow::default()
        };
        self.parts(Some(user), needs)?.fill(&mut row, needs)?;
        Ok(Some(row))
    }

    /// Splits the users into at most `n` ranges of similar size; see
    /// [`Engine::split_ranges`].
    ///
    /// # Errors
    /// [`Error::Engine`] on failure.
    pub fn split_ranges(&self, n: usize) -> Result<Vec<UserRange>> {
        self.engine.split_ranges(n)
    }

    /// Calls `visit` with the row of every user in `range`, in id order, until it
    /// returns `false`. The row is reused between calls.
    ///
    /// # Errors
    /// [`Error::Corruption`] for a key or value that does not decode;
    /// [`Error::Engine`] on failure.
    pub fn scan(
        &self,
        range: &UserRange,
        needs: &RowNeeds,
        visit: &mut dyn FnMut(&UserRow) -> bool,
    ) -> Result<()> {
        let bounded = || {
            let mut ro = self.ro();
            if let Some(end) = &range.end {
                ro.set_iterate_upper_bound(keys::user_key(end));
            }
            ro
        };
        let seek = |it: &mut DBRawIteratorWithThreadMode<'_, DB>| match &range.start {
            Some(s) => it.seek(keys::user_key(s)),
            None => it.seek_to_first(),
        };
        let db = &self.engine.db;
        let mut feats = db.raw_iterator_cf_opt(self.engine.cf(cf::FEATURES)?, bounded());
        seek(&mut feats);
        let mut attrs = if needs.attributes {
            let mut it = db.raw_iterator_cf_opt(self.engine.cf(cf::ATTRIBUTES)?, bounded());
            seek(&mut it);
            Some(it)
        } else {
            None
        };
        let mut parts = self.parts(None, needs)?;
        let mut row = UserRow::default();
        while let Some(key) = feats.key() {
            let user = keys::user_of(key)
                .ok_or_else(|| Error::corruption(cf::FEATURES, key, "key is not a user key"))?;
            row.user.clear();
            row.user.push_str(user);
            row.features = Record::decode(feats.value().unwrap_or_default())
                .map_err(|e| Error::corruption(cf::FEATURES, key, e))?;
            row.attributes = Record::default();
            if let Some(it) = attrs.as_mut() {
                while it.key().is_some_and(|k| k < key) {
                    it.next();
                }
                if it.key() == Some(key) {
                    row.attributes = Record::decode(it.value().unwrap_or_default())
                        .map_err(|e| Error::corruption(cf::ATTRIBUTES, key, e))?;
                }
            }
            parts.fill(&mut row, needs)?;
            if !visit(&row) {
                return Ok(());
            }
            feats.next();
        }
        feats.status().map_err(engine_err)?;
        if let Some(it) = &attrs {
            it.status().map_err(engine_err)?;
        }
        Ok(())
    }
}
