//! The endpoints: events, statements, profiles and deletes. Statements,
//! ingest and deletes run on tokio's blocking pool; a profile read, a few
//! microseconds of point lookups, runs on the async worker itself.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use profiledb::{Limits, Permission, Profile, Value};
use serde::Serialize;
use serde::ser::SerializeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::App;
use super::auth::Access;
use super::errors::{ApiError, forbidden, library_error};
use crate::json::{JsonOutput, JsonValue};

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
    // A retried request names itself: a repeat answers the first answer.
    let request = match headers.get("idempotency-key") {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "the Idempotency-Key header is not visible ASCII".to_owned(),
                    )
                })?
                .to_owned(),
        ),
        None => None,
    };
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
            let each =
                profiledb::decode_each_event(text).map_err(|e| reject(library_error(&e, &app)))?;
            let mut good = Vec::with_capacity(each.len());
            for (index, ev) in each.into_iter().enumerate() {
                match ev.and_then(|ev| app.db.validate(&ev).map(|()| ev)) {
                    Ok(ev) => good.push(ev),
                    Err(e) => rejected.push(serde_json::json!({
                        "index": index,
                        "field": e.field,
                        "reason": e.reason,
                    })),
                }
            }
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
}

/// `POST /v1/query`: `{"sql": "...", "params": [...]}` (`params`
/// optional); answers the last statement's output.
pub(crate) async fn query(
    State(app): State<Arc<App>>,
    Extension(access): Extension<Access>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: QueryRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the body must be a JSON object {{\"sql\": \"...\", \"params\": [...]}}: {e}"),
        )
    })?;
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
        let result = app
            .db
            .execute_params_as(&req.sql, &params, &limits, permission);
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
pub(crate) struct ProfileParams {
    /// Epoch ms or RFC 3339; now by default.
    as_of: Option<String>,
    /// Span windows are aggregated over (`1d`, `7d`); a day by default.
    window: Option<String>,
    /// Comma-separated items to answer with (and `segments`); all by default.
    fields: Option<String>,
}

/// Most users one batch read takes.
pub(crate) const MAX_BATCH_READ: usize = 1000;

/// How a profile is read and shown: at a time, windows over a span, and
/// the items asked for (`None`: all, segments included).
struct ProfileRead {
    as_of: i64,
    span: i64,
    fields: Option<std::collections::HashSet<String>>,
}

impl ProfileRead {
    fn parse(
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
        let fields = match fields {
            None => None,
            Some(names) => {
                let catalog = app.db.engine().bindings();
                let catalog = &catalog.catalog;
                for n in &names {
                    let shown = matches!(
                        catalog.kind_of(n),
                        Some(
                            profiledb::DefKind::Attribute
                                | profiledb::DefKind::Feature
                                | profiledb::DefKind::Vector
                                | profiledb::DefKind::Window
                        )
                    );
                    if n != "segments" && !shown {
                        let known = catalog
                            .attributes
                            .iter()
                            .map(|d| d.name.as_str())
                            .chain(catalog.features.iter().map(|d| d.name.as_str()))
                            .chain(catalog.vectors.iter().map(|d| d.name.as_str()))
                            .chain(catalog.windows.iter().map(|d| d.name.as_str()))
                            .chain(["segments"]);
                        let hint = profiledb::closest(n, known)
                            .map(|c| format!(" (did you mean '{c}'?)"))
                            .unwrap_or_default();
                        return Err(bad(format!(
                            "fields: no attribute, feature, vector or window '{n}'{hint}"
                        )));
                    }
                }
                Some(names.into_iter().collect())
            }
        };
        Ok(ProfileRead {
            as_of,
            span,
            fields,
        })
    }

    /// The profile of `id` as JSON bytes; `None` for a user that does not
    /// exist.
    fn read(&self, app: &App, id: &str) -> Result<Option<Vec<u8>>, ApiError> {
        let start = Instant::now();
        let profile = app
            .db
            .profile_with_span(id, self.as_of, self.span)
            .map_err(|e| library_error(&e, app))?;
        let json = match profile {
            Some(p) => {
                let segments = self.segments(app, &[p.user.as_str()])?;
                Some(self.json(&p, segments.as_ref())?)
            }
            None => None,
        };
        app.metrics.profile_latency.observe(start.elapsed());
        Ok(json)
    }

    /// The profiles of `ids`, as JSON bytes in order (`None` for a user that
    /// does not exist), read from one view of the database, and their
    /// segments from one query.
    fn read_many(&self, app: &App, ids: &[String]) -> Result<Vec<Option<Vec<u8>>>, ApiError> {
        use rayon::prelude::*;
        let start = Instant::now();
        let profiles = app
            .db
            .profiles_with_span(ids, self.as_of, self.span)
            .map_err(|e| library_error(&e, app))?;
        let present: Vec<&str> = profiles.iter().flatten().map(|p| p.user.as_str()).collect();
        let segments = self.segments(app, &present)?;
        let out = profiles
            .par_iter()
            .map(|p| {
                p.as_ref()
                    .map(|p| self.json(p, segments.as_ref()))
                    .transpose()
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        // Each profile's share of the batch, for the histogram.
        let each = start.elapsed() / u32::try_from(ids.len().max(1)).unwrap_or(u32::MAX);
        for _ in ids {
            app.metrics.profile_latency.observe(each);
        }
        Ok(out)
    }

    /// The segments of `ids` when the read shows them.
    fn segments(&self, app: &App, ids: &[&str]) -> Result<Option<Segments>, ApiError> {
        if self
            .fields
            .as_ref()
            .is_some_and(|f| !f.contains("segments"))
        {
            return Ok(None);
        }
        segments_of(app, ids, self.as_of).map(Some)
    }

    /// A read profile as JSON, with its segments when they were read.
    fn json(&self, profile: &Profile, segments: Option<&Segments>) -> Result<Vec<u8>, ApiError> {
        let none = Vec::new();
        serde_json::to_vec(&JsonProfile {
            profile,
            fields: self.fields.as_ref(),
            segments: segments.map(|s| s.get(&profile.user).unwrap_or(&none).as_slice()),
        })
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    }
}

/// The segments each user is in, by user id (users in none are absent).
type Segments = std::collections::HashMap<String, Vec<String>>;

/// The segments `ids` are in at `as_of`, in definition order: one point
/// query testing each segment for every user, the ids and the time bound
/// as parameters.
fn segments_of(app: &App, ids: &[&str], as_of: i64) -> Result<Segments, ApiError> {
    let names: Vec<String> = {
        let bindings = app.db.engine().bindings();
        bindings
            .catalog
            .segments
            .iter()
            .map(|s| s.name.clone())
            .collect()
    };
    if names.is_empty() || ids.is_empty() {
        return Ok(Segments::new());
    }
    let tests: Vec<String> = names
        .iter()
        .map(|n| format!("IN SEGMENT \"{}\"", n.replace('"', "\"\"")))
        .collect();
    let marks: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT id, {} FROM users WHERE id IN ({}) AS OF ${}",
        tests.join(", "),
        marks.join(", "),
        ids.len() + 1
    );
    let params: Vec<Value> = ids
        .iter()
        .map(|id| Value::String((*id).to_owned()))
        .chain([Value::Int(as_of)])
        .collect();
    let out = app
        .db
        .execute_params(&sql, &params)
        .map_err(|e| library_error(&e, app))?;
    let rows = out.rows().map(|r| r.rows.as_slice()).unwrap_or_default();
    Ok(rows
        .iter()
        .filter_map(|row| {
            let Some(Value::String(id)) = row.first() else {
                return None;
            };
            let ins = names
                .iter()
                .zip(&row[1..])
                .filter(|(_, v)| **v == Value::Bool(true))
                .map(|(n, _)| n.clone())
                .collect();
            Some((id.clone(), ins))
        })
        .collect())
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
    let read = ProfileRead::parse(
        &app,
        params.as_of.as_deref(),
        params.window.as_deref(),
        field_list(params.fields.as_deref()),
    )?;
    // A whole-profile read is a few point lookups and one short window scan,
    // microseconds from cache: it runs on the async worker, where a trip
    // through the blocking pool would cost more than the read.
    read.read(&app, &id)?
        .map(json_bytes)
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

/// `POST /v1/profiles`: `{"ids": [...], "as_of", "window", "fields"}` (all
/// but `ids` optional); answers `{"profiles": [...]}` in the order of the
/// ids, `null` for a user that does not exist. At most
/// [`MAX_BATCH_READ`] ids.
pub(crate) async fn batch_read(
    State(app): State<Arc<App>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, m);
    let req: BatchRead = serde_json::from_slice(&body).map_err(|e| {
        bad(format!(
            "the body must be a JSON object {{\"ids\": [...], \"as_of\", \"window\", \"fields\"}}: {e}"
        ))
    })?;
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
        let read = ProfileRead::parse(&app, as_of.as_deref(), req.window.as_deref(), req.fields)?;
        let profiles = read.read_many(&app, &req.ids)?;
        let mut out = Vec::with_capacity(
            profiles.iter().flatten().map(Vec::len).sum::<usize>() + 5 * profiles.len() + 16,
        );
        out.extend_from_slice(b"{\"profiles\":[");
        for (i, p) in profiles.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match p {
                Some(json) => out.extend_from_slice(json),
                None => out.extend_from_slice(b"null"),
            }
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
/// windows as objects keyed by name (only those `fields` names, when it
/// names some), then the segments the user is in, when they were read.
struct JsonProfile<'a> {
    profile: &'a Profile,
    fields: Option<&'a std::collections::HashSet<String>>,
    segments: Option<&'a [String]>,
}

impl Serialize for JsonProfile<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let wanted = |name: &str| self.fields.is_none_or(|f| f.contains(name));
        struct Named<'a, F>(&'a [(String, profiledb::Value)], F);
        impl<F: Fn(&str) -> bool> Serialize for Named<'_, F> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(None)?;
                for (k, v) in self.0.iter().filter(|(k, _)| (self.1)(k)) {
                    m.serialize_entry(k, &JsonValue(v))?;
                }
                m.end()
            }
        }
        /// A window's aggregate as an object.
        struct Window<'a>(&'a profiledb::Bucket);
        impl Serialize for Window<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let b = self.0;
                let mut m = s.serialize_map(Some(7))?;
                m.serialize_entry("count", &b.count)?;
                m.serialize_entry("sum", &b.sum)?;
                m.serialize_entry("min", &b.min())?;
                m.serialize_entry("max", &b.max())?;
                m.serialize_entry("mean", &b.mean())?;
                m.serialize_entry("stddev", &b.stddev())?;
                m.serialize_entry("sumsq", &b.sumsq)?;
                m.end()
            }
        }
        struct Windows<'a, F>(&'a [(String, profiledb::Bucket)], F);
        impl<F: Fn(&str) -> bool> Serialize for Windows<'_, F> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(None)?;
                for (name, b) in self.0.iter().filter(|(k, _)| (self.1)(k)) {
                    m.serialize_entry(name, &Window(b))?;
                }
                m.end()
            }
        }
        let p = self.profile;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("user", &p.user)?;
        m.serialize_entry("as_of", &profiledb::format_timestamp(p.as_of))?;
        m.serialize_entry("first_seen", &profiledb::format_timestamp(p.first_seen))?;
        m.serialize_entry("last_seen", &profiledb::format_timestamp(p.last_seen))?;
        m.serialize_entry("events", &p.events)?;
        m.serialize_entry("attributes", &Named(&p.attributes, wanted))?;
        m.serialize_entry("features", &Named(&p.features, wanted))?;
        m.serialize_entry("vectors", &Named(&p.vectors, wanted))?;
        m.serialize_entry("windows", &Windows(&p.windows, wanted))?;
        if let Some(segments) = self.segments {
            m.serialize_entry("segments", segments)?;
        }
        m.end()
    }
}
