//! Every column family's RocksDB options, built in one place from the family
//! table ([`crate::kv::FAMILIES`]): the merge operator of each, and the
//! compaction filters that apply retention and drop dropped definitions' data.

use std::ffi::{CStr, CString};
use std::sync::Arc;

use rocksdb::compaction_filter::{CompactionFilter, Decision};
use rocksdb::compaction_filter_factory::{CompactionFilterContext, CompactionFilterFactory};
use rocksdb::merge_operator::MergeOperands;
use rocksdb::{BlockBasedOptions, Cache, DBCompressionType, DataBlockIndexType, Options};

use crate::catalog::{Bindings, SharedBindings};
use crate::keys;
use crate::kv::{ATTRIBUTES, FAMILIES, FEATURES, HISTORY, Merge, VECTORS, WINDOWS, family_index};
use crate::time::now_ms;

/// Options shared by every family.
#[derive(Clone)]
#[allow(missing_debug_implementations)]
pub(crate) struct CfSettings {
    pub block_cache: Cache,
    pub max_successive_merges: usize,
    pub write_buffer_bytes: usize,
}

/// Bits a key of each family's bloom filter: 10, and 20 for the history.
///
/// Ingest looks up every event id it is given in the history's table
/// files, nearly all absent: at 10 bits a key about one lookup in a hundred
/// per file matches falsely and reads a data block, from disk once the file
/// is cold. 20 bits make a false match far rarer, for 1.25 more bytes a
/// key: ingest with ids 102k-105k events/s against 81k-84k (`cargo bench
/// --bench ingest`, alternating, 2026-12-05).
fn bloom_bits(name: &str) -> f64 {
    if name == HISTORY { 20.0 } else { 10.0 }
}

/// The options every family starts from; `name`'s bloom filter.
fn base(name: &str, settings: &CfSettings) -> Options {
    let mut o = Options::default();
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(&settings.block_cache);
    table.set_bloom_filter(bloom_bits(name), false);
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

/// The families whose tables point reads and scans read, which flushes
/// and compactions write into the block cache as they write them.
const WARMED: [&str; 4] = [ATTRIBUTES, FEATURES, WINDOWS, VECTORS];

/// Makes flushes and compactions of the read families put the blocks they
/// write into the block cache (`prepopulate_block_cache`,
/// `kFlushAndCompaction`), so that reads after a compaction find the
/// rewritten blocks there rather than in the operating system's page
/// cache, which not every host keeps: on this project's test machine,
/// which reclaims idle file pages, reads of random users after the bulk
/// load's compaction otherwise took 95–110 µs at p99, most of it reading
/// from disk. Compaction's blocks enter at the cache's lowest priority, so
/// they are the first to go when the data outgrows it. rust-rocksdb's
/// table options do not offer the setting, so it is set on the open
/// database; RocksDB's notes on its table options call changing one this
/// small while tables are being written acceptable.
pub(crate) fn warm_block_cache(db: &rocksdb::DB) {
    for name in WARMED {
        let Some(cf) = db.cf_handle(name) else {
            continue;
        };
        let warm = [(
            "block_based_table_factory",
            "{prepopulate_block_cache=kFlushAndCompaction;}",
        )];
        if let Err(e) = db.set_options_cf(&cf, &warm) {
            log::warn!("family {name}: blocks written are not put in the block cache: {e}");
        }
    }
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
    let mut o = base(name, settings);
    if let Some(m) = family_index(name).and_then(|i| FAMILIES[i].merge) {
        set_merge(&mut o, m);
    }
    match name {
        WINDOWS => {
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
            o.set_max_successive_merges(settings.max_successive_merges);
            o.set_compaction_filter_factory(Factory {
                name: c"profiledb.vector.dropped",
                shared: Arc::clone(shared),
                kind: FilterKind::Vectors,
            });
        }
        HISTORY => {
            // Ingest looks up every event id (and request key) it is given,
            // and nearly all are new: a bloom filter over the memtable's keys
            // (1.3 MB for a 64 MB memtable) answers most of those lookups
            // without searching its skiplist, which was a sixth of the
            // writer's time; ingest with ids +14–18% events/s in alternating
            // runs (`cargo bench --bench ingest`, 2026-12-04).
            o.set_memtable_prefix_bloom_ratio(0.02);
            o.set_memtable_whole_key_filtering(true);
        }
        _ => {}
    }
    o
}

fn full<const M: u8>(_key: &[u8], existing: Option<&[u8]>, ops: &MergeOperands) -> Option<Vec<u8>> {
    merge_of(M).full(existing, ops.iter()).ok()
}

fn partial<const M: u8>(
    _key: &[u8],
    _existing: Option<&[u8]>,
    ops: &MergeOperands,
) -> Option<Vec<u8>> {
    // `None` here means "cannot combine": RocksDB keeps the operands for the
    // full merge. It is also how a bad operand is reported, at the full merge.
    merge_of(M).partial(ops.iter()).ok().flatten()
}

/// The merge of a family by a number, as RocksDB's operator functions are
/// plain `fn`s: one instance per kind.
const fn merge_of(m: u8) -> Merge {
    match m {
        0 => Merge::Record,
        1 => Merge::Window,
        _ => Merge::Sgd,
    }
}

const fn merge_number(m: Merge) -> u8 {
    match m {
        Merge::Record => 0,
        Merge::Window => 1,
        Merge::Sgd => 2,
    }
}

fn set_merge(o: &mut Options, m: Merge) {
    const RECORD: u8 = merge_number(Merge::Record);
    const WINDOW: u8 = merge_number(Merge::Window);
    const SGD: u8 = merge_number(Merge::Sgd);
    match m {
        Merge::Record => o.set_merge_operator(m.name(), full::<RECORD>, partial::<RECORD>),
        Merge::Window => o.set_merge_operator(m.name(), full::<WINDOW>, partial::<WINDOW>),
        Merge::Sgd => o.set_merge_operator(m.name(), full::<SGD>, partial::<SGD>),
    }
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
            && keys::bucket_expired(start, w.bucket_ms, w.retain_ms, self.now)
        {
            return Decision::Remove;
        }
        Decision::Keep
    }

    fn name(&self) -> &CStr {
        &self.name
    }
}
