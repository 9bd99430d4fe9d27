//! The IVF index over a million 128-dimension clustered vectors: building it,
//! its recall@10 against the exact scan, single queries, queries on both
//! cores, queries with a filter keeping 10%, and bytes per row; then ingest
//! with and without an index on a 64-dimension ewma vector.
//!
//! The figures criterion cannot time (the build, recall, memory) are printed
//! once as the bench sets up. `IVF_BENCH_ROWS` and `IVF_BENCH_DIM` change the
//! table (for the README's 10M x 64 row: `IVF_BENCH_ROWS=10000000
//! IVF_BENCH_DIM=64`); `IVF_BENCH_LISTS` the lists, `IVF_BENCH_PROBES` and
//! `IVF_BENCH_FILTERED_PROBES` the probes the timed queries use, and
//! `IVF_BENCH_MEASURE` (say `4,8`) the probes whose recall is printed.

mod support;

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use profiledb::{Db, Event};
use profiledb_storage::vector::ivf::{Ivf, IvfParams};
use profiledb_storage::{Metric, VectorTable};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use roaring::RoaringBitmap;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `rows` vectors around `rows / 250` centres (clusters of a few hundred
/// users, as tastes are), spread by a tenth of the centres' range.
fn clustered(rows: usize, dim: usize, seed: u64) -> VectorTable {
    let mut rng = StdRng::seed_from_u64(seed);
    let centres: Vec<Vec<f32>> = (0..(rows / 250).max(1))
        .map(|_| (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect())
        .collect();
    let mut t = VectorTable::new(dim);
    for i in 0..rows {
        let c = &centres[rng.random_range(0..centres.len())];
        let v: Vec<f32> = c
            .iter()
            .map(|x| x + rng.random_range(-0.1f32..0.1))
            .collect();
        t.set(&format!("user{i:08}"), Some(&v));
    }
    t
}

fn search(c: &mut Criterion) {
    let rows = env("IVF_BENCH_ROWS", 1_000_000);
    let dim = env("IVF_BENCH_DIM", 128);
    let lists = env("IVF_BENCH_LISTS", 1024);
    let t = clustered(rows, dim, 1);
    let started = Instant::now();
    let mut ivf = Ivf::build(
        &t,
        IvfParams {
            lists,
            probes: 8,
            rerank: 4,
        },
        7,
    )
    .expect("build");
    eprintln!(
        "ivf: built over {rows} x {dim} with {lists} lists in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let s = ivf.stats();
    eprintln!(
        "ivf: {:.0} bytes per row in the index (codes, scale, norm, list entry, place) + {} bytes of f32 row + 8 of norm; lists {}..{} rows, imbalance {:.2}",
        s.bytes_per_row,
        dim * 4,
        s.smallest,
        s.largest,
        s.imbalance
    );
    let measured: Vec<usize> = std::env::var("IVF_BENCH_MEASURE")
        .ok()
        .map(|v| v.split(',').filter_map(|p| p.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![2, 3, 4, 8, 16, 32]);
    for probes in measured {
        let m = ivf
            .measure(&t, Metric::Cosine, 10, 500, Some(probes), 0, &|| false)
            .expect("measured");
        eprintln!(
            "ivf: probes {probes:>2}: recall@10 {:.4} at {:.0} queries/s on every core (cosine, {} queries)",
            m.recall, m.qps, m.queries
        );
    }
    for metric in [Metric::Dot, Metric::L2] {
        let m = ivf
            .measure(&t, metric, 10, 500, Some(8), 0, &|| false)
            .expect("measured");
        eprintln!("ivf: probes  8, {metric:?}: recall@10 {:.4}", m.recall);
    }
    let probes = env("IVF_BENCH_PROBES", 8);
    ivf.set_search(probes, 4);
    // Queries near the data: rows' vectors, nudged.
    let mut rng = StdRng::seed_from_u64(3);
    let queries: Vec<Vec<f32>> = (0..1000)
        .map(|_| {
            let (_, _, v) = t.iter().nth(rng.random_range(0..1000)).expect("row");
            v.iter()
                .map(|x| x + rng.random_range(-0.05f32..0.05))
                .collect()
        })
        .collect();
    let tenth: RoaringBitmap = (0..rows as u32).filter(|r| r % 10 == 3).collect();
    // With a filter keeping 10%, more lists hold the k best of it.
    let filtered_probes = env("IVF_BENCH_FILTERED_PROBES", probes * 2);
    let recall_filtered = {
        let (mut hit, mut total) = (0, 0);
        for q in queries.iter().take(200) {
            let exact = t.top_k(q, Metric::Cosine, 10, &|r| r % 10 == 3);
            let got = ivf.search(
                &t,
                q,
                Metric::Cosine,
                10,
                Some(filtered_probes),
                Some(&tenth),
                &|_| true,
            );
            total += exact.len();
            hit += exact
                .iter()
                .filter(|h| got.iter().any(|g| g.row == h.row))
                .count();
        }
        hit as f64 / total as f64
    };
    eprintln!("ivf: filter keeping 10%, probes {filtered_probes}: recall@10 {recall_filtered:.4}");

    let mut g = c.benchmark_group("ivf");
    g.sample_size(20).measurement_time(Duration::from_secs(8));
    let mut i = 0;
    g.bench_function(format!("one_query_{rows}x{dim}_probes{probes}"), |b| {
        b.iter(|| {
            i = (i + 1) % queries.len();
            ivf.search(&t, &queries[i], Metric::Cosine, 10, None, None, &|_| true)
        })
    });
    g.throughput(Throughput::Elements(queries.len() as u64));
    g.bench_function(
        format!("1000_queries_both_cores_{rows}x{dim}_probes{probes}"),
        |b| {
            b.iter(|| {
                queries
                    .par_iter()
                    .map(|q| {
                        ivf.search(&t, q, Metric::Cosine, 10, None, None, &|_| true)
                            .len()
                    })
                    .sum::<usize>()
            })
        },
    );
    g.bench_function(
        format!("1000_queries_both_cores_filter_10pct_probes{filtered_probes}"),
        |b| {
            b.iter(|| {
                queries
                    .par_iter()
                    .map(|q| {
                        ivf.search(
                            &t,
                            q,
                            Metric::Cosine,
                            10,
                            Some(filtered_probes),
                            Some(&tenth),
                            &|_| true,
                        )
                        .len()
                    })
                    .sum::<usize>()
            })
        },
    );
    // The exact scan, for comparison: 100 queries in one pass over the rows.
    g.sample_size(10);
    g.throughput(Throughput::Elements(100));
    g.bench_function(format!("100_queries_both_cores_exact_{rows}x{dim}"), |b| {
        b.iter(|| {
            t.top_k_batch(
                &queries[..100].iter().map(Vec::as_slice).collect::<Vec<_>>(),
                Metric::Cosine,
                10,
                &|_| true,
            )
            .len()
        })
    });
    g.finish();
}

/// Ingest of one 64-dimension ewma vector event per user event, into a
/// database whose vector has an IVF index or none; each run ends when the
/// vector index has caught up with every write (a query pins it).
fn ingest(c: &mut Criterion) {
    const USERS: usize = 100_000;
    const EVENTS: usize = 50_000;
    let mut g = c.benchmark_group("ivf_ingest");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(EVENTS as u64));
    for indexed in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let db: Db = support::open(dir.path()).expect("open");
        db.execute_script("CREATE VECTOR taste ON view AS EWMA(item_vec) DIM 64 HALF_LIFE '14d';")
            .expect("schema");
        let mut rng = StdRng::seed_from_u64(5);
        let event = |rng: &mut StdRng| {
            let v: Vec<f32> = (0..64).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            Event::new(
                format!("user{:07}", rng.random_range(0..USERS)),
                "view",
                support::t0(),
            )
            .with("item_vec", v)
        };
        let rank = format!(
            "SELECT id, dot(taste, [{}]) AS s FROM users ORDER BY s DESC LIMIT 1",
            vec!["0.5"; 64].join(", ")
        );
        let first: Vec<Event> = (0..USERS).map(|_| event(&mut rng)).collect();
        for chunk in first.chunks(5_000) {
            db.ingest(chunk).expect("ingest");
        }
        // Ranking once builds the vector index, which writes then keep current.
        db.execute(&rank).expect("rank");
        if indexed {
            db.execute("CREATE INDEX taste_ivf ON users USING ivf (taste) WITH (lists = 256)")
                .expect("index");
        }
        let name = if indexed { "with_ivf" } else { "without_ivf" };
        g.bench_function(format!("{name}_64d_ewma"), |b| {
            b.iter(|| {
                let batch: Vec<Event> = (0..EVENTS).map(|_| event(&mut rng)).collect();
                for chunk in batch.chunks(1_000) {
                    db.ingest(chunk).expect("ingest");
                }
                db.execute(&rank).expect("catch up")
            })
        });
    }
    g.finish();
}

criterion_group!(benches, search, ingest);
criterion_main!(benches);
