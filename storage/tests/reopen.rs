//! Everything written survives closing and reopening the database.

mod common;

use common::*;
use profiledb_storage::{Event, Result, Value};

#[test]
fn reopen_keeps_catalog_and_data() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let before = {
        let e = open(dir.path())?;
        full_schema(&e)?;
        e.ingest(&[
            Event::new("u1", "purchase", T0).with("amount", 35.0),
            Event::new("u1", "purchase", T0 + HOUR).with("amount", 12.5),
            Event::new("u1", "view", T0 + 2 * HOUR).with("item_vec", vec![1.0f32, 0.0, 0.5, 0.0]),
            Event::new("u1", "impression", T0 + 3 * HOUR)
                .with("item_vec", vec![0.0f32, 1.0, 0.0, 0.0])
                .with("clicked", true),
            Event::new("u1", "signup", T0).with("region", "north"),
        ])?;
        e.set_attributes("u1", T0, &[("age".into(), Value::Int(31))])?;
        (e.catalog(), e.profile("u1", T0 + DAY, DAY)?)
    };
    let e = open(dir.path())?;
    assert_eq!(e.catalog(), before.0);
    let after = e.profile("u1", T0 + DAY, DAY)?;
    assert_eq!(after, before.1);
    let p = after.ok_or_else(|| profiledb_storage::Error::InvalidArgument("u1 missing".into()))?;
    assert_eq!(p.get("purchases"), Some(&Value::Int(2)));
    assert_eq!(p.get("revenue"), Some(&Value::Float(47.5)));
    assert_eq!(p.get("region"), Some(&Value::String("north".into())));
    assert_eq!(p.get("age"), Some(&Value::Int(31)));
    assert_eq!(
        p.get("taste"),
        Some(&Value::Vector(vec![1.0, 0.0, 0.5, 0.0]))
    );
    assert_eq!(p.events, 5);
    Ok(())
}

#[test]
fn open_without_create_fails_clearly_and_second_open_is_locked() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut opts = profiledb_storage::EngineOptions::new(dir.path().join("nope"));
    opts.create_if_missing = false;
    let err = profiledb_storage::RocksEngine::open(opts).err();
    assert_eq!(
        err.map(|e| e.kind()),
        Some(profiledb_storage::ErrorKind::NotFound)
    );
    let _held = open(dir.path())?;
    let err = open(dir.path()).err();
    assert_eq!(
        err.map(|e| e.kind()),
        Some(profiledb_storage::ErrorKind::Locked)
    );
    Ok(())
}
