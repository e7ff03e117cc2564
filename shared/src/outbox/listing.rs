//! Queries on `tasks` for people: the filtered list of background work (newest first, keyset
//! pagination) and the manual retry of a task that ended `dead` or `failed`.

use crate::db::entities::tasks;
use crate::domain::{Platform, TaskId, TaskStatus};
use chrono::{DateTime, FixedOffset, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};

/// Which tasks to list; empty lists mean "any".
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    pub statuses: Vec<TaskStatus>,
    /// Kinds (`ingest`, `reply`, …).
    pub kinds: Vec<String>,
    pub platforms: Vec<Platform>,
}

/// Position after the last task of a page: its (`created_at`, `id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskCursor {
    /// `created_at` of the last task shown.
    pub created_at: DateTime<FixedOffset>,
    /// `id` of the last task shown.
    pub id: TaskId,
}

/// Up to `limit` tasks matching `filter`, newest first, after `after` when given.
pub async fn list(
    conn: &impl ConnectionTrait,
    filter: &TaskFilter,
    after: Option<TaskCursor>,
    limit: u64,
) -> Result<Vec<tasks::Model>, DbErr> {
    let mut query = tasks::Entity::find();
    if !filter.statuses.is_empty() {
        query = query.filter(tasks::Column::Status.is_in(filter.statuses.iter().copied()));
    }
    if !filter.kinds.is_empty() {
        query = query.filter(tasks::Column::Kind.is_in(filter.kinds.iter().cloned()));
    }
    if !filter.platforms.is_empty() {
        query = query.filter(tasks::Column::Platform.is_in(filter.platforms.iter().copied()));
    }
    if let Some(cursor) = after {
        query = query.filter(
            Condition::any()
                .add(tasks::Column::CreatedAt.lt(cursor.created_at))
                .add(
                    Condition::all()
                        .add(tasks::Column::CreatedAt.eq(cursor.created_at))
                        .add(tasks::Column::Id.lt(cursor.id)),
                ),
        );
    }
    query
        .order_by_desc(tasks::Column::CreatedAt)
        .order_by_desc(tasks::Column::Id)
        .limit(limit)
        .all(conn)
        .await
}

/// What a retry did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryOutcome {
    /// The task is `pending` again; `previous` is the row as it was.
    Retried {
        /// The task now.
        task: Box<tasks::Model>,
        /// The task before the retry (its status and last error).
        previous: Box<tasks::Model>,
    },
    /// Only `dead` and `failed` tasks can be retried.
    NotRetryable(TaskStatus),
    /// No task has this id.
    NotFound,
}

/// Puts a `dead` or `failed` task back to `pending`: attempts reset, due now, lease, timings
/// and last error cleared (the caller records the previous error in the audit trail). Call it
/// inside a transaction. If another active task holds the same dedup key, the partial unique
/// index `tasks_active_dedup_key` refuses the update with a unique violation.
pub async fn retry(conn: &impl ConnectionTrait, id: TaskId) -> Result<RetryOutcome, DbErr> {
    let Some(previous) = tasks::Entity::find_by_id(id)
        .lock_exclusive()
        .one(conn)
        .await?
    else {
        return Ok(RetryOutcome::NotFound);
    };
    if !matches!(previous.status, TaskStatus::Dead | TaskStatus::Failed) {
        return Ok(RetryOutcome::NotRetryable(previous.status));
    }
    let mut row: tasks::ActiveModel = previous.clone().into();
    row.status = Set(TaskStatus::Pending);
    row.attempts = Set(0);
    row.available_at = Set(Utc::now().fixed_offset());
    row.lease_owner = Set(None);
    row.lease_until = Set(None);
    row.last_error = Set(None);
    row.published_at = Set(None);
    row.started_at = Set(None);
    row.finished_at = Set(None);
    row.duration_ms = Set(None);
    let task = row.update(conn).await?;
    Ok(RetryOutcome::Retried {
        task: Box::new(task),
        previous: Box::new(previous),
    })
}

/// When the last task of `kind` on `platform` succeeded, if one ever did.
pub async fn last_success(
    conn: &impl ConnectionTrait,
    kind: &str,
    platform: Platform,
) -> Result<Option<DateTime<FixedOffset>>, DbErr> {
    let latest: Option<Option<DateTime<FixedOffset>>> = tasks::Entity::find()
        .select_only()
        .column_as(Expr::col(tasks::Column::FinishedAt).max(), "latest")
        .filter(tasks::Column::Kind.eq(kind))
        .filter(tasks::Column::Platform.eq(platform))
        .filter(tasks::Column::Status.eq(TaskStatus::Succeeded))
        .into_tuple()
        .one(conn)
        .await?;
    Ok(latest.flatten())
}
