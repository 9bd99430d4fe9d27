//! `ReadView::nearest` against a naive ranking written here: with no filter,
//! with filters that exclude one user, half the users, all but a few, or
//! everyone (the ranking asks the filter only of rows that score high enough,
//! so each case takes it at a different point), and with an attribute's
//! posting lists. Equal scores are ordered by id.

mod common;

use profiledb_storage::{
    Definition, Event, MemoryEngine, Metric, NearestFilter, Pins, Result, UserRow, Value,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DIM: usize = 8;
const USERS: usize = 2_000;

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

fn taste_id(
    view: &profiledb_storage::ReadView<'_, profiledb_storage::kv::memory::MemoryKv>,
) -> u32 {
    view.bindings()
        .catalog
        .vector("taste")
        .map(|d| d.id)
        .unwrap_or(u32::MAX)
}

#[test]
fn nearest_equals_a_naive_ranking_under_every_kind_of_filter() -> Result<()> {
    let e = MemoryEngine::memory();
    e.define(Definition::Attribute {
        name: "region".into(),
        ty: profiledb_storage::AttrType::Int,
        event_type: Some("view".into()),
    })?;
    e.define(common::taste(DIM))?;
    let mut rng = StdRng::seed_from_u64(11);
    let mut users: Vec<(String, i64, Vec<f32>)> = Vec::new();
    let mut events = Vec::new();
    for u in 0..USERS {
        // A few exact duplicates, so that ties are ordered by id.
        let v: Vec<f32> = if u % 97 == 0 && u > 0 {
            users[u - 1].2.clone()
        } else {
            (0..DIM).map(|_| rng.random_range(-1.0..1.0)).collect()
        };
        let id = format!("u{u:05}");
        let region = (u % 10) as i64;
        events.push(
            Event::new(id.clone(), "view", 1_000)
                .with("v", Value::Vector(v.clone()))
                .with("region", region),
        );
        users.push((id, region, v));
    }
    e.ingest(&events)?;
    let view = e.view(Pins::VECTORS)?;
    let def = taste_id(&view);
    let region_id = view
        .bindings()
        .catalog
        .attribute("region")
        .map(|d| d.id)
        .unwrap_or(u32::MAX);
    let region_of = |row: Option<&UserRow>| match row.map(|r| r.attributes.cell(region_id)) {
        Some(Some(profiledb_storage::merge::cell::Cell::Attr {
            value: Value::Int(r),
            ..
        })) => Some(*r),
        _ => None,
    };
    for round in 0..20 {
        let q: Vec<f32> = (0..DIM).map(|_| rng.random_range(-1.0..1.0)).collect();
        let k = [1, 10, 50][round % 3];
        let excluded = format!("u{:05}", rng.random_range(0..USERS));
        type Admit<'a> = Box<dyn Fn(&str, i64) -> bool + Sync + 'a>;
        let cases: Vec<(&str, Admit<'_>)> = vec![
            ("everyone", Box::new(|_, _| true)),
            ("all but one", Box::new(|id, _| id != excluded)),
            ("even regions", Box::new(|_, r| r % 2 == 0)),
            ("three users", Box::new(|id, _| id.ends_with("777"))),
            ("nobody", Box::new(|_, _| false)),
        ];
        for (name, admit) in &cases {
            let mut want: Vec<(&str, f64)> = users
                .iter()
                .filter(|(id, r, _)| admit(id, *r))
                .map(|(id, _, v)| (id.as_str(), cosine(v, &q)))
                .collect();
            want.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
            want.truncate(k);
            let keep =
                |id: &str, row: Option<&UserRow>| region_of(row).is_some_and(|r| admit(id, r));
            let filter = NearestFilter {
                attribute: None,
                keep: (*name != "everyone").then_some(&keep as _),
                ..NearestFilter::default()
            };
            let got = view.nearest(def, &q, Metric::Cosine, k, &filter);
            assert_eq!(got.len(), want.len(), "{name}, k {k}");
            for ((gid, gs), (wid, ws)) in got.iter().zip(&want) {
                assert_eq!(gid, wid, "{name}, k {k}: {got:?}");
                assert!((gs - ws).abs() < 1e-6, "{name}: {gs} vs {ws}");
            }
        }
        // The posting lists of one region, with the same answer as its filter.
        let region = rng.random_range(0..10i64);
        let values = [Value::Int(region)];
        let keep = |_: &str, row: Option<&UserRow>| region_of(row) == Some(region);
        let via_postings = view.nearest(
            def,
            &q,
            Metric::Cosine,
            k,
            &NearestFilter {
                attribute: Some((region_id, &values)),
                keep: Some(&keep),
                ..NearestFilter::default()
            },
        );
        let via_filter = view.nearest(
            def,
            &q,
            Metric::Cosine,
            k,
            &NearestFilter {
                attribute: None,
                keep: Some(&keep),
                ..NearestFilter::default()
            },
        );
        assert_eq!(via_postings, via_filter);
    }
    Ok(())
}

/// A batch of queries gets, for each, what a naive ranking of that query
/// alone gives: unfiltered, with a filter, and with a query of the wrong
/// dimension among them.
#[test]
fn a_batch_of_queries_equals_a_naive_ranking_of_each() -> Result<()> {
    let e = MemoryEngine::memory();
    e.define(common::taste(DIM))?;
    let mut rng = StdRng::seed_from_u64(5);
    let users: Vec<(String, Vec<f32>)> = (0..USERS)
        .map(|u| {
            let v = (0..DIM).map(|_| rng.random_range(-1.0..1.0)).collect();
            (format!("u{u:05}"), v)
        })
        .collect();
    let events: Vec<Event> = users
        .iter()
        .map(|(id, v)| Event::new(id.clone(), "view", 1_000).with("v", Value::Vector(v.clone())))
        .collect();
    e.ingest(&events)?;
    let view = e.view(Pins::VECTORS)?;
    let def = taste_id(&view);
    let mut queries: Vec<Vec<f32>> = (0..9)
        .map(|_| (0..DIM).map(|_| rng.random_range(-1.0..1.0)).collect())
        .collect();
    queries.insert(4, vec![1.0; DIM + 1]);
    let refs: Vec<&[f32]> = queries.iter().map(Vec::as_slice).collect();
    let odd = |id: &str, _: Option<&UserRow>| id.ends_with(['1', '3', '5', '7', '9']);
    for (name, keep) in [("everyone", None), ("odd ids", Some(&odd as _))] {
        let filter = NearestFilter {
            attribute: None,
            keep,
            ..NearestFilter::default()
        };
        let k = 25;
        let got = view.nearest_batch(def, &refs, Metric::Cosine, k, &filter);
        assert_eq!(got.len(), queries.len());
        for (q, answer) in queries.iter().zip(&got) {
            if q.len() != DIM {
                assert!(answer.is_empty(), "{name}: a query of the wrong dimension");
                continue;
            }
            let mut want: Vec<(&str, f64)> = users
                .iter()
                .filter(|(id, _)| keep.is_none() || odd(id, None))
                .map(|(id, v)| (id.as_str(), cosine(v, q)))
                .collect();
            want.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
            want.truncate(k);
            assert_eq!(answer.len(), want.len(), "{name}");
            for ((gid, gs), (wid, ws)) in answer.iter().zip(&want) {
                assert_eq!(gid, wid, "{name}");
                assert!((gs - ws).abs() < 1e-6, "{name}: {gs} vs {ws}");
            }
        }
    }
    Ok(())
}
