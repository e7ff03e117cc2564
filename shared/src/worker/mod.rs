//! The worker framework `ingestor` and `replier` are built on (DESIGN §4–§5).
//!
//! A [`Job`] is a unit with a name and `async fn run(&self, ctx) -> Result<Outcome, JobError>`;
//! a [`Worker`] runs the registered jobs for the deliveries of their queues
//! (`<kind>.<platform>` for each of the configured platforms). For each delivery it:
//!
//! 1. claims the task row in one short statement: `running`, lease owner and expiry,
//!    attempts + 1. A row that is finished, running elsewhere or not yet due is not claimed:
//!    the message is acknowledged and dropped (duplicates are harmless; the row is the truth).
//!    While the database is unavailable the worker holds the delivery and tries the claim
//!    again with backoff: its prefetch stays full, so it takes nothing more, and the message's
//!    delivery limit is not spent on requeues;
//! 2. runs the job on its own tokio task (a panic is caught and recorded as a failure), renewing
//!    the lease every third of its length;
//! 3. records the end state, fenced by the lease (`WHERE lease_owner = me AND status =
//!    'running'`): `succeeded`; `pending` again at a later `available_at` after a transient
//!    failure (backoff with jitter) or when deferred (an open breaker, a provider asking to come
//!    back later: not counted as an attempt); `failed` for a permanent failure, `dead` after the
//!    last attempt, both with the reason and an audit row;
//! 4. acknowledges the message only then.
//!
//! A job whose result is rows in the database should write them and call
//! [`JobContext::succeed_in`] in the same transaction: the result and the end state then commit
//! together, and a worker that lost its lease (it hung, the sweeper handed the task to another)
//! cannot commit a second result.
//!
//! On shutdown a worker stops taking deliveries, lets running jobs finish for the grace period,
//! then hands back what is left: job aborted, lease released (`published` again, the attempt
//! not counted), message rejected with requeue, so another worker takes it.
//!
//! Tests drain deterministically with [`Worker::run_pending`] and [`run_to_completion`].

mod consumer;
mod context;
mod drain;

pub use context::JobContext;
pub use drain::{DrainError, run_to_completion};

use crate::brands::ProfileError;
use crate::bus;
use crate::config::Settings;
use crate::domain::JobKind;
use crate::domain::Platform;
use crate::outbox::{Background, Loops};
use crate::process;
use crate::provider::ProviderError;
use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DbErr};
use secrecy::SecretString;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// One kind of background work.
#[async_trait::async_trait]
pub trait Job: Send + Sync + 'static {
    /// A short name for logs and metrics, e.g. `ingest`.
    fn name(&self) -> &'static str;

    /// The kind of task it runs (and so the queues it consumes).
    fn kind(&self) -> JobKind;

    /// Does the work of one claimed task.
    async fn run(&self, ctx: &JobContext) -> Result<Outcome, JobError>;
}

/// How a job ended when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done: the task is `succeeded`.
    Succeeded,
    /// Not done, through no fault of the job (e.g. the provider says to come back later): run
    /// again at `until`; the attempt is not counted.
    Deferred {
        /// When to run again.
        until: DateTime<Utc>,
        /// Why, for people (stored as `last_error`).
        reason: String,
    },
}

/// How a job failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Might work later (timeout, 5xx, 429, database hiccup): counts as an attempt; retried at
    /// `retry_at`, or after a backoff, until the attempts run out (then `dead`).
    #[error("{error:#}")]
    Transient {
        /// What went wrong.
        error: anyhow::Error,
        /// When to retry, if the job knows better than the backoff (e.g. `Retry-After`).
        retry_at: Option<DateTime<Utc>>,
    },
    /// Will never work (bad input, the provider's definite rejection): the task is `failed`.
    #[error("{0:#}")]
    Permanent(anyhow::Error),
    /// Another worker owns the task now (this one's lease expired); nothing is recorded.
    #[error("the task's lease was lost to another worker")]
    LeaseLost,
}

impl JobError {
    /// A transient failure retried after the backoff.
    pub fn transient(error: impl Into<anyhow::Error>) -> JobError {
        JobError::Transient {
            error: error.into(),
            retry_at: None,
        }
    }

    /// A permanent failure.
    pub fn permanent(error: impl Into<anyhow::Error>) -> JobError {
        JobError::Permanent(error.into())
    }
}

/// A provider call that did not succeed, as the job's end: a deferral (an open breaker, a
/// spent budget) reschedules without counting an attempt, a definite rejection is final, and
/// the rest is retried (at the provider's hint, when it gave one).
pub fn provider_failure(error: ProviderError) -> Result<Outcome, JobError> {
    match error {
        ProviderError::Deferred { retry_at, .. } => Ok(Outcome::Deferred {
            until: retry_at,
            reason: error.to_string(),
        }),
        _ if error.is_definite_rejection() => Err(JobError::permanent(error)),
        _ => Err(JobError::Transient {
            retry_at: error.retry_at(),
            error: error.into(),
        }),
    }
}

impl From<DbErr> for JobError {
    /// A database error is transient: the task is retried.
    fn from(err: DbErr) -> JobError {
        JobError::transient(err)
    }
}

impl From<ProfileError> for JobError {
    /// The brand's profile could not be read: retried if the database failed, final otherwise
    /// (no such brand, its Profile-Key cannot be opened).
    fn from(err: ProfileError) -> JobError {
        match err {
            ProfileError::Db(db) => JobError::transient(db),
            other => JobError::permanent(other),
        }
    }
}

/// The jobs a worker runs, at most one per kind.
#[derive(Clone, Default)]
pub struct Jobs {
    by_kind: BTreeMap<JobKind, Arc<dyn Job>>,
}

impl Jobs {
    /// No jobs.
    pub fn new() -> Jobs {
        Jobs::default()
    }

    /// These jobs and `job`; it replaces an earlier job of the same kind.
    pub fn with(mut self, job: impl Job) -> Jobs {
        self.by_kind.insert(job.kind(), Arc::new(job));
        self
    }

    /// The kinds with a job.
    pub fn kinds(&self) -> Vec<JobKind> {
        self.by_kind.keys().copied().collect()
    }

    fn get(&self, kind: JobKind) -> Option<&Arc<dyn Job>> {
        self.by_kind.get(&kind)
    }
}

impl fmt::Debug for Jobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.by_kind.values().map(|job| job.name()))
            .finish()
    }
}

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The process, for logs, the lease owner, audit actors and the broker connection name.
    pub process_name: String,
    /// The broker (with its virtual host).
    pub amqp_url: SecretString,
    /// The platforms whose queues it consumes (`WORKER_PLATFORMS`).
    pub platforms: Vec<Platform>,
    /// Unacknowledged deliveries per queue, i.e. jobs run at once per queue.
    pub prefetch: u16,
    /// Lease length; renewed every third of it while a job runs.
    pub lease: Duration,
    /// Attempts before a failing task is `dead`, applied with the task's own `max_attempts`.
    pub max_attempts: u32,
    /// First retry delay; doubles with each attempt.
    pub retry_base: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// Time running jobs get to finish on shutdown before they are handed back.
    pub shutdown_grace: Duration,
    /// Longest wait between reconnection attempts while the broker is unreachable.
    pub max_backoff: Duration,
}

impl WorkerConfig {
    /// The configuration from the settings, for `process_name`.
    pub fn from_settings(settings: &Settings, process_name: &str) -> WorkerConfig {
        WorkerConfig {
            process_name: process_name.to_owned(),
            amqp_url: settings.amqp_url.clone(),
            platforms: settings.worker_platforms.clone(),
            prefetch: settings.tasks.prefetch,
            lease: settings.tasks.lease,
            max_attempts: settings.tasks.max_attempts,
            retry_base: settings.tasks.retry_base,
            retry_max: settings.tasks.retry_max,
            // Keep a little of the process's grace for handing back and closing.
            shutdown_grace: settings.shutdown_grace.mul_f64(0.75),
            max_backoff: Duration::from_secs(10),
        }
    }
}

/// Errors of [`Worker::run_pending`].
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The broker failed.
    #[error("broker error: {0}")]
    Broker(#[from] lapin::Error),
}

/// Consumes the queues of its jobs' kinds for the configured platforms (see the module
/// documentation). Clones share the same worker.
#[derive(Clone)]
pub struct Worker {
    inner: Arc<consumer::Inner>,
}

impl Worker {
    /// A worker running `jobs`; it connects when [`Worker::run`] or
    /// [`Worker::run_pending`] is called.
    pub fn new(db: DatabaseConnection, config: WorkerConfig, jobs: Jobs) -> Worker {
        let owner = format!(
            "{}:{}:{}",
            config.process_name,
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        Worker {
            inner: Arc::new(consumer::Inner::new(db, config, jobs, owner)),
        }
    }

    /// The lease owner this worker writes on the tasks it claims.
    pub fn owner(&self) -> &str {
        &self.inner.owner
    }

    /// The queues it consumes: `<kind>.<platform>` for each job kind and platform.
    pub fn queues(&self) -> Vec<String> {
        self.inner
            .jobs
            .kinds()
            .into_iter()
            .flat_map(|kind| {
                self.inner
                    .config
                    .platforms
                    .iter()
                    .map(move |&platform| bus::routing_key(kind, platform))
            })
            .collect()
    }
}

/// The whole life of a worker process (`ingestor`, `replier`): waits for the database
/// (migrating it when asked) and the broker, runs `jobs` with a [`Worker`] and, with
/// `RELAY_ENABLED=true`, an outbox relay, until `cancel` fires; then finishes or hands back
/// its jobs within the grace period and closes its connections.
pub async fn run_process(
    settings: &Settings,
    process_name: &str,
    args: &process::CommonArgs,
    jobs: Jobs,
    cancel: &CancellationToken,
) -> anyhow::Result<()> {
    let Some((db, broker)) = process::connect_worker(settings, process_name, args, cancel).await?
    else {
        return Ok(());
    };
    let background = Background::spawn(
        db.clone(),
        settings,
        process_name,
        Loops::worker(settings),
        cancel.clone(),
    );
    let worker = Worker::new(
        db.clone(),
        WorkerConfig::from_settings(settings, process_name),
        jobs,
    );
    worker.run(Some(broker), cancel).await;
    background.join(settings.shutdown_grace).await;
    process::close_worker(db, process_name).await;
    Ok(())
}
