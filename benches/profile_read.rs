//! Point reads of whole profiles as of T from a warm cache (one thread, two
//! started per round, rayon's pinned pool); batches of 200,
//! also rendered as JSON, in a loop and paced at 100 a second.

mod support;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const USERS: u64 = 100_000;
const READS: usize = 1_000;

fn profile_read(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = support::open(dir.path()).expect("open");
    support::schema(&db).expect("schema");
    support::populate(&db, USERS).expect("populate");
    for chunk in support::events(3, USERS, 500_000).chunks(1000) {
        db.ingest(chunk).expect("ingest");
    }
    // Measure a settled tree: compaction has caught up with the load.
    db.compact().expect("compact");
    let mut rng = StdRng::seed_from_u64(5);
    let users: Vec<String> = (0..100_000)
        .map(|_| format!("user{:07}", rng.random_range(0..USERS)))
        .collect();
    // Read a day after the last event: the one-day window span holds no
    // bucket, as for most users on any day. Then over the whole 30 days of
    // events, where every read seeks its window buckets.
    let cases = [
        (
            "",
            support::t0() + 31 * support::DAY,
            profiledb::DEFAULT_WINDOW_SPAN_MS,
        ),
        (
            "_window_hit",
            support::t0() + 30 * support::DAY,
            30 * support::DAY,
        ),
    ];
    // Warm the cache.
    for u in &users {
        db.profile(u, cases[0].1).expect("read");
    }
    let mut group = c.benchmark_group("profile_read");
    group.throughput(Throughput::Elements(READS as u64));
    for (suffix, as_of, span) in cases {
        let read = |u: &str| {
            let p = db.profile_with_span(u, as_of, span).expect("read");
            let p = p.expect("the user exists");
            // The bench reads what it means to: buckets in the span, or none.
            assert_eq!(p.windows[0].1.count > 0, !suffix.is_empty(), "{u}");
        };
        let mut i = 0;
        group.bench_function(format!("point_read_warm{suffix}"), |b| {
            b.iter(|| {
                for _ in 0..READS {
                    read(&users[i % users.len()]);
                    i += 1;
                }
            })
        });
        // The same reads from two threads, one per core.
        let mut j = 0;
        group.bench_function(format!("point_read_warm{suffix}_2_threads"), |b| {
            b.iter(|| {
                std::thread::scope(|s| {
                    for t in 0..2 {
                        let (read, users) = (&read, &users);
                        s.spawn(move || {
                            for k in 0..READS / 2 {
                                read(&users[(j + t * READS / 2 + k) % users.len()]);
                            }
                        });
                    }
                });
                j += READS;
            })
        });
        // The same on rayon's pool, one thread pinned to each core (as an
        // application that called `profiledb::pin_threads` serves): no thread
        // is started per round, and none shares a core with the other.
        let threads = rayon::current_num_threads();
        group.bench_function(format!("point_read_warm{suffix}_pool"), |b| {
            b.iter(|| {
                rayon::broadcast(|ctx| {
                    // Each thread its share of exactly READS reads.
                    let (from, to) = (
                        READS * ctx.index() / threads,
                        READS * (ctx.index() + 1) / threads,
                    );
                    for k in from..to {
                        read(&users[(j + k) % users.len()]);
                    }
                });
                j += READS;
            })
        });
    }
    // 200 users at once (a model server's candidates, `POST /v1/profiles`):
    // one batch (multi-gets in key order, a batch per core), the same
    // rendered as JSON, and the same users read one by one on one thread.
    let (as_of, span) = (cases[0].1, cases[0].2);
    let mut k = 0;
    group.bench_function("batch_200", |b| {
        b.iter(|| {
            for _ in 0..READS / 200 {
                let batch = &users[k % (users.len() - 200)..][..200];
                let got = db.profiles_with_span(batch, as_of, span).expect("read");
                assert!(got.iter().all(Option::is_some));
                k += 200;
            }
        })
    });
    // The same batch as `POST /v1/profiles` answers it: read and rendered
    // as JSON objects, on every core.
    let json = profiledb::ProfileRead::new(&db, as_of, span, None).expect("a read");
    group.bench_function("batch_200_json", |b| {
        b.iter(|| {
            for _ in 0..READS / 200 {
                let batch = &users[k % (users.len() - 200)..][..200];
                let got = json.read_json(&db, batch).expect("read");
                assert!(got.iter().all(|p| p.is_some()));
                k += 200;
            }
        })
    });
    group.bench_function("singles_200", |b| {
        b.iter(|| {
            for _ in 0..READS / 200 {
                for u in &users[k % (users.len() - 200)..][..200] {
                    let p = db.profile_with_span(u, as_of, span).expect("read");
                    assert!(p.is_some());
                }
                k += 200;
            }
        })
    });
    group.finish();
    paced_batches(&db, &json, &users);
}

/// Batches of 200 read and rendered as JSON, paced at 100 a second for 10 s
/// as a model server asks for them: between batches the threads sleep, and
/// on a small virtual machine a burst after a sleep runs slower than the
/// same work in a loop. Prints the latency percentiles.
fn paced_batches(db: &profiledb::Db, read: &profiledb::ProfileRead, users: &[String]) {
    const RATE: u32 = 100;
    let mut latencies = Vec::with_capacity(10 * RATE as usize);
    let mut late = Vec::with_capacity(10 * RATE as usize);
    let start = std::time::Instant::now();
    for i in 0..10 * RATE {
        let due = start + std::time::Duration::from_secs(1) * i / RATE;
        late.push(support::wait_until(due));
        let from = (i as usize * 7_919) % (users.len() - 200);
        let got = read.read_json(db, &users[from..][..200]).expect("read");
        assert!(got.iter().all(|p| p.is_some()));
        latencies.push(due.elapsed());
    }
    latencies.sort();
    late.sort();
    let pct = |p: f64| support::percentile(&latencies, p);
    println!(
        "paced batches of 200 read as JSON, {RATE}/s for 10 s: p50 {:?}, p90 {:?}, p99 {:?}, max {:?}; caller late p99 {:?}",
        pct(0.5),
        pct(0.9),
        pct(0.99),
        latencies[latencies.len() - 1],
        support::percentile(&late, 0.99),
    );
}

criterion_group!(benches, profile_read);
criterion_main!(benches);
