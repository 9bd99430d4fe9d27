//! The row table that scans read equals a direct read of RocksDB through the
//! same snapshot: after random ingest, attribute writes, deletes and dropped
//! definitions, while writers run, after reopening, and after the writer is
//! killed.

mod common;

use std::io::{BufRead, BufReader};

use common::*;
use profiledb_storage::kv::rocks::RocksKv;
use profiledb_storage::{
    DefKind, Event, FeatureKind, Pins, Profile, Result, RocksEngine, RowNeeds, UserRange, Value,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Everything the catalog evaluates of every user, at `T0 + 40 days`: ids,
/// attributes, features and ewma vectors.
fn evaluated(
    view: &profiledb_storage::ReadView<'_, RocksKv>,
    range: &UserRange,
    from_table: bool,
) -> Result<Vec<Profile>> {
    let needs = RowNeeds {
        attributes: true,
        ..RowNeeds::default()
    };
    let catalog = &view.bindings().catalog;
    let mut out = Vec::new();
    let mut failed = None;
    let mut visit = |row: &profiledb_storage::UserRow| {
        match Profile::from_row(catalog, row, &needs, T0 + 40 * DAY) {
            Ok(p) => out.push(p),
            Err(e) => failed = Some(e),
        }
        failed.is_none()
    };
    if from_table {
        view.scan(range, &needs, &mut visit)?;
    } else {
        view.scan_store(range, &needs, &mut visit)?;
    }
    failed.map_or(Ok(out), Err)
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => close(*x, *y, 1e-12),
        (Value::Vector(x), Value::Vector(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|(p, q)| close(f64::from(*p), f64::from(*q), 1e-6))
        }
        _ => a == b,
    }
}

/// Asserts that the two lists hold the same users with the same values.
/// Floats may differ in their last bits: RocksDB may fold a user's operands in
/// another grouping between the table's read and the store's.
fn assert_same(table: &[Profile], store: &[Profile], what: &str) {
    let ids = |ps: &[Profile]| ps.iter().map(|p| p.user.clone()).collect::<Vec<_>>();
    assert_eq!(ids(table), ids(store), "{what}: users");
    for (t, s) in table.iter().zip(store) {
        let pairs = [
            (&t.attributes, &s.attributes),
            (&t.features, &s.features),
            (&t.vectors, &s.vectors),
        ];
        for (a, b) in pairs {
            assert_eq!(a.len(), b.len(), "{what}: {}", t.user);
            for ((na, va), (nb, vb)) in a.iter().zip(b) {
                assert!(
                    na == nb && same_value(va, vb),
                    "{what}: {} {na}: table {va:?}, store {vb:?}",
                    t.user
                );
            }
        }
        assert_eq!(
            (t.first_seen, t.last_seen, t.events),
            (s.first_seen, s.last_seen, s.events),
            "{what}: {}",
            t.user
        );
    }
}

/// A view that holds the row table: the first asks for it to be built, in
/// the background.
fn pinned(e: &RocksEngine) -> Result<profiledb_storage::ReadView<'_, RocksKv>> {
    for _ in 0..10_000 {
        let view = e.view(Pins::ROWS)?;
        if view.reads_row_table() {
            return Ok(view);
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    panic!("the row table was not built within 10 s");
}

/// Pins the row table and compares it with the store, whole and in ranges.
fn check(e: &RocksEngine, what: &str) -> Result<usize> {
    let view = pinned(e)?;
    let all = UserRange::all();
    let table = evaluated(&view, &all, true)?;
    assert_same(&table, &evaluated(&view, &all, false)?, what);
    let ranges = view.split_ranges(3)?;
    let mut joined = Vec::new();
    for r in &ranges {
        joined.extend(evaluated(&view, r, true)?);
    }
    assert_same(&joined, &table, &format!("{what}, split"));
    Ok(table.len())
}

/// A random batch: purchases, views with vectors, signups with a region,
/// impressions, over `users` users.
fn batch(rng: &mut StdRng, users: u32, n: usize) -> Vec<Event> {
    (0..n)
        .map(|_| {
            let user = format!("u{:04}", rng.random_range(0..users));
            let ts = T0 + rng.random_range(0..30 * DAY);
            match rng.random_range(0..4) {
                0 => Event::new(user, "purchase", ts).with("amount", rng.random_range(1.0..500.0)),
                1 => Event::new(user, "view", ts).with(
                    "item_vec",
                    (0..4)
                        .map(|_| rng.random_range(-1.0f32..1.0))
                        .collect::<Vec<_>>(),
                ),
                2 => Event::new(user, "signup", ts)
                    .with("region", ["north", "south"][rng.random_range(0..2)]),
                _ => Event::new(user, "impression", ts)
                    .with("clicked", rng.random_bool(0.1))
                    .with(
                        "item_vec",
                        (0..4)
                            .map(|_| rng.random_range(-1.0f32..1.0))
                            .collect::<Vec<_>>(),
                    ),
            }
        })
        .collect()
}

#[test]
fn the_row_table_equals_the_store_through_random_changes() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut rng = StdRng::seed_from_u64(12);
    let mut e = open(dir.path())?;
    full_schema(&e)?;
    e.ingest(&batch(&mut rng, 400, 2000))?;
    assert!(check(&e, "first build")? > 300);
    for round in 0..12 {
        for _ in 0..5 {
            e.ingest(&batch(&mut rng, 400, 300))?;
        }
        for _ in 0..10 {
            let user = format!("u{:04}", rng.random_range(0..400));
            e.set_attributes(&user, T0 + 31 * DAY, &[("age".into(), Value::Int(round))])?;
            e.delete_user(&format!("u{:04}", rng.random_range(0..400)))?;
        }
        match round % 4 {
            1 => e.flush()?,
            2 => e.compact()?,
            _ => {}
        }
        if round == 5 {
            e.drop_item(DefKind::Feature, "revenue")?;
            e.define(feature(
                "revenue",
                "purchase",
                Some("amount"),
                FeatureKind::Sum,
            ))?;
        }
        check(&e, &format!("round {round}"))?;
        if round % 4 == 3 {
            drop(e);
            e = open(dir.path())?;
            check(&e, &format!("round {round}, reopened"))?;
        }
    }
    let stats = e.row_table_stats();
    assert!(
        stats.built && stats.users > 0 && stats.bytes > 0,
        "{stats:?}"
    );
    Ok(())
}

/// Compares the table `view` reads with its store, whole and in ranges.
fn same_as_store(view: &profiledb_storage::ReadView<'_, RocksKv>, what: &str) -> Result<usize> {
    let all = UserRange::all();
    let table = evaluated(view, &all, true)?;
    assert_same(&table, &evaluated(view, &all, false)?, what);
    let mut joined = Vec::new();
    for r in &view.split_ranges(3)? {
        joined.extend(evaluated(view, r, true)?);
    }
    assert_same(&joined, &table, &format!("{what}, split"));
    Ok(table.len())
}

/// A database created empty keeps its row table from the start: writes
/// wait for the first view that pins it, which reads the table at once
/// (nothing to build) and equal to the store, attribute writes and deletes
/// (read again) included, whether the waiting merges are few (applied one
/// by one) or many (on every core); later writes are applied as usual.
#[test]
fn a_table_kept_from_an_empty_store_is_read_by_the_first_view() -> Result<()> {
    for (seed, rounds) in [(41, 1), (42, 12)] {
        let dir = tempfile::tempdir()?;
        let e = open(dir.path())?;
        full_schema(&e)?;
        let mut rng = StdRng::seed_from_u64(seed);
        let mut written = 0;
        for round in 0..rounds {
            let events = batch(&mut rng, 500, 600);
            written += events.len();
            e.ingest(&events)?;
            let user = format!("u{:04}", rng.random_range(0..500));
            e.set_attributes(&user, T0 + 31 * DAY, &[("age".into(), Value::Int(round))])?;
            e.delete_user(&format!("u{:04}", rng.random_range(0..500)))?;
            if round == 3 {
                e.flush()?;
            }
        }
        let waiting = e.row_table_stats();
        assert!(
            waiting.built && waiting.users == 0 && waiting.pending > 0,
            "{written} events: kept and waiting, {waiting:?}"
        );
        let view = e.view(Pins::ROWS)?;
        assert!(
            view.reads_row_table(),
            "{written} events: the first view reads the table"
        );
        let users = same_as_store(&view, &format!("{written} events, first view"))?;
        assert!(users > 300, "{users} users");
        drop(view);
        let stats = e.row_table_stats();
        assert!(stats.built && stats.users == users as u64, "{stats:?}");
        e.ingest(&batch(&mut rng, 600, 600))?;
        e.delete_user("u0001")?;
        same_as_store(&pinned(&e)?, &format!("{written} events, then more"))?;
    }
    Ok(())
}

/// A table is kept only from an empty store: reopened with users in it, the
/// first scan builds it; a definition dropped while the store is still
/// empty keeps it.
#[test]
fn only_an_empty_store_keeps_its_table_before_a_scan() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let e = open(dir.path())?;
    full_schema(&e)?;
    e.drop_item(DefKind::Feature, "revenue")?;
    assert!(
        e.row_table_stats().built,
        "dropped on an empty store: still kept"
    );
    e.ingest(&batch(&mut StdRng::seed_from_u64(5), 200, 500))?;
    drop(e);
    let e = open(dir.path())?;
    assert!(!e.row_table_stats().built, "reopened with users: not kept");
    same_as_store(&pinned(&e)?, "reopened")?;
    Ok(())
}

/// Writes waiting for the first scan of a table kept from an empty store
/// take at most a quarter of the table's memory limit: past it the table is
/// dropped, nothing waits, and the first scan builds it from the store.
#[test]
fn waiting_writes_past_their_limit_drop_the_kept_table() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut opts = profiledb_storage::EngineOptions::new(dir.path());
    opts.row_table_bytes = 2_000_000;
    let e = RocksEngine::open(opts)?;
    full_schema(&e)?;
    assert!(e.row_table_stats().built);
    let mut rng = StdRng::seed_from_u64(8);
    // About 200 bytes an event, 600 events a batch: past 500,000 bytes
    // by the fifth batch.
    for _ in 0..8 {
        e.ingest(&batch(&mut rng, 400, 600))?;
    }
    let mut stats = e.row_table_stats();
    for _ in 0..10_000 {
        if !stats.built {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
        stats = e.row_table_stats();
    }
    assert!(
        !stats.built && !stats.too_large && stats.pending == 0,
        "{stats:?}"
    );
    assert!(
        !e.view(Pins::ROWS)?.reads_row_table(),
        "the first view builds it"
    );
    same_as_store(&pinned(&e)?, "built after the drop")?;
    Ok(())
}

/// A row table over its memory limit is not kept: scans read the store, and
/// the figures say so.
#[test]
fn a_row_table_over_its_limit_is_refused() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut opts = profiledb_storage::EngineOptions::new(dir.path());
    opts.row_table_bytes = 20_000;
    let e = RocksEngine::open(opts)?;
    full_schema(&e)?;
    e.ingest(&batch(&mut StdRng::seed_from_u64(33), 400, 2000))?;
    drop(e.view(Pins::ROWS)?);
    let mut stats = e.row_table_stats();
    for _ in 0..10_000 {
        if stats.too_large {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
        stats = e.row_table_stats();
    }
    assert!(
        stats.too_large && !stats.built && stats.bytes > 20_000,
        "{stats:?}"
    );
    let view = e.view(Pins::ROWS)?;
    assert!(!view.reads_row_table());
    let all = UserRange::all();
    assert_same(
        &evaluated(&view, &all, true)?,
        &evaluated(&view, &all, false)?,
        "over the limit",
    );
    Ok(())
}

/// Writers keep going while views are pinned: each view's table equals its
/// own snapshot.
#[test]
fn a_pinned_row_table_equals_its_snapshot_while_writers_run() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let e = open(dir.path())?;
    full_schema(&e)?;
    e.ingest(&batch(&mut StdRng::seed_from_u64(1), 300, 1000))?;
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| -> Result<()> {
        let writers: Vec<_> = (0..2)
            .map(|w| {
                let (e, done) = (&e, &done);
                s.spawn(move || -> Result<()> {
                    let mut rng = StdRng::seed_from_u64(100 + w);
                    while !done.load(std::sync::atomic::Ordering::Relaxed) {
                        e.ingest(&batch(&mut rng, 300, 50))?;
                        if rng.random_bool(0.2) {
                            e.delete_user(&format!("u{:04}", rng.random_range(0..300)))?;
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        /// Stops the writers however the checks end, a failed assertion included.
        struct Stop<'a>(&'a std::sync::atomic::AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let stop = Stop(&done);
        let checked = (0..30).try_for_each(|i| check(&e, &format!("pin {i}")).map(drop));
        drop(stop);
        for w in writers {
            w.join().expect("writer")?;
        }
        checked
    })
}

/// The child process: ingests random batches (with deletes) into the row
/// table's database until it is killed, printing each acknowledged batch.
fn writer(dir: &str) -> Result<()> {
    let e = open(std::path::Path::new(dir))?;
    if e.catalog().feature("purchases").is_none() {
        full_schema(&e)?;
    }
    let mut rng = StdRng::seed_from_u64(std::process::id().into());
    for b in 0.. {
        e.ingest(&batch(&mut rng, 300, 200))?;
        e.delete_user(&format!("u{:04}", rng.random_range(0..300)))?;
        // Scans keep the row table built and refreshing while it runs.
        if b % 5 == 0 {
            drop(e.view(Pins::ROWS)?);
        }
        println!("ack {b}");
    }
    Ok(())
}

/// Entry point of the child process; a no-op when run as a normal test.
#[test]
fn row_table_writer_child() -> Result<()> {
    match std::env::var("PROFILEDB_ROW_TABLE_DIR") {
        Ok(dir) => writer(&dir),
        Err(_) => Ok(()),
    }
}

#[test]
fn the_row_table_equals_the_store_after_kill() -> Result<()> {
    let dir = tempfile::tempdir()?;
    for kill in 0..3 {
        let dir_s = dir.path().to_string_lossy().to_string();
        let (mut child, stdout) = spawn_test(
            "row_table_writer_child",
            &[("PROFILEDB_ROW_TABLE_DIR", &dir_s)],
        )?;
        let mut seen = 0;
        for line in BufReader::new(stdout).lines() {
            if line?.starts_with("ack ") {
                seen += 1;
                if seen >= 8 + kill * 5 {
                    break;
                }
            }
        }
        child.kill()?;
        child.wait()?;
        let e = open(dir.path())?;
        assert!(check(&e, &format!("kill {kill}"))? > 0);
    }
    Ok(())
}
