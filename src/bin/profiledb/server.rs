//! The HTTP server: `profiledb serve`.
//!
//! Every database call runs on tokio's blocking pool, so a slow query never
//! stalls the event loop that answers everyone else. Statements run under a
//! deadline and a row cap; request bodies are capped; a panic in a handler
//! becomes a 500 for that request alone.
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

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use profiledb::{Db, Error, Limits, Permission, Profile};
use serde::Serialize;
use serde::ser::SerializeMap;
use tower_http::catch_panic::CatchPanicLayer;

use crate::json::{JsonOutput, JsonValue};

/// How the server runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to bind.
    pub listen: SocketAddr,
    /// Bearer token for every endpoint but `/healthz`.
    pub token: Option<String>,
    /// Bearer token that may query but not write.
    pub read_token: Option<String>,
    /// Largest request body, in bytes.
    pub max_body: usize,
    /// Longest a statement may run before it is cancelled.
    pub statement_timeout: Duration,
    /// Most rows a query may return.
    pub max_rows: usize,
    /// Longest a connection may sit without sending a complete request header:
    /// idle between requests, or sending its headers slowly.
    pub idle_timeout: Duration,
    /// Longest a request body may take to arrive.
    pub body_timeout: Duration,
    /// Most connections open at once; more are closed as they arrive.
    pub max_connections: usize,
}

/// What a request's token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Full,
    ReadOnly,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
struct Metrics {
    events_ingested: AtomicU64,
    events_rejected: AtomicU64,
    bad_requests: AtomicU64,
    queries: AtomicU64,
    query_errors: AtomicU64,
    /// Query latencies, one counter per bucket of [`LATENCY_BUCKETS`] and one
    /// for slower queries.
    latency: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    latency_sum_us: AtomicU64,
    connections_refused: AtomicU64,
}

/// Upper bounds of the query latency histogram, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

impl Metrics {
    fn observe_query(&self, elapsed: Duration, ok: bool) {
        self.queries.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.query_errors.fetch_add(1, Ordering::Relaxed);
        }
        let secs = elapsed.as_secs_f64();
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.latency[bucket].fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.latency_sum_us.fetch_add(us, Ordering::Relaxed);
    }
}

#[derive(Debug)]
struct App {
    db: Db,
    config: Config,
    metrics: Metrics,
    /// One permit per open connection.
    connections: Arc<tokio::sync::Semaphore>,
}

/// An error answer: a status and `{"error": {"message", ...}}`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    error: serde_json::Map<String, serde_json::Value>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        let mut error = serde_json::Map::new();
        error.insert("message".into(), message.into().into());
        ApiError { status, error }
    }

    fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> ApiError {
        self.error.insert(key.into(), value.into());
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.error });
        let mut resp = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// Maps a library error to an answer: the client's fault is 400 (with the
/// event's index and field, or the statement's line and column), a missing
/// user 404, a full disk 507, a busy store 503 (retry), the server's fault 500.
fn library_error(e: &Error, app: &App) -> ApiError {
    if e.is_read_only_refusal() {
        return forbidden("change data or schema");
    }
    if e.is_cancelled() {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "statement timeout: the statement ran longer than {:?} and was cancelled",
                app.config.statement_timeout
            ),
        )
        .with("code", "statement_timeout");
    }
    if let Some(limit) = e.row_limit() {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "the result has more than {limit} rows, the server's limit; add a LIMIT or a filter"
            ),
        )
        .with("code", "too_many_rows");
    }
    // A storage failure under a statement answers as the storage failure it
    // is (a full disk is no fault of the statement).
    let status = match e.storage_kind() {
        Some(profiledb::ErrorKind::NotFound) => StatusCode::NOT_FOUND,
        Some(profiledb::ErrorKind::NoSpace) => StatusCode::INSUFFICIENT_STORAGE,
        Some(profiledb::ErrorKind::Busy) => StatusCode::SERVICE_UNAVAILABLE,
        _ if e.is_client_error() => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let mut err = ApiError::new(status, e.message());
    if let Some((index, field)) = e.rejected_event() {
        err = err.with("index", index).with("field", field);
    }
    if let Some(p) = e.position() {
        err = err
            .with("line", p.line)
            .with("column", p.column)
            .with("width", p.width);
    }
    err
}

/// Runs `f` on the blocking pool; a panic in it answers 500.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        tracing::error!("request failed: {e}");
        Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error while serving the request",
        ))
    })
}

fn json_bytes(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

/// Serves until SIGTERM or SIGINT, then finishes requests in flight, flushes
/// and returns. `ready` is called with the bound address once it accepts.
pub fn serve(db: Db, mut config: Config, ready: impl FnOnce(SocketAddr)) -> Result<(), String> {
    config.max_connections = connection_cap(config.max_connections);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let app = Arc::new(App {
        db,
        connections: Arc::new(tokio::sync::Semaphore::new(config.max_connections)),
        config,
        metrics: Metrics::default(),
    });
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(app.config.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", app.config.listen))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("cannot read the bound address: {e}"))?;
        let router = router(app.clone());
        tracing::info!("listening on http://{addr}");
        ready(addr);
        accept_loop(listener, router, &app, shutdown_signal()).await;
        Ok::<(), String>(())
    })?;
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

/// Accepts connections until `shutdown`, then waits (at most 30 s) for the
/// requests in flight.
async fn accept_loop(
    listener: tokio::net::TcpListener,
    router: Router,
    app: &Arc<App>,
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
        let Ok(permit) = app.connections.clone().try_acquire_owned() else {
            app.metrics
                .connections_refused
                .fetch_add(1, Ordering::Relaxed);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        // `json_errors` wraps the whole router, not its routes, so that it sees
        // the Allow header axum adds to a 405 outside the route layers.
        let service = tower::ServiceBuilder::new()
            .map_request(|r: hyper::Request<hyper::body::Incoming>| r.map(Body::new))
            .layer(middleware::from_fn(json_errors))
            .service(router.clone());
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(app.config.idle_timeout)
            .serve_connection(
                hyper_util::rt::TokioIo::new(stream),
                hyper_util::service::TowerToHyperService::new(service),
            );
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // A connection closed by a timeout or by its client is no error of ours.
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(30), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still running 30 s after shutdown began; closing anyway");
    }
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v1/events", post(ingest))
        .route("/v1/query", post(query))
        .route("/v1/users/{id}", get(get_user).delete(delete_user))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint") })
        .layer(middleware::from_fn_with_state(app.clone(), read_body))
        .layer(middleware::from_fn_with_state(app.clone(), auth))
        // `read_body` has read and bounded every body already.
        .layer(DefaultBodyLimit::disable())
        .layer(CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error while serving the request",
                )
                .into_response()
            },
        ))
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

/// Reads the whole request body, within `max_body` and `body_timeout`, before
/// the handler runs: a client that stops sending is answered 408 and let go,
/// rather than holding a connection and a task forever. Runs after `auth`, so
/// no unauthenticated body is read.
async fn read_body(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    use http_body_util::BodyExt as _;
    let (parts, body) = req.into_parts();
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request body is larger than the server's limit",
        )
        .into_response()
    };
    // A declared length over the limit is refused before anything is read.
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > app.config.max_body as u64) {
        return too_large();
    }
    let limited = http_body_util::Limited::new(body, app.config.max_body);
    match tokio::time::timeout(app.config.body_timeout, limited.collect()).await {
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {:?}",
                app.config.body_timeout
            ),
        )
        .into_response(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => too_large(),
        Ok(Err(e)) => ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("cannot read the request body: {e}"),
        )
        .into_response(),
        Ok(Ok(collected)) => {
            next.run(Request::from_parts(parts, Body::from(collected.to_bytes())))
                .await
        }
    }
}

/// Gives every error the documented JSON body. Handlers answer JSON already;
/// this catches what axum answers by itself (a 405, a path or query string that
/// does not parse), keeping its status, headers and message.
async fn json_errors(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 64 << 10)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = if status == StatusCode::METHOD_NOT_ALLOWED {
        let allowed = parts
            .headers
            .get(header::ALLOW)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        format!("{method} is not allowed on {path}; use {allowed}")
    } else if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase()
    } else {
        text
    };
    let mut out = ApiError::new(status, message).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

/// Compares two tokens in time independent of where they differ.
fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Checks the bearer token, when the server has one, and records what it allows.
async fn auth(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    let access = if req.uri().path() == "/healthz" || app.config.token.is_none() {
        Some(Access::Full)
    } else {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        match given {
            Some(t)
                if app
                    .config
                    .token
                    .as_deref()
                    .is_some_and(|k| same_token(t, k)) =>
            {
                Some(Access::Full)
            }
            Some(t)
                if app
                    .config
                    .read_token
                    .as_deref()
                    .is_some_and(|k| same_token(t, k)) =>
            {
                Some(Access::ReadOnly)
            }
            _ => None,
        }
    };
    match access {
        Some(a) => {
            req.extensions_mut().insert(a);
            next.run(req).await
        }
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token: send 'Authorization: Bearer TOKEN'",
        )
        .into_response(),
    }
}

fn forbidden(what: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        format!("the read-only token may not {what}; use the write token"),
    )
}

/// `POST /v1/events`: a JSON array of events, one object, or JSON Lines.
async fn ingest(
    State(app): State<Arc<App>>,
    Extension(access): Extension<Access>,
    body: Bytes,
) -> Result<Response, ApiError> {
    if access == Access::ReadOnly {
        return Err(forbidden("write events"));
    }
    blocking(move || {
        let reject = |e: ApiError| {
            app.metrics.bad_requests.fetch_add(1, Ordering::Relaxed);
            e
        };
        let text = std::str::from_utf8(&body).map_err(|e| {
            reject(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("the body is not UTF-8: {e}"),
            ))
        })?;
        let events = profiledb::decode_events(text).map_err(|e| reject(library_error(&e, &app)))?;
        match app.db.ingest(&events) {
            Ok(n) => {
                app.metrics
                    .events_ingested
                    .fetch_add(n as u64, Ordering::Relaxed);
                Ok(json_bytes(
                    serde_json::json!({ "accepted": n })
                        .to_string()
                        .into_bytes(),
                ))
            }
            Err(e) => {
                app.metrics
                    .events_rejected
                    .fetch_add(events.len() as u64, Ordering::Relaxed);
                Err(reject(library_error(&e, &app)))
            }
        }
    })
    .await
}

#[derive(serde::Deserialize)]
struct QueryRequest {
    sql: String,
}

/// `POST /v1/query`: `{"sql": "..."}`; answers the last statement's output.
async fn query(
    State(app): State<Arc<App>>,
    Extension(access): Extension<Access>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: QueryRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the body must be a JSON object {{\"sql\": \"...\"}}: {e}"),
        )
    })?;
    blocking(move || {
        let start = Instant::now();
        let limits = Limits {
            deadline: Some(start + app.config.statement_timeout),
            max_rows: Some(app.config.max_rows),
        };
        let permission = match access {
            Access::ReadOnly => Permission::ReadOnly,
            Access::Full => Permission::ReadWrite,
        };
        let result = app.db.execute_as(&req.sql, &limits, permission);
        app.metrics.observe_query(start.elapsed(), result.is_ok());
        let mut outputs = result.map_err(|e| {
            let err = library_error(&e, &app);
            // Every statement error has a place; one about the statement as a
            // whole is at its start.
            if err.status.is_client_error() && !err.error.contains_key("line") {
                err.with("line", 1).with("column", 1)
            } else {
                err
            }
        })?;
        let last = outputs.pop().ok_or_else(|| {
            ApiError::new(StatusCode::BAD_REQUEST, "expected a statement")
                .with("line", 1)
                .with("column", 1)
        })?;
        serde_json::to_vec(&JsonOutput(&last))
            .map(json_bytes)
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    })
    .await
}

#[derive(serde::Deserialize)]
struct ProfileParams {
    /// Epoch ms or RFC 3339; now by default.
    as_of: Option<String>,
    /// Span windows are aggregated over (`1d`, `7d`); a day by default.
    window: Option<String>,
}

/// `GET /v1/users/{id}?as_of=…&window=…`
async fn get_user(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(params): Query<ProfileParams>,
) -> Result<Response, ApiError> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, m);
    let as_of = match params.as_of.as_deref() {
        None => profiledb::now_ms(),
        Some(t) => match t.parse::<i64>() {
            Ok(ms) => profiledb::check_ts(ms).map_err(|e| bad(format!("as_of: {e}")))?,
            Err(_) => profiledb::parse_timestamp(t).map_err(|e| bad(format!("as_of: {e}")))?,
        },
    };
    let span = match params.window.as_deref() {
        None => profiledb::DEFAULT_WINDOW_SPAN_MS,
        Some(w) => profiledb::parse_duration(w).map_err(|e| bad(format!("window: {e}")))?,
    };
    blocking(move || {
        let profile = app
            .db
            .profile_with_span(&id, as_of, span)
            .map_err(|e| library_error(&e, &app))?
            .ok_or_else(|| {
                ApiError::new(StatusCode::NOT_FOUND, format!("user '{id}' does not exist"))
            })?;
        serde_json::to_vec(&JsonProfile(&profile))
            .map(json_bytes)
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    })
    .await
}

/// `DELETE /v1/users/{id}`
async fn delete_user(
    State(app): State<Arc<App>>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if access == Access::ReadOnly {
        return Err(forbidden("delete users"));
    }
    blocking(move || match app.db.delete_user(&id) {
        Ok(true) => Ok(json_bytes(br#"{"deleted": true}"#.to_vec())),
        Ok(false) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("user '{id}' does not exist"),
        )),
        Err(e) => Err(library_error(&e, &app)),
    })
    .await
}

/// A profile as JSON: bookkeeping, then attributes, features, vectors and
/// windows as objects keyed by name.
struct JsonProfile<'a>(&'a Profile);

impl Serialize for JsonProfile<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Named<'a>(&'a [(String, profiledb::Value)]);
        impl Serialize for Named<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(self.0.len()))?;
                for (k, v) in self.0 {
                    m.serialize_entry(k, &JsonValue(v))?;
                }
                m.end()
            }
        }
        let p = self.0;
        let windows: serde_json::Map<String, serde_json::Value> = p
            .windows
            .iter()
            .map(|(name, b)| {
                (
                    name.clone(),
                    serde_json::json!({
                        "count": b.count, "sum": b.sum, "min": b.min(), "max": b.max(),
                        "mean": b.mean(), "stddev": b.stddev(), "sumsq": b.sumsq,
                    }),
                )
            })
            .collect();
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("user", &p.user)?;
        m.serialize_entry("as_of", &profiledb::format_timestamp(p.as_of))?;
        m.serialize_entry("first_seen", &profiledb::format_timestamp(p.first_seen))?;
        m.serialize_entry("last_seen", &profiledb::format_timestamp(p.last_seen))?;
        m.serialize_entry("events", &p.events)?;
        m.serialize_entry("attributes", &Named(&p.attributes))?;
        m.serialize_entry("features", &Named(&p.features))?;
        m.serialize_entry("vectors", &Named(&p.vectors))?;
        m.serialize_entry("windows", &windows)?;
        m.end()
    }
}

/// `GET /metrics`, in Prometheus' text format.
async fn metrics(State(app): State<Arc<App>>) -> Response {
    use std::fmt::Write as _;
    let stats = {
        let app = app.clone();
        tokio::task::spawn_blocking(move || app.db.stats())
            .await
            .unwrap_or_default()
    };
    let m = &app.metrics;
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let mut out = String::new();
    let open_connections = app.config.max_connections - app.connections.available_permits();
    let figures: [(&str, &str, &str, u64); 14] = [
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
            "profiledb_memtable_bytes",
            "gauge",
            "Bytes in RocksDB memtables.",
            stats.memtable_bytes,
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
    ];
    for (name, kind, help, value) in figures {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
    let name = "profiledb_query_duration_seconds";
    let _ = writeln!(out, "# HELP {name} Query latency.\n# TYPE {name} histogram");
    let mut cumulative = 0;
    for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
        cumulative += load(&m.latency[i]);
        let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
    }
    cumulative += load(&m.latency[LATENCY_BUCKETS.len()]);
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
    let _ = writeln!(out, "{name}_sum {}", load(&m.latency_sum_us) as f64 / 1e6);
    let _ = writeln!(out, "{name}_count {cumulative}");
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    (headers, Body::from(out)).into_response()
}
