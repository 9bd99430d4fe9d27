//! Kill the writer at random points, reopen, and check that every acknowledged
//! batch is there. The writer is this test binary re-run as a child process.

mod common;

use std::io::{BufRead, BufReader};

use common::*;
use profiledb_storage::{
    EngineOptions, Event, FeatureKind, Result, RocksEngine, SyncPolicy, Value,
};

const BATCH: i64 = 50;

fn writer(dir: &str, policy: &str) -> Result<()> {
    let mut opts = EngineOptions::new(dir);
    opts.sync = match policy {
        "every" => SyncPolicy::EveryBatch,
        "group" => SyncPolicy::Group,
        _ => SyncPolicy::None,
    };
    let e = RocksEngine::open(opts)?;
    if e.catalog().feature("n").is_none() {
        e.define(feature("n", "tick", None, FeatureKind::Count))?;
    }
    for b in 0.. {
        let events: Vec<Event> = (0..BATCH)
            .map(|i| Event::new(format!("u{}", i % 7), "tick", T0 + b * BATCH + i))
            .collect();
        e.ingest(&events)?;
        println!("ack {b}");
    }
    Ok(())
}

/// Entry point of the child process; a no-op when run as a normal test.
#[test]
fn crash_writer_child() -> Result<()> {
    match (
        std::env::var("PROFILEDB_CRASH_DIR"),
        std::env::var("PROFILEDB_CRASH_SYNC"),
    ) {
        (Ok(dir), Ok(policy)) => writer(&dir, &policy),
        _ => Ok(()),
    }
}

fn total(e: &RocksEngine) -> Result<i64> {
    let mut n = 0;
    for u in 0..7 {
        if let Some(p) = e.profile(&format!("u{u}"), T0, DAY)? {
            match p.get("n") {
                Some(Value::Int(c)) => n += c,
                other => panic!("count {other:?}"),
            }
        }
    }
    Ok(n)
}

#[test]
fn acknowledged_batches_survive_kill() -> Result<()> {
    for (round, policy) in ["none", "every", "group", "none"].into_iter().enumerate() {
        let dir = tempfile::tempdir()?;
        let dir_s = dir.path().to_string_lossy().to_string();
        let mut acked: i64 = -1;
        // Two kills per database: recovery after recovery must hold too.
        for kill in 0..2 {
            let (mut child, stdout) = spawn_test(
                "crash_writer_child",
                &[
                    ("PROFILEDB_CRASH_DIR", &dir_s),
                    ("PROFILEDB_CRASH_SYNC", policy),
                ],
            )?;
            let target = 5 + ((round * 37 + kill * 11) % 40) as i64;
            let mut seen = 0;
            for line in BufReader::new(stdout).lines() {
                let line = line?;
                if let Some(n) = line.strip_prefix("ack ") {
                    seen += 1;
                    acked += 1;
                    assert!(n.parse::<i64>().is_ok());
                    if seen >= target {
                        break;
                    }
                }
            }
            child.kill()?;
            child.wait()?;
            let e = RocksEngine::open(EngineOptions::new(dir.path()))?;
            let n = total(&e)?;
            // Every acknowledged batch is there; at most the batches in flight beyond.
            let want = (acked + 1) * BATCH;
            assert!(
                n >= want,
                "{policy}: {n} events recovered, {want} acknowledged"
            );
            assert_eq!(n % BATCH, 0, "{policy}: a batch was half applied");
            acked = n / BATCH - 1;
        }
    }
    Ok(())
}
