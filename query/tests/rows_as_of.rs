//! Point-in-time rows read in one pass per user equal the point queries
//! `SELECT … WHERE id = user AS OF time`, pair by pair, and the events up to
//! each time counted here.

use profiledb_query::{Error, Limits, Output, execute, rows_as_of};
use profiledb_storage::{MemoryEngine, Value};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const NOW: i64 = 1_794_700_800_000; // 2026-11-15T00:00:00Z
const DAY: i64 = 86_400_000;
const SELECT: &str = "purchases, spend, window_count(views, '1d'), window_sum(spend_w, '3d'), \
                      taste, pref, tier, spend * 2 AS twice";

fn run(db: &MemoryEngine, sql: &str) -> Result<Vec<Output>, Error> {
    execute(db, sql, &Limits::default())
}

/// A database keeping history, with random late events over `users` users
/// in the 20 days before now; the events as (user, type, ts).
fn database(users: usize, seed: u64) -> Result<(MemoryEngine, Vec<(String, i64)>), Error> {
    let db = MemoryEngine::memory().with_now(NOW);
    run(
        &db,
        "ALTER DATABASE SET HISTORY '30d';
         CREATE FEATURE purchases ON purchase AS COUNT();
         CREATE FEATURE spend ON purchase AS DECAYED_SUM(amount) HALF_LIFE '7d';
         CREATE WINDOW views ON view BUCKET '1h' RETAIN '30d';
         CREATE WINDOW spend_w ON purchase OF amount BUCKET '1d' RETAIN '30d';
         CREATE VECTOR taste ON view AS EWMA(v) DIM 2 HALF_LIFE '3d';
         CREATE VECTOR pref ON click AS SGD(v, y) DIM 2 LEARNING_RATE 0.1;
         CREATE ATTRIBUTE tier STRING ON signup;",
    )?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut purchases = Vec::new();
    for _ in 0..20 {
        let rows: Vec<String> = (0..30)
            .map(|_| {
                let user = format!("u{}", rng.random_range(0..users));
                let ts = NOW - rng.random_range(0..20 * DAY);
                (user, ts)
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|(user, ts)| match rng.random_range(0..4) {
                0 => {
                    purchases.push((user.clone(), ts));
                    format!(
                        "INSERT INTO purchase (user, ts, amount) VALUES ('{user}', {ts}, {})",
                        rng.random_range(1..100)
                    )
                }
                1 => format!(
                    "INSERT INTO view (user, ts, v) VALUES ('{user}', {ts}, [{}, {}])",
                    rng.random_range(-1.0..1.0f64),
                    rng.random_range(-1.0..1.0f64)
                ),
                2 => format!(
                    "INSERT INTO click (user, ts, v, y) VALUES ('{user}', {ts}, [{}, {}], {})",
                    rng.random_range(-1.0..1.0f64),
                    rng.random_range(-1.0..1.0f64),
                    rng.random_range(0..2)
                ),
                _ => format!(
                    "INSERT INTO signup (user, ts, tier) VALUES ('{user}', {ts}, '{}')",
                    ["gold", "silver"][rng.random_range(0..2)]
                ),
            })
            .collect();
        run(&db, &rows.join(";"))?;
    }
    Ok((db, purchases))
}

#[test]
fn each_pair_reads_as_its_point_query_and_counts_its_events() -> Result<(), Error> {
    let (db, purchases) = database(12, 5)?;
    let mut rng = StdRng::seed_from_u64(6);
    // Several pairs per user, in no order, some of a user that never was
    // and some after every write.
    let mut pairs: Vec<(String, i64)> = (0..300)
        .map(|_| {
            let user = format!("u{}", rng.random_range(0..14));
            (user, NOW - rng.random_range(-DAY..21 * DAY))
        })
        .collect();
    // And at the very times of writes, which count.
    pairs.extend(purchases.iter().step_by(3).cloned());
    let got = rows_as_of(&db, SELECT, &pairs, &Limits::default())?;
    assert_eq!(got.rows.len(), pairs.len());
    for ((user, ts), row) in pairs.iter().zip(&got.rows) {
        let point = run(
            &db,
            &format!("SELECT {SELECT} FROM users WHERE id = '{user}' AS OF {ts}"),
        )?;
        let want = point[0].rows().expect("rows");
        assert_eq!(got.columns, want.columns);
        match want.rows.first() {
            Some(w) => assert_eq!(row, w, "{user} as of {ts}"),
            None => assert!(row.iter().all(|v| *v == Value::Null), "{user} as of {ts}"),
        }
        // The count, from the events themselves.
        let n = purchases
            .iter()
            .filter(|(u, t)| u == user && *t <= *ts)
            .count();
        if n > 0 {
            assert_eq!(row[0], Value::Int(n as i64), "{user} as of {ts}");
        }
    }
    Ok(())
}

#[test]
fn what_cannot_be_read_so_says() -> Result<(), Error> {
    let (db, _) = database(3, 7)?;
    let pairs = vec![("u1".to_owned(), NOW)];
    for (select, says) in [
        ("count(*)", "aggregates are not allowed"),
        ("nosuch", "unknown column 'nosuch'"),
        ("spend FROM users WHERE spend > 1 --", "a select list alone"),
        ("spend FROM users WHERE", "syntax error"),
    ] {
        let err = rows_as_of(&db, select, &pairs, &Limits::default())
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| e.contains(says)),
            "{select}: {err:?}"
        );
    }
    Ok(())
}
