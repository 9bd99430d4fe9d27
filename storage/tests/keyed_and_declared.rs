//! Keyed features and declared event types through the engine: keyed values
//! against per-key sums computed here from the events (in any order, now and
//! as of a past time, made before the events or backfilled after them, in
//! RocksDB across compaction and reopen), and declarations that reject a
//! wrong event with its whole batch and fill defaults that the history keeps.

mod common;

use common::*;
use profiledb_storage::catalog::{EventChange, FieldDecl, FieldType, FilterValue};
use profiledb_storage::kv::Kv;
use profiledb_storage::{
    Definition, Engine, Error, Event, FeatureKind, MemoryEngine, Result, Value,
};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

const H: i64 = 3 * DAY;

fn keyed(name: &str, kind: FeatureKind, field: Option<&str>, top: u32) -> Definition {
    Definition::Keyed {
        item: Box::new(feature(name, "view", field, kind)),
        by: "category".into(),
        top,
    }
}

fn schema<K: Kv>(e: &Engine<K>) -> Result<()> {
    // Six categories: the first two features keep them all, the last three.
    e.define(keyed("cat_views", FeatureKind::Count, None, 8))?;
    e.define(keyed(
        "cat_spend",
        FeatureKind::DecayedSum { half_life_ms: H },
        Some("price"),
        8,
    ))?;
    e.define(keyed("top_views", FeatureKind::Count, None, 3))?;
    Ok(())
}

/// Views over six categories, skewed to the first, some without a category.
fn events(seed: u64) -> Vec<Event> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::new();
    for _ in 0..3000 {
        let user = format!("u{}", rng.random_range(0..20));
        let ts = T0 + rng.random_range(0..20 * DAY);
        let mut ev = Event::new(user, "view", ts).with("price", rng.random_range(1.0..50.0));
        if rng.random_range(0..10) > 0 {
            let c = rng.random_range(0..6).min(rng.random_range(0..6));
            ev = ev.with("category", format!("c{c}"));
        }
        out.push(ev);
    }
    out.shuffle(&mut rng);
    out
}

fn map(e: &Engine<impl Kv>, user: &str, name: &str, t: i64) -> Result<Vec<(String, f64)>> {
    match e.profile(user, t, DAY)?.and_then(|p| p.get(name).cloned()) {
        Some(Value::Map(m)) => Ok(m),
        other => panic!("{name} of {user} = {other:?}"),
    }
}

/// Per category: the views and the decayed spend at `t` of `user`'s events
/// up to `t`.
fn truth(events: &[Event], user: &str, t: i64) -> Vec<(String, f64, f64)> {
    let mut per: std::collections::BTreeMap<String, (f64, f64)> = Default::default();
    for ev in events.iter().filter(|ev| ev.user == user && ev.ts <= t) {
        let Some(Value::String(c)) = ev.field("category") else {
            continue;
        };
        let Some(Value::Float(p)) = ev.field("price") else {
            panic!("price");
        };
        let e = per.entry(c.clone()).or_default();
        e.0 += 1.0;
        e.1 += p * (-((t - ev.ts) as f64) / H as f64).exp2();
    }
    per.into_iter().map(|(c, (n, s))| (c, n, s)).collect()
}

fn check(e: &Engine<impl Kv>, events: &[Event], t: i64) -> Result<()> {
    for u in 0..20 {
        let user = format!("u{u}");
        let want = truth(events, &user, t);
        let views = map(e, &user, "cat_views", t)?;
        let spend = map(e, &user, "cat_spend", t)?;
        assert_eq!(views.len(), want.len(), "{user} at {t}");
        assert_eq!(spend.len(), want.len(), "{user} at {t}");
        for (c, n, s) in &want {
            let v = views.iter().find(|x| x.0 == *c).map(|x| x.1);
            assert_eq!(v, Some(*n), "{user} views of {c}");
            let got = spend.iter().find(|x| x.0 == *c).map_or(f64::NAN, |x| x.1);
            assert!(close(got, *s, 1e-9), "{user} spend on {c}: {got} vs {s}");
        }
        // Largest first.
        assert!(views.windows(2).all(|w| w[0].1 >= w[1].1), "{views:?}");
        // Three kept of six: each within the bound below its true count,
        // which is at most (total − kept) / 4.
        let top = map(e, &user, "top_views", t)?;
        assert!(top.len() <= 3);
        let total: f64 = want.iter().map(|w| w.1).sum();
        let kept: f64 = top.iter().map(|x| x.1).sum();
        let bound = (total - kept) / 4.0;
        for (c, n, _) in &want {
            let got = top.iter().find(|x| x.0 == *c).map_or(0.0, |x| x.1);
            assert!(
                got <= *n && n - got <= bound + 1e-9,
                "{user} top views of {c}: {got} of {n}, bound {bound}"
            );
        }
    }
    Ok(())
}

#[test]
fn keyed_features_are_per_key_sums_in_any_order_now_and_as_of() -> Result<()> {
    let events = events(1);
    let e = MemoryEngine::memory().with_now(T0 + 25 * DAY);
    e.set_history(60 * DAY)?;
    schema(&e)?;
    for chunk in events.chunks(173) {
        e.ingest(chunk)?;
    }
    check(&e, &events, e.now())?;
    check(&e, &events, T0 + 7 * DAY)?;
    Ok(())
}

#[test]
fn keyed_features_made_after_the_events_are_backfilled() -> Result<()> {
    let events = events(2);
    let e = MemoryEngine::memory().with_now(T0 + 25 * DAY);
    e.set_history(60 * DAY)?;
    e.define(feature("views", "view", None, FeatureKind::Count))?;
    e.ingest(&events)?;
    schema(&e)?;
    check(&e, &events, e.now())?;
    check(&e, &events, T0 + 12 * DAY)?;
    Ok(())
}

#[test]
fn keyed_features_survive_compaction_and_reopen() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let events = events(3);
    let now = T0 + 25 * DAY;
    {
        let e = open(dir.path())?.with_now(now);
        schema(&e)?;
        for chunk in events.chunks(101) {
            e.ingest(chunk)?;
        }
        e.compact()?;
        check(&e, &events, now)?;
    }
    let e = open(dir.path())?.with_now(now);
    check(&e, &events, now)?;
    Ok(())
}

fn view_declaration() -> EventChange {
    let field = |name: &str, ty| FieldDecl {
        name: name.into(),
        ty,
        not_null: false,
        default: None,
    };
    EventChange::Declare {
        name: "view".into(),
        fields: vec![
            field("category", FieldType::String),
            FieldDecl {
                not_null: true,
                ..field("price", FieldType::Float)
            },
            FieldDecl {
                default: Some(FilterValue::Int(1)),
                ..field("qty", FieldType::Int)
            },
        ],
    }
}

#[test]
fn a_wrong_event_of_a_declared_type_rejects_its_whole_batch() -> Result<()> {
    let e = MemoryEngine::memory().with_now(T0 + DAY);
    e.change_events(view_declaration())?;
    e.define(feature("views", "view", None, FeatureKind::Count))?;
    let good = Event::new("u1", "view", T0).with("price", 2.0);
    for (bad, field) in [
        (Event::new("u2", "view", T0).with("category", "x"), "price"),
        (
            Event::new("u2", "view", T0)
                .with("price", 1.0)
                .with("size", 3i64),
            "size",
        ),
        (
            Event::new("u2", "view", T0)
                .with("price", 1.0)
                .with("qty", "two"),
            "qty",
        ),
    ] {
        match e.ingest(&[good.clone(), bad]) {
            Err(Error::InvalidEvent {
                index: 1, field: f, ..
            }) => {
                assert_eq!(f.as_deref(), Some(field));
            }
            other => panic!("expected event 1 refused at {field}, got {other:?}"),
        }
        assert!(e.profile("u1", e.now(), DAY)?.is_none(), "nothing written");
    }
    e.ingest(&[good])?;
    assert!(e.profile("u1", e.now(), DAY)?.is_some());
    Ok(())
}

/// A default is filled in as the event is accepted and kept so in the
/// history: an item made later over the defaulted field reads it.
#[test]
fn defaults_are_kept_with_the_event() -> Result<()> {
    let e = MemoryEngine::memory().with_now(T0 + DAY);
    e.set_history(30 * DAY)?;
    e.change_events(view_declaration())?;
    e.define(feature("spend", "view", Some("price"), FeatureKind::Sum))?;
    e.ingest(&[
        Event::new("u1", "view", T0).with("price", 2.0),
        Event::new("u1", "view", T0 + 1)
            .with("price", 3.0)
            .with("qty", 5i64),
    ])?;
    e.define(feature("qty", "view", Some("qty"), FeatureKind::Sum))?;
    let p = e.profile("u1", e.now(), DAY)?.expect("u1");
    assert_eq!(p.get("qty"), Some(&Value::Float(6.0)));
    // Dropping the declaration accepts what it refused.
    let odd = Event::new("u1", "view", T0 + 2).with("colour", "red");
    assert!(e.ingest(std::slice::from_ref(&odd)).is_err());
    e.change_events(EventChange::Drop {
        name: "view".into(),
    })?;
    e.ingest(&[odd])?;
    Ok(())
}
