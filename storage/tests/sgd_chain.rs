//! sgd vectors apply their steps in write order, stay exact however many events a
//! user has, and keep the chain of pending operands bounded.

mod common;

use common::*;
use profiledb_storage::{Definition, EngineOptions, Event, Result, RocksEngine, Value, VectorRule};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[test]
fn thousands_of_steps_match_the_sequential_reference() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut opts = EngineOptions::new(dir.path());
    opts.max_successive_merges = 16;
    let e = RocksEngine::open(opts)?;
    e.define(Definition::Vector {
        name: "pref".into(),
        event_type: "impression".into(),
        dim: 6,
        rule: VectorRule::Sgd {
            item_field: "item".into(),
            label_field: "clicked".into(),
            learning_rate: 0.1,
            l2: 0.001,
        },
    })?;
    let mut rng = StdRng::seed_from_u64(9);
    let mut u = [0.0f64; 6];
    for i in 0..3000 {
        let item: Vec<f32> = (0..6).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let y = rng.random_bool(0.3);
        // Timestamps deliberately out of order: sgd follows write order, not event time.
        e.ingest(&[Event::new("u", "impression", T0 - i)
            .with("item", item.clone())
            .with("clicked", y)])?;
        let z: f64 = u.iter().zip(&item).map(|(a, &b)| a * f64::from(b)).sum();
        let g = f64::from(u8::from(y)) - 1.0 / (1.0 + (-z).exp());
        for (a, &b) in u.iter_mut().zip(&item) {
            *a += 0.1 * (g * f64::from(b) - 0.001 * *a);
        }
        if i % 1000 == 999 {
            e.flush()?;
        }
    }
    let p = e.profile("u", T0, DAY)?;
    let Some(Value::Vector(got)) = p.as_ref().and_then(|p| p.get("pref")) else {
        panic!("no vector: {p:?}");
    };
    for (g, w) in got.iter().zip(&u) {
        assert!(
            (f64::from(*g) - w).abs() <= 1e-6 * w.abs().max(1e-3),
            "{g} vs {w}"
        );
    }
    // A user without sgd events has no vector.
    e.define(Definition::Attribute {
        name: "age".into(),
        ty: profiledb_storage::AttrType::Int,
        event_type: None,
    })?;
    e.set_attributes("other", T0, &[("age".into(), Value::Int(3))])?;
    let p = e.profile("other", T0, DAY)?;
    assert_eq!(p.as_ref().and_then(|p| p.get("pref")), Some(&Value::Null));
    Ok(())
}
