//! The in-memory vector index follows RocksDB: built on first use, then every
//! acknowledged write is visible to the next read (read-your-writes), deleted
//! users leave it at once, and a change of vector definitions rebuilds it.

mod common;

use profiledb_storage::merge::cell::Cell;
use profiledb_storage::{Definition, Event, Pins, Result, RocksEngine, Value, VectorRule};

const T: i64 = 1_794_700_800_000;

fn view(user: &str, v: [f32; 4]) -> Event {
    Event::new(user, "view", T).with("item_vec", v.to_vec())
}

/// (user id, vector) of every row of vector `name`, sorted by user.
fn rows(e: &RocksEngine, name: &str) -> Result<Vec<(String, Vec<f32>)>> {
    let id = e.catalog().vector(name).map_or(u32::MAX, |d| d.id);
    let view = e.view(Pins::VECTORS)?;
    let mut out: Vec<(String, Vec<f32>)> = view
        .vectors(id)
        .map(|t| {
            t.table
                .iter()
                .map(|(_, u, v)| (u.to_owned(), v.to_vec()))
                .collect()
        })
        .unwrap_or_default();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The profile's own reading of the vector, for comparison.
fn profile_vector(e: &RocksEngine, user: &str, name: &str) -> Result<Option<Vec<f32>>> {
    Ok(
        match e.profile(user, T, 1)?.and_then(|p| p.get(name).cloned()) {
            Some(Value::Vector(v)) => Some(v),
            _ => None,
        },
    )
}

#[test]
fn the_index_reads_its_writes() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let e = common::open(dir.path())?;
    common::full_schema(&e)?;
    // Written before the index exists: the first read builds it.
    e.ingest(&[
        view("a", [1.0, 0.0, 0.0, 0.0]),
        view("b", [0.0, 2.0, 0.0, 0.0]),
    ])?;
    assert_eq!(
        rows(&e, "taste")?,
        vec![
            ("a".into(), vec![1.0, 0.0, 0.0, 0.0]),
            ("b".into(), vec![0.0, 2.0, 0.0, 0.0])
        ]
    );
    // Written after: visible to the very next read.
    for i in 0..50 {
        let u = format!("u{i:02}");
        e.ingest(&[view(&u, [i as f32, 1.0, 0.0, 0.0])])?;
        let got = rows(&e, "taste")?;
        let mine = got.iter().find(|(id, _)| *id == u).map(|(_, v)| v.clone());
        assert_eq!(mine, profile_vector(&e, &u, "taste")?, "{u}");
    }
    // A second event moves the mean; the index agrees with the profile.
    e.ingest(&[view("a", [0.0, 0.0, 3.0, 0.0])])?;
    let a = rows(&e, "taste")?.into_iter().find(|(u, _)| u == "a");
    assert_eq!(a.map(|(_, v)| v), profile_vector(&e, "a", "taste")?);

    // sgd vectors too.
    e.ingest(&[Event::new("a", "impression", T)
        .with("item_vec", vec![1.0f32, 0.0, 0.0, 0.0])
        .with("clicked", 1)])?;
    let pref = rows(&e, "pref")?;
    assert_eq!(pref.len(), 1);
    assert_eq!(Some(pref[0].1.clone()), profile_vector(&e, "a", "pref")?);

    // Attributes ride along with each row.
    e.set_attributes("a", T, &[("age".into(), Value::Int(40))])?;
    let id = e.catalog().vector("taste").map_or(0, |d| d.id);
    let age_id = e.catalog().attribute("age").map_or(0, |d| d.id);
    let view = e.view(Pins::VECTORS)?;
    let age = view.vectors(id).and_then(|t| {
        let row = t.table.row_of("a")?;
        match t.users[row].as_ref()?.attributes.cell(age_id) {
            Some(Cell::Attr { value, .. }) => Some(value.clone()),
            _ => None,
        }
    });
    drop(view);
    assert_eq!(age, Some(Value::Int(40)));

    // Deleting a user removes it at once.
    e.delete_user("b")?;
    assert!(rows(&e, "taste")?.iter().all(|(u, _)| u != "b"));
    assert_eq!(rows(&e, "taste")?.len(), 51);

    // A new vector definition rebuilds the index; the old data stays.
    e.define(Definition::Vector {
        name: "mood".into(),
        event_type: "view".into(),
        dim: 2,
        rule: VectorRule::Ewma {
            field: "mood_vec".into(),
            half_life_ms: 1000,
        },
    })?;
    assert!(rows(&e, "mood")?.is_empty());
    assert_eq!(rows(&e, "taste")?.len(), 51);
    assert!(rows(&e, "nothing")?.is_empty());
    Ok(())
}

#[test]
fn concurrent_writes_are_seen_once_acknowledged() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let e = common::open(dir.path())?;
    common::full_schema(&e)?;
    assert!(rows(&e, "taste")?.is_empty());
    std::thread::scope(|s| -> Result<()> {
        let writer = s.spawn(|| -> Result<()> {
            for i in 0..300 {
                e.ingest(&[view(&format!("w{i:03}"), [1.0, i as f32, 0.0, 0.0])])?;
            }
            Ok(())
        });
        // Each read sees at least every user written before it began.
        loop {
            let done = writer.is_finished();
            let before = (0..300)
                .take_while(|i| e.user_exists(&format!("w{i:03}")).unwrap_or(false))
                .count();
            let n = rows(&e, "taste")?.len();
            assert!(n >= before, "{n} rows, {before} written");
            if done {
                break;
            }
        }
        writer
            .join()
            .map_err(|_| profiledb_storage::Error::Engine("writer panicked".into()))?
    })?;
    assert_eq!(rows(&e, "taste")?.len(), 300);
    Ok(())
}

const SNAPSHOT: &str = "vector-index.snapshot";

#[test]
fn snapshots_are_used_only_when_current_and_intact() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let expected;
    {
        let e = common::open(dir.path())?;
        common::full_schema(&e)?;
        e.ingest(&[
            view("a", [1.0, 0.0, 0.0, 0.0]),
            view("b", [0.0, 1.0, 0.0, 0.0]),
        ])?;
        expected = rows(&e, "taste")?;
    }
    // Closing wrote a snapshot covering every write.
    let snap = dir.path().join(SNAPSHOT);
    assert!(snap.exists());
    {
        let e = common::open(dir.path())?;
        assert_eq!(rows(&e, "taste")?, expected, "a current snapshot");
        assert!(e.vector_index_from_snapshot(), "a current snapshot is used");
        // Written after the snapshot was loaded: seen all the same.
        e.ingest(&[view("c", [0.0, 0.0, 1.0, 0.0])])?;
        assert_eq!(rows(&e, "taste")?.len(), 3);
    }
    // A stale snapshot (saved before d was written) must not hide d.
    let stale = std::fs::read(&snap)?;
    {
        let e = common::open(dir.path())?;
        e.ingest(&[view("d", [0.0, 0.0, 0.0, 1.0])])?;
        assert!(e.user_exists("d")?);
    }
    std::fs::write(&snap, &stale)?;
    {
        let e = common::open(dir.path())?;
        let got: Vec<String> = rows(&e, "taste")?.into_iter().map(|(u, _)| u).collect();
        assert_eq!(
            got,
            ["a", "b", "c", "d"],
            "a stale snapshot is rebuilt over"
        );
        assert!(!e.vector_index_from_snapshot());
    }
    // A corrupt snapshot (one flipped byte, or cut short) is never trusted.
    for damage in [0usize, 1] {
        let mut bytes = std::fs::read(&snap)?;
        if damage == 0 {
            let i = bytes.len() - 5;
            bytes[i] ^= 0x40;
        } else {
            bytes.truncate(bytes.len() / 2);
        }
        std::fs::write(&snap, &bytes)?;
        let e = common::open(dir.path())?;
        let got: Vec<String> = rows(&e, "taste")?.into_iter().map(|(u, _)| u).collect();
        assert_eq!(got, ["a", "b", "c", "d"], "damage {damage}");
        assert!(!e.vector_index_from_snapshot());
    }
    Ok(())
}

#[test]
fn checkpoints_carry_a_snapshot() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let e = common::open(dir.path())?;
    common::full_schema(&e)?;
    e.ingest(&[view("a", [1.0, 2.0, 3.0, 4.0])])?;
    let want = rows(&e, "taste")?;
    let copy = dir.path().join("copy");
    e.checkpoint(&copy)?;
    assert!(copy.join(SNAPSHOT).exists());
    let c = common::open(&copy)?;
    assert_eq!(rows(&c, "taste")?, want);
    assert!(c.vector_index_from_snapshot());
    Ok(())
}
