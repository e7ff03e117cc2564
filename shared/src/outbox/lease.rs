//! A task's life once a worker has its message: the claim, the lease while the job runs, and
//! the end state it records ([`record`]). Every transition after the claim is fenced by the
//! lease (`status = 'running' AND lease_owner = <me>`): it returns whether it still applied,
//! and a worker that lost its lease changes nothing.

use crate::audit::{self, Actor, Entry, entity};
use crate::db::entities::tasks;
use crate::domain::{TaskId, TaskStatus};
use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, Statement,
    TransactionTrait, Value,
};
use serde_json::json;
use std::time::Duration;

const FENCE: &str = "id = $1 AND status = 'running' AND lease_owner = $2";

fn millis(elapsed: Duration) -> i64 {
    i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
}

async fn fenced(
    conn: &impl ConnectionTrait,
    set: &str,
    id: TaskId,
    owner: &str,
    extra: Vec<Value>,
) -> Result<bool, DbErr> {
    let mut values: Vec<Value> = vec![id.into(), owner.into()];
    values.extend(extra);
    let sql = format!("UPDATE tasks SET {set} WHERE {FENCE}");
    let result = conn
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Claims the task for `owner` if it is waiting for a worker: `published`, or `pending` and
/// due (a message for a task the sweeper handed back). Returns the claimed row.
pub(crate) async fn claim(
    conn: &impl ConnectionTrait,
    id: TaskId,
    owner: &str,
    lease: Duration,
) -> Result<Option<tasks::Model>, DbErr> {
    tasks::Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE tasks SET status = 'running', lease_owner = $2, \
                 lease_until = now() + make_interval(secs => $3), attempts = attempts + 1, \
                 started_at = now(), finished_at = NULL, duration_ms = NULL \
             WHERE id = $1 AND (status = 'published' \
                                OR (status = 'pending' AND available_at <= now())) \
             RETURNING *",
            [id.into(), owner.into(), lease.as_secs_f64().into()],
        ))
        .one(conn)
        .await
}

/// Extends the lease; `false` if it was lost.
pub(crate) async fn renew(
    conn: &impl ConnectionTrait,
    id: TaskId,
    owner: &str,
    lease: Duration,
) -> Result<bool, DbErr> {
    fenced(
        conn,
        "lease_until = now() + make_interval(secs => $3)",
        id,
        owner,
        vec![lease.as_secs_f64().into()],
    )
    .await
}

/// Hands the task back unfinished (shutdown): `published` again, as its message is requeued,
/// and the attempt does not count.
pub(crate) async fn release(
    conn: &impl ConnectionTrait,
    id: TaskId,
    owner: &str,
) -> Result<bool, DbErr> {
    fenced(
        conn,
        "status = 'published', published_at = now(), attempts = GREATEST(attempts - 1, 0), \
         lease_owner = NULL, lease_until = NULL",
        id,
        owner,
        vec![],
    )
    .await
}

/// How a run ends, as its task records it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum End {
    Succeeded,
    /// `pending` again at `at` with `reason` as the last error; `counted: false` gives the
    /// attempt back (a deferral).
    Retry {
        at: DateTime<Utc>,
        reason: String,
        counted: bool,
    },
    /// `failed` or `dead` with `reason`.
    GiveUp {
        status: TaskStatus,
        reason: String,
    },
}

/// Records `end` on `task`, run by `owner` for `elapsed` (audited as `system:<actor>` when it
/// gives up); whether the lease still held.
pub(crate) async fn record(
    db: &DatabaseConnection,
    task: &tasks::Model,
    owner: &str,
    end: &End,
    elapsed: Duration,
    actor: &str,
) -> Result<bool, DbErr> {
    match end {
        End::Succeeded => mark_succeeded(db, task.id, owner, elapsed).await,
        End::Retry {
            at,
            reason,
            counted,
        } => reschedule(db, task.id, owner, *at, reason, *counted, elapsed).await,
        End::GiveUp { status, reason } => {
            give_up(db, task, owner, *status, reason, elapsed, actor).await
        }
    }
}

pub(crate) async fn mark_succeeded(
    conn: &impl ConnectionTrait,
    id: TaskId,
    owner: &str,
    elapsed: Duration,
) -> Result<bool, DbErr> {
    fenced(
        conn,
        "status = 'succeeded', finished_at = now(), duration_ms = $3, \
         lease_owner = NULL, lease_until = NULL",
        id,
        owner,
        vec![millis(elapsed).into()],
    )
    .await
}

/// `pending` again at `at` with `reason` as the last error; `counted = false` gives the
/// attempt back (deferred, open breaker).
async fn reschedule(
    conn: &impl ConnectionTrait,
    id: TaskId,
    owner: &str,
    at: DateTime<Utc>,
    reason: &str,
    counted: bool,
    elapsed: Duration,
) -> Result<bool, DbErr> {
    let attempts = if counted {
        "attempts"
    } else {
        "GREATEST(attempts - 1, 0)"
    };
    fenced(
        conn,
        &format!(
            "status = 'pending', available_at = $3, last_error = $4, attempts = {attempts}, \
             duration_ms = $5, lease_owner = NULL, lease_until = NULL"
        ),
        id,
        owner,
        vec![at.into(), reason.into(), millis(elapsed).into()],
    )
    .await
}

/// `failed` or `dead` with `reason`, and an audit row (`task.failed` / `task.dead`) in the same
/// transaction.
async fn give_up(
    db: &DatabaseConnection,
    task: &tasks::Model,
    owner: &str,
    status: TaskStatus,
    reason: &str,
    elapsed: Duration,
    actor: &str,
) -> Result<bool, DbErr> {
    let txn = db.begin().await?;
    let applied = fenced(
        &txn,
        "status = $3, last_error = $4, finished_at = now(), duration_ms = $5, \
         lease_owner = NULL, lease_until = NULL",
        task.id,
        owner,
        vec![status.into(), reason.into(), millis(elapsed).into()],
    )
    .await?;
    if !applied {
        txn.rollback().await?;
        return Ok(false);
    }
    let action = if status == TaskStatus::Dead {
        "task.dead"
    } else {
        "task.failed"
    };
    audit::append(
        &txn,
        Entry::new(Actor::system(actor), action, entity::TASK, task.id).with_payload(json!({
            "kind": task.kind,
            "platform": task.platform,
            "attempts": task.attempts,
            "lastError": reason,
        })),
    )
    .await?;
    txn.commit().await?;
    Ok(true)
}
