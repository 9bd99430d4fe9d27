//! Differential test of the query planner and executor: random users, random
//! `WHERE` predicates, and the planned answer (point lookups or a scan split into
//! parallel partitions) compared with a naive evaluation written here, with its
//! own three-valued logic, over values the test computes from the events and
//! attribute writes it sent (the decayed sum by its definition), sharing no
//! evaluation code with the engine.

use std::cmp::Ordering;

use profiledb::{Db, Output, Value};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const T0: i64 = 1_794_700_800_000; // 2026-11-15T00:00:00Z
const DAY: i64 = 86_400_000;
const REGIONS: [&str; 4] = ["north", "south", "east", "west"];

/// A random predicate, printable as SQL and evaluable naively.
#[derive(Debug, Clone)]
enum Pred {
    AgeCmp(&'static str, i64),
    SpendCmp(&'static str, f64),
    PurchasesCmp(&'static str, i64),
    RegionEq(&'static str),
    RegionIn(Vec<&'static str>, bool),
    AgeBetween(i64, i64, bool),
    AgeIsNull(bool),
    IdCmp(&'static str, String),
    Not(Box<Pred>),
    And(Box<Pred>, Box<Pred>),
    Or(Box<Pred>, Box<Pred>),
}

const OPS: [&str; 6] = ["=", "!=", "<", "<=", ">", ">="];

fn random_pred(rng: &mut StdRng, depth: u32) -> Pred {
    let leaf = depth == 0 || rng.random_bool(0.35);
    if leaf {
        let op = OPS[rng.random_range(0..OPS.len())];
        return match rng.random_range(0..8) {
            0 => Pred::AgeCmp(op, rng.random_range(15..70)),
            1 => Pred::SpendCmp(op, rng.random_range(0.0..200.0)),
            2 => Pred::PurchasesCmp(op, rng.random_range(0..5)),
            3 => Pred::RegionEq(REGIONS[rng.random_range(0..4)]),
            4 => {
                let n = rng.random_range(1..4);
                let list = (0..n).map(|_| REGIONS[rng.random_range(0..4)]).collect();
                Pred::RegionIn(list, rng.random_bool(0.3))
            }
            5 => {
                let lo = rng.random_range(10..60);
                Pred::AgeBetween(lo, lo + rng.random_range(0..25), rng.random_bool(0.3))
            }
            6 => Pred::AgeIsNull(rng.random_bool(0.5)),
            _ => Pred::IdCmp(op, format!("u{:04}", rng.random_range(0..400))),
        };
    }
    match rng.random_range(0..3) {
        0 => Pred::Not(Box::new(random_pred(rng, depth - 1))),
        1 => Pred::And(
            Box::new(random_pred(rng, depth - 1)),
            Box::new(random_pred(rng, depth - 1)),
        ),
        _ => Pred::Or(
            Box::new(random_pred(rng, depth - 1)),
            Box::new(random_pred(rng, depth - 1)),
        ),
    }
}

fn sql(p: &Pred) -> String {
    match p {
        Pred::AgeCmp(op, x) => format!("age {op} {x}"),
        Pred::SpendCmp(op, x) => format!("spend {op} {x:?}"),
        Pred::PurchasesCmp(op, x) => format!("purchases {op} {x}"),
        Pred::RegionEq(r) => format!("region = '{r}'"),
        Pred::RegionIn(list, neg) => {
            let items: Vec<String> = list.iter().map(|r| format!("'{r}'")).collect();
            format!(
                "region {}IN ({})",
                if *neg { "NOT " } else { "" },
                items.join(", ")
            )
        }
        Pred::AgeBetween(lo, hi, neg) => {
            format!(
                "age {}BETWEEN {lo} AND {hi}",
                if *neg { "NOT " } else { "" }
            )
        }
        Pred::AgeIsNull(neg) => format!("age IS {}NULL", if *neg { "NOT " } else { "" }),
        Pred::IdCmp(op, id) => format!("id {op} '{id}'"),
        Pred::Not(x) => format!("NOT ({})", sql(x)),
        Pred::And(a, b) => format!("({}) AND ({})", sql(a), sql(b)),
        Pred::Or(a, b) => format!("({}) OR ({})", sql(a), sql(b)),
    }
}

/// One user's values, computed from what the test wrote.
struct Row {
    id: String,
    age: Option<i64>,
    region: Option<String>,
    spend: f64,
    purchases: i64,
}

fn cmp_op<T: PartialOrd>(op: &str, a: &T, b: &T) -> bool {
    let o = a.partial_cmp(b).unwrap_or(Ordering::Equal);
    match op {
        "=" => o.is_eq(),
        "!=" => o.is_ne(),
        "<" => o.is_lt(),
        "<=" => o.is_le(),
        ">" => o.is_gt(),
        _ => o.is_ge(),
    }
}

/// Three-valued: `None` is unknown.
fn naive(p: &Pred, r: &Row) -> Option<bool> {
    match p {
        Pred::AgeCmp(op, x) => r.age.map(|a| cmp_op(op, &a, x)),
        Pred::SpendCmp(op, x) => Some(cmp_op(op, &r.spend, x)),
        Pred::PurchasesCmp(op, x) => Some(cmp_op(op, &r.purchases, x)),
        Pred::RegionEq(x) => r.region.as_deref().map(|g| g == *x),
        Pred::RegionIn(list, neg) => r.region.as_deref().map(|g| list.contains(&g) != *neg),
        Pred::AgeBetween(lo, hi, neg) => r.age.map(|a| (a >= *lo && a <= *hi) != *neg),
        Pred::AgeIsNull(neg) => Some(r.age.is_none() != *neg),
        Pred::IdCmp(op, id) => Some(cmp_op(op, &r.id, id)),
        Pred::Not(x) => naive(x, r).map(|b| !b),
        Pred::And(a, b) => match (naive(a, r), naive(b, r)) {
            (Some(false), _) | (_, Some(false)) => Some(false),
            (Some(true), Some(true)) => Some(true),
            _ => None,
        },
        Pred::Or(a, b) => match (naive(a, r), naive(b, r)) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (Some(false), Some(false)) => Some(false),
            _ => None,
        },
    }
}

fn rows_of(out: &Output) -> Vec<Vec<Value>> {
    out.rows().map(|r| r.rows.clone()).unwrap_or_default()
}

#[test]
fn planned_answers_equal_naive_evaluation() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let db = Db::open(dir.path())?;
    // Attributes are set now, and read as of T0 (before now): without the
    // event history, as stored, which the naive model below assumes.
    db.execute_script(
        "ALTER DATABASE SET HISTORY '0s';
         CREATE ATTRIBUTE age INT;
         CREATE ATTRIBUTE region STRING;
         CREATE FEATURE purchases ON purchase AS COUNT();
         CREATE FEATURE spend ON purchase AS DECAYED_SUM(amount) HALF_LIFE '7d';",
    )?;
    let mut rng = StdRng::seed_from_u64(7);
    let users = 400;
    let half_life = (7 * DAY) as f64;
    let mut rows = Vec::new();
    // Users go in by id in chunks, each flushed to its own file, so that the
    // scan splits into several partitions.
    for chunk in 0..4 {
        let mut inserts = Vec::new();
        for u in chunk * users / 4..(chunk + 1) * users / 4 {
            let id = format!("u{u:04}");
            let mut row = Row {
                id: id.clone(),
                age: None,
                region: None,
                spend: 0.0,
                purchases: 0,
            };
            for _ in 0..rng.random_range(0..4) {
                let ts = T0 - rng.random_range(0..30 * DAY);
                let amount: f64 = rng.random_range(1.0..100.0);
                inserts.push(format!("('{id}', {ts}, {amount:?})"));
                // DECAYED_SUM(amount) HALF_LIFE '7d', read at T0.
                row.spend += amount * 0.5f64.powf((T0 - ts) as f64 / half_life);
                row.purchases += 1;
            }
            let mut set = Vec::new();
            if rng.random_bool(0.8) {
                let age = rng.random_range(15..70);
                set.push(format!("age = {age}"));
                row.age = Some(age);
            }
            if rng.random_bool(0.8) {
                let region = REGIONS[rng.random_range(0..4)];
                set.push(format!("region = '{region}'"));
                row.region = Some(region.to_owned());
            }
            rows.push(row);
            if set.is_empty() {
                set.push("age = NULL".into());
            }
            db.execute(&format!(
                "UPDATE users SET {} WHERE id = '{id}'",
                set.join(", ")
            ))?;
        }
        if !inserts.is_empty() {
            db.execute(&format!(
                "INSERT INTO purchase (user, ts, amount) VALUES {}",
                inserts.join(", ")
            ))?;
        }
        db.flush()?;
    }
    let explain = rows_of(&db.execute("EXPLAIN SELECT id FROM users WHERE spend > 1")?);
    let scan_line = format!("{explain:?}");
    assert!(
        !scan_line.contains("1 partition as of"),
        "the test should scan several partitions: {scan_line}"
    );

    let (mut some, mut all, mut none) = (0, 0, 0);
    for case in 0..300 {
        let p = random_pred(&mut rng, 3);
        let where_ = sql(&p);
        let got = rows_of(&db.execute(&format!("SELECT id FROM users WHERE {where_} AS OF {T0}"))?);
        let want: Vec<Vec<Value>> = rows
            .iter()
            .filter(|r| naive(&p, r) == Some(true))
            .map(|r| vec![Value::String(r.id.clone())])
            .collect();
        assert_eq!(got, want, "case {case}: WHERE {where_}");
        match want.len() {
            0 => none += 1,
            n if n == rows.len() => all += 1,
            _ => some += 1,
        }

        // The same filter, counted and grouped.
        let got = rows_of(&db.execute(&format!(
            "SELECT region, count(*), sum(purchases) FROM users WHERE {where_} GROUP BY region ORDER BY region AS OF {T0}"
        ))?);
        let mut groups: std::collections::BTreeMap<Option<String>, (i64, i64)> =
            std::collections::BTreeMap::new();
        for r in rows.iter().filter(|r| naive(&p, r) == Some(true)) {
            let g = groups.entry(r.region.clone()).or_default();
            g.0 += 1;
            g.1 += r.purchases;
        }
        // NULL sorts last.
        let mut want: Vec<Vec<Value>> = groups
            .iter()
            .filter(|(k, _)| k.is_some())
            .chain(groups.iter().filter(|(k, _)| k.is_none()))
            .map(|(k, (n, s))| {
                vec![
                    k.clone().map_or(Value::Null, Value::String),
                    Value::Int(*n),
                    Value::Int(*s),
                ]
            })
            .collect();
        want.dedup();
        assert_eq!(got, want, "case {case}: grouped WHERE {where_}");

        // And as a top-k by spend, ties broken by id.
        let k = rng.random_range(1..20);
        let got = rows_of(&db.execute(&format!(
            "SELECT id, spend FROM users WHERE {where_} ORDER BY spend DESC LIMIT {k} AS OF {T0}"
        ))?);
        let mut matching: Vec<&Row> = rows.iter().filter(|r| naive(&p, r) == Some(true)).collect();
        matching.sort_by(|a, b| b.spend.total_cmp(&a.spend).then_with(|| a.id.cmp(&b.id)));
        let want: Vec<(&str, f64)> = matching
            .iter()
            .take(k)
            .map(|r| (r.id.as_str(), r.spend))
            .collect();
        let same = got.len() == want.len()
            && got.iter().zip(&want).all(|(g, (id, spend))| {
                matches!((&g[0], &g[1]), (Value::String(gid), Value::Float(gs))
                    if gid == id && (gs - spend).abs() <= 1e-9 * spend.abs().max(1.0))
            });
        assert!(
            same,
            "case {case}: top {k} WHERE {where_}: {got:?} vs {want:?}"
        );
    }
    // The predicates are neither trivially empty nor trivially full.
    assert!(
        some > 150 && none > 5 && all > 0,
        "some {some}, none {none}, all {all}"
    );
    Ok(())
}
