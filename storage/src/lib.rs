//! ProfileDB's storage engine.
//!
//! This crate is the only one that links RocksDB. It owns the column families,
//! the key layout, the value codecs and merge operators, the catalog, ingest and
//! reads. It knows nothing of the query language: segments are stored as text
//! for the query crate to parse.
//!
//! The engine ([`Engine`]) is written once over a narrow key-value seam
//! ([`kv::Kv`]) with two stores: RocksDB ([`RocksEngine`], the default
//! `rocksdb` feature) and memory ([`MemoryEngine`]). Without the `rocksdb`
//! feature the crate builds without any C++, the in-memory engine included.
//!
//! # Examples
//! ```
//! # #[cfg(feature = "rocksdb")] {
//! use profiledb_storage::{Definition, Engine, EngineOptions, Event, FeatureKind};
//!
//! let dir = tempfile::tempdir()?;
//! let engine = Engine::open(EngineOptions::new(dir.path()))?;
//! engine.define(Definition::Feature {
//!     name: "spend".into(),
//!     event_type: "purchase".into(),
//!     field: Some("amount".into()),
//!     kind: FeatureKind::DecayedSum { half_life_ms: 7 * 86_400_000 },
//! })?;
//! engine.ingest(&[Event::new("u1", "purchase", 1_761_991_200_000).with("amount", 35.0)])?;
//! let profile = engine.profile("u1", 1_761_991_200_000, 86_400_000)?.expect("u1 exists");
//! assert_eq!(profile.get("spend"), Some(&profiledb_storage::Value::Float(35.0)));
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod catalog;
pub mod codec;
pub mod engine;
mod error;
pub mod event;
pub mod history;
pub mod keys;
pub mod kv;
mod malloc;
pub mod merge;
pub mod profile;
pub mod row;
pub mod time;
mod value;
pub mod vector;

pub use catalog::{Catalog, DefKind, Definition, FeatureKind, VectorRule};
pub use codec::DecodeError;
pub use engine::{
    Engine, Ingested, LogApplied, LogNote, MemoryEngine, NearestFilter, Pins, ProfileRows,
    ReadView, RowTableStats,
};
#[cfg(feature = "rocksdb")]
pub use engine::{EngineStats, RocksEngine};
pub use error::{Error, ErrorKind, EscapedKey, Result, Status};
pub use event::{Event, EventError};
#[cfg(feature = "rocksdb")]
pub use kv::rocks::{EngineOptions, SyncPolicy};
pub use malloc::tune_malloc;
pub use merge::window::Bucket;
pub use profile::{Profile, ProfileRef};
pub use row::{RowNeeds, UserRange, UserRow, WindowNeed};
pub use time::TimeError;
pub use value::{AttrType, MAX_MAGNITUDE, Value};
pub use vector::{IndexTable, Ivf, IvfParams, IvfStats, Measurement, Metric, VectorTable};
