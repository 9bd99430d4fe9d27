//! Differential test of the whole engine: random events, ingested in order or
//! shuffled, in random batches with flushes and compactions between them, read
//! back equal to a straightforward model within float rounding.

mod common;

use common::*;
use profiledb_storage::{Event, Result, RocksEngine, Value};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

#[derive(Clone)]
struct Ev {
    user: String,
    kind: u8,
    ts: i64,
    x: f64,
    clicked: bool,
    vec: Vec<f32>,
}

fn to_event(e: &Ev) -> Event {
    match e.kind {
        0 => Event::new(&e.user, "purchase", e.ts).with("amount", e.x),
        1 => Event::new(&e.user, "view", e.ts).with("item_vec", e.vec.clone()),
        _ => Event::new(&e.user, "impression", e.ts)
            .with("item_vec", e.vec.clone())
            .with("clicked", e.clicked),
    }
}

fn generate(rng: &mut StdRng, n: usize) -> Vec<Ev> {
    (0..n)
        .map(|_| Ev {
            user: format!("u{}", rng.random_range(0..12)),
            kind: rng.random_range(0..3),
            ts: T0 + rng.random_range(0..40 * DAY),
            x: (rng.random_range(1.0..300.0f64) * 100.0).round() / 100.0,
            clicked: rng.random_bool(0.2),
            vec: (0..4).map(|_| rng.random_range(-1.0f32..1.0)).collect(),
        })
        .collect()
}

fn ingest_chaotically(e: &RocksEngine, rng: &mut StdRng, evs: &[Ev]) -> Result<()> {
    let mut i = 0;
    while i < evs.len() {
        let n = rng.random_range(1..40).min(evs.len() - i);
        let batch: Vec<Event> = evs[i..i + n].iter().map(to_event).collect();
        e.ingest(&batch)?;
        match rng.random_range(0..10) {
            0 => e.flush()?,
            1 => e.compact()?,
            _ => {}
        }
        i += n;
    }
    Ok(())
}

fn num(v: Option<&Value>) -> f64 {
    match v {
        Some(Value::Float(f)) => *f,
        Some(Value::Int(i)) => *i as f64,
        other => panic!("not a number: {other:?}"),
    }
}

fn check(e: &RocksEngine, evs: &[Ev], as_of: i64) -> Result<()> {
    let decay = |ts: i64, h: i64| (-((as_of.max(ts) - ts) as f64) / h as f64).exp2();
    for u in 0..12 {
        let user = format!("u{u}");
        let mine: Vec<&Ev> = evs.iter().filter(|e| e.user == user).collect();
        let p = e.profile(&user, as_of, 3 * DAY)?;
        let Some(p) = p else {
            assert!(mine.is_empty(), "{user} missing");
            continue;
        };
        let buys: Vec<&&Ev> = mine.iter().filter(|e| e.kind == 0).collect();
        let views: Vec<&&Ev> = mine.iter().filter(|e| e.kind == 1).collect();
        let imps: Vec<&&Ev> = mine.iter().filter(|e| e.kind == 2).collect();
        assert_eq!(p.events as usize, mine.len());
        assert_eq!(num(p.get("purchases")), buys.len() as f64);
        let sum: f64 = buys.iter().map(|e| e.x).sum();
        assert!(close(num(p.get("revenue")), sum, 1e-9));
        if buys.is_empty() {
            for f in ["smallest", "largest", "latest", "basket"] {
                assert_eq!(p.get(f), Some(&Value::Null), "{f}");
            }
        } else {
            let min = buys.iter().map(|e| e.x).fold(f64::INFINITY, f64::min);
            let max = buys.iter().map(|e| e.x).fold(f64::NEG_INFINITY, f64::max);
            let last = buys
                .iter()
                .max_by(|a, b| a.ts.cmp(&b.ts).then(a.x.total_cmp(&b.x)))
                .map(|e| e.x)
                .unwrap_or_default();
            assert_eq!(num(p.get("smallest")), min);
            assert_eq!(num(p.get("largest")), max);
            assert_eq!(num(p.get("latest")), last);
            let h = 30 * DAY;
            let tmax = buys.iter().map(|e| e.ts).max().unwrap_or_default();
            let w = |ts: i64| (-((tmax - ts) as f64) / h as f64).exp2();
            let avg = buys.iter().map(|e| e.x * w(e.ts)).sum::<f64>()
                / buys.iter().map(|e| w(e.ts)).sum::<f64>();
            assert!(close(num(p.get("basket")), avg, 1e-9));
        }
        // Decayed values read at max(as_of, latest event): never growing backwards.
        let tmax_buy = buys.iter().map(|e| e.ts).max().unwrap_or(as_of);
        let at = as_of.max(tmax_buy);
        let spend: f64 = buys
            .iter()
            .map(|e| e.x * (-((at - e.ts) as f64) / (7 * DAY) as f64).exp2())
            .sum();
        assert!(
            close(num(p.get("spend_7d")), spend, 1e-9),
            "{} vs {spend}",
            num(p.get("spend_7d"))
        );
        let tmax_view = views.iter().map(|e| e.ts).max().unwrap_or(as_of);
        let atv = as_of.max(tmax_view);
        let visits: f64 = views
            .iter()
            .map(|e| (-((atv - e.ts) as f64) / (7 * DAY) as f64).exp2())
            .sum();
        assert!(close(num(p.get("visits")), visits, 1e-9));
        let (mut a, mut b) = (0.0, 0.0);
        for i in &imps {
            let w = decay(i.ts, 14 * DAY);
            if i.clicked { a += w } else { b += w }
        }
        let tmax_imp = imps.iter().map(|e| e.ts).max().unwrap_or(as_of);
        if tmax_imp <= as_of {
            let ctr = (a + 1.0) / (a + b + 21.0);
            assert!(
                close(num(p.get("ctr")), ctr, 1e-9),
                "{} vs {ctr}",
                num(p.get("ctr"))
            );
        }
        // Window: purchase buckets of 1 day overlapping [as_of - 3d, as_of]; both edge
        // buckets count whole.
        let lo = (as_of - 3 * DAY).div_euclid(DAY) * DAY;
        let hi = as_of.div_euclid(DAY) * DAY + DAY;
        let in_span: Vec<f64> = buys
            .iter()
            .filter(|e| e.ts >= lo && e.ts < hi)
            .map(|e| e.x)
            .collect();
        let w = p
            .window("spend")
            .copied()
            .unwrap_or_else(profiledb_storage::Bucket::empty);
        assert_eq!(w.count as usize, in_span.len());
        assert!(close(w.sum, in_span.iter().sum(), 1e-9));
        // Taste: decayed mean of view vectors.
        match p.get("taste") {
            Some(Value::Vector(v)) => {
                let tm = views.iter().map(|e| e.ts).max().unwrap_or_default();
                let wt = |ts: i64| (-((tm - ts) as f64) / (14 * DAY) as f64).exp2();
                let den: f64 = views.iter().map(|e| wt(e.ts)).sum();
                for (d, got) in v.iter().enumerate() {
                    let want = views
                        .iter()
                        .map(|e| f64::from(e.vec[d]) * wt(e.ts))
                        .sum::<f64>()
                        / den;
                    assert!((f64::from(*got) - want).abs() < 1e-6, "{got} vs {want}");
                }
            }
            Some(Value::Null) => assert!(views.is_empty()),
            other => panic!("taste {other:?}"),
        }
    }
    Ok(())
}

#[test]
fn shuffled_batched_compacted_ingest_matches_model() -> Result<()> {
    let mut rng = StdRng::seed_from_u64(42);
    let evs = generate(&mut rng, 1500);
    let d1 = tempfile::tempdir()?;
    let in_order = open(d1.path())?;
    full_schema(&in_order)?;
    let mut sorted = evs.clone();
    sorted.sort_by_key(|e| e.ts);
    ingest_chaotically(&in_order, &mut rng, &sorted)?;

    let d2 = tempfile::tempdir()?;
    let shuffled = open(d2.path())?;
    full_schema(&shuffled)?;
    let mut mixed = evs.clone();
    mixed.shuffle(&mut rng);
    ingest_chaotically(&shuffled, &mut rng, &mixed)?;

    for as_of in [T0 + 20 * DAY, T0 + 41 * DAY, T0 + 100 * DAY] {
        check(&in_order, &evs, as_of)?;
        check(&shuffled, &evs, as_of)?;
    }
    Ok(())
}

#[test]
fn extreme_times_never_give_inf_or_nan() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let e = open(dir.path())?;
    full_schema(&e)?;
    let lo = profiledb_storage::time::MIN_TS;
    let hi = profiledb_storage::time::MAX_TS;
    e.ingest(&[
        Event::new("x", "purchase", lo).with("amount", 1e100),
        Event::new("x", "purchase", hi).with("amount", 2.0),
        Event::new("x", "view", lo).with("item_vec", vec![1.0f32, 0.0, 0.0, 0.0]),
        Event::new("x", "view", hi).with("item_vec", vec![0.0f32, 1.0, 0.0, 0.0]),
    ])?;
    for as_of in [i64::MIN, lo, 0, T0, hi, i64::MAX] {
        let p = e.profile("x", as_of, DAY)?;
        let p = p.ok_or_else(|| profiledb_storage::Error::InvalidArgument("missing".into()))?;
        for (name, v) in p.features.iter().chain(&p.vectors) {
            match v {
                Value::Float(f) => assert!(f.is_finite(), "{name} = {f} at {as_of}"),
                Value::Vector(v) => assert!(v.iter().all(|x| x.is_finite()), "{name} at {as_of}"),
                _ => {}
            }
        }
    }
    Ok(())
}
