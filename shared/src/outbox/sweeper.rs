//! The sweeper: the eventual-consistency path after crashes (DESIGN §5).
//!
//! - A `running` task whose lease expired lost its worker: it goes back to `pending` (the
//!   attempt it was on counts), or to `dead` if that was its last attempt.
//! - A `published` task that no worker picked up within the timeout may have lost its message
//!   (purged, dead-lettered, a broker that lost its data), or the message may only be waiting
//!   in a long queue. The sweeper compares with the queue: of the `n` tasks published to it,
//!   at most `n` − (messages ready in it) can have lost their message, and only that many of
//!   the stale ones (the oldest first) go back to `pending`, so the relay publishes them again.
//!   A queue whose depth cannot be read (broker unreachable) is left for the next sweep. A
//!   duplicate message is harmless: the consumer claims the row, not the message.
//!
//! - An idempotency key older than its time to live (`IDEMPOTENCY_KEY_TTL_SECONDS`) is purged
//!   (DESIGN §3: expired keys are purged).
//!
//! Every statement works on bounded batches with `SKIP LOCKED`, so several sweepers (one per
//! api replica) can run at once.

use crate::audit::{self, Actor, Entry};
use crate::bus;
use crate::db::idempotency;
use crate::domain::JobKind;
use crate::domain::{Platform, TaskId};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, FromQueryResult, Statement,
    TransactionTrait,
};
use secrecy::SecretString;
use serde_json::json;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Tasks the sweeper handed back, by reason (`dead`, `lease_expired`, `republished`).
pub const SWEPT_METRIC: &str = "outbox_swept_total";
/// Expired idempotency keys deleted.
pub const PURGED_METRIC: &str = "idempotency_keys_purged_total";

/// How long a webhook delivery's id is kept to recognise it delivered again: twice the day the
/// provider may keep retrying.
pub const WEBHOOK_DELIVERY_TTL: Duration = Duration::from_secs(48 * 3600);

/// Rows changed per statement; the sweeper repeats a statement while batches come back full.
const BATCH: u64 = 500;

/// What one sweep changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Tasks whose worker died on their last attempt, now `dead`.
    pub dead: u64,
    /// Tasks whose worker died, back to `pending`.
    pub lease_expired: u64,
    /// `published` tasks nobody picked up, back to `pending` to be published again.
    pub republished: u64,
    /// `published` tasks past the timeout left as they are because their queue's depth could
    /// not be read.
    pub unchecked: u64,
    /// Expired idempotency keys deleted.
    pub idempotency_keys_purged: u64,
    /// Webhook delivery ids older than [`WEBHOOK_DELIVERY_TTL`] deleted.
    pub webhook_deliveries_purged: u64,
}

impl SweepReport {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        *self == SweepReport::default()
    }
}

/// How the sweeper runs.
#[derive(Debug, Clone)]
pub struct SweeperConfig {
    /// Time between sweeps.
    pub interval: Duration,
    /// A `published` task older than this is published again.
    pub published_timeout: Duration,
    /// The workers' attempt limit (`TASK_MAX_ATTEMPTS`), applied with each task's own.
    pub max_attempts: u32,
    /// The process, for the audit actor `system:<name>`.
    pub process_name: String,
    /// Idempotency keys older than this are purged.
    pub idempotency_key_ttl: Duration,
}

#[derive(FromQueryResult)]
struct DeadRow {
    id: uuid::Uuid,
    kind: String,
    platform: String,
    attempts: i32,
    last_error: Option<String>,
}

#[derive(FromQueryResult)]
struct StaleQueue {
    kind: String,
    platform: String,
    n: i64,
}

/// One sweep (see the module documentation); queue depths are read through `broker`.
pub async fn sweep(
    db: &DatabaseConnection,
    config: &SweeperConfig,
    broker: &mut bus::Link,
) -> Result<SweepReport, DbErr> {
    let mut report = SweepReport::default();
    loop {
        let dead = expire_last_attempts(db, config).await?;
        report.dead += dead;
        if dead < BATCH {
            break;
        }
    }
    loop {
        let n = db
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "UPDATE tasks SET status = 'pending', available_at = now(), \
                     last_error = format('the lease of %s expired during attempt %s \
                                          (the worker stopped or hung)', lease_owner, attempts), \
                     lease_owner = NULL, lease_until = NULL \
                 WHERE id IN (SELECT id FROM tasks \
                              WHERE status = 'running' AND lease_until < now() \
                              ORDER BY lease_until LIMIT $1 FOR UPDATE SKIP LOCKED)",
                [BATCH.into()],
            ))
            .await?
            .rows_affected();
        report.lease_expired += n;
        if n < BATCH {
            break;
        }
    }
    let (republished, unchecked) = republish_lost(db, config, broker).await?;
    report.republished = republished;
    report.unchecked = unchecked;
    loop {
        let n = idempotency::purge_expired(db, config.idempotency_key_ttl, BATCH).await?;
        report.idempotency_keys_purged += n;
        if n < BATCH {
            break;
        }
    }
    loop {
        let n = db
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "DELETE FROM webhook_deliveries WHERE (brand_id, id) IN \
                 (SELECT brand_id, id FROM webhook_deliveries \
                  WHERE received_at < now() - make_interval(secs => $1) \
                  ORDER BY received_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
                [WEBHOOK_DELIVERY_TTL.as_secs_f64().into(), BATCH.into()],
            ))
            .await?
            .rows_affected();
        report.webhook_deliveries_purged += n;
        if n < BATCH {
            break;
        }
    }
    Ok(report)
}

/// Hands back to the relay the stale `published` tasks whose message may be lost, queue by
/// queue: (republished, left unchecked).
async fn republish_lost(
    db: &DatabaseConnection,
    config: &SweeperConfig,
    broker: &mut bus::Link,
) -> Result<(u64, u64), DbErr> {
    let timeout = config.published_timeout.as_secs_f64();
    let stale = StaleQueue::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT kind, platform, count(*) AS n FROM tasks \
         WHERE status = 'published' AND published_at < now() - make_interval(secs => $1) \
         GROUP BY kind, platform",
        [timeout.into()],
    ))
    .all(db)
    .await?;
    let queues: Vec<(JobKind, Platform)> = stale
        .iter()
        .filter_map(|q| Some((q.kind.parse().ok()?, q.platform.parse().ok()?)))
        .collect();
    let total_stale = stale.iter().map(|q| q.n.unsigned_abs()).sum();
    if queues.is_empty() {
        return Ok((0, total_stale));
    }
    let Some(connection) = broker.connection().await else {
        return Ok((0, total_stale));
    };
    let depths = match bus::queue_depths(connection, &queues).await {
        Ok(depths) => depths,
        Err(e) => {
            tracing::debug!(error = %e, "cannot read queue depths; republishing nothing");
            broker.broken();
            return Ok((0, total_stale));
        }
    };
    let mut republished = 0;
    for ((kind, platform), ready) in depths {
        loop {
            let n = db
                .execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "WITH published AS (SELECT count(*) AS n FROM tasks \
                                        WHERE status = 'published' \
                                          AND kind = $1 AND platform = $2) \
                     UPDATE tasks SET status = 'pending', available_at = now() \
                     WHERE id IN (SELECT id FROM tasks \
                                  WHERE status = 'published' AND kind = $1 AND platform = $2 \
                                    AND published_at < now() - make_interval(secs => $3) \
                                  ORDER BY published_at \
                                  LIMIT LEAST($4, GREATEST(0, (SELECT n FROM published) - $5)) \
                                  FOR UPDATE SKIP LOCKED)",
                    [
                        kind.as_str().into(),
                        platform.as_str().into(),
                        timeout.into(),
                        BATCH.into(),
                        i64::from(ready).into(),
                    ],
                ))
                .await?
                .rows_affected();
            republished += n;
            if n < BATCH {
                break;
            }
        }
    }
    Ok((republished, 0))
}

/// Marks `dead` the expired tasks that were on their last attempt, with an audit row each, in
/// one transaction; returns how many.
async fn expire_last_attempts(
    db: &DatabaseConnection,
    config: &SweeperConfig,
) -> Result<u64, DbErr> {
    let txn = db.begin().await?;
    let rows = DeadRow::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "UPDATE tasks SET status = 'dead', finished_at = now(), \
             last_error = format('the lease of %s expired during attempt %s, the last one \
                                  (the worker stopped or hung)', lease_owner, attempts), \
             lease_owner = NULL, lease_until = NULL \
         WHERE id IN (SELECT id FROM tasks \
                      WHERE status = 'running' AND lease_until < now() \
                        AND attempts >= LEAST(max_attempts, $2) \
                      ORDER BY lease_until LIMIT $1 FOR UPDATE SKIP LOCKED) \
         RETURNING id, kind, platform, attempts, last_error",
        [BATCH.into(), i64::from(config.max_attempts).into()],
    ))
    .all(&txn)
    .await?;
    for row in &rows {
        audit::append(
            &txn,
            Entry::new(
                Actor::system(config.process_name.clone()),
                "task.dead",
                "task",
                TaskId(row.id),
            )
            .with_payload(json!({
                "kind": row.kind,
                "platform": row.platform,
                "attempts": row.attempts,
                "lastError": row.last_error,
            })),
        )
        .await?;
    }
    txn.commit().await?;
    for row in &rows {
        tracing::warn!(task_id = %row.id, kind = %row.kind, platform = %row.platform, "task dead: its worker stopped on the last attempt");
    }
    Ok(rows.len() as u64)
}

/// Sweeps every `config.interval` until `cancel` fires, reading queue depths from the broker at
/// `amqp_url`. A failed sweep (database down) is logged and simply tried again at the next
/// interval.
pub async fn run(
    db: &DatabaseConnection,
    config: &SweeperConfig,
    amqp_url: &SecretString,
    cancel: &CancellationToken,
) {
    let mut broker = bus::Link::new(amqp_url, &format!("{} sweeper", config.process_name));
    loop {
        match sweep(db, config, &mut broker).await {
            Ok(report) => {
                if report.dead + report.lease_expired + report.republished > 0 {
                    tracing::info!(
                        dead = report.dead,
                        lease_expired = report.lease_expired,
                        republished = report.republished,
                        "sweeper handed tasks back"
                    );
                    metrics::counter!(SWEPT_METRIC, "reason" => "dead").increment(report.dead);
                    metrics::counter!(SWEPT_METRIC, "reason" => "lease_expired")
                        .increment(report.lease_expired);
                    metrics::counter!(SWEPT_METRIC, "reason" => "republished")
                        .increment(report.republished);
                }
                if report.idempotency_keys_purged > 0 {
                    tracing::info!(
                        purged = report.idempotency_keys_purged,
                        "sweeper purged expired idempotency keys"
                    );
                    metrics::counter!(PURGED_METRIC).increment(report.idempotency_keys_purged);
                }
            }
            Err(e) => tracing::warn!(error = %e, retry_in = ?config.interval, "sweep failed"),
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(config.interval) => {}
        }
    }
    broker.close("sweeper stopping").await;
}
