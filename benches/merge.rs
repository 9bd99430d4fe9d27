//! The features record's merge, as RocksDB calls it: one operand onto
//! nothing (every user's first read after a flush, before compaction has
//! merged it into a value), one onto a stored value, and two operands
//! folded into one (flush and compaction's partial merge). The operands are
//! those of the ingest workload's events (four scalar features, the user's
//! bookkeeping and a 16-dimension ewma vector).

mod support;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use profiledb_storage::event::plan;
use profiledb_storage::merge::record;

const N: usize = 10_000;

fn merge(c: &mut Criterion) {
    let (_dir, db) = support::fresh(false);
    let bindings = db.engine().bindings();
    let ops: Vec<Vec<u8>> = support::events(5, 100_000, N)
        .iter()
        .map(|ev| plan(&bindings, ev).expect("valid event").features)
        .collect();
    let values: Vec<Vec<u8>> = ops
        .iter()
        .map(|op| record::full_merge(None, [op.as_slice()]).expect("merges"))
        .collect();
    let mut group = c.benchmark_group("record_merge");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("one_operand_onto_nothing", |b| {
        b.iter(|| {
            for op in &ops {
                std::hint::black_box(record::full_merge(None, [op.as_slice()]).expect("merges"));
            }
        })
    });
    group.bench_function("one_operand_onto_a_value", |b| {
        b.iter(|| {
            for (value, op) in values.iter().zip(ops.iter().rev()) {
                std::hint::black_box(
                    record::full_merge(Some(value), [op.as_slice()]).expect("merges"),
                );
            }
        })
    });
    group.bench_function("two_operands_into_one", |b| {
        b.iter(|| {
            for (a, b) in ops.iter().zip(ops.iter().rev()) {
                std::hint::black_box(
                    record::partial_merge([a.as_slice(), b.as_slice()]).expect("merges"),
                );
            }
        })
    });
    group.finish();
}

criterion_group!(benches, merge);
criterion_main!(benches);
