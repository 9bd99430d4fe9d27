//! Bad events give a clear error naming the event, the field and the reason, and
//! nothing of their batch is written.

mod common;

use common::*;
use profiledb_storage::{Error, Event, Result};

fn data_keys(e: &profiledb_storage::RocksEngine) -> Result<usize> {
    let mut n = 0;
    for cf in ["attributes", "features", "windows", "vectors"] {
        n += e.raw_keys(cf)?.len();
    }
    Ok(n)
}

#[test]
fn each_bad_event_rejects_its_whole_batch() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let e = open(dir.path())?;
    full_schema(&e)?;
    let good = || Event::new("ok", "purchase", T0).with("amount", 5.0);
    let v4 = || vec![0.1f32, 0.2, 0.3, 0.4];
    let cases: Vec<(Event, &str, &str)> = vec![
        (
            Event::new("", "purchase", T0).with("amount", 1.0),
            "user",
            "empty",
        ),
        (
            Event::new("a\0b", "purchase", T0).with("amount", 1.0),
            "user",
            "NUL",
        ),
        (
            Event::new("u", "purchase", i64::MIN).with("amount", 1.0),
            "ts",
            "outside",
        ),
        (
            Event::new("u", "refund", T0).with("amount", 1.0),
            "type",
            "nothing is bound",
        ),
        (
            Event::new("u", "purchase", T0).with("amount", "35"),
            "amount",
            "expected a number",
        ),
        (
            Event::new("u", "purchase", T0).with("amount", f64::NAN),
            "amount",
            "finite",
        ),
        (
            Event::new("u", "purchase", T0).with("amount", f64::INFINITY),
            "amount",
            "finite",
        ),
        (
            Event::new("u", "purchase", T0).with("amount", 1e300),
            "amount",
            "magnitude",
        ),
        (
            Event::new("u", "view", T0).with("item_vec", vec![0.1f32, 0.2]),
            "item_vec",
            "dimension 4",
        ),
        (
            Event::new("u", "view", T0).with("item_vec", vec![0.1f32, f32::NAN, 0.0, 0.0]),
            "item_vec",
            "finite",
        ),
        (
            Event::new("u", "impression", T0)
                .with("item_vec", v4())
                .with("clicked", 2),
            "clicked",
            "label",
        ),
        (
            Event::new("u", "signup", T0).with("region", 7),
            "region",
            "expected STRING",
        ),
    ];
    for (bad, field, reason) in cases {
        let batch = vec![good(), good(), bad.clone()];
        match e.ingest(&batch) {
            Err(Error::InvalidEvent {
                index,
                field: f,
                reason: r,
            }) => {
                assert_eq!(index, 2, "{bad:?}");
                assert_eq!(f.as_deref(), Some(field), "{bad:?}");
                assert!(
                    r.contains(reason),
                    "reason '{r}' lacks '{reason}' for {bad:?}"
                );
            }
            other => panic!("{bad:?} gave {other:?}"),
        }
        assert_eq!(data_keys(&e)?, 0, "a rejected batch wrote data");
    }
    // Unbound fields are ignored; a good batch writes.
    e.ingest(&[good().with("coupon", "XMAS").with("nested", vec![1.0f32])])?;
    assert!(e.profile("ok", T0, DAY)?.is_some());
    Ok(())
}

#[test]
fn bad_json_names_the_event_and_field() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let e = open(dir.path())?;
    full_schema(&e)?;
    let text = r#"[{"user":"a","type":"purchase","ts":1761991200000,"amount":1},
                   {"user":"b","type":"purchase","ts":"not a time","amount":1}]"#;
    match e.ingest_json(text) {
        Err(Error::InvalidEvent {
            index: 1,
            field: Some(f),
            ..
        }) => assert_eq!(f, "ts"),
        other => panic!("{other:?}"),
    }
    match e.ingest_json("{\"user\":\"a\",") {
        Err(Error::InvalidEvent {
            index: 0, reason, ..
        }) => assert!(reason.contains("invalid JSON")),
        other => panic!("{other:?}"),
    }
    assert_eq!(data_keys(&e)?, 0);
    assert_eq!(
        e.ingest_json(r#"{"user":"a","type":"purchase","ts":"2025-11-01T10:00:00Z","amount":2}"#)?,
        1
    );
    Ok(())
}

#[test]
fn bad_attribute_writes_are_refused_whole() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let e = open(dir.path())?;
    full_schema(&e)?;
    let good = ("age".to_string(), profiledb_storage::Value::Int(30));
    for bad in [
        ("height".to_string(), profiledb_storage::Value::Int(180)),
        (
            "age".to_string(),
            profiledb_storage::Value::String("thirty".into()),
        ),
        ("age".to_string(), profiledb_storage::Value::Float(30.5)),
    ] {
        let err = e.set_attributes("u", T0, &[good.clone(), bad.clone()]);
        match err {
            Err(Error::InvalidArgument(msg)) => assert!(msg.contains(&bad.0), "{msg}"),
            other => panic!("{bad:?} gave {other:?}"),
        }
        assert_eq!(data_keys(&e)?, 0, "a refused attribute write wrote data");
    }
    e.set_attributes("u", T0, &[good])?;
    let p = e.profile("u", T0, DAY)?;
    assert_eq!(
        p.and_then(|p| p.get("age").cloned()),
        Some(profiledb_storage::Value::Int(30))
    );
    Ok(())
}
