//! Feature kinds against references computed here from the events: distinct
//! counts exact while small and within their stated error after, whatever
//! the order the events arrive in, now and as of a past time.

mod common;

use common::*;
use profiledb_storage::{Event, FeatureKind, MemoryEngine, Result, Value};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

fn count(e: &MemoryEngine, user: &str, t: i64) -> Result<i64> {
    match e
        .profile(user, t, DAY)?
        .and_then(|p| p.get("items").cloned())
    {
        Some(Value::Int(n)) => Ok(n),
        other => panic!("items = {other:?}"),
    }
}

#[test]
fn distinct_counts_match_the_events_in_any_order() -> Result<()> {
    let e = MemoryEngine::memory().with_now(T0 + 40 * DAY);
    e.set_history(60 * DAY)?;
    e.define(feature(
        "items",
        "view",
        Some("item"),
        FeatureKind::CountDistinct,
    ))?;
    let mut rng = StdRng::seed_from_u64(9);
    // u_small sees 100 items (exact); u_big sees 20,000 (estimated).
    let mut events = Vec::new();
    for (user, items) in [("u_small", 100u32), ("u_big", 20_000)] {
        for i in 0..items * 2 {
            let item = format!("item{}", rng.random_range(0..items));
            let ts = T0 + rng.random_range(0..30 * DAY);
            events.push((Event::new(user, "view", ts).with("item", item), i));
        }
    }
    events.shuffle(&mut rng);
    let events: Vec<Event> = events.into_iter().map(|(e, _)| e).collect();
    for chunk in events.chunks(997) {
        e.ingest(chunk)?;
    }
    let truth = |user: &str, t: i64| {
        let mut items: Vec<&Value> = events
            .iter()
            .filter(|ev| ev.user == user && ev.ts <= t)
            .filter_map(|ev| ev.field("item"))
            .collect();
        items.sort_by_key(|v| format!("{v:?}"));
        items.dedup();
        items.len() as i64
    };
    let now = e.now();
    assert_eq!(count(&e, "u_small", now)?, truth("u_small", now));
    let (got, want) = (count(&e, "u_big", now)?, truth("u_big", now));
    assert!(
        ((got - want) as f64).abs() / (want as f64) < 0.07,
        "{got} against {want}"
    );
    // As of a past time, from the history: the items seen by then.
    let t = T0 + 10 * DAY;
    assert_eq!(count(&e, "u_small", t)?, truth("u_small", t));
    let (got, want) = (count(&e, "u_big", t)?, truth("u_big", t));
    assert!(
        ((got - want) as f64).abs() / (want as f64) < 0.07,
        "{got} against {want}"
    );
    Ok(())
}

#[test]
fn first_and_last_times_are_those_of_the_events_in_any_order() -> Result<()> {
    let e = MemoryEngine::memory().with_now(T0 + 40 * DAY);
    e.set_history(60 * DAY)?;
    e.define(feature("first", "view", Some("ts"), FeatureKind::Min))?;
    e.define(feature("last", "view", Some("ts"), FeatureKind::Max))?;
    e.define(feature("latest", "view", Some("ts"), FeatureKind::Last))?;
    let mut rng = StdRng::seed_from_u64(12);
    let mut events: Vec<Event> = (0..300)
        .map(|_| {
            let user = format!("u{}", rng.random_range(0..5));
            Event::new(user, "view", T0 + rng.random_range(0..30 * DAY))
        })
        .collect();
    events.shuffle(&mut rng);
    for chunk in events.chunks(37) {
        e.ingest(chunk)?;
    }
    for t in [T0 + 5 * DAY, T0 + 17 * DAY, e.now()] {
        for u in 0..5 {
            let user = format!("u{u}");
            let times: Vec<i64> = events
                .iter()
                .filter(|ev| ev.user == user && ev.ts <= t)
                .map(|ev| ev.ts)
                .collect();
            let p = e.profile(&user, t, DAY)?;
            let want = |x: Option<&i64>| x.map_or(Value::Null, |x| Value::Int(*x));
            let got = |name: &str| {
                p.as_ref()
                    .and_then(|p| p.get(name).cloned())
                    .unwrap_or(Value::Null)
            };
            assert_eq!(got("first"), want(times.iter().min()), "{user} as of {t}");
            assert_eq!(got("last"), want(times.iter().max()), "{user} as of {t}");
            assert_eq!(got("latest"), want(times.iter().max()), "{user} as of {t}");
        }
    }
    Ok(())
}

#[test]
fn a_rate_from_two_event_types_is_decayed_successes_over_decayed_trials() -> Result<()> {
    use profiledb_storage::Definition;
    let e = MemoryEngine::memory().with_now(T0 + 40 * DAY);
    let h = 7 * DAY;
    let rate = FeatureKind::Rate {
        half_life_ms: h,
        prior_a: 1.0,
        prior_b: 20.0,
    };
    e.define(Definition::AlsoOn {
        item: Box::new(feature("ctr", "impression", Some("click"), rate)),
        event_types: vec!["click".into()],
    })?;
    let mut rng = StdRng::seed_from_u64(13);
    let mut events: Vec<Event> = (0..400)
        .map(|_| {
            let kind = if rng.random_bool(0.2) {
                "click"
            } else {
                "impression"
            };
            Event::new("u1", kind, T0 + rng.random_range(0..30 * DAY))
        })
        .collect();
    events.shuffle(&mut rng);
    for chunk in events.chunks(29) {
        e.ingest(chunk)?;
    }
    let t = e.now();
    let decayed = |kind: &str| -> f64 {
        events
            .iter()
            .filter(|ev| ev.event_type == kind)
            .map(|ev| (-((t - ev.ts) as f64) / h as f64).exp2())
            .sum()
    };
    let want = (decayed("click") + 1.0) / (decayed("impression") + 21.0);
    match e.profile("u1", t, DAY)?.and_then(|p| p.get("ctr").cloned()) {
        Some(Value::Float(got)) => assert!(close(got, want, 1e-9), "{got} against {want}"),
        other => panic!("ctr = {other:?}"),
    }
    Ok(())
}

#[test]
fn a_computed_argument_sums_what_the_events_carry() -> Result<()> {
    use profiledb_storage::Definition;
    use profiledb_storage::catalog::{ArithOp, EventExpr};
    let e = MemoryEngine::memory().with_now(T0 + 40 * DAY);
    let field = |f: &str| Box::new(EventExpr::Field { field: f.into() });
    e.define(Definition::Computed {
        item: Box::new(feature("revenue", "sale", Some("value"), FeatureKind::Sum)),
        expr: EventExpr::Arith {
            arith: ArithOp::Mul,
            left: field("price"),
            right: field("qty"),
        },
    })?;
    let mut rng = StdRng::seed_from_u64(14);
    let events: Vec<Event> = (0..300)
        .map(|_| {
            let mut ev = Event::new("u1", "sale", T0 + rng.random_range(0..30 * DAY))
                .with("price", f64::from(rng.random_range(1..100u32)) / 4.0);
            if rng.random_bool(0.8) {
                ev = ev.with("qty", rng.random_range(1..5i64));
            }
            ev
        })
        .collect();
    for chunk in events.chunks(31) {
        e.ingest(chunk)?;
    }
    let want: f64 = events
        .iter()
        .filter_map(|ev| match (ev.field("price"), ev.field("qty")) {
            (Some(Value::Float(p)), Some(Value::Int(q))) => Some(p * *q as f64),
            _ => None,
        })
        .sum();
    match e
        .profile("u1", e.now(), DAY)?
        .and_then(|p| p.get("revenue").cloned())
    {
        Some(Value::Float(got)) => assert!(close(got, want, 1e-12), "{got} against {want}"),
        other => panic!("revenue = {other:?}"),
    }
    Ok(())
}
