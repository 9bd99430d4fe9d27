//! The endpoints: events, statements, profiles and deletes. Statements,
//! ingest and deletes run on tokio's blocking pool; a profile read, a few
//! microseconds of point lookups, runs on the async worker itself.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use profiledb::{JsonProfiles, Limits, Permission, ProfileRead, Value};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::App;
use super::auth::Access;
use super::errors::{ApiError, forbidden, library_error, unavailable};
use profiledb::json::{JsonOutput, JsonValue};

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

#[derive(serde::Deserialize)]
pub(crate) struct IngestParams {
    /// Write the good events of a batch with bad ones, answering which were
    /// rejected and why.
    #[serde(default)]
    skip_bad: bool,
}

/// `POST /v1/events[?skip_bad=true]`: a JSON array of events, one object,
/// or JSON Lines.
/// A node of a cluster takes writes only from the cluster's log: one made
/// here would reach no other node.
fn refuse_on_node(app: &App, what: &str) -> Result<(), ApiError> {
    match &app.config.node {
        Some((_, name)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "this server is node '{name}' of a cluster: {what} reach it through the cluster's log, not directly"
            ),
        )),
        None => Ok(()),
    }
}

/// The events of a request's body that decode and that `validate` (the
/// schema's check) takes, and for each of the others
/// `{"index", "field", "reason"}`: what `?skip_bad=true` writes and answers.
///
/// # Errors
/// A body that is not events at all (not JSON, not an array or objects).
pub(crate) fn set_bad_aside(
    text: &str,
    validate: &dyn Fn(&profiledb::Event) -> Result<(), profiledb::EventError>,
) -> Result<(Vec<profiledb::Event>, Vec<serde_json::Value>), profiledb::Error> {
    let each = profiledb::decode_each_event(text)?;
    let mut good = Vec::with_capacity(each.len());
    let mut rejected = Vec::new();
    for (index, ev) in each.into_iter().enumerate() {
        match ev.and_then(|ev| validate(&ev).map(|()| ev)) {
            Ok(ev) => good.push(ev),
            Err(e) => rejected.push(serde_json::json!({
                "index": index,
                "field": e.field,
                "reason": e.reason,
            })),
        }
    }
    Ok((good, rejected))
}

/// A request's `Idempotency-Key`, when it has one.
pub(crate) fn idempotency_key(headers: &axum::http::HeaderMap) -> Result<Option<String>, ApiError> {
    headers
        .get("idempotency-key")
        .map(|v| {
            v.to_str().map(str::to_owned).map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "the Idempotency-Key header is not visible ASCII",
                )
            })
        })
        .transpose()
}

pub(crate) async fn ingest(
    State(app): State<Arc<App>>,
    Extension(access): Extension<Access>,
    Query(params): Query<IngestParams>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if access == Access::ReadOnly {
        return Err(forbidden("write events"));
    }
    refuse_on_node(&app, "events")?;
    // A retried request names itself: a repeat answers the first answer.
    let request = idempotency_key(&headers)?;
    let start = Instant::now();
    let timed = app.clone();
    let answer = blocking(move || {
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
        // With skip_bad, the events that do not decode or fit the schema
        // are set aside, each with its index and reason.
        let mut rejected = Vec::new();
        let events = if params.skip_bad {
            let good;
            // One schema for the whole batch, as one write checks it.
            let schema = app.db.schema();
            (good, rejected) = set_bad_aside(text, &|ev| schema.validate(ev))
                .map_err(|e| reject(library_error(&e, &app)))?;
            app.metrics
                .events_rejected
                .fetch_add(rejected.len() as u64, Ordering::Relaxed);
            good
        } else {
            profiledb::decode_events(text).map_err(|e| reject(library_error(&e, &app)))?
        };
        let written = match &request {
            Some(key) => app.db.ingest_once(&events, key).map(|(n, _)| n),
            None => app.db.ingest_counted(&events),
        };
        match written {
            Ok(n) => {
                app.metrics
                    .events_ingested
                    .fetch_add(n.accepted as u64, Ordering::Relaxed);
                let mut answer =
                    serde_json::json!({ "accepted": n.accepted, "duplicates": n.duplicates });
                if params.skip_bad {
                    answer["rejected"] = serde_json::Value::Array(rejected);
                }
                Ok(json_bytes(answer.to_string().into_bytes()))
            }
            Err(e) => {
                app.metrics
                    .events_rejected
                    .fetch_add(events.len() as u64, Ordering::Relaxed);
                Err(reject(library_error(&e, &app)))
            }
        }
    })
    .await;
    timed.metrics.ingest_latency.observe(start.elapsed());
    answer
}

#[derive(serde::Deserialize)]
pub(crate) struct QueryRequest {
    sql: String,
    /// Bind parameters: `$1` is the first.
    #[serde(default)]
    params: Vec<serde_json::Value>,
    /// On a cluster's node: read only once every partition is applied up
    /// to this stream sequence (an ingest's answer), read-your-writes.
    #[serde(default)]
    min_seq: Option<u64>,
}

/// `POST /v1/query`: `{"sql": "...", "params": [...]}` (`params`
/// optional); answers the last statement's output.
pub(crate) async fn query(
    State(app): State<Arc<App>>,
    Extension(access): Extension<Access>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: QueryRequest = json_body(&body, r#"{"sql": "...", "params": [...]}"#)?;
    let params = req
        .params
        .iter()
        .enumerate()
        .map(|(i, p)| {
            Value::from_json(p).map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("params[{i}] (parameter ${}): {e}", i + 1),
                )
            })
        })
        .collect::<Result<Vec<Value>, ApiError>>()?;
    let start = Instant::now();
    // A node takes no writes but the log's; it runs a query's (or a
    // clustering's) part and asks the nodes answering for the others, and a
    // script without one (SHOW, DESCRIBE) here. A script that does not
    // parse runs as usual, to answer its error.
    let mut spread = None;
    if let Some(node) = &app.node
        && let Ok(statements) = profiledb_query::parse_script_with(&req.sql, &params)
    {
        if statements.iter().any(|(s, _)| !s.is_read_only()) {
            refuse_on_node(&app, "schema and data changes")?;
        }
        if statements.iter().any(|(s, _)| {
            matches!(
                s,
                profiledb_query::ast::Statement::Select(_)
                    | profiledb_query::ast::Statement::Cluster(_)
            )
        }) {
            spread = Some(spread_query(node, &app, req.min_seq).await?);
        }
    }
    blocking(move || {
        let limits = Limits {
            deadline: Some(start + app.config.statement_timeout),
            max_rows: Some(app.config.max_rows),
        };
        let permission = match access {
            Access::ReadOnly => Permission::ReadOnly,
            Access::Full => Permission::ReadWrite,
        };
        let result = match spread {
            Some((membership, own, peers)) => {
                let shard = profiledb::cluster::shard::Shard::new(membership.partitions, &own);
                let keep = |user: &str| shard.keeps(user);
                let engine = app.db.engine();
                let part =
                    profiledb_query::Part::new(engine, profiledb_query::DataSource::now(engine))
                        .keeping(&keep)
                        .with_peers(&peers);
                profiledb_query::execute_params(&part, &req.sql, &params, &limits, permission)
                    .map_err(profiledb::Error::Query)
            }
            None => app
                .db
                .execute_params_as(&req.sql, &params, &limits, permission),
        };
        app.metrics.observe_query(start.elapsed(), result.is_ok());
        let mut outputs = result.map_err(|e| with_place(library_error(&e, &app)))?;
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

/// How long a node waits for a membership that covers every partition.
const MEMBERSHIP_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// On a node: the cluster now, the partitions this node answers for, and
/// the peers answering for the rest, once this node's are applied up to
/// `min_seq`.
async fn spread_query(
    node: &crate::cluster::NodeState,
    app: &App,
    min_seq: Option<u64>,
) -> Result<
    (
        profiledb::cluster::membership::Membership,
        Vec<u32>,
        profiledb::cluster::peers::HttpPeers,
    ),
    ApiError,
> {
    // A node just started has not read every node's report yet: wait a
    // little rather than answer that no node follows a partition.
    let deadline = Instant::now() + MEMBERSHIP_WAIT;
    let (membership, mut plan) = loop {
        let failed = match node.membership() {
            Ok(m) => match m.plan(min_seq) {
                Ok(plan) => break (m, plan),
                Err(p) => format!("no live node follows partition {p}"),
            },
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            return Err(unavailable(failed));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let own = plan
        .remove(&node.name)
        .map(|(_, ps)| ps)
        .unwrap_or_default();
    if let Some(seq) = min_seq {
        node.wait_applied(&app.db, &own, seq, app.config.statement_timeout)
            .await
            .map_err(unavailable)?;
    }
    let targets = plan
        .into_iter()
        .map(
            |(name, (addr, partitions))| profiledb::cluster::peers::Target {
                name,
                addr,
                partitions,
            },
        )
        .collect();
    let peers =
        profiledb::cluster::peers::HttpPeers::new(targets, app.config.http.token.clone(), min_seq)
            .choosing_again_from(membership.clone());
    Ok((membership, own, peers))
}

/// A request one node of a cluster makes of another: this server's node,
/// and the request decoded (`what` names it in an error).
fn node_request<T: serde::de::DeserializeOwned>(
    app: &App,
    body: &[u8],
    what: &str,
) -> Result<(Arc<crate::cluster::NodeState>, T), ApiError> {
    let node = app.node.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "this server is not a node of a cluster",
        )
    })?;
    let req = serde_json::from_slice(body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("{what}: {e}")))?;
    Ok((node, req))
}

/// `GET /v1/cluster/schema`: the database's schema as bytes
/// ([`profiledb::Schema::to_bytes`]), which a cluster's router checks
/// events against before it publishes them.
pub(crate) async fn schema(State(app): State<Arc<App>>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
        app.db.schema().to_bytes(),
    )
        .into_response()
}

/// `POST /v1/cluster/partial` (nodes only): this node's part of a query
/// another node took, as a partial result's bytes.
pub(crate) async fn partial(
    State(app): State<Arc<App>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (node, req) = node_request::<profiledb::cluster::peers::PartialRequest>(
        &app,
        &body,
        "a partial request",
    )?;
    let membership = node.membership().map_err(unavailable)?;
    let timeout =
        std::time::Duration::from_millis(req.timeout_ms).min(app.config.statement_timeout);
    let start = Instant::now();
    if let Some(seq) = req.min_seq {
        node.wait_applied(&app.db, &req.partitions, seq, timeout)
            .await
            .map_err(unavailable)?;
    }
    blocking(move || {
        // A node answers only for partitions it has applied.
        for &p in &req.partitions {
            if app
                .db
                .log_position(p)
                .map_err(|e| library_error(&e, &app))?
                .is_none()
            {
                return Err(unavailable(format!(
                    "node '{}' holds nothing of partition {p}",
                    node.name
                )));
            }
        }
        let limits = Limits {
            deadline: Some(start + timeout),
            max_rows: Some(app.config.max_rows),
        };
        let shard = profiledb::cluster::shard::Shard::new(membership.partitions, &req.partitions);
        let keep = |user: &str| shard.keeps(user);
        let part = profiledb_query::Part::new(app.db.engine(), req.now).keeping(&keep);
        let bytes = profiledb_query::partial(&part, &req.select, req.now, &limits)
            .map_err(|e| library_error(&profiledb::Error::Query(e), &app))?;
        Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
    })
    .await
}

/// `POST /v1/cluster/statement` on a node: waits until the node applied
/// a statement of the log, and answers what it did as `POST /v1/query`
/// answers a statement (a node that no longer remembers it, having been
/// restarted since, answers that it is applied).
pub(crate) async fn statement(
    State(app): State<Arc<App>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (node, req) = node_request::<profiledb::cluster::peers::StatementRequest>(
        &app,
        &body,
        "a statement request",
    )?;
    let statements = node.statements().map_err(unavailable)?;
    let timeout =
        std::time::Duration::from_millis(req.timeout_ms).min(app.config.statement_timeout);
    let outcome = statements.wait(req.seq, timeout).await;
    if statements.applied() < req.seq {
        return Err(unavailable(format!(
            "node '{}' has applied the cluster's statements up to {}, not yet {}, after {timeout:?}",
            node.name,
            statements.applied(),
            req.seq
        )));
    }
    let (last, changed) = match outcome {
        None => (
            profiledb::Output::Done {
                summary: "APPLIED".into(),
                count: None,
            },
            None,
        ),
        Some(Err(e)) => return Err(with_place(library_error(&e, &app))),
        Some(Ok(mut done)) => (
            done.outputs.pop().ok_or_else(|| {
                ApiError::new(StatusCode::BAD_REQUEST, "expected a statement")
                    .with("line", 1)
                    .with("column", 1)
            })?,
            done.changed,
        ),
    };
    // For a change to users, the users changed in each partition this node
    // follows, for the router to add up: `{"summary", "count",
    // "partitions": {"p": n}}`.
    let mut answer = serde_json::to_value(JsonOutput(&last))
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    if let Some(changed) = changed
        && let Some(object) = answer.as_object_mut()
    {
        object.insert(
            "partitions".into(),
            changed
                .iter()
                .map(|(p, n)| (p.to_string(), serde_json::Value::from(*n)))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        );
    }
    serde_json::to_vec(&answer)
        .map(json_bytes)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// Every statement error has a place; one about the statement as a whole
/// is at its start.
fn with_place(err: ApiError) -> ApiError {
    if err.status.is_client_error() && !err.error.contains_key("line") {
        err.with("line", 1).with("column", 1)
    } else {
        err
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct ProfileParams {
    /// Epoch ms or RFC 3339; now by default.
    as_of: Option<String>,
    /// Span windows are aggregated over (`1d`, `7d`); a day by default.
    window: Option<String>,
    /// Comma-separated items to answer with (and `segments`); all by default.
    fields: Option<String>,
    /// On a cluster's node: read once the user's partition is applied up to
    /// this stream sequence (an ingest's answer).
    min_seq: Option<u64>,
}

/// Most users one batch read takes.
pub(crate) const MAX_BATCH_READ: usize = 1000;

/// A profile read from a request's parameters: the time (epoch ms or RFC
/// 3339; now by default), the window span (a day by default) and the items
/// to show.
fn profile_read(
    app: &App,
    as_of: Option<&str>,
    window: Option<&str>,
    fields: Option<Vec<String>>,
) -> Result<ProfileRead, ApiError> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, m);
    let as_of = match as_of {
        None => profiledb::now_ms(),
        Some(t) => match t.parse::<i64>() {
            Ok(ms) => profiledb::check_ts(ms).map_err(|e| bad(format!("as_of: {e}")))?,
            Err(_) => profiledb::parse_timestamp(t).map_err(|e| bad(format!("as_of: {e}")))?,
        },
    };
    let span = match window {
        None => profiledb::DEFAULT_WINDOW_SPAN_MS,
        Some(w) => profiledb::parse_duration(w).map_err(|e| bad(format!("window: {e}")))?,
    };
    ProfileRead::new(&app.db, as_of, span, fields).map_err(|e| library_error(&e, app))
}

/// The profiles of `ids` as JSON in order (`None` for a user that does not
/// exist), timed for the metrics: each profile's share of the batch.
fn read_profiles(app: &App, read: &ProfileRead, ids: &[String]) -> Result<JsonProfiles, ApiError> {
    let start = Instant::now();
    let out = read
        .read_json(&app.db, ids)
        .map_err(|e| library_error(&e, app))?;
    let each = start.elapsed() / u32::try_from(ids.len().max(1)).unwrap_or(u32::MAX);
    for _ in ids {
        app.metrics.profile_latency.observe(each);
    }
    Ok(out)
}

/// The names of `?fields=a,b`.
fn field_list(fields: Option<&str>) -> Option<Vec<String>> {
    fields.map(|f| {
        f.split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect()
    })
}

/// `GET /v1/users/{id}?as_of=…&window=…&fields=a,b`
pub(crate) async fn get_user(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(params): Query<ProfileParams>,
) -> Result<Response, ApiError> {
    if let (Some(node), Some(seq)) = (&app.node, params.min_seq) {
        let partitions = node.membership().map_err(unavailable)?.partitions;
        let p = profiledb::cluster::partition_of(&id, partitions);
        node.wait_applied(&app.db, &[p], seq, app.config.statement_timeout)
            .await
            .map_err(unavailable)?;
    }
    let read = profile_read(
        &app,
        params.as_of.as_deref(),
        params.window.as_deref(),
        field_list(params.fields.as_deref()),
    )?;
    // A whole-profile read is a few point lookups and one short window scan,
    // microseconds from cache: it runs on the async worker, where a trip
    // through the blocking pool would cost more than the read.
    read_profiles(&app, &read, std::slice::from_ref(&id))?
        .iter()
        .next()
        .flatten()
        .map(|p| json_bytes(p.to_vec()))
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("user '{id}' does not exist")))
}

#[derive(serde::Deserialize)]
pub(crate) struct SeriesParams {
    /// The span back from `as_of` (`30d`); a day by default.
    span: Option<String>,
    /// `zeros`: the empty buckets of the span too.
    fill: Option<String>,
    /// Epoch ms or RFC 3339; now by default.
    as_of: Option<String>,
}

/// `GET /v1/users/{id}/windows/{window}?span=30d&fill=zeros&as_of=…`: the
/// user's buckets of the window over the span, oldest first, as the
/// `BUCKETS` statement reads them: `{"user", "window", "buckets": [{"start",
/// "count", "sum", "min", "max", "mean"}]}`.
pub(crate) async fn window_series(
    State(app): State<Arc<App>>,
    Path((id, window)): Path<(String, String)>,
    Query(params): Query<SeriesParams>,
) -> Result<Response, ApiError> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, m);
    let fill = match params.fill.as_deref() {
        None | Some("none") => false,
        Some("zeros") => true,
        Some(other) => return Err(bad(format!("fill: zeros or none, not '{other}'"))),
    };
    let mut sql = format!(
        "BUCKETS \"{}\" FOR $1 OVER $2{}",
        window.replace('"', "\"\""),
        if fill { " FILL ZEROS" } else { "" }
    );
    let mut bound = vec![
        Value::String(id.clone()),
        Value::String(params.span.unwrap_or_else(|| "1d".to_owned())),
    ];
    if let Some(t) = params.as_of {
        sql.push_str(" AS OF $3");
        bound.push(match t.parse::<i64>() {
            Ok(ms) => Value::Int(ms),
            Err(_) => Value::String(t),
        });
    }
    blocking(move || {
        let out = app
            .db
            .execute_params(&sql, &bound)
            .map_err(|e| library_error(&e, &app))?;
        let rows = out.rows().map(|r| r.rows.as_slice()).unwrap_or_default();
        let buckets: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                let v = |i: usize| {
                    r.get(i)
                        .map_or(serde_json::Value::Null, |x| serde_json::json!(JsonValue(x)))
                };
                serde_json::json!({
                    "start": v(0), "count": v(1), "sum": v(2), "min": v(3), "max": v(4), "mean": v(5),
                })
            })
            .collect();
        Ok(json_bytes(
            serde_json::json!({ "user": id, "window": window, "buckets": buckets })
                .to_string()
                .into_bytes(),
        ))
    })
    .await
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchRead {
    ids: Vec<String>,
    as_of: Option<serde_json::Value>,
    window: Option<String>,
    fields: Option<Vec<String>>,
}

/// A request's JSON body as `T`; one that is not is a 400 showing `shape`.
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(
    body: &[u8],
    shape: &str,
) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the body must be a JSON object {shape}: {e}"),
        )
    })
}

/// The most (user, time) pairs one `POST /v1/rows_as_of` takes.
pub(crate) const MAX_PAIRS: usize = 100_000;

#[derive(serde::Deserialize)]
struct RowsAsOfBody {
    select: String,
    pairs: Vec<(String, serde_json::Value)>,
}

/// A point-in-time read asked for: the select list and the (user, epoch ms)
/// pairs, their times checked.
pub(crate) struct RowsAsOf {
    pub(crate) select: String,
    pub(crate) pairs: Vec<(String, i64)>,
}

impl RowsAsOf {
    /// Reads `POST /v1/rows_as_of`'s body: at most [`MAX_PAIRS`] pairs, each
    /// time epoch ms (a number or a string of digits) or RFC 3339; an error
    /// names the pair by its place.
    pub(crate) fn parse(body: &[u8]) -> Result<RowsAsOf, ApiError> {
        let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, m);
        let req: RowsAsOfBody =
            json_body(body, r#"{"select": "...", "pairs": [[user, time], ...]}"#)?;
        if req.pairs.len() > MAX_PAIRS {
            return Err(bad(format!(
                "a point-in-time read takes at most {MAX_PAIRS} pairs, not {}",
                req.pairs.len()
            )));
        }
        let pairs = req
            .pairs
            .into_iter()
            .enumerate()
            .map(|(i, (user, t))| {
                let ms = match &t {
                    serde_json::Value::Number(n) => n
                        .as_i64()
                        .ok_or_else(|| format!("{n} is not epoch ms"))
                        .and_then(|ms| profiledb::check_ts(ms).map_err(|e| e.to_string())),
                    serde_json::Value::String(s) => match s.parse::<i64>() {
                        Ok(ms) => profiledb::check_ts(ms).map_err(|e| e.to_string()),
                        Err(_) => profiledb::parse_timestamp(s).map_err(|e| e.to_string()),
                    },
                    other => Err(format!(
                        "expected epoch ms or an RFC 3339 string, got {other}"
                    )),
                };
                ms.map(|ms| (user, ms))
                    .map_err(|e| bad(format!("pair {i}: the time: {e}")))
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        Ok(RowsAsOf {
            select: req.select,
            pairs,
        })
    }
}

/// `POST /v1/rows_as_of`: `{"select": "spend, window_count(views, '1d')",
/// "pairs": [["u1", 1761991200000], ["u2", "2025-11-02T00:00:00Z"]]}`, the
/// point-in-time export ([`profiledb::Db::pairs_as_of`]): answers as a
/// query does, columns `user`, `ts` and the items, one row per pair in
/// their order, each read as of its own time. At most [`MAX_PAIRS`] pairs.
pub(crate) async fn rows_as_of(
    State(app): State<Arc<App>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let RowsAsOf { select, pairs } = RowsAsOf::parse(&body)?;
    let start = Instant::now();
    let timed = app.clone();
    let answer = blocking(move || {
        let rows = app
            .db
            .pairs_as_of(&select, &pairs)
            .map_err(|e| with_place(library_error(&e, &app)))?;
        serde_json::to_vec(&JsonOutput(&profiledb::Output::Rows(rows)))
            .map(json_bytes)
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    })
    .await;
    timed.metrics.query_latency.observe(start.elapsed());
    answer
}

/// `POST /v1/profiles`: `{"ids": [...], "as_of", "window", "fields"}` (all
/// but `ids` optional); answers `{"profiles": [...]}` in the order of the
/// ids, `null` for a user that does not exist. At most
/// [`MAX_BATCH_READ`] ids.
pub(crate) async fn batch_read(
    State(app): State<Arc<App>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, m);
    let req: BatchRead = json_body(&body, r#"{"ids": [...], "as_of", "window", "fields"}"#)?;
    if req.ids.len() > MAX_BATCH_READ {
        return Err(bad(format!(
            "a batch read takes at most {MAX_BATCH_READ} ids, not {}",
            req.ids.len()
        )));
    }
    let as_of = match &req.as_of {
        None => None,
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        Some(other) => {
            return Err(bad(format!(
                "as_of: expected epoch ms or an RFC 3339 string, got {other}"
            )));
        }
    };
    blocking(move || {
        let read = profile_read(&app, as_of.as_deref(), req.window.as_deref(), req.fields)?;
        let profiles = read_profiles(&app, &read, &req.ids)?;
        let mut out = Vec::with_capacity(profiles.text_len() + 5 * profiles.len() + 16);
        out.extend_from_slice(b"{\"profiles\":[");
        for (i, p) in profiles.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(p.unwrap_or(b"null"));
        }
        out.extend_from_slice(b"]}");
        Ok(json_bytes(out))
    })
    .await
}

/// `DELETE /v1/users/{id}`
pub(crate) async fn delete_user(
    State(app): State<Arc<App>>,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if access == Access::ReadOnly {
        return Err(forbidden("delete users"));
    }
    refuse_on_node(&app, "deletes")?;
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
