//! Liveness and readiness.
//!
//! `GET /healthz` answers 200 while the process runs. `GET /readyz` answers 200 when PostgreSQL
//! and RabbitMQ are both reachable, else 503 with a JSON body naming what is down.

use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use std::time::Duration;

/// `/healthz` and `/readyz`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(get_liveness))
        .route("/readyz", get(get_readiness))
}

async fn get_liveness() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn get_readiness(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let database = tokio::time::timeout(
        Duration::from_secs(2),
        state.db.execute_unprepared("SELECT 1"),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    let broker = state.broker_connected().await;
    let word = |up: bool| if up { "up" } else { "down" };
    let down: Vec<&str> = [("database", database), ("broker", broker)]
        .into_iter()
        .filter(|(_, up)| !up)
        .map(|(name, _)| name)
        .collect();
    let status = if down.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if down.is_empty() { "ready" } else { "unavailable" },
        "checks": { "database": word(database), "broker": word(broker) },
        "down": down,
    });
    (status, Json(body))
}
