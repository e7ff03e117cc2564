//! HTTP request metrics and the Prometheus endpoint.
//!
//! Every request is counted in `http_requests_total` and timed in
//! `http_request_duration_seconds`, labelled by method, matched route (the route template, e.g.
//! `/v1/mentions/{id}`, so ids do not explode the label set; `unmatched` for 404s) and status.
//! `GET /metrics` renders every metric of the process in the Prometheus text format.

use axum::extract::{MatchedPath, Request};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Instant;

/// Requests answered, by method, route and status.
pub const REQUESTS_METRIC: &str = "http_requests_total";
/// Time to answer, by method, route and status.
pub const REQUEST_DURATION_METRIC: &str = "http_request_duration_seconds";

/// Middleware recording the request metrics.
pub async fn record(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let elapsed = started.elapsed().as_secs_f64();
    metrics::counter!(REQUESTS_METRIC, "method" => method.clone(), "route" => route.clone(), "status" => status.clone())
        .increment(1);
    metrics::histogram!(REQUEST_DURATION_METRIC, "method" => method, "route" => route, "status" => status)
        .record(elapsed);
    response
}

/// `GET /metrics`: the Prometheus text format.
pub async fn get_metrics() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        shared::telemetry::metrics_handle().render(),
    )
}
