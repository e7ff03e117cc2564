//! The transactional outbox (DESIGN §5): background work is a `tasks` row written in the same
//! transaction as the change that needs it, and travels to RabbitMQ only after that
//! transaction commits.
//!
//! - [`enqueue`] inserts the row through the caller's connection or transaction; an active task
//!   with the same dedup key is returned instead of a second one. A task is built from its
//!   typed input ([`TaskPayload`], [`NewTask::of`]), which knows its kind and dedup key.
//! - [`lease`]: a worker's claim, its lease and the end state it records.
//! - [`listing`]: the task list for people and the manual retry of a dead or failed task.
//! - [`Relay`] publishes due pending rows with publisher confirms and marks them `published`
//!   in the transaction that claimed them; any number may run at once.
//! - [`sweeper`] hands back tasks whose worker died and re-publishes tasks whose message was
//!   lost.
//! - [`dead_letters`] drains the dead-letter queue, recording each message on its task.
//! - [`scheduler`] enqueues one `ingest` task per platform and poll interval.
//! - [`monitor`] refreshes the gauges: tasks by kind and status, relay lag, queue depth.
//!
//! [`Background`] runs the loops a process is configured for, until its cancellation token
//! fires.

mod background;
pub mod dead_letters;
pub(crate) mod lease;
pub mod listing;
pub mod monitor;
mod relay;
pub mod scheduler;
pub mod sweeper;

pub use background::{Background, Loops};
pub use relay::{Relay, RelayConfig, RelayError};

use crate::brands::DEFAULT_BRAND;
use crate::db::entities::tasks;
use crate::domain::{BrandId, JobKind, Platform, TaskId, TaskStatus};
use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, Statement, Value,
};
use uuid::Uuid;

/// The PostgreSQL channel notified whenever a task becomes pending (see the migration
/// `notify_pending_tasks`).
pub const PENDING_CHANNEL: &str = "tasks_pending";

/// Times [`enqueue`] retries when the active task holding its dedup key finishes between the
/// insert and the lookup.
const DEDUP_RETRIES: usize = 3;

/// A task's input, typed, in the spirit of crates.io's `BackgroundJob`: the kind of job it is
/// for (with the platform, the queue: `<kind>.<platform>`), its dedup key and its subject.
pub trait TaskPayload: serde::Serialize {
    const KIND: JobKind;

    /// While a task with this key is active (pending, published, running), enqueueing another
    /// returns that one.
    fn dedup_key(&self, platform: Platform) -> String;

    /// The post, mention or reply the task is about.
    fn subject(&self) -> Option<Uuid> {
        None
    }
}

/// A task to enqueue; built with [`NewTask::of`] (or [`NewTask::new`]) and the `with_…`
/// methods.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTask {
    brand: BrandId,
    kind: JobKind,
    platform: Platform,
    subject_id: Option<Uuid>,
    dedup_key: Option<String>,
    payload: serde_json::Value,
    available_at: Option<DateTime<Utc>>,
    max_attempts: Option<i32>,
    trace_id: Option<String>,
}

impl NewTask {
    /// A task of `kind` for `platform` of the default brand: no subject, no dedup key, empty
    /// payload, due now.
    pub fn new(kind: JobKind, platform: Platform) -> NewTask {
        NewTask {
            brand: DEFAULT_BRAND,
            kind,
            platform,
            subject_id: None,
            dedup_key: None,
            payload: serde_json::Value::Object(serde_json::Map::new()),
            available_at: None,
            max_attempts: None,
            trace_id: None,
        }
    }

    /// The task that runs `payload` for `brand` on `platform`.
    pub fn of<P: TaskPayload>(brand: BrandId, platform: Platform, payload: &P) -> NewTask {
        NewTask {
            brand,
            subject_id: payload.subject(),
            dedup_key: Some(payload.dedup_key(platform)),
            // Plain structs and enums of ids: serializing them cannot fail.
            payload: serde_json::to_value(payload).expect("a task payload serializes"),
            ..NewTask::new(P::KIND, platform)
        }
    }

    /// The brand the work is for (its Profile-Key, budget and breakers).
    pub fn with_brand(mut self, brand: BrandId) -> NewTask {
        self.brand = brand;
        self
    }

    /// The post, mention or reply the task is about.
    pub fn with_subject(mut self, subject_id: impl Into<Uuid>) -> NewTask {
        self.subject_id = Some(subject_id.into());
        self
    }

    /// While a task with this key is active (pending, published, running), enqueueing another
    /// returns that one.
    pub fn with_dedup_key(mut self, key: impl Into<String>) -> NewTask {
        self.dedup_key = Some(key.into());
        self
    }

    /// Task-specific input for the job.
    pub fn with_payload(mut self, payload: serde_json::Value) -> NewTask {
        self.payload = payload;
        self
    }

    /// Not published before `at` (default: now).
    pub fn with_available_at(mut self, at: DateTime<Utc>) -> NewTask {
        self.available_at = Some(at);
        self
    }

    /// Gives up after this many attempts (default: the column's default, 10; the workers'
    /// `TASK_MAX_ATTEMPTS` caps it).
    pub fn with_max_attempts(mut self, max_attempts: i32) -> NewTask {
        self.max_attempts = Some(max_attempts);
        self
    }

    /// The trace id of the request or job creating the task (default: a new one).
    pub fn with_trace_id(mut self, trace_id: impl Into<String>) -> NewTask {
        self.trace_id = Some(trace_id.into());
        self
    }
}

/// What [`enqueue`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// A new row (visible to relays once the caller's transaction commits).
    Created(tasks::Model),
    /// An active task with the same dedup key already existed; nothing was inserted.
    Existing(tasks::Model),
}

impl Enqueued {
    /// The task, new or existing.
    pub fn task(&self) -> &tasks::Model {
        match self {
            Enqueued::Created(task) | Enqueued::Existing(task) => task,
        }
    }

    /// Whether a row was inserted.
    pub fn is_created(&self) -> bool {
        matches!(self, Enqueued::Created(_))
    }
}

/// Errors of the outbox.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// The database refused or failed.
    #[error("database error: {0}")]
    Db(#[from] DbErr),
    /// The active task holding the dedup key kept finishing between insert and lookup.
    #[error("the active task with dedup key {0:?} kept changing; try again")]
    DedupRace(String),
}

/// A new trace id: 32 lowercase hex digits, as in W3C trace context.
pub fn new_trace_id() -> String {
    Uuid::new_v4().simple().to_string()
}

/// Inserts `task` through `conn` (the caller's transaction: the task exists if and only if
/// the transaction commits). If an active task has the same dedup key, returns it instead.
///
/// Safe under concurrency: the partial unique index on active dedup keys decides, through
/// `ON CONFLICT DO NOTHING`, which never aborts the caller's transaction.
pub async fn enqueue(conn: &impl ConnectionTrait, task: NewTask) -> Result<Enqueued, OutboxError> {
    let trace_id = task.trace_id.clone().unwrap_or_else(new_trace_id);
    let mut columns = vec![
        "id",
        "brand_id",
        "kind",
        "platform",
        "subject_id",
        "dedup_key",
        "payload",
        "trace_id",
    ];
    let mut values: Vec<Value> = vec![
        TaskId::new().into(),
        task.brand.into(),
        task.kind.as_str().into(),
        task.platform.into(),
        task.subject_id.into(),
        task.dedup_key.clone().into(),
        task.payload.clone().into(),
        trace_id.into(),
    ];
    // Unset values keep the column defaults (due now, the default attempt limit).
    if let Some(at) = task.available_at {
        columns.push("available_at");
        values.push(at.into());
    }
    if let Some(max) = task.max_attempts {
        columns.push("max_attempts");
        values.push(max.into());
    }
    let placeholders = (1..=values.len())
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    // The predicate repeats the partial index's own, so PostgreSQL can infer the index.
    let sql = format!(
        "INSERT INTO tasks ({}) VALUES ({placeholders}) \
         ON CONFLICT (brand_id, dedup_key) WHERE status IN ('pending', 'published', 'running') \
         DO NOTHING RETURNING *",
        columns.join(", ")
    );
    let statement = Statement::from_sql_and_values(DbBackend::Postgres, sql, values);
    let Some(key) = task.dedup_key.clone() else {
        let created = tasks::Entity::find()
            .from_raw_sql(statement)
            .one(conn)
            .await?
            .ok_or(DbErr::RecordNotInserted)?;
        return Ok(Enqueued::Created(created));
    };
    for _ in 0..DEDUP_RETRIES {
        if let Some(created) = tasks::Entity::find()
            .from_raw_sql(statement.clone())
            .one(conn)
            .await?
        {
            return Ok(Enqueued::Created(created));
        }
        if let Some(existing) = find_active(conn, task.brand, &key).await? {
            return Ok(Enqueued::Existing(existing));
        }
    }
    Err(OutboxError::DedupRace(key))
}

/// The active task (pending, published or running) of `brand` holding `dedup_key`, if any.
pub async fn find_active(
    conn: &impl ConnectionTrait,
    brand: BrandId,
    dedup_key: &str,
) -> Result<Option<tasks::Model>, DbErr> {
    tasks::Entity::find()
        .filter(tasks::Column::BrandId.eq(brand))
        .filter(tasks::Column::DedupKey.eq(dedup_key))
        .filter(tasks::Column::Status.is_in([
            TaskStatus::Pending,
            TaskStatus::Published,
            TaskStatus::Running,
        ]))
        .one(conn)
        .await
}
