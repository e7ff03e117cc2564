//! The poll scheduler (runs in `api`): every history interval, one `ingest` task per enabled
//! brand and platform it watches, with the dedup key `ingest:<platform>` (one active per
//! brand). Brands are scheduled one after another in every tick, each with its own budget, so
//! none waits for another.
//!
//! The history interval is `POLL_INTERVAL_SECONDS`, or longer when the history and direct
//! message reads of a round would take more than [`HISTORY_SHARE`] of the budget's polling
//! share: the rest is for reading the posts' comments ([`crate::ingest::plan`]).
//!
//! The scheduler ticks every [`BRAND_CHECK`] (or every interval, when that is shorter), so a
//! brand added or enabled gets its first round within seconds, not a whole history interval.
//! The dedup key makes a tick a no-op while that platform's ingest is still active, and a tick
//! also skips a platform whose ingest was created within the interval less
//! `1 - `[`RECENT_FRACTION`] of a tick, even if it has already finished: so any number of api
//! replicas, ticking at different moments, produce one ingest per platform and interval. (The
//! slack keeps a single replica's own tick one interval earlier from hiding the next one.)

use crate::brands::{self, Watch};
use crate::config::Settings;
use crate::domain::BrandId;
use crate::domain::JobKind;
use crate::domain::{Platform, TaskId};
use crate::ingest::IngestStep;
use crate::ingest::push::PushPolling;
use crate::outbox::TaskPayload;
use crate::outbox::new_trace_id;
use crate::resilience::polling_pace;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use std::time::Duration;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

/// The part of a tick by which a platform's last ingest counts as recent: created within the
/// interval less the rest of a tick.
pub const RECENT_FRACTION: f64 = 0.9;

/// How often the scheduler looks for due rounds (and new brands) when the history interval
/// is longer.
pub const BRAND_CHECK: Duration = Duration::from_secs(5);

/// The time between two ticks of the scheduler for a history `interval`.
fn tick(interval: Duration) -> Duration {
    interval.min(BRAND_CHECK)
}

/// The most of the budget's polling share that history and direct message reads may take.
pub const HISTORY_SHARE: f64 = 0.25;

/// The time between two rounds of history reads for `settings`: `POLL_INTERVAL_SECONDS`, or
/// as long as it takes the polling share's [`HISTORY_SHARE`] to pay for a round (a history
/// read per platform and a direct messages read per messaging platform).
pub fn history_interval(settings: &Settings) -> Duration {
    let per_second = polling_pace(&settings.resilience) * HISTORY_SHARE;
    let platforms = &settings.platforms;
    let reads = platforms.len() + platforms.iter().filter(|p| p.has_messages()).count();
    let affordable =
        Duration::try_from_secs_f64(reads as f64 / per_second).unwrap_or(Duration::MAX);
    settings.poll_interval.max(affordable)
}

/// Enqueues `brand`'s ingest of each platform unless one is active or one was created recently
/// (within `interval` less `1 - `[`RECENT_FRACTION`] of a tick); returns the platforms that
/// got a new task.
pub async fn schedule_ingests(
    conn: &impl ConnectionTrait,
    brand: BrandId,
    platforms: &[Platform],
    interval: Duration,
) -> Result<Vec<Platform>, DbErr> {
    let recent = interval - tick(interval).mul_f64(1.0 - RECENT_FRACTION);
    let mut scheduled = Vec::new();
    for &platform in platforms {
        // `status IN (every status)` lets PostgreSQL walk the (status, created_at) index for
        // the recent rows instead of scanning all finished tasks.
        let inserted = conn
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO tasks (id, brand_id, kind, platform, dedup_key, trace_id) \
                 SELECT $1, $7, $2, $3, $4, $5 \
                 WHERE NOT EXISTS ( \
                     SELECT 1 FROM tasks \
                     WHERE status IN ('pending', 'published', 'running', 'succeeded', \
                                      'failed', 'dead') \
                       AND created_at > now() - make_interval(secs => $6) \
                       AND dedup_key = $4 AND brand_id = $7) \
                 ON CONFLICT (brand_id, dedup_key) \
                     WHERE status IN ('pending', 'published', 'running') \
                 DO NOTHING",
                [
                    TaskId::new().into(),
                    JobKind::Ingest.as_str().into(),
                    platform.into(),
                    IngestStep::Platform.dedup_key(platform).into(),
                    new_trace_id().into(),
                    recent.as_secs_f64().into(),
                    brand.into(),
                ],
            ))
            .await?
            .rows_affected();
        if inserted > 0 {
            scheduled.push(platform);
        }
    }
    Ok(scheduled)
}

/// Schedules every enabled brand's platforms (of `platforms`) at once, then every `interval`
/// (looking every [`BRAND_CHECK`]), until `cancel` fires; with `push`, the platforms webhooks
/// cover are read only every safety interval ([`crate::ingest::push`]).
pub async fn run(
    db: &DatabaseConnection,
    platforms: &[Platform],
    interval: Duration,
    push: Option<PushPolling>,
    cancel: &CancellationToken,
) {
    let mut ticks = tokio::time::interval(tick(interval));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let watching = match brands::watching(db, platforms).await {
            Ok(watching) => watching,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the brands; scheduling at the next tick");
                continue;
            }
        };
        for watch in &watching {
            match schedule_tick(db, watch, interval, push).await {
                Ok(scheduled) if !scheduled.is_empty() => {
                    tracing::debug!(brand = %watch.brand, ?scheduled, "scheduled ingests");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(brand = %watch.brand, error = %e,
                    "cannot schedule ingests; trying at the next tick"),
            }
        }
    }
}

/// One brand's tick of [`run`]: the covered platforms at the safety interval, the others at
/// `interval`.
async fn schedule_tick(
    db: &DatabaseConnection,
    watch: &Watch,
    interval: Duration,
    push: Option<PushPolling>,
) -> Result<Vec<Platform>, DbErr> {
    let Some(push) = push else {
        return schedule_ingests(db, watch.brand, &watch.platforms, interval).await;
    };
    let covered = crate::ingest::push::covered(db, watch.brand, &watch.platforms, push).await?;
    let polled: Vec<Platform> = watch
        .platforms
        .iter()
        .copied()
        .filter(|p| !covered.contains(p))
        .collect();
    let mut scheduled = schedule_ingests(db, watch.brand, &polled, interval).await?;
    scheduled.extend(schedule_ingests(db, watch.brand, &covered, push.safety).await?);
    Ok(scheduled)
}
