//! A `SELECT` over users spread across several databases (each runs its part
//! and the one asked merges them, as a cluster's nodes do) answers what one
//! database fed every event answers: the same rows in the same order, floats
//! equal up to the order of summation.

use profiledb_query::{Error, Limits, Output, Part, Peers, create_segments_from, execute, partial};
use profiledb_storage::kv::memory::MemoryKv;
use profiledb_storage::{MemoryEngine, Value};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const NOW: i64 = 1_794_700_800_000;

/// Peers run in this process, each through `partial` as a node would.
struct InProcess(Vec<MemoryEngine>);

impl Peers for InProcess {
    fn partials(&self, select: &str, now: i64, limits: &Limits) -> Result<Vec<Vec<u8>>, Error> {
        self.0
            .iter()
            .map(|p| partial(&Part::new(p, now), select, now, limits))
            .collect()
    }
}

/// Which of three parts a user belongs to, by a rule of this test's own.
fn third(user: &str) -> usize {
    user.bytes().map(usize::from).sum::<usize>() % 3
}

/// Peers that hold every user, each answering for one third of them.
struct Thirds<'a>(&'a MemoryEngine);

impl Peers for Thirds<'_> {
    fn partials(&self, select: &str, now: i64, limits: &Limits) -> Result<Vec<Vec<u8>>, Error> {
        (1..3)
            .map(|i| {
                let keep = move |u: &str| third(u) == i;
                partial(&Part::new(self.0, now).keeping(&keep), select, now, limits)
            })
            .collect()
    }
}

const SCHEMA: &str = "CREATE FEATURE n ON purchase AS COUNT();
    CREATE FEATURE spend ON purchase AS SUM(amount);
    CREATE FEATURE recent ON purchase AS DECAYED_SUM(amount) HALF_LIFE '7d';
    CREATE FEATURE biggest ON purchase AS MAX(amount);
    CREATE ATTRIBUTE region STRING ON purchase;
    CREATE ATTRIBUTE level INT ON purchase;
    CREATE SEGMENT big AS spend > 300;";

fn memory() -> Result<MemoryEngine, Error> {
    let db = MemoryEngine::over(MemoryKv::new().with_parts(3))?.with_now(NOW);
    execute(&db, SCHEMA, &Limits::default())?;
    Ok(db)
}

/// `users` users' random purchases as `INSERT` statements, one per user.
fn inserts(seed: u64, users: usize) -> Vec<(String, String)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let regions = ["north", "south", "east", "west", "middle"];
    (0..users)
        .map(|u| {
            let user = format!("u{u:04}");
            let region = regions[rng.random_range(0..regions.len())];
            let level = rng.random_range(0..4);
            let rows: Vec<String> = (0..rng.random_range(1..8))
                .map(|_| {
                    let ts = NOW - rng.random_range(0..30 * 86_400_000i64);
                    // Whole amounts, so that integer sums tie often.
                    let amount = f64::from(rng.random_range(1..40) * 5);
                    format!("('{user}', {ts}, {amount}, '{region}', {level})")
                })
                .collect();
            let sql = format!(
                "INSERT INTO purchase (user, ts, amount, region, level) VALUES {}",
                rows.join(", ")
            );
            (user, sql)
        })
        .collect()
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
        _ => a == b,
    }
}

/// `sql` answers the same rows, in the same order, from `merged` as from
/// `one` (floats up to the order of summation).
fn answers_alike(one: &Part<'_>, merged: &Part<'_>, sql: &str) -> Result<(), Error> {
    let want = execute(one, sql, &Limits::default())?;
    let got = execute(merged, sql, &Limits::default())?;
    let (want, got) = (want[0].rows().expect("rows"), got[0].rows().expect("rows"));
    assert_eq!(want.columns, got.columns, "{sql}");
    assert!(!want.rows.is_empty(), "{sql}: the reference has no rows");
    assert_eq!(want.rows.len(), got.rows.len(), "{sql}");
    for (w, g) in want.rows.iter().zip(&got.rows) {
        assert!(
            w.len() == g.len() && w.iter().zip(g).all(|(a, b)| same(a, b)),
            "{sql}:\n want {w:?}\n got  {g:?}"
        );
    }
    Ok(())
}

const QUERIES: &[&str] = &[
    "SELECT count(*) FROM users",
    "SELECT count(*), sum(spend), avg(recent), min(biggest), max(n) FROM users WHERE n >= 3",
    "SELECT region, count(*) AS c, sum(spend) AS s, stddev(recent) AS sd, median(spend) AS m, percentile(recent, 0.9) AS p90, count(DISTINCT level) AS levels FROM users GROUP BY region ORDER BY region",
    "SELECT level, region, count(*) FROM users GROUP BY level, region HAVING count(*) > 10 ORDER BY count(*) DESC, level, region",
    "SELECT id, spend FROM users ORDER BY spend DESC LIMIT 17",
    "SELECT id, n, region FROM users ORDER BY n LIMIT 9 OFFSET 4",
    "SELECT id FROM users LIMIT 12",
    "SELECT id, recent FROM users WHERE region = 'east' AND IN SEGMENT big ORDER BY recent DESC",
    "SELECT DISTINCT region, level FROM users ORDER BY region, level",
    "SELECT id, spend FROM users WHERE id IN ('u0003', 'u0100', 'u0199', 'nobody')",
    "SELECT id, spend, recent FROM users WHERE spend BETWEEN 100 AND 200",
    "SELECT 1 + 1 AS two, round(2.5) AS x",
    "SELECT region, variance(spend) FROM users WHERE level > 0 GROUP BY region",
    "SELECT id, spend FROM users ORDER BY spend DESC LIMIT 5 AS OF '2026-11-20T00:00:00Z'",
];

#[test]
fn merged_parts_answer_what_one_database_answers() -> Result<(), Error> {
    let one = memory()?;
    let parts: Vec<MemoryEngine> = (0..3).map(|_| memory()).collect::<Result<_, _>>()?;
    for (user, sql) in inserts(7, 300) {
        execute(&one, &sql, &Limits::default())?;
        // Users spread over three databases.
        execute(&parts[third(&user)], &sql, &Limits::default())?;
    }
    let mut parts = parts.into_iter();
    let first = parts.next().expect("three parts");
    let peers = InProcess(parts.collect());
    let merged = Part::new(&first, NOW).with_peers(&peers);
    // The same users all in one database, each part reading its third: as
    // a node reads the partitions it answers for among those it holds.
    let thirds = Thirds(&one);
    let keep = |u: &str| third(u) == 0;
    let kept = Part::new(&one, NOW).keeping(&keep).with_peers(&thirds);
    let one = Part::new(&one, NOW);
    for sql in QUERIES {
        for merged in [&merged, &kept] {
            answers_alike(&one, merged, sql)?;
        }
    }
    Ok(())
}

/// Users with random taste vectors (4 dimensions) as `INSERT` statements.
fn tastes(seed: u64, users: usize) -> Vec<(String, String)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let regions = ["north", "south", "east"];
    (0..users)
        .map(|u| {
            let user = format!("u{u:04}");
            let region = regions[rng.random_range(0..regions.len())];
            let rows: Vec<String> = (0..rng.random_range(1..4))
                .map(|_| {
                    let ts = NOW - rng.random_range(0..10 * 86_400_000i64);
                    let amount = f64::from(rng.random_range(1..40) * 5);
                    let v: Vec<String> = (0..4)
                        .map(|_| format!("{:.2}", rng.random_range(-1.0..1.0f64)))
                        .collect();
                    format!("('{user}', {ts}, {amount}, '{region}', [{}])", v.join(", "))
                })
                .collect();
            let sql = format!(
                "INSERT INTO purchase (user, ts, amount, region, v) VALUES {}",
                rows.join(", ")
            );
            (user, sql)
        })
        .collect()
}

/// A database of [`SCHEMA`] with a 4-dimension taste vector and a segment
/// no user is in.
fn vector_memory() -> Result<MemoryEngine, Error> {
    let db = memory()?;
    execute(
        &db,
        "CREATE VECTOR taste ON purchase AS EWMA(v) DIM 4 HALF_LIFE '7d';
         CREATE SEGMENT nobody AS spend > 1000000",
        &Limits::default(),
    )?;
    Ok(db)
}

/// One database, its three thirds, and three copies: see [`spread`].
type Spread = (MemoryEngine, Vec<MemoryEngine>, Vec<MemoryEngine>);

/// `inserts` (user, statement) in databases of [`vector_memory`]: one that
/// holds every user, three that hold a third each, and three more that hold
/// every user, as nodes holding standby copies.
fn spread(inserts: impl IntoIterator<Item = (String, String)>) -> Result<Spread, Error> {
    let one = vector_memory()?;
    let parts: Vec<MemoryEngine> = (0..3).map(|_| vector_memory()).collect::<Result<_, _>>()?;
    let copies: Vec<MemoryEngine> = (0..3).map(|_| vector_memory()).collect::<Result<_, _>>()?;
    for (user, sql) in inserts {
        execute(&one, &sql, &Limits::default())?;
        execute(&parts[third(&user)], &sql, &Limits::default())?;
        for c in &copies {
            execute(c, &sql, &Limits::default())?;
        }
    }
    Ok((one, parts, copies))
}

/// Peers that each hold every user in a database of their own (a ranking
/// pins the vector index of the database it reads), answering for the
/// second and third thirds.
struct Copies<'a>(&'a [MemoryEngine]);

impl Peers for Copies<'_> {
    fn partials(&self, select: &str, now: i64, limits: &Limits) -> Result<Vec<Vec<u8>>, Error> {
        self.0
            .iter()
            .zip(1..3)
            .map(|(db, i)| {
                let keep = move |u: &str| third(u) == i;
                partial(&Part::new(db, now).keeping(&keep), select, now, limits)
            })
            .collect()
    }
}

const SIMILARITY: &[&str] = &[
    "SELECT id, cosine(taste, 'u0007') AS s FROM users ORDER BY s DESC LIMIT 10",
    "SELECT id, dot(taste, [0.5, -0.25, 1.0, 0.0]) AS s FROM users WHERE region = 'east' ORDER BY s DESC LIMIT 7",
    "SELECT id, l2_distance(taste, 'u0100') AS d FROM users ORDER BY d LIMIT 5",
    "SELECT id, cosine(taste, 'u0003') AS s FROM users WHERE spend > 50 ORDER BY s DESC LIMIT 8",
    "SELECT count(*), avg(cosine(taste, 'u0010')) FROM users WHERE cosine(taste, 'u0010') > 0.5",
    "SELECT id, cosine(taste, 'u0042') AS s FROM users ORDER BY s DESC LIMIT 6 WITH (exact = true)",
    // A centroid is its members' vectors summed on each part.
    "SELECT id, cosine(taste, centroid(taste, big)) AS s FROM users ORDER BY s DESC LIMIT 10",
    "SELECT id, l2_distance(taste, centroid(taste, big)) AS d FROM users WHERE NOT IN SEGMENT big ORDER BY d LIMIT 5",
    "SELECT id, cosine(taste, centroid(taste, big)) AS s FROM users ORDER BY s DESC LIMIT 5 AS OF '2026-11-10T00:00:00Z'",
    "SELECT count(*), avg(cosine(taste, centroid(taste, nobody))) FROM users",
    "SELECT region, avg(taste) AS m, sum(taste) AS s, count(taste) AS n FROM users GROUP BY region ORDER BY region",
    // A user with no vector yet: every score NULL, as on one database.
    "SELECT id, cosine(taste, 'novec') AS s FROM users ORDER BY id LIMIT 5",
    "SELECT count(*), count(cosine(taste, 'novec')) FROM users",
];

#[test]
fn similarity_rankings_merge_across_parts() -> Result<(), Error> {
    let mut users = tastes(11, 300);
    users.push((
        "novec".to_owned(),
        format!(
            "INSERT INTO purchase (user, ts, amount, region) VALUES ('novec', {}, 5, 'east')",
            NOW - 1000
        ),
    ));
    let (one, parts, copies) = spread(users)?;
    let mut parts = parts.into_iter();
    let first = parts.next().expect("three parts");
    // The user with no vector lives in another part than the first.
    assert_ne!(third("novec"), 0);
    // The users compared with live in other parts than the first.
    assert!(["u0007", "u0100", "u0003"].iter().any(|u| third(u) != 0));
    let peers = InProcess(parts.collect());
    let merged = Part::new(&first, NOW).with_peers(&peers);
    let others = Copies(&copies[1..]);
    let keep = |u: &str| third(u) == 0;
    let kept = Part::new(&copies[0], NOW)
        .keeping(&keep)
        .with_peers(&others);
    let one = Part::new(&one, NOW);
    for sql in SIMILARITY {
        for merged in [&merged, &kept] {
            answers_alike(&one, merged, sql)?;
        }
    }
    // A user no part holds is unknown, as on one database.
    let sql = "SELECT id, cosine(taste, 'nobody') AS s FROM users ORDER BY s DESC LIMIT 3";
    let (Err(want), Err(got)) = (
        execute(&one, sql, &Limits::default()),
        execute(&merged, sql, &Limits::default()),
    ) else {
        panic!("{sql} was answered");
    };
    assert!(
        want.to_string().contains("nobody") && got.to_string().contains("nobody"),
        "{want} / {got}"
    );
    Ok(())
}

/// `CLUSTER`'s rows: (size, centroid) per cluster.
fn clusters(source: &Part<'_>, sql: &str) -> Result<Vec<(i64, Vec<f32>)>, Error> {
    let out = execute(source, sql, &Limits::default())?;
    Ok(out[0]
        .rows()
        .expect("rows")
        .rows
        .iter()
        .map(|r| match r.as_slice() {
            [Value::Int(_), Value::Int(n), Value::Vector(c)] => (*n, c.clone()),
            other => panic!("{sql}: a row {other:?}"),
        })
        .collect())
}

/// Every user's vector, read back from one database.
fn all_vectors(one: &Part<'_>, filter: &str) -> Result<Vec<Vec<f32>>, Error> {
    let out = execute(
        one,
        &format!("SELECT taste FROM users WHERE taste IS NOT NULL{filter}"),
        &Limits::default(),
    )?;
    Ok(out[0]
        .rows()
        .expect("rows")
        .rows
        .iter()
        .map(|r| match r.as_slice() {
            [Value::Vector(v)] => v.clone(),
            other => panic!("a row {other:?}"),
        })
        .collect())
}

fn l2sq(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
        .sum()
}

/// `clusters` is a k-means fixed point of `points`: each centroid is the
/// mean of the points nearest to it (ties to the first), and its size
/// their number; checked here by a naive assignment of the test's own.
fn assert_settled(points: &[Vec<f32>], clusters: &[(i64, Vec<f32>)], what: &str) {
    let k = clusters.len();
    let mut sums = vec![vec![0f64; 4]; k];
    let mut sizes = vec![0i64; k];
    for p in points {
        let mut best = (0, f64::INFINITY);
        for (j, (_, c)) in clusters.iter().enumerate() {
            let d = l2sq(p, c);
            if d < best.1 {
                best = (j, d);
            }
        }
        sizes[best.0] += 1;
        for (s, x) in sums[best.0].iter_mut().zip(p) {
            *s += f64::from(*x);
        }
    }
    for (j, (size, centroid)) in clusters.iter().enumerate() {
        assert_eq!(*size, sizes[j], "{what}: cluster {j} size");
        for (x, s) in centroid.iter().zip(&sums[j]) {
            let mean = s / sizes[j] as f64;
            assert!(
                (f64::from(*x) - mean).abs() < 1e-5,
                "{what}: cluster {j} centroid {centroid:?}, its members' mean {:?}",
                sums[j]
                    .iter()
                    .map(|s| s / sizes[j] as f64)
                    .collect::<Vec<_>>()
            );
        }
    }
}

#[test]
fn clustering_merges_each_parts_sums() -> Result<(), Error> {
    // Four groups of 60 users, one event each (so each vector is the
    // event's), around corners far apart; then the random tastes.
    let corners = [
        [10.0, 0.0, 0.0, 0.0],
        [0.0, 10.0, 0.0, 0.0],
        [0.0, 0.0, -10.0, 0.0],
        [5.0, 5.0, 5.0, 10.0],
    ];
    let mut rng = StdRng::seed_from_u64(23);
    let mut planted: Vec<(String, String)> = Vec::new();
    let mut groups = vec![vec![0f64; 4]; 4];
    for u in 0..240 {
        let user = format!("p{u:04}");
        let g = u % 4;
        let v: Vec<f32> = corners[g]
            .iter()
            .map(|c| (c + rng.random_range(-1.0..1.0f64)) as f32)
            .collect();
        for (s, x) in groups[g].iter_mut().zip(&v) {
            *s += f64::from(*x);
        }
        let text: Vec<String> = v.iter().map(|x| format!("{x:?}")).collect();
        planted.push((
            user.clone(),
            format!(
                "INSERT INTO purchase (user, ts, amount, region, v) VALUES ('{user}', {}, 10, 'planted', [{}])",
                NOW - 1000,
                text.join(", ")
            ),
        ));
    }
    let (one, parts, copies) = spread(planted.into_iter().chain(tastes(11, 300)))?;
    let mut parts = parts.into_iter();
    let first = parts.next().expect("three parts");
    let peers = InProcess(parts.collect());
    let merged = Part::new(&first, NOW).with_peers(&peers);
    let others = Copies(&copies[1..]);
    let keep = |u: &str| third(u) == 0;
    let kept = Part::new(&copies[0], NOW)
        .keeping(&keep)
        .with_peers(&others);
    let one = Part::new(&one, NOW);

    // The planted groups are found, whoever takes the query: each
    // centroid is its group's mean, each size 60.
    let sql = "CLUSTER users BY taste INTO 4 WHERE region = 'planted' SEED 3";
    let found = clusters(&merged, sql)?;
    assert_eq!(found, clusters(&kept, sql)?, "{sql}");
    for g in &groups {
        let mean: Vec<f64> = g.iter().map(|s| s / 60.0).collect();
        let matching: Vec<&(i64, Vec<f32>)> = found
            .iter()
            .filter(|(_, c)| {
                c.iter()
                    .zip(&mean)
                    .all(|(x, m)| (f64::from(*x) - m).abs() < 1e-5)
            })
            .collect();
        assert_eq!(matching.len(), 1, "{mean:?} in {found:?}");
        assert_eq!(matching[0].0, 60);
    }

    // Random tastes: no planted answer, but a settled one, the same from
    // either layout, over exactly the users asked for.
    for (sql, filter) in [
        (
            "CLUSTER users BY taste INTO 5 WHERE region != 'planted' SEED 1",
            " AND region != 'planted'",
        ),
        (
            "CLUSTER users BY taste INTO 3 WHERE region = 'east' AND spend > 40",
            " AND region = 'east' AND spend > 40",
        ),
        ("CLUSTER users BY taste INTO 7", ""),
    ] {
        let points = all_vectors(&one, filter)?;
        let found = clusters(&merged, sql)?;
        assert_eq!(found, clusters(&kept, sql)?, "{sql}");
        assert_eq!(
            found.len(),
            sql.split(" INTO ")
                .nth(1)
                .and_then(|t| t.split(' ').next())
                .and_then(|k| k.parse().ok())
                .unwrap_or(0)
        );
        assert_settled(&points, &found, sql);
    }

    // As a router makes segments of a clustering: made once across the
    // parts, then defined alike on each.
    let sql =
        "CREATE SEGMENTS tribes FROM CLUSTER users BY taste INTO 4 WHERE region = 'planted' SEED 3";
    let centroids: Vec<Vec<f32>> = found.iter().map(|(_, c)| c.clone()).collect();
    for db in std::iter::once(&first).chain(&peers.0) {
        let out = create_segments_from(db, sql, &[], centroids.clone())?;
        assert_eq!(
            out,
            Output::Done {
                summary: "CREATE SEGMENTS 4".into(),
                count: Some(4)
            }
        );
    }
    let sql = "SELECT nearest_cluster(tribes) AS c, count(*) AS n FROM users WHERE region = 'planted' GROUP BY c ORDER BY c";
    let out = execute(&merged, sql, &Limits::default())?;
    let sizes: Vec<Value> = out[0]
        .rows()
        .expect("rows")
        .rows
        .iter()
        .map(|r| r[1].clone())
        .collect();
    assert_eq!(sizes, vec![Value::Int(60); 4], "{sql}");
    let sql = "SELECT count(*) FROM users WHERE region = 'planted' AND IN SEGMENT tribes_2";
    let out = execute(&merged, sql, &Limits::default())?;
    assert_eq!(
        out[0].rows().expect("rows").rows,
        vec![vec![Value::Int(60)]]
    );
    // A clustering that does not fit the statement is refused.
    let db = vector_memory()?;
    for bad in [centroids[..3].to_vec(), vec![vec![0.0; 3]; 4]] {
        let Err(err) = create_segments_from(
            &db,
            "CREATE SEGMENTS t FROM CLUSTER users BY taste INTO 4",
            &[],
            bad,
        ) else {
            panic!("a clustering that does not fit was taken");
        };
        assert!(
            err.to_string().contains("it asks for 4 of dimension 4"),
            "{err}"
        );
    }

    // Fewer users than clusters is an error naming both, as on one database.
    let sql = "CLUSTER users BY taste INTO 5 WHERE id IN ('p0001', 'p0002', 'u0003')";
    let Err(err) = execute(&merged, sql, &Limits::default()) else {
        panic!("{sql} was answered");
    };
    assert!(
        err.to_string()
            .contains("cannot make 5 clusters of 3 vectors"),
        "{err}"
    );
    // A change is not run across parts.
    let sql = "CREATE SEGMENTS tribes FROM CLUSTER users BY taste INTO 2";
    let Err(err) = execute(&merged, sql, &Limits::default()) else {
        panic!("{sql} was run across parts");
    };
    assert!(err.to_string().contains("router"), "{err}");
    Ok(())
}

/// A part changes only the users it keeps, and says which it changed.
#[test]
fn a_part_changes_only_its_own_users() -> Result<(), Error> {
    let db = memory()?;
    for (_, sql) in inserts(9, 60) {
        execute(&db, &sql, &Limits::default())?;
    }
    execute(&db, "CREATE ATTRIBUTE tag STRING", &Limits::default())?;
    let keep = |u: &str| third(u) == 1;
    let seen = std::sync::Mutex::new(Vec::new());
    let note = |u: &str| seen.lock().expect("lock").push(u.to_owned());
    let part = Part::new(&db, NOW).keeping(&keep).on_change(&note);
    execute(
        &part,
        "UPDATE users SET tag = 'x' WHERE n >= 1",
        &Limits::default(),
    )?;
    // Outside the part, a point update and a delete change nothing.
    let outside = (0..60)
        .map(|u| format!("u{u:04}"))
        .find(|u| third(u) != 1)
        .expect("a user of another part");
    execute(
        &part,
        &format!("UPDATE users SET tag = 'y' WHERE id = '{outside}'"),
        &Limits::default(),
    )?;
    execute(
        &part,
        &format!("DELETE USER '{outside}'"),
        &Limits::default(),
    )?;
    let whole = Part::new(&db, NOW);
    let out = execute(
        &whole,
        "SELECT id, tag FROM users ORDER BY id",
        &Limits::default(),
    )?;
    let rows = &out[0].rows().expect("rows").rows;
    assert_eq!(rows.len(), 60, "a user was deleted outside the part");
    let mut tagged = Vec::new();
    for r in rows {
        let Value::String(id) = &r[0] else {
            panic!("{r:?}")
        };
        let want = if third(id) == 1 {
            Value::String("x".into())
        } else {
            Value::Null
        };
        assert_eq!(r[1], want, "{id}");
        if third(id) == 1 {
            tagged.push(id.clone());
        }
    }
    let mut seen = seen.into_inner().expect("lock");
    seen.sort();
    assert_eq!(seen, tagged);
    Ok(())
}

/// Peers that answer fixed bytes.
struct Fixed(Vec<u8>);

impl Peers for Fixed {
    fn partials(&self, _: &str, _: i64, _: &Limits) -> Result<Vec<Vec<u8>>, Error> {
        Ok(vec![self.0.clone()])
    }
}

/// A partial result cut short is an error naming it, at every length; bytes
/// changed at random decode into some answer or are refused the same way,
/// never a panic.
#[test]
fn damaged_partials_are_errors() -> Result<(), Error> {
    let db = memory()?;
    for (_, sql) in inserts(3, 40) {
        execute(&db, &sql, &Limits::default())?;
    }
    let sql = "SELECT region, count(*), sum(spend), median(recent) FROM users GROUP BY region";
    let good = partial(&db, sql, NOW, &Limits::default())?;
    let empty = memory()?;
    let run = |bytes: Vec<u8>| -> Result<Result<(), Error>, Error> {
        let fixed = Fixed(bytes);
        let source = Part::new(&empty, NOW).with_peers(&fixed);
        Ok(execute(&source, sql, &Limits::default()).map(drop))
    };
    assert!(run(good.clone())?.is_ok());
    for n in 0..good.len() {
        let err = run(good[..n].to_vec())?.expect_err("a truncated partial result decoded");
        assert!(err.to_string().contains("partial result"), "{err}");
    }
    let mut rng = StdRng::seed_from_u64(5);
    for _ in 0..300 {
        let mut bad = good.clone();
        let i = rng.random_range(0..bad.len());
        bad[i] ^= 1 << rng.random_range(0..8);
        if let Err(e) = run(bad)? {
            assert!(e.to_string().contains("partial result"), "{e}");
        }
    }
    Ok(())
}
