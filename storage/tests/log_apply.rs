//! Events applied from a log partition atomically with the partition's
//! position: a batch is applied once however often it is delivered, a bad
//! event is skipped without stopping the partition, and a writer killed at
//! random points and resumed from its stored position ends with every event
//! of the log applied exactly once.

mod common;

use std::io::{BufRead, BufReader};

use common::*;
use profiledb_storage::{
    EngineOptions, Event, FeatureKind, MemoryEngine, Result, RocksEngine, Value,
};

fn count(p: Option<profiledb_storage::Profile>, name: &str) -> i64 {
    match p.and_then(|p| p.get(name).cloned()) {
        Some(Value::Int(n)) => n,
        None => 0,
        other => panic!("count {other:?}"),
    }
}

#[test]
fn a_batch_is_applied_once_however_often_it_is_delivered() -> Result<()> {
    let e = MemoryEngine::memory().with_now(T0 + DAY);
    e.define(feature("n", "tick", None, FeatureKind::Count))?;
    let batch = |k: i64| -> Vec<Event> {
        (0..3)
            .map(|i| Event::new("u1", "tick", T0 + k * 10 + i))
            .collect()
    };
    assert_eq!(e.log_position(7)?, None);
    let first = e.apply_log(7, 3, &batch(0))?;
    assert_eq!((first.ingested.accepted, first.repeated), (3, false));
    assert_eq!(e.log_position(7)?, Some(3));
    // Delivered again, and an older one: nothing written.
    assert!(e.apply_log(7, 3, &batch(0))?.repeated);
    assert!(e.apply_log(7, 2, &batch(0))?.repeated);
    assert_eq!(count(e.profile("u1", T0 + DAY, DAY)?, "n"), 3);
    // Partitions keep their own positions.
    assert!(!e.apply_log(8, 1, &batch(1))?.repeated);
    assert_eq!(e.log_position(8)?, Some(1));
    assert_eq!(e.log_position(7)?, Some(3));
    e.apply_log(7, 6, &batch(2))?;
    assert_eq!(count(e.profile("u1", T0 + DAY, DAY)?, "n"), 9);
    assert!(e.apply_log(7, 0, &batch(3)).is_err());
    Ok(())
}

#[test]
fn several_partitions_are_applied_in_one_write_or_not_at_all() -> Result<()> {
    let e = MemoryEngine::memory().with_now(T0 + DAY);
    e.define(feature("n", "tick", None, FeatureKind::Count))?;
    let ticks = |user: &str, k: i64| -> Vec<Event> {
        (0..k).map(|i| Event::new(user, "tick", T0 + i)).collect()
    };
    let mut events = ticks("u1", 2);
    events.extend(ticks("u2", 3));
    let out = e.apply_logs(&[(1, 10), (2, 12)], &events)?;
    assert_eq!((out.ingested.accepted, out.repeated), (5, false));
    assert_eq!(
        (e.log_position(1)?, e.log_position(2)?),
        (Some(10), Some(12))
    );
    // Delivered again: nothing written.
    assert!(e.apply_logs(&[(2, 12), (1, 10)], &events)?.repeated);
    assert_eq!(count(e.profile("u1", T0 + DAY, DAY)?, "n"), 2);
    assert_eq!(count(e.profile("u2", T0 + DAY, DAY)?, "n"), 3);
    // Some applied and others not, a partition twice, a zero: refused,
    // nothing written.
    for (positions, why) in [
        (vec![(1, 10), (3, 5)], "applied already"),
        (vec![(4, 1), (4, 2)], "twice"),
        (vec![(5, 0)], "starts at 1"),
    ] {
        let err = e.apply_logs(&positions, &ticks("u3", 1)).expect_err(why);
        assert!(err.to_string().contains(why), "{err}");
    }
    assert_eq!(e.log_position(3)?, None);
    assert_eq!(count(e.profile("u3", T0 + DAY, DAY)?, "n"), 0);
    Ok(())
}

#[test]
fn a_bad_event_from_the_log_is_skipped_and_the_position_moves_on() -> Result<()> {
    let e = MemoryEngine::memory().with_now(T0 + DAY);
    e.define(feature("total", "buy", Some("amount"), FeatureKind::Sum))?;
    let events = [
        Event::new("u1", "buy", T0).with("amount", 2.0),
        Event::new("u1", "buy", T0).with("amount", "lots"),
        Event::new("u2", "buy", T0).with("amount", 5.0),
    ];
    let out = e.apply_log(0, 10, &events)?;
    assert_eq!(out.ingested.accepted, 2);
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].0, 1);
    assert_eq!(out.rejected[0].1.field.as_deref(), Some("amount"));
    assert_eq!(e.log_position(0)?, Some(10));
    // A batch of bad events alone still moves the position.
    let out = e.apply_log(0, 11, &events[1..2])?;
    assert_eq!((out.ingested.accepted, out.rejected.len()), (0, 1));
    assert_eq!(e.log_position(0)?, Some(11));
    let total = |u: &str| -> Result<Option<Value>> {
        Ok(e.profile(u, T0, DAY)?.and_then(|p| p.get("total").cloned()))
    };
    assert_eq!(total("u1")?, Some(Value::Float(2.0)));
    assert_eq!(total("u2")?, Some(Value::Float(5.0)));
    Ok(())
}

/// The log: message `seq` (from 1) holds `PER` ticks for user `u{seq % 5}`.
const MESSAGES: u64 = 400;
const PER: i64 = 3;
/// Messages applied per write.
const PULL: u64 = 7;

fn message(seq: u64) -> Vec<Event> {
    (0..PER)
        .map(|i| Event::new(format!("u{}", seq % 5), "tick", T0 + seq as i64 * 10 + i))
        .collect()
}

/// A node consuming partition 3: resumes after its stored position and
/// applies the log in pulls of `PULL` messages, printing each position and
/// then waiting for a line on stdin before the next pull (so that the
/// parent can kill it while it writes).
fn consumer(dir: &str) -> Result<()> {
    let e = RocksEngine::open(EngineOptions::new(dir))?;
    if e.catalog().feature("n").is_none() {
        e.define(feature("n", "tick", None, FeatureKind::Count))?;
    }
    let mut next = e.log_position(3)?.unwrap_or(0) + 1;
    let mut go = String::new();
    while next <= MESSAGES {
        let last = (next + PULL - 1).min(MESSAGES);
        let events: Vec<Event> = (next..=last).flat_map(message).collect();
        e.apply_log(3, last, &events)?;
        println!("applied {last}");
        go.clear();
        std::io::stdin().read_line(&mut go)?;
        next = last + 1;
    }
    println!("done");
    Ok(())
}

/// Each user's count after messages 1..=`position`, from the log itself.
fn expected(position: u64, user: u64) -> i64 {
    (1..=position).filter(|s| s % 5 == user).count() as i64 * PER
}

/// Entry point of the child process; a no-op when run as a normal test.
#[test]
fn log_consumer_child() -> Result<()> {
    match std::env::var("PROFILEDB_LOG_DIR") {
        Ok(dir) => consumer(&dir),
        Err(_) => Ok(()),
    }
}

#[test]
fn a_consumer_killed_anywhere_applies_every_message_exactly_once() -> Result<()> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir()?;
    let mut done = false;
    for kill in 0..40 {
        let mut child = Command::new(std::env::current_exe()?)
            .args([
                "log_consumer_child",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("PROFILEDB_LOG_DIR", dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| std::io::Error::other("no stdin"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("no stdout"))?;
        let target = 1 + (kill * 7) % 5;
        let mut seen = 0;
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            // The harness writes the test's name before the first line.
            if line.ends_with("done") {
                done = true;
                break;
            }
            if line.contains("applied ") {
                seen += 1;
                // Let it go on; at the target, kill it as it writes.
                let _ = writeln!(stdin);
                if seen >= target {
                    break;
                }
            }
        }
        child.kill()?;
        child.wait()?;
        // Whatever the kill interrupted, the stored position and the data
        // agree: every message up to the position applied once, none after.
        let e = RocksEngine::open(EngineOptions::new(dir.path()))?;
        let at = e.log_position(3)?.unwrap_or(0);
        for u in 0..5u64 {
            assert_eq!(
                count(e.profile(&format!("u{u}"), T0, DAY)?, "n"),
                expected(at, u),
                "u{u} at position {at}, after kill {kill}"
            );
        }
        if done {
            break;
        }
    }
    assert!(done, "the consumer did not finish the log in 40 runs");
    let e = RocksEngine::open(EngineOptions::new(dir.path()))?;
    assert_eq!(e.log_position(3)?, Some(MESSAGES));
    Ok(())
}

/// The users of a partition, for the drop test: `a…` in 1, `b…` in 2.
fn partition_events(prefix: &str, users: usize, per: usize) -> Vec<Event> {
    let mut out = Vec::new();
    for k in 0..per {
        for u in 0..users {
            let i = (k * users + u) as i64;
            out.push(
                Event::new(format!("{prefix}{u}"), "purchase", T0 + i * 60_000)
                    .with("amount", (u + k) as f64 + 0.5)
                    .with("event_id", format!("{prefix}-{u}-{k}")),
            );
            out.push(
                Event::new(format!("{prefix}{u}"), "view", T0 + i * 60_000 + 1)
                    .with("item_vec", vec![u as f32, 1.0, k as f32, 0.5])
                    .with("event_id", format!("{prefix}-{u}-{k}-v")),
            );
        }
    }
    out
}

/// A node's copy of a partition it no longer follows is dropped: every key
/// of its users goes, the other partitions' users and positions stay, and
/// the partition applied again from its start reads as before the drop
/// (its event ids gone with it, so none is taken for a repeat).
#[test]
fn a_dropped_partition_leaves_no_key_and_reads_the_same_when_applied_again() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let e = open(dir.path())?;
    e.set_history(30 * DAY)?;
    full_schema(&e)?;
    let (a, b) = (partition_events("a", 6, 3), partition_events("b", 6, 3));
    // Each partition in two pulls.
    let (a1, a2) = a.split_at(a.len() / 2);
    e.apply_log(1, 10, a1)?;
    e.apply_logs(&[(1, 20), (2, 15)], &[a2, &b].concat())?;
    e.apply_log(1 << 31 | 1, 4, &[])?;
    let read = |user: &str| e.profile(user, T0 + DAY, DAY);
    let before_a: Vec<_> = (0..6)
        .map(|u| read(&format!("a{u}")))
        .collect::<Result<_>>()?;
    let before_b: Vec<_> = (0..6)
        .map(|u| read(&format!("b{u}")))
        .collect::<Result<_>>()?;
    assert!(before_a.iter().chain(&before_b).all(Option::is_some));
    e.flush()?;

    let dropped = e.drop_log_partitions(&[1, 1 << 31 | 1], &|u| u.starts_with('a'))?;
    assert_eq!(dropped, 6);
    assert_eq!(e.log_drops()?, Vec::<u32>::new());
    assert_eq!(
        (e.log_position(1)?, e.log_position(1 << 31 | 1)?),
        (None, None)
    );
    assert_eq!(e.log_position(2)?, Some(15));
    for cf in profiledb_storage::kv::DATA {
        let left = e
            .raw_keys(cf)?
            .into_iter()
            .filter(|k| profiledb_storage::keys::user_of(k).is_some_and(|u| u.starts_with('a')))
            .count();
        assert_eq!(left, 0, "{cf}");
    }
    for (u, before) in before_b.iter().enumerate() {
        assert!(read(&format!("a{u}"))?.is_none());
        assert_eq!(&read(&format!("b{u}"))?, before, "b{u}");
    }
    // Applied again from the start: the same profiles, nothing a repeat.
    let again = e.apply_log(1, 20, &a)?;
    assert_eq!((again.repeated, again.ingested.accepted), (false, a.len()));
    assert_eq!(again.ingested.duplicates, 0);
    for (u, before) in before_a.iter().enumerate() {
        assert_eq!(&read(&format!("a{u}"))?, before, "a{u}");
    }
    Ok(())
}

/// Events applied under a past catalog version (a cluster node reading a
/// partition from before statements it applied since) count only in the
/// items made by then, and the event history keeps them so: a read as of a
/// past time plans them the same way. The versions noted for log entries
/// read back in order.
#[test]
fn events_applied_under_a_past_catalog_count_only_in_its_items() -> Result<()> {
    let e = MemoryEngine::memory().with_now(T0 + DAY);
    e.set_history(30 * DAY)?;
    e.define(feature("n", "tick", None, FeatureKind::Count))?;
    let v1 = e.note_log_entry(1, None)?.version;
    e.define(feature("m", "tick", None, FeatureKind::Count))?;
    let note = e.note_log_entry(2, Some(3))?;
    let v2 = note.version;
    assert!(v1 < v2);
    let notes: Vec<(u64, u64, Option<u32>)> = e
        .log_notes()?
        .into_iter()
        .map(|(seq, n)| (seq, n.version, n.failed_at))
        .collect();
    assert_eq!(notes, [(1, v1, None), (2, v2, Some(3))]);
    let ticks = |user: &str, from: i64, k: i64| -> Vec<Event> {
        (0..k)
            .map(|i| Event::new(user, "tick", T0 + from + i))
            .collect()
    };
    // A versions list of another length than the events: refused, nothing
    // written.
    assert!(
        e.apply_logs_at(&[(1, 1)], &ticks("u1", 0, 3), &[Some(v1)])
            .is_err()
    );
    assert_eq!(e.log_position(1)?, None);
    // u1's first three under the catalog of v1, u2's under today's.
    let mut events = ticks("u1", 0, 3);
    events.extend(ticks("u2", 0, 2));
    let versions = [Some(v1), Some(v1), Some(v1), None, None];
    e.apply_logs_at(&[(1, 1), (2, 1)], &events, &versions)?;
    let read = |user: &str, at: i64| -> Result<(i64, i64)> {
        let p = e.profile(user, at, DAY)?;
        Ok((count(p.clone(), "n"), count(p, "m")))
    };
    assert_eq!(read("u1", T0 + DAY)?, (3, 0));
    assert_eq!(read("u2", T0 + DAY)?, (2, 2));
    // One more under today's catalog counts in both; as of before it, the
    // history replays the first three as they were planned.
    e.apply_log(1, 2, &ticks("u1", 1_000, 1))?;
    assert_eq!(read("u1", T0 + DAY)?, (4, 1));
    assert_eq!(read("u1", T0 + 500)?, (3, 0));
    // A version at or past today's is today's.
    e.apply_logs_at(&[(3, 1)], &ticks("u3", 0, 1), &[Some(v2 + 10)])?;
    assert_eq!(read("u3", T0 + DAY)?, (1, 1));
    Ok(())
}

/// An event applied under a past catalog version is admitted under that
/// version's declaration of its type: the default it declared then fills
/// a field the event lacks, not today's, and a type declared only since is
/// taken as undeclared.
#[test]
fn events_applied_under_a_past_catalog_take_its_declarations() -> Result<()> {
    use profiledb_storage::catalog::{EventChange, FieldDecl, FieldType, FilterValue};
    let e = MemoryEngine::memory().with_now(T0 + DAY);
    let qty = |default: i64| FieldDecl {
        name: "qty".into(),
        ty: FieldType::Int,
        not_null: false,
        default: Some(FilterValue::Int(default)),
    };
    e.change_events(EventChange::Declare {
        name: "buy".into(),
        fields: vec![qty(1)],
    })?;
    e.define(feature("units", "buy", Some("qty"), FeatureKind::Sum))?;
    let v1 = e.note_log_entry(1, None)?.version;
    // Declared again with another default, and a field added.
    e.change_events(EventChange::Drop { name: "buy".into() })?;
    e.change_events(EventChange::Declare {
        name: "buy".into(),
        fields: vec![qty(5)],
    })?;
    e.change_events(EventChange::AddField {
        event: "buy".into(),
        field: FieldDecl {
            name: "coupon".into(),
            ty: FieldType::String,
            not_null: true,
            default: None,
        },
    })?;
    let v2 = e.note_log_entry(2, None)?.version;
    let buy = |user: &str| Event::new(user, "buy", T0);
    let units = |user: &str| -> Result<Value> {
        Ok(e.profile(user, T0 + DAY, DAY)?
            .and_then(|p| p.get("units").cloned())
            .unwrap_or(Value::Null))
    };
    // Under v1: qty 1, and no coupon needed (v1 did not declare it).
    let outcome = e.apply_logs_at(&[(1, 1)], &[buy("a")], &[Some(v1)])?;
    assert_eq!(outcome.ingested.accepted, 1);
    assert_eq!(units("a")?, Value::Float(1.0));
    // Under v2: qty 5, and the coupon it lacks refuses it (skipped, as a
    // bad event from a log is).
    let outcome = e.apply_logs_at(
        &[(1, 2)],
        &[buy("b"), buy("c").with("coupon", "x")],
        &[Some(v2), Some(v2)],
    )?;
    assert_eq!(outcome.ingested.accepted, 1);
    let skipped: Vec<usize> = outcome.rejected.iter().map(|(i, _)| *i).collect();
    assert_eq!(skipped, [0]);
    assert_eq!(units("b")?, Value::Null);
    assert_eq!(units("c")?, Value::Float(5.0));
    Ok(())
}

/// What applying log entries did is kept for the last `keep` entries, older
/// ones dropped as newer come, gaps or not.
#[test]
fn log_outcomes_keep_the_latest() -> Result<()> {
    let e = MemoryEngine::memory();
    for seq in 1..=5u64 {
        e.put_log_outcome(seq, format!("o{seq}").as_bytes(), 3)?;
    }
    let seqs = |e: &MemoryEngine| -> Result<Vec<u64>> {
        Ok(e.log_outcomes()?.into_iter().map(|(s, _)| s).collect())
    };
    assert_eq!(seqs(&e)?, [3, 4, 5]);
    assert_eq!(e.log_outcomes()?[0].1, b"o3");
    // Written again (a replay adds to it), it stays one.
    e.put_log_outcome(4, b"o4+", 3)?;
    assert_eq!(seqs(&e)?, [3, 4, 5]);
    // After a gap, every one too old goes.
    e.put_log_outcome(10, b"o10", 3)?;
    assert_eq!(seqs(&e)?, [10]);
    Ok(())
}

/// A drop that stops part way (here its chooser panics, as a process killed
/// in the middle would stop) leaves its marks, across a reopen, with the
/// positions already forgotten; run again, it finishes and clears them.
#[test]
fn a_drop_stopped_part_way_is_marked_until_it_is_run_again() -> Result<()> {
    let dir = tempfile::tempdir()?;
    {
        let e = open(dir.path())?;
        full_schema(&e)?;
        e.apply_log(3, 7, &partition_events("a", 4, 2))?;
        e.apply_log(4, 9, &partition_events("b", 4, 2))?;
        let stopped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            e.drop_log_partitions(&[3], &|_| panic!("killed"))
        }));
        assert!(stopped.is_err());
        assert_eq!(e.log_drops()?, [3]);
        assert_eq!(e.log_position(3)?, None);
    }
    let e = open(dir.path())?;
    assert_eq!(e.log_drops()?, [3]);
    assert_eq!((e.log_position(3)?, e.log_position(4)?), (None, Some(9)));
    assert_eq!(e.drop_log_partitions(&[3], &|u| u.starts_with('a'))?, 4);
    assert_eq!(e.log_drops()?, Vec::<u32>::new());
    assert!(e.profile("a0", T0 + DAY, DAY)?.is_none());
    assert!(e.profile("b0", T0 + DAY, DAY)?.is_some());
    Ok(())
}
