//! The query language: a segment scan over a million users, point profile
//! queries by id (parse and plan included; the id written in the text, or a
//! bind parameter), and multi-row INSERT statements.

mod support;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use profiledb::{Db, Value};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const USERS: u64 = 1_000_000;
const REGIONS: [&str; 4] = ["north", "south", "east", "west"];
const SCHEMA: &str = "
    CREATE ATTRIBUTE region STRING ON signup;
    CREATE ATTRIBUTE age INT;
    CREATE FEATURE purchases ON purchase AS COUNT();
    CREATE FEATURE revenue ON purchase AS SUM(amount);
    CREATE FEATURE spend_7d ON purchase AS DECAYED_SUM(amount) HALF_LIFE '7d';
    CREATE FEATURE basket ON purchase AS DECAYED_AVG(amount) HALF_LIFE '30d';
    CREATE WINDOW spend ON purchase OF amount BUCKET '1d' RETAIN '365d';";

/// A signup (setting the region) and a purchase per user, loaded through the
/// library API in batches.
fn populate(db: &Db) {
    let mut rng = StdRng::seed_from_u64(11);
    let mut batch = Vec::with_capacity(10_000);
    for u in 0..USERS {
        let user = format!("user{u:07}");
        let ts = support::t0() + (u as i64 % support::DAY);
        batch.push(
            profiledb::Event::new(user.clone(), "signup", ts - support::DAY)
                .with("region", REGIONS[rng.random_range(0..4)]),
        );
        batch.push(
            profiledb::Event::new(user, "purchase", ts)
                .with("amount", rng.random_range(1.0..300.0f64)),
        );
        if batch.len() >= 10_000 {
            db.ingest(&batch).expect("ingest");
            batch.clear();
        }
    }
    db.ingest(&batch).expect("ingest");
}

/// An INSERT of `rows` purchases by random users: each row updates four
/// features and a window.
fn insert_statement(rng: &mut StdRng, rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|_| {
            format!(
                "('user{:07}', {}, {:.2})",
                rng.random_range(0..USERS),
                support::t0() + rng.random_range(0..30 * support::DAY),
                rng.random_range(1.0..300.0f64),
            )
        })
        .collect();
    format!(
        "INSERT INTO purchase (user, ts, amount) VALUES {}",
        values.join(", ")
    )
}

fn query(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = support::open(dir.path()).expect("open");
    db.execute_script(SCHEMA).expect("schema");
    populate(&db);
    db.compact().expect("compact");
    let as_of = format!("AS OF {}", support::t0() + 8 * support::DAY);

    let mut group = c.benchmark_group("query");
    group.sample_size(10);
    group.throughput(Throughput::Elements(USERS));
    let scan =
        format!("SELECT count(*) FROM users WHERE region = 'north' AND spend_7d > 100 {as_of}");
    // Warm the cache, and check the answer is not trivially empty.
    let out = db.execute(&scan).expect("scan");
    let n = &out.rows().expect("rows").rows[0][0];
    assert!(matches!(n, Value::Int(k) if *k > 10_000), "{n:?}");
    // That scan had the row table built, in the background: measure scans
    // once it is there.
    while !db.stats().row_table.built && !db.stats().row_table.too_large {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    group.bench_function("segment_scan_1m_users", |b| {
        b.iter(|| db.execute(&scan).expect("scan"))
    });

    const POINTS: u64 = 1_000;
    group.sample_size(20);
    group.throughput(Throughput::Elements(POINTS));
    let mut rng = StdRng::seed_from_u64(5);
    let points: Vec<String> = (0..10_000)
        .map(|_| {
            format!(
                "SELECT * FROM users WHERE id = 'user{:07}' {as_of}",
                rng.random_range(0..USERS)
            )
        })
        .collect();
    let mut i = 0;
    group.bench_function("point_query_by_id", |b| {
        b.iter(|| {
            for _ in 0..POINTS {
                let out = db.execute(&points[i % points.len()]).expect("point");
                assert_eq!(out.rows().map(|r| r.rows.len()), Some(1));
                i += 1;
            }
        })
    });

    // The same reads with the id as a bind parameter: one statement text.
    let ids: Vec<Value> = points
        .iter()
        .map(|p| {
            let id = p.split('\'').nth(1).unwrap_or_default();
            Value::String(id.to_owned())
        })
        .collect();
    let bound = format!("SELECT * FROM users WHERE id = $1 {as_of}");
    group.bench_function("point_query_by_id_bound", |b| {
        b.iter(|| {
            for _ in 0..POINTS {
                let params = std::slice::from_ref(&ids[i % ids.len()]);
                let out = db.execute_params(&bound, params).expect("point");
                assert_eq!(out.rows().map(|r| r.rows.len()), Some(1));
                i += 1;
            }
        })
    });

    const ROWS: usize = 1_000;
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function("insert_1000_rows", |b| {
        b.iter_batched(
            || insert_statement(&mut rng, ROWS),
            |sql| db.execute(&sql).expect("insert"),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, query);
criterion_main!(benches);
