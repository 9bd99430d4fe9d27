//! Seeded workloads shared by the benches.
#![allow(dead_code)]

use profiledb::{Db, Definition, Event, FeatureKind, Options, VectorRule};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub const DAY: i64 = 86_400_000;
/// The start of the UTC day 29 days ago: the workloads' 30 days of events end
/// tomorrow, so the windows' 30-day retention (counted from the clock) keeps
/// every bucket whatever day the benches run.
pub fn t0() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    now.div_euclid(DAY) * DAY - 29 * DAY
}
pub const DIM: usize = 16;

/// The ingest benchmark's schema: four scalar features, one window and one
/// 16-dimension ewma vector, all fed by one event type.
pub fn schema(db: &Db) -> profiledb::Result<()> {
    let f = |name: &str, field: Option<&str>, kind| Definition::Feature {
        name: name.into(),
        event_type: "view".into(),
        field: field.map(Into::into),
        kind,
    };
    db.define(f("views", None, FeatureKind::Count))?;
    db.define(f("spend", Some("price"), FeatureKind::Sum))?;
    db.define(f(
        "spend_7d",
        Some("price"),
        FeatureKind::DecayedSum {
            half_life_ms: 7 * DAY,
        },
    ))?;
    db.define(f(
        "price_avg",
        Some("price"),
        FeatureKind::DecayedAvg {
            half_life_ms: 30 * DAY,
        },
    ))?;
    db.define(Definition::Window {
        name: "views_hourly".into(),
        event_type: "view".into(),
        field: None,
        bucket_ms: DAY / 24,
        retain_ms: 30 * DAY,
    })?;
    db.define(Definition::Vector {
        name: "taste".into(),
        event_type: "view".into(),
        dim: DIM as u32,
        rule: VectorRule::Ewma {
            field: "item_vec".into(),
            half_life_ms: 14 * DAY,
        },
    })?;
    Ok(())
}

/// Categories the keyed workload's views fall in.
pub const CATEGORIES: usize = 50;

/// What the keyed workload adds to [`schema`]: one keyed feature (a
/// decayed count per category, 20 kept of 50) and one distinct count (of
/// items).
pub fn keyed_schema(db: &Db) -> profiledb::Result<()> {
    db.execute(
        "CREATE FEATURE cat_affinity ON view AS DECAYED_COUNT() BY category HALF_LIFE '14d' TOP 20;
         CREATE FEATURE items_seen ON view AS COUNT_DISTINCT(item)",
    )?;
    Ok(())
}

/// [`events`] with a category (one of [`CATEGORIES`], skewed to the first)
/// and an item (one of 10,000).
pub fn keyed_events(seed: u64, users: u64, n: usize) -> Vec<Event> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    events(seed, users, n)
        .into_iter()
        .map(|ev| {
            let c = rng
                .random_range(0..CATEGORIES)
                .min(rng.random_range(0..CATEGORIES));
            ev.with("category", format!("cat{c:02}"))
                .with("item", format!("item{}", rng.random_range(0..10_000)))
        })
        .collect()
}

/// A new database without the event history (on by default): the benches
/// measure what they name, and `history` measures what keeping it costs.
pub fn open(dir: &std::path::Path) -> profiledb::Result<Db> {
    pin();
    let db = Db::open_with(Options::new(dir))?;
    db.execute("ALTER DATABASE SET HISTORY '0s'")?;
    Ok(db)
}

/// Pins rayon's pool one thread to a core and sets malloc, as the
/// `profiledb` program does (see [`profiledb::pin_threads`] and
/// [`profiledb::tune_malloc`]), once per process; left unpinned when
/// `PROFILEDB_BENCH_UNPINNED` is set, and malloc as it is when
/// `PROFILEDB_BENCH_MALLOC_DEFAULTS` is, to measure the difference.
pub fn pin() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("PROFILEDB_BENCH_MALLOC_DEFAULTS").is_some() {
            eprintln!("malloc left with its defaults (PROFILEDB_BENCH_MALLOC_DEFAULTS)");
        } else {
            profiledb::tune_malloc();
        }
        if std::env::var_os("PROFILEDB_BENCH_UNPINNED").is_some() {
            eprintln!("rayon's pool left unpinned (PROFILEDB_BENCH_UNPINNED)");
        } else if let Err(e) = profiledb::pin_threads() {
            eprintln!("{e}");
        }
    });
}

/// A new database in a temporary directory with [`schema`], keeping 30 days
/// of event history or none.
pub fn fresh(history: bool) -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(dir.path()).expect("open");
    if history {
        db.execute("ALTER DATABASE SET HISTORY '30d'")
            .expect("history on");
    }
    schema(&db).expect("schema");
    (dir, db)
}

/// `n` events over `users` users, spread over 30 days, seeded.
pub fn events(seed: u64, users: u64, n: usize) -> Vec<Event> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let user = format!("user{:07}", rng.random_range(0..users));
            let ts = t0() + (i as i64 * 997) % (30 * DAY);
            let item: Vec<f32> = (0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            Event::new(user, "view", ts)
                .with("price", rng.random_range(1.0..200.0f64))
                .with("item_vec", item)
        })
        .collect()
}

/// One event for every user 0..users, in user order, seeded.
pub fn every_user(users: u64) -> impl Iterator<Item = Event> {
    let mut rng = StdRng::seed_from_u64(99);
    (0..users).map(move |u| {
        let item: Vec<f32> = (0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        Event::new(format!("user{u:07}"), "view", t0() + (u as i64 % DAY))
            .with("price", rng.random_range(1.0..200.0f64))
            .with("item_vec", item)
    })
}

/// Loads [`every_user`]'s events, in batches of 1,000.
pub fn populate(db: &Db, users: u64) -> profiledb::Result<()> {
    let mut batch = Vec::with_capacity(1000);
    for ev in every_user(users) {
        batch.push(ev);
        if batch.len() == 1000 {
            db.ingest(&batch)?;
            batch.clear();
        }
    }
    db.ingest(&batch)?;
    Ok(())
}

/// The first queries after a bulk load (`first_query` and
/// `first_query_mimalloc`): 1M users, each written once and flushed, then
/// the same query returning every user's id, three features and the
/// vector, five times in turn. The first ones read the store while the
/// scans' row table is built in the background; the later ones read the
/// table. Prints the load's time and each query's.
///
/// Given `--arrow` (`cargo bench --bench first_query -- --arrow`), each
/// query's rows are made Arrow batches as the Python package's `db.query`
/// makes them: each part of the scan converted as it is made
/// ([`profiledb::arrow::BatchSink`]). Given `--arrow-after`, the rows are
/// all made first, then converted on every core
/// ([`profiledb::arrow::into_batches`]).
pub fn first_queries() {
    const USERS: u64 = 1_000_000;
    let how = std::env::args().find_map(|a| match a.as_str() {
        "--arrow" => Some(" to Arrow batches as the scan makes them"),
        "--arrow-after" => Some(" to Arrow batches after the scan"),
        _ => None,
    });
    let (_dir, db) = fresh(false);
    let start = std::time::Instant::now();
    populate(&db, USERS).expect("populate");
    db.flush().expect("flush");
    println!(
        "load of {USERS} users, one event each, flushed: {:.2} s",
        start.elapsed().as_secs_f64()
    );
    let sql = "SELECT id, views, spend, spend_7d, taste FROM users";
    let mut times = Vec::new();
    for _ in 0..5 {
        let start = std::time::Instant::now();
        let rows = match how {
            None => db
                .execute(sql)
                .expect("query")
                .rows()
                .map_or(0, |r| r.rows.len()),
            Some(h) => {
                let sink = profiledb::arrow::BatchSink::default();
                let out = if h.contains("after") {
                    db.execute(sql)
                } else {
                    db.execute_params_into(sql, &[], &sink)
                };
                let profiledb::Output::Rows(rows) = out.expect("query") else {
                    panic!("a query answers rows");
                };
                let batches = sink.finish(rows).expect("batches");
                batches.iter().map(|b| b.num_rows()).sum()
            }
        };
        times.push(start.elapsed().as_secs_f64());
        assert_eq!(rows as u64, USERS);
    }
    let times: Vec<String> = times.iter().map(|t| format!("{t:.3}")).collect();
    println!(
        "query of {USERS} rows{}, in turn after the load: {} s",
        how.unwrap_or(""),
        times.join(", ")
    );
}

/// How long before a paced request is due its client stops sleeping and
/// spins. This machine wakes a sleeping thread late: a client sleeping until
/// each due time (1,000 a second) woke 93 µs after it at the median and
/// 124–146 µs at p99, whatever its timer slack, and a latency counted from
/// the due time counted that too.
const SPIN_BEFORE_DUE: std::time::Duration = std::time::Duration::from_micros(250);

/// Waits until `due`, for a paced client: sleeps until shortly before it,
/// then spins, so that the request leaves on time and its latency, counted
/// from `due` (a stall still delays every request after it), is the
/// server's and not the client's wake-up. Returns how late the client was.
pub fn wait_until(due: std::time::Instant) -> std::time::Duration {
    if let Some(wait) = due.checked_duration_since(std::time::Instant::now())
        && wait > SPIN_BEFORE_DUE
    {
        std::thread::sleep(wait - SPIN_BEFORE_DUE);
    }
    while std::time::Instant::now() < due {
        std::hint::spin_loop();
    }
    due.elapsed()
}

/// The `p` quantile (0 to 1) of `sorted`, nearest rank; zero for none.
pub fn percentile(sorted: &[std::time::Duration], p: f64) -> std::time::Duration {
    match sorted.len() {
        0 => std::time::Duration::ZERO,
        n => sorted[((n as f64 * p) as usize).min(n - 1)],
    }
}
