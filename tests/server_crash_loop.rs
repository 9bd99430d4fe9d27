//! SIGKILL during ingest, again and again: every acknowledged batch is there
//! exactly, and no batch is ever half-applied.
//!
//! Two writers post batches concurrently; each batch adds one event to each of
//! its writer's ten users. After a kill, each writer's users must all have the
//! same count (a batch is all or nothing), at least the batches acknowledged
//! and at most one more (the batch in flight when the server died).
//!
//! CI runs a few cycles; `PROFILEDB_CRASH_CYCLES=120 cargo test --test
//! server_crash_loop` runs a long campaign.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use serde_json::json;
use support::*;

const WRITERS: usize = 2;
const USERS_PER_WRITER: usize = 10;

/// What one writer knows after a cycle: batches acknowledged, and whether one
/// was sent without an answer.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    acked: i64,
    in_flight: bool,
}

fn batch(writer: usize, seq: i64) -> String {
    let events: Vec<_> = (0..USERS_PER_WRITER)
        .map(|u| {
            json!({"user": format!("w{writer}-u{u}"), "type": "hit",
                   "ts": 1_761_955_200_000i64 + seq, "x": 1.0})
        })
        .collect();
    serde_json::Value::Array(events).to_string()
}

/// Posts batches until a request fails; returns what was acknowledged.
fn write_until_failure(url: String, writer: usize, start: i64, stop: Arc<AtomicBool>) -> Tally {
    let agent = agent();
    let mut tally = Tally {
        acked: start,
        in_flight: false,
    };
    while !stop.load(Ordering::Relaxed) {
        tally.in_flight = true;
        let answer = agent
            .post(format!("{url}/v1/events"))
            .header("Content-Type", "application/json")
            .send(batch(writer, tally.acked).as_bytes());
        match answer {
            Ok(r) if r.status().as_u16() == 200 => {
                tally.acked += 1;
                tally.in_flight = false;
            }
            Ok(r) => panic!("writer {writer}: status {}", r.status()),
            // The server died under us: the batch may or may not have landed.
            Err(_) => return tally,
        }
    }
    tally
}

fn counts(s: &Server) -> Vec<Vec<i64>> {
    let (status, body) = query(s, None, "SELECT id, n, total FROM users ORDER BY id");
    assert_eq!(status, 200, "{body}");
    let mut out = vec![Vec::new(); WRITERS];
    for row in body["rows"].as_array().expect("rows") {
        let id = row[0].as_str().expect("an id");
        let w: usize = id[1..id.find('-').expect("w<k>-u<i>")]
            .parse()
            .expect("a writer number");
        let n = row[1].as_i64().expect("a count");
        // The sum of ones agrees with the count: no operand applied twice.
        assert_eq!(row[2].as_f64(), Some(n as f64), "{id}");
        out[w].push(n);
    }
    out
}

#[test]
fn acknowledged_batches_survive_sigkill_exactly() {
    let cycles: u64 = std::env::var("PROFILEDB_CRASH_CYCLES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(4);
    let dir = tempfile::tempdir().expect("a temp dir");
    let s = Server::start(dir.path(), &[]);
    let (status, body) = query(
        &s,
        None,
        "CREATE FEATURE n ON hit AS COUNT(); CREATE FEATURE total ON hit AS SUM(x)",
    );
    assert_eq!(status, 200, "{body}");
    let mut server = Some(s);
    let mut known = [0i64; WRITERS];
    for cycle in 0..cycles {
        let mut rng = rand::rngs::StdRng::seed_from_u64(cycle);
        let s = server
            .take()
            .unwrap_or_else(|| Server::start(dir.path(), &[]));
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (url, stop, start) = (s.url.clone(), stop.clone(), known[w]);
                std::thread::spawn(move || write_until_failure(url, w, start, stop))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(rng.random_range(100..400)));
        kill_9(s);
        stop.store(true, Ordering::Relaxed);
        let tallies: Vec<Tally> = writers
            .into_iter()
            .map(|h| h.join().expect("a writer thread"))
            .collect();

        let s = Server::start(dir.path(), &[]);
        let found = counts(&s);
        for (w, tally) in tallies.iter().enumerate() {
            let users = &found[w];
            if tally.acked == 0 && users.is_empty() {
                continue;
            }
            assert_eq!(users.len(), USERS_PER_WRITER, "cycle {cycle} writer {w}");
            let n = users[0];
            assert!(
                users.iter().all(|c| *c == n),
                "cycle {cycle} writer {w}: a batch was half-applied: {users:?}"
            );
            let most = tally.acked + i64::from(tally.in_flight);
            assert!(
                (tally.acked..=most).contains(&n),
                "cycle {cycle} writer {w}: {n} batches found, {} acknowledged ({tally:?})",
                tally.acked
            );
            known[w] = n;
        }
        server = Some(s);
    }
    assert!(
        known.iter().all(|k| *k > 0),
        "every writer got batches in: {known:?}"
    );
}
