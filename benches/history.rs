//! The event history: `AS OF` point reads of users written since T, each
//! rebuilt from the about 100 writes it has up to T (against reads of the
//! same users now, from the stored state), and what keeping the history costs
//! on disk per event (printed once, from two databases fed the same events,
//! compacted); point-in-time export of many (user, time) pairs, for users
//! with 200 events of history each and with 100; and the
//! `AS OF` read again once an item was made after the writes, so that each
//! replayed write is planned with an older catalog.

mod support;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use profiledb::Db;

const USERS: u64 = 5_000;
const EVENTS: usize = 1_000_000;

/// Bytes in the database's table files.
fn table_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("list")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "sst"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

fn loaded(history: bool) -> (tempfile::TempDir, Db) {
    let (dir, db) = support::fresh(history);
    for chunk in support::events(21, USERS, EVENTS).chunks(1000) {
        db.ingest(chunk).expect("ingest");
    }
    db.compact().expect("compact");
    (dir, db)
}

fn history(c: &mut Criterion) {
    let (off_dir, off) = loaded(false);
    let (dir, db) = loaded(true);
    let per_event =
        (table_bytes(dir.path()) as f64 - table_bytes(off_dir.path()) as f64) / EVENTS as f64;
    eprintln!("history on disk: {per_event:.1} bytes per event (compacted)");
    drop((off, off_dir));

    // Event i is at t0 + 997 ms · i: half of each user's 200 come after T.
    let t = support::t0() + EVENTS as i64 * 997 / 2;
    let users: Vec<String> = (0..USERS).map(|u| format!("user{u:07}")).collect();
    let replayed = db.profile(&users[0], t).expect("read").expect("exists");
    let now = db
        .profile(&users[0], support::t0() + 31 * support::DAY)
        .expect("read");
    assert!(now.is_some_and(|p| p.events > replayed.events + 50));

    let mut group = c.benchmark_group("history");
    group.throughput(Throughput::Elements(1));
    let mut i = 0;
    group.bench_function("as_of_point_read_about_100_writes_after", |b| {
        b.iter(|| {
            i += 1;
            db.profile(&users[i % users.len()], t).expect("read")
        })
    });
    let later = support::t0() + 31 * support::DAY;
    group.bench_function("point_read_after_every_write", |b| {
        b.iter(|| {
            i += 1;
            db.profile(&users[i % users.len()], later).expect("read")
        })
    });
    group.finish();

    // Point-in-time export: four pairs per user at times inside its writes,
    // so each reads about half of its 200 from the history.
    let mut group = c.benchmark_group("history_export");
    let pairs: Vec<(String, i64)> = users
        .iter()
        .flat_map(|u| {
            (1..=4).map(move |k| (u.clone(), support::t0() + EVENTS as i64 * 997 * k / 5))
        })
        .collect();
    let select = "views, spend, window_count(views_hourly, '1d'), taste";
    let rows = db.rows_as_of(select, &pairs).expect("export");
    assert_eq!(rows.rows.len(), pairs.len());
    group.throughput(Throughput::Elements(pairs.len() as u64));
    group.sample_size(10);
    group.bench_function("pairs_four_per_user_one_pass", |b| {
        b.iter(|| db.rows_as_of(select, &pairs).expect("export"))
    });
    // The same, for users with 100 events of history each (the issue's
    // figure): a database fed half as many events.
    let (_half_dir, half) = {
        let (dir, db) = support::fresh(true);
        for chunk in support::events(22, USERS, EVENTS / 2).chunks(1000) {
            db.ingest(chunk).expect("ingest");
        }
        db.compact().expect("compact");
        (dir, db)
    };
    // Four pairs per user inside its writes again (the events span half the
    // time), each reading from the history.
    let pairs: Vec<(String, i64)> = users
        .iter()
        .flat_map(|u| {
            (1..=4).map(move |k| (u.clone(), support::t0() + EVENTS as i64 / 2 * 997 * k / 5))
        })
        .collect();
    let rows = half.rows_as_of(select, &pairs).expect("export");
    assert_eq!(rows.rows.len(), pairs.len());
    group.bench_function("pairs_four_per_user_of_100_events_one_pass", |b| {
        b.iter(|| half.rows_as_of(select, &pairs).expect("export"))
    });
    drop(half);
    group.finish();

    // An item made after the writes (computed over the history): every
    // write a read as of T replays was accepted under an older catalog,
    // and is planned with that catalog's bindings.
    db.execute("CREATE FEATURE views_7d ON view AS DECAYED_COUNT() HALF_LIFE '7d'")
        .expect("a later item");
    let mut group = c.benchmark_group("history");
    group.throughput(Throughput::Elements(1));
    group.bench_function("as_of_point_read_writes_of_an_older_schema", |b| {
        b.iter(|| {
            i += 1;
            db.profile(&users[i % users.len()], t).expect("read")
        })
    });
    group.finish();
}

criterion_group!(benches, history);
criterion_main!(benches);
