//! `POST /v1/sync`: ingest now instead of waiting for the next poll (admins and agents).
//!
//! Enqueues the same `ingest` task per brand and platform as the scheduler, with the same dedup
//! key (`ingest:<platform>`, one active per brand): while an ingest is active, asking again is
//! a no-op that returns the active task. `brandId` picks one brand; without it, every enabled
//! brand is ingested on the platforms it watches. Answers 202: the work happens in the
//! ingestor.

use crate::AppState;
use crate::auth::Admin;
use crate::error::{ApiError, Problem};
use crate::extract::{Params, parse_list};
use crate::openapi::PlatformValues;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use sea_orm::TransactionTrait;
use serde::{Deserialize, Serialize};
use serde_json::json;
use shared::audit::{self, Entry};
use shared::brands;
use shared::domain::{BrandId, Platform, TaskId};
use shared::ingest::IngestStep;
use shared::outbox::{self, NewTask};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The sync route (needs a token).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_sync))
}

/// Which platforms to ingest.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CreateSyncQuery {
    /// Platforms, comma separated (default: every configured platform).
    #[param(schema_with = PlatformValues::list)]
    pub platform: Option<String>,
    /// Only this brand (default: every enabled brand).
    #[serde(rename = "brandId")]
    #[param(rename = "brandId", format = Uuid)]
    pub brand_id: Option<String>,
}

/// The ingest of one platform.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncOut {
    /// The brand.
    #[schema(value_type = String, format = Uuid)]
    pub brand_id: BrandId,
    /// The platform.
    #[schema(value_type = PlatformValues)]
    pub platform: Platform,
    /// The ingest task (new, or the one already active).
    #[schema(value_type = String, format = Uuid)]
    pub task_id: TaskId,
    /// `false` when an ingest of the platform was already active (nothing new was queued).
    pub created: bool,
}

/// The ingests requested.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncPage {
    /// One per brand and platform.
    pub result: Vec<SyncOut>,
}

/// Queues an ingest of the given platforms now (admins only: it spends the shared provider
/// budget); a no-op for a platform whose ingest is already active.
#[utoipa::path(post, path = "/v1/sync", tag = "sync", params(CreateSyncQuery),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Ingests queued (or already active)", body = SyncPage),
        (status = 403, description = "Not an admin", body = Problem),
        (status = 404, description = "No such brand", body = Problem),
        (status = 422, description = "An unknown or unconfigured platform, or a malformed brand id", body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn create_sync(
    State(state): State<AppState>,
    Admin(me): Admin,
    Params(query): Params<CreateSyncQuery>,
) -> Result<(StatusCode, Json<SyncPage>), ApiError> {
    let mut platforms: Vec<Platform> = parse_list("platform", query.platform.as_deref())?;
    if platforms.is_empty() {
        platforms = state.platforms.to_vec();
    }
    if let Some(p) = platforms.iter().find(|p| !state.platforms.contains(p)) {
        return Err(ApiError::invalid(
            "platform",
            format!("platform: {p} is not in SOCIAL_PLATFORMS"),
        ));
    }
    platforms.sort();
    platforms.dedup();
    let mut watching = brands::watching(&state.db, &platforms).await?;
    if let Some(text) = query.brand_id.as_deref() {
        let brand: BrandId = text
            .parse()
            .map_err(|_| ApiError::invalid("brandId", "brandId: not a brand id"))?;
        if brands::get(&state.db, brand).await?.is_none() {
            return Err(ApiError::not_found("no such brand"));
        }
        watching.retain(|w| w.brand == brand);
    }
    let txn = state.db.begin().await?;
    let mut result = Vec::new();
    for watch in &watching {
        for &platform in &watch.platforms {
            let task = NewTask::of(watch.brand, platform, &IngestStep::Platform);
            let enqueued = outbox::enqueue(&txn, task)
                .await
                .map_err(|e| ApiError::internal(&e))?;
            result.push(SyncOut {
                brand_id: watch.brand,
                platform,
                task_id: enqueued.task().id,
                created: enqueued.is_created(),
            });
        }
    }
    let mut created: Vec<&str> = result
        .iter()
        .filter(|s| s.created)
        .map(|s| s.platform.as_str())
        .collect();
    created.sort_unstable();
    created.dedup();
    if !created.is_empty() {
        audit::append(
            &txn,
            Entry::new(
                me.actor(),
                "ingest.requested",
                "platform",
                created.join(","),
            )
            .with_payload(json!({ "platforms": created })),
        )
        .await?;
    }
    txn.commit().await?;
    Ok((StatusCode::ACCEPTED, Json(SyncPage { result })))
}
