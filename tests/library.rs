//! The library facade end to end: JSON ingest, profiles, checkpoints, deletes.

use profiledb::{Db, Definition, FeatureKind, Value};

const DAY: i64 = 86_400_000;

#[test]
fn json_ingest_checkpoint_and_delete() -> profiledb::Result<()> {
    let dir = tempfile::tempdir().map_err(profiledb_storage::Error::from)?;
    let db = Db::open(dir.path())?;
    db.define(Definition::Feature {
        name: "revenue".into(),
        event_type: "purchase".into(),
        field: Some("amount".into()),
        kind: FeatureKind::Sum,
    })?;
    db.define(Definition::Feature {
        name: "visits".into(),
        event_type: "view".into(),
        field: None,
        kind: FeatureKind::DecayedCount { half_life_ms: DAY },
    })?;
    let lines = concat!(
        r#"{"user":"u1","type":"purchase","ts":1761991200000,"amount":35.0}"#,
        "\n",
        r#"{"user":"u1","type":"purchase","ts":"2025-11-01T10:00:00Z","amount":12.5,"coupon":"X"}"#,
        "\n",
        r#"{"user":"u2","type":"view","ts":"2025-11-01T10:00:00+00:00"}"#,
        "\n"
    );
    assert_eq!(db.ingest_json(lines)?, 3);
    let t = profiledb::parse_timestamp("2025-11-01T10:00:00Z")?;
    assert_eq!(t, 1_761_991_200_000);
    let p = db.profile("u1", t)?;
    assert_eq!(
        p.as_ref().and_then(|p| p.get("revenue")),
        Some(&Value::Float(47.5))
    );
    // One half-life later, one visit decays to a half.
    let p = db.profile("u2", t + DAY)?;
    assert_eq!(
        p.as_ref().and_then(|p| p.get("visits")),
        Some(&Value::Float(0.5))
    );

    let backup = dir.path().join("backup");
    db.checkpoint(&backup)?;
    assert!(db.delete_user("u1")?);
    assert!(db.profile("u1", t)?.is_none());
    drop(db);
    let restored = Db::open(&backup)?;
    let p = restored.profile("u1", t)?;
    assert_eq!(
        p.as_ref().and_then(|p| p.get("revenue")),
        Some(&Value::Float(47.5))
    );
    Ok(())
}

#[test]
fn stats_report_memtables_and_the_sequence() -> profiledb::Result<()> {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = profiledb::Db::open(dir.path())?;
    let before = db.stats();
    db.execute("CREATE FEATURE n ON hit AS COUNT()")?;
    // Enough events to fill more than the memtable's first arena block.
    let events: Vec<profiledb::Event> = (0..5_000)
        .map(|i| profiledb::Event::new(format!("user{i:05}"), "hit", i))
        .collect();
    db.ingest(&events)?;
    let after = db.stats();
    assert!(
        after.memtable_bytes > before.memtable_bytes,
        "{before:?} {after:?}"
    );
    assert!(
        after.last_sequence > before.last_sequence,
        "{before:?} {after:?}"
    );
    assert_eq!(after.index_pending, 0);
    db.flush()?;
    assert_eq!(db.stats().immutable_memtables, 0);
    Ok(())
}

/// A flush puts the blocks it writes of the families reads read in the
/// block cache, before any read: 20,000 users' features records (about
/// 40 bytes each) are there once flushed, and reading them all finds them
/// there (the cache grows by no more than a tenth).
#[test]
fn a_flush_warms_the_block_cache() -> profiledb::Result<()> {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = profiledb::Db::open(dir.path())?;
    db.execute("CREATE FEATURE n ON hit AS COUNT()")?;
    let events: Vec<profiledb::Event> = (0..20_000)
        .map(|i| profiledb::Event::new(format!("user{i:05}"), "hit", i))
        .collect();
    db.ingest(&events)?;
    let before = db.stats().block_cache_bytes;
    db.flush()?;
    let flushed = db.stats().block_cache_bytes;
    assert!(flushed >= before + 500_000, "{before} then {flushed}");
    for i in (0..20_000).step_by(7) {
        assert!(db.profile(&format!("user{i:05}"), 1_000_000)?.is_some());
    }
    let read = db.stats().block_cache_bytes;
    assert!(read <= flushed + flushed / 10, "{flushed} then {read}");
    Ok(())
}

#[test]
fn vacuum_is_a_method_and_a_statement() -> profiledb::Result<()> {
    let dir = tempfile::tempdir().map_err(profiledb_storage::Error::from)?;
    let db = Db::open(dir.path())?;
    db.execute_script(
        "CREATE FEATURE n ON hit AS COUNT();
         INSERT INTO hit (user, ts) VALUES ('keep-1', 1), ('gone-7c2b', 2)",
    )?;
    assert!(db.delete_user("gone-7c2b")?);
    // Under a deadline already past, VACUUM is cancelled like any statement.
    let past = profiledb::Limits {
        deadline: Some(std::time::Instant::now() - std::time::Duration::from_secs(1)),
        max_rows: None,
    };
    let err = db.execute_with("VACUUM", &past).err();
    assert!(
        matches!(
            err,
            Some(profiledb::Error::Query(
                profiledb_query::Error::Cancelled { .. }
            ))
        ),
        "{err:?}"
    );
    db.vacuum()?;
    let out = db.execute("VACUUM")?;
    assert_eq!(
        out,
        profiledb::Output::Done {
            summary: "VACUUM".into(),
            count: None
        }
    );
    let rows = db.execute("SELECT id FROM users")?;
    assert_eq!(
        rows.rows().map(|r| r.rows.clone()),
        Some(vec![vec![Value::String("keep-1".into())]])
    );
    Ok(())
}

/// Every kind of item, fed by `buy` events ([`buy`]).
const BUY_SCHEMA: &str = "CREATE ATTRIBUTE region STRING ON buy;
     CREATE FEATURE n ON buy AS COUNT();
     CREATE FEATURE spend_7d ON buy AS DECAYED_SUM(amount) HALF_LIFE '7d';
     CREATE WINDOW daily ON buy OF amount BUCKET '1d' RETAIN '30d';
     CREATE VECTOR taste ON buy AS EWMA(v) DIM 2 HALF_LIFE '7d';
     CREATE VECTOR pref ON buy AS SGD(v, liked) DIM 2 LEARNING_RATE 0.1";

/// The `i`-th `buy` event of [`BUY_SCHEMA`], for `user` at `ts`, as a JSON
/// line: its amount, region, vector and label vary with `i`.
fn buy(user: &str, ts: i64, i: i64) -> String {
    format!(
        r#"{{"user":"{user}","type":"buy","ts":{ts},"amount":{},"region":"r{}","v":[{}, {}],"liked":{}}}"#,
        (i % 23) as f64 + 0.5,
        i % 4,
        (i % 7) as f64 / 7.0,
        (i % 5) as f64 / 5.0 - 0.4,
        i % 2
    ) + "\n"
}

/// Profiles read in a batch (one multi-get per family, users in key order,
/// many batches on many cores) are each what a read of that user alone
/// gives: in the order asked, repeats and missing users included, now, as
/// of a past time (rebuilt from the history) and over window spans.
#[test]
fn batch_profiles_equal_single_reads() -> profiledb::Result<()> {
    let dir = tempfile::tempdir().map_err(profiledb_storage::Error::from)?;
    let db = Db::open(dir.path())?;
    db.execute(BUY_SCHEMA)?;
    let t0 = 1_761_991_200_000i64;
    let mut lines = String::new();
    for i in 0..900i64 {
        let user = format!("u{:03}", (i * 37) % 120);
        lines.push_str(&buy(&user, t0 + i * 1_000_000, i));
    }
    db.ingest_json(&lines)?;
    // Out of key order, with users that never bought (u120 …) first.
    let mut ids: Vec<String> = (0..130).rev().map(|u| format!("u{u:03}")).collect();
    ids.extend(["u007".to_owned(), "nobody".to_owned(), "u007".to_owned()]);
    let last = t0 + 900 * 1_000_000;
    for (as_of, span) in [
        (last + DAY, DAY),
        (last, 5 * DAY),
        (t0 + 400 * 1_000_000, 2 * DAY),
    ] {
        for users in [&ids[..], &ids[..9]] {
            let batch = db.profiles_with_span(users, as_of, span)?;
            assert_eq!(batch.len(), users.len());
            for (u, got) in users.iter().zip(&batch) {
                let want = db.profile_with_span(u, as_of, span)?;
                assert_eq!(got, &want, "{u} as of {as_of} over {span}");
            }
            // Users u000 … u119 bought (37 and 120 are coprime, so every one
            // within the first 120 events, before each time read).
            let exist = users
                .iter()
                .filter(|u| u[1..].parse::<u32>().is_ok_and(|n| n < 120))
                .count();
            assert_eq!(batch.iter().filter(|p| p.is_some()).count(), exist);
        }
    }
    Ok(())
}

/// The JSON profiles of a batch read ([`profiledb::ProfileRead::read_json`],
/// what `POST /v1/profiles` answers) equal each user read alone, and list
/// the segments a tally kept here puts each user in; a batch large enough
/// to be read on every core is split and put back in the order asked.
#[test]
fn batch_json_profiles_equal_single_reads_with_segments() -> profiledb::Result<()> {
    use std::collections::BTreeMap;
    let dir = tempfile::tempdir().map_err(profiledb_storage::Error::from)?;
    let db = Db::open(dir.path())?;
    db.execute(BUY_SCHEMA)?;
    db.execute("CREATE SEGMENT loyal AS n >= 8; CREATE SEGMENT north AS region = 'r1'")?;
    let t0 = 1_761_991_200_000i64;
    let mut lines = String::new();
    // Per user: purchases, and the region of the last.
    let mut tally: BTreeMap<String, (u32, String)> = BTreeMap::new();
    for i in 0..900i64 {
        let user = format!("u{:03}", (i * 37) % 120);
        lines.push_str(&buy(&user, t0 + i * 1_000_000, i));
        let t = tally.entry(user).or_default();
        t.0 += 1;
        t.1 = format!("r{}", i % 4);
    }
    db.ingest_json(&lines)?;
    let mut ids: Vec<String> = (0..130).rev().map(|u| format!("u{u:03}")).collect();
    ids.extend(["u007".to_owned(), "nobody".to_owned(), "u007".to_owned()]);
    let as_of = t0 + 901 * 1_000_000;
    for fields in [None, Some(vec!["n".to_owned(), "segments".to_owned()])] {
        let read = profiledb::ProfileRead::new(&db, as_of, 5 * DAY, fields.clone())?;
        let parse = |json: &Option<Vec<u8>>| {
            json.as_deref()
                .map(|j| serde_json::from_slice::<serde_json::Value>(j).expect("JSON"))
        };
        let json = read.read_json(&db, &ids)?;
        assert_eq!((json.len(), json.is_empty()), (ids.len(), false));
        let batch: Vec<Option<Vec<u8>>> = json.iter().map(|p| p.map(<[u8]>::to_vec)).collect();
        // The shares' text holds the profiles and nothing else.
        let profiles_bytes: usize = batch.iter().flatten().map(Vec::len).sum();
        assert_eq!(json.text_len(), profiles_bytes);
        for (id, got) in ids.iter().zip(&batch) {
            let got = parse(got);
            let alone = read.read(&db, std::slice::from_ref(id))?;
            assert_eq!(got, parse(&alone[0]), "{id} with fields {fields:?}");
            let Some((n, region)) = tally.get(id) else {
                assert_eq!(got, None, "{id} never bought");
                continue;
            };
            let got = got.expect("a user who bought exists");
            if fields.is_none() {
                // Every item shows as the library's own profile reads it.
                let p = db
                    .profile_with_span(id, as_of, 5 * DAY)?
                    .expect("a user who bought exists");
                // A float as the JSON reader reads its text back (serde_json's
                // default parsing may land one ulp off the value written).
                let read_back = |v: serde_json::Value| {
                    serde_json::from_str::<serde_json::Value>(&v.to_string()).expect("JSON")
                };
                assert_eq!(got["user"], serde_json::json!(p.user));
                assert_eq!(got["events"], serde_json::json!(p.events), "{id}");
                assert_eq!(got["events"], serde_json::json!(n), "{id}");
                for (name, v) in p.attributes.iter().chain(&p.features) {
                    let section = if name == "region" {
                        "attributes"
                    } else {
                        "features"
                    };
                    let want = match v {
                        Value::Int(i) => serde_json::json!(i),
                        Value::Float(f) => read_back(serde_json::json!(f)),
                        Value::String(s) => serde_json::json!(s),
                        other => panic!("{id}: unexpected {name} {other:?}"),
                    };
                    assert_eq!(got[section][name], want, "{id}: {name}");
                }
                assert_eq!(
                    got["attributes"]["region"],
                    serde_json::json!(region),
                    "{id}"
                );
                for (name, v) in &p.vectors {
                    let Value::Vector(want) = v else {
                        panic!("{id}: {name} is {v:?}");
                    };
                    let shown: Vec<f32> = got["vectors"][name]
                        .as_array()
                        .expect("an array")
                        .iter()
                        .map(|x| x.as_f64().expect("a number") as f32)
                        .collect();
                    assert_eq!(&shown, want, "{id}: {name}");
                }
                for (name, b) in &p.windows {
                    let w = &got["windows"][name];
                    assert_eq!(w["count"], serde_json::json!(b.count), "{id}: {name}");
                    assert_eq!(
                        w["sum"],
                        read_back(serde_json::json!(b.sum)),
                        "{id}: {name}"
                    );
                }
            }
            let mut segments = Vec::new();
            if *n >= 8 {
                segments.push("loyal");
            }
            if region == "r1" {
                segments.push("north");
            }
            assert_eq!(got["segments"], serde_json::json!(segments), "{id}");
            assert_eq!(got["features"]["n"], serde_json::json!(n), "{id}");
            let shown = got["features"].as_object().map(|f| f.len());
            let want = if fields.is_some() { 1 } else { 2 };
            assert_eq!(shown, Some(want), "{id}: {}", got["features"]);
        }
    }
    Ok(())
}

/// A profile and the segments it lists are read from one moment: while a
/// writer keeps adding purchases, every profile read, alone or in a batch
/// (the server's `GET /v1/users/{id}` and `POST /v1/profiles`, the Python
/// package's `profiles`), is in the segment `odd` exactly when the count it
/// shows is odd.
#[test]
fn profiles_and_their_segments_are_read_at_one_moment() -> profiledb::Result<()> {
    let dir = tempfile::tempdir().map_err(profiledb_storage::Error::from)?;
    let db = Db::open(dir.path())?;
    db.execute("CREATE FEATURE n ON buy AS COUNT(); CREATE SEGMENT odd AS n % 2 = 1")?;
    let t0 = 1_761_991_200_000i64;
    let ids: Vec<String> = (0..20).map(|u| format!("u{u:02}")).collect();
    let read = profiledb::ProfileRead::new(&db, t0 + DAY, DAY, None)?;
    let done = std::sync::atomic::AtomicBool::new(false);
    let checked = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let result = (0..1_500i64).try_for_each(|round| {
                let lines: String = ids
                    .iter()
                    .map(|u| format!(r#"{{"user":"{u}","type":"buy","ts":{}}}"#, t0 + round) + "\n")
                    .collect();
                db.ingest_json(&lines).map(drop)
            });
            done.store(true, std::sync::atomic::Ordering::Release);
            result
        });
        let mut checked = 0u64;
        let mut check = |json: &[u8]| {
            let p: serde_json::Value = serde_json::from_slice(json).expect("JSON");
            let n = p["features"]["n"].as_u64().expect("a count");
            let odd = p["segments"] == serde_json::json!(["odd"]);
            assert_eq!(odd, n % 2 == 1, "{p}");
            checked += 1;
        };
        while !done.load(std::sync::atomic::Ordering::Acquire) {
            for json in read.read(&db, &ids)?.iter().flatten() {
                check(json);
            }
            for json in read.read(&db, &ids[3..4])?.iter().flatten() {
                check(json);
            }
            let fetched = read.fetch(&db, &ids)?;
            for i in 0..fetched.len() {
                if let Some(v) = fetched.view(i, false) {
                    check(&serde_json::to_vec(&v).expect("serializes"));
                }
            }
        }
        writer.join().expect("the writer")?;
        Ok::<_, profiledb::Error>(checked)
    })?;
    assert!(checked > 0, "no profile was read while the writer wrote");
    Ok(())
}

/// The row cache keeps what point reads found in each table file: reads
/// through it must equal reads without it while operands pile onto cached
/// rows, memtables flush, files compact away and users are deleted (key by
/// key now: RocksDB refuses range deletions beside a row cache), at the
/// present and, through the history, in the past. Each user's event count
/// is also checked against a tally kept here.
#[test]
fn row_cache_reads_equal_uncached_reads() -> profiledb::Result<()> {
    use std::collections::BTreeMap;
    let dirs = [
        tempfile::tempdir().map_err(profiledb_storage::Error::from)?,
        tempfile::tempdir().map_err(profiledb_storage::Error::from)?,
    ];
    let open = |dir: &tempfile::TempDir, row_cache_bytes: usize| {
        let mut o = profiledb::Options::new(dir.path());
        o.row_cache_bytes = row_cache_bytes;
        Db::open_with(o)
    };
    let cached = open(&dirs[0], 1 << 20)?;
    let plain = open(&dirs[1], 0)?;
    cached.execute(BUY_SCHEMA)?;
    plain.execute(BUY_SCHEMA)?;
    let now = profiledb::now_ms();
    let t0 = now - 20 * DAY;
    let users: Vec<String> = (0..40).map(|u| format!("u{u:02}")).collect();
    let mut tally = BTreeMap::<String, i64>::new();
    let compare =
        |step: &str, tally: &BTreeMap<String, i64>, as_of: i64| -> profiledb::Result<()> {
            for u in &users {
                let a = cached.profile_with_span(u, as_of, 30 * DAY)?;
                let b = plain.profile_with_span(u, as_of, 30 * DAY)?;
                assert_eq!(a, b, "{u} as of {as_of} after {step}");
                if as_of == now {
                    let n = a.as_ref().and_then(|p| p.get("n").cloned());
                    assert_eq!(
                        n,
                        tally.get(u).map(|&n| Value::Int(n)),
                        "{u}'s count after {step}"
                    );
                }
            }
            Ok(())
        };
    let mut i = 0i64;
    for round in 0..6 {
        let mut lines = String::new();
        let before = t0 + i * 600_000;
        for _ in 0..300 {
            let user = &users[((i * 7) % 40) as usize];
            *tally.entry(user.clone()).or_default() += 1;
            lines.push_str(&buy(user, t0 + i * 600_000, i));
            i += 1;
        }
        cached.ingest_json(&lines)?;
        plain.ingest_json(&lines)?;
        compare(&format!("round {round}'s writes"), &tally, now)?;
        compare(&format!("round {round}, in the past"), &tally, before)?;
        match round % 3 {
            0 => {
                cached.flush()?;
                plain.flush()?;
            }
            1 => {
                cached.compact()?;
                plain.compact()?;
            }
            _ => {
                let gone = &users[round];
                assert!(cached.delete_user(gone)?);
                assert!(plain.delete_user(gone)?);
                tally.remove(gone);
            }
        }
        compare(
            &format!("round {round}'s flush, compaction or delete"),
            &tally,
            now,
        )?;
    }
    // Deleted users are gone through the cache too, after a compaction.
    cached.compact()?;
    plain.compact()?;
    compare("the last compaction", &tally, now)?;
    Ok(())
}
