//! Corrupt or truncated stored values give a corruption error naming the column
//! family and key, never a panic or garbage.

mod common;

use common::*;
use profiledb_storage::{Error, ErrorKind, Event, Pins, Result, RowNeeds, UserRange, keys};

fn expect_corruption(r: Result<impl std::fmt::Debug>, cf: &str, user: &str) {
    match r {
        Err(Error::Corruption { cf: got, key, .. }) => {
            assert_eq!(got, cf);
            assert!(
                key.to_string().contains(user),
                "key {key} does not name {user}"
            );
        }
        other => panic!("expected corruption in {cf}, got {other:?}"),
    }
}

#[test]
fn corrupt_values_are_reported_with_their_key() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let e = open(dir.path())?;
    full_schema(&e)?;
    e.ingest(&[
        Event::new("good", "purchase", T0).with("amount", 1.0),
        Event::new("trunc", "purchase", T0).with("amount", 1.0),
        Event::new("vec", "impression", T0)
            .with("item_vec", vec![1.0f32, 2.0, 3.0, 4.0])
            .with("clicked", true),
        Event::new("win", "view", T0).with("item_vec", vec![1.0f32, 2.0, 3.0, 4.0]),
    ])?;
    // A garbage base value.
    e.raw_put("features", &keys::user_key("junk"), b"\x01\xff\xff garbage")?;
    expect_corruption(e.profile("junk", T0, DAY), "features", "junk");
    // A truncated value of a real record.
    e.flush()?;
    let good = e.raw_keys("features")?;
    assert!(good.iter().any(|k| keys::user_of(k) == Some("trunc")));
    e.raw_put("features", &keys::user_key("trunc"), b"\x01\x02\x00")?;
    expect_corruption(e.profile("trunc", T0, DAY), "features", "trunc");
    // A garbage merge operand on top of a good value fails the merge.
    let sgd = e.catalog().vector("pref").map(|v| v.id).unwrap_or_default();
    e.raw_merge("vectors", &keys::vector_key("vec", sgd), b"\x04\x00")?;
    expect_corruption(e.profile("vec", T0, DAY), "vectors", "vec");
    // A bad window bucket.
    let wid = e.catalog().windows[0].id;
    e.raw_put(
        "windows",
        &keys::window_key("win", wid, keys::bucket_start(T0, HOUR)),
        b"\x02",
    )?;
    expect_corruption(e.profile("win", T0, DAY), "windows", "win");
    // A scan stops at the corruption and reports it, and the good user still reads.
    let view = e.view(Pins::NONE)?;
    let scanned = view.scan(&UserRange::all(), &RowNeeds::default(), &mut |_| true);
    assert!(matches!(scanned, Err(err) if err.kind() == ErrorKind::Corruption));
    assert!(e.profile("good", T0, DAY)?.is_some());
    Ok(())
}
