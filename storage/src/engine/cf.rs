//! Column families: the fixed list, and every family's options built in one place,
//! each with its own merge operator and compaction filter.

use std::ffi::{CStr, CString};
use std::sync::Arc;

use parking_lot::RwLock;
use rocksdb::compaction_filter::{CompactionFilter, Decision};
use rocksdb::compaction_filter_factory::{CompactionFilterContext, CompactionFilterFactory};
use rocksdb::merge_operator::MergeOperands;
use rocksdb::{BlockBasedOptions, Cache, DBCompressionType, DataBlockIndexType, Options};

use crate::catalog::Bindings;
use crate::keys;
use crate::merge::{record, vector, window};
use crate::time::now_ms;

/// The catalog document.
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

/// Every column family. Opening a database that lacks one creates it; a database
/// holding a family not in this list does not open.
pub const ALL: [&str; 5] = [CATALOG, ATTRIBUTES, FEATURES, WINDOWS, VECTORS];

/// The families holding user data (all but the catalog), keyed by user prefix.
pub const DATA: [&str; 4] = [ATTRIBUTES, FEATURES, WINDOWS, VECTORS];

/// The catalog snapshot shared with compaction filters.
pub(crate) type SharedBindings = Arc<RwLock<Arc<Bindings>>>;

/// Options shared by every family.
#[derive(Clone)]
#[allow(missing_debug_implementations)]
pub(crate) struct CfSettings {
    pub block_cache: Cache,
    pub max_successive_merges: usize,
    pub write_buffer_bytes: usize,
}

fn base(settings: &CfSettings) -> Options {
    let mut o = Options::default();
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(&settings.block_cache);
    table.set_bloom_filter(10.0, false);
    table.set_whole_key_filtering(true);
    // A hash index inside each data block turns most point lookups into one probe.
    table.set_data_block_index_type(DataBlockIndexType::BinaryAndHash);
    o.set_block_based_table_factory(&table);
    // The first two levels are rewritten most often, and compressing them was a
    // third of compaction's CPU under ingest: keep them plain, compress below.
    let lz4 = DBCompressionType::Lz4;
    o.set_compression_per_level(&[
        DBCompressionType::None,
        DBCompressionType::None,
        lz4,
        lz4,
        lz4,
        lz4,
        lz4,
    ]);
    o.set_write_buffer_size(settings.write_buffer_bytes);
    o
}

/// Builds the options of family `name`.
///
/// Chains of merge operands: the associative operators (records, windows) fold
/// their operands in every flush and compaction through the partial merge, so each
/// file holds at most one operand per key. sgd steps cannot be folded without the
/// base value, so the vectors family sets `max_successive_merges`: once a key has
/// that many operands in the memtable, RocksDB writes the merged value instead, and
/// a read never applies more steps than that.
pub(crate) fn options(name: &str, settings: &CfSettings, shared: &SharedBindings) -> Options {
    let mut o = base(settings);
    match name {
        ATTRIBUTES | FEATURES => {
            o.set_merge_operator("profiledb.record.v1", record_full, record_partial);
        }
        WINDOWS => {
            o.set_merge_operator("profiledb.window.v1", window_full, window_partial);
            // Window operands are small and every event writes one: a quarter-size
            // memtable keeps the skiplist shallow, and inserting into it was the
            // largest cost of ingest (about +12% events/s against the full size,
            // with profile reads and scans unchanged; `cargo bench --bench ingest`).
            o.set_write_buffer_size(settings.write_buffer_bytes / 4);
            o.set_compaction_filter_factory(Factory {
                name: c"profiledb.window.retention",
                shared: Arc::clone(shared),
                kind: FilterKind::Windows,
            });
        }
        VECTORS => {
            o.set_merge_operator("profiledb.sgd.v1", vector_full, vector_partial);
            o.set_max_successive_merges(settings.max_successive_merges);
            o.set_compaction_filter_factory(Factory {
                name: c"profiledb.vector.dropped",
                shared: Arc::clone(shared),
                kind: FilterKind::Vectors,
            });
        }
        _ => {}
    }
    o
}

fn record_full(_key: &[u8], existing: Option<&[u8]>, ops: &MergeOperands) -> Option<Vec<u8>> {
    record::full_merge(existing, ops.iter()).ok()
}

fn record_partial(_key: &[u8], _existing: Option<&[u8]>, ops: &MergeOperands) -> Option<Vec<u8>> {
    record::partial_merge(ops.iter()).ok()
}

fn window_full(_key: &[u8], existing: Option<&[u8]>, ops: &MergeOperands) -> Option<Vec<u8>> {
    window::merge(existing, ops.iter()).ok()
}

fn window_partial(_key: &[u8], _existing: Option<&[u8]>, ops: &MergeOperands) -> Option<Vec<u8>> {
    window::merge(None, ops.iter()).ok()
}

fn vector_full(_key: &[u8], existing: Option<&[u8]>, ops: &MergeOperands) -> Option<Vec<u8>> {
    vector::full_merge(existing, ops.iter()).ok()
}

fn vector_partial(_key: &[u8], _existing: Option<&[u8]>, ops: &MergeOperands) -> Option<Vec<u8>> {
    // `None` here means "cannot combine": RocksDB keeps the operands for the full merge.
    vector::partial_merge(ops.iter()).ok().flatten()
}

#[derive(Debug, Clone, Copy)]
enum FilterKind {
    Windows,
    Vectors,
}

struct Factory {
    name: &'static CStr,
    shared: SharedBindings,
    kind: FilterKind,
}

/// One compaction's filter: the catalog and clock as of the compaction's start.
struct Filter {
    name: CString,
    bindings: Arc<Bindings>,
    now: i64,
    kind: FilterKind,
}

impl CompactionFilterFactory for Factory {
    type Filter = Filter;

    fn create(&mut self, _context: CompactionFilterContext) -> Filter {
        Filter {
            name: self.name.to_owned(),
            bindings: Arc::clone(&self.shared.read()),
            now: now_ms(),
            kind: self.kind,
        }
    }

    fn name(&self) -> &CStr {
        self.name
    }
}

impl CompactionFilter for Filter {
    fn filter(&mut self, _level: u32, key: &[u8], _value: &[u8]) -> Decision {
        // Keys that do not parse are kept: a filter never destroys data on a guess.
        let Some((_, def, tail)) = keys::split(key) else {
            return Decision::Keep;
        };
        if self.bindings.is_dead(def) {
            return Decision::Remove;
        }
        if let FilterKind::Windows = self.kind
            && let (Some(w), Some(start)) = (
                self.bindings.catalog.window_by_id(def),
                keys::bucket_of(tail),
            )
            && start.saturating_add(w.bucket_ms) <= self.now.saturating_sub(w.retain_ms)
        {
            return Decision::Remove;
        }
        Decision::Keep
    }

    fn name(&self) -> &CStr {
        &self.name
    }
}
