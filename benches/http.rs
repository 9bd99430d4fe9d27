//! The server over loopback: ingest throughput in batches of 1,000 JSON events
//! (each updating 4 scalar features, 1 window and 1 16-dimension ewma vector),
//! and point profile reads: their latency, the server's CPU time per read
//! (`get_profile_server_cpu` reports that as its time), and reads paced at
//! 1,000 and 10,000 requests/s, alone and beside two writers ingesting at full
//! speed, and batch reads of 200 profiles paced at 100 requests/s, with the
//! latency percentiles printed. Every user has an event before the reads,
//! so that each is a whole profile, and each answer is read to its end, so
//! that a client keeps its connection as real clients do.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use profiledb::Value;

const USERS: u64 = 100_000;
const BATCH: usize = 1_000;
/// Concurrent clients posting batches.
const CLIENTS: u64 = 2;

struct Server {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_profiledb"))
        .args([
            "serve",
            "--db",
            dir.path().to_str().expect("utf-8"),
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped"))
        .read_line(&mut line)
        .expect("the server prints its address");
    Server {
        child,
        url: format!("http://{}", line.trim()),
        _dir: dir,
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(true)
        .build()
        .into()
}

fn post(agent: &ureq::Agent, url: &str, body: &[u8]) {
    agent
        .post(url)
        .header("Content-Type", "application/json")
        .send(body)
        .expect("the server accepts")
        .body_mut()
        .read_to_vec()
        .expect("the answer is read");
}

const SCHEMA: &str = "CREATE FEATURE views ON view AS COUNT();
CREATE FEATURE spend ON view AS SUM(price);
CREATE FEATURE spend_7d ON view AS DECAYED_SUM(price) HALF_LIFE '7d';
CREATE FEATURE price_avg ON view AS DECAYED_AVG(price) HALF_LIFE '30d';
CREATE WINDOW views_hourly ON view BUCKET '1h' RETAIN '30d';
CREATE VECTOR taste ON view AS EWMA(item_vec) DIM 16 HALF_LIFE '14d'";

/// Request bodies: JSON arrays of 1,000 events each.
fn bodies(n: usize) -> Vec<Vec<u8>> {
    support::events(11, USERS, n * BATCH)
        .chunks(BATCH)
        .map(json_body)
        .collect()
}

/// `events` as the JSON array an ingest request carries.
fn json_body(events: &[profiledb::Event]) -> Vec<u8> {
    let items: Vec<serde_json::Value> = events
        .iter()
        .map(|e| {
            let mut o = serde_json::json!({"user": e.user, "type": e.event_type, "ts": e.ts});
            for (k, v) in &e.fields {
                o[k] = match v {
                    Value::Float(f) => serde_json::json!(f),
                    Value::Vector(v) => serde_json::json!(v),
                    other => panic!("unexpected field {other:?}"),
                };
            }
            o
        })
        .collect();
    serde_json::to_vec(&items).expect("serializes")
}

/// One whole-profile read of user `n`, its answer read to the end so that
/// the connection is kept for the next.
fn read_profile(agent: &ureq::Agent, server: &Server, n: u64) {
    let body = agent
        .get(&format!("{}/v1/users/user{n:07}", server.url))
        .call()
        .expect("every user exists")
        .body_mut()
        .read_to_vec()
        .expect("the answer is read");
    assert!(!body.is_empty());
}

fn http(c: &mut Criterion) {
    let server = start();
    let a = agent();
    post(
        &a,
        &format!("{}/v1/query", server.url),
        serde_json::json!({ "sql": SCHEMA }).to_string().as_bytes(),
    );
    let events_url = format!("{}/v1/events", server.url);
    // Every user exists, so that every read below is a whole profile.
    let everyone: Vec<profiledb::Event> = support::every_user(USERS).collect();
    for chunk in everyone.chunks(BATCH) {
        post(&a, &events_url, &json_body(chunk));
    }
    let bodies = bodies(64);
    let mut group = c.benchmark_group("http");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("ingest_batches_of_1000_json_events", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            std::thread::scope(|s| {
                for client in 0..CLIENTS {
                    let (bodies, url) = (&bodies, &events_url);
                    s.spawn(move || {
                        let a = agent();
                        for i in (client..iters).step_by(CLIENTS as usize) {
                            post(&a, url, &bodies[i as usize % bodies.len()]);
                        }
                    });
                }
            });
            start.elapsed()
        });
    });
    group.throughput(Throughput::Elements(1));
    let mut n = 0u64;
    group.bench_function("get_profile", |b| {
        b.iter(|| {
            n = (n + 7919) % USERS;
            read_profile(&a, &server, n);
        });
    });
    // The server's CPU time per read, as criterion's time.
    let pid = server.child.id();
    group.bench_function("get_profile_server_cpu", |b| {
        b.iter_custom(|iters| {
            let before = server_cpu(pid);
            for _ in 0..iters {
                n = (n + 7919) % USERS;
                read_profile(&a, &server, n);
            }
            server_cpu(pid).saturating_sub(before)
        });
    });
    group.finish();
    paced(&server);
    paced_reads(&server, 10_000, false);
    paced_reads(&server, 1_000, true);
    paced_reads(&server, 10_000, true);
}

/// CPU time the process `pid` has used so far, over all its threads, from
/// the scheduler's nanosecond counters. Threads that already exited are not
/// counted (tokio's blocking pool keeps its threads for 10 s).
fn server_cpu(pid: u32) -> Duration {
    let mut ns = 0u64;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            let stat = std::fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
            ns += stat
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Duration::from_nanos(ns)
}

/// Whole-profile reads paced at `rate` requests/s from two clients for 10 s,
/// with (when `writers`) two more clients posting event batches as fast as
/// the server takes them. Prints latency percentiles, counted from when each
/// request was due, and the server's CPU time per request.
fn paced_reads(server: &Server, rate: u32, writers: bool) {
    let pid = server.child.id();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let bodies = if writers { bodies(32) } else { Vec::new() };
    let events_url = format!("{}/v1/events", server.url);
    let (latencies, late, cpu, posted) = std::thread::scope(|s| {
        let writer_threads: Vec<_> = (0..if writers { 2 } else { 0 })
            .map(|w| {
                let (stop, bodies, url) = (&stop, &bodies, &events_url);
                s.spawn(move || {
                    let a = agent();
                    let mut i = w;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        post(&a, url, &bodies[i % bodies.len()]);
                        i += 2;
                    }
                    (i - w) / 2
                })
            })
            .collect();
        let before = server_cpu(pid);
        let start = Instant::now();
        let readers: Vec<_> = (0..2u32)
            .map(|c| {
                s.spawn(move || {
                    let a: ureq::Agent = ureq::Agent::config_builder()
                        .http_status_as_error(false)
                        .build()
                        .into();
                    let per = rate / 2;
                    let mut latencies = Vec::with_capacity(10 * per as usize);
                    let mut late = Vec::with_capacity(10 * per as usize);
                    for i in 0..10 * per {
                        let due = start + Duration::from_secs(1) * i / per;
                        late.push(support::wait_until(due));
                        let u = (u64::from(i) * 2 + u64::from(c)) * 7919 % USERS;
                        let url = format!("{}/v1/users/user{u:07}", server.url);
                        let _ = a.get(&url).call().map(|mut r| r.body_mut().read_to_vec());
                        latencies.push(due.elapsed());
                    }
                    (latencies, late)
                })
            })
            .collect();
        let (mut latencies, mut late) = (Vec::new(), Vec::new());
        for r in readers {
            let (l, w) = r.join().expect("reader");
            latencies.extend(l);
            late.extend(w);
        }
        let cpu = server_cpu(pid).saturating_sub(before);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let posted: usize = writer_threads
            .into_iter()
            .map(|w| w.join().expect("writer"))
            .sum();
        latencies.sort();
        late.sort();
        (latencies, late, cpu, posted)
    });
    let pct = |p: f64| support::percentile(&latencies, p);
    println!(
        "paced GET /v1/users/{{id}} from 2 clients at {rate} req/s{}: p50 {:?}, p99 {:?}, p99.9 {:?}, max {:?}; server CPU {:?} per request; clients late p50 {:?}, p99 {:?}{}",
        if writers {
            " beside 2 writers at full speed"
        } else {
            ""
        },
        pct(0.50),
        pct(0.99),
        pct(0.999),
        latencies[latencies.len() - 1],
        cpu / latencies.len() as u32,
        support::percentile(&late, 0.5),
        support::percentile(&late, 0.99),
        if writers {
            format!(
                " (reads and writes together; {} batches of {BATCH} events posted)",
                posted
            )
        } else {
            String::new()
        },
    );
}

/// Point reads at a steady 1,000 requests/s for 10 s. Latency counts from when
/// each request was due, so a stall is not hidden by sending later.
fn paced(server: &Server) {
    let a = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    for (name, rate, make) in [
        (
            "GET /v1/users/{id}",
            1_000u32,
            Box::new(|u: u64| (format!("{}/v1/users/user{u:07}", server.url), None))
                as Box<dyn Fn(u64) -> (String, Option<String>)>,
        ),
        (
            "POST /v1/query (WHERE id = …)",
            1_000,
            Box::new(|u: u64| {
                (
                    format!("{}/v1/query", server.url),
                    Some(serde_json::json!({"sql": format!("SELECT * FROM users WHERE id = 'user{u:07}'")}).to_string()),
                )
            }),
        ),
        (
            "POST /v1/profiles (200 users)",
            100,
            Box::new(|u: u64| {
                let ids: Vec<String> = (0..200)
                    .map(|k| format!("user{:07}", (u + k * 4_999) % USERS))
                    .collect();
                (
                    format!("{}/v1/profiles", server.url),
                    Some(serde_json::json!({ "ids": ids }).to_string()),
                )
            }),
        ),
    ] {
        let total = 10 * rate;
        let mut latencies = Vec::with_capacity(total as usize);
        let mut late = Vec::with_capacity(total as usize);
        let start = Instant::now();
        for i in 0..total {
            let due = start + Duration::from_secs(1) * i / rate;
            late.push(support::wait_until(due));
            let (url, body) = make(u64::from(i) * 7919 % USERS);
            let agent: &ureq::Agent = &a;
            let resp = match body {
                None => agent.get(&url).call(),
                Some(b) => agent
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .send(b.as_bytes()),
            };
            let _ = resp.map(|mut r| r.body_mut().read_to_vec());
            latencies.push(due.elapsed());
        }
        latencies.sort();
        late.sort();
        let pct = |p: f64| support::percentile(&latencies, p);
        println!(
            "paced {name}: {rate} req/s for {:.1} s: p50 {:?}, p99 {:?}, p99.9 {:?}, max {:?}; client late p50 {:?}, p99 {:?}",
            start.elapsed().as_secs_f64(),
            pct(0.50),
            pct(0.99),
            pct(0.999),
            latencies[latencies.len() - 1],
            support::percentile(&late, 0.5),
            support::percentile(&late, 0.99),
        );
    }
}

criterion_group!(benches, http);
criterion_main!(benches);
