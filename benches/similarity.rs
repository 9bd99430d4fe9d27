//! Similarity: exact top-10 over a million users' 64-dimension vectors, with
//! and without an attribute filter; how long the index takes to catch up after
//! 100,000 vector events; k-means over 100,000 users' 16-dimension vectors.

mod support;

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use profiledb::{Db, Event, Value};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const USERS: usize = 1_000_000;
const DIM: usize = 64;
const REGIONS: usize = 10;

fn random_vector(rng: &mut StdRng, dim: usize) -> Vec<f32> {
    (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

fn vector_sql(v: &[f32]) -> String {
    let items: Vec<String> = v.iter().map(|x| format!("{x:.4}")).collect();
    format!("[{}]", items.join(", "))
}

/// `users` users, each with a signup (one of ten regions) and a view carrying a
/// `dim`-dimension vector.
fn populate(db: &Db, users: usize, dim: usize, seed: u64) {
    db.execute_script(&format!(
        "CREATE ATTRIBUTE region STRING ON signup;
         CREATE VECTOR taste ON view AS EWMA(item_vec) DIM {dim} HALF_LIFE '14d';"
    ))
    .expect("schema");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut batch = Vec::with_capacity(2_000);
    for u in 0..users {
        let user = format!("user{u:07}");
        batch.push(
            Event::new(user.clone(), "signup", support::t0())
                .with("region", format!("r{}", rng.random_range(0..REGIONS))),
        );
        batch.push(
            Event::new(user, "view", support::t0()).with("item_vec", random_vector(&mut rng, dim)),
        );
        if batch.len() == batch.capacity() {
            db.ingest(&batch).expect("ingest");
            batch.clear();
        }
    }
    db.ingest(&batch).expect("ingest");
}

fn top_k(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = support::open(dir.path()).expect("open");
    populate(&db, USERS, DIM, 1);
    let mut rng = StdRng::seed_from_u64(2);
    let queries: Vec<String> = (0..50)
        .map(|_| vector_sql(&random_vector(&mut rng, DIM)))
        .collect();
    // The first query builds the index.
    let started = Instant::now();
    db.execute(&format!(
        "SELECT id FROM users ORDER BY cosine(taste, {}) DESC LIMIT 10",
        queries[0]
    ))
    .expect("build");
    eprintln!("index built over {USERS} users in {:?}", started.elapsed());

    let mut group = c.benchmark_group("similarity");
    group.sample_size(20);
    let mut i = 0;
    group.bench_function("top10_1m_users_64d", |b| {
        b.iter(|| {
            let sql = format!(
                "SELECT id, cosine(taste, {}) AS s FROM users ORDER BY s DESC LIMIT 10",
                queries[i % queries.len()]
            );
            i += 1;
            let out = db.execute(&sql).expect("query");
            assert_eq!(out.rows().map(|r| r.rows.len()), Some(10));
        })
    });
    // The README's idiom: everyone but one user, a filter that excludes
    // almost nothing and should cost almost nothing.
    group.bench_function("top10_1m_users_64d_excluding_one", |b| {
        b.iter(|| {
            let sql = format!(
                "SELECT id, cosine(taste, {}) AS s FROM users WHERE id != 'user{:07}' ORDER BY s DESC LIMIT 10",
                queries[i % queries.len()],
                i % USERS
            );
            i += 1;
            let out = db.execute(&sql).expect("query");
            assert_eq!(out.rows().map(|r| r.rows.len()), Some(10));
        })
    });
    group.bench_function("top10_1m_users_64d_region_filter_10pct", |b| {
        b.iter(|| {
            let sql = format!(
                "SELECT id, cosine(taste, {}) AS s FROM users WHERE region = 'r{}' ORDER BY s DESC LIMIT 10",
                queries[i % queries.len()],
                i % REGIONS
            );
            i += 1;
            let out = db.execute(&sql).expect("query");
            assert_eq!(out.rows().map(|r| r.rows.len()), Some(10));
        })
    });

    // Many queries at once (lookalike and recommendation jobs), through the
    // library: one by one, and as one batch over a single pass.
    const BATCH: usize = 16;
    let vectors: Vec<Vec<f32>> = (0..BATCH).map(|_| random_vector(&mut rng, DIM)).collect();
    let refs: Vec<&[f32]> = vectors.iter().map(Vec::as_slice).collect();
    let engine = db.engine();
    let def = engine
        .catalog()
        .vector("taste")
        .map(|d| d.id)
        .expect("taste is defined");
    let everyone = profiledb::NearestFilter::default();
    group.throughput(criterion::Throughput::Elements(BATCH as u64));
    group.bench_function("top10_1m_users_64d_16_queries_one_by_one", |b| {
        b.iter(|| {
            let view = engine.view(profiledb::Pins::VECTORS).expect("view");
            for q in &refs {
                let hits = view.nearest(def, q, profiledb::Metric::Cosine, 10, &everyone);
                assert_eq!(hits.len(), 10);
            }
        })
    });
    group.bench_function("top10_1m_users_64d_batch_of_16", |b| {
        b.iter(|| {
            let view = engine.view(profiledb::Pins::VECTORS).expect("view");
            let answers = view.nearest_batch(def, &refs, profiledb::Metric::Cosine, 10, &everyone);
            assert!(answers.iter().all(|a| a.len() == 10));
        })
    });
    group.throughput(criterion::Throughput::Elements(1));

    // Catch-up: write 100,000 vector events, then time until a query has seen
    // them all (the refresher works during the writes; the query drains the rest).
    group.sample_size(10);
    let mut round = 0u64;
    group.bench_function("catch_up_after_100k_vector_events", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                round += 1;
                let mut rng = StdRng::seed_from_u64(100 + round);
                let events: Vec<Event> = (0..100_000)
                    .map(|_| {
                        Event::new(
                            format!("user{:07}", rng.random_range(0..USERS)),
                            "view",
                            support::t0() + round as i64,
                        )
                        .with("item_vec", random_vector(&mut rng, DIM))
                    })
                    .collect();
                let mut last = String::new();
                for chunk in events.chunks(1_000) {
                    db.ingest(chunk).expect("ingest");
                    last = chunk[chunk.len() - 1].user.clone();
                }
                let started = Instant::now();
                let out = db
                    .execute(&format!("SELECT taste FROM users WHERE id = '{last}'"))
                    .expect("read");
                let seen = db
                    .execute(&format!(
                        "SELECT id FROM users ORDER BY cosine(taste, '{last}') DESC LIMIT 1"
                    ))
                    .expect("rank");
                total += started.elapsed();
                // The last writer's vector is its own nearest neighbour.
                let top = seen.rows().map(|r| r.rows[0][0].clone());
                assert!(matches!(
                    out.rows().map(|r| &r.rows[0][0]),
                    Some(Value::Vector(_))
                ));
                assert_eq!(top, Some(Value::String(last)));
            }
            total
        })
    });
    group.finish();
}

fn kmeans(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = support::open(dir.path()).expect("open");
    populate(&db, 100_000, 16, 3);
    db.execute("CLUSTER users BY taste INTO 8 SEED 1")
        .expect("warm");
    let mut group = c.benchmark_group("similarity");
    group.sample_size(10);
    let mut seed = 0;
    group.bench_function("kmeans_100k_users_16d_k8", |b| {
        b.iter(|| {
            seed += 1;
            db.execute(&format!("CLUSTER users BY taste INTO 8 SEED {seed}"))
                .expect("cluster")
        })
    });
    group.finish();
}

criterion_group!(benches, top_k, kmeans);
criterion_main!(benches);
