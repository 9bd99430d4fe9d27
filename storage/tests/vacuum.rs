//! After a delete and a vacuum, no file of the database directory holds a byte of
//! the deleted user: not their id, not their data. Every file is searched, so
//! whatever RocksDB or the engine writes (tables, logs, MANIFEST, the vector
//! index snapshot, info logs) is covered.

mod common;

use std::path::Path;

use common::*;
use profiledb_storage::{EngineOptions, Event, Pins, Result, RocksEngine, Value};

const VICTIM: &str = "victim-7f3a9c";
/// A value only the victim's events carry.
const PAYLOAD: &str = "payload-q9z4k1";

/// The files under `dir` whose bytes contain `needle`.
fn files_holding(dir: &Path, needle: &str) -> Result<Vec<String>> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let bytes = match std::fs::read(&path) {
                // RocksDB may delete a file between the listing and the read.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                other => other?,
            };
            if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                found.push(path.display().to_string());
            }
        }
    }
    Ok(found)
}

fn events(user: &str, region: &str, n: i64) -> Vec<Event> {
    (0..n)
        .flat_map(|i| {
            [
                Event::new(user, "signup", T0 + i).with("region", region),
                Event::new(user, "purchase", T0 + i).with("amount", 10.0 + i as f64),
                Event::new(user, "view", T0 + i * HOUR)
                    .with("item_vec", vec![1.0f32, i as f32, 0.5, 0.25]),
                Event::new(user, "impression", T0 + i)
                    .with("item_vec", vec![0.0f32, 1.0, 0.0, 1.0])
                    .with("clicked", i % 2),
            ]
        })
        .collect()
}

fn engine(dir: &Path) -> Result<RocksEngine> {
    let mut opts = EngineOptions::new(dir);
    opts.purge_delay = None;
    RocksEngine::open(opts)
}

fn load(e: &RocksEngine) -> Result<()> {
    for i in 0..200 {
        e.ingest(&events(&format!("user-{i:04}"), "north", 3))?;
    }
    e.ingest(&events(VICTIM, PAYLOAD, 5))?;
    Ok(())
}

/// A loaded database in `dir`, with the victim deleted and not yet purged.
fn victim_deleted(dir: &Path) -> Result<RocksEngine> {
    let e = engine(dir)?;
    full_schema(&e)?;
    load(&e)?;
    e.flush()?;
    assert!(e.delete_user(VICTIM)?);
    Ok(e)
}

fn assert_gone(dir: &Path) -> Result<()> {
    for needle in [VICTIM, PAYLOAD] {
        let found = files_holding(dir, needle)?;
        assert!(found.is_empty(), "'{needle}' is still in {found:?}");
    }
    Ok(())
}

#[test]
fn vacuum_leaves_no_byte_of_a_deleted_user() -> Result<()> {
    let dir = tempfile::tempdir()?;
    {
        let e = engine(dir.path())?;
        full_schema(&e)?;
        load(&e)?;
        e.flush()?;
        // Build the vector index, so that closing writes its snapshot.
        drop(e.view(Pins::VECTORS)?);
        e.compact()?;
    }
    // The victim is on disk now: the search can find what it looks for.
    assert!(!files_holding(dir.path(), VICTIM)?.is_empty());
    assert!(!files_holding(dir.path(), PAYLOAD)?.is_empty());

    let e = engine(dir.path())?;
    assert!(e.delete_user(VICTIM)?);
    // One from the middle of the key space too, not only the last key.
    assert!(!files_holding(dir.path(), "user-0123")?.is_empty());
    assert!(e.delete_user("user-0123")?);
    e.vacuum()?;
    assert_gone(dir.path())?;
    assert!(files_holding(dir.path(), "user-0123")?.is_empty());

    // Everyone else is untouched, and the database still works.
    assert!(e.profile(VICTIM, T0, DAY)?.is_none());
    let p = e.profile("user-0042", T0 + DAY, DAY)?;
    assert_eq!(
        p.as_ref().and_then(|p| p.get("purchases")),
        Some(&Value::Int(3))
    );
    e.ingest(&events("user-0042", "north", 1))?;
    drop(e);
    // And stays gone across a close and reopen.
    assert_gone(dir.path())?;
    let e = engine(dir.path())?;
    assert!(e.profile(VICTIM, T0, DAY)?.is_none());
    assert_eq!(
        e.profile("user-0042", T0 + DAY, DAY)?
            .as_ref()
            .and_then(|p| p.get("purchases")),
        Some(&Value::Int(4))
    );
    Ok(())
}

#[test]
fn deleting_a_user_that_never_existed_writes_nothing() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let e = engine(dir.path())?;
    full_schema(&e)?;
    load(&e)?;
    let before = e.stats().last_sequence;
    assert!(!e.delete_user("never-was-4d2e")?);
    assert_eq!(e.stats().last_sequence, before);
    drop(e);
    assert!(files_holding(dir.path(), "never-was-4d2e")?.is_empty());
    Ok(())
}

#[test]
fn the_purge_runs_by_itself_after_its_delay() -> Result<()> {
    let dir = tempfile::tempdir()?;
    // Closed before any purge: the marker says one is due.
    drop(victim_deleted(dir.path())?);
    let mut opts = EngineOptions::new(dir.path());
    opts.purge_delay = Some(std::time::Duration::from_millis(200));
    let _e = RocksEngine::open(opts)?;
    // Bounded wait: the purge is due 200 ms after opening.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !files_holding(dir.path(), VICTIM)?.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no purge within 60 s: {:?}",
            files_holding(dir.path(), VICTIM)?
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_gone(dir.path())?;
    Ok(())
}

#[test]
fn a_vacuum_past_its_deadline_stops_and_stays_due() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let e = victim_deleted(dir.path())?;
    let past = std::time::Instant::now() - std::time::Duration::from_secs(1);
    assert!(!e.vacuum_until(Some(past))?);
    assert!(!files_holding(dir.path(), VICTIM)?.is_empty());
    // A deadline a millisecond away may stop the compaction midway or not; either
    // way the answer is honest, and a later vacuum finishes the job.
    let soon = std::time::Instant::now() + std::time::Duration::from_millis(1);
    if e.vacuum_until(Some(soon))? {
        assert_gone(dir.path())?;
    }
    assert!(e.vacuum_until(None)?);
    assert_gone(dir.path())?;
    // Compactions work again after a stopped one.
    e.ingest(&events("after", "north", 1))?;
    e.compact()?;
    assert!(e.profile("after", T0, DAY)?.is_some());
    Ok(())
}
