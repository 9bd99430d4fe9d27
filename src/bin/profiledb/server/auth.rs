//! Bearer tokens: the write token, the read-only token, and what each allows.

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

use super::App;
use super::errors::ApiError;

/// What a request's token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Full,
    ReadOnly,
}

/// Compares two tokens in time independent of where they differ.
fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// What `req`'s bearer token allows on a server with `token` and
/// `read_token`: everything on `/healthz` or without tokens; `None` for a
/// missing or wrong token.
pub(crate) fn access_of(
    req: &Request,
    token: Option<&str>,
    read_token: Option<&str>,
) -> Option<Access> {
    if req.uri().path() == "/healthz" || token.is_none() {
        return Some(Access::Full);
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)?;
    if token.is_some_and(|k| same_token(given, k)) {
        Some(Access::Full)
    } else if read_token.is_some_and(|k| same_token(given, k)) {
        Some(Access::ReadOnly)
    } else {
        None
    }
}

/// Records what a request's token allows, or answers 401.
pub(crate) async fn admit(access: Option<Access>, mut req: Request, next: Next) -> Response {
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

/// Checks the bearer token, when the server has one, and records what it allows.
pub(crate) async fn auth(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let access = access_of(
        &req,
        app.config.http.token.as_deref(),
        app.config.http.read_token.as_deref(),
    );
    admit(access, req, next).await
}
