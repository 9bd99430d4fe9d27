//! Top-k under concurrent ingest: while writers add users with vectors,
//! readers rank by cosine, with and without filters. Every answer has exactly
//! k rows (enough matching users exist before any reader starts, and users are
//! only added), sorted by its score column; each score is the cosine of that
//! user's vector, computed here from the id alone; and no user acknowledged
//! before the query began, matching the filter, scores above the last row and
//! is missing. Runs on RocksDB (through `Db`) and on the in-memory engine.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use profiledb::{Db, Output, Value};
use profiledb_query::Limits;
use profiledb_storage::MemoryEngine;

const DIM: usize = 8;
const K: usize = 10;
const WRITERS: usize = 2;
const BATCHES: usize = 200;
const BATCH: usize = 25;

type Exec<'a> = &'a (dyn Fn(&str) -> Result<Vec<Output>, String> + Sync);

/// The vector of user `id`, a function of the id alone (splitmix64 of its
/// number), so a reader can check any row without asking the writer.
fn vector_of(n: u64) -> Vec<f32> {
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..DIM)
        .map(|_| {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            ((z >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn region_of(n: u64) -> &'static str {
    if n.is_multiple_of(2) {
        "north"
    } else {
        "south"
    }
}

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

fn insert(exec: Exec<'_>, users: std::ops::Range<u64>) -> Result<(), String> {
    let rows: Vec<String> = users
        .map(|n| {
            let v: Vec<String> = vector_of(n).iter().map(|x| format!("{x:?}")).collect();
            format!("('u{n:06}', 1000, [{}], '{}')", v.join(", "), region_of(n))
        })
        .collect();
    exec(&format!(
        "INSERT INTO view (user, ts, item_vec, region) VALUES {}",
        rows.join(", ")
    ))
    .map(drop)
}

/// Runs one ranking and checks it against the users known to be acknowledged
/// before it started.
fn check_ranking(
    exec: Exec<'_>,
    query: &[f32],
    filter: Option<&str>,
    known: &[u64],
) -> Result<(), String> {
    let lit: Vec<String> = query.iter().map(|x| format!("{x:?}")).collect();
    let lit = lit.join(", ");
    let sql = format!(
        "SELECT id, cosine(taste, [{lit}]) AS score FROM users {} ORDER BY score DESC LIMIT {K}",
        filter.map(|f| format!("WHERE {f}")).unwrap_or_default()
    );
    let out = exec(&sql)?;
    let rows = out
        .last()
        .and_then(Output::rows)
        .ok_or("the query returned no rows")?;
    if rows.rows.len() != K {
        return Err(format!("{sql}: {} rows, expected {K}", rows.rows.len()));
    }
    let admits = |n: u64| match filter {
        Some(f) if f.contains("north") => region_of(n) == "north",
        _ => true,
    };
    let mut scores = Vec::new();
    let mut ids = Vec::new();
    for r in &rows.rows {
        let (Value::String(id), Value::Float(score)) = (&r[0], &r[1]) else {
            return Err(format!("unexpected row {r:?}"));
        };
        let n: u64 = id[1..].parse().map_err(|e| format!("id {id}: {e}"))?;
        if !admits(n) {
            return Err(format!("{id} does not match the filter {filter:?}"));
        }
        let want = cosine(&vector_of(n), query);
        if (score - want).abs() > 1e-5 {
            return Err(format!(
                "{id}: score {score}, its vector's cosine is {want}"
            ));
        }
        scores.push(*score);
        ids.push(n);
    }
    if scores.windows(2).any(|w| w[0] < w[1]) {
        return Err(format!("scores out of order: {scores:?}"));
    }
    let last = scores[K - 1];
    for &n in known.iter().filter(|n| admits(**n)) {
        if cosine(&vector_of(n), query) > last + 1e-5 && !ids.contains(&n) {
            return Err(format!("u{n:06} scores above the last row and is missing"));
        }
    }
    Ok(())
}

fn run(exec: Exec<'_>) -> Result<(), String> {
    exec(
        "CREATE ATTRIBUTE region STRING ON view;
          CREATE FEATURE n ON view AS COUNT();
          CREATE VECTOR taste ON view AS EWMA(item_vec) DIM 8 HALF_LIFE '14d'",
    )?;
    // Enough users of every filter before any reader starts.
    let first = 4 * K as u64;
    insert(exec, 0..first)?;
    let known = Mutex::new((0..first).collect::<Vec<u64>>());
    let done = AtomicBool::new(false);
    let failures: Mutex<HashMap<String, usize>> = Mutex::new(HashMap::new());
    let queries = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        let writers: Vec<_> = (0..WRITERS as u64)
            .map(|w| {
                let known = &known;
                s.spawn(move || -> Result<(), String> {
                    for b in 0..BATCHES as u64 {
                        let start = first + (w * BATCHES as u64 + b) * BATCH as u64;
                        insert(exec, start..start + BATCH as u64)?;
                        known
                            .lock()
                            .map_err(|e| e.to_string())?
                            .extend(start..start + BATCH as u64);
                    }
                    Ok(())
                })
            })
            .collect();
        for r in 0..2u64 {
            let (known, done, failures, queries) = (&known, &done, &failures, &queries);
            s.spawn(move || {
                let mut i = 0u64;
                while !done.load(Ordering::SeqCst) || i < 3 {
                    let query = vector_of(1_000_000 + r * 10_000 + i);
                    let filter = [None, Some("region = 'north'"), Some("n >= 1")][(i % 3) as usize];
                    let before = known.lock().map(|k| k.clone()).unwrap_or_default();
                    if let Err(e) = check_ranking(exec, &query, filter, &before)
                        && let Ok(mut f) = failures.lock()
                    {
                        *f.entry(e).or_default() += 1;
                    }
                    queries.fetch_add(1, Ordering::SeqCst);
                    i += 1;
                }
            });
        }
        let results: Vec<_> = writers.into_iter().map(|w| w.join()).collect();
        done.store(true, Ordering::SeqCst);
        for r in results {
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failures
                    .lock()
                    .map(|mut f| *f.entry(e).or_default() += 1)
                    .unwrap_or(()),
                Err(_) => failures
                    .lock()
                    .map(|mut f| *f.entry("writer panicked".into()).or_default() += 1)
                    .unwrap_or(()),
            }
        }
    });
    let failures = failures.into_inner().map_err(|e| e.to_string())?;
    let ran = queries.load(Ordering::SeqCst);
    assert!(ran >= 6, "only {ran} queries ran");
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("{ran} queries; failures: {failures:#?}"))
    }
}

#[test]
fn top_k_is_exact_under_concurrent_ingest_on_rocksdb() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let db = Db::open(dir.path()).map_err(|e| e.to_string())?;
    run(&|sql| db.execute_script(sql).map_err(|e| e.to_string()))
}

#[test]
fn top_k_is_exact_under_concurrent_ingest_in_memory() -> Result<(), String> {
    let db = MemoryEngine::memory();
    run(&|sql| profiledb_query::execute(&db, sql, &Limits::default()).map_err(|e| e.to_string()))
}
