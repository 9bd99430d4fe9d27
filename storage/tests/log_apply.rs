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
