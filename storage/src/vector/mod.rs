//! Vectors in memory: similarity kernels, a table of every user's current vector
//! with an exact parallel top-k, and k-means++ clustering. Pure computation; the
//! engine keeps the tables in step with RocksDB (see `crate::engine`).

pub mod kernels;
pub mod kmeans;
pub mod table;

pub use kernels::Metric;
pub use kmeans::{Clustering, kmeans};
pub use table::{Hit, VectorTable};
