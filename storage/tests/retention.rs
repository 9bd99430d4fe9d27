//! Window buckets older than the retention period are never read, and are
//! dropped by compaction.

mod common;

use common::*;
use profiledb_storage::{Definition, Event, Result};

#[test]
fn expired_buckets_are_never_read_and_compaction_drops_them() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let e = open(dir.path())?;
    e.define(Definition::Window {
        name: "clicks".into(),
        event_type: "click".into(),
        field: None,
        bucket_ms: HOUR,
        retain_ms: 2 * DAY,
    })?;
    let now = e.now();
    let old = now - 10 * DAY;
    let recent = now - HOUR;
    e.ingest(&[
        Event::new("u", "click", old),
        Event::new("u", "click", old + 1),
        Event::new("u", "click", recent),
    ])?;
    let recent_only = |buckets: Vec<(i64, profiledb_storage::Bucket)>| {
        buckets
            .iter()
            .map(|(start, b)| (*start, b.count))
            .collect::<Vec<_>>()
            == vec![(profiledb_storage::keys::bucket_start(recent, HOUR), 1)]
    };
    // Stored, but past retention: a read skips it before compaction runs.
    assert_eq!(e.raw_keys("windows")?.len(), 2);
    assert!(recent_only(e.window_buckets(
        "u",
        "clicks",
        old - DAY,
        now
    )?));
    let p = e.profile("u", now, 20 * DAY)?.expect("u exists");
    assert_eq!(p.window("clicks").map(|b| b.count), Some(1));
    e.compact()?;
    assert!(recent_only(e.window_buckets(
        "u",
        "clicks",
        old - DAY,
        now
    )?));
    assert_eq!(e.raw_keys("windows")?.len(), 1);
    Ok(())
}

#[test]
fn range_reads_return_buckets_in_the_span() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let e = open(dir.path())?;
    e.define(Definition::Window {
        name: "spend".into(),
        event_type: "purchase".into(),
        field: Some("amount".into()),
        bucket_ms: DAY,
        retain_ms: 10_000 * DAY,
    })?;
    // One purchase a day for 10 days: amount = day number.
    let evs: Vec<Event> = (0..10)
        .map(|d| Event::new("u", "purchase", T0 + d * DAY + 5 * HOUR).with("amount", d as f64))
        .collect();
    e.ingest(&evs)?;
    // [T0+7d+1h, T0+9d+1h] touches the buckets of days 7, 8 and 9; day 7's counts whole.
    let b = e.window_buckets("u", "spend", T0 + 7 * DAY + HOUR, T0 + 9 * DAY + HOUR)?;
    assert_eq!(
        b.iter().map(|x| x.1.sum).collect::<Vec<_>>(),
        vec![7.0, 8.0, 9.0]
    );
    let p = e.profile("u", T0 + 9 * DAY + HOUR, 2 * DAY)?;
    let w = p.as_ref().and_then(|p| p.window("spend")).copied();
    assert_eq!(
        w.map(|w| (w.count, w.sum, w.min(), w.max())),
        Some((3, 24.0, Some(7.0), Some(9.0)))
    );
    Ok(())
}
