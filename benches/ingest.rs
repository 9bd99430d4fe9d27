//! Ingest throughput into 1M users: each event updates 4 scalar features, 1 window
//! and 1 16-dimension ewma vector, in batches of 1,000, WAL on, sync off. Compared
//! with a read-modify-write baseline (get, merge in the application, put) that keeps
//! exactly the same state, with the event history kept (each event with its own
//! `event_id`, which ingest checks for a duplicate), and with a keyed feature
//! and a distinct count beside (then whole-profile reads of that database).

mod support;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use profiledb::Event;
use profiledb_storage::event::plan;
use profiledb_storage::kv::{ATTRIBUTES, FEATURES, VECTORS, WINDOWS};
use profiledb_storage::merge::{record, vector, window};

const USERS: u64 = 1_000_000;
const BATCH: usize = 1_000;

/// The baseline: for every operand the engine would merge, read the stored value,
/// fold the update in the application, and write the results back in one batch.
fn read_modify_write(db: &profiledb::Db, events: &[Event]) {
    let engine = db.engine();
    let bindings = engine.bindings();
    let mut puts = Vec::with_capacity(events.len() * 3);
    for ev in events {
        let ops = plan(&bindings, ev).expect("valid event");
        let old = engine.raw_get(FEATURES, &ops.user_key).expect("get");
        let new = record::full_merge(old.as_deref(), [ops.features.as_slice()]).expect("merge");
        puts.push((FEATURES, ops.user_key.clone(), new));
        if let Some(a) = &ops.attributes {
            let old = engine.raw_get(ATTRIBUTES, &ops.user_key).expect("get");
            let new = record::full_merge(old.as_deref(), [a.as_slice()]).expect("merge");
            puts.push((ATTRIBUTES, ops.user_key.clone(), new));
        }
        for (k, v) in ops.windows {
            let old = engine.raw_get(WINDOWS, &k).expect("get");
            let new = window::merge(old.as_deref(), [v.as_slice()]).expect("merge");
            puts.push((WINDOWS, k, new));
        }
        for (k, v) in ops.sgd {
            let old = engine.raw_get(VECTORS, &k).expect("get");
            let new = vector::full_merge(old.as_deref(), [v.as_slice()]).expect("merge");
            puts.push((VECTORS, k, new));
        }
    }
    engine.raw_put_batch(&puts).expect("write");
}

/// A new database with the schema and one event for each of the 1M users,
/// keeping the event history (30 days) or not (the default).
fn loaded(history: bool) -> (tempfile::TempDir, profiledb::Db) {
    let (dir, db) = support::fresh(history);
    support::populate(&db, USERS).expect("populate");
    (dir, db)
}

fn ingest(c: &mut Criterion) {
    let events = support::events(7, USERS, 400 * BATCH);
    let batches: Vec<&[Event]> = events.chunks(BATCH).collect();
    let mut group = c.benchmark_group("ingest_1m_users");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(30);

    // Keeping the event history: what it costs is the difference with the
    // next.
    let (dir_kept, db_kept) = loaded(true);
    let mut i = 0;
    group.bench_function("merge_operands_with_history", |b| {
        // Ids never repeat, so every event is new (a repeat would be
        // skipped as a duplicate, for less).
        b.iter_batched(
            || {
                i += 1;
                let batch = batches[i % batches.len()];
                batch
                    .iter()
                    .enumerate()
                    .map(|(k, ev)| ev.clone().with("event_id", format!("b{i}e{k}")))
                    .collect::<Vec<Event>>()
            },
            |batch| db_kept.ingest(&batch).expect("ingest"),
            BatchSize::SmallInput,
        )
    });
    drop((db_kept, dir_kept));

    let (_dir, db) = loaded(false);
    let mut i = 0;
    group.bench_function("merge_operands", |b| {
        b.iter(|| {
            db.ingest(batches[i % batches.len()]).expect("ingest");
            i += 1;
        })
    });
    // Two writers, as a server with concurrent clients ingests: each thread
    // writes its own batches of 1,000, one atomic write each.
    let mut round = 0;
    group.bench_function("merge_operands_2_writers", |b| {
        b.iter_custom(|iters| {
            round += iters;
            let start = std::time::Instant::now();
            std::thread::scope(|s| {
                for writer in 0..2 {
                    let (db, batches) = (&db, &batches);
                    s.spawn(move || {
                        for k in (writer..iters).step_by(2) {
                            let n = (round + k) as usize % batches.len();
                            db.ingest(batches[n]).expect("ingest");
                        }
                    });
                }
            });
            start.elapsed()
        })
    });
    // The same, once a scan has had the row table built: every batch's
    // operands are then also merged into it, on the refresher's thread.
    db.execute("SELECT count(*) FROM users").expect("scan");
    while !db.stats().row_table.built && !db.stats().row_table.too_large {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    group.bench_function("merge_operands_with_row_table", |b| {
        b.iter(|| {
            db.ingest(batches[i % batches.len()]).expect("ingest");
            i += 1;
        })
    });
    drop(db);

    // One keyed feature (50 categories, 20 kept) and one distinct count
    // beside the schema; then whole-profile reads of that database.
    let keyed = support::keyed_events(7, USERS, 400 * BATCH);
    let keyed_batches: Vec<&[Event]> = keyed.chunks(BATCH).collect();
    let (_dir, db) = loaded(false);
    support::keyed_schema(&db).expect("keyed schema");
    let mut i = 0;
    group.bench_function("merge_operands_keyed_distinct", |b| {
        b.iter(|| {
            db.ingest(keyed_batches[i % keyed_batches.len()])
                .expect("ingest");
            i += 1;
        })
    });
    db.compact().expect("compact");
    let users: Vec<&str> = keyed
        .iter()
        .take(100_000)
        .map(|e| e.user.as_str())
        .collect();
    let as_of = support::t0() + 31 * support::DAY;
    let mut j = 0;
    group.bench_function("profile_read_keyed_distinct", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                let p = db.profile(users[j % users.len()], as_of).expect("read");
                assert!(p.is_some());
                j += 1;
            }
        })
    });
    drop(db);

    let (_dir, db) = loaded(false);
    let mut i = 0;
    group.bench_function("read_modify_write_baseline", |b| {
        b.iter(|| {
            read_modify_write(&db, batches[i % batches.len()]);
            i += 1;
        })
    });
    group.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
