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
pub(crate) fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Checks the bearer token, when the server has one, and records what it allows.
pub(crate) async fn auth(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
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
