//! Background work for people: `GET /v1/tasks` (filters, keyset pagination) and, for admins,
//! `POST /v1/tasks/{id}/retry` to put a `dead` or `failed` task back to `pending`.

use crate::AppState;
use crate::auth::{Admin, Principal};
use crate::cursor;
use crate::error::{ApiError, Problem};
use crate::extract::{Params, parse_id, parse_list};
use crate::openapi::{PlatformValues, TaskStatusValues};
use crate::page::{LIST_LIMITS, Page, PageRequest};
use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, FixedOffset};
use sea_orm::TransactionTrait;
use serde::{Deserialize, Serialize};
use shared::audit::{self, Entry, entity};
use shared::db::entities::tasks;
use shared::domain::{Platform, TaskId, TaskStatus};
use shared::outbox::listing::{self as queries, RetryOutcome, TaskCursor, TaskFilter};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// The task routes (all need a token).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tasks))
        .routes(routes!(retry_task))
}

/// A background task.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskOut {
    /// Id (also the AMQP message id).
    #[schema(value_type = String, format = Uuid)]
    pub id: TaskId,
    /// What it does (`ingest`, `reply`, …).
    pub kind: String,
    /// For which platform.
    #[schema(value_type = PlatformValues)]
    pub platform: Platform,
    /// The post, mention or reply it is about.
    pub subject_id: Option<Uuid>,
    /// Active tasks with the same key are refused.
    pub dedup_key: Option<String>,
    /// Where it is in its life.
    #[schema(value_type = TaskStatusValues)]
    pub status: TaskStatus,
    /// Attempts so far.
    pub attempts: i32,
    /// Attempts allowed.
    pub max_attempts: i32,
    /// Not started before this time.
    pub available_at: DateTime<FixedOffset>,
    /// The last failure.
    pub last_error: Option<String>,
    /// When it was created.
    pub created_at: DateTime<FixedOffset>,
    /// When the broker confirmed its message.
    pub published_at: Option<DateTime<FixedOffset>>,
    /// When the last attempt started.
    pub started_at: Option<DateTime<FixedOffset>>,
    /// When it ended.
    pub finished_at: Option<DateTime<FixedOffset>>,
    /// Duration of the last attempt.
    pub duration_ms: Option<i64>,
}

impl From<tasks::Model> for TaskOut {
    fn from(t: tasks::Model) -> Self {
        TaskOut {
            id: t.id,
            kind: t.kind,
            platform: t.platform,
            subject_id: t.subject_id,
            dedup_key: t.dedup_key,
            status: t.status,
            attempts: t.attempts,
            max_attempts: t.max_attempts,
            available_at: t.available_at,
            last_error: t.last_error,
            created_at: t.created_at,
            published_at: t.published_at,
            started_at: t.started_at,
            finished_at: t.finished_at,
            duration_ms: t.duration_ms,
        }
    }
}

/// Filters and pagination of the task list. Multi-valued filters are comma lists.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListTasksQuery {
    /// Statuses, e.g. `dead,failed`.
    #[param(schema_with = TaskStatusValues::list)]
    pub status: Option<String>,
    /// Kinds, comma separated, e.g. `ingest`.
    pub kind: Option<String>,
    /// Platforms.
    #[param(schema_with = PlatformValues::list)]
    pub platform: Option<String>,
    /// Page size (default 50).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 500)]
    pub limit: Option<String>,
    /// `meta.nextCursor` of the previous page.
    #[param(pattern = "^[0-9]{1,16}\\.[0-9a-f]{32}$")]
    pub cursor: Option<String>,
}

/// A page of [`TaskOut`] (a named alias: the document names its schema `TaskPage`).
pub type TaskPage = Page<TaskOut>;

/// Background tasks, newest first.
#[utoipa::path(get, path = "/v1/tasks", tag = "tasks", params(ListTasksQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of tasks", body = TaskPage),
        (status = 422, description = "A parameter is invalid", body = Problem),
    ))]
async fn list_tasks(
    State(state): State<AppState>,
    _me: Principal,
    Params(query): Params<ListTasksQuery>,
) -> Result<Json<TaskPage>, ApiError> {
    let filter = TaskFilter {
        statuses: parse_list("status", query.status.as_deref())?,
        kinds: parse_list("kind", query.kind.as_deref())?,
        platforms: parse_list("platform", query.platform.as_deref())?,
    };
    let page = PageRequest::first(query.limit.as_deref(), LIST_LIMITS)?
        .after(query.cursor.as_deref(), |text| {
            cursor::decode(text).map(|(created_at, id)| TaskCursor { created_at, id })
        })?;
    let rows = queries::list(&state.db, &filter, page.after, page.fetch()).await?;
    Ok(Json(page.cut(
        rows,
        |t| cursor::encode(t.created_at, t.id.0),
        TaskOut::from,
    )))
}

/// Puts a `dead` or `failed` task back to `pending` with its attempts reset (admins only).
/// The previous error is kept in the audit row.
#[utoipa::path(post, path = "/v1/tasks/{id}/retry", tag = "tasks", security(("bearer" = [])),
    params(("id" = String, Path, description = "Task id")),
    responses(
        (status = 200, description = "The task, pending again", body = TaskOut),
        (status = 403, description = "Not an admin", body = Problem),
        (status = 404, description = "No such task", body = Problem),
        (status = 409, description = "Not dead or failed (`task_not_retryable`), or another active task has its dedup key (`task_duplicate_active`)", body = Problem),
        (status = 422, description = "Malformed id", body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn retry_task(
    State(state): State<AppState>,
    Admin(me): Admin,
    Path(id): Path<String>,
) -> Result<Json<TaskOut>, ApiError> {
    let id: TaskId = parse_id("id", &id)?;
    let txn = state.db.begin().await?;
    let outcome = queries::retry(&txn, id).await.map_err(|e| {
        if shared::db::is_unique_violation(&e) {
            ApiError::conflict(
                "task_duplicate_active",
                "another active task has the same dedup key; it will do the work",
            )
        } else {
            e.into()
        }
    })?;
    let (task, previous) = match outcome {
        RetryOutcome::Retried { task, previous } => (task, previous),
        RetryOutcome::NotFound => return Err(ApiError::not_found("no task with this id")),
        RetryOutcome::NotRetryable(status) => {
            return Err(ApiError::conflict(
                "task_not_retryable",
                format!("only dead or failed tasks can be retried; this one is {status}"),
            ));
        }
    };
    audit::append(
        &txn,
        Entry::new(me.actor(), "task.retried", entity::TASK, id).with_payload(serde_json::json!({
            "kind": task.kind,
            "platform": task.platform,
            "previousStatus": previous.status,
            "previousAttempts": previous.attempts,
            "lastError": previous.last_error,
        })),
    )
    .await?;
    txn.commit().await?;
    Ok(Json((*task).into()))
}
