//! Missing is not wrong: an event without a bound field leaves the items that
//! read it untouched and still feeds every other item; a field of the wrong
//! type still rejects the whole batch.

mod common;

use common::*;
use profiledb_storage::{Definition, Event, FeatureKind, MemoryEngine, Result, Value, VectorRule};

fn engine() -> Result<MemoryEngine> {
    let e = MemoryEngine::memory().with_now(T0 + 10 * DAY);
    e.define(feature("buys", "purchase", None, FeatureKind::Count))?;
    e.define(feature(
        "revenue",
        "purchase",
        Some("amount"),
        FeatureKind::Sum,
    ))?;
    e.define(feature("big", "purchase", Some("amount"), FeatureKind::Max))?;
    e.define(Definition::Window {
        name: "spent".into(),
        event_type: "purchase".into(),
        field: Some("amount".into()),
        bucket_ms: DAY,
        retain_ms: 36_500 * DAY,
    })?;
    e.define(Definition::Vector {
        name: "taste".into(),
        event_type: "purchase".into(),
        dim: 2,
        rule: VectorRule::Ewma {
            field: "item_vec".into(),
            half_life_ms: DAY,
        },
    })?;
    Ok(e)
}

#[test]
fn an_absent_field_leaves_its_items_as_they_were() -> Result<()> {
    let e = engine()?;
    let events = vec![
        Event::new("u1", "purchase", T0)
            .with("amount", 10.0)
            .with("item_vec", vec![1.0f32, 0.0]),
        Event::new("u1", "purchase", T0 + HOUR),
        Event::new("u1", "purchase", T0 + 2 * HOUR).with("amount", Value::Null),
        Event::new("u1", "purchase", T0 + 3 * HOUR).with("amount", 5.0),
    ];
    e.ingest(&events)?;
    let p = e.profile("u1", T0 + DAY, 2 * DAY)?.expect("u1");
    // Four purchases; two carried an amount (10 + 5), one a vector.
    assert_eq!(p.get("buys"), Some(&Value::Int(4)));
    assert_eq!(p.get("revenue"), Some(&Value::Float(15.0)));
    assert_eq!(p.get("big"), Some(&Value::Float(10.0)));
    assert_eq!(p.get("taste"), Some(&Value::Vector(vec![1.0, 0.0])));
    let spent = p.windows.iter().find(|(n, _)| n == "spent").expect("spent");
    assert_eq!((spent.1.count, spent.1.sum), (2, 15.0));
    assert_eq!(p.events, 4);
    // A user whose only purchase carried nothing exists, with empty items.
    e.ingest(&[Event::new("u2", "purchase", T0)])?;
    let p = e.profile("u2", T0 + DAY, DAY)?.expect("u2");
    assert_eq!(p.get("buys"), Some(&Value::Int(1)));
    assert_eq!(p.get("revenue"), Some(&Value::Float(0.0)));
    assert_eq!(p.get("big"), Some(&Value::Null));
    Ok(())
}

#[test]
fn a_present_field_of_the_wrong_type_still_rejects_the_batch() -> Result<()> {
    let e = engine()?;
    let err = e
        .ingest(&[
            Event::new("u1", "purchase", T0).with("amount", 1.0),
            Event::new("u1", "purchase", T0).with("amount", "ten"),
        ])
        .expect_err("refused");
    assert!(err.to_string().contains("amount"), "{err}");
    assert!(e.profile("u1", T0 + DAY, DAY)?.is_none());
    Ok(())
}
