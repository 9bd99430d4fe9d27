//! `profiledb router`: the server's HTTP API in front of a cluster. Ingest
//! publishes to the log and answers once the stream has acknowledged every
//! event, with the highest stream sequence (`seq`); a read that passes it
//! back (`min_seq`) sees those events. Point reads go to the node answering
//! for the user's partition; statements go to a live node, which runs its
//! part and merges the others' (`profiledb_query::Peers`); batch reads are
//! split by node and put back in order.
//!
//! The router holds no data: it reads the cluster's membership every half
//! second from the nodes' reports. Requests to nodes are made with `ureq`
//! on the blocking pool, with the client's own `Authorization` header (the
//! router and its nodes share their tokens).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use profiledb::cluster::jetstream::JetStream;
use profiledb::cluster::log::Log;
use profiledb::cluster::membership::{Member, Membership};
use profiledb::cluster::peers::{STATEMENT_PATH, StatementRequest};
use profiledb::cluster::{log_messages, partition_of};
use tower_http::catch_panic::CatchPanicLayer;

use super::auth::{Access, access_of, admit};
use super::errors::{ApiError, error_answer, json_errors, unavailable};
use super::{Bounds, accept_loop};
use crate::cluster::membership_of;

/// How the router runs.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// How it listens.
    pub http: super::Http,
    /// The NATS server(s) of the cluster.
    pub nats: String,
    /// Longest a request to a node may take.
    pub timeout: Duration,
}

/// How often the router reads the nodes' reports.
const REFRESH: Duration = Duration::from_millis(500);
/// How long a request waits for a node to answer for its partition.
const WAIT: Duration = Duration::from_secs(5);
/// The pause before a request goes to the next node after one could not be
/// reached: the reports that chose it may be a moment old.
const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// How often the router asks the nodes for the schema it checks events
/// against.
const SCHEMA_REFRESH: Duration = Duration::from_secs(1);
/// How long it waits for a node's schema.
const SCHEMA_WAIT: Duration = Duration::from_secs(2);
/// The least time between two askings of the nodes for it.
const SCHEMA_PAUSE: Duration = Duration::from_millis(100);

struct Shared {
    config: RouterConfig,
    log: JetStream,
    partitions: NonZeroU32,
    membership: std::sync::RwLock<Option<Membership>>,
    agent: ureq::Agent,
    /// Turns statements over the live nodes.
    next: AtomicUsize,
    metrics: RouterMetrics,
    connections: Arc<tokio::sync::Semaphore>,
    /// The schema events are checked against before they are published:
    /// the newest the live nodes answered ([`Shared::refresh_schema`]).
    schema: std::sync::RwLock<Option<Arc<profiledb::Schema>>>,
    /// When the nodes were last asked for it.
    schema_asked: std::sync::Mutex<Option<std::time::Instant>>,
}

/// The router's counters for `/metrics`.
#[derive(Debug, Default)]
struct RouterMetrics {
    events_published: AtomicU64,
    events_repeated: AtomicU64,
    /// Events set aside with `skip_bad`.
    events_rejected: AtomicU64,
    bad_requests: AtomicU64,
    publish_failures: AtomicU64,
    statements: AtomicU64,
    node_failures: AtomicU64,
    connections_refused: Arc<AtomicU64>,
    /// `POST /v1/events`, per request, until the stream acknowledged.
    ingest_latency: super::metrics::Histogram,
    /// Each request to a node.
    node_latency: super::metrics::Histogram,
}

/// Serves until SIGTERM or SIGINT. `ready` is called with the bound address.
pub fn serve(config: RouterConfig, ready: impl FnOnce(std::net::SocketAddr)) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async {
        let log = JetStream::connect(&config.nats)
            .await
            .map_err(|e| e.to_string())?;
        let cluster = log.config().await.map_err(|e| e.to_string())?;
        let partitions = NonZeroU32::new(cluster.partitions)
            .ok_or("the cluster's settings have 0 partitions")?;
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(config.timeout))
            .build()
            .into();
        let shared = Arc::new(Shared {
            config: config.clone(),
            log,
            partitions,
            membership: std::sync::RwLock::new(None),
            agent,
            next: AtomicUsize::new(0),
            metrics: RouterMetrics::default(),
            connections: Arc::new(tokio::sync::Semaphore::new(config.http.max_connections)),
            schema: std::sync::RwLock::new(None),
            schema_asked: std::sync::Mutex::new(None),
        });
        // The membership, read now and then every REFRESH.
        let refresher = {
            let shared = shared.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(REFRESH);
                loop {
                    tick.tick().await;
                    match shared.log.reports().await {
                        Ok(reports) => {
                            if let Ok(mut m) = shared.membership.write() {
                                *m = membership_of(&cluster, reports);
                            }
                        }
                        Err(e) => tracing::warn!("{e}"),
                    }
                }
            })
        };
        // The schema, asked of the nodes every SCHEMA_REFRESH.
        let schema_refresher = {
            let shared = shared.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(SCHEMA_REFRESH);
                loop {
                    tick.tick().await;
                    shared.refresh_schema().await;
                }
            })
        };
        let listener = tokio::net::TcpListener::bind(config.http.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", config.http.listen))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("cannot read the bound address: {e}"))?;
        tracing::info!(
            "routing for the cluster at {} on http://{addr}",
            config.nats
        );
        ready(addr);
        let bounds = Bounds {
            connections: shared.connections.clone(),
            idle_timeout: config.http.idle_timeout,
            refused: shared.metrics.connections_refused.clone(),
        };
        accept_loop(
            listener,
            routes(shared),
            &bounds,
            None,
            super::shutdown_signal(),
        )
        .await;
        refresher.abort();
        schema_refresher.abort();
        Ok(())
    })
}

fn routes(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/events", post(ingest))
        .route("/v1/query", post(query))
        .route("/v1/users/{id}", get(user).delete(delete_user))
        .route("/v1/users/{id}/windows/{window}", get(window))
        .route("/v1/profiles", post(batch_read))
        .route("/v1/rows_as_of", post(rows_as_of))
        .route("/v1/openapi.json", get(super::openapi))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint") })
        .layer(middleware::from_fn_with_state(shared.clone(), read_body))
        .layer(middleware::from_fn_with_state(shared.clone(), auth))
        // `read_body` has read and bounded every body already.
        .layer(DefaultBodyLimit::disable())
        .layer(CatchPanicLayer::custom(super::panic_answer))
        .layer(middleware::from_fn(json_errors))
        .with_state(shared)
}

/// Bodies read whole within the router's size and time limits, as the
/// server reads them.
async fn read_body(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let c = &shared.config;
    super::body::read_within(c.http.max_body, c.http.body_timeout, req, next).await
}

/// The server's tokens, checked the server's way.
async fn auth(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let access = access_of(
        &req,
        shared.config.http.token.as_deref(),
        shared.config.http.read_token.as_deref(),
    );
    admit(access, req, next).await
}

impl Shared {
    /// The answer when the log did not take `what`, counted.
    fn refused(&self, what: &str, e: &dyn std::fmt::Display) -> ApiError {
        self.metrics
            .publish_failures
            .fetch_add(1, Ordering::Relaxed);
        unavailable(format!("the log did not take {what}: {e}"))
    }

    /// The cluster as the last reports read describe it, judged live or
    /// not at this moment (reports the router could not read again since
    /// grow old rather than stay live).
    fn membership(&self) -> Result<Membership, ApiError> {
        let mut m = self
            .membership
            .read()
            .ok()
            .and_then(|m| m.clone())
            .ok_or_else(|| unavailable("the router has not read the cluster's membership yet"))?;
        m.now = profiledb::now_ms();
        Ok(m)
    }

    /// The schema events are checked against. Until the router holds one
    /// (it just started), it asks the nodes for a few seconds before
    /// answering 503.
    async fn schema(self: &Arc<Self>) -> Result<Arc<profiledb::Schema>, ApiError> {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            if let Some(s) = self.held_schema() {
                return Ok(s);
            }
            if std::time::Instant::now() >= deadline {
                return Err(unavailable(
                    "no node answered with the cluster's schema, which events are checked against before they are published",
                ));
            }
            self.refresh_schema().await;
            if self.held_schema().is_none() {
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }

    fn held_schema(&self) -> Option<Arc<profiledb::Schema>> {
        self.schema.read().ok().and_then(|s| s.clone())
    }

    /// A schema newer than version `than`, asking the nodes again (unless
    /// they were asked a moment ago): an event it did not take may be for
    /// an item defined since.
    async fn newer_schema(self: &Arc<Self>, than: u64) -> Option<Arc<profiledb::Schema>> {
        let recent = self
            .schema_asked
            .lock()
            .ok()
            .and_then(|a| *a)
            .is_some_and(|at| at.elapsed() < SCHEMA_PAUSE);
        if !recent {
            self.refresh_schema().await;
        }
        self.held_schema().filter(|s| s.version() > than)
    }

    /// Asks every live node for its schema at once and keeps the newest,
    /// never one older than the schema held (a node may lag behind the
    /// statements the others applied). A node that does not answer within
    /// [`SCHEMA_WAIT`] is left out; with none answering, the schema held
    /// stays.
    async fn refresh_schema(self: &Arc<Self>) {
        if let Ok(mut asked) = self.schema_asked.lock() {
            *asked = Some(std::time::Instant::now());
        }
        let Ok(membership) = self.membership() else {
            return;
        };
        // The router's own token: the nodes share it.
        let mut headers = HeaderMap::new();
        let token = self.config.http.read_token.as_ref();
        if let Some(t) = token.or(self.config.http.token.as_ref())
            && let Ok(v) = header::HeaderValue::from_str(&format!("Bearer {t}"))
        {
            headers.insert(header::AUTHORIZATION, v);
        }
        let asks = membership.live().into_iter().cloned().map(|node| {
            let (shared, headers) = (self.clone(), headers.clone());
            async move {
                let name = node.name.clone();
                let path = profiledb::cluster::peers::SCHEMA_PATH.to_owned();
                let call = shared.call(node, "GET", path, &headers, None);
                let answer = match tokio::time::timeout(SCHEMA_WAIT, call).await {
                    Ok(Ok((StatusCode::OK, bytes))) => {
                        profiledb::Schema::from_bytes(&bytes).map_err(|e| e.to_string())
                    }
                    Ok(Ok((status, bytes))) => Err(format!(
                        "answered {status}: {}",
                        String::from_utf8_lossy(&bytes)
                    )),
                    Ok(Err(e)) => Err(e
                        .error
                        .get("message")
                        .map_or_else(|| e.status.to_string(), ToString::to_string)),
                    Err(_) => Err(format!("no answer within {SCHEMA_WAIT:?}")),
                };
                answer.map_err(|e| format!("node '{name}' gave no schema: {e}"))
            }
        });
        let mut newest = self.held_schema();
        for answer in futures_util::future::join_all(asks).await {
            match answer {
                Ok(s) if newest.as_ref().is_none_or(|n| s.version() >= n.version()) => {
                    newest = Some(Arc::new(s));
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("{e}"),
            }
        }
        if let (Some(newest), Ok(mut held)) = (newest, self.schema.write())
            && held
                .as_ref()
                .is_none_or(|h| newest.version() >= h.version())
        {
            *held = Some(newest);
        }
    }

    /// The node answering for `user`'s partition. While none does (the
    /// router or a node just started, an owner just died), it looks again
    /// for a few seconds before answering 503.
    async fn owner_of(&self, user: &str) -> Result<Member, ApiError> {
        self.owner_except(user, None, &[]).await
    }

    /// As [`Shared::owner_of`], for a read that must see the log up to
    /// `min_seq`, among the nodes not in `skip`.
    async fn owner_except(
        &self,
        user: &str,
        min_seq: Option<u64>,
        skip: &[String],
    ) -> Result<Member, ApiError> {
        self.answering(partition_of(user, self.partitions), min_seq, skip)
            .await
    }

    /// The node answering for partition `p` (as [`Shared::owner_except`]).
    async fn answering(
        &self,
        p: u32,
        min_seq: Option<u64>,
        skip: &[String],
    ) -> Result<Member, ApiError> {
        self.waiting(
            |m| m.answering_except(p, min_seq, skip).cloned(),
            || format!("no live node follows partition {p}"),
        )
        .await
    }

    /// A read of `user`'s data: from the node answering for its partition,
    /// or, when that node cannot be reached (it just died, and its reports
    /// are not yet stale), from the next one that follows the partition.
    async fn read_user(
        self: &Arc<Self>,
        user: &str,
        uri: &axum::http::Uri,
        headers: &HeaderMap,
    ) -> Result<Response, ApiError> {
        let min_seq = min_seq_of(uri);
        let mut skip = Vec::new();
        loop {
            let node = self.owner_except(user, min_seq, &skip).await?;
            let name = node.name.clone();
            match self
                .forward(node, "GET", path_and_query(uri), headers, None)
                .await
            {
                Err(e) if e.status == StatusCode::SERVICE_UNAVAILABLE && skip.len() < 3 => {
                    skip.push(name);
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                other => return other,
            }
        }
    }

    /// What `pick` finds in the membership, looking again every 50 ms for
    /// up to [`WAIT`] while it finds nothing.
    async fn waiting<T>(
        &self,
        pick: impl Fn(&Membership) -> Option<T>,
        missing: impl Fn() -> String,
    ) -> Result<T, ApiError> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Ok(m) = self.membership()
                && let Some(found) = pick(&m)
            {
                return Ok(found);
            }
            if tokio::time::Instant::now() >= deadline {
                self.membership()?;
                return Err(unavailable(missing()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends a request to `node` on the blocking pool and answers what it
    /// answered, status and body.
    async fn forward(
        self: &Arc<Self>,
        node: Member,
        method: &'static str,
        path_and_query: String,
        headers: &HeaderMap,
        body: Option<Vec<u8>>,
    ) -> Result<Response, ApiError> {
        let (status, bytes) = self
            .call(node, method, path_and_query, headers, body)
            .await?;
        Ok((status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response())
    }

    /// Sends a request to `node` on the blocking pool: its status and body.
    async fn call(
        self: &Arc<Self>,
        node: Member,
        method: &'static str,
        path_and_query: String,
        headers: &HeaderMap,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Vec<u8>), ApiError> {
        let start = std::time::Instant::now();
        let auth = headers.get(header::AUTHORIZATION).cloned();
        let shared = self.clone();
        let answer = tokio::task::spawn_blocking(move || {
            let url = format!("http://{}{path_and_query}", node.addr);
            let fail = |e: &dyn std::fmt::Display| {
                unavailable(format!(
                    "node '{}' at {} did not answer: {e}",
                    node.name, node.addr
                ))
            };
            let mut resp = match (method, body) {
                ("GET", _) => {
                    let mut req = shared.agent.get(&url);
                    if let Some(a) = &auth {
                        req = req.header(header::AUTHORIZATION, a);
                    }
                    req.call()
                }
                (_, body) => {
                    let mut req = shared
                        .agent
                        .post(&url)
                        .header(header::CONTENT_TYPE, "application/json");
                    if let Some(a) = &auth {
                        req = req.header(header::AUTHORIZATION, a);
                    }
                    req.send(body.unwrap_or_default().as_slice())
                }
            }
            .map_err(|e| fail(&e))?;
            let status =
                StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let bytes = resp
                .body_mut()
                .with_config()
                .limit(1 << 30)
                .read_to_vec()
                .map_err(|e| fail(&e))?;
            Ok((status, bytes))
        })
        .await
        .unwrap_or_else(|_| {
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error while serving the request",
            ))
        });
        self.metrics.node_latency.observe(start.elapsed());
        if answer.is_err() {
            self.metrics.node_failures.fetch_add(1, Ordering::Relaxed);
        }
        answer
    }
}

#[derive(serde::Deserialize)]
struct IngestParams {
    #[serde(default)]
    skip_bad: bool,
}

/// `POST /v1/events[?skip_bad=true]`: decodes the events and checks them
/// against the cluster's schema ([`Shared::schema`]) as one server does (a
/// bad one refuses the batch, by index and field; with `skip_bad`, the good
/// ones go on and the others are answered in `rejected`), publishes each
/// partition's events in messages of many ([`log_messages`]), and answers
/// `{"accepted", "duplicates", "seq"}` once the stream holds them all. A
/// request sent again (with the same `Idempotency-Key`, or the same events
/// with ids) gives messages the log drops as repeats, counted in
/// `duplicates`; an event whose id the nodes hold (while they keep history)
/// is dropped by them too, however it came.
async fn ingest(
    State(shared): State<Arc<Shared>>,
    axum::Extension(access): axum::Extension<Access>,
    Query(params): Query<IngestParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if access == Access::ReadOnly {
        return Err(super::errors::forbidden("write events"));
    }
    let key = super::routes::idempotency_key(&headers)?;

    let start = std::time::Instant::now();
    let mut schema = shared.schema().await?;
    let partitions = shared.partitions;
    let checked = loop {
        // Decoding, checking and encoding a request's events is CPU work
        // (milliseconds for thousands): off the async workers, which serve
        // other requests.
        let (body, key, used) = (body.clone(), key.clone(), schema.clone());
        let checked = tokio::task::spawn_blocking(move || {
            check_events(&body, params.skip_bad, &used, partitions, key.as_deref())
        })
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        let refused = match &checked {
            Ok(c) => !c.rejected.is_empty(),
            Err(e) => e.error.contains_key("index"),
        };
        // An event the schema does not take may be for an item another
        // router defined a moment ago: checked again against the newest.
        if refused && let Some(newer) = shared.newer_schema(schema.version()).await {
            schema = newer;
            continue;
        }
        break checked;
    };
    let Checked {
        count,
        messages,
        rejected,
    } = checked.inspect_err(|_| {
        shared.metrics.bad_requests.fetch_add(1, Ordering::Relaxed);
    })?;
    shared
        .metrics
        .events_rejected
        .fetch_add(rejected.len() as u64, Ordering::Relaxed);
    let carried: Vec<usize> = messages.iter().map(|m| m.events).collect();
    let acks = shared
        .log
        .publish_all(
            messages
                .into_iter()
                .map(|m| (m.partition, m.id, m.payload))
                .collect(),
        )
        .await
        .map_err(|e| shared.refused("the events", &e))?;
    let duplicates: usize = acks
        .iter()
        .zip(&carried)
        .filter(|((_, repeated), _)| *repeated)
        .map(|(_, n)| n)
        .sum();
    let seq = acks.iter().map(|(s, _)| *s).max().unwrap_or(0);
    let m = &shared.metrics;
    m.events_published
        .fetch_add((count - duplicates) as u64, Ordering::Relaxed);
    m.events_repeated
        .fetch_add(duplicates as u64, Ordering::Relaxed);
    m.ingest_latency.observe(start.elapsed());
    let mut answer = serde_json::json!({
        "accepted": count - duplicates,
        "duplicates": duplicates,
        "seq": seq,
    });
    if params.skip_bad {
        answer["rejected"] = serde_json::Value::Array(rejected);
    }
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        answer.to_string(),
    )
        .into_response())
}

/// A request's events, checked and made into the log's messages.
struct Checked {
    /// Events to publish.
    count: usize,
    messages: Vec<profiledb::cluster::Outgoing>,
    /// With `skip_bad`, the events set aside: `{"index", "field", "reason"}`.
    rejected: Vec<serde_json::Value>,
}

/// Decodes a request's events, checks them against `schema` (a bad one
/// refuses them all unless `skip_bad`, which sets it aside), and makes the
/// messages that carry the others.
fn check_events(
    body: &[u8],
    skip_bad: bool,
    schema: &profiledb::Schema,
    partitions: NonZeroU32,
    key: Option<&str>,
) -> Result<Checked, ApiError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not UTF-8: {e}"),
        )
    })?;
    let validate = |ev: &profiledb::Event| schema.validate(ev);
    let (events, rejected) = if skip_bad {
        super::routes::set_bad_aside(text, &validate).map_err(|e| error_answer(&e))?
    } else {
        let events = profiledb::decode_events(text).map_err(|e| error_answer(&e))?;
        for (index, ev) in events.iter().enumerate() {
            validate(ev).map_err(|e| error_answer(&profiledb::Error::invalid_event(index, e)))?;
        }
        (events, Vec::new())
    };
    Ok(Checked {
        count: events.len(),
        messages: log_messages(&events, partitions, key),
        rejected,
    })
}

/// `POST /v1/query`: a query to a live node, in turn, which asks the
/// others for their parts; a script of schema or data changes through the
/// log ([`change`]). A script that does not parse goes to a node, which
/// answers its error.
async fn query(
    State(shared): State<Arc<Shared>>,
    axum::Extension(access): axum::Extension<Access>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if let Ok(mut req) = serde_json::from_slice::<profiledb::cluster::Statement>(&body) {
        // Centroids and the time are the router's to add, never a client's.
        req.centroids = None;
        req.now = Some(profiledb::now_ms());
        let params: Vec<profiledb::Value> = req
            .params
            .iter()
            .filter_map(|p| profiledb::Value::from_json(p).ok())
            .collect();
        if let Ok(statements) = profiledb_query::parse_script_with(&req.sql, &params)
            && params.len() == req.params.len()
        {
            let changes = statements.iter().filter(|(s, _)| !s.is_read_only()).count();
            if changes > 0 {
                if access == Access::ReadOnly {
                    return Err(super::errors::forbidden("change the schema or data"));
                }
                if changes < statements.len() {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "a script that changes the schema or data through a cluster holds changes only: send its queries on their own",
                    ));
                }
                if statements
                    .iter()
                    .any(|(s, _)| matches!(s, profiledb_query::ast::Statement::Insert { .. }))
                {
                    return Err(ApiError::new(
                        StatusCode::CONFLICT,
                        "INSERT is not carried through a cluster's log: send the events to POST /v1/events",
                    ));
                }
                let segments = statements.iter().find_map(|(s, _)| match s {
                    profiledb_query::ast::Statement::CreateSegments { cluster, .. } => {
                        Some(cluster)
                    }
                    _ => None,
                });
                if let Some(cluster) = segments {
                    if statements.len() > 1 {
                        return Err(ApiError::new(
                            StatusCode::BAD_REQUEST,
                            "CREATE SEGMENTS … FROM CLUSTER goes through a cluster on its own: send the script's other statements apart",
                        ));
                    }
                    req.centroids = Some(clustering(&shared, &headers, cluster).await?);
                }
                let (status, body) = change(&shared, &headers, &req).await?;
                // Events sent next are checked against what it defined.
                shared.refresh_schema().await;
                return Ok((
                    status,
                    [(header::CONTENT_TYPE, "application/json")],
                    body.to_string(),
                )
                    .into_response());
            }
        }
    }
    let (status, bytes) = read_on_a_node(&shared, &headers, body.to_vec()).await?;
    Ok((status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response())
}

/// Runs the clustering of `CREATE SEGMENTS … FROM CLUSTER …` once, over
/// every node's users (as `CLUSTER` on a node, which merges the others'
/// sums), for the statement to carry its centroids to every node.
async fn clustering(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    cluster: &profiledb_query::ast::Cluster,
) -> Result<Vec<Vec<f32>>, ApiError> {
    let read = serde_json::json!({ "sql": cluster.to_string() }).to_string();
    let (status, bytes) = read_on_a_node(shared, headers, read.into_bytes()).await?;
    let json: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| unavailable(format!("a node's clustering is not JSON: {e}")))?;
    if status != StatusCode::OK {
        // The clustering's own error (an unknown vector, too few users),
        // as the node put it.
        return Err(ApiError::new(
            status,
            json["error"]["message"]
                .as_str()
                .unwrap_or("the clustering failed")
                .to_owned(),
        ));
    }
    let rows = match profiledb::json::output_from_json(&json) {
        Some(profiledb::Output::Rows(rows)) => rows.rows,
        _ => {
            return Err(unavailable(format!(
                "a node answered a clustering with no rows: {json}"
            )));
        }
    };
    rows.into_iter()
        .map(|r| match r.into_iter().nth(2) {
            Some(profiledb::Value::Vector(v)) => Ok(v),
            other => Err(unavailable(format!(
                "a node answered a clustering's centroid as {other:?}"
            ))),
        })
        .collect()
}

/// Sends a query (a `POST /v1/query` body) to a live node, in turn: one
/// sent to a node that cannot be reached (it just died, and its reports are
/// not stale yet) goes to the next; one a node answers 503 for (a
/// partition's node changed under it: the nodes' views of the membership
/// are a report apart) is asked again once the views moved on, for up to
/// [`WAIT`]. The node's status and body.
async fn read_on_a_node(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    body: Vec<u8>,
) -> Result<(StatusCode, Vec<u8>), ApiError> {
    let turn = shared.next.fetch_add(1, Ordering::Relaxed);
    let deadline = std::time::Instant::now() + WAIT;
    let mut skip: Vec<String> = Vec::new();
    loop {
        let node = shared
            .waiting(
                |m| {
                    let live: Vec<&Member> = m
                        .live()
                        .into_iter()
                        .filter(|n| !skip.contains(&n.name))
                        .collect();
                    (!live.is_empty()).then(|| live[turn % live.len()].clone())
                },
                || "no node of the cluster is live".into(),
            )
            .await?;
        let name = node.name.clone();
        match shared
            .call(
                node,
                "POST",
                "/v1/query".into(),
                headers,
                Some(body.clone()),
            )
            .await
        {
            Err(e) if e.status == StatusCode::SERVICE_UNAVAILABLE && skip.len() < 3 => {
                skip.push(name);
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            Ok((StatusCode::SERVICE_UNAVAILABLE, answer))
                if std::time::Instant::now() + REFRESH < deadline
                    && is_node_unavailable(&answer) =>
            {
                tracing::debug!(
                    "node '{name}' could not answer a query yet; asking again: {}",
                    String::from_utf8_lossy(&answer)
                );
                tokio::time::sleep(REFRESH).await;
            }
            other => return other,
        }
    }
}

/// Whether a node's 503 answer says a node of the cluster could not answer
/// for a partition yet (`"code": "node_unavailable"`), which asking again
/// may cure.
fn is_node_unavailable(answer: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(answer)
        .is_ok_and(|v| v["error"]["code"] == "node_unavailable")
}

/// The `min_seq` a read's query string asks for, if any (a malformed one
/// is the node's to refuse).
fn min_seq_of(uri: &axum::http::Uri) -> Option<u64> {
    uri.query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix("min_seq="))?
        .parse()
        .ok()
}

/// A script of schema or data changes: published once to the log of
/// statements (deduplicated by the request's `Idempotency-Key`), marked in
/// every partition, and answered once every live node that follows a
/// partition has applied it, with what it did there (the same on each; for
/// a change to users, the count summed over the partitions, once each is
/// counted).
async fn change(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    statement: &profiledb::cluster::Statement,
) -> Result<(StatusCode, serde_json::Value), ApiError> {
    let key = super::routes::idempotency_key(headers)?.map(|k| format!("statement/{k}"));
    let (seq, marked) = profiledb::cluster::publish_statement(
        &shared.log,
        shared.partitions,
        key.as_deref(),
        statement,
    )
    .await
    .map_err(|e| shared.refused("the statement", &e))?;
    shared.metrics.statements.fetch_add(1, Ordering::Relaxed);
    if let Err(e) = marked {
        tracing::warn!("marking statement {seq}: {e} (the nodes will)");
    }
    // A partition's count comes from a node that applied the statement to
    // it; one that followed it only later (membership changed meanwhile)
    // adds its count when its reader reaches the statement's marker. The
    // nodes are asked again until every partition is counted.
    let deadline = tokio::time::Instant::now() + shared.config.timeout;
    loop {
        let (status, body, complete) = outcome_of(shared, headers, seq).await?;
        if complete || tokio::time::Instant::now() >= deadline {
            if !complete {
                return Err(unavailable(format!(
                    "the statement is in the log (sequence {seq}) and applied, but not every partition's count of users changed is known (a node that applied it restarted since, or a partition's reader has not reached it yet)"
                )));
            }
            return Ok((status, body));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// What the live nodes tell of statement `seq`, once each applied it: its
/// outcome, and whether a change to users is counted in every partition
/// (the count then summed over them).
async fn outcome_of(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    seq: u64,
) -> Result<(StatusCode, serde_json::Value, bool), ApiError> {
    let nodes: Vec<Member> = shared
        .waiting(
            |m| {
                // Every partition has a live node applying it, so that the
                // answer counts every user (a node just started may not
                // have reported the partitions it took over yet).
                m.plan(None).ok()?;
                let following: Vec<Member> = m
                    .live()
                    .into_iter()
                    .filter(|m| !m.positions.is_empty())
                    .cloned()
                    .collect();
                (!following.is_empty()).then_some(following)
            },
            || {
                format!(
                    "the statement is in the log (sequence {seq}), and not every partition has a live node to apply it yet"
                )
            },
        )
        .await?;
    let wait = serde_json::to_vec(&StatementRequest {
        seq,
        timeout_ms: u64::try_from(shared.config.timeout.as_millis()).unwrap_or(u64::MAX),
    })
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let answers = futures_util::future::join_all(nodes.into_iter().map(|node| {
        shared.call(
            node,
            "POST",
            STATEMENT_PATH.into(),
            headers,
            Some(wait.clone()),
        )
    }))
    .await;
    // Every node applies a statement alike: one answer tells its outcome,
    // but for a change to users, whose count adds up each partition's (every
    // node that follows a partition counts the same there).
    let mut outcome: Option<(StatusCode, serde_json::Value)> = None;
    let mut changed: Option<std::collections::BTreeMap<String, u64>> = None;
    for answer in answers {
        // A node that cannot be reached (it just died; its reports are not
        // stale yet) answers nothing either: it applies the statement from
        // the log when it comes back (a read with `min_seq` waits for it).
        let Ok((status, body)) = answer else {
            continue;
        };
        let body: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
            unavailable(format!(
                "a node's answer to statement {seq} is not JSON: {e}"
            ))
        })?;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            let why = body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            return Err(unavailable(format!(
                "the statement is in the log (sequence {seq}) and every node will apply it, but not every node has yet: {why}"
            )));
        }
        if let Some(parts) = body["partitions"].as_object() {
            let changed = changed.get_or_insert_default();
            for (p, n) in parts {
                changed.insert(p.clone(), n.as_u64().unwrap_or(0));
            }
        }
        // A node restarted since it applied the statement no longer knows
        // its outcome ("APPLIED"): another's answer tells more.
        if outcome
            .as_ref()
            .is_none_or(|(_, b)| b["summary"] == "APPLIED")
        {
            outcome = Some((status, body));
        }
    }
    let (status, mut body) = outcome.ok_or_else(|| {
        unavailable(format!(
            "the statement is in the log (sequence {seq}) and every node will apply it, but no node could be reached to tell its outcome"
        ))
    })?;
    let complete = changed
        .as_ref()
        .is_none_or(|c| (0..shared.partitions.get()).all(|p| c.contains_key(&p.to_string())));
    if let Some(object) = body.as_object_mut()
        && object.remove("partitions").is_some()
        && let Some(changed) = changed
        && status == StatusCode::OK
    {
        // `UPDATE 5`: the verb, then the users changed over the partitions.
        let total: u64 = changed.values().sum();
        let verb = object["summary"]
            .as_str()
            .and_then(|s| s.split(' ').next())
            .unwrap_or_default()
            .to_owned();
        object.insert("summary".into(), format!("{verb} {total}").into());
        object.insert("count".into(), total.into());
    }
    Ok((status, body, complete))
}

/// `GET /metrics`: the router's counters and latencies, and the nodes it
/// sees live, in Prometheus' text format.
async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let m = &shared.metrics;
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let live = shared.membership().map_or(0, |m| m.live().len());
    let open = shared.config.http.max_connections - shared.connections.available_permits();
    let mut out = String::new();
    super::metrics::render_figures(
        &mut out,
        &[
            (
                "profiledb_connections_open",
                "gauge",
                "HTTP connections open now.",
                open as u64,
            ),
            (
                "profiledb_connections_refused_total",
                "counter",
                "Connections closed on arrival because --max-connections were open.",
                load(&m.connections_refused),
            ),
            (
                "profiledb_router_live_nodes",
                "gauge",
                "Nodes that reported within the last 3 s.",
                live as u64,
            ),
            (
                "profiledb_router_events_published_total",
                "counter",
                "Events the log took.",
                load(&m.events_published),
            ),
            (
                "profiledb_router_events_repeated_total",
                "counter",
                "Events in messages the log dropped as repeats.",
                load(&m.events_repeated),
            ),
            (
                "profiledb_router_events_rejected_total",
                "counter",
                "Events set aside with skip_bad: the schema does not take them.",
                load(&m.events_rejected),
            ),
            (
                "profiledb_bad_requests_total",
                "counter",
                "Event requests rejected: bad JSON or a bad event.",
                load(&m.bad_requests),
            ),
            (
                "profiledb_router_publish_failures_total",
                "counter",
                "Requests the log did not take (answered 503).",
                load(&m.publish_failures),
            ),
            (
                "profiledb_router_statements_total",
                "counter",
                "Schema and data changes published to the log.",
                load(&m.statements),
            ),
            (
                "profiledb_router_node_failures_total",
                "counter",
                "Requests to nodes that got no answer.",
                load(&m.node_failures),
            ),
        ],
    );
    m.ingest_latency.render(
        &mut out,
        "profiledb_ingest_duration_seconds",
        "Ingest latency per request (POST /v1/events), until the stream acknowledged.",
    );
    m.node_latency.render(
        &mut out,
        "profiledb_router_node_duration_seconds",
        "Latency of each request to a node.",
    );
    super::metrics::text_answer(out)
}

/// The path and query string a request came with.
fn path_and_query(uri: &axum::http::Uri) -> String {
    uri.path_and_query()
        .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned())
}

/// `GET /v1/users/{id}`: to the node answering for the user.
async fn user(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    shared.read_user(&id, &uri, &headers).await
}

/// `GET /v1/users/{id}/windows/{window}`: to the node answering for the user.
async fn window(
    State(shared): State<Arc<Shared>>,
    Path((id, _)): Path<(String, String)>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    shared.read_user(&id, &uri, &headers).await
}

/// `DELETE /v1/users/{id}`: `DELETE USER` through the log ([`change`]),
/// which every node applies, so that no copy is left.
async fn delete_user(
    State(shared): State<Arc<Shared>>,
    axum::Extension(access): axum::Extension<Access>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if access == Access::ReadOnly {
        return Err(super::errors::forbidden("delete users"));
    }
    let statement = profiledb::cluster::Statement {
        sql: "DELETE USER $1".into(),
        params: vec![serde_json::Value::String(id.clone())],
        centroids: None,
        now: Some(profiledb::now_ms()),
    };
    let (status, done) = change(&shared, &headers, &statement).await?;
    match (status, done["count"].as_u64()) {
        (StatusCode::OK, Some(n)) if n > 0 => Ok((
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"deleted": true}"#,
        )
            .into_response()),
        (StatusCode::OK, _) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("user '{id}' does not exist"),
        )),
        (status, _) => Ok((
            status,
            [(header::CONTENT_TYPE, "application/json")],
            done.to_string(),
        )
            .into_response()),
    }
}

/// `POST /v1/profiles`: the ids split by the node answering for each, the
/// parts asked at once, the profiles put back in the order asked.
async fn batch_read(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, m);
    let req: serde_json::Map<String, serde_json::Value> =
        super::routes::json_body(&body, r#"{"ids": [...], "as_of", "window", "fields"}"#)?;
    let ids: Vec<String> = match req.get("ids") {
        Some(serde_json::Value::Array(ids)) => ids
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| bad("ids: expected an array of strings".into()))?,
        _ => return Err(bad("the body needs \"ids\": an array of user ids".into())),
    };
    if ids.len() > super::routes::MAX_BATCH_READ {
        return Err(bad(format!(
            "a batch read takes at most {} ids, not {}",
            super::routes::MAX_BATCH_READ,
            ids.len()
        )));
    }
    let users: Vec<&str> = ids.iter().map(String::as_str).collect();
    let (out, _) = match ask_parts(
        &shared,
        &headers,
        "/v1/profiles",
        "profiles",
        &users,
        |at| {
            let mut sub = req.clone();
            sub.insert(
                "ids".into(),
                at.iter()
                    .map(|&i| serde_json::Value::from(ids[i].clone()))
                    .collect(),
            );
            serde_json::Value::Object(sub).to_string().into_bytes()
        },
    )
    .await
    {
        Ok(answered) => answered,
        Err(answered) => return Ok(answered),
    };
    let answer = serde_json::json!({ "profiles": out });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        answer.to_string(),
    )
        .into_response())
}

/// `POST /v1/rows_as_of`: the pairs checked as one server checks them,
/// split by the node answering for each user (all of a user's pairs go to
/// one node, which reads its history once for them), the parts asked at
/// once, and the rows put back in the order of the pairs. With no pairs, one
/// node checks the select list and answers the columns.
async fn rows_as_of(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let super::routes::RowsAsOf { select, pairs } = super::routes::RowsAsOf::parse(&body)?;
    let users: Vec<&str> = pairs.iter().map(|(u, _)| u.as_str()).collect();
    let (out, mut head) =
        match ask_parts(&shared, &headers, "/v1/rows_as_of", "rows", &users, |at| {
            let pairs: Vec<(&str, i64)> = at
                .iter()
                .map(|&i| (pairs[i].0.as_str(), pairs[i].1))
                .collect();
            serde_json::json!({ "select": select, "pairs": pairs })
                .to_string()
                .into_bytes()
        })
        .await
        {
            Ok(answered) => answered,
            Err(answered) => return Ok(answered),
        };
    let (columns, types) = (head["columns"].take(), head["types"].take());
    let answer = serde_json::json!({ "columns": columns, "types": types, "rows": out });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        answer.to_string(),
    )
        .into_response())
}

/// The places of `users` grouped by the node answering for each user's
/// partition, a group per node (the node found once per partition), among
/// the nodes not in `skip`.
async fn by_owner(
    shared: &Shared,
    users: &[&str],
    places: impl Iterator<Item = usize>,
    skip: &[String],
) -> Result<Vec<(Member, Vec<usize>)>, ApiError> {
    let mut by_partition: std::collections::BTreeMap<u32, Vec<usize>> =
        std::collections::BTreeMap::new();
    for i in places {
        by_partition
            .entry(partition_of(users[i], shared.partitions))
            .or_default()
            .push(i);
    }
    let mut parts: std::collections::BTreeMap<String, (Member, Vec<usize>)> =
        std::collections::BTreeMap::new();
    for (p, places) in by_partition {
        let node = shared.answering(p, None, skip).await?;
        parts
            .entry(node.name.clone())
            .or_insert_with(|| (node, Vec::new()))
            .1
            .extend(places);
    }
    Ok(parts.into_values().collect())
}

/// Asks, at `path`, each node answering for some of `users` about its
/// places among them, all at once, with the body `body` makes of those
/// places. Each node answers a JSON object whose array `field` holds an
/// item per place it was asked about; the answer is those items put back in
/// the places of `users`, with the first node's object (less `field`) for
/// what else it says. Or, as `Err`, the first error a node answered, as it
/// answered it. A node that cannot be reached (it just died, and its
/// reports are not yet stale) has its places asked again of the next nodes
/// that follow their partitions, as a point read does. With no users, one
/// node is asked about no places.
async fn ask_parts(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    path: &'static str,
    field: &str,
    users: &[&str],
    body: impl Fn(&[usize]) -> Vec<u8>,
) -> Result<(Vec<serde_json::Value>, serde_json::Value), Response> {
    let mut skip: Vec<String> = Vec::new();
    let mut parts = by_owner(shared, users, 0..users.len(), &skip)
        .await
        .map_err(IntoResponse::into_response)?;
    if parts.is_empty() {
        let node = shared
            .owner_of("")
            .await
            .map_err(IntoResponse::into_response)?;
        parts.push((node, Vec::new()));
    }
    let mut out = vec![serde_json::Value::Null; users.len()];
    let mut head = None;
    loop {
        let asks = parts.into_iter().map(|(node, at)| {
            let body = body(&at);
            async move {
                let name = node.name.clone();
                let answer = shared
                    .forward(node, "POST", path.into(), headers, Some(body))
                    .await;
                (name, at, answer)
            }
        });
        let mut again = Vec::new();
        for (name, at, answer) in futures_util::future::join_all(asks).await {
            let resp = match answer {
                // (Not the part with no places: nothing would ask again.)
                Err(e)
                    if e.status == StatusCode::SERVICE_UNAVAILABLE
                        && skip.len() < 3
                        && !at.is_empty() =>
                {
                    skip.push(name);
                    again.extend(at);
                    continue;
                }
                other => other.map_err(IntoResponse::into_response)?,
            };
            let status = resp.status();
            let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .map_err(|e| {
                    unavailable(format!("reading a node's answer: {e}")).into_response()
                })?;
            if !status.is_success() {
                // The node's own error, as it gave it.
                return Err(
                    (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
                );
            }
            let mut json: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
                unavailable(format!("a node's answer is not JSON: {e}")).into_response()
            })?;
            let items = match json[field].take() {
                serde_json::Value::Array(items) if items.len() == at.len() => items,
                _ => {
                    return Err(unavailable(format!(
                        "node '{name}' answered a different number of {field}"
                    ))
                    .into_response());
                }
            };
            for (i, item) in at.into_iter().zip(items) {
                out[i] = item;
            }
            head.get_or_insert(json);
        }
        if again.is_empty() {
            return Ok((out, head.unwrap_or_default()));
        }
        tokio::time::sleep(RETRY_PAUSE).await;
        parts = by_owner(shared, users, again.into_iter(), &skip)
            .await
            .map_err(IntoResponse::into_response)?;
    }
}
