//! Vectors in memory: similarity kernels, a table of every user's current vector
//! with an exact parallel top-k, and k-means++ clustering. Pure computation; the
//! engine keeps the tables in step with RocksDB (see `crate::engine`).

pub mod kernels;
pub mod kmeans;
pub mod table;

use std::sync::Arc;

use crate::row::UserRow;

pub use kernels::Metric;
pub use kmeans::{Clustering, kmeans};
pub use table::{Hit, VectorTable};

/// One vector definition's table, with each row's user and attributes.
#[derive(Debug, Clone, Default)]
pub struct IndexTable {
    /// The vectors.
    pub table: VectorTable,
    /// For each row of `table`, its user with the attributes record (the
    /// features record is left empty). `None` for free rows.
    pub users: Vec<Option<Arc<UserRow>>>,
}

impl IndexTable {
    /// Sets `user`'s vector (or removes it, with `None`) and its row's user.
    pub fn set(&mut self, user: &Arc<UserRow>, v: Option<&[f32]>) {
        if v.is_none_or(|v| v.len() != self.table.dim()) {
            self.remove(&user.user);
            return;
        }
        self.table.set(&user.user, v);
        if let Some(row) = self.table.row_of(&user.user) {
            if self.users.len() <= row {
                self.users.resize(row + 1, None);
            }
            self.users[row] = Some(Arc::clone(user));
        }
    }

    /// Removes `user`'s row.
    pub fn remove(&mut self, user: &str) {
        if let Some(row) = self.table.row_of(user) {
            self.users[row] = None;
        }
        self.table.remove(user);
    }
}
