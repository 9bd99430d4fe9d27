//! Request bodies: read whole, within the size and time limits, before any
//! handler runs.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

use super::App;
use super::errors::ApiError;

/// Reads the whole request body, within `max_body` and `body_timeout`, before
/// the handler runs: a client that stops sending is answered 408 and let go,
/// rather than holding a connection and a task forever. Runs after `auth`, so
/// no unauthenticated body is read.
pub(crate) async fn read_body(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    read_within(
        app.config.http.max_body,
        app.config.http.body_timeout,
        req,
        next,
    )
    .await
}

/// [`read_body`] with the limits given: what the router reads its bodies with.
pub(crate) async fn read_within(
    max_body: usize,
    body_timeout: std::time::Duration,
    req: Request,
    next: Next,
) -> Response {
    use http_body_util::BodyExt as _;
    use hyper::body::Body as _;
    // A request without a body (a GET, say) has nothing to wait for.
    if req.body().size_hint().exact() == Some(0) {
        return next.run(req).await;
    }
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
    if declared.is_some_and(|n| n > max_body as u64) {
        return too_large();
    }
    let limited = http_body_util::Limited::new(body, max_body);
    match tokio::time::timeout(body_timeout, limited.collect()).await {
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!("the request body did not arrive within {body_timeout:?}"),
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
