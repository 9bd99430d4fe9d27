//! A full disk: writes fail with a clear error and nothing half-written, reads
//! keep working, writes resume by themselves once space is back, closing on a
//! full disk loses no acknowledged write, and the database opens again with
//! little free space.
//!
//! The test mounts a small tmpfs, which needs root; elsewhere it says so and
//! skips.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use profiledb_storage::{
    AttrType, Definition, EngineOptions, ErrorKind, Event, FeatureKind, Result, RocksEngine, Value,
};

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Tmpfs {
    fn mount(mib: u32) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().ok()?;
        let path = dir.path().to_owned();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(&path)
            .output()
            .ok()?;
        if !out.status.success() {
            eprintln!(
                "skipped: cannot mount a tmpfs here ({}); run as root to test a full disk",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        Some(Tmpfs { _dir: dir, path })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

const T0: i64 = 1_761_955_200_000;

fn options(dir: &Path) -> EngineOptions {
    let mut o = EngineOptions::new(dir);
    // Small memtables: RocksDB resumes once one memtable's worth is free.
    o.write_buffer_bytes = 1 << 20;
    o.block_cache_bytes = 1 << 20;
    o.max_wal_bytes = 4 << 20;
    o.purge_delay = None;
    o
}

fn schema(e: &RocksEngine) -> Result<()> {
    e.define(Definition::Feature {
        name: "n".into(),
        event_type: "hit".into(),
        field: None,
        kind: FeatureKind::Count,
    })?;
    e.define(Definition::Attribute {
        name: "pad".into(),
        ty: AttrType::String,
        event_type: Some("hit".into()),
    })?;
    Ok(())
}

/// Batch `b`: one event for each of 50 users, with a kilobyte of padding.
fn batch(b: i64) -> Vec<Event> {
    (0..50)
        .map(|u| {
            Event::new(format!("user-{u:02}"), "hit", T0 + b)
                .with("pad", format!("{b:08}-{}", "p".repeat(1000)))
        })
        .collect()
}

/// Every user's count, which is the number of batches applied: a batch is all
/// or nothing, so they must all agree.
fn batches_stored(e: &RocksEngine) -> Result<i64> {
    let mut counts = Vec::new();
    for u in 0..50 {
        let p = e.profile(&format!("user-{u:02}"), T0, 1)?;
        counts.push(match p.as_ref().and_then(|p| p.get("n")) {
            Some(Value::Int(n)) => *n,
            _ => 0,
        });
    }
    assert!(counts.iter().all(|c| *c == counts[0]), "{counts:?}");
    Ok(counts[0])
}

/// Fills the file system at `dir` but for about `leave` bytes.
fn fill(dir: &Path, name: &str, leave: u64) -> std::io::Result<()> {
    let out = Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(dir)
        .output()?;
    let avail: u64 = String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    std::fs::write(
        dir.join(name),
        vec![0u8; avail.saturating_sub(leave) as usize],
    )
}

#[test]
fn a_full_disk_recovers_by_itself_and_loses_nothing() -> Result<()> {
    let Some(fs) = Tmpfs::mount(32) else {
        return Ok(());
    };
    let db = fs.path.join("db");
    let e = RocksEngine::open(options(&db))?;
    schema(&e)?;
    fill(&fs.path, "filler", 3 << 20)?;

    // Write until the disk is full.
    let mut acked = 0i64;
    let err = loop {
        match e.ingest(&batch(acked)) {
            Ok(_) => acked += 1,
            Err(err) => break err,
        }
        assert!(acked < 100_000, "the disk never filled");
    };
    assert_eq!(err.kind(), ErrorKind::NoSpace, "{err}");
    assert!(err.to_string().contains("the disk is full"), "{err}");
    // Reads keep working, and show every acknowledged batch, whole.
    assert_eq!(batches_stored(&e)?, acked);

    // Space comes back: writes resume without a restart (bounded wait).
    std::fs::remove_file(fs.path.join("filler"))?;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        match e.ingest(&batch(acked)) {
            Ok(_) => {
                acked += 1;
                break;
            }
            Err(err) => {
                assert_eq!(err.kind(), ErrorKind::NoSpace, "{err}");
                assert!(Instant::now() < deadline, "writes did not resume: {err}");
                std::thread::sleep(Duration::from_millis(250));
            }
        }
    }
    for _ in 0..3 {
        e.ingest(&batch(acked))?;
        acked += 1;
    }
    assert_eq!(batches_stored(&e)?, acked);

    // Full again, and closed while full: nothing acknowledged is lost.
    fill(&fs.path, "filler", 256 << 10)?;
    while e.ingest(&batch(acked)).is_ok() {
        acked += 1;
    }
    drop(e);
    // With no room at all, opening says how much it needs.
    std::fs::remove_file(fs.path.join("filler"))?;
    fill(&fs.path, "filler", 0)?;
    let err = RocksEngine::open(options(&db)).err();
    if let Some(err) = err {
        assert_eq!(err.kind(), ErrorKind::NoSpace, "{err}");
        assert!(
            err.to_string().contains("free, and opening needs about"),
            "{err}"
        );
    }
    // With a little room, less than the write-ahead log holds, it opens:
    // recovery replays the log into memory instead of writing tables.
    std::fs::remove_file(fs.path.join("filler"))?;
    fill(&fs.path, "filler", 3 << 20)?;
    let e = RocksEngine::open(options(&db))?;
    assert_eq!(batches_stored(&e)?, acked);
    drop(e);
    std::fs::remove_file(fs.path.join("filler"))?;
    let e = RocksEngine::open(options(&db))?;
    assert_eq!(batches_stored(&e)?, acked);
    e.ingest(&batch(acked))?;
    assert_eq!(batches_stored(&e)?, acked + 1);
    Ok(())
}
