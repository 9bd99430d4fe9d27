//! `AS OF T` with the event history kept reads exactly what a database fed
//! only the writes with times at or before T reads at T: every item, for
//! random events arriving late and out of order. The reference is a second
//! database, in memory, fed just those writes; counts, sums and maxima are
//! also checked against sums made here from the events.

mod common;

use common::*;
use profiledb_storage::{
    AttrType, Definition, Event, FeatureKind, MemoryEngine, Pins, Profile, Result, RocksEngine,
    RowNeeds, Value, VectorRule, WindowNeed,
};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

const USERS: usize = 8;
const SPAN: i64 = 3 * DAY;

#[derive(Clone)]
enum Op {
    Ingest(Vec<Event>),
    Attributes(String, i64, i64),
}

fn item(rng: &mut StdRng) -> Vec<f32> {
    (0..4).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// Batches of random events over `USERS` users in `[start, start + 15d)`,
/// shuffled (so most arrive out of time order), and direct attribute writes
/// between them.
fn workload(seed: u64, start: i64) -> Vec<Op> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut events: Vec<Event> = (0..400)
        .map(|_| {
            let user = format!("u{}", rng.random_range(0..USERS));
            let ts = start + rng.random_range(0..15 * DAY);
            match rng.random_range(0..4) {
                0 => Event::new(user, "purchase", ts).with("amount", rng.random_range(1.0..100.0)),
                1 => Event::new(user, "view", ts).with("item_vec", item(&mut rng)),
                2 => Event::new(user, "impression", ts)
                    .with("item_vec", item(&mut rng))
                    .with("clicked", rng.random_range(0..2i64)),
                _ => Event::new(user, "signup", ts)
                    .with("region", ["north", "south", "east"][rng.random_range(0..3)]),
            }
        })
        .collect();
    events.shuffle(&mut rng);
    let mut ops = Vec::new();
    for chunk in events.chunks(25) {
        ops.push(Op::Ingest(chunk.to_vec()));
        let user = format!("u{}", rng.random_range(0..USERS));
        let ts = start + rng.random_range(0..15 * DAY);
        ops.push(Op::Attributes(user, ts, rng.random_range(18..80)));
    }
    ops
}

fn apply<K: profiledb_storage::kv::Kv>(
    e: &profiledb_storage::Engine<K>,
    ops: &[Op],
    upto: i64,
) -> Result<()> {
    for op in ops {
        match op {
            Op::Ingest(events) => {
                let kept: Vec<Event> = events.iter().filter(|e| e.ts <= upto).cloned().collect();
                if !kept.is_empty() {
                    e.ingest(&kept)?;
                }
            }
            Op::Attributes(user, ts, age) if *ts <= upto => {
                e.set_attributes(user, *ts, &[("age".into(), Value::Int(*age))])?;
            }
            Op::Attributes(..) => {}
        }
    }
    Ok(())
}

fn close(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
        (Value::Vector(x), Value::Vector(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|(p, q)| (p - q).abs() <= 1e-5 * p.abs().max(q.abs()).max(1.0))
        }
        _ => a == b,
    }
}

fn same(got: &Profile, want: &Profile) -> std::result::Result<(), String> {
    same_but(got, want, &[])
}

/// [`same`], leaving out the items named in `skip`.
fn same_but(got: &Profile, want: &Profile, skip: &[&str]) -> std::result::Result<(), String> {
    let head = |p: &Profile| (p.user.clone(), p.as_of, p.first_seen, p.last_seen, p.events);
    if head(got) != head(want) {
        return Err(format!("{:?} != {:?}", head(got), head(want)));
    }
    for (g, w) in [
        (&got.attributes, &want.attributes),
        (&got.features, &want.features),
        (&got.vectors, &want.vectors),
    ] {
        for ((gn, gv), (wn, wv)) in g.iter().zip(w) {
            if gn != wn || (!skip.contains(&gn.as_str()) && !close(gv, wv)) {
                return Err(format!("{gn} = {gv:?}, want {wn} = {wv:?}"));
            }
        }
        if g.len() != w.len() {
            return Err("item lists differ".into());
        }
    }
    for ((gn, gb), (wn, wb)) in got.windows.iter().zip(&want.windows) {
        let f = |x: f64| Value::Float(x);
        if gn != wn
            || gb.count != wb.count
            || !close(&f(gb.sum), &f(wb.sum))
            || !close(&f(gb.sumsq), &f(wb.sumsq))
            || (gb.count > 0 && (gb.min != wb.min || gb.max != wb.max))
        {
            return Err(format!("window {gn}: {gb:?}, want {wb:?}"));
        }
    }
    Ok(())
}

/// Every user reads the same as of `t` in `e` and in `reference` (both
/// existing or neither), but for the items named in `skip`.
fn agree(
    e: &RocksEngine,
    reference: &MemoryEngine,
    t: i64,
    skip: &[&str],
    label: &str,
) -> Result<()> {
    for u in 0..USERS {
        let user = format!("u{u}");
        match (
            e.profile(&user, t, SPAN)?,
            reference.profile(&user, t, SPAN)?,
        ) {
            (Some(g), Some(w)) => {
                if let Err(why) = same_but(&g, &w, skip) {
                    panic!("{label} {user} as of {t}: {why}");
                }
            }
            (None, None) => {}
            (g, w) => panic!(
                "{label} {user} as of {t}: {} against {}",
                g.is_some(),
                w.is_some()
            ),
        }
    }
    Ok(())
}

/// Count, sum and maximum of user `user`'s purchases at or before `t`,
/// straight from the events.
fn purchases(ops: &[Op], user: &str, t: i64) -> (i64, f64, Option<f64>) {
    let mut out = (0, 0.0, None::<f64>);
    for op in ops {
        let Op::Ingest(events) = op else { continue };
        for e in events {
            if e.user == user && e.event_type == "purchase" && e.ts <= t {
                let Some(Value::Float(a)) = e.field("amount") else {
                    continue;
                };
                out.0 += 1;
                out.1 += a;
                out.2 = Some(out.2.map_or(*a, |m: f64| m.max(*a)));
            }
        }
    }
    out
}

fn history_db(dir: &std::path::Path) -> Result<RocksEngine> {
    let e = open(dir)?;
    e.set_history(30 * DAY)?;
    full_schema(&e)?;
    Ok(e)
}

#[test]
fn as_of_reads_what_the_writes_up_to_then_give() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let e = history_db(dir.path())?;
    let start = e.now() - 20 * DAY;
    let ops = workload(7, start);
    apply(&e, &ops, i64::MAX)?;
    let mut rng = StdRng::seed_from_u64(8);
    // Random times, and the exact time of some writes (a write at T counts).
    let mut times: Vec<i64> = (0..30)
        .map(|_| start - DAY + rng.random_range(0..17 * DAY))
        .collect();
    if let Some(Op::Ingest(events)) = ops.first() {
        times.extend(events.iter().take(5).map(|e| e.ts));
    }
    let mut replayed = 0;
    for t in times {
        let reference = MemoryEngine::memory();
        full_schema(&reference)?;
        apply(&reference, &ops, t)?;
        for u in 0..USERS {
            let user = format!("u{u}");
            let got = e.profile(&user, t, SPAN)?;
            let want = reference.profile(&user, t, SPAN)?;
            match (&got, &want) {
                (Some(g), Some(w)) => {
                    if let Err(why) = same(g, w) {
                        panic!("{user} as of {t}: {why}");
                    }
                    let (n, sum, max) = purchases(&ops, &user, t);
                    assert_eq!(g.get("purchases"), Some(&Value::Int(n)));
                    assert!(close(
                        g.get("revenue").unwrap_or(&Value::Null),
                        &Value::Float(sum)
                    ));
                    assert_eq!(
                        g.get("largest"),
                        Some(&max.map_or(Value::Null, Value::Float))
                    );
                    if e.profile(&user, e.now(), SPAN)?
                        .is_some_and(|p| p.last_seen > t)
                    {
                        replayed += 1;
                    }
                }
                (None, None) => {}
                _ => panic!(
                    "{user} as of {t}: exists {} against {}",
                    got.is_some(),
                    want.is_some()
                ),
            }
        }
    }
    // The check covered users rebuilt from history, not just the fast path.
    assert!(replayed > 50, "{replayed}");
    Ok(())
}

#[test]
fn a_read_of_one_item_as_of_t_replays_that_item_alone_and_exactly() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let e = history_db(dir.path())?;
    let start = e.now() - 20 * DAY;
    let ops = workload(11, start);
    apply(&e, &ops, i64::MAX)?;
    let mut rng = StdRng::seed_from_u64(12);
    let mut times: Vec<i64> = (0..6)
        .map(|_| start + rng.random_range(0..15 * DAY))
        .collect();
    times.sort_unstable();
    let references = times
        .iter()
        .map(|&t| {
            let reference = MemoryEngine::memory();
            full_schema(&reference)?;
            apply(&reference, &ops, t)?;
            Ok(reference)
        })
        .collect::<Result<Vec<_>>>()?;
    let view = e.view(Pins::NONE)?;
    let catalog = view.bindings().catalog.clone();
    // Each item read alone: its name, and the needs of a read of it at t.
    type Needs = Box<dyn Fn(i64) -> RowNeeds>;
    let mut alone: Vec<(String, Needs)> = Vec::new();
    for d in &catalog.features {
        let id = d.id;
        alone.push((
            d.name.clone(),
            Box::new(move |_| RowNeeds {
                items: Some(vec![id]),
                ..RowNeeds::default()
            }),
        ));
    }
    for d in &catalog.vectors {
        let (id, sgd) = (d.id, matches!(d.rule, VectorRule::Sgd { .. }));
        alone.push((
            d.name.clone(),
            Box::new(move |_| RowNeeds {
                items: Some(if sgd { Vec::new() } else { vec![id] }),
                sgd: if sgd { vec![id] } else { Vec::new() },
                ..RowNeeds::default()
            }),
        ));
    }
    for d in &catalog.attributes {
        alone.push((
            d.name.clone(),
            Box::new(|_| RowNeeds {
                attributes: true,
                items: Some(Vec::new()),
                ..RowNeeds::default()
            }),
        ));
    }
    for d in &catalog.windows {
        let d = d.clone();
        alone.push((
            d.name.clone(),
            Box::new(move |t| RowNeeds {
                windows: vec![WindowNeed::of(&d, t - SPAN, t)],
                items: Some(Vec::new()),
                ..RowNeeds::default()
            }),
        ));
    }
    let (mut checked, mut left_out) = (0, 0);
    for (name, needs_at) in &alone {
        let needs: Vec<RowNeeds> = times
            .iter()
            .map(|&t| RowNeeds {
                history_as_of: Some(t),
                ..needs_at(t)
            })
            .collect();
        let asks: Vec<(i64, &RowNeeds)> = times.iter().copied().zip(&needs).collect();
        for u in 0..USERS {
            let user = format!("u{u}");
            view.rows_as_of(&user, &asks, &mut |k, row| {
                let (t, want) = (times[k], references[k].profile(&user, times[k], SPAN)?);
                let (row, want) = match (row, want) {
                    (Some(r), Some(w)) => (r, w),
                    (None, None) => return Ok(()),
                    (r, w) => panic!(
                        "{user} as of {t}, reading {name}: exists {} against {}",
                        r.is_some(),
                        w.is_some()
                    ),
                };
                let got = Profile::from_row(&catalog, row, &needs[k], t)?;
                let head = |p: &Profile| (p.first_seen, p.last_seen, p.events);
                assert_eq!(head(&got), head(&want), "{user} as of {t}");
                let fine = match (got.window(name), want.window(name)) {
                    (Some(g), Some(w)) => {
                        let f = Value::Float;
                        g.count == w.count
                            && close(&f(g.sum), &f(w.sum))
                            && (g.count == 0 || (g.min, g.max) == (w.min, w.max))
                    }
                    _ => close(
                        got.get(name).unwrap_or(&Value::Null),
                        want.get(name).unwrap_or(&Value::Null),
                    ),
                };
                assert!(
                    fine,
                    "{user} as of {t}: {name} reads {:?} / {:?}, want {:?} / {:?}",
                    got.get(name),
                    got.window(name),
                    want.get(name),
                    want.window(name)
                );
                checked += 1;
                // The other features were not replayed.
                left_out += catalog
                    .features
                    .iter()
                    .filter(|d| d.name != *name && row.features.cell(d.id).is_none())
                    .filter(|d| want.get(&d.name).is_some_and(|v| *v != Value::Null))
                    .count();
                Ok(())
            })?;
        }
    }
    assert!(checked > 100, "{checked}");
    assert!(left_out > 100, "{left_out}");
    Ok(())
}

#[test]
fn the_current_state_is_read_as_it_is_and_without_history_as_of_reads_it_too() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let e = history_db(dir.path())?;
    let start = e.now() - 20 * DAY;
    let ops = workload(9, start);
    apply(&e, &ops, i64::MAX)?;
    // After every write: the fast path, the stored state.
    let later = start + 16 * DAY;
    let reference = MemoryEngine::memory();
    full_schema(&reference)?;
    apply(&reference, &ops, i64::MAX)?;
    for u in 0..USERS {
        let user = format!("u{u}");
        let (Some(g), Some(w)) = (
            e.profile(&user, later, SPAN)?,
            reference.profile(&user, later, SPAN)?,
        ) else {
            panic!("{user} exists in both");
        };
        if let Err(why) = same(&g, &w) {
            panic!("{user}: {why}");
        }
    }
    // With history off, `AS OF` evaluates the stored state: a count
    // includes later purchases.
    let dir = tempfile::tempdir()?;
    let off = open(dir.path())?;
    full_schema(&off)?;
    apply(&off, &ops, i64::MAX)?;
    let t = start + 5 * DAY;
    let (all, ..) = purchases(&ops, "u1", i64::MAX);
    let (before, ..) = purchases(&ops, "u1", t);
    assert!(all > before);
    let p = off.profile("u1", t, SPAN)?.expect("u1 exists");
    assert_eq!(p.get("purchases"), Some(&Value::Int(all)));
    Ok(())
}

/// A database in memory, without history, with `e`'s attributes, features,
/// windows and vectors defined in the same order: fed writes, it is what
/// `e` would be had its items been there from the first write.
fn reference_like(e: &RocksEngine) -> Result<MemoryEngine> {
    let c = e.catalog();
    let r = MemoryEngine::memory().with_now(e.now());
    for d in c.attributes {
        r.define(Definition::Attribute {
            name: d.name,
            ty: d.ty,
            event_type: d.event_type,
        })?;
    }
    for d in c.features {
        r.define(feature(&d.name, &d.event_type, d.field.as_deref(), d.kind))?;
    }
    for d in c.windows {
        r.define(Definition::Window {
            name: d.name,
            event_type: d.event_type,
            field: d.field,
            bucket_ms: d.bucket_ms,
            retain_ms: d.retain_ms,
        })?;
    }
    for d in c.vectors {
        r.define(Definition::Vector {
            name: d.name,
            event_type: d.event_type,
            dim: d.dim,
            rule: d.rule,
        })?;
    }
    Ok(r)
}

/// Items made, and made again, after writes: one of every kind new, and an
/// attribute, a feature, a window and an sgd vector redefined.
fn later_items(e: &RocksEngine) -> Result<()> {
    e.replace(Definition::Attribute {
        name: "region".into(),
        ty: AttrType::String,
        event_type: Some("signup".into()),
    })?;
    e.define(feature(
        "big_spend",
        "purchase",
        Some("amount"),
        FeatureKind::Max,
    ))?;
    e.replace(feature(
        "basket",
        "purchase",
        Some("amount"),
        FeatureKind::DecayedAvg {
            half_life_ms: 3 * DAY,
        },
    ))?;
    e.define(Definition::Window {
        name: "daily_views".into(),
        event_type: "view".into(),
        field: None,
        bucket_ms: DAY,
        retain_ms: 30 * DAY,
    })?;
    e.replace(Definition::Window {
        name: "spend".into(),
        event_type: "purchase".into(),
        field: Some("amount".into()),
        bucket_ms: 6 * HOUR,
        retain_ms: 36_500 * DAY,
    })?;
    e.define(Definition::Vector {
        name: "taste2".into(),
        event_type: "view".into(),
        dim: 4,
        rule: VectorRule::Ewma {
            field: "item_vec".into(),
            half_life_ms: 2 * DAY,
        },
    })?;
    e.replace(Definition::Vector {
        name: "pref".into(),
        event_type: "impression".into(),
        dim: 4,
        rule: VectorRule::Sgd {
            item_field: "item_vec".into(),
            label_field: "clicked".into(),
            learning_rate: 0.2,
            l2: 1e-3,
        },
    })?;
    Ok(())
}

/// `e` reads as a database that had its items from the first write: now
/// and as of random times.
fn reads_as_from_the_start(e: &RocksEngine, ops: &[&[Op]], seed: u64, start: i64) -> Result<()> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut times: Vec<i64> = (0..8)
        .map(|_| start + rng.random_range(0..16 * DAY))
        .collect();
    times.push(e.now());
    for t in times {
        let reference = reference_like(e)?;
        for part in ops {
            apply(&reference, part, t)?;
        }
        agree(e, &reference, t, &[], "")?;
    }
    Ok(())
}

#[test]
fn items_made_or_redefined_after_writes_read_as_if_made_before_them() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let e = history_db(dir.path())?;
    let start = e.now() - 20 * DAY;
    let first = workload(11, start);
    let second = workload(12, start);
    apply(&e, &first, i64::MAX)?;
    later_items(&e)?;
    apply(&e, &second, i64::MAX)?;
    let c = e.catalog();
    assert!(c.building.is_empty());
    let basket = c
        .features
        .iter()
        .find(|f| f.name == "basket")
        .expect("basket");
    assert_eq!(basket.kind.half_life_ms(), Some(3 * DAY));
    assert!(basket.backfilled_from.is_some());
    reads_as_from_the_start(&e, &[&first, &second], 13, start)?;
    // And so after a reopen.
    drop(e);
    let e = open(dir.path())?;
    reads_as_from_the_start(&e, &[&first, &second], 14, start)
}

#[test]
fn items_built_while_writes_go_on_miss_and_double_none_of_them() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let e = history_db(dir.path())?;
    let start = e.now() - 20 * DAY;
    let first = workload(21, start);
    let second = workload(22, start);
    apply(&e, &first, i64::MAX)?;
    std::thread::scope(|s| -> Result<()> {
        let writer = s.spawn(|| apply(&e, &second, i64::MAX));
        later_items(&e)?;
        writer.join().expect("writer")
    })?;
    reads_as_from_the_start(&e, &[&first, &second], 23, start)
}

#[test]
fn items_dropped_since_leave_the_rest_of_the_replay_as_the_store_has_it() -> Result<()> {
    use profiledb_storage::DefKind;
    let dir = tempfile::tempdir()?;
    let e = history_db(dir.path())?;
    let start = e.now() - 20 * DAY;
    let ops = workload(17, start);
    apply(&e, &ops, i64::MAX)?;
    // Impressions feed nothing any more, and `age` is gone.
    let drop_all = |x: &dyn Fn(DefKind, &str) -> Result<()>| -> Result<()> {
        x(DefKind::Feature, "ctr")?;
        x(DefKind::Vector, "pref")?;
        x(DefKind::Attribute, "age")
    };
    drop_all(&|k, n| e.drop_item(k, n))?;
    let mut rng = StdRng::seed_from_u64(18);
    for _ in 0..10 {
        let t = start + rng.random_range(0..16 * DAY);
        let reference = MemoryEngine::memory();
        full_schema(&reference)?;
        apply(&reference, &ops, t)?;
        drop_all(&|k, n| reference.drop_item(k, n))?;
        agree(&e, &reference, t, &[], "")?;
    }
    Ok(())
}

#[test]
fn folding_old_history_into_base_states_changes_no_answer_inside_the_horizon() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let e = open(dir.path())?;
    e.set_history(10 * DAY)?;
    full_schema(&e)?;
    let now = e.now();
    let start = now - 20 * DAY;
    let ops = workload(23, start);
    let (first, second) = ops.split_at(ops.len() / 2);
    apply(&e, first, i64::MAX)?;
    // The horizon reaches back to the start of the day ten days ago.
    let cutoff = (now - 10 * DAY).div_euclid(DAY) * DAY;
    // (The engine may have begun folding by itself, as writes came.)
    e.fold_history()?;
    let bases = e
        .raw_keys("history")?
        .iter()
        .filter(|k| k.len() >= 2 && k[k.len() - 2..] == [0, 0])
        .count();
    assert!(bases > 0);
    // Late writes older than the cutoff arrive after the fold; a second fold
    // takes them in.
    apply(&e, second, i64::MAX)?;
    let check = |e: &RocksEngine, label: &str| -> Result<()> {
        let mut rng = StdRng::seed_from_u64(24);
        for _ in 0..12 {
            let t = cutoff + rng.random_range(0..6 * DAY);
            let reference = MemoryEngine::memory();
            full_schema(&reference)?;
            apply(&reference, &ops, t)?;
            // sgd steps apply in write order, and a late write folded after
            // later ones were applies after them (see the README): the sgd
            // vector is left out.
            agree(e, &reference, t, &["pref"], label)?;
        }
        Ok(())
    };
    check(&e, "after late writes")?;
    e.fold_history()?;
    check(&e, "folded again")?;
    // Nothing older than the cutoff is left in the history but base states.
    for key in e.raw_keys("history")? {
        if let Some((_, ts, _)) = profiledb_storage::history::parse_entry_key(&key) {
            assert!(ts >= cutoff, "{ts} < {cutoff}");
        }
    }
    assert_eq!(e.history_cutoff()?, Some(cutoff));
    // Before the cutoff, a user written since cannot be answered; the error
    // names the oldest time that can.
    let err = e
        .profile("u1", cutoff - DAY, SPAN)
        .expect_err("refused")
        .to_string();
    assert!(err.contains("oldest time"), "{err}");
    drop(e);
    let e = open(dir.path())?;
    check(&e, "reopened")?;
    Ok(())
}

/// The child of [`a_fold_killed_anywhere_loses_and_doubles_nothing`]: folds
/// the database at `PROFILEDB_FOLD_DIR`, saying when it starts.
#[test]
fn fold_child() -> Result<()> {
    let Ok(dir) = std::env::var("PROFILEDB_FOLD_DIR") else {
        return Ok(());
    };
    let e = open(std::path::Path::new(&dir))?;
    println!("folding");
    e.fold_history()?;
    println!("folded");
    Ok(())
}

#[test]
fn a_fold_killed_anywhere_loses_and_doubles_nothing() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut events = Vec::new();
    let start;
    {
        let e = open(dir.path())?;
        // Nothing is old enough to fold while the events go in.
        e.set_history(30 * DAY)?;
        full_schema(&e)?;
        start = e.now() - 20 * DAY;
        let mut rng = StdRng::seed_from_u64(31);
        for _ in 0..40 {
            let batch: Vec<Event> = (0..250)
                .map(|_| {
                    Event::new(
                        format!("u{:03}", rng.random_range(0..300)),
                        "purchase",
                        start + rng.random_range(0..15 * DAY),
                    )
                    .with("amount", f64::from(rng.random_range(1..100u32)))
                })
                .collect();
            e.ingest(&batch)?;
            events.extend(batch);
        }
        // Now ten days: the first five days of events are past it.
        e.set_history(10 * DAY)?;
    }
    let check = |label: &str| -> Result<()> {
        let e = open(dir.path())?;
        let cutoff = e.history_cutoff()?.unwrap_or(i64::MIN);
        for t in [cutoff.max(start), cutoff.max(start) + 2 * DAY, e.now()] {
            for u in 0..300 {
                let user = format!("u{u:03}");
                let mine = events.iter().filter(|ev| ev.user == user && ev.ts <= t);
                let (n, sum) = mine.fold((0u64, 0.0), |(n, s), ev| match ev.field("amount") {
                    Some(Value::Float(a)) => (n + 1, s + a),
                    _ => (n + 1, s),
                });
                let p = e.profile(&user, t, SPAN)?;
                assert_eq!(
                    p.as_ref().map_or(0, |p| p.events),
                    n,
                    "{label}: {user} as of {t}"
                );
                if let Some(p) = p {
                    assert!(
                        close(p.get("revenue").unwrap_or(&Value::Null), &Value::Float(sum)),
                        "{label}: {user} as of {t}"
                    );
                }
            }
        }
        Ok(())
    };
    let dir_s = dir.path().to_string_lossy().to_string();
    for delay_ms in [0u64, 3, 10, 30, 100] {
        let (mut child, stdout) = spawn_test("fold_child", &[("PROFILEDB_FOLD_DIR", &dir_s)])?;
        wait_for(stdout, "folding")?;
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill()?;
        child.wait()?;
        check(&format!("killed after {delay_ms} ms"))?;
    }
    // A whole fold finishes the job: nothing older than the cutoff is left.
    {
        let e = open(dir.path())?;
        e.fold_history()?;
        let cutoff = e.history_cutoff()?.expect("folded");
        for key in e.raw_keys("history")? {
            if let Some((_, ts, _)) = profiledb_storage::history::parse_entry_key(&key) {
                assert!(ts >= cutoff);
            }
        }
    }
    check("folded")
}

/// Builds items over the history of the database in `PROFILEDB_BUILD_DIR`,
/// when run as a child by the test below.
#[test]
fn build_child() -> Result<()> {
    let Ok(dir) = std::env::var("PROFILEDB_BUILD_DIR") else {
        return Ok(());
    };
    let e = open(std::path::Path::new(&dir))?;
    println!("building");
    later_items(&e)?;
    println!("built");
    Ok(())
}

#[test]
fn a_build_killed_anywhere_leaves_the_old_item_or_the_whole_new_one() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let start;
    let ops;
    {
        let e = history_db(dir.path())?;
        start = e.now() - 20 * DAY;
        // Enough users for a build to take a while.
        let mut rng = StdRng::seed_from_u64(41);
        ops = (0..40)
            .map(|_| {
                Op::Ingest(
                    (0..500)
                        .map(|_| {
                            let user = format!("u{:04}", rng.random_range(0..2000));
                            let ts = start + rng.random_range(0..15 * DAY);
                            if rng.random_bool(0.5) {
                                Event::new(user, "purchase", ts)
                                    .with("amount", f64::from(rng.random_range(1..100u32)))
                            } else {
                                Event::new(user, "view", ts).with("item_vec", item(&mut rng))
                            }
                        })
                        .collect(),
                )
            })
            .collect::<Vec<Op>>();
        apply(&e, &ops, i64::MAX)?;
    }
    let users: Vec<String> = (0..2000).map(|u| format!("u{u:04}")).collect();
    let check = |label: &str| -> Result<()> {
        let e = open(dir.path())?;
        let c = e.catalog();
        assert!(c.building.is_empty(), "{label}: a build left half-made");
        // Whatever the catalog holds reads as if it had been there from
        // the first write: the old item, or the whole new one.
        let reference = reference_like(&e)?;
        apply(&reference, &ops, i64::MAX)?;
        let now = e.now();
        for user in &users {
            match (
                e.profile(user, now, SPAN)?,
                reference.profile(user, now, SPAN)?,
            ) {
                (Some(g), Some(w)) => {
                    if let Err(why) = same(&g, &w) {
                        panic!("{label}: {user}: {why}");
                    }
                }
                (None, None) => {}
                (g, w) => panic!("{label}: {user}: {} against {}", g.is_some(), w.is_some()),
            }
        }
        Ok(())
    };
    let dir_s = dir.path().to_string_lossy().to_string();
    for delay_ms in [0u64, 5, 20, 60, 150] {
        let (mut child, stdout) = spawn_test("build_child", &[("PROFILEDB_BUILD_DIR", &dir_s)])?;
        wait_for(stdout, "building")?;
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill()?;
        child.wait()?;
        check(&format!("killed after {delay_ms} ms"))?;
    }
    Ok(())
}
