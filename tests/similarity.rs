//! Similarity rankings through `Db::execute` on RocksDB equal a naive full sort
//! written here (scalar f64 arithmetic over each user's profile), ties broken by
//! id, for every metric, with and without filters; the index reads its writes
//! and forgets deleted users; planted lookalikes rank first.

use profiledb::{Db, Output, Value};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DIM: usize = 7;
const REGIONS: [&str; 3] = ["north", "south", "east"];

/// A WHERE clause and the same test written in Rust.
type Filter = (&'static str, fn(&User) -> bool);

struct User {
    id: String,
    taste: Option<Vec<f32>>,
    region: Option<String>,
    spend: f64,
}

fn rows(out: &Output) -> Vec<Vec<Value>> {
    out.rows().map(|r| r.rows.clone()).unwrap_or_default()
}

fn vec_sql(v: &[f32]) -> String {
    let items: Vec<String> = v.iter().map(|x| format!("{x:?}")).collect();
    format!("[{}]", items.join(", "))
}

/// The naive score: cosine and dot greater-is-closer, l2 the distance.
fn naive_score(metric: &str, q: &[f32], v: &[f32]) -> Option<f64> {
    let dot: f64 = q
        .iter()
        .zip(v)
        .map(|(a, b)| f64::from(*a) * f64::from(*b))
        .sum();
    let nq = q.iter().map(|a| f64::from(*a).powi(2)).sum::<f64>().sqrt();
    let nv = v.iter().map(|a| f64::from(*a).powi(2)).sum::<f64>().sqrt();
    match metric {
        "dot" => Some(dot),
        "cosine" if nq == 0.0 || nv == 0.0 => None,
        "cosine" => Some(dot / (nq * nv)),
        _ => Some(
            q.iter()
                .zip(v)
                .map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2))
                .sum::<f64>()
                .sqrt(),
        ),
    }
}

fn setup(db: &Db, rng: &mut StdRng, n: usize) -> Result<Vec<User>, Box<dyn std::error::Error>> {
    db.execute_script(&format!(
        "CREATE ATTRIBUTE region STRING ON signup;
         CREATE FEATURE spend ON purchase AS SUM(amount);
         CREATE VECTOR taste ON view AS EWMA(item_vec) DIM {DIM} HALF_LIFE '14d';
         CREATE SEGMENT big AS spend > 50;"
    ))?;
    let mut users = Vec::new();
    let shared: Vec<f32> = (0..DIM).map(|_| rng.random_range(-1.0..1.0)).collect();
    for i in 0..n {
        let id = format!("u{i:04}");
        // Some users share one vector exactly, so ties must fall back to id.
        let taste = match i % 10 {
            0 => None,
            1 => Some(shared.clone()),
            2 => Some(vec![0.0; DIM]),
            _ => Some((0..DIM).map(|_| rng.random_range(-1.0..1.0)).collect()),
        };
        let region = (i % 4 != 3).then(|| REGIONS[rng.random_range(0..3)].to_owned());
        let spend = if rng.random_bool(0.5) {
            rng.random_range(0.0..100.0)
        } else {
            0.0
        };
        let mut script = String::new();
        if let Some(v) = &taste {
            script += &format!(
                "INSERT INTO view (user, ts, item_vec) VALUES ('{id}', 1000, {});",
                vec_sql(v)
            );
        }
        if let Some(r) = &region {
            script +=
                &format!("INSERT INTO signup (user, ts, region) VALUES ('{id}', 1000, '{r}');");
        }
        script +=
            &format!("INSERT INTO purchase (user, ts, amount) VALUES ('{id}', 1000, {spend:?});");
        db.execute_script(&script)?;
        users.push(User {
            id,
            taste,
            region,
            spend,
        });
    }
    Ok(users)
}

#[test]
fn top_k_equals_a_naive_full_sort() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let db = Db::open(dir.path())?;
    let mut rng = StdRng::seed_from_u64(17);
    let users = setup(&db, &mut rng, 600)?;
    let filters: [Filter; 4] = [
        ("", |_| true),
        ("WHERE region = 'north'", |u| {
            u.region.as_deref() == Some("north")
        }),
        ("WHERE spend > 50", |u| u.spend > 50.0),
        ("WHERE NOT IN SEGMENT big AND region IS NOT NULL", |u| {
            u.spend <= 50.0 && u.region.is_some()
        }),
    ];
    let mut ranked = 0;
    for case in 0..120 {
        let metric = ["cosine", "dot", "l2_distance"][case % 3];
        let (where_, keep) = filters[(case / 3) % filters.len()];
        let k = rng.random_range(1..40);
        // Against a user's vector or a literal.
        let (target_sql, q) = if rng.random_bool(0.5) {
            let u = &users[rng.random_range(0..users.len())];
            match &u.taste {
                Some(v) => (format!("'{}'", u.id), v.clone()),
                None => continue,
            }
        } else {
            let q: Vec<f32> = (0..DIM).map(|_| rng.random_range(-1.0..1.0)).collect();
            (vec_sql(&q), q)
        };
        let dir = if metric == "l2_distance" {
            "ASC"
        } else {
            "DESC"
        };
        let sql = format!(
            "SELECT id, {metric}(taste, {target_sql}) AS s FROM users {where_} ORDER BY s {dir} LIMIT {k}"
        );
        let got = rows(&db.execute(&sql)?);
        let mut want: Vec<(&str, f64)> = users
            .iter()
            .filter(|u| keep(u))
            .filter_map(|u| Some((u.id.as_str(), naive_score(metric, &q, u.taste.as_ref()?)?)))
            .collect();
        want.sort_by(|a, b| {
            let o = if metric == "l2_distance" {
                a.1.total_cmp(&b.1)
            } else {
                b.1.total_cmp(&a.1)
            };
            o.then_with(|| a.0.cmp(b.0))
        });
        want.truncate(k);
        let got_ids: Vec<&Value> = got.iter().map(|r| &r[0]).collect();
        let want_ids: Vec<Value> = want.iter().map(|w| Value::String(w.0.to_owned())).collect();
        assert_eq!(got_ids, want_ids.iter().collect::<Vec<_>>(), "{sql}");
        for (g, w) in got.iter().zip(&want) {
            let Value::Float(s) = g[1] else {
                panic!("{sql}: score {:?}", g[1]);
            };
            assert!(
                (s - w.1).abs() <= 1e-5 * w.1.abs().max(1.0),
                "{sql}: {s} vs {}",
                w.1
            );
        }
        ranked += got.len();
        // The plan ranks on the index.
        let plan = format!("{:?}", rows(&db.execute(&format!("EXPLAIN {sql}"))?));
        assert!(plan.contains("VectorTopK"), "{sql}: {plan}");
    }
    assert!(
        ranked > 1000,
        "the cases ranked too little to prove anything: {ranked}"
    );
    Ok(())
}

#[test]
fn writes_and_deletes_show_at_once_and_lookalikes_rank_first()
-> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let db = Db::open(dir.path())?;
    let mut rng = StdRng::seed_from_u64(5);
    setup(&db, &mut rng, 200)?;
    let q = vec![1.0f32; DIM];
    let top = |db: &Db| -> Result<Vec<Vec<Value>>, profiledb::Error> {
        Ok(rows(&db.execute(&format!(
            "SELECT id FROM users ORDER BY cosine(taste, {}) DESC LIMIT 1",
            vec_sql(&q)
        ))?))
    };
    // A new user pointing exactly at q ranks first on the very next query.
    db.execute(&format!(
        "INSERT INTO view (user, ts, item_vec) VALUES ('zz_new', 1000, {})",
        vec_sql(&q)
    ))?;
    assert_eq!(top(&db)?, vec![vec![Value::String("zz_new".into())]]);
    db.execute("DELETE USER 'zz_new'")?;
    assert_ne!(top(&db)?, vec![vec![Value::String("zz_new".into())]]);

    // Lookalikes: plant users near the centre of a segment's members.
    let centre: Vec<f32> = (0..DIM)
        .map(|i| if i % 2 == 0 { 5.0 } else { -5.0 })
        .collect();
    for i in 0..5 {
        let v: Vec<f32> = centre.iter().map(|x| x + 0.01 * i as f32).collect();
        db.execute_script(&format!(
            "INSERT INTO view (user, ts, item_vec) VALUES ('seed{i}', 1000, {v});
             INSERT INTO purchase (user, ts, amount) VALUES ('seed{i}', 1000, 1000.0);
             INSERT INTO view (user, ts, item_vec) VALUES ('look{i}', 1000, {v});",
            v = vec_sql(&v)
        ))?;
    }
    db.execute("CREATE SEGMENT whales AS spend > 500")?;
    let got = rows(&db.execute(
        "SELECT id FROM users WHERE NOT IN SEGMENT whales ORDER BY cosine(taste, centroid(taste, whales)) DESC LIMIT 5",
    )?);
    let mut ids: Vec<String> = got
        .iter()
        .filter_map(|r| match &r[0] {
            Value::String(s) => Some(s.clone()),
            _ => None,
        })
        .collect();
    ids.sort();
    assert_eq!(ids, (0..5).map(|i| format!("look{i}")).collect::<Vec<_>>());
    Ok(())
}

#[test]
fn clusters_recover_planted_groups_and_become_segments() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let db = Db::open(dir.path())?;
    db.execute("CREATE VECTOR taste ON view AS EWMA(item_vec) DIM 8 HALF_LIFE '14d'")?;
    let mut rng = StdRng::seed_from_u64(9);
    // Four planted groups of different sizes, far apart, with a little noise.
    let sizes = [120usize, 80, 60, 40];
    let mut rows_sql = Vec::new();
    for (g, n) in sizes.iter().enumerate() {
        for i in 0..*n {
            let v: Vec<f32> = (0..8)
                .map(|d| if d == g * 2 { 10.0 } else { 0.0 } + rng.random_range(-0.5..0.5))
                .collect();
            rows_sql.push(format!("('g{g}_{i:03}', 1000, {})", vec_sql(&v)));
        }
    }
    db.execute(&format!(
        "INSERT INTO view (user, ts, item_vec) VALUES {}",
        rows_sql.join(", ")
    ))?;
    let a = rows(&db.execute("CLUSTER users BY taste INTO 4 SEED 3")?);
    let b = rows(&db.execute("CLUSTER users BY taste INTO 4 SEED 3")?);
    assert_eq!(a, b, "a seed gives one answer");
    let mut got_sizes: Vec<i64> = a
        .iter()
        .map(|r| match r[1] {
            Value::Int(n) => n,
            _ => -1,
        })
        .collect();
    got_sizes.sort_unstable();
    assert_eq!(got_sizes, vec![40, 60, 80, 120]);

    db.execute("CREATE SEGMENTS taste_group FROM CLUSTER users BY taste INTO 4 SEED 3")?;
    // Each planted group lands whole in one segment.
    for (g, size) in sizes.iter().enumerate() {
        let out = rows(&db.execute(&format!(
            "SELECT nearest_cluster(taste_group) AS c, count(*) FROM users WHERE id BETWEEN 'g{g}_' AND 'g{g}_999' GROUP BY c"
        ))?);
        assert_eq!(out.len(), 1, "group {g} split: {out:?}");
        assert_eq!(out[0][1], Value::Int(*size as i64));
        let c = &out[0][0];
        let n = rows(&db.execute(&format!(
            "SELECT count(*) FROM users WHERE IN SEGMENT taste_group_{}",
            match c {
                Value::Int(i) => *i,
                _ => -1,
            }
        ))?);
        assert_eq!(n, vec![vec![Value::Int(*size as i64)]]);
    }
    assert!(db.execute("DROP SEGMENT taste_group_0").is_err());
    db.execute("DROP SEGMENTS taste_group")?;
    assert!(rows(&db.execute("SHOW SEGMENTS")?).is_empty());
    Ok(())
}
