//! The HTTP server: `profiledb serve`.
//!
//! Connections are served by one single-threaded runtime per core
//! ([`workers`]); statements, ingest and deletes run on tokio's blocking
//! pool, so a slow query never stalls the event loop that answers everyone
//! else, and only a profile read (microseconds of point lookups) runs on the
//! event loop itself. Statements run under a deadline and a row cap; request
//! bodies are capped; a panic in a handler becomes a 500 for that request
//! alone.
//!
//! Connections are bounded too, so that no client can starve the others: the
//! accept loop is hyper's HTTP/1 server (hyper-util) rather than `axum::serve`,
//! because it exposes the header read timeout. That timeout starts when a
//! connection opens and again after each response, so it closes idle keep-alive
//! connections and slow-header clients alike. A body must arrive within its own
//! timeout, and past `max_connections` a new connection is closed at once. The
//! process raises its open-file limit to the hard limit at start (`rlimit`), so
//! that the cap, not the operating system, decides; every error, axum's own
//! rejections included, answers the documented JSON.
//!
//! Files by concern: [`auth`] (tokens), [`body`] (reading bodies within
//! limits), [`errors`] (the one JSON error shape), [`metrics`] (`/metrics`),
//! [`routes`] (the endpoints), [`workers`] (the serving threads); this file
//! binds, accepts and routes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware::{self};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use profiledb::Db;
use tower_http::catch_panic::CatchPanicLayer;

mod auth;
mod body;
mod errors;
mod metrics;
pub(crate) mod router;
mod routes;
mod workers;

use auth::auth;
use body::read_body;
use errors::{ApiError, json_errors};
use metrics::{Metrics, metrics};
use routes::{
    batch_read, delete_user, get_user, ingest, partial, query, rows_as_of, schema, statement,
    window_series,
};
use workers::Workers;

/// How a server listens and bounds its clients: `profiledb serve` and
/// `profiledb router` alike.
#[derive(Debug, Clone)]
pub struct Http {
    /// Address to bind.
    pub listen: SocketAddr,
    /// Bearer token for every endpoint but `/healthz`.
    pub token: Option<String>,
    /// Bearer token that may query but not write.
    pub read_token: Option<String>,
    /// Largest request body, in bytes.
    pub max_body: usize,
    /// Longest a connection may sit without sending a complete request header:
    /// idle between requests, or sending its headers slowly.
    pub idle_timeout: Duration,
    /// Longest a request body may take to arrive.
    pub body_timeout: Duration,
    /// Most connections open at once; more are closed as they arrive.
    pub max_connections: usize,
}

/// How the server runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// How it listens.
    pub http: Http,
    /// Longest a statement may run before it is cancelled.
    pub statement_timeout: Duration,
    /// Most rows a query may return.
    pub max_rows: usize,
    /// As a node of a cluster: the NATS server(s) and this node's name. The
    /// database then follows the cluster's log, its only source of events.
    pub node: Option<(String, String)>,
    /// As a node: how long the database keeps its copy of a partition the
    /// node no longer follows before it drops it.
    pub drop_after: Duration,
}

#[derive(Debug)]
pub(crate) struct App {
    pub(crate) db: Arc<Db>,
    pub(crate) config: Config,
    pub(crate) metrics: Metrics,
    /// As a node of a cluster: its name and what it knows of the others.
    pub(crate) node: Option<Arc<crate::cluster::NodeState>>,
    /// One permit per open connection.
    connections: Arc<tokio::sync::Semaphore>,
}

/// Serves until SIGTERM or SIGINT, then finishes requests in flight, flushes
/// and returns. `ready` is called with the bound address once it accepts.
pub fn serve(db: Db, mut config: Config, ready: impl FnOnce(SocketAddr)) -> Result<(), String> {
    config.http.max_connections = connection_cap(config.http.max_connections);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let app = Arc::new(App {
        db: Arc::new(db),
        node: config
            .node
            .as_ref()
            .map(|(_, name)| Arc::new(crate::cluster::NodeState::new(name.clone()))),
        connections: Arc::new(tokio::sync::Semaphore::new(config.http.max_connections)),
        config,
        metrics: Metrics::default(),
    });
    let workers = Workers::start()?;
    let served = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(app.config.http.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", app.config.http.listen))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("cannot read the bound address: {e}"))?;
        let router = router(app.clone());
        // A node follows the cluster's log until the server stops.
        let (stop_node, stopped) = tokio::sync::watch::channel(false);
        let node = match (app.config.node.clone(), app.node.clone()) {
            (Some((nats, _)), Some(state)) => {
                let (db, drop_after) = (app.db.clone(), app.config.drop_after);
                let mut stopped = stopped.clone();
                let stop = async move {
                    let _ = stopped.wait_for(|s| *s).await;
                };
                Some(tokio::spawn(async move {
                    crate::cluster::run_node(db, &nats, state, addr, drop_after, stop).await
                }))
            }
            _ => None,
        };
        tracing::info!("listening on http://{addr}");
        ready(addr);
        let node_failed = async {
            match node {
                Some(task) => match task.await {
                    Ok(Err(e)) => tracing::error!("the node stopped: {e}"),
                    Ok(Ok(())) => {}
                    Err(e) => tracing::error!("the node stopped: {e}"),
                },
                None => std::future::pending::<()>().await,
            }
        };
        // A node that cannot reach its cluster stops the server too: serving
        // reads that silently fall behind would be worse.
        let stop = async {
            tokio::select! {
                () = shutdown_signal() => {}
                () = node_failed => {}
            }
        };
        let bounds = Bounds {
            connections: app.connections.clone(),
            idle_timeout: app.config.http.idle_timeout,
            refused: app.metrics.connections_refused.clone(),
        };
        accept_loop(listener, router, &bounds, Some(&workers), stop).await;
        let _ = stop_node.send(true);
        Ok::<(), String>(())
    });
    workers.stop();
    served?;
    tracing::info!("stopped accepting; flushing");
    let flushed = match app.db.flush() {
        // Every acknowledged write is in the write-ahead log, which the next
        // open replays: a full disk loses nothing here.
        Err(e) if e.storage_kind() == Some(profiledb::ErrorKind::NoSpace) => {
            tracing::warn!(
                "the disk is full, so memtables were not flushed; the write-ahead log holds every acknowledged write and the next open replays it: {e}"
            );
            Ok(())
        }
        other => other.map_err(|e| format!("flushing on shutdown: {e}")),
    };
    // Let blocking calls still running finish before the database closes.
    runtime.shutdown_timeout(Duration::from_secs(30));
    flushed
}

/// File descriptors kept back from connections: RocksDB's files, the log, the
/// listener.
const RESERVED_FDS: u64 = 1024;

/// Raises the open-file limit as far as the hard limit allows, and returns the
/// connection cap that fits under it.
fn connection_cap(wanted: usize) -> usize {
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(RESERVED_FDS * 2);
    let fits = usize::try_from(limit.saturating_sub(RESERVED_FDS))
        .unwrap_or(usize::MAX)
        .max(64);
    if wanted > fits {
        tracing::warn!(
            "--max-connections {wanted} is above what the open-file limit ({limit}) allows; using {fits}"
        );
    }
    wanted.min(fits)
}

/// What bounds a server's connections: a permit each, a timeout for a
/// request's header, and a count of those refused.
#[derive(Debug)]
pub(crate) struct Bounds {
    pub(crate) connections: Arc<tokio::sync::Semaphore>,
    pub(crate) idle_timeout: Duration,
    pub(crate) refused: Arc<std::sync::atomic::AtomicU64>,
}

/// Accepts connections until `shutdown`, then waits (at most 30 s) for the
/// requests in flight. Each connection is served on the next of `workers`,
/// or on the accepting runtime without them.
pub(crate) async fn accept_loop(
    listener: tokio::net::TcpListener,
    router: Router,
    bounds: &Bounds,
    workers: Option<&Workers>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, most likely: back off, don't spin.
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = bounds.connections.clone().try_acquire_owned() else {
            bounds.refused.fetch_add(1, Ordering::Relaxed);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        // Its I/O is registered anew with the runtime that serves it.
        let Ok(stream) = stream.into_std() else {
            continue;
        };
        let (router, watcher, idle_timeout) =
            (router.clone(), graceful.watcher(), bounds.idle_timeout);
        let task = async move {
            let Ok(stream) = tokio::net::TcpStream::from_std(stream) else {
                return;
            };
            // `json_errors` wraps the whole router, not its routes, so that it
            // sees the Allow header axum adds to a 405 outside the route layers.
            let service = tower::ServiceBuilder::new()
                .map_request(|r: hyper::Request<hyper::body::Incoming>| r.map(Body::new))
                .layer(middleware::from_fn(json_errors))
                .service(router);
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(idle_timeout)
                .serve_connection(
                    hyper_util::rt::TokioIo::new(stream),
                    hyper_util::service::TowerToHyperService::new(service),
                );
            // A connection closed by a timeout or by its client is no error of ours.
            let _ = watcher.watch(conn).await;
            drop(permit);
        };
        match workers {
            Some(workers) => drop(workers.next().spawn(task)),
            None => drop(tokio::spawn(task)),
        }
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(30), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still running 30 s after shutdown began; closing anyway");
    }
}

/// The OpenAPI document of this API (`docs/openapi.json`), tested against
/// the routes' answers.
const OPENAPI: &str = include_str!("../../../../docs/openapi.json");

/// `GET /v1/openapi.json`
async fn openapi() -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
        .into_response()
}

/// What a handler that panicked answers: a 500 for that request alone.
pub(crate) fn panic_answer(_: Box<dyn std::any::Any + Send>) -> axum::response::Response {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error while serving the request",
    )
    .into_response()
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v1/events", post(ingest))
        .route("/v1/query", post(query))
        .route("/v1/users/{id}", get(get_user).delete(delete_user))
        .route("/v1/users/{id}/windows/{window}", get(window_series))
        .route("/v1/profiles", post(batch_read))
        .route("/v1/rows_as_of", post(rows_as_of))
        .route(profiledb::cluster::peers::PARTIAL_PATH, post(partial))
        .route(profiledb::cluster::peers::STATEMENT_PATH, post(statement))
        .route(profiledb::cluster::peers::SCHEMA_PATH, get(schema))
        .route("/v1/openapi.json", get(openapi))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint") })
        .layer(middleware::from_fn_with_state(app.clone(), read_body))
        .layer(middleware::from_fn_with_state(app.clone(), auth))
        // `read_body` has read and bounded every body already.
        .layer(DefaultBodyLimit::disable())
        .layer(CatchPanicLayer::custom(panic_answer))
        .with_state(app)
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
    tracing::info!("shutdown requested");
}
