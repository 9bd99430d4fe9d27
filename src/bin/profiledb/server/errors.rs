//! Error answers: one JSON shape, `{"error": {"message", ...}}`, for every
//! error, the library's and axum's own alike.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use profiledb::Error;

use super::App;

/// An error answer: a status and `{"error": {"message", ...}}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) error: serde_json::Map<String, serde_json::Value>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        let mut error = serde_json::Map::new();
        error.insert("message".into(), message.into().into());
        ApiError { status, error }
    }

    pub(crate) fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> ApiError {
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
pub(crate) fn library_error(e: &Error, app: &App) -> ApiError {
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
    error_answer(e)
}

/// [`library_error`] for an error that is not a statement's timeout (what
/// needs the server's settings to say): the router's answers too.
pub(crate) fn error_answer(e: &Error) -> ApiError {
    if e.is_read_only_refusal() {
        return forbidden("change data or schema");
    }
    if e.is_peer_failure() {
        return unavailable(e.message());
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

/// A cluster's node that cannot answer now (not reachable, not caught up,
/// no node following a partition): 503, worth retrying.
pub(crate) fn unavailable(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message).with("code", "node_unavailable")
}

pub(crate) fn forbidden(what: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        format!("the read-only token may not {what}; use the write token"),
    )
}

/// Gives every error the documented JSON body. Handlers answer JSON already;
/// this catches what axum answers by itself (a 405, a path or query string that
/// does not parse), keeping its status, headers and message.
pub(crate) async fn json_errors(req: Request, next: Next) -> Response {
    // Kept for the message of a 405; both are cheap to copy.
    let method = req.method().clone();
    let uri = req.uri().clone();
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
        format!("{method} is not allowed on {}; use {allowed}", uri.path())
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
