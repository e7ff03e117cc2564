//! `tasks`: the transactional outbox and the record of background work.
//!
//! At most one active task (`pending`, `published`, `running`) per (`brand_id`, `dedup_key`) (partial unique
//! index `tasks_active_dedup_key`); due pending rows are found through the partial index on
//! `available_at WHERE status = 'pending'`.

use crate::domain::{BrandId, Platform, TaskId, TaskStatus};
use sea_orm::entity::prelude::*;

/// A row of `tasks`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tasks")]
pub struct Model {
    /// Primary key (also the AMQP `message_id`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: TaskId,
    /// The brand the work is for (its Profile-Key, budget and breakers).
    pub brand_id: BrandId,
    /// What to do (first part of the routing key `<kind>.<platform>`).
    pub kind: String,
    /// For which platform (second part of the routing key).
    pub platform: Platform,
    /// The post, mention or reply the task is about.
    pub subject_id: Option<Uuid>,
    /// Active tasks with the same key are refused by the database.
    pub dedup_key: Option<String>,
    /// Task-specific input.
    pub payload: Json,
    /// Where the task is.
    pub status: TaskStatus,
    /// Attempts so far.
    pub attempts: i32,
    /// After this many attempts the task is `dead`.
    pub max_attempts: i32,
    /// Not published before this time (backoff, open breaker, provider `nextUpdate`).
    pub available_at: DateTimeWithTimeZone,
    /// The worker holding the lease.
    pub lease_owner: Option<String>,
    /// When the lease expires (the sweeper then hands the task back).
    pub lease_until: Option<DateTimeWithTimeZone>,
    /// The last failure, for people.
    pub last_error: Option<String>,
    /// Trace context of the request or job that created the task.
    pub trace_id: Option<String>,
    /// When it was created.
    pub created_at: DateTimeWithTimeZone,
    /// When the broker confirmed its message.
    pub published_at: Option<DateTimeWithTimeZone>,
    /// When the current or last attempt started.
    pub started_at: Option<DateTimeWithTimeZone>,
    /// When it succeeded, failed or died.
    pub finished_at: Option<DateTimeWithTimeZone>,
    /// Duration of the last attempt.
    pub duration_ms: Option<i64>,
}

/// `tasks` has no relation mapped (`subject_id` points at different tables).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
