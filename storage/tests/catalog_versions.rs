//! The catalog persists, and state written under a dropped definition never leaks
//! into a new definition of the same name.

mod common;

use common::*;
use profiledb_storage::{DefKind, Definition, Event, FeatureKind, Result, Value, VectorRule, keys};

#[test]
fn redefining_a_name_starts_from_nothing_and_old_state_is_purged() -> Result<()> {
    let dir = tempfile::tempdir()?;
    {
        let e = open(dir.path())?;
        e.define(feature(
            "score",
            "purchase",
            Some("amount"),
            FeatureKind::Sum,
        ))?;
        e.define(Definition::Vector {
            name: "v".into(),
            event_type: "purchase".into(),
            dim: 2,
            rule: VectorRule::Ewma {
                field: "vec".into(),
                half_life_ms: DAY,
            },
        })?;
        let buy = |ts, x: f64| {
            Event::new("u", "purchase", ts)
                .with("amount", x)
                .with("vec", vec![1.0f32, 1.0])
        };
        e.ingest(&[buy(T0, 10.0), buy(T0 + 1, 20.0)])?;
        let v1 = e.catalog().version;
        e.drop_item(DefKind::Feature, "score")?;
        e.drop_item(DefKind::Vector, "v")?;
        assert!(e.catalog().version > v1);
        // Same name, another kind and half-life: old sums must not show through.
        e.define(feature(
            "score",
            "purchase",
            Some("amount"),
            FeatureKind::DecayedSum { half_life_ms: DAY },
        ))?;
        e.ingest(&[Event::new("u", "purchase", T0 + DAY).with("amount", 4.0)])?;
        let p = e.profile("u", T0 + 2 * DAY, DAY)?;
        assert_eq!(
            p.as_ref().and_then(|p| p.get("score")),
            Some(&Value::Float(2.0))
        );
        assert_eq!(p.as_ref().map(|p| p.vectors.len()), Some(0));
        assert!(matches!(
            e.drop_item(DefKind::Feature, "nope"),
            Err(profiledb_storage::Error::NotFound { .. })
        ));
    }
    // After reopening, the catalog is the new one and old state stays gone, also on disk.
    let e = open(dir.path())?;
    let cat = e.catalog();
    assert_eq!(cat.features.len(), 1);
    assert!(matches!(
        cat.features[0].kind,
        FeatureKind::DecayedSum { .. }
    ));
    let p = e.profile("u", T0 + 2 * DAY, DAY)?;
    assert_eq!(
        p.as_ref().and_then(|p| p.get("score")),
        Some(&Value::Float(2.0))
    );
    e.compact()?;
    assert!(
        e.raw_keys("vectors")?.is_empty(),
        "dropped vector survived compaction"
    );
    let rec = e
        .raw_get("features", &keys::user_key("u"))?
        .unwrap_or_default();
    let rec = profiledb_storage::merge::record::Record::decode(&rec)
        .map_err(|err| profiledb_storage::Error::InvalidArgument(err.to_string()))?;
    let live: Vec<u32> = rec.ids().collect();
    assert_eq!(
        live,
        vec![0, cat.features[0].id],
        "dropped feature's cell is still stored"
    );
    Ok(())
}
