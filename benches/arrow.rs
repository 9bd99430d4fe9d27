//! The Python package's paths, measured without Python: 1M events ingested
//! as the library takes them (a `Vec<Event>`) and as an Arrow record batch
//! (`profiledb::arrow::events_from_batch`, what `db.ingest(pyarrow_table)`
//! runs), into a new database with the ingest bench's schema, and that
//! conversion of a batch to events alone; and a query
//! of 1M rows converted to Arrow batches (what `db.query` hands pyarrow:
//! each part of the scan as it is made), the same with the rows all made
//! first, and that conversion alone, in one batch and in a batch a core.
//! `python/bench/bench.py` measures the same through Python; the ratios between
//! the two are the package's overhead.

mod support;

use std::sync::Arc;

use arrow_array::builder::{FixedSizeListBuilder, Float32Builder};
use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use profiledb::{Event, Output, Value};

const USERS: u64 = 100_000;
const EVENTS: usize = 1_000_000;

/// The events as one Arrow batch: user, type, ts (int64 ms), price, item_vec.
fn batch(events: &[Event]) -> RecordBatch {
    let field = |ev: &Event, name: &str| ev.field(name).cloned().unwrap_or(Value::Null);
    let mut vecs = FixedSizeListBuilder::new(Float32Builder::new(), support::DIM as i32);
    for ev in events {
        if let Value::Vector(v) = field(ev, "item_vec") {
            vecs.values().append_slice(&v);
        }
        vecs.append(true);
    }
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "user",
            Arc::new(StringArray::from_iter_values(
                events.iter().map(|e| e.user.as_str()),
            )),
        ),
        (
            "type",
            Arc::new(StringArray::from_iter_values(
                events.iter().map(|e| e.event_type.as_str()),
            )),
        ),
        (
            "ts",
            Arc::new(Int64Array::from_iter_values(events.iter().map(|e| e.ts))),
        ),
        (
            "price",
            Arc::new(Float64Array::from_iter(
                events.iter().map(|e| field(e, "price").as_f64()),
            )),
        ),
        ("item_vec", Arc::new(vecs.finish())),
    ];
    RecordBatch::try_from_iter(columns).expect("a batch")
}

fn arrow(c: &mut Criterion) {
    let events = support::events(7, USERS, EVENTS);
    let batch = batch(&events);
    let mut group = c.benchmark_group("arrow_1m");
    group.sample_size(10);
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.bench_function("ingest_library_events", |b| {
        b.iter_batched(
            || support::fresh(false),
            // The database is closed outside the measurement, as the
            // Python bench's is.
            |(dir, db)| {
                db.ingest(&events).expect("ingest");
                (dir, db)
            },
            BatchSize::PerIteration,
        );
    });
    group.bench_function("ingest_arrow_batch", |b| {
        b.iter_batched(
            || support::fresh(false),
            |(dir, db)| {
                let events = profiledb::arrow::events_from_batch(&batch, 0).expect("events");
                db.ingest(&events).expect("ingest");
                (dir, db)
            },
            BatchSize::PerIteration,
        );
    });

    // The conversion alone, the events dropped after it.
    group.bench_function("events_from_arrow_batch", |b| {
        b.iter(|| profiledb::arrow::events_from_batch(&batch, 0).expect("events"));
    });

    // 1M users, one row each.
    let (_dir, db) = support::fresh(false);
    support::populate(&db, 1_000_000).expect("populate");
    db.flush().expect("flush");
    let sql = "SELECT id, views, spend, spend_7d, taste FROM users";
    group.bench_function("query_1m_rows_to_arrow", |b| {
        b.iter(|| {
            // As `db.query` converts them: each part of the scan as it is
            // made, its rows freed as they go.
            let sink = profiledb::arrow::BatchSink::default();
            let Output::Rows(rows) = db.execute_params_into(sql, &[], &sink).expect("query") else {
                panic!("rows expected");
            };
            let batches = sink.finish(rows).expect("batches");
            assert_eq!(
                batches.iter().map(|b| b.num_rows()).sum::<usize>(),
                1_000_000
            );
            batches
        });
    });
    // The rows all made first, then converted on every core.
    group.bench_function("query_1m_rows_then_to_arrow", |b| {
        b.iter(|| {
            let Output::Rows(rows) = db.execute(sql).expect("query") else {
                panic!("rows expected");
            };
            assert_eq!(rows.rows.len(), 1_000_000);
            profiledb::arrow::into_batches(rows).expect("batches")
        });
    });
    // The conversion alone: in one batch on one thread, and a batch a
    // thread of the pool (what `db.query` does).
    let Output::Rows(rows) = db.execute(sql).expect("query") else {
        panic!("rows expected");
    };
    group.bench_function("1m_rows_to_one_arrow_batch", |b| {
        b.iter(|| profiledb::arrow::batch_from_rows(&rows).expect("batch"));
    });
    group.bench_function("1m_rows_to_arrow_batches_on_every_core", |b| {
        b.iter(|| profiledb::arrow::batches_from_rows(&rows).expect("batches"));
    });
    group.finish();
}

criterion_group!(benches, arrow);
criterion_main!(benches);
