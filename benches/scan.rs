//! Segment counts over 100,000 users fed 1M shuffled events (a count, a sum, a
//! decayed sum, a decayed average, an hourly window and a 16-dimension ewma
//! each): right after a bulk ingest, before compaction has folded anything,
//! and once compacted.
//!
//! Two more measurements tell apart what the first count after an ingest
//! pays for: the same count once the ingest has been compacted (no
//! background work left, but the processor's caches hold the ingest's data
//! rather than the rows), and the settled count with the caches emptied
//! first (by writing a buffer far larger than the last-level cache).

mod support;

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use profiledb::{Db, Value};

const USERS: u64 = 100_000;

fn count(db: &Db, sql: &str) -> i64 {
    let out = db.execute(sql).expect("count");
    match out.rows().map(|r| &r.rows[0][0]) {
        Some(Value::Int(n)) => *n,
        other => panic!("expected a count, got {other:?}"),
    }
}

fn scan(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = support::open(dir.path()).expect("open");
    support::schema(&db).expect("schema");
    for chunk in support::events(1, USERS, 1_000_000).chunks(1000) {
        db.ingest(chunk).expect("ingest");
    }
    let sql = format!(
        "SELECT count(*) FROM users WHERE spend_7d > 100 AND views >= 5 AS OF {}",
        support::t0() + 31 * support::DAY
    );
    // Neither everyone nor no one.
    let n = count(&db, &sql);
    assert!(n > 1000 && n < USERS as i64 - 1000, "{n}");

    let mut group = c.benchmark_group("scan");
    group.sample_size(10);
    group.throughput(Throughput::Elements(USERS));
    // Each iteration ingests 100,000 more events (not timed), then times one
    // count at once: the operands of the ingest are all still unmerged. Or,
    // `compacted`, once the ingest is compacted (not timed either).
    let mut seed = 100;
    let mut after_ingest = |compacted: bool, iters: u64| {
        let mut timed = Duration::ZERO;
        for _ in 0..iters {
            seed += 1;
            for chunk in support::events(seed, USERS, 100_000).chunks(1000) {
                db.ingest(chunk).expect("ingest");
            }
            if compacted {
                db.compact().expect("compact");
            }
            let start = Instant::now();
            std::hint::black_box(count(&db, &sql));
            timed += start.elapsed();
        }
        timed
    };
    group.bench_function("count_100k_users_after_bulk_ingest", |b| {
        b.iter_custom(|iters| after_ingest(false, iters))
    });
    group.bench_function("count_100k_users_after_bulk_ingest_compacted", |b| {
        b.iter_custom(|iters| after_ingest(true, iters))
    });
    db.compact().expect("compact");
    group.bench_function("count_100k_users_settled", |b| b.iter(|| count(&db, &sql)));
    let mut sweep = vec![0u8; 256 << 20];
    group.bench_function("count_100k_users_settled_caches_cold", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for i in 0..iters {
                for byte in sweep.iter_mut().step_by(64) {
                    *byte = byte.wrapping_add(i as u8);
                }
                std::hint::black_box(&sweep);
                let start = Instant::now();
                std::hint::black_box(count(&db, &sql));
                timed += start.elapsed();
            }
            timed
        })
    });
    group.finish();
}

criterion_group!(benches, scan);
criterion_main!(benches);
