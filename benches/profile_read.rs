//! Point reads of whole profiles as of T from a warm cache.

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
    let as_of = support::T0 + 31 * support::DAY;
    // Warm the cache.
    for u in &users {
        db.profile(u, as_of).expect("read");
    }
    let mut group = c.benchmark_group("profile_read");
    group.throughput(Throughput::Elements(READS as u64));
    let mut i = 0;
    group.bench_function("point_read_warm", |b| {
        b.iter(|| {
            for _ in 0..READS {
                let p = db.profile(&users[i % users.len()], as_of).expect("read");
                assert!(p.is_some());
                i += 1;
            }
        })
    });
    // The same reads from two threads, one per core.
    let mut j = 0;
    group.bench_function("point_read_warm_2_threads", |b| {
        b.iter(|| {
            std::thread::scope(|s| {
                for t in 0..2 {
                    let (db, users) = (&db, &users);
                    s.spawn(move || {
                        for k in 0..READS / 2 {
                            let u = &users[(j + t * READS / 2 + k) % users.len()];
                            assert!(db.profile(u, as_of).expect("read").is_some());
                        }
                    });
                }
            });
            j += READS;
        })
    });
    group.finish();
}

criterion_group!(benches, profile_read);
criterion_main!(benches);
