//! Scans yield the same profiles as point reads, and split ranges cover every
//! user exactly once, so scans can run in parallel.

mod common;

use common::*;
use profiledb_storage::{Event, Result, UserRange};

#[test]
fn parallel_range_scans_equal_point_reads() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let e = open(dir.path())?;
    full_schema(&e)?;
    let mut users = Vec::new();
    for chunk in 0..20 {
        let events: Vec<Event> = (0..500)
            .map(|i| {
                let u = format!("user{:05}", (chunk * 500 + i) % 3000);
                Event::new(u, "purchase", T0 + i as i64).with("amount", (i % 17) as f64)
            })
            .collect();
        e.ingest(&events)?;
        e.flush()?; // several files, so the split has boundaries to use
    }
    for u in 0..3000 {
        users.push(format!("user{u:05}"));
    }
    let ranges = e.split_ranges(4)?;
    assert!(ranges.len() > 1, "expected several ranges, got {ranges:?}");
    let parts: Vec<Vec<profiledb_storage::Profile>> = std::thread::scope(|s| {
        let handles: Vec<_> = ranges
            .iter()
            .map(|r| s.spawn(|| e.scan(r, T0 + DAY, DAY)?.collect::<Result<Vec<_>>>()))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(profiledb_storage::Error::Engine("panic".into())))
            })
            .collect::<Result<Vec<_>>>()
    })?;
    let scanned: Vec<_> = parts.into_iter().flatten().collect();
    assert_eq!(scanned.len(), users.len());
    for (p, u) in scanned.iter().zip(&users) {
        assert_eq!(&p.user, u);
        assert_eq!(Some(p), e.profile(u, T0 + DAY, DAY)?.as_ref());
    }
    // An explicit range is half-open.
    let r = UserRange {
        start: Some("user00010".into()),
        end: Some("user00020".into()),
    };
    let ids: Vec<String> = e
        .scan(&r, T0, DAY)?
        .map(|p| p.map(|p| p.user))
        .collect::<Result<_>>()?;
    assert_eq!(
        ids,
        (10..20).map(|i| format!("user{i:05}")).collect::<Vec<_>>()
    );
    Ok(())
}
