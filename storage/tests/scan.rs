//! Scans through a read view see every user exactly once, split ranges run in
//! parallel, and every value equals one computed here from the raw events.

mod common;

use std::collections::BTreeMap;

use common::*;
use profiledb_storage::{Event, Pins, Profile, Result, RowNeeds, UserRange, Value};

/// What the test expects of one user, from its raw events alone.
#[derive(Debug, Default, PartialEq)]
struct Naive {
    purchases: i64,
    revenue: f64,
    largest: Option<f64>,
}

#[test]
fn parallel_range_scans_match_the_raw_events() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let e = open(dir.path())?;
    full_schema(&e)?;
    let mut naive: BTreeMap<String, Naive> = BTreeMap::new();
    for chunk in 0..20 {
        let events: Vec<Event> = (0..500)
            .map(|i| {
                let u = format!("user{:05}", (chunk * 500 + i) % 3000);
                Event::new(u, "purchase", T0 + i as i64).with("amount", (i % 17) as f64)
            })
            .collect();
        for ev in &events {
            let n = naive.entry(ev.user.clone()).or_default();
            let Some(Value::Float(x)) = ev.field("amount") else {
                unreachable!("the test wrote a float amount")
            };
            n.purchases += 1;
            n.revenue += x;
            n.largest = Some(n.largest.map_or(*x, |m| m.max(*x)));
        }
        e.ingest(&events)?;
        e.flush()?; // several files, so the split has boundaries to use
    }
    let view = e.view(Pins::NONE)?;
    let ranges = view.split_ranges(4)?;
    assert!(ranges.len() > 1, "expected several ranges, got {ranges:?}");
    let needs = RowNeeds::default();
    let catalog = &view.bindings().catalog;
    let parts: Vec<Vec<Profile>> = std::thread::scope(|s| {
        let handles: Vec<_> = ranges
            .iter()
            .map(|r| {
                let view = &view;
                let needs = &needs;
                s.spawn(move || {
                    let mut out = Vec::new();
                    let mut failed = None;
                    view.scan(r, needs, &mut |row| {
                        match Profile::from_row(catalog, row, needs, T0 + DAY) {
                            Ok(p) => out.push(p),
                            Err(err) => failed = Some(err),
                        }
                        failed.is_none()
                    })?;
                    failed.map_or(Ok(out), Err)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(profiledb_storage::Error::Engine("panic".into())))
            })
            .collect::<Result<Vec<_>>>()
    })?;
    let scanned: Vec<Profile> = parts.into_iter().flatten().collect();
    assert_eq!(
        scanned.iter().map(|p| p.user.as_str()).collect::<Vec<_>>(),
        naive.keys().map(String::as_str).collect::<Vec<_>>()
    );
    for p in &scanned {
        let n = &naive[&p.user];
        assert_eq!(
            p.get("purchases"),
            Some(&Value::Int(n.purchases)),
            "{}",
            p.user
        );
        assert_eq!(
            p.get("revenue"),
            Some(&Value::Float(n.revenue)),
            "{}",
            p.user
        );
        assert_eq!(
            p.get("largest"),
            Some(&n.largest.map_or(Value::Null, Value::Float)),
            "{}",
            p.user
        );
    }
    // An explicit range is half-open.
    let r = UserRange {
        start: Some("user00010".into()),
        end: Some("user00020".into()),
    };
    let mut ids = Vec::new();
    view.scan(&r, &needs, &mut |row| {
        ids.push(row.user.clone());
        true
    })?;
    assert_eq!(
        ids,
        (10..20).map(|i| format!("user{i:05}")).collect::<Vec<_>>()
    );
    Ok(())
}

/// A store flushed once (one file, no boundaries between files to cut at)
/// still splits into as many ranges as asked, about even, and together they
/// hold every user written exactly once.
#[test]
fn a_store_of_one_file_splits_into_even_ranges() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let e = open(dir.path())?;
    full_schema(&e)?;
    let users: Vec<String> = (0..4000).map(|i| format!("user{i:05}")).collect();
    let events: Vec<Event> = users
        .iter()
        .map(|u| Event::new(u.clone(), "purchase", T0).with("amount", 1.0))
        .collect();
    e.ingest(&events)?;
    e.flush()?;
    let view = e.view(Pins::NONE)?;
    let ranges = view.split_ranges(4)?;
    assert_eq!(ranges.len(), 4, "{ranges:?}");
    let mut seen = Vec::new();
    for r in &ranges {
        let mut part = Vec::new();
        view.scan(r, &RowNeeds::default(), &mut |row| {
            part.push(row.user.clone());
            true
        })?;
        assert!(
            (600..=1400).contains(&part.len()),
            "{} users in {r:?}",
            part.len()
        );
        seen.extend(part);
    }
    assert_eq!(seen, users);
    Ok(())
}
