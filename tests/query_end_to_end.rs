//! The query language end to end through `Db::execute` on RocksDB, with every
//! contract statement, and decayed values checked against numbers worked out by
//! hand for a small history whose events arrive out of order.

use profiledb::{Db, Error, Output, Value};

const DAY: i64 = 86_400_000;
/// 2026-11-01T00:00:00Z.
const D0: i64 = 1_793_491_200_000;

fn rows(out: Output) -> Vec<Vec<Value>> {
    out.rows().map(|r| r.rows.clone()).unwrap_or_default()
}

fn float(v: &Value) -> f64 {
    match v {
        Value::Float(x) => *x,
        other => panic!("expected a float, got {other:?}"),
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

fn s(x: &str) -> Value {
    Value::String(x.into())
}

fn setup() -> Result<(tempfile::TempDir, Db), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let db = Db::open(dir.path())?;
    db.execute_script(
        "CREATE ATTRIBUTE age INT;
         CREATE ATTRIBUTE region STRING ON signup;
         CREATE FEATURE purchases ON purchase AS COUNT();
         CREATE FEATURE revenue ON purchase AS SUM(amount);
         CREATE FEATURE visits ON view AS DECAYED_COUNT() HALF_LIFE '1d';
         CREATE FEATURE spend_7d ON purchase AS DECAYED_SUM(amount) HALF_LIFE '7d';
         CREATE FEATURE basket ON purchase AS DECAYED_AVG(amount) HALF_LIFE '30d';
         CREATE FEATURE ctr ON impression AS BETA(clicked) HALF_LIFE '14d' PRIOR (1, 20);
         CREATE WINDOW views ON view BUCKET '1h' RETAIN '30d';
         CREATE WINDOW spend ON purchase OF amount BUCKET '1d' RETAIN '365d';
         CREATE VECTOR taste ON browse AS EWMA(item_vec) DIM 8 HALF_LIFE '14d';
         CREATE VECTOR pref ON impression AS SGD(item_vec, clicked) DIM 8 LEARNING_RATE 0.05 L2 0.0001;
         CREATE SEGMENT big_spenders AS spend_7d > 100 AND purchases >= 2;",
    )?;
    Ok((dir, db))
}

#[test]
fn decayed_values_match_hand_computation() -> Result<(), Box<dyn std::error::Error>> {
    let (_dir, db) = setup()?;
    // u1 buys 60 on day 30, then a late event reports 10 on day 0, then 40 on day 23.
    db.execute(&format!(
        "INSERT INTO purchase (user, ts, amount) VALUES ('u1', {}, 60.0)",
        D0 + 30 * DAY
    ))?;
    db.execute(&format!(
        "INSERT INTO purchase (user, ts, amount) VALUES ('u1', {}, 10.0), ('u1', {}, 40.0)",
        D0,
        D0 + 23 * DAY
    ))?;
    // Views 1 and 2 days before day 30; clicks 1 and 0 at day 30.
    db.execute(&format!(
        "INSERT INTO view (user, ts) VALUES ('u1', {}), ('u1', {})",
        D0 + 29 * DAY,
        D0 + 28 * DAY
    ))?;
    db.execute(&format!(
        "INSERT INTO impression (user, ts, clicked, item_vec) VALUES ('u1', {t}, 1, [0, 0, 0, 0, 0, 0, 0, 0]), ('u1', {t}, 0, [0, 0, 0, 0, 0, 0, 0, 0])",
        t = D0 + 30 * DAY
    ))?;
    let at = D0 + 30 * DAY;
    let out = rows(db.execute(&format!(
        "SELECT spend_7d, basket, visits, ctr, purchases, revenue FROM users WHERE id = 'u1' AS OF {at}"
    ))?);
    let r = &out[0];
    // spend_7d at day 30: 60 + 40·2^(-1) + 10·2^(-30/7).
    let spend = 60.0 + 20.0 + 10.0 * 2f64.powf(-30.0 / 7.0);
    assert!(close(float(&r[0]), spend), "{:?} vs {spend}", r[0]);
    // basket (half-life 30d) at day 30: weights 1/2 (day 0), 2^(-7/30) (day 23), 1 (day 30).
    let w23 = 2f64.powf(-7.0 / 30.0);
    let basket = (10.0 * 0.5 + 40.0 * w23 + 60.0) / (0.5 + w23 + 1.0);
    assert!(close(float(&r[1]), basket), "{:?} vs {basket}", r[1]);
    // visits (half-life 1d): 1/2 + 1/4.
    assert!(close(float(&r[2]), 0.75), "{:?}", r[2]);
    // ctr: one success and one failure at T, prior (1, 20): (1 + 1) / (2 + 21).
    assert!(close(float(&r[3]), 2.0 / 23.0), "{:?}", r[3]);
    assert_eq!(r[4], Value::Int(3));
    assert_eq!(r[5], Value::Float(110.0));

    // Seven days later, the 7-day sum has exactly halved.
    let out = rows(db.execute(&format!(
        "SELECT spend_7d FROM users WHERE id = 'u1' AS OF {}",
        at + 7 * DAY
    ))?);
    assert!(close(float(&out[0][0]), spend / 2.0));
    // As of a time before the latest event, the value reads at that event's time:
    // it never grows backwards.
    let out = rows(db.execute(&format!(
        "SELECT spend_7d FROM users WHERE id = 'u1' AS OF {}",
        D0 + 10 * DAY
    ))?);
    assert!(close(float(&out[0][0]), spend));

    // A user who never bought reads 0 for sums, NULL for averages, the prior for beta.
    db.execute(&format!("INSERT INTO view (user, ts) VALUES ('u2', {at})"))?;
    let out = rows(db.execute(&format!(
        "SELECT purchases, revenue, spend_7d, basket, ctr, window_count(spend, '7d'), window_sum(spend, '7d'), window_avg(spend, '7d'), taste, pref FROM users WHERE id = 'u2' AS OF {at}"
    ))?);
    assert_eq!(
        out[0],
        vec![
            Value::Int(0),
            Value::Float(0.0),
            Value::Float(0.0),
            Value::Null,
            Value::Float(1.0 / 21.0),
            Value::Int(0),
            Value::Float(0.0),
            Value::Null,
            Value::Null,
            Value::Null,
        ]
    );
    Ok(())
}

#[test]
fn contract_statements_run() -> Result<(), Box<dyn std::error::Error>> {
    let (_dir, db) = setup()?;
    db.execute("INSERT INTO purchase (user, ts, amount) VALUES ('u1', '2026-11-01T10:00:00Z', 35.0), ('u2', 1761991200000, 12.5)")?;
    db.execute("INSERT INTO browse (user, ts, item_vec) VALUES ('u1', '2026-11-01T10:05:00Z', [0.1, 0.0, 0.3, 0.0, 0.0, 0.2, 0.0, 0.4])")?;
    db.execute("INSERT INTO purchase (user, ts, amount) VALUES ('u1', '2026-11-05T10:00:00Z', 80.0), ('u3', '2026-11-06T10:00:00Z', 150.0)")?;
    db.execute(
        "INSERT INTO signup (user, ts, region) VALUES ('u3', '2026-10-01T00:00:00Z', 'south')",
    )?;
    assert_eq!(
        db.execute("UPDATE users SET age = 31, region = 'north' WHERE id = 'u1';")?,
        Output::Done {
            summary: "UPDATE 1".into(),
            count: Some(1)
        }
    );

    let out = db.execute("SELECT * FROM users WHERE id = 'u1' AS OF '2026-11-10T00:00:00Z';")?;
    let r = out.rows().ok_or("rows")?;
    let names: Vec<&str> = r.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "id",
            "age",
            "region",
            "purchases",
            "revenue",
            "visits",
            "spend_7d",
            "basket",
            "ctr",
            "taste",
            "pref"
        ]
    );
    assert_eq!(r.rows[0][0], s("u1"));
    assert_eq!(r.rows[0][1], Value::Int(31));
    assert_eq!(
        r.rows[0][9],
        Value::Vector(vec![0.1, 0.0, 0.3, 0.0, 0.0, 0.2, 0.0, 0.4])
    );

    let out = rows(db.execute(
        "SELECT id, spend_7d, window_sum(spend, '7d'), window_count(views, '24h') FROM users
           WHERE region = 'north' AND spend_7d > 50 AND age BETWEEN 20 AND 40
           ORDER BY spend_7d DESC LIMIT 10 AS OF '2026-11-10T00:00:00Z';",
    )?);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0][0], s("u1"));
    // Buckets of 1 day overlapping [Nov 3, Nov 10]: only Nov 5's 80.
    assert_eq!(out[0][2], Value::Float(80.0));
    assert_eq!(out[0][3], Value::Int(0));

    let at = "AS OF '2026-11-05T10:00:00Z'";
    let out = rows(db.execute(&format!(
        "SELECT count(*) FROM users WHERE IN SEGMENT big_spenders {at};"
    ))?);
    // u1: 35·2^(-4/7) + 80 ≈ 103.5 > 100 with 2 purchases; u3 has one purchase.
    assert_eq!(out, vec![vec![Value::Int(1)]]);

    let out = rows(db.execute(
        "SELECT region, count(*), avg(spend_7d), sum(revenue) FROM users GROUP BY region ORDER BY region;",
    )?);
    let regions: Vec<&Value> = out.iter().map(|r| &r[0]).collect();
    assert_eq!(regions, [&s("north"), &s("south"), &Value::Null]);
    assert_eq!(out[0][3], Value::Float(115.0));
    assert_eq!(out[2][3], Value::Float(12.5));

    let out = rows(db.execute(
        "SELECT id, zscore(views, '1d', '30d') AS z FROM users WHERE zscore(views, '1d', '30d') > 3;",
    )?);
    assert!(out.is_empty(), "no user has views: {out:?}");

    let plan = rows(db.execute("EXPLAIN SELECT id FROM users WHERE spend_7d > 50;")?);
    let text: Vec<String> = plan
        .iter()
        .map(|r| match &r[0] {
            Value::String(s) => s.trim().to_owned(),
            _ => String::new(),
        })
        .collect();
    assert_eq!(text[0], "Projection: id");
    assert_eq!(text[1], "Filter: spend_7d > 50");
    assert!(text[2].starts_with("ParallelScan: users, "), "{text:?}");

    let out = rows(db.execute("SHOW FEATURES;")?);
    assert_eq!(out.len(), 6);
    db.execute("DROP SEGMENT big_spenders")?;
    db.execute("DROP FEATURE spend_7d;")?;
    assert_eq!(rows(db.execute("SHOW FEATURES;")?).len(), 5);
    db.execute("CREATE SEGMENT big_spenders AS revenue > 100 AND purchases >= 2")?;
    assert_eq!(
        db.execute("DELETE FROM users WHERE IN SEGMENT big_spenders;")?,
        Output::Done {
            summary: "DELETE 1".into(),
            count: Some(1)
        }
    );
    db.execute("DELETE USER 'u2';")?;
    let out = rows(db.execute("SELECT id FROM users ORDER BY id")?);
    assert_eq!(out, vec![vec![s("u3")]]);
    Ok(())
}

#[test]
fn errors_draw_a_caret() -> Result<(), Box<dyn std::error::Error>> {
    let (_dir, db) = setup()?;
    let e = db
        .execute("SELECT id\nFROM users WHERE spend_7 > 1")
        .err()
        .ok_or("accepted")?;
    assert!(matches!(e, Error::Query(_)));
    assert_eq!(
        e.to_string(),
        "unknown column 'spend_7' (did you mean 'spend_7d'?) (line 2, column 18)\n  FROM users WHERE spend_7 > 1\n                   ^^^^^^^"
    );
    let e = db
        .execute("INSERT INTO browse (user, ts, item_vec) VALUES ('u1', 1, [1, 2])")
        .err()
        .ok_or("accepted")?;
    assert!(
        e.to_string()
            .starts_with("vector 'taste' has dimension 8, but the value has 2 elements"),
        "{e}"
    );
    Ok(())
}
