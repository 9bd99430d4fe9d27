//! Deleting a user removes every key of theirs in every column family.

mod common;

use common::*;
use profiledb_storage::kv::ALL as COLUMN_FAMILIES;
use profiledb_storage::{Event, Result, Value, keys};

fn events(user: &str) -> Vec<Event> {
    vec![
        Event::new(user, "purchase", T0).with("amount", 10.0),
        Event::new(user, "view", T0 + HOUR).with("item_vec", vec![1.0f32, 0.0, 0.0, 0.0]),
        Event::new(user, "impression", T0)
            .with("item_vec", vec![0.0f32, 1.0, 0.0, 0.0])
            .with("clicked", 0),
        Event::new(user, "signup", T0).with("region", "south"),
    ]
}

fn keys_of(e: &profiledb_storage::RocksEngine, user: &str) -> Result<usize> {
    let mut n = 0;
    for cf in COLUMN_FAMILIES {
        n += e
            .raw_keys(cf)?
            .iter()
            .filter(|k| keys::user_of(k) == Some(user))
            .count();
    }
    Ok(n)
}

#[test]
fn delete_leaves_no_key_and_spares_others() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let e = open(dir.path())?;
    full_schema(&e)?;
    e.ingest(&events("u1"))?;
    e.ingest(&events("u10"))?;
    e.set_attributes("u1", T0, &[("age".into(), Value::Int(40))])?;
    e.flush()?;
    assert!(keys_of(&e, "u1")? >= 5);
    assert!(e.delete_user("u1")?);
    assert_eq!(keys_of(&e, "u1")?, 0);
    assert!(e.profile("u1", T0, DAY)?.is_none());
    // "u10" shares the prefix "u1" as a string, but not as a key.
    assert!(e.profile("u10", T0, DAY)?.is_some());
    assert!(keys_of(&e, "u10")? >= 5);
    assert!(!e.delete_user("u1")?);
    // New events after a delete start from nothing.
    e.ingest(&[Event::new("u1", "purchase", T0).with("amount", 3.0)])?;
    let p = e.profile("u1", T0, DAY)?;
    assert_eq!(
        p.as_ref().and_then(|p| p.get("revenue")),
        Some(&Value::Float(3.0))
    );
    assert_eq!(p.as_ref().and_then(|p| p.get("age")), Some(&Value::Null));
    Ok(())
}

#[test]
fn purge_removes_the_data_from_disk() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let e = open(dir.path())?;
    full_schema(&e)?;
    e.ingest(&events("gone"))?;
    e.flush()?;
    assert!(e.delete_user("gone")?);
    e.vacuum()?;
    // After the purge compaction no file of any data family holds an entry or a
    // tombstone: the bytes are gone, not hidden.
    let files = e
        .rocksdb()
        .live_files()
        .map_err(|err| profiledb_storage::Error::Engine(err.to_string()))?;
    for f in files.iter().filter(|f| f.column_family_name != "catalog") {
        assert_eq!(
            (f.num_entries, f.num_deletions),
            (0, 0),
            "{} still holds data",
            f.column_family_name
        );
    }
    assert_eq!(keys_of(&e, "gone")?, 0);
    Ok(())
}

/// A user deleted and written again reads only the new writes, on every read,
/// with the delete's range tombstone and the new writes in one table and the
/// old data in an older one (a cache of lookups that skipped the tombstone
/// would bring the old data back on the second read).
#[test]
fn a_user_written_after_a_delete_reads_the_same_on_every_read() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let e = open(dir.path())?;
    full_schema(&e)?;
    e.ingest(&events("u1"))?;
    e.set_attributes("u1", T0, &[("age".into(), Value::Int(40))])?;
    // The old data in one table; the delete and the new writes in a newer one.
    e.flush()?;
    assert!(e.delete_user("u1")?);
    e.ingest(&[Event::new("u1", "purchase", T0).with("amount", 3.0)])?;
    e.flush()?;
    for read in 0..3 {
        let p = e.profile("u1", T0, DAY)?.expect("u1 exists");
        assert_eq!(p.get("revenue"), Some(&Value::Float(3.0)), "read {read}");
        assert_eq!(p.get("age"), Some(&Value::Null), "read {read}");
        assert_eq!(p.events, 1, "read {read}");
    }
    Ok(())
}

/// A database an earlier version wrote may hold range tombstones (it
/// deleted users by range), which RocksDB's row cache can read past. Such a
/// database opens without the cache; its tombstones are compacted away
/// before any read, and only then is it marked for the cache, which the
/// next open uses. The deleted user stays deleted throughout.
#[test]
fn range_tombstones_of_earlier_versions_go_before_the_row_cache() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let ready = dir.path().join("ROW_CACHE_READY");
    {
        let e = open(dir.path())?;
        full_schema(&e)?;
        e.ingest(&events("u1"))?;
        e.ingest(&events("u2"))?;
        e.flush()?;
    }
    // A new database is ready at once.
    assert!(ready.exists());
    std::fs::remove_file(&ready)?;
    {
        // Opened without the cache (not marked): RocksDB takes a range
        // deletion, as an earlier version wrote one.
        let e = open(dir.path())?;
        let db = e.rocksdb();
        let (lo, hi) = keys::user_range("u1");
        for cf in COLUMN_FAMILIES {
            let h = db.cf_handle(cf).expect("family");
            db.delete_range_cf(h, &lo, &hi)
                .map_err(|err| std::io::Error::other(err.to_string()))?;
            db.flush_cf(h)
                .map_err(|err| std::io::Error::other(err.to_string()))?;
        }
        let props = db
            .property_value_cf(
                db.cf_handle("features").expect("family"),
                "rocksdb.aggregated-table-properties",
            )
            .map_err(|err| std::io::Error::other(err.to_string()))?
            .unwrap_or_default();
        assert!(props.contains("# range deletions=1"), "{props}");
    }
    std::fs::remove_file(&ready)?;
    {
        let e = open(dir.path())?;
        assert!(ready.exists(), "marked once the tombstones are gone");
        let props = e
            .rocksdb()
            .property_value_cf(
                e.rocksdb().cf_handle("features").expect("family"),
                "rocksdb.aggregated-table-properties",
            )
            .map_err(|err| std::io::Error::other(err.to_string()))?
            .unwrap_or_default();
        assert!(props.contains("# range deletions=0"), "{props}");
        assert_eq!(keys_of(&e, "u1")?, 0);
    }
    // With the cache now: read twice, the second from the cache.
    let e = open(dir.path())?;
    for _ in 0..2 {
        assert!(e.profile("u1", T0, DAY)?.is_none());
        assert!(e.profile("u2", T0, DAY)?.is_some());
    }
    Ok(())
}
