//! `ANALYZE INDEX`, `DESCRIBE` and `SHOW INDEXES` of a built IVF index,
//! against a recall counted here from exact rankings, and the statement
//! deadline stopping `ANALYZE INDEX`.

use std::time::{Duration, Instant};

use profiledb_query::{Error, Limits, Output, execute};
use profiledb_storage::{MemoryEngine, Value};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const USERS: usize = 1_500;

fn db() -> Result<MemoryEngine, Error> {
    let db = MemoryEngine::memory().with_now(1_794_700_800_000);
    let mut rng = StdRng::seed_from_u64(4);
    let centres: Vec<[f32; 4]> = (0..12)
        .map(|_| std::array::from_fn(|_| rng.random_range(-1.0..1.0)))
        .collect();
    let rows: Vec<String> = (0..USERS)
        .map(|i| {
            let c = centres[i % centres.len()];
            let v: Vec<String> = c
                .iter()
                .map(|x| format!("{:.4}", x + rng.random_range(-0.2f32..0.2)))
                .collect();
            format!("('u{i:05}', 1, [{}])", v.join(", "))
        })
        .collect();
    execute(
        &db,
        &format!(
            "CREATE VECTOR taste ON view AS EWMA(v) DIM 4 HALF_LIFE '14d';
             INSERT INTO view (user, ts, v) VALUES {};
             CREATE INDEX taste_ivf ON users USING ivf (taste) WITH (lists = 24, probes = 2);",
            rows.join(", ")
        ),
        &Limits::default(),
    )?;
    Ok(db)
}

fn rows(out: &[Output]) -> Vec<Vec<Value>> {
    out.last()
        .and_then(|o| o.rows())
        .map(|r| r.rows.clone())
        .unwrap_or_default()
}

fn ids(out: &[Output]) -> Vec<String> {
    rows(out)
        .into_iter()
        .filter_map(|r| match r.first() {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn analyze_measures_the_recall_a_query_by_query_count_finds() -> Result<(), Error> {
    let db = db()?;
    let limits = Limits::default();
    let out = execute(
        &db,
        "ANALYZE INDEX taste_ivf WITH (queries = 40, probes = 1)",
        &limits,
    )?;
    let row = rows(&out).pop().unwrap_or_default();
    let Some(Value::Float(recall)) = row.get(4).cloned() else {
        panic!("no recall in {row:?}");
    };
    assert_eq!(row.get(2), Some(&Value::Int(1)));
    assert_eq!(row.get(3), Some(&Value::Int(40)));
    // The same 40 users (evenly spaced by row, which is id order here),
    // each ranked by the index and exactly, its own row left out.
    let (mut hit, mut total) = (0, 0);
    for i in 0..40 {
        let user = format!("u{:05}", i * USERS / 40);
        let q = |with: &str| {
            format!(
                "SELECT id, cosine(taste, '{user}') AS s FROM users WHERE id != '{user}' ORDER BY s DESC LIMIT 10 WITH ({with})"
            )
        };
        let approx = ids(&execute(&db, &q("probes = 1"), &limits)?);
        let exact = ids(&execute(&db, &q("exact = true"), &limits)?);
        total += exact.len();
        hit += exact.iter().filter(|u| approx.contains(u)).count();
    }
    let counted = hit as f64 / total as f64;
    assert!(
        (recall - counted).abs() < 1e-12,
        "ANALYZE said {recall}, counted {counted}"
    );
    // Probing every list finds (nearly) everything.
    let all = rows(&execute(
        &db,
        "ANALYZE INDEX taste_ivf WITH (probes = 24, metric = 'l2')",
        &limits,
    )?);
    assert!(matches!(all[0][4], Value::Float(r) if r >= 0.99), "{all:?}");
    assert_eq!(all[0][1], Value::String("l2".into()));
    // SHOW INDEXES and DESCRIBE show the last measurement.
    let shown = rows(&execute(&db, "SHOW INDEXES", &limits)?);
    assert_eq!(shown[0][6], Value::Int(USERS as i64));
    assert_eq!(shown[0][7], all[0][4]);
    let described = rows(&execute(&db, "DESCRIBE taste_ivf", &limits)?);
    let Value::String(text) = &described[0][2] else {
        panic!("{described:?}");
    };
    assert!(text.contains("1500 rows in 24 lists"), "{text}");
    assert!(text.contains("recall@10"), "{text}");
    Ok(())
}

#[test]
fn a_past_deadline_stops_analyze() -> Result<(), Error> {
    let db = db()?;
    let limits = Limits {
        deadline: Some(Instant::now() - Duration::from_secs(1)),
        max_rows: None,
    };
    let err = execute(&db, "ANALYZE INDEX taste_ivf", &limits).err();
    assert!(matches!(err, Some(Error::Cancelled { .. })), "{err:?}");
    let err = execute(
        &db,
        "ANALYZE INDEX taste_ivf WITH (queries = 0)",
        &Limits::default(),
    )
    .err();
    assert!(
        err.as_ref().is_some_and(|e| e
            .to_string()
            .contains("queries must be a whole number 1..=10000")),
        "{err:?}"
    );
    Ok(())
}
