//! The database side of ingestion (DESIGN §6): storing what the fetch adapters read
//! ([`crate::adapters`]) exactly once, and what is known about each platform.
//!
//! - [`store`]: posts from the history (upsert) and their first comments fetch (one active
//!   task per post, through the tasks' dedup key); mentions in batches with
//!   `INSERT … ON CONFLICT DO NOTHING`, their thread parents, and one audit row per new
//!   mention; our own replies recognised in a thread.
//! - [`plan`]: the poll planner, which picks the posts to re-read within the budget's
//!   polling share.
//! - [`push`]: which platforms webhooks cover (polled only as a safety net), and the api's
//!   webhook registrations.
//! - [`platform_status`]: whether direct messages are available per platform (a 403 from the
//!   provider marks them disabled and they are checked again only rarely), and when the last
//!   ingest succeeded. `GET /v1/status/health` reports it.
//!
//! Every function takes `&impl ConnectionTrait`, so the job runs them in the transaction that
//! also records its task as succeeded.

pub mod plan;
pub mod platform_status;
pub mod push;
pub mod store;

use crate::domain::{JobKind, Platform};
use crate::outbox::TaskPayload;
use sea_orm::{DbBackend, Statement};

/// A PostgreSQL statement with positional values, as every query of ingestion is written.
pub fn statement(sql: &str, values: Vec<sea_orm::Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// The payload of an `ingest` task, telling which step of ingestion it is. The scheduler's
/// tasks carry `{}`, which is [`IngestStep::Platform`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(tag = "step", rename_all = "camelCase")]
pub enum IngestStep {
    /// Read the post history, upsert posts, enqueue the first comments fetch of new posts
    /// (and the direct messages read on messaging platforms).
    #[default]
    Platform,
    /// Read one post's comments.
    Comments {
        /// The `posts` row.
        #[serde(rename = "postId")]
        post_id: crate::domain::PostId,
    },
    /// Read the platform's direct messages.
    Messages,
}

impl TaskPayload for IngestStep {
    const KIND: JobKind = JobKind::Ingest;

    /// One active ingest per platform, comments fetch per post (the poll planner's SQL spells
    /// it too: `'comments:' || id`) and direct messages read per platform.
    fn dedup_key(&self, platform: Platform) -> String {
        match self {
            IngestStep::Platform => format!("{}:{platform}", JobKind::Ingest),
            IngestStep::Comments { post_id } => format!("comments:{post_id}"),
            IngestStep::Messages => format!("messages:{platform}"),
        }
    }

    fn subject(&self) -> Option<uuid::Uuid> {
        match self {
            IngestStep::Comments { post_id } => Some((*post_id).into()),
            _ => None,
        }
    }
}

impl IngestStep {
    /// Reads a task payload: `{}` (or no `step`) is [`IngestStep::Platform`].
    pub fn from_payload(payload: &serde_json::Value) -> Result<IngestStep, serde_json::Error> {
        match payload.get("step") {
            None => Ok(IngestStep::Platform),
            Some(_) => serde_json::from_value(payload.clone()),
        }
    }
}
