//! The event history keeps every accepted write, exactly once, with all its
//! fields, for the horizon; it keeps nothing of a rejected batch, of a deleted
//! user, or once it is turned off.

mod common;

use std::collections::BTreeSet;

use common::*;
use profiledb_storage::history::{self, Entry, Write};
use profiledb_storage::{Event, Result, RocksEngine, Value};

fn events(user: &str, t: i64) -> Vec<Event> {
    vec![
        Event::new(user, "purchase", t).with("amount", 10.5),
        Event::new(user, "view", t + HOUR)
            .with("item_vec", vec![1.0f32, 0.0, -0.5, 0.25])
            .with("ignored", "a field nothing reads"),
        Event::new(user, "impression", t - 2 * DAY)
            .with("item_vec", vec![0.0f32, 1.0, 0.0, 0.0])
            .with("clicked", 1),
        Event::new(user, "signup", t).with("region", "south"),
    ]
}

/// Five days ago, at the start of the day: inside the 30-day horizon, so
/// that the history job folds nothing away while a test looks at it.
fn t0() -> i64 {
    profiledb_storage::time::now_ms().div_euclid(DAY) * DAY - 5 * DAY
}

/// A new database keeping 30 days of history.
fn open_keeping(dir: &std::path::Path) -> Result<RocksEngine> {
    let e = open(dir)?;
    e.set_history(30 * DAY)?;
    Ok(e)
}

/// Day markers as (day, user).
type Markers = BTreeSet<(i64, String)>;

/// Every history entry, decoded, and the day markers.
fn history_of(e: &RocksEngine) -> Result<(Vec<Entry>, Markers)> {
    let mut entries = Vec::new();
    let mut markers = BTreeSet::new();
    for key in e.raw_keys("history")? {
        if let Some((day, user)) = history::parse_marker_key(&key) {
            markers.insert((day, user.to_owned()));
            continue;
        }
        let value = e.raw_get("history", &key)?.expect("listed key has a value");
        entries.push(
            Entry::decode(&key, &value)
                .map_err(|err| profiledb_storage::Error::Engine(err.to_string()))?,
        );
    }
    Ok((entries, markers))
}

/// What a test wrote, as the history should hold it.
fn expected(writes: &[Write]) -> Vec<String> {
    let mut out: Vec<String> = writes.iter().map(|w| format!("{w:?}")).collect();
    out.sort();
    out
}

fn held(entries: &[Entry]) -> Vec<String> {
    let mut out: Vec<String> = entries.iter().map(|e| format!("{:?}", e.write)).collect();
    out.sort();
    out
}

#[test]
fn every_accepted_write_is_kept_once_with_its_fields() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let e = open_keeping(dir.path())?;
    full_schema(&e)?;
    let mut writes = Vec::new();
    for (i, user) in ["u1", "u2", "u10"].iter().enumerate() {
        let evs = events(user, t0() + i as i64 * DAY);
        e.ingest(&evs)?;
        writes.extend(evs.into_iter().map(Write::Event));
    }
    e.set_attributes("u2", t0() + 5 * DAY, &[("age".into(), Value::Int(40))])?;
    writes.push(Write::Attributes {
        user: "u2".into(),
        ts: t0() + 5 * DAY,
        values: vec![("age".into(), Value::Int(40))],
    });
    // A rejected batch keeps nothing: its one bad event rejects it whole.
    let bad = vec![
        Event::new("u3", "purchase", t0()).with("amount", 1.0),
        Event::new("u3", "purchase", t0()).with("amount", "not a number"),
    ];
    assert!(e.ingest(&bad).is_err());

    let (entries, markers) = history_of(&e)?;
    assert_eq!(held(&entries), expected(&writes));
    // Sequence numbers are unique, and grow in write order.
    let mut by_seq: Vec<&Entry> = entries.iter().collect();
    by_seq.sort_by_key(|e| e.seq);
    let in_order: Vec<String> = by_seq.iter().map(|e| format!("{:?}", e.write)).collect();
    let written: Vec<String> = writes.iter().map(|w| format!("{w:?}")).collect();
    assert_eq!(in_order, written);
    assert!(by_seq.windows(2).all(|w| w[0].seq < w[1].seq));
    // Every entry was accepted under the catalog of its write.
    let version = e.catalog().version;
    assert!(entries.iter().all(|x| x.version == version));
    // One marker per user and day with history.
    let want: Markers = writes
        .iter()
        .map(|w| (history::day_of(w.ts()), w.user().to_owned()))
        .collect();
    assert_eq!(markers, want);
    Ok(())
}

#[test]
fn sequence_numbers_keep_growing_across_a_reopen() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let before = {
        let e = open_keeping(dir.path())?;
        full_schema(&e)?;
        e.ingest(&events("u1", t0()))?;
        history_of(&e)?.0.iter().map(|x| x.seq).max()
    };
    let e = open(dir.path())?;
    e.ingest(&events("u1", t0()))?;
    let (entries, _) = history_of(&e)?;
    assert_eq!(entries.len(), 8);
    let after_reopen = entries.iter().map(|x| x.seq).filter(|s| Some(*s) > before);
    assert_eq!(after_reopen.count(), 4);
    Ok(())
}

#[test]
fn a_deleted_user_leaves_no_history_and_others_keep_theirs() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let e = open_keeping(dir.path())?;
    full_schema(&e)?;
    e.ingest(&events("u1", t0()))?;
    e.ingest(&events("u10", t0() + 3 * DAY))?;
    assert!(e.delete_user("u1")?);
    e.vacuum()?;
    let (entries, markers) = history_of(&e)?;
    assert!(entries.iter().all(|x| x.write.user() == "u10"));
    assert_eq!(entries.len(), 4);
    assert!(markers.iter().all(|(_, u)| u == "u10"));
    // No byte of the id is left in the history family, markers included.
    for key in e.raw_keys("history")? {
        assert!(
            !key.windows(3).any(|w| w == b"u1\0")
                && history::parse_marker_key(&key).map(|m| m.1) != Some("u1"),
            "{key:?}"
        );
    }
    Ok(())
}

#[test]
fn the_horizon_persists_and_off_keeps_nothing() -> Result<()> {
    let dir = tempfile::tempdir()?;
    {
        let e = open(dir.path())?;
        assert_eq!(e.catalog().history_ms, 0);
        e.set_history(90 * DAY)?;
        full_schema(&e)?;
        e.ingest(&events("u1", t0()))?;
    }
    let e = open(dir.path())?;
    assert_eq!(e.catalog().history_ms, 90 * DAY);
    assert_eq!(history_of(&e)?.0.len(), 4);
    // Bad horizons change nothing.
    assert!(e.set_history(-1).is_err());
    assert!(e.set_history(history::MAX_HORIZON_MS + 1).is_err());
    assert_eq!(e.catalog().history_ms, 90 * DAY);
    // Off deletes what was kept, with the change (the fold's cutoff too),
    // and keeps nothing more. (Two days: the writes are older, and fold.)
    e.set_history(2 * DAY)?;
    assert_eq!(e.fold_history()?, 1);
    assert!(e.raw_get("catalog", b"history.cutoff")?.is_some());
    e.set_history(0)?;
    assert!(e.raw_keys("history")?.is_empty());
    assert!(e.raw_get("catalog", b"history.cutoff")?.is_none());
    e.ingest(&events("u1", t0()))?;
    assert!(e.raw_keys("history")?.is_empty());
    // Back on over existing users is refused, naming one.
    let err = e.set_history(DAY).expect_err("refused").to_string();
    assert!(err.contains("'u1'"), "{err}");
    assert_eq!(e.catalog().history_ms, 0);
    Ok(())
}

#[test]
fn a_catalog_from_before_the_history_reads_as_off() -> Result<()> {
    // A catalog document written before the field existed.
    let old = br#"{"version":3,"next_id":2,"features":[]}"#;
    let mut bytes = vec![0x10];
    bytes.extend_from_slice(old);
    let c = profiledb_storage::Catalog::decode(&bytes)
        .map_err(|err| profiledb_storage::Error::Engine(err.to_string()))?;
    assert_eq!(c.history_ms, 0);
    Ok(())
}

fn buy(user: &str, ts: i64, id: impl Into<Value>) -> Event {
    Event::new(user, "purchase", ts)
        .with("amount", 1.0)
        .with("event_id", id)
}

fn purchases(e: &RocksEngine, user: &str) -> Result<Value> {
    let p = e.profile(user, t0() + 10 * DAY, DAY)?;
    Ok(p.and_then(|p| p.get("purchases").cloned())
        .unwrap_or(Value::Null))
}

#[test]
fn an_event_id_is_accepted_once_per_user() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let e = open_keeping(dir.path())?;
    full_schema(&e)?;
    // Within a batch: the second "a" of u1 is a duplicate; u2's "a" is not;
    // 7 and "7" are one id.
    let n = e.ingest_counted(&[
        buy("u1", t0(), "a"),
        buy("u1", t0() + 1, "a"),
        buy("u2", t0(), "a"),
        buy("u1", t0() + 2, 7i64),
        buy("u1", t0() + 3, "7"),
        Event::new("u1", "purchase", t0() + 4).with("amount", 1.0),
    ])?;
    assert_eq!((n.accepted, n.duplicates), (4, 2));
    assert_eq!(purchases(&e, "u1")?, Value::Int(3));
    // A retried batch, whole: nothing is written, not even its history.
    let before = e.raw_keys("history")?;
    let again = e.ingest_counted(&[
        buy("u1", t0() + 9, "a"),
        buy("u2", t0(), "a"),
        buy("u1", t0(), 7i64),
    ])?;
    assert_eq!((again.accepted, again.duplicates), (0, 3));
    assert_eq!(e.raw_keys("history")?, before);
    assert_eq!(purchases(&e, "u1")?, Value::Int(3));
    // Across a reopen.
    drop(e);
    let e = open(dir.path())?;
    let n = e.ingest_counted(&[buy("u1", t0(), "a"), buy("u1", t0(), "b")])?;
    assert_eq!((n.accepted, n.duplicates), (1, 1));
    assert_eq!(purchases(&e, "u1")?, Value::Int(4));
    // A deleted user's ids go with it.
    assert!(e.delete_user("u1")?);
    assert_eq!(e.ingest_counted(&[buy("u1", t0(), "a")])?.accepted, 1);
    Ok(())
}

#[test]
fn a_bad_event_id_rejects_the_batch_and_writes_nothing() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let e = open_keeping(dir.path())?;
    full_schema(&e)?;
    for bad in [
        Value::Float(1.5),
        Value::String(String::new()),
        Value::String("x".repeat(257)),
        Value::Bool(true),
    ] {
        let err = e
            .ingest(&[buy("u1", t0(), "fine"), buy("u1", t0(), bad.clone())])
            .expect_err("refused");
        match err {
            profiledb_storage::Error::InvalidEvent { index, field, .. } => {
                assert_eq!((index, field.as_deref()), (1, Some("event_id")), "{bad:?}");
            }
            other => panic!("{other}"),
        }
    }
    assert!(e.raw_keys("history")?.is_empty());
    assert_eq!(purchases(&e, "u1")?, Value::Null);
    Ok(())
}

#[test]
fn writers_racing_with_one_batch_accept_it_once() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let e = open_keeping(dir.path())?;
    full_schema(&e)?;
    let batch: Vec<Event> = (0..200)
        .map(|i| buy(&format!("u{}", i % 13), t0() + i, format!("id{i}")))
        .collect();
    let accepted: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| e.ingest_counted(&batch).map(|n| n.accepted)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("writer"))
            .sum::<Result<usize>>()
    })?;
    assert_eq!(accepted, 200);
    let total: i64 = (0..13)
        .map(|u| match purchases(&e, &format!("u{u}")) {
            Ok(Value::Int(n)) => n,
            _ => 0,
        })
        .sum();
    assert_eq!(total, 200);
    Ok(())
}

#[test]
fn without_history_event_ids_are_not_remembered() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let e = open(dir.path())?;
    full_schema(&e)?;
    let n = e.ingest_counted(&[buy("u1", t0(), "a"), buy("u1", t0(), "a")])?;
    assert_eq!((n.accepted, n.duplicates), (2, 0));
    assert_eq!(purchases(&e, "u1")?, Value::Int(2));
    Ok(())
}

#[test]
fn a_field_nothing_reads_is_kept_and_must_be_finite() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let e = open_keeping(dir.path())?;
    full_schema(&e)?;
    for bad in [
        Value::Float(f64::NAN),
        Value::Vector(vec![1.0, f32::INFINITY]),
    ] {
        let ev = Event::new("u1", "purchase", t0())
            .with("amount", 1.0)
            .with("note", bad);
        match e.ingest(&[ev]).expect_err("refused") {
            profiledb_storage::Error::InvalidEvent { field, .. } => {
                assert_eq!(field.as_deref(), Some("note"));
            }
            other => panic!("{other}"),
        }
    }
    assert!(e.raw_keys("history")?.is_empty());
    Ok(())
}

#[test]
fn a_repeated_request_key_answers_the_first_answer_and_writes_nothing() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let e = open_keeping(dir.path())?;
    full_schema(&e)?;
    let batch = [
        buy("u1", t0(), "a"),
        buy("u1", t0() + 1, "a"),
        buy("u2", t0(), "b"),
    ];
    let (first, repeated) = e.ingest_once(&batch, "req-1")?;
    assert_eq!((first.accepted, first.duplicates, repeated), (2, 1, false));
    let history = e.raw_keys("history")?;
    // The retry, and a retry with other events under the same key: the first
    // answer, and nothing written.
    for retry in [&batch[..], &[buy("u3", t0(), "c")][..]] {
        let (again, repeated) = e.ingest_once(retry, "req-1")?;
        assert_eq!((again, repeated), (first, true));
        assert_eq!(e.raw_keys("history")?, history);
    }
    assert_eq!(purchases(&e, "u1")?, Value::Int(1));
    assert!(e.profile("u3", t0(), DAY)?.is_none());
    // Another key is another request; keys survive a reopen.
    let (other, repeated) = e.ingest_once(&[buy("u3", t0(), "c")], "req-2")?;
    assert_eq!((other.accepted, repeated), (1, false));
    drop(e);
    let e = open(dir.path())?;
    assert!(e.ingest_once(&[buy("u4", t0(), "d")], "req-2")?.1);
    assert!(e.profile("u4", t0(), DAY)?.is_none());
    // Bad keys, and keys without history, are refused.
    assert!(e.ingest_once(&batch, "").is_err());
    assert!(e.ingest_once(&batch, &"k".repeat(257)).is_err());
    let dir = tempfile::tempdir()?;
    let off = open(dir.path())?;
    full_schema(&off)?;
    let err = off
        .ingest_once(&batch, "req-1")
        .expect_err("refused")
        .to_string();
    assert!(err.contains("history"), "{err}");
    assert!(off.profile("u1", t0(), DAY)?.is_none());
    Ok(())
}

#[test]
fn request_keys_and_expired_buckets_go_with_the_horizon() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let e = open_keeping(dir.path())?;
    full_schema(&e)?;
    let now = e.now();
    // A request 40 days ago, one 10 days ago: the clock is where each was made.
    e.set_now(now - 40 * DAY);
    assert!(!e.ingest_once(&[buy("u1", now - 40 * DAY, "a")], "old")?.1);
    e.ingest(&[
        Event::new("u1", "view", now - 40 * DAY).with("item_vec", vec![1.0f32, 0.0, 0.0, 0.0])
    ])?;
    e.set_now(now - 10 * DAY);
    assert!(
        !e.ingest_once(&[buy("u2", now - 10 * DAY, "b")], "recent")?
            .1
    );
    e.set_now(now);
    // (The engine may have folded by itself meanwhile: the state after is the same.)
    e.fold_history()?;
    // The old key was first seen before the horizon: a repeat of it is a new
    // request. The recent one is still remembered.
    assert!(!e.ingest_once(&[buy("u3", now, "c")], "old")?.1);
    assert!(e.ingest_once(&[buy("u4", now, "d")], "recent")?.1);
    // u1's base state keeps its purchase's day bucket (kept 100 years) and
    // not its view's hour bucket (kept 30 days), which no read can see.
    let c = e.catalog();
    let (views, spend) = (
        c.window("views").expect("views").id,
        c.window("spend").expect("spend").id,
    );
    let base = e
        .raw_get("history", &history::base_key("u1"))?
        .expect("u1 was folded");
    let base = history::Base::decode(&base)
        .map_err(|err| profiledb_storage::Error::Engine(err.to_string()))?;
    let windows: Vec<u32> = base.windows.keys().map(|(def, _)| *def).collect();
    assert_eq!(windows, [spend], "views is {views}");
    Ok(())
}
