//! Vectors in memory: similarity kernels, a table of every user's current vector
//! with an exact parallel top-k, and k-means++ clustering. Pure computation; the
//! engine keeps the tables in step with RocksDB (see `crate::engine`).

pub mod ivf;
pub mod kernels;
pub mod kmeans;
pub mod table;

use std::collections::HashMap;
use std::sync::Arc;

use roaring::RoaringBitmap;

use crate::merge::cell::Cell;
use crate::row::UserRow;
use crate::value::Value;

pub use ivf::{Ivf, IvfParams, IvfStats, Measurement};
pub use kernels::Metric;
pub use kmeans::{Clustering, kmeans};
pub use table::{Hit, VectorTable};

/// An attribute value that rows can be looked up by: ints, strings and bools.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PostingKey {
    /// An int.
    Int(i64),
    /// A string.
    String(String),
    /// A bool.
    Bool(bool),
}

impl PostingKey {
    /// The key of a value, for the kinds postings are kept for.
    pub fn of(v: &Value) -> Option<PostingKey> {
        match v {
            Value::Int(i) => Some(PostingKey::Int(*i)),
            Value::String(s) => Some(PostingKey::String(s.clone())),
            Value::Bool(b) => Some(PostingKey::Bool(*b)),
            _ => None,
        }
    }
}

/// One vector definition's table, with each row's user and attributes, and
/// for each (attribute, value) the rows whose user has it, so that a filter
/// such as `region = 'north'` visits only those rows.
#[derive(Debug, Clone, Default)]
pub struct IndexTable {
    /// The vectors.
    pub table: VectorTable,
    /// For each row of `table`, its user with the attributes record (the
    /// features record is left empty). `None` for free rows.
    pub users: Vec<Option<Arc<UserRow>>>,
    /// Rows by attribute id and value (ints, strings and bools).
    postings: HashMap<(u32, PostingKey), RoaringBitmap>,
    /// The approximate index of the vectors, when one is defined and built;
    /// every change to `table` is applied to it.
    pub ivf: Option<Ivf>,
    /// Rows changed since [`IndexTable::track_changes`], while an index is
    /// built beside the table.
    changed: Option<RoaringBitmap>,
}

impl IndexTable {
    /// An empty table of `dim`-dimensional vectors.
    pub fn new(dim: usize) -> IndexTable {
        IndexTable {
            table: VectorTable::new(dim),
            ..IndexTable::default()
        }
    }

    /// Sets `user`'s vector (or removes it, with `None`) and its row's user.
    pub fn set(&mut self, user: &Arc<UserRow>, v: Option<&[f32]>) {
        if v.is_none_or(|v| v.len() != self.table.dim()) {
            self.remove(&user.user);
            return;
        }
        self.table.set(&user.user, v);
        let Some(row) = self.table.row_of(&user.user) else {
            return;
        };
        self.touched(row);
        if self.users.len() <= row {
            self.users.resize(row + 1, None);
        }
        if self.users[row]
            .as_ref()
            .is_some_and(|old| Arc::ptr_eq(old, user))
        {
            return;
        }
        self.unpost(row);
        self.users[row] = Some(Arc::clone(user));
        if let (Ok(r), Some(u)) = (u32::try_from(row), &self.users[row]) {
            for (id, key) in Self::keys(u) {
                self.postings.entry((id, key)).or_default().insert(r);
            }
        }
    }

    /// Removes `user`'s row.
    pub fn remove(&mut self, user: &str) {
        if let Some(row) = self.table.row_of(user) {
            self.unpost(row);
            self.users[row] = None;
            self.table.remove(user);
            self.touched(row);
        }
    }

    /// Applies a change of `row` to the index and notes it for a build.
    fn touched(&mut self, row: usize) {
        if let Some(ivf) = &mut self.ivf {
            ivf.update(&self.table, row);
        }
        if let (Some(changed), Ok(r)) = (&mut self.changed, u32::try_from(row)) {
            changed.insert(r);
        }
    }

    /// Starts noting which rows change, for an index built from the table
    /// in pieces: a row changed after its piece was computed is computed
    /// again when the index is installed.
    pub fn track_changes(&mut self) {
        self.changed = Some(RoaringBitmap::new());
    }

    /// The rows changed since [`IndexTable::track_changes`], which stops
    /// noting them.
    pub fn take_changes(&mut self) -> RoaringBitmap {
        self.changed.take().unwrap_or_default()
    }

    /// The rows whose user's attribute `id` equals `value`; `None` when no
    /// posting list is kept for values of that kind.
    pub fn rows_with(&self, id: u32, value: &Value) -> Option<RoaringBitmap> {
        let key = PostingKey::of(value)?;
        Some(self.postings.get(&(id, key)).cloned().unwrap_or_default())
    }

    fn keys(user: &UserRow) -> Vec<(u32, PostingKey)> {
        user.attributes
            .ids()
            .filter_map(|id| match user.attributes.cell(id) {
                Some(Cell::Attr { value, .. }) => PostingKey::of(value).map(|k| (id, k)),
                _ => None,
            })
            .collect()
    }

    /// Takes `row` out of the posting lists of its current user.
    fn unpost(&mut self, row: usize) {
        let (Some(Some(old)), Ok(r)) = (self.users.get(row), u32::try_from(row)) else {
            return;
        };
        for k in Self::keys(old) {
            if let Some(rows) = self.postings.get_mut(&k) {
                rows.remove(r);
                if rows.is_empty() {
                    self.postings.remove(&k);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::record::Record;

    fn user(id: &str, region: &str) -> Arc<UserRow> {
        Arc::new(UserRow {
            user: id.into(),
            attributes: Record::from_cells([(
                7,
                Cell::Attr {
                    ts: 1,
                    value: Value::String(region.into()),
                },
            )]),
            ..UserRow::default()
        })
    }

    fn rows(t: &IndexTable, region: &str) -> Vec<u32> {
        t.rows_with(7, &Value::String(region.into()))
            .map(|b| b.iter().collect())
            .unwrap_or_default()
    }

    #[test]
    fn postings_follow_attribute_changes_and_removals() {
        let mut t = IndexTable::new(2);
        t.set(&user("a", "north"), Some(&[1.0, 0.0]));
        t.set(&user("b", "north"), Some(&[0.0, 1.0]));
        assert_eq!(rows(&t, "north"), vec![0, 1]);
        t.set(&user("a", "south"), Some(&[1.0, 0.0]));
        assert_eq!(rows(&t, "north"), vec![1]);
        assert_eq!(rows(&t, "south"), vec![0]);
        t.remove("b");
        assert!(rows(&t, "north").is_empty());
        // A removed vector takes its row out too; a reused row gets new postings.
        t.set(&user("a", "south"), None);
        assert!(rows(&t, "south").is_empty());
        t.set(&user("c", "east"), Some(&[1.0, 1.0]));
        assert_eq!(rows(&t, "east").len(), 1);
        assert_eq!(t.rows_with(7, &Value::Float(1.0)), None);
    }
}
