//! Gauges of background work, refreshed periodically (runs in `api`):
//!
//! - `outbox_tasks{kind, status}`: tasks by kind and status;
//! - `outbox_relay_lag_seconds`: age of the oldest due pending task (0 when none is waiting);
//! - `jobs_queue_depth{queue}`: messages ready in each job queue (a passive declaration).
//!
//! Counters are recorded where things happen: `outbox_published_total{kind, platform}` by the
//! relay, `worker_tasks_total{kind, outcome}` and `worker_task_duration_seconds{kind}` by the
//! workers, `outbox_swept_total{reason}` by the sweeper.

use crate::bus;
use crate::domain::JobKind;
use crate::domain::{Platform, TaskStatus};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, FromQueryResult, Statement};
use secrecy::SecretString;
use std::collections::HashMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Tasks by kind and status.
pub const TASKS_METRIC: &str = "outbox_tasks";
/// Age of the oldest due pending task.
pub const RELAY_LAG_METRIC: &str = "outbox_relay_lag_seconds";
/// Messages waiting in each queue.
pub const QUEUE_DEPTH_METRIC: &str = "jobs_queue_depth";

/// How often the gauges are refreshed.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(15);

#[derive(FromQueryResult)]
struct Count {
    kind: String,
    status: String,
    n: i64,
}

/// Sets `outbox_tasks` and `outbox_relay_lag_seconds` from the database.
pub async fn refresh_task_gauges(conn: &impl ConnectionTrait) -> Result<(), DbErr> {
    let counts = Count::find_by_statement(Statement::from_string(
        DbBackend::Postgres,
        "SELECT kind, status, count(*) AS n FROM tasks GROUP BY kind, status",
    ))
    .all(conn)
    .await?;
    let mut by_key: HashMap<(String, String), i64> = counts
        .into_iter()
        .map(|c| ((c.kind, c.status), c.n))
        .collect();
    // Known combinations are always set, so a gauge drops to 0 instead of keeping its last
    // value when the last task of that kind and status moves on.
    for kind in JobKind::ALL {
        for status in TaskStatus::ALL {
            by_key
                .entry((kind.as_str().to_owned(), status.as_str().to_owned()))
                .or_insert(0);
        }
    }
    for ((kind, status), n) in by_key {
        metrics::gauge!(TASKS_METRIC, "kind" => kind, "status" => status).set(n as f64);
    }

    let lag = conn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(available_at)), 0)::float8 AS lag \
             FROM tasks WHERE status = 'pending' AND available_at <= now()",
        ))
        .await?
        .map(|row| row.try_get::<f64>("", "lag"))
        .transpose()?
        .unwrap_or(0.0);
    metrics::gauge!(RELAY_LAG_METRIC).set(lag.max(0.0));
    Ok(())
}

/// Sets [`QUEUE_DEPTH_METRIC`] for the queues of `platforms`, on an open connection.
pub async fn refresh_queue_depths(
    connection: &lapin::Connection,
    platforms: &[Platform],
) -> Result<(), lapin::Error> {
    let queues: Vec<(JobKind, Platform)> = JobKind::ALL
        .iter()
        .copied()
        .flat_map(|kind| platforms.iter().map(move |&platform| (kind, platform)))
        .collect();
    for ((kind, platform), depth) in bus::queue_depths(connection, &queues).await? {
        metrics::gauge!(QUEUE_DEPTH_METRIC, "queue" => bus::routing_key(kind, platform))
            .set(f64::from(depth));
    }
    Ok(())
}

/// Refreshes every gauge each [`REFRESH_INTERVAL`] until `cancel` fires; keeps its own
/// broker connection, reopened after a failure.
pub async fn run(
    db: &DatabaseConnection,
    amqp_url: &SecretString,
    platforms: &[Platform],
    cancel: &CancellationToken,
) {
    let mut broker = bus::Link::new(amqp_url, "monitor");
    loop {
        if let Err(e) = refresh_task_gauges(db).await {
            tracing::debug!(error = %e, "cannot refresh task gauges");
        }
        if let Some(connection) = broker.connection().await
            && let Err(e) = refresh_queue_depths(connection, platforms).await
        {
            tracing::debug!(error = %e, "cannot read queue depths");
            broker.broken();
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(REFRESH_INTERVAL) => {}
        }
    }
    broker.close("monitor stopping").await;
}
