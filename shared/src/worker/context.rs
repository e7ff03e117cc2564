//! What a job sees of the task it runs.

use crate::db::entities::tasks;
use crate::domain::{BrandId, Platform, TaskId};
use crate::outbox::lease;
use crate::worker::JobError;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde::de::DeserializeOwned;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// The claimed task and the means to work on it.
pub struct JobContext {
    task: tasks::Model,
    db: DatabaseConnection,
    owner: String,
    shutdown: CancellationToken,
    started: Instant,
}

impl JobContext {
    pub(crate) fn new(
        task: tasks::Model,
        db: DatabaseConnection,
        owner: String,
        shutdown: CancellationToken,
    ) -> JobContext {
        JobContext {
            task,
            db,
            owner,
            shutdown,
            started: Instant::now(),
        }
    }

    /// The task row as claimed (status `running`, attempts already counting this one).
    pub fn task(&self) -> &tasks::Model {
        &self.task
    }

    /// The task's id.
    pub fn task_id(&self) -> TaskId {
        self.task.id
    }

    /// The brand the task is for.
    pub fn brand(&self) -> BrandId {
        self.task.brand_id
    }

    /// The platform the task is for.
    pub fn platform(&self) -> Platform {
        self.task.platform
    }

    /// Which attempt this is, from 1.
    pub fn attempt(&self) -> i32 {
        self.task.attempts
    }

    /// The trace id to pass on to tasks this job enqueues.
    pub fn trace_id(&self) -> Option<&str> {
        self.task.trace_id.as_deref()
    }

    /// The task's payload as `T`; a payload that does not fit is a permanent failure.
    pub fn payload<T: DeserializeOwned>(&self) -> Result<T, JobError> {
        serde_json::from_value(self.task.payload.clone())
            .map_err(|e| JobError::permanent(anyhow::anyhow!("invalid task payload: {e}")))
    }

    /// The database pool.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Fires when the worker is shutting down: a long job may stop early (returning
    /// [`crate::worker::Outcome::Deferred`]) instead of being aborted after the grace period.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Records the task as `succeeded` through `txn`, the job's own transaction: the job's
    /// writes and the end state commit together or not at all. Fails with
    /// [`JobError::LeaseLost`] when this worker no longer holds the task; the job must then
    /// roll back.
    pub async fn succeed_in(&self, txn: &impl ConnectionTrait) -> Result<(), JobError> {
        let elapsed = self.started.elapsed();
        if lease::mark_succeeded(txn, self.task.id, &self.owner, elapsed).await? {
            Ok(())
        } else {
            Err(JobError::LeaseLost)
        }
    }
}
