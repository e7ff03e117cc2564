//! HTTP routes, one module per resource, and their composition into the whole surface.
//!
//! Public: login, `/v1/status*`, `/healthz`, `/readyz`, `/metrics`, `/openapi.json`, `/docs`,
//! and the web inbox's page (`/`, `/app.js`, `/app.css`; its data needs a token like any client).
//! Everything else goes through [`crate::auth::require_token`] (401 without a valid token,
//! 429 over the token's rate limit). Every request is measured (`crate::http_metrics`), bodies
//! are capped at 64 KB, and unknown routes or methods answer problem+json.

pub mod account;
pub mod audit;
pub mod brands;
pub mod budget;
pub mod health;
pub mod mentions;
pub mod replies;
pub mod status;
pub mod sync;
pub mod tasks;
pub mod users;

use crate::AppState;
use crate::error::ApiError;
use crate::{auth, events, extract, http_metrics, openapi, web, webhooks};
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::routing::get;
use axum::{Json, Router, middleware};
use std::sync::Arc;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;

fn public_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(users::public_router())
        .merge(status::router())
        .merge(webhooks::router())
}

fn protected_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(users::router())
        .merge(brands::router())
        .merge(account::router())
        .merge(mentions::router())
        .merge(replies::router())
        .merge(audit::router())
        .merge(tasks::router())
        .merge(sync::router())
        .merge(budget::router())
        .merge(events::router())
}

/// The OpenAPI document of every annotated route, as served at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    openapi::complete(public_routes().merge(protected_routes()).into_openapi())
}

/// The whole HTTP surface over `state`.
pub fn router(state: AppState) -> Router {
    // Installs the Prometheus recorder before the first request records anything.
    shared::telemetry::metrics_handle();
    let protected = protected_routes().route_layer(middleware::from_fn_with_state(
        state.clone(),
        auth::require_token,
    ));
    let (api, document) = public_routes().merge(protected).split_for_parts();
    let document = Arc::new(openapi::complete(document));
    let cors = cors(&state.cors_allowed_origins);
    api.merge(health::router())
        .route(
            "/openapi.json",
            get(move || {
                let document = document.clone();
                async move { Json(document) }
            }),
        )
        .merge(openapi::docs_routes().with_state(()))
        .merge(web::router().with_state(()))
        .route("/metrics", get(http_metrics::get_metrics))
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "route_not_found", "no such route")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not accept this method",
            )
        })
        .layer(DefaultBodyLimit::max(extract::MAX_BODY_BYTES))
        .layer(middleware::from_fn(http_metrics::record))
        .layer(TraceLayer::new_for_http())
        .layer(cors)
        .with_state(state)
}

fn cors(origins: &[String]) -> CorsLayer {
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            HeaderName::from_static("idempotency-key"),
        ])
        .expose_headers([header::ETAG, header::RETRY_AFTER])
}
