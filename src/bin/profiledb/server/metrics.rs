//! `/metrics`: counters and the latency histograms of queries, profile reads
//! and ingest, in Prometheus' text format.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::App;

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) events_ingested: AtomicU64,
    pub(crate) events_rejected: AtomicU64,
    pub(crate) bad_requests: AtomicU64,
    pub(crate) queries: AtomicU64,
    pub(crate) query_errors: AtomicU64,
    /// `POST /v1/query` latencies.
    pub(crate) query_latency: Histogram,
    /// Profile read latencies (`GET /v1/users/{id}`, each profile of a
    /// batch read).
    pub(crate) profile_latency: Histogram,
    /// `POST /v1/events` latencies, per request.
    pub(crate) ingest_latency: Histogram,
    pub(crate) connections_refused: std::sync::Arc<AtomicU64>,
}

/// Upper bounds of the latency histograms, in seconds: from 50 µs (a
/// profile read from cache) to 5 s (a long scan).
const LATENCY_BUCKETS: [f64; 15] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    5.0,
];

/// A latency histogram: a counter per bucket of [`LATENCY_BUCKETS`] and one
/// for slower requests, and the sum.
#[derive(Debug, Default)]
pub(crate) struct Histogram {
    counts: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_us: AtomicU64,
}

impl Histogram {
    pub(crate) fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// The histogram in Prometheus' text format, as `name`.
    pub(crate) fn render(&self, out: &mut String, name: &str, help: &str) {
        use std::fmt::Write as _;
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            cumulative += load(&self.counts[i]);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        cumulative += load(&self.counts[LATENCY_BUCKETS.len()]);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(out, "{name}_sum {}", load(&self.sum_us) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {cumulative}");
    }
}

impl Metrics {
    pub(crate) fn observe_query(&self, elapsed: Duration, ok: bool) {
        self.queries.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.query_errors.fetch_add(1, Ordering::Relaxed);
        }
        self.query_latency.observe(elapsed);
    }
}

/// `GET /metrics`, in Prometheus' text format.
pub(crate) async fn metrics(State(app): State<Arc<App>>) -> Response {
    let stats = {
        let app = app.clone();
        tokio::task::spawn_blocking(move || app.db.stats())
            .await
            .unwrap_or_default()
    };
    let m = &app.metrics;
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let mut out = String::new();
    let open_connections = app.config.http.max_connections - app.connections.available_permits();
    let figures: [(&str, &str, &str, u64); 20] = [
        (
            "profiledb_connections_open",
            "gauge",
            "HTTP connections open now.",
            open_connections as u64,
        ),
        (
            "profiledb_connections_refused_total",
            "counter",
            "Connections closed on arrival because --max-connections were open.",
            load(&m.connections_refused),
        ),
        (
            "profiledb_events_ingested_total",
            "counter",
            "Events written.",
            load(&m.events_ingested),
        ),
        (
            "profiledb_events_rejected_total",
            "counter",
            "Events in batches rejected for a bad event.",
            load(&m.events_rejected),
        ),
        (
            "profiledb_bad_requests_total",
            "counter",
            "Event requests rejected: bad JSON or a bad event.",
            load(&m.bad_requests),
        ),
        (
            "profiledb_queries_total",
            "counter",
            "Query requests run.",
            load(&m.queries),
        ),
        (
            "profiledb_query_errors_total",
            "counter",
            "Query requests that failed.",
            load(&m.query_errors),
        ),
        (
            "profiledb_index_pending",
            "gauge",
            "Change notices the vector index has yet to apply (its lag).",
            stats.index_pending,
        ),
        (
            "profiledb_row_table_users",
            "gauge",
            "Users in the row table that scans read (0 until a scan has it built).",
            stats.row_table.users,
        ),
        (
            "profiledb_row_table_bytes",
            "gauge",
            "Estimated memory of the row table, in bytes.",
            stats.row_table.bytes,
        ),
        (
            "profiledb_row_table_pending",
            "gauge",
            "Write batches the row table has yet to apply (its lag).",
            stats.row_table.pending,
        ),
        (
            "profiledb_row_table_too_large",
            "gauge",
            "1 when the row table was refused for outgrowing its memory limit, so scans read RocksDB.",
            u64::from(stats.row_table.too_large),
        ),
        (
            "profiledb_memtable_bytes",
            "gauge",
            "Bytes in RocksDB memtables.",
            stats.memtable_bytes,
        ),
        (
            "profiledb_block_cache_bytes",
            "gauge",
            "Bytes in RocksDB's block cache.",
            stats.block_cache_bytes,
        ),
        (
            "profiledb_immutable_memtables",
            "gauge",
            "RocksDB memtables waiting to be flushed.",
            stats.immutable_memtables,
        ),
        (
            "profiledb_running_compactions",
            "gauge",
            "RocksDB compactions running.",
            stats.running_compactions,
        ),
        (
            "profiledb_running_flushes",
            "gauge",
            "RocksDB flushes running.",
            stats.running_flushes,
        ),
        (
            "profiledb_pending_compaction_bytes",
            "gauge",
            "Bytes RocksDB estimates compaction has yet to rewrite.",
            stats.pending_compaction_bytes,
        ),
        (
            "profiledb_last_sequence",
            "gauge",
            "RocksDB's latest sequence number.",
            stats.last_sequence,
        ),
        (
            "profiledb_users_expired_total",
            "counter",
            "Users deleted for the user TTL since the server started.",
            stats.users_expired,
        ),
    ];
    render_figures(&mut out, &figures);
    if let Some(p) = app.node.as_ref().and_then(|n| n.progress()) {
        render_figures(
            &mut out,
            &[
                (
                    "profiledb_node_partitions_followed",
                    "gauge",
                    "Partitions of the cluster's log this node reads now.",
                    p.positions.len() as u64,
                ),
                (
                    "profiledb_node_messages_rejected_total",
                    "counter",
                    "Messages of the log skipped: not an event, or one the schema does not take.",
                    p.rejected,
                ),
                (
                    "profiledb_node_partitions_dropped_total",
                    "counter",
                    "Partitions whose copy this node dropped, once it had not followed them for --drop-after.",
                    p.dropped_partitions,
                ),
                (
                    "profiledb_node_users_dropped_total",
                    "counter",
                    "Users deleted with the partitions dropped.",
                    p.dropped_users,
                ),
            ],
        );
    }
    m.query_latency.render(
        &mut out,
        "profiledb_query_duration_seconds",
        "Query latency (POST /v1/query).",
    );
    m.profile_latency.render(
        &mut out,
        "profiledb_profile_read_duration_seconds",
        "Profile read latency (GET /v1/users/{id}, and each profile of a batch read).",
    );
    m.ingest_latency.render(
        &mut out,
        "profiledb_ingest_duration_seconds",
        "Ingest latency per request (POST /v1/events).",
    );
    text_answer(out)
}

/// Figures (name, kind, help, value) in Prometheus' text format.
pub(crate) fn render_figures(out: &mut String, figures: &[(&str, &str, &str, u64)]) {
    use std::fmt::Write as _;
    for (name, kind, help, value) in figures {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
}

/// A `/metrics` answer.
pub(crate) fn text_answer(out: String) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    (headers, Body::from(out)).into_response()
}
