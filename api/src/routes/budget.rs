//! `GET /v1/status/budget` (admins): the provider budget per profile as the planner sees it:
//! the window's limit, slots used by class and reserved for replies, what the provider said
//! is left, the next planned reads, and the last hour's time-to-inbox and reply latency.

use crate::AppState;
use crate::auth::Admin;
use crate::error::{ApiError, Problem};
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, FixedOffset, Utc};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, FromQueryResult, Statement};
use serde::Serialize;
use shared::brands::{self, Brand, Watch};
use shared::domain::Platform;
use shared::ingest::plan::{self, PlanSettings};
use shared::resilience::{BudgetClass, SEND_MARGIN, reserved};
use std::collections::BTreeMap;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Planned reads shown per profile.
const NEXT_READS: u32 = 10;

/// The budget as configured, for the report.
#[derive(Debug, Clone)]
pub struct BudgetConfig {
    /// `RATE_BUDGET_REQUESTS`.
    pub limit: u32,
    /// `RATE_BUDGET_WINDOW_SECONDS`.
    pub window: std::time::Duration,
    /// `BUDGET_RESERVE_PERCENT`.
    pub reserve_percent: u32,
    /// What the planner would read.
    pub plan: PlanSettings,
}

/// The budget route (admins).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_budget))
}

/// Percentiles of a duration over the last hour, in seconds (`null` without samples).
#[derive(Debug, Serialize, ToSchema, FromQueryResult)]
pub struct Percentiles {
    /// Samples.
    pub count: i64,
    /// Median.
    pub p50: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// Longest.
    pub max: Option<f64>,
}

/// What the provider's `x-ratelimit-*` headers (or a 429) said last.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderWord {
    /// Requests it said were left.
    pub remaining: i32,
    /// When it said so.
    pub seen_at: DateTime<FixedOffset>,
    /// After a 429: nothing is sent before this.
    pub free_at: Option<DateTime<FixedOffset>>,
}

/// A post the planner would read next.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlannedReadOut {
    /// The post (`posts.id`).
    pub post_id: String,
    /// Its platform.
    pub platform: String,
    /// Never read yet (the `discover` class).
    pub first_read: bool,
    /// The network's comment count in the latest history read is above what the last read
    /// of the post accounted for.
    pub hinted: bool,
    /// The value of reading it now; `null` for a first or hinted read (infinite).
    pub score: Option<f64>,
}

/// One profile's budget.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProfileBudget {
    /// The profile's budget key (`default` for the primary profile).
    pub profile: String,
    /// The brand whose profile it is.
    pub brand_id: String,
    /// Its name.
    pub brand_name: String,
    /// Requests per window.
    pub limit: u32,
    /// The window, in seconds.
    pub window_seconds: u64,
    /// Slots of each window only replies may use.
    pub reserved: u32,
    /// Slots of the current window in use, by class (`reply`, `discover`, `refresh`).
    pub used: BTreeMap<String, i64>,
    /// Slots left in the current window (for replies; polling has `reserved` fewer).
    pub left: i64,
    /// Slots granted since the budget was created, across every process.
    pub granted_total: i64,
    /// Of those, given back because their request never left.
    pub returned_total: i64,
    /// The provider's last word, while it still counts.
    pub provider: Option<ProviderWord>,
    /// The reads the planner would enqueue next, best first.
    pub next_reads: Vec<PlannedReadOut>,
    /// Mentions posted and stored in the last hour: provider `created` → committed.
    pub time_to_inbox: Percentiles,
    /// Replies sent in the last hour: request → provider accepted.
    pub reply_latency: Percentiles,
}

/// The budget of every profile.
#[derive(Debug, Serialize, ToSchema)]
pub struct BudgetOut {
    /// One entry per profile.
    pub profiles: Vec<ProfileBudget>,
}

#[derive(Debug, FromQueryResult)]
struct BudgetRow {
    granted_total: i64,
    returned_total: i64,
    provider_remaining: Option<i32>,
    provider_seen_at: Option<DateTime<FixedOffset>>,
    provider_free_at: Option<DateTime<FixedOffset>>,
    provider_counts: bool,
}

async fn percentiles(
    db: &impl ConnectionTrait,
    seconds: &str,
    from: &str,
) -> Result<Percentiles, DbErr> {
    let sql = format!(
        "SELECT count(*) AS count, \
                percentile_cont(0.5) WITHIN GROUP (ORDER BY s) AS p50, \
                percentile_cont(0.95) WITHIN GROUP (ORDER BY s) AS p95, \
                percentile_cont(0.99) WITHIN GROUP (ORDER BY s) AS p99, \
                max(s) AS max \
         FROM (SELECT greatest(0, extract(epoch FROM {seconds}))::float8 AS s FROM {from}) t"
    );
    Percentiles::find_by_statement(Statement::from_string(DbBackend::Postgres, sql))
        .one(db)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("no percentiles row".into()))
}

/// The provider budget per profile, the next planned reads and the last hour's freshness.
#[utoipa::path(get, path = "/v1/status/budget", tag = "status", security(("bearer" = [])),
    responses(
        (status = 200, description = "The budget of every profile", body = BudgetOut),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Not an admin", body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn get_budget(State(state): State<AppState>, _: Admin) -> Result<Json<BudgetOut>, ApiError> {
    let mut profiles = Vec::new();
    for brand in brands::list(&state.db).await? {
        profiles.push(brand_budget(&state, &brand).await?);
    }
    Ok(Json(BudgetOut { profiles }))
}

/// The budget of `brand`'s profile.
async fn brand_budget(state: &AppState, brand: &Brand) -> Result<ProfileBudget, ApiError> {
    let config = &state.budget;
    let db = &state.db;
    // The budget is per profile, whatever the platform.
    let key = brands::provider_key(brand.id, Platform::Facebook).budget_key();
    let window = (config.window + SEND_MARGIN).as_secs_f64();
    let row = BudgetRow::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT granted_total, returned_total, provider_remaining, provider_seen_at, \
                provider_free_at, \
                coalesce(provider_seen_at > now() - make_interval(secs => $2) \
                         AND (provider_free_at IS NULL OR provider_free_at > now()), false) \
                    AS provider_counts \
         FROM rate_budgets WHERE key = $1",
        [key.clone().into(), window.into()],
    ))
    .one(db)
    .await?;
    let counts = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT class, count(*) AS n FROM rate_budget_grants \
             WHERE key = $1 AND granted_at > now() - make_interval(secs => $2) GROUP BY class",
            [key.clone().into(), window.into()],
        ))
        .await?;
    let mut used: BTreeMap<String, i64> = BudgetClass::ALL
        .iter()
        .map(|c| (c.as_str().to_owned(), 0))
        .collect();
    for count in &counts {
        used.insert(count.try_get("", "class")?, count.try_get("", "n")?);
    }
    let in_use: i64 = used.values().sum();
    let provider = row.as_ref().and_then(|r| {
        match (r.provider_counts, r.provider_remaining, r.provider_seen_at) {
            (true, Some(remaining), Some(seen_at)) => Some(ProviderWord {
                remaining,
                seen_at,
                free_at: r.provider_free_at,
            }),
            _ => None,
        }
    });
    let watch = Watch {
        brand: brand.id,
        platforms: brand.watched(&config.plan.platforms),
    };
    let next_reads = plan::next_reads(db, &config.plan, &watch, Utc::now(), NEXT_READS)
        .await?
        .into_iter()
        .map(|r| PlannedReadOut {
            post_id: r.post_id.to_string(),
            platform: r.platform.as_str().to_owned(),
            first_read: r.first_read,
            hinted: r.hinted,
            score: r.score.is_finite().then_some(r.score),
        })
        .collect();
    // A brand id is a uuid: safe to write into the statement.
    let time_to_inbox = percentiles(
        db,
        "created_at - posted_at",
        &format!(
            "mentions WHERE brand_id = '{}' AND created_at > now() - interval '1 hour' \
             AND posted_at > now() - interval '1 hour'",
            brand.id
        ),
    )
    .await?;
    let reply_latency = percentiles(
        db,
        "r.sent_at - r.created_at",
        &format!(
            "replies r JOIN mentions m ON m.id = r.mention_id \
             WHERE m.brand_id = '{}' AND r.sent_at > now() - interval '1 hour'",
            brand.id
        ),
    )
    .await?;
    Ok(ProfileBudget {
        profile: key,
        brand_id: brand.id.to_string(),
        brand_name: brand.name.clone(),
        limit: config.limit,
        window_seconds: config.window.as_secs(),
        reserved: reserved(config.limit, config.reserve_percent),
        left: (i64::from(config.limit) - in_use).max(0),
        used,
        granted_total: row.as_ref().map_or(0, |r| r.granted_total),
        returned_total: row.as_ref().map_or(0, |r| r.returned_total),
        provider,
        next_reads,
        time_to_inbox,
        reply_latency,
    })
}
