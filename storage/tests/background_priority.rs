//! RocksDB's flush and compaction threads run at the lowest CPU priority, so
//! that reads and scans come first on a machine with few cores.

mod common;

use common::*;
use profiledb_storage::{Event, FeatureKind, Result};

/// The nice value in a thread's `stat` line: its 19th field, counted after
/// the parenthesized name (which may hold spaces).
fn nice_in(stat: &str) -> i64 {
    let after_name = &stat[stat.rfind(')').expect("stat holds the name") + 2..];
    // Fields from the third (state); nice is the 19th field of the line.
    after_name
        .split(' ')
        .nth(16)
        .expect("nice field")
        .parse()
        .expect("nice is a number")
}

/// The nice value of every thread of this process named `name`, read from
/// `/proc`.
fn nice_of_threads(name: &str) -> Vec<i64> {
    let mut nice = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task") {
        let path = task.expect("task").path();
        let Ok(comm) = std::fs::read_to_string(path.join("comm")) else {
            continue; // the thread ended meanwhile
        };
        if comm.trim_end() != name {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
            continue;
        };
        nice.push(nice_in(&stat));
    }
    nice
}

#[test]
#[cfg(target_os = "linux")]
fn flush_and_compaction_threads_run_at_the_lowest_priority() -> Result<()> {
    let own = || nice_in(&std::fs::read_to_string("/proc/thread-self/stat").expect("stat"));
    // Whatever priority the tests run at (CI may run them niced).
    let before = own();
    let dir = tempfile::tempdir()?;
    let e = open(dir.path())?;
    e.define(feature("n", "tick", None, FeatureKind::Count))?;
    let batch: Vec<Event> = (0..100)
        .map(|i| Event::new(format!("u{i}"), "tick", T0 + i))
        .collect();
    // A flush and a compaction each give a background thread a job, which is
    // when it lowers its priority.
    e.ingest(&batch)?;
    e.flush()?;
    e.ingest(&batch)?;
    e.flush()?;
    e.compact()?;
    let flush = nice_of_threads("rocksdb:high");
    assert!(!flush.is_empty(), "no flush thread found");
    assert!(flush.contains(&19), "flush threads' nice values: {flush:?}");
    let compaction = nice_of_threads("rocksdb:low");
    assert!(!compaction.is_empty(), "no compaction thread found");
    assert!(
        compaction.contains(&19),
        "compaction threads' nice values: {compaction:?}"
    );
    // The caller's own thread keeps its priority.
    assert_eq!(own(), before);
    Ok(())
}
