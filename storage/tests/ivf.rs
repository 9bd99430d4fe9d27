//! The IVF index through the engine, against answers computed here: recall
//! against a naive exact ranking on clustered and near-uniform data, reads of
//! a query's own writes while other writers run, deletes, retraining while
//! queries run, filters against the exact filtered answer, and saved indexes
//! that are current, stale or damaged.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use profiledb_storage::kv::Kv;
use profiledb_storage::{
    AttrType, Definition, Engine, Event, MemoryEngine, Metric, NearestFilter, Pins, Result, Value,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DIM: usize = 16;

fn index(lists: u32, probes: u32) -> Definition {
    Definition::Index {
        name: "taste_ivf".into(),
        vector: "taste".into(),
        lists,
        probes,
        rerank: 4,
    }
}

/// `n` vectors around `centers` random centres, or uniform when 0.
fn vectors(n: usize, centers: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let cs: Vec<Vec<f32>> = (0..centers)
        .map(|_| (0..DIM).map(|_| rng.random_range(-1.0..1.0)).collect())
        .collect();
    (0..n)
        .map(|_| {
            if centers == 0 {
                (0..DIM).map(|_| rng.random_range(-1.0..1.0)).collect()
            } else {
                let c = &cs[rng.random_range(0..centers)];
                c.iter().map(|x| x + rng.random_range(-0.1..0.1)).collect()
            }
        })
        .collect()
}

/// Sets its flag when dropped: a failing test stops the threads it started.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn id(i: usize) -> String {
    format!("u{i:06}")
}

/// One view event per user, each setting the user's vector and region.
fn load<K: Kv>(e: &Engine<K>, vs: &[Vec<f32>]) -> Result<()> {
    let events: Vec<Event> = vs
        .iter()
        .enumerate()
        .map(|(i, v)| {
            Event::new(id(i), "view", 1_000)
                .with("v", Value::Vector(v.clone()))
                .with("region", (i % 10) as i64)
        })
        .collect();
    for chunk in events.chunks(5_000) {
        e.ingest(chunk)?;
    }
    Ok(())
}

fn schema<K: Kv>(e: &Engine<K>) -> Result<()> {
    e.define(Definition::Attribute {
        name: "region".into(),
        ty: AttrType::Int,
        event_type: Some("view".into()),
    })?;
    e.define(common::taste(DIM)).map(drop)
}

/// The exact top k by a naive f64 scan of `vs` (users `keep` admits).
fn naive(
    vs: &[(String, Vec<f32>)],
    q: &[f32],
    m: Metric,
    k: usize,
    keep: impl Fn(&str) -> bool,
) -> Vec<String> {
    let score = |v: &[f32]| -> Option<f64> {
        let dot: f64 = q
            .iter()
            .zip(v)
            .map(|(a, b)| f64::from(*a) * f64::from(*b))
            .sum();
        let n = |x: &[f32]| x.iter().map(|a| f64::from(*a).powi(2)).sum::<f64>().sqrt();
        match m {
            Metric::Dot => Some(dot),
            Metric::Cosine if n(q) == 0.0 || n(v) == 0.0 => None,
            Metric::Cosine => Some(dot / (n(q) * n(v))),
            Metric::L2 => Some(
                -q.iter()
                    .zip(v)
                    .map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2))
                    .sum::<f64>()
                    .sqrt(),
            ),
        }
    };
    let mut all: Vec<(f64, &String)> = vs
        .iter()
        .filter(|(u, _)| keep(u))
        .filter_map(|(u, v)| score(v).map(|s| (s, u)))
        .collect();
    all.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    all.into_iter().take(k).map(|(_, u)| u.clone()).collect()
}

fn taste_id<K: Kv>(e: &Engine<K>) -> u32 {
    e.catalog().vector("taste").map_or(u32::MAX, |d| d.id)
}

/// Whether the index is built, and equal to a fresh assignment of the table.
fn index_state<K: Kv>(e: &Engine<K>) -> Result<Option<(usize, usize)>> {
    let view = e.view(Pins::VECTORS)?;
    let Some(t) = view.vectors(taste_id(e)) else {
        return Ok(None);
    };
    let Some(ivf) = &t.ivf else { return Ok(None) };
    ivf.check(&t.table)
        .map_err(profiledb_storage::Error::Engine)?;
    Ok(Some((ivf.len(), ivf.trained_on())))
}

/// Waits (boundedly) for the refresher to build the index.
fn wait_built<K: Kv>(e: &Engine<K>) -> Result<(usize, usize)> {
    let end = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(s) = index_state(e)? {
            return Ok(s);
        }
        assert!(Instant::now() < end, "the index was never built");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn recall<K: Kv>(
    e: &Engine<K>,
    all: &[(String, Vec<f32>)],
    queries: &[Vec<f32>],
    m: Metric,
    filter: &NearestFilter<'_>,
    keep: impl Fn(&str) -> bool + Copy,
) -> Result<f64> {
    let view = e.view(Pins::VECTORS)?;
    let (mut hit, mut total) = (0, 0);
    for q in queries {
        let truth = naive(all, q, m, 10, keep);
        let got: Vec<String> = view
            .nearest(taste_id(e), q, m, 10, filter)
            .into_iter()
            .map(|(u, _)| u)
            .collect();
        for u in &got {
            assert!(keep(u), "{u} is outside the filter");
        }
        total += truth.len();
        hit += truth.iter().filter(|u| got.contains(u)).count();
    }
    Ok(hit as f64 / total as f64)
}

#[test]
fn recall_against_the_exact_ranking_on_clustered_and_uniform_data() -> Result<()> {
    for (centers, probes, floor) in [(40, 4, 0.95), (0, 16, 0.9)] {
        let e = MemoryEngine::memory();
        schema(&e)?;
        let vs = vectors(8_000, centers, 7);
        load(&e, &vs)?;
        e.define(index(32, probes))?;
        let (rows, _) =
            index_state(&e)?.ok_or(profiledb_storage::Error::Engine("not built".into()))?;
        assert_eq!(rows, 8_000);
        let all: Vec<(String, Vec<f32>)> = vs
            .iter()
            .enumerate()
            .map(|(i, v)| (id(i), v.clone()))
            .collect();
        let mut rng = StdRng::seed_from_u64(3);
        let queries: Vec<Vec<f32>> = (0..40)
            .map(|_| {
                let base = &vs[rng.random_range(0..vs.len())];
                base.iter()
                    .map(|x| x + rng.random_range(-0.05..0.05))
                    .collect()
            })
            .collect();
        for m in [Metric::Cosine, Metric::Dot, Metric::L2] {
            let none = NearestFilter::default();
            let r = recall(&e, &all, &queries, m, &none, |_| true)?;
            assert!(r >= floor, "{m:?}, {centers} centres: recall {r}");
            // The exact scan, asked for, is exact.
            let exact = NearestFilter {
                exact: true,
                ..NearestFilter::default()
            };
            assert_eq!(recall(&e, &all, &queries, m, &exact, |_| true)?, 1.0);
            // Filters: an attribute's rows (10%), a set of users (a third),
            // and a predicate asked row by row (half).
            let north = [Value::Int(3)];
            let by_attr = NearestFilter {
                attribute: Some((e.catalog().attribute("region").map_or(0, |a| a.id), &north)),
                ..NearestFilter::default()
            };
            let region = |u: &str| u[1..].parse::<usize>().is_ok_and(|i| i % 10 == 3);
            let r = recall(&e, &all, &queries, m, &by_attr, region)?;
            assert!(r >= floor, "{m:?}: filtered recall {r}");
            let third: HashSet<String> = (0..vs.len()).filter(|i| i % 3 == 0).map(id).collect();
            let by_users = NearestFilter {
                users: Some(&third),
                ..NearestFilter::default()
            };
            let r = recall(&e, &all, &queries, m, &by_users, |u| third.contains(u))?;
            assert!(r >= floor, "{m:?}: users recall {r}");
            let even = |u: &str, _: Option<&profiledb_storage::UserRow>| {
                u.ends_with(['0', '2', '4', '6', '8'])
            };
            let by_keep = NearestFilter {
                keep: Some(&even),
                ..NearestFilter::default()
            };
            let r = recall(&e, &all, &queries, m, &by_keep, |u| even(u, None))?;
            assert!(r >= floor, "{m:?}: keep recall {r}");
            // Probing every list with the exact filtered answer as reference.
            let every = NearestFilter {
                attribute: by_attr.attribute,
                probes: Some(10_000),
                ..NearestFilter::default()
            };
            assert!(recall(&e, &all, &queries, m, &every, region)? >= 0.99);
        }
    }
    Ok(())
}

#[test]
fn queries_read_their_own_writes_while_others_write() -> Result<()> {
    let e = MemoryEngine::memory();
    schema(&e)?;
    let vs = vectors(4_000, 20, 1);
    load(&e, &vs)?;
    e.define(index(16, 2))?;
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| -> Result<()> {
        // Others keep moving their vectors.
        s.spawn(|| {
            let mut rng = StdRng::seed_from_u64(9);
            while !stop.load(Ordering::Relaxed) {
                let events: Vec<Event> = (0..200)
                    .map(|_| {
                        let v: Vec<f32> = (0..DIM).map(|_| rng.random_range(-1.0..1.0)).collect();
                        Event::new(id(rng.random_range(0..2_000)), "view", 2_000)
                            .with("v", Value::Vector(v))
                    })
                    .collect();
                if e.ingest(&events).is_err() {
                    return;
                }
            }
        });
        let _stop = StopOnDrop(&stop);
        let mut rng = StdRng::seed_from_u64(5);
        for round in 0..200 {
            // A user of the upper half takes a vector far from everyone:
            // once written, it is its own nearest neighbour.
            let user = id(2_000 + rng.random_range(0..2_000));
            let mut v = vec![0f32; DIM];
            v[round % DIM] = 50.0 + round as f32;
            // Weighted far above the user's older vectors (one from an
            // earlier round, too) by a time 100 half-lives later.
            let ts = 1_000 + (400 + 100 * round as i64) * 86_400_000;
            e.ingest(&[Event::new(user.clone(), "view", ts).with("v", Value::Vector(v.clone()))])?;
            let view = e.view(Pins::VECTORS)?;
            let got = view.nearest(taste_id(&e), &v, Metric::L2, 1, &NearestFilter::default());
            assert_eq!(
                got.first().map(|(u, _)| u.as_str()),
                Some(user.as_str()),
                "round {round}"
            );
        }
        stop.store(true, Ordering::Relaxed);
        Ok(())
    })?;
    index_state(&e)?.ok_or(profiledb_storage::Error::Engine("not built".into()))?;
    Ok(())
}

#[test]
fn deletes_leave_the_index() -> Result<()> {
    let e = MemoryEngine::memory();
    schema(&e)?;
    let vs = vectors(3_000, 10, 2);
    load(&e, &vs)?;
    e.define(index(16, 16))?;
    for i in (0..3_000).step_by(3) {
        e.delete_user(&id(i))?;
    }
    let (rows, _) = index_state(&e)?.ok_or(profiledb_storage::Error::Engine("not built".into()))?;
    assert_eq!(rows, 2_000);
    let view = e.view(Pins::VECTORS)?;
    for i in (0..3_000).step_by(97) {
        for (u, _) in view.nearest(
            taste_id(&e),
            &vs[i],
            Metric::Cosine,
            20,
            &NearestFilter::default(),
        ) {
            let n: usize = u[1..].parse().unwrap_or(0);
            assert_ne!(n % 3, 0, "deleted {u} was ranked");
        }
    }
    Ok(())
}

#[test]
fn lists_that_drift_apart_are_retrained_while_queries_run() -> Result<()> {
    let e = MemoryEngine::memory();
    schema(&e)?;
    let vs = vectors(4_000, 16, 4);
    load(&e, &vs)?;
    e.define(index(16, 4))?;
    let (_, trained_on) =
        index_state(&e)?.ok_or(profiledb_storage::Error::Engine("not built".into()))?;
    assert_eq!(trained_on, 4_000);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| -> Result<()> {
        // Queries run throughout: every answer is k users with their scores.
        let reader = s.spawn(|| -> Result<usize> {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let view = e.view(Pins::VECTORS)?;
                let got = view.nearest(
                    taste_id(&e),
                    &vs[n % 4_000],
                    Metric::L2,
                    10,
                    &NearestFilter::default(),
                );
                assert!(!got.is_empty());
                assert!(got.windows(2).all(|w| w[0].1 >= w[1].1), "{got:?}");
                n += 1;
            }
            Ok(n)
        });
        let _stop = StopOnDrop(&stop);
        // Everyone moves into one corner: the lists drift apart.
        let mut rng = StdRng::seed_from_u64(8);
        let events: Vec<Event> = (0..4_000)
            .map(|i| {
                let v: Vec<f32> = (0..DIM)
                    .map(|_| 5.0 + rng.random_range(-0.5..0.5))
                    .collect();
                Event::new(id(i), "view", 1_000 + 400 * 86_400_000).with("v", Value::Vector(v))
            })
            .collect();
        e.ingest(&events)?;
        let end = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some((_, t)) = index_state(&e)?
                && t == 4_000
                && index_balanced(&e)?
            {
                break;
            }
            assert!(Instant::now() < end, "the index was never retrained");
            // A write wakes the refresher, which retrains.
            e.ingest(&[Event::new(id(0), "view", 1_000 + 400 * 86_400_000)
                .with("v", Value::Vector(vec![5.0; DIM]))])?;
            std::thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Ordering::Relaxed);
        let queries = reader
            .join()
            .map_err(|_| profiledb_storage::Error::Engine("reader".into()))??;
        assert!(queries > 0);
        Ok(())
    })
}

/// Whether the index's lists are balanced again (retrained on the moved data).
fn index_balanced<K: Kv>(e: &Engine<K>) -> Result<bool> {
    let view = e.view(Pins::VECTORS)?;
    Ok(view
        .vectors(taste_id(e))
        .and_then(|t| t.ivf.as_ref())
        .is_some_and(|i| !i.wants_retraining()))
}

#[test]
fn an_index_needs_a_vector_per_list_and_builds_itself_when_it_has_them() -> Result<()> {
    let e = MemoryEngine::memory();
    schema(&e)?;
    let vs = vectors(600, 8, 6);
    load(&e, &vs[..100])?;
    e.define(index(200, 8))?;
    assert!(
        index_state(&e)?.is_none(),
        "100 vectors cannot train 200 lists"
    );
    // Ranking works meanwhile, exactly.
    let view = e.view(Pins::VECTORS)?;
    assert_eq!(
        view.nearest(
            taste_id(&e),
            &vs[0],
            Metric::L2,
            1,
            &NearestFilter::default()
        )[0]
        .0,
        id(0)
    );
    drop(view);
    load(&e, &vs)?;
    let (rows, trained_on) = wait_built(&e)?;
    assert_eq!((rows, trained_on), (600, 600));
    Ok(())
}

#[test]
fn saved_indexes_are_used_only_when_current_and_intact() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let vs = vectors(3_000, 12, 11);
    let built;
    {
        let e = common::open(dir.path())?;
        schema(&e)?;
        load(&e, &vs)?;
        e.define(index(16, 4))?;
        built = index_state(&e)?;
        assert!(built.is_some());
    }
    let snap = dir.path().join("vector-index.snapshot");
    {
        let e = common::open(dir.path())?;
        assert!(e.vector_index_from_snapshot());
        // Restored as saved, and equal to a fresh assignment.
        assert_eq!(index_state(&e)?, built);
    }
    // Damaged: flipped bytes in the index section are never trusted; the
    // index is rebuilt from the vectors.
    let mut bytes = std::fs::read(&snap)?;
    let i = bytes.len() - 40;
    bytes[i] ^= 0x55;
    std::fs::write(&snap, &bytes)?;
    {
        let e = common::open(dir.path())?;
        let (rows, _) = wait_built(&e)?;
        assert!(!e.vector_index_from_snapshot());
        assert_eq!(rows, 3_000);
    }
    // Stale: saved before more users were written.
    let saved = std::fs::read(&snap)?;
    {
        let e = common::open(dir.path())?;
        load(&e, &vectors(3_500, 12, 11))?;
    }
    std::fs::write(&snap, &saved)?;
    {
        let e = common::open(dir.path())?;
        let (rows, _) = wait_built(&e)?;
        assert!(!e.vector_index_from_snapshot());
        assert_eq!(rows, 3_500);
    }
    Ok(())
}
