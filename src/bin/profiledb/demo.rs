//! `profiledb demo`: builds a database from a synthetic behaviour stream and
//! tours what the engine answers about it.
//!
//! Users view items of eight categories, buy some, and see impressions they
//! may click. Each item is a vector near its category's axis, and each user's
//! `taste` is the decayed mean of what they viewed. A tenth of the users switch
//! their favourite category halfway through; a few have a burst of views on
//! the last day. The stream is seeded, so every run tells the same story,
//! ending at the current hour.

use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use profiledb::{Db, Event, Value, format_timestamp};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::format::{self, Format};

const CATEGORIES: [&str; 8] = [
    "books", "music", "games", "sports", "fashion", "garden", "tech", "travel",
];
/// Typical price of a purchase in each category.
const PRICES: [f64; 8] = [15.0, 12.0, 45.0, 60.0, 80.0, 30.0, 250.0, 400.0];
const REGIONS: [&str; 4] = ["north", "south", "east", "west"];
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// A file that marks a directory as the demo's own, so a rerun may replace it.
const MARKER: &str = "PROFILEDB-DEMO";

/// One simulated user.
#[derive(Debug, Clone)]
struct User {
    id: String,
    region: &'static str,
    /// Favourite category before the drift day.
    first: usize,
    /// Favourite category from the drift day on (the same as `first` for most).
    second: usize,
    /// Mean views a day.
    views_per_day: f64,
    /// Whether the user bursts on the last day.
    burst: bool,
}

impl User {
    fn favourite(&self, day: u32, drift_day: u32) -> usize {
        if day < drift_day {
            self.first
        } else {
            self.second
        }
    }
}

fn users(n: u32, rng: &mut StdRng) -> Vec<User> {
    (0..n)
        .map(|i| {
            let first = rng.random_range(0..CATEGORIES.len());
            let drifts = i % 10 == 3;
            let second = if drifts {
                (first + rng.random_range(1..CATEGORIES.len())) % CATEGORIES.len()
            } else {
                first
            };
            User {
                id: format!("u{i:05}"),
                region: REGIONS[rng.random_range(0..REGIONS.len())],
                first,
                second,
                views_per_day: rng.random_range(1.0..4.0),
                burst: i % 100 == 57,
            }
        })
        .collect()
}

/// An item of category `c`: near the category's axis, with some noise.
fn item_vector(c: usize, rng: &mut StdRng) -> Value {
    Value::Vector(
        (0..CATEGORIES.len())
            .map(|d| if d == c { 1.0 } else { 0.0 } + rng.random_range(-0.15f32..0.15))
            .collect(),
    )
}

/// The events of `user` on simulated day `day`, which starts at `t0`.
fn day_events(u: &User, day: u32, days: u32, t0: i64, rng: &mut StdRng, out: &mut Vec<Event>) {
    let drift_day = days / 2;
    let fav = u.favourite(day, drift_day);
    if day == 0 {
        out.push(
            Event::new(&u.id, "signup", t0 + rng.random_range(0..HOUR))
                .with("region", u.region)
                .with("interest", CATEGORIES[u.first]),
        );
    }
    let mut views = (u.views_per_day * rng.random_range(0.0..2.0)).round() as u32;
    if u.burst && day + 1 == days {
        views += 40;
    }
    for _ in 0..views {
        let ts = t0 + rng.random_range(HOUR..DAY);
        let c = if rng.random_bool(0.8) {
            fav
        } else {
            rng.random_range(0..CATEGORIES.len())
        };
        out.push(
            Event::new(&u.id, "view", ts)
                .with("category", CATEGORIES[c])
                .with("item_vec", item_vector(c, rng)),
        );
        if rng.random_bool(0.06) {
            let amount = (PRICES[c] * rng.random_range(0.5..1.5) * 100.0).round() / 100.0;
            out.push(
                Event::new(&u.id, "purchase", (ts + 5 * 60_000).min(t0 + DAY - 1))
                    .with("amount", amount),
            );
        }
    }
    for _ in 0..2 {
        let c = rng.random_range(0..CATEGORIES.len());
        let p = if c == fav { 0.3 } else { 0.03 };
        out.push(
            Event::new(&u.id, "impression", t0 + rng.random_range(0..DAY))
                .with("category", CATEGORIES[c])
                .with("clicked", i64::from(rng.random_bool(p))),
        );
    }
}

fn schema(days: u32) -> String {
    let retain = days.max(30) + 1;
    format!(
        "CREATE ATTRIBUTE region STRING ON signup;
CREATE ATTRIBUTE interest STRING ON signup;
CREATE FEATURE views_total ON view AS COUNT();
CREATE FEATURE visits_7d ON view AS DECAYED_COUNT() HALF_LIFE '7d';
CREATE FEATURE spend_30d ON purchase AS DECAYED_SUM(amount) HALF_LIFE '30d';
CREATE FEATURE basket ON purchase AS DECAYED_AVG(amount) HALF_LIFE '30d';
CREATE FEATURE ctr ON impression AS BETA(clicked) HALF_LIFE '14d' PRIOR (1, 20);
CREATE WINDOW views ON view BUCKET '1h' RETAIN '{retain}d';
CREATE WINDOW spend ON purchase OF amount BUCKET '1d' RETAIN '365d';
CREATE VECTOR taste ON view AS EWMA(item_vec) DIM 8 HALF_LIFE '7d';
CREATE SEGMENT big_spenders AS spend_30d > 500;"
    )
}

/// Makes `dir` ready for a new demo database: absent, or an earlier demo's.
fn prepare(dir: &Path) -> Result<(), String> {
    if dir.join(MARKER).exists() {
        std::fs::remove_dir_all(dir)
            .map_err(|e| format!("cannot remove the old demo at {}: {e}", dir.display()))?;
    } else if dir.exists() {
        return Err(format!(
            "{} exists and is not a demo database; give --db a new directory",
            dir.display()
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    std::fs::write(
        dir.join(MARKER),
        "made by `profiledb demo`; a rerun replaces this directory\n",
    )
    .map_err(|e| format!("cannot write in {}: {e}", dir.display()))
}

struct Tour<'a> {
    db: &'a Db,
}

impl Tour<'_> {
    /// Prints and runs one statement.
    fn show(&self, sql: &str) -> Result<(), String> {
        println!("\nprofiledb> {sql};");
        let out = self.db.execute(sql).map_err(|e| format!("{e}"))?;
        let (stdout, stderr) = (std::io::stdout(), std::io::stderr());
        format::print(&out, Format::Table, &mut stdout.lock(), &mut stderr.lock())
            .map_err(|e| e.to_string())
    }
}

fn one_hot(c: usize) -> String {
    let v: Vec<&str> = (0..CATEGORIES.len())
        .map(|d| if d == c { "1" } else { "0" })
        .collect();
    format!("[{}]", v.join(", "))
}

/// Ingests the simulated days `from..to` for every user.
fn ingest_days(
    db: &Db,
    users: &[User],
    from: u32,
    to: u32,
    days: u32,
    start: i64,
    seed: u64,
) -> Result<u64, String> {
    let bar = ProgressBar::new(users.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("  ingesting days {msg} [{bar:40}] {pos}/{len} users ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(format!("{}-{}", from + 1, to));
    let mut written = 0u64;
    let mut batch = Vec::with_capacity(12_000);
    for chunk in users.chunks(500) {
        for u in chunk {
            // A stream per user and phase, so each phase's events are the same
            // whatever else was generated before.
            let mut rng = StdRng::seed_from_u64(seed ^ hash(&u.id) ^ (u64::from(from) << 32));
            for day in from..to {
                day_events(
                    u,
                    day,
                    days,
                    start + i64::from(day) * DAY,
                    &mut rng,
                    &mut batch,
                );
            }
            if batch.len() >= 10_000 {
                written += db.ingest(&batch).map_err(|e| e.to_string())? as u64;
                batch.clear();
            }
        }
        bar.inc(chunk.len() as u64);
    }
    written += db.ingest(&batch).map_err(|e| e.to_string())? as u64;
    bar.finish_and_clear();
    Ok(written)
}

fn hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Runs the demo; returns the exit code.
pub fn run(dir: &Path, n_users: u32, days: u32) -> u8 {
    match demo(dir, n_users, days) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

fn demo(dir: &Path, n_users: u32, days: u32) -> Result<(), String> {
    if n_users < 10 || days < 2 {
        return Err("the demo needs at least 10 users and 2 days".into());
    }
    let seed = 7;
    prepare(dir)?;
    let db = Db::open(dir).map_err(|e| format!("cannot open {}: {e}", dir.display()))?;
    db.execute_script(&schema(days))
        .map_err(|e| e.to_string())?;
    let mut rng = StdRng::seed_from_u64(seed);
    let users = users(n_users, &mut rng);
    let end = profiledb::now_ms() / HOUR * HOUR;
    let start = end - i64::from(days) * DAY;
    let drift_day = days / 2;
    let mid = start + i64::from(drift_day) * DAY;
    let tour = Tour { db: &db };
    let started = Instant::now();

    println!("ProfileDB demo: {n_users} users, {days} days of views, purchases and impressions.");
    println!("Schema:\n{}", schema(days));
    let first = ingest_days(&db, &users, 0, drift_day, days, start, seed)?;
    let drifter = users
        .iter()
        .find(|u| u.first != u.second)
        .ok_or("no drifting user")?;
    let (a, b) = (CATEGORIES[drifter.first], CATEGORIES[drifter.second]);
    println!("\nIngested {first} events of days 1-{drift_day}.");
    println!(
        "\n1. {} has liked {a} so far; from day {} on, they will mostly view {b}. As of day {drift_day}:",
        drifter.id,
        drift_day + 1
    );
    let profile = |at: i64| {
        format!(
            "SELECT id, interest, visits_7d, spend_30d, ctr, cosine(taste, {}) AS likes_{a}, \
             cosine(taste, {}) AS likes_{b} FROM users WHERE id = '{}' AS OF '{}'",
            one_hot(drifter.first),
            one_hot(drifter.second),
            drifter.id,
            format_timestamp(at)
        )
    };
    let neighbours = format!(
        "SELECT id, interest, cosine(taste, {1}) AS likes_{b}, cosine(taste, '{0}') AS similarity \
         FROM users WHERE id != '{0}' ORDER BY similarity DESC LIMIT 5",
        drifter.id,
        one_hot(drifter.second),
    );
    tour.show(&profile(mid))?;
    println!("\n   Their nearest neighbours by taste (users whose signup interest was {a}):");
    tour.show(&neighbours)?;

    let second = ingest_days(&db, &users, drift_day, days, days, start, seed)?;
    println!(
        "\nIngested {second} events of days {}-{days}.",
        drift_day + 1
    );
    println!("\n2. The same user at the end of day {days}: their taste has turned to {b}.");
    tour.show(&profile(end))?;
    println!(
        "\n   Their nearest neighbours now are users who made the same move: they signed up liking {a} \
         and now view {b}:"
    );
    tour.show(&neighbours)?;

    println!("\n3. A segment: users whose decayed 30-day spend is over 500.");
    tour.show("SELECT count(*) AS big_spenders, avg(spend_30d) AS avg_spend FROM users WHERE IN SEGMENT big_spenders")?;
    tour.show(
        "SELECT region, count(*) AS big_spenders, avg(basket) AS basket FROM users \
         WHERE IN SEGMENT big_spenders GROUP BY region ORDER BY region",
    )?;

    println!("\n4. Natural groups of taste: k-means over every user's taste vector.");
    tour.show("CLUSTER users BY taste INTO 8 SEED 7")?;

    let bursts = users.iter().filter(|u| u.burst).count();
    println!(
        "\n5. Bursts: {bursts} users were given a burst of views on the last day. zscore compares the \
         last day's views with each user's own 14-day baseline:"
    );
    tour.show(&format!(
        "SELECT count(*) AS flagged FROM users WHERE zscore(views, '1d', '14d') > 3 AS OF '{}'",
        format_timestamp(end)
    ))?;
    tour.show(&format!(
        "SELECT id, window_count(views, '1d') AS views_today, zscore(views, '1d', '14d') AS z FROM users \
         WHERE zscore(views, '1d', '14d') > 3 ORDER BY z DESC LIMIT 10 AS OF '{}'",
        format_timestamp(end)
    ))?;

    println!(
        "\nBuilt and toured in {:.1} s. Open the same database in the shell:",
        started.elapsed().as_secs_f64()
    );
    drop(db);
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("profiledb"));
    let abs = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    println!("  {} shell --db {}", shell_quote(&exe), shell_quote(&abs));
    Ok(())
}

/// A path as one shell word.
fn shell_quote(p: &Path) -> String {
    let s = p.display().to_string();
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,".contains(c))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
