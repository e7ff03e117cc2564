//! Running pending work to completion, deterministically (tests, tools).

use crate::outbox::{Relay, RelayError};
use crate::worker::{Worker, WorkerError};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use std::time::Duration;
use tokio::time::Instant;

/// Longest nap between two passes while work is in flight elsewhere.
const NAP: Duration = Duration::from_millis(25);

/// Why [`run_to_completion`] stopped early.
#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    /// Tasks were still active when the time ran out.
    #[error("{active} tasks still active after {waited:?}")]
    Timeout {
        /// Pending, published or running tasks left.
        active: i64,
        /// How long it tried.
        waited: Duration,
    },
    /// The relay failed.
    #[error(transparent)]
    Relay(#[from] RelayError),
    /// A worker failed.
    #[error(transparent)]
    Worker(#[from] WorkerError),
    /// The database failed.
    #[error("database error: {0}")]
    Db(#[from] DbErr),
}

/// Publishes and runs tasks until none is pending, published or running, including tasks the
/// jobs enqueue and retries that fall due within `timeout` (it waits for them). `workers`
/// should cover every kind of task in the database, or the remaining ones keep it waiting
/// until `timeout`. Returns the number of deliveries handled.
pub async fn run_to_completion(
    db: &DatabaseConnection,
    relay: &Relay,
    workers: &[&Worker],
    timeout: Duration,
) -> Result<usize, DrainError> {
    let started = Instant::now();
    let deadline = started + timeout;
    let mut handled = 0;
    loop {
        let published = relay.publish_due().await?;
        let mut ran = 0;
        for worker in workers {
            ran += worker.run_pending().await?;
        }
        handled += ran;
        if published + ran > 0 {
            continue;
        }
        let (active, next_due) = active_tasks(db).await?;
        if active == 0 {
            return Ok(handled);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(DrainError::Timeout {
                active,
                waited: started.elapsed(),
            });
        }
        // Nothing to do right now: a retry falls due later, or work is in flight elsewhere.
        let nap = next_due.map_or(NAP, |due| due.max(NAP));
        tokio::time::sleep(nap.min(deadline - now)).await;
    }
}

/// Active tasks, and how long until the next pending one falls due (if any is pending).
async fn active_tasks(db: &DatabaseConnection) -> Result<(i64, Option<Duration>), DbErr> {
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*) AS active, \
                    EXTRACT(EPOCH FROM min(available_at) FILTER (WHERE status = 'pending') \
                                       - now())::float8 AS next_due \
             FROM tasks WHERE status IN ('pending', 'published', 'running')",
        ))
        .await?;
    let Some(row) = row else {
        return Ok((0, None));
    };
    let active: i64 = row.try_get("", "active")?;
    let next_due: Option<f64> = row.try_get("", "next_due")?;
    Ok((
        active,
        next_due.map(|secs| Duration::from_secs_f64(secs.max(0.0))),
    ))
}
