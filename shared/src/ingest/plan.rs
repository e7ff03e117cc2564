//! The poll planner (runs in `api` beside the scheduler): which posts to re-read next.
//!
//! The budget's polling share, not a queue, is what limits reads, so the planner keeps only
//! a few comments fetches in flight (about [`LOOKAHEAD`] of the share's pace, at least two)
//! and, each [`TICK`], tops them up with the posts whose read is worth most now:
//!
//! - a post never read first (its first read is enqueued with the history, so this only
//!   catches up), and with it a post whose comment count in the latest history read
//!   (`posts.comments_hint`, where the network reports one: LinkedIn, Bluesky, X) rose since
//!   its last read began (`comments_hint_read`): it has comments we have not read;
//! - then by `(time since its last read) × √(rate + mean rate + 1 / (age + horizon))`: a
//!   post's comment rate is decayed over `POLL_RATE_HORIZON_SECONDS`; the mean rate of all
//!   watched posts is the prior of a post with little evidence of its own (it keeps quiet
//!   posts from waiting many times longer than the rest on the strength of one comment
//!   elsewhere, which bounds how stale any post gets), and the age term the prior when no post
//!   has comments ("one more comment in about its age"). In steady state every
//!   post is read when this product reaches a common threshold, so its interval is
//!   proportional to 1 / √rate: busy posts often, quiet and old ones rarely, and when the
//!   share is short the threshold rises and every interval stretches instead of some posts
//!   starving. This is the square-root rule that minimises the mean time a comment waits
//!   to be read (Σ λᵢ·Iᵢ/2 under Σ 1/Iᵢ = share) — between Cho & Garcia-Molina's uniform
//!   policy (best for freshness when change rates are unknown) and proportional-to-change
//!   (worst of the two), see the README;
//! - for a post whose count has not moved since its last read, the history confirmed there
//!   was nothing new, so the time it has been unknown counts from that history read, not from
//!   its last read: when the budget is short, such posts are read mostly when their count
//!   rises, and their share goes to the posts of networks that report no counts;
//! - never sooner than the provider's `nextUpdate` (`next_fetch_at`), since it would only
//!   read the same cached data.
//!
//! `POLL_POLICY=fifo` orders by due time instead (the earlier behaviour; a benchmark baseline).
//! Each brand is planned on its own, with its own fetches in flight (each has its own budget),
//! so one brand's backlog never delays another's reads. A transaction-scoped advisory lock
//! makes replicas plan one at a time, and the tasks' dedup key keeps a post from being fetched
//! twice at once.

use crate::brands::{self, Watch};
use crate::config::{PollPolicy, Settings};
use crate::domain::JobKind;
use crate::domain::{Platform, PostId};
use crate::ingest::push::PushPolling;
use crate::outbox::new_trace_id;
use crate::resilience::polling_pace;
use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, FromQueryResult, Statement,
    TransactionTrait,
};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the planner tops up the fetches in flight.
pub const TICK: Duration = Duration::from_secs(1);

/// How far ahead of the polling pace the fetches in flight reach.
pub const LOOKAHEAD: Duration = Duration::from_secs(4);

/// The most comments fetches kept in flight, however large the budget.
const MAX_IN_FLIGHT: u32 = 256;

/// Advisory lock held while a replica plans.
const PLAN_LOCK_KEY: i64 = 0x534d_504c_414e; // "SMPLAN"

/// What the planner needs to know.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanSettings {
    /// How to order the due posts.
    pub policy: PollPolicy,
    /// The comment rate's averaging time, and the age prior's offset.
    pub horizon: Duration,
    /// Posts created within this many days are read (0: all).
    pub last_days: u32,
    /// Platforms to read (a brand reads those of them it watches).
    pub platforms: Vec<Platform>,
    /// Comments fetches kept in flight, per brand.
    pub in_flight: u32,
    /// With webhooks: posts of the platforms they cover are read again only every safety
    /// interval ([`crate::ingest::push`]); first reads stay as they are.
    pub push: Option<PushPolling>,
}

impl PlanSettings {
    /// The planner of a process with `settings`.
    pub fn from_settings(settings: &Settings) -> PlanSettings {
        let pace = polling_pace(&settings.resilience);
        let in_flight = (pace * LOOKAHEAD.as_secs_f64())
            .ceil()
            .clamp(2.0, f64::from(MAX_IN_FLIGHT));
        PlanSettings {
            policy: settings.poll_policy,
            horizon: settings.poll_rate_horizon,
            last_days: settings.history_last_days,
            platforms: settings.platforms.clone(),
            in_flight: in_flight as u32,
            push: settings.webhooks.secret.as_ref().map(|_| PushPolling {
                safety: settings.webhooks.safety_poll,
                quiet: settings.webhooks.quiet,
                check: settings.webhooks.check,
            }),
        }
    }
}

/// A post the planner would read, best first.
#[derive(Debug, Clone, PartialEq, FromQueryResult)]
pub struct PlannedRead {
    /// The `posts` row.
    pub post_id: PostId,
    pub platform: Platform,
    /// Never read yet.
    pub first_read: bool,
    /// The history's comment count says it has comments not read yet.
    pub hinted: bool,
    /// The value of reading it now (infinite for a first or hinted read; seconds overdue
    /// under FIFO).
    pub score: f64,
    /// Not to be read before (the provider's `nextUpdate`).
    pub not_before: DateTime<Utc>,
}

// $1 now, $2 horizon in seconds, $3 platforms (comma list), $4 last days (0: all), $5 limit,
// $6 FIFO, $7 platforms covered by webhooks (comma list), $8 their safety interval in seconds,
// $9 the brand. The mean rate is over every watched post of the brand; posts with an active
// fetch are left out.
// A post whose history count rose since its last read ranks with the first reads; for one
// whose count has not moved, the time since the history said so replaces the time since its
// last read (not under FIFO, the baseline without hints).
const SCORED: &str = "\
    WITH watched AS ( \
        SELECT p.id, p.platform, p.last_fetched_at, p.next_fetch_at, \
               coalesce(p.post_created_at, p.created_at) AS born, \
               coalesce(p.comments_hint > p.comments_hint_read, false) AS hinted, \
               CASE WHEN p.comments_hint = p.comments_hint_read \
                    THEN greatest(p.last_fetched_at, p.comments_hint_at) \
                    ELSE p.last_fetched_at END AS known_at, \
               p.comment_rate * exp(-greatest(0, extract(epoch FROM \
                   $1 - coalesce(p.comment_rate_at, $1)))::float8 / $2) AS rate \
        FROM posts p \
        WHERE p.brand_id = $9 AND p.platform = ANY(string_to_array($3, ',')) \
          AND ($4 = 0 OR p.post_created_at IS NULL \
               OR p.post_created_at >= $1 - make_interval(days => $4)) \
          AND (p.last_fetched_at IS NULL OR p.platform <> ALL(string_to_array($7, ',')) \
               OR p.last_fetched_at < $1 - make_interval(secs => $8))), \
    mean AS (SELECT coalesce(avg(rate), 0) AS rate FROM watched) \
    SELECT w.id AS post_id, w.platform, w.last_fetched_at IS NULL AS first_read, w.hinted, \
           w.next_fetch_at AS not_before, \
           CASE WHEN w.last_fetched_at IS NULL THEN 'Infinity'::float8 \
                WHEN $6 THEN extract(epoch FROM $1 - w.next_fetch_at)::float8 \
                WHEN w.hinted THEN 'Infinity'::float8 \
                ELSE greatest(0, extract(epoch FROM $1 - w.known_at))::float8 \
                     * sqrt(w.rate + mean.rate \
                            + 1.0 / (greatest(0, extract(epoch FROM $1 - w.born))::float8 + $2)) \
           END AS score \
    FROM watched w, mean \
    WHERE w.next_fetch_at <= $1 \
      AND NOT EXISTS (SELECT 1 FROM tasks t \
                      WHERE t.brand_id = $9 AND t.dedup_key = 'comments:' || w.id::text \
                        AND t.status IN ('pending', 'published', 'running')) \
    ORDER BY score DESC, w.next_fetch_at \
    LIMIT $5";

fn scored(
    sql: &str,
    plan: &PlanSettings,
    watch: &Watch,
    covered: &[Platform],
    now: DateTime<Utc>,
    limit: u32,
) -> Statement {
    let platforms: Vec<&str> = watch.platforms.iter().map(|p| p.as_str()).collect();
    let covered: Vec<&str> = covered.iter().map(|p| p.as_str()).collect();
    let safety = plan.push.map_or(0.0, |push| push.safety.as_secs_f64());
    Statement::from_sql_and_values(
        DbBackend::Postgres,
        sql,
        [
            now.into(),
            plan.horizon.as_secs_f64().into(),
            platforms.join(",").into(),
            i32::try_from(plan.last_days).unwrap_or(i32::MAX).into(),
            i64::from(limit).into(),
            (plan.policy == PollPolicy::Fifo).into(),
            covered.join(",").into(),
            safety.into(),
            watch.brand.into(),
        ],
    )
}

/// The platforms of `watch` webhooks cover now (none without webhooks).
async fn covered(
    conn: &impl ConnectionTrait,
    plan: &PlanSettings,
    watch: &Watch,
) -> Result<Vec<Platform>, DbErr> {
    match plan.push {
        Some(push) => super::push::covered(conn, watch.brand, &watch.platforms, push).await,
        None => Ok(Vec::new()),
    }
}

/// The `limit` posts of `watch` due at `now` that are worth reading most, best first.
pub async fn next_reads(
    conn: &impl ConnectionTrait,
    plan: &PlanSettings,
    watch: &Watch,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<PlannedRead>, DbErr> {
    let covered = covered(conn, plan, watch).await?;
    PlannedRead::find_by_statement(scored(SCORED, plan, watch, &covered, now, limit))
        .all(conn)
        .await
}

/// Tops the comments fetches in flight of `watch`'s brand up to `plan.in_flight` with the best
/// [`next_reads`]; returns how many were enqueued.
pub async fn enqueue_reads(
    db: &DatabaseConnection,
    plan: &PlanSettings,
    watch: &Watch,
) -> Result<u64, DbErr> {
    let txn = db.begin().await?;
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_advisory_xact_lock($1)",
        [PLAN_LOCK_KEY.into()],
    ))
    .await?;
    let active: i64 = txn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT count(*) AS n FROM tasks \
             WHERE status IN ('pending', 'published', 'running') AND kind = 'ingest' \
               AND brand_id = $1 AND dedup_key LIKE 'comments:%'",
            [watch.brand.into()],
        ))
        .await?
        .map_or(Ok(0), |row| row.try_get("", "n"))?;
    let room = i64::from(plan.in_flight) - active;
    if room <= 0 {
        txn.commit().await?;
        return Ok(0);
    }
    let insert = format!(
        "WITH picked AS ({SCORED}) \
         INSERT INTO tasks (id, brand_id, kind, platform, subject_id, dedup_key, payload, \
                            trace_id) \
         SELECT gen_random_uuid(), $9, $10, platform, post_id, 'comments:' || post_id::text, \
                jsonb_build_object('step', 'comments', 'postId', post_id), $11 \
         FROM picked \
         ON CONFLICT (brand_id, dedup_key) WHERE status IN ('pending', 'published', 'running') \
         DO NOTHING"
    );
    let covered = covered(&txn, plan, watch).await?;
    let limit = room.unsigned_abs() as u32;
    let mut statement = scored(&insert, plan, watch, &covered, Utc::now(), limit);
    if let Some(values) = statement.values.as_mut() {
        values.0.push(JobKind::Ingest.as_str().into());
        values.0.push(new_trace_id().into());
    }
    let enqueued = txn.execute_raw(statement).await?.rows_affected();
    txn.commit().await?;
    Ok(enqueued)
}

/// A post's comment rate (per second) after a read at `now` that found new comments posted
/// at `posted` (`None`: now): the rate `rate` of `rate_at`, decayed over `horizon`, plus each
/// new comment weighted by how recent it is, so a first read of old comments counts little.
pub fn updated_rate(
    rate: f64,
    rate_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    posted: &[Option<DateTime<Utc>>],
    horizon: Duration,
) -> f64 {
    let h = horizon.as_secs_f64().max(1.0);
    let age = |t: DateTime<Utc>| (now - t).to_std().unwrap_or_default().as_secs_f64();
    let kept = rate * (-rate_at.map_or(0.0, age) / h).exp();
    let added: f64 = posted.iter().map(|t| (-t.map_or(0.0, age) / h).exp()).sum();
    kept + added / h
}

/// Plans every enabled brand every [`TICK`] until `cancel` fires.
pub async fn run(db: &DatabaseConnection, plan: &PlanSettings, cancel: &CancellationToken) {
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let watching = match brands::watching(db, &plan.platforms).await {
            Ok(watching) => watching,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the brands; planning at the next tick");
                continue;
            }
        };
        for watch in &watching {
            match enqueue_reads(db, plan, watch).await {
                Ok(0) => {}
                Ok(enqueued) => {
                    tracing::debug!(brand = %watch.brand, enqueued, "planned comments reads")
                }
                Err(e) => tracing::warn!(brand = %watch.brand, error = %e,
                    "cannot plan reads; trying at the next tick"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::updated_rate;
    use chrono::{TimeDelta, Utc};
    use std::time::Duration;

    #[test]
    fn the_rate_decays_over_the_horizon_and_recent_comments_count_more_than_old_ones() {
        let now = Utc::now();
        let hour = Duration::from_secs(3_600);
        let ago = |s: i64| Some(now - TimeDelta::seconds(s));
        let fresh = updated_rate(0.0, None, now, &[None, ago(0)], hour);
        assert!((fresh - 2.0 / 3_600.0).abs() < 1e-12, "{fresh}");
        let old = updated_rate(0.0, None, now, &[ago(86_400)], hour);
        assert!(old < 1e-12, "a day-old comment hardly counts: {old}");
        let decayed = updated_rate(1.0, ago(3_600), now, &[], hour);
        assert!((decayed - (-1.0f64).exp()).abs() < 1e-12, "{decayed}");
    }
}
