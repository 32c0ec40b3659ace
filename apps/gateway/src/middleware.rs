//! The middleware stack, in one place (outermost first):
//!
//! 1. request id: keep a sane `X-Request-Id` from the client or make one, and
//!    echo it on every response;
//! 2. tracing: one span per request carrying the request id;
//! 3. metrics: count and time by method, matched route and status;
//! 4. problem normaliser: any 4xx/5xx without a problem body gets one;
//! 5. panic catcher: a panicking handler answers 500, the process lives;
//! 6. timeout: a request still running after `request_timeout` answers 504;
//! 7. body limits: declared or streamed bodies over the limit answer 413;
//! 8. authorization decision: `/api/v1` routes that made none fail closed.

use std::time::{Duration, Instant};

use axum::{
    Router,
    body::Body,
    extract::{DefaultBodyLimit, MatchedPath, Request},
    http::{HeaderName, HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use tower_http::{catch_panic::CatchPanicLayer, limit::RequestBodyLimitLayer, trace::TraceLayer};

use crate::problem::{PROBLEM_JSON, Problem};

pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request id of the current request, as an extension.
#[derive(Debug, Clone)]
pub struct RequestId(pub HeaderValue);

pub fn apply(router: Router, request_timeout: Duration, body_limit: usize) -> Router {
    router
        .layer(middleware::from_fn(crate::auth::require_decision))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(RequestBodyLimitLayer::new(body_limit))
        .layer(middleware::from_fn(move |req, next| timeout(request_timeout, req, next)))
        .layer(CatchPanicLayer::custom(|_panic| {
            tracing::error!("handler panicked");
            Problem::internal().into_response()
        }))
        .layer(middleware::from_fn(normalise_problems))
        .layer(middleware::from_fn(record_metrics))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let request_id = req.extensions().get::<RequestId>().and_then(|id| id.0.to_str().ok()).unwrap_or("");
            tracing::info_span!("request", method = %req.method(), path = %loggable_path(req.uri().path()), request_id)
        }))
        .layer(middleware::from_fn(request_id))
}

/// The path as logs may show it: the one-time token of a portal link
/// (`/w/{ws}/portal/invite/{token}`, `/w/{ws}/portal/link/{token}`) is a
/// credential and never reaches a log.
fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    for marker in ["/portal/invite/", "/portal/link/"] {
        if let Some(at) = path.find(marker) {
            return format!("{}{{token}}", &path[..at + marker.len()]).into();
        }
    }
    path.into()
}

/// Client-supplied ids are kept when they are short and printable, so a
/// caller can correlate; anything else is replaced.
async fn request_id(mut req: Request, next: Next) -> Response {
    let supplied = req
        .headers()
        .get(&REQUEST_ID)
        .filter(|v| (1..=128).contains(&v.len()) && v.as_bytes().iter().all(|b| b.is_ascii_graphic()))
        .cloned();
    let id = supplied.unwrap_or_else(|| {
        HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()).expect("a UUID is a valid header value")
    });
    req.extensions_mut().insert(RequestId(id.clone()));
    // Also on the request itself, for layers that do not know our types (the web app).
    req.headers_mut().insert(REQUEST_ID.clone(), id.clone());
    let mut response = next.run(req).await;
    response.headers_mut().insert(REQUEST_ID.clone(), id);
    response
}

async fn record_metrics(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().to_string();
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(req).await;
    let labels = [("method", method), ("route", route), ("status", response.status().as_u16().to_string())];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
    if response.status().is_server_error() {
        tracing::warn!(status = response.status().as_u16(), "request failed");
    }
    response
}

async fn timeout(limit: Duration, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => Problem::new(
            StatusCode::GATEWAY_TIMEOUT,
            "request_timeout",
            format!("the request did not complete within {} s", limit.as_secs()),
        )
        .into_response(),
    }
}

/// Layers below the handlers (routing, limits) answer with bare statuses;
/// this gives each one its problem document.
async fn normalise_problems(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    // Problems are already problems; web pages answer people in HTML.
    let answered = response.headers().get(header::CONTENT_TYPE).is_some_and(|v| {
        let v = v.as_bytes();
        v.starts_with(PROBLEM_JSON.as_bytes()) || v.starts_with(b"text/html")
    });
    if status.as_u16() < 400 || answered {
        return response;
    }
    let (mut parts, _body) = response.into_parts();
    let mut problem = Problem::for_status(status).into_response();
    // Keep headers such as `Allow` (405) and `Retry-After`; replace the body.
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    std::mem::swap(problem.headers_mut(), &mut parts.headers);
    let body = std::mem::replace(problem.body_mut(), Body::empty());
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portal_link_tokens_never_reach_a_log() {
        assert_eq!(loggable_path("/w/acme/portal/link/abcDEF123_-"), "/w/acme/portal/link/{token}");
        assert_eq!(loggable_path("/w/acme/portal/invite/abc"), "/w/acme/portal/invite/{token}");
        assert_eq!(loggable_path("/w/acme/portal/tickets/tkt_1"), "/w/acme/portal/tickets/tkt_1");
    }
}
