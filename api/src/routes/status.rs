//! The seed's status routes: `GET /v1/status` (the API is up) and `GET /v1/status/health`
//! (200 when every configured platform's circuit breaker is closed, else 503), with per-platform
//! breaker state, messaging availability and the last successful ingest.

use crate::AppState;
use crate::error::ApiError;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, FixedOffset};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, EntityTrait, Statement};
use serde::Serialize;
use shared::brands::{self, DEFAULT_BRAND};
use shared::db::entities::circuit_breakers;
use shared::domain::JobKind;
use shared::domain::Platform;
use shared::ingest::push;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The status routes (public).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_status))
        .routes(routes!(get_health))
}

/// The API is up.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusOut {
    /// Always `ok`.
    pub status: &'static str,
}

/// The API answers.
#[utoipa::path(get, path = "/v1/status", tag = "status",
    responses((status = 200, description = "Up", body = StatusOut)))]
async fn get_status() -> Json<StatusOut> {
    Json(StatusOut { status: "ok" })
}

/// The state of one platform.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlatformHealth {
    /// Circuit breaker: `closed`, `open` or `half_open` (no row yet means `closed`).
    pub breaker: String,
    /// While open: when it may let probes through.
    pub open_until: Option<DateTime<FixedOffset>>,
    /// Direct messages: `available`, `unavailable` (the provider refused: no messaging
    /// add-on), `unknown` (not checked yet) or `unsupported` (the platform has none).
    pub messaging: &'static str,
    /// The provider's reason when messaging is unavailable.
    pub messaging_error: Option<String>,
    /// When an ingest task for the platform last succeeded.
    pub last_successful_ingest_at: Option<DateTime<FixedOffset>>,
}

/// Health of the provider side, per configured platform.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthOut {
    /// `healthy` when every breaker is closed, else `degraded`.
    pub status: &'static str,
    /// Per platform.
    pub platforms: BTreeMap<String, PlatformHealth>,
    /// Push ingest.
    pub webhooks: WebhooksHealth,
}

/// The state of push ingest (the provider's webhooks).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhooksHealth {
    /// Deliveries are taken in (`WEBHOOK_SECRET` is set).
    pub enabled: bool,
    /// Deliveries this api process refused for their signature or timestamp, since it
    /// started.
    pub signature_failures: u64,
    /// Per enabled brand (`default`: the default brand, whose profile is the environment's;
    /// the others by id), per platform of the brand webhooks can cover.
    pub profiles: BTreeMap<String, BTreeMap<String, PlatformWebhook>>,
}

/// The webhook state of one platform of one profile.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlatformWebhook {
    /// The `comments` webhook is registered at the provider, and it does not report it
    /// missing.
    pub registered: bool,
    /// Since when the provider reports it missing.
    pub missing_since: Option<DateTime<FixedOffset>>,
    /// The last delivery taken in.
    pub last_delivery_at: Option<DateTime<FixedOffset>>,
    /// Deliveries taken in since midnight UTC.
    pub deliveries_today: i64,
    /// Polled only as a safety net now (healthy webhooks cover it).
    pub safety_net_polling: bool,
}

/// 200 when every configured platform's breaker is closed, else 503; details per platform.
#[utoipa::path(get, path = "/v1/status/health", tag = "status",
    responses(
        (status = 200, description = "Every breaker is closed", body = HealthOut),
        (status = 503, description = "At least one breaker is open or half-open", body = HealthOut),
    ))]
async fn get_health(
    State(state): State<AppState>,
) -> Result<(StatusCode, Json<HealthOut>), ApiError> {
    let breakers = circuit_breakers::Entity::find().all(&state.db).await?;
    let messaging = messaging_status(&state.db).await?;
    let mut platforms = BTreeMap::new();
    let mut healthy = true;
    for platform in state.platforms.iter().copied() {
        // Keys are `<platform>` today and `<profile>:<platform>` later: the worst one counts.
        let worst = breakers
            .iter()
            .filter(|b| {
                b.key == platform.as_str()
                    || b.key
                        .rsplit_once(':')
                        .is_some_and(|(_, p)| p == platform.as_str())
            })
            .max_by_key(|b| severity(&b.state));
        let breaker = worst.map_or_else(|| "closed".to_owned(), |b| b.state.clone());
        healthy &= breaker == "closed";
        let last =
            shared::outbox::listing::last_success(&state.db, JobKind::Ingest.as_str(), platform)
                .await?;
        let (enabled, messaging_error) = messaging.get(&platform).cloned().unwrap_or_default();
        platforms.insert(
            platform.as_str().to_owned(),
            PlatformHealth {
                open_until: worst.and_then(|b| b.open_until),
                breaker,
                messaging: match (platform.has_messages(), enabled) {
                    (false, _) => "unsupported",
                    (true, Some(true)) => "available",
                    (true, Some(false)) => "unavailable",
                    (true, None) => "unknown",
                },
                messaging_error,
                last_successful_ingest_at: last,
            },
        );
    }
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = HealthOut {
        status: if healthy { "healthy" } else { "degraded" },
        platforms,
        webhooks: webhooks_health(&state).await?,
    };
    Ok((status, Json(body)))
}

async fn webhooks_health(state: &AppState) -> Result<WebhooksHealth, DbErr> {
    let mut profiles = BTreeMap::new();
    for watch in brands::watching(&state.db, &state.platforms).await? {
        let covered = match state.budget.plan.push {
            Some(push) => push::covered(&state.db, watch.brand, &watch.platforms, push).await?,
            None => Vec::new(),
        };
        let platforms = push::state(&state.db, watch.brand, &watch.platforms)
            .await?
            .into_iter()
            .map(|p| {
                let safety_net_polling = covered.iter().any(|c| c.as_str() == p.platform);
                let health = PlatformWebhook {
                    registered: p.registered,
                    missing_since: p.missing_since,
                    last_delivery_at: p.last_delivery_at,
                    deliveries_today: p.deliveries_today,
                    safety_net_polling,
                };
                (p.platform, health)
            })
            .collect();
        let name = match watch.brand {
            DEFAULT_BRAND => "default".to_owned(),
            other => other.to_string(),
        };
        profiles.insert(name, platforms);
    }
    Ok(WebhooksHealth {
        enabled: state.webhook_keys.enabled(),
        signature_failures: state.webhook_keys.refused.load(Ordering::Relaxed),
        profiles,
    })
}

fn severity(state: &str) -> u8 {
    match state {
        "closed" => 0,
        "half_open" => 1,
        _ => 2,
    }
}

/// What the ingestor recorded about direct messages, per platform (`platform_status`, written
/// by the ingestor; no row or NULL means not checked yet).
async fn messaging_status(
    db: &impl ConnectionTrait,
) -> Result<HashMap<Platform, (Option<bool>, Option<String>)>, DbErr> {
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT platform, messaging_enabled, messaging_error FROM platform_status",
        ))
        .await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get::<Platform>("", "platform")?,
                (
                    row.try_get("", "messaging_enabled")?,
                    row.try_get("", "messaging_error")?,
                ),
            ))
        })
        .collect()
}
