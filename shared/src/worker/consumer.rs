//! Consuming deliveries and running jobs for them (see the module documentation of
//! [`crate::worker`]).

use crate::bus::{self, TaskMessage};
use crate::db::entities::tasks;
use crate::domain::TaskStatus;
use crate::outbox::lease::{self, End};
use crate::process;
use crate::resilience::Backoff;
use crate::worker::{Job, JobContext, JobError, Jobs, Outcome, Worker, WorkerConfig, WorkerError};
use chrono::Utc;
use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicGetOptions, BasicNackOptions, BasicRejectOptions,
};
use lapin::{Channel, Connection};
use sea_orm::{DatabaseConnection, DbErr, EntityTrait};
use secrecy::ExposeSecret;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Tasks run, by kind and outcome (`succeeded`, `deferred`, `retry`, `failed`, `dead`,
/// `lease_lost`, `handed_back`).
pub const TASKS_METRIC: &str = "worker_tasks_total";
/// Duration of a task's run, by kind.
pub const TASK_DURATION_METRIC: &str = "worker_task_duration_seconds";

/// Longest wait, after the grace period, for handed-back jobs to release their leases.
const HANDBACK_WAIT: Duration = Duration::from_secs(2);

/// Pause before requeueing a delivery whose task could not be claimed for a reason other
/// than an unavailable database, so a requeued message does not spin.
const CLAIM_RETRY_PAUSE: Duration = Duration::from_secs(1);

/// Longest wait between two claims of a delivery held while the database is unavailable.
const DATABASE_WAIT_MAX: Duration = Duration::from_secs(5);

/// Tries at recording a job's end state before leaving it to the sweeper.
const RECORD_TRIES: u32 = 3;

pub(crate) struct Inner {
    pub(crate) db: DatabaseConnection,
    pub(crate) config: WorkerConfig,
    pub(crate) jobs: Jobs,
    pub(crate) owner: String,
    /// The connection and channel [`Worker::run_pending`] reuses.
    pending: Mutex<Option<(Connection, Channel)>>,
}

/// What to tell the broker about a delivery.
enum DeliveryAnswer {
    /// Done with (finished, or nothing to do).
    Ack,
    /// Give it to a worker again (handed back, or the database was unreachable).
    Requeue,
    /// Unusable: dead-letter it to `jobs.dead`.
    Reject,
}

impl Inner {
    pub(crate) fn new(
        db: DatabaseConnection,
        config: WorkerConfig,
        jobs: Jobs,
        owner: String,
    ) -> Inner {
        Inner {
            db,
            config,
            jobs,
            owner,
            pending: Mutex::new(None),
        }
    }

    async fn process(
        &self,
        delivery: &Delivery,
        handback: &CancellationToken,
        shutdown: &CancellationToken,
    ) -> DeliveryAnswer {
        let message = match TaskMessage::from_bytes(&delivery.data) {
            Ok(message) => message,
            Err(e) => {
                tracing::warn!(routing_key = %delivery.routing_key, error = %e, "unreadable message; dead-lettering it");
                return DeliveryAnswer::Reject;
            }
        };
        let TaskMessage::V1 { task_id, kind, .. } = message;
        let Some(job) = self.jobs.get(kind).cloned() else {
            tracing::warn!(%task_id, %kind, "no job for this kind here; dead-lettering the message");
            return DeliveryAnswer::Reject;
        };
        let mut waits = process::dependency_backoff(DATABASE_WAIT_MAX).waits();
        let task = loop {
            match lease::claim(&self.db, task_id, &self.owner, self.config.lease).await {
                Ok(Some(task)) => break task,
                Ok(None) => {
                    tracing::debug!(%task_id, "task finished, running elsewhere or not due; dropping the message");
                    return DeliveryAnswer::Ack;
                }
                Err(e) if crate::db::is_unavailable(&e) => {
                    // Holding the delivery keeps this consumer's prefetch full, so it takes no
                    // more messages, and requeues would only burn the delivery limit.
                    let wait = waits.next().unwrap_or(DATABASE_WAIT_MAX);
                    tracing::warn!(%task_id, error = %e, retry_in = ?wait, "database unavailable; holding the delivery until it is back");
                    tokio::select! {
                        _ = handback.cancelled() => return DeliveryAnswer::Requeue,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(%task_id, error = %e, "cannot claim the task; requeueing its message");
                    tokio::select! {
                        _ = handback.cancelled() => {}
                        _ = tokio::time::sleep(CLAIM_RETRY_PAUSE) => {}
                    }
                    return DeliveryAnswer::Requeue;
                }
            }
        };
        let trace_id = task
            .trace_id
            .clone()
            .or_else(|| bus::trace_id(&delivery.properties))
            .unwrap_or_default();
        let span = tracing::info_span!(
            "job",
            job = job.name(),
            task_id = %task.id,
            kind = %task.kind,
            platform = %task.platform,
            attempt = task.attempts,
            trace_id = %trace_id,
        );
        self.execute(job, task, handback, shutdown)
            .instrument(span)
            .await
    }

    async fn execute(
        &self,
        job: Arc<dyn Job>,
        task: tasks::Model,
        handback: &CancellationToken,
        shutdown: &CancellationToken,
    ) -> DeliveryAnswer {
        let ctx = Arc::new(JobContext::new(
            task.clone(),
            self.db.clone(),
            self.owner.clone(),
            shutdown.clone(),
        ));
        let started = Instant::now();
        tracing::debug!("job started");
        // Its own tokio task: a panic ends that task, not the worker, and is reported here.
        let mut running = tokio::spawn(
            {
                let (job, ctx) = (job.clone(), ctx.clone());
                async move { job.run(&ctx).await }
            }
            .in_current_span(),
        );
        let period = self.config.lease / 3;
        let mut renewals = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        let joined = loop {
            tokio::select! {
                joined = &mut running => break joined,
                _ = renewals.tick() => {
                    match lease::renew(&self.db, task.id, &self.owner, self.config.lease).await {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!("lease lost while the job runs; its result will not be recorded"),
                        Err(e) => tracing::warn!(error = %e, "cannot renew the lease"),
                    }
                }
                _ = handback.cancelled() => {
                    running.abort();
                    let _ = (&mut running).await;
                    match lease::release(&self.db, task.id, &self.owner).await {
                        Ok(_) => tracing::info!("shutting down: task handed back"),
                        Err(e) => tracing::warn!(error = %e, "shutting down: cannot release the lease; the sweeper will"),
                    }
                    metrics::counter!(TASKS_METRIC, "kind" => task.kind.clone(), "outcome" => "handed_back").increment(1);
                    return DeliveryAnswer::Requeue;
                }
            }
        };
        let elapsed = started.elapsed();
        let result = joined.unwrap_or_else(|e| {
            let panic = if e.is_panic() {
                panic_message(e.into_panic())
            } else {
                "it was cancelled".to_owned()
            };
            Err(JobError::transient(anyhow::anyhow!(
                "the job panicked: {panic}"
            )))
        });
        self.record(&task, result, elapsed).await;
        DeliveryAnswer::Ack
    }

    /// Writes the end state for `result`, retrying briefly if the database is unreachable.
    async fn record(
        &self,
        task: &tasks::Model,
        result: Result<Outcome, JobError>,
        elapsed: Duration,
    ) {
        let limit = task
            .max_attempts
            .min(i32::try_from(self.config.max_attempts).unwrap_or(i32::MAX));
        let outcome = match &result {
            Ok(Outcome::Succeeded) => "succeeded",
            Ok(Outcome::Deferred { .. }) => "deferred",
            Err(JobError::Permanent(_)) => "failed",
            Err(JobError::Transient { .. }) if task.attempts >= limit => "dead",
            Err(JobError::Transient { .. }) => "retry",
            Err(JobError::LeaseLost) => "lease_lost",
        };
        metrics::counter!(TASKS_METRIC, "kind" => task.kind.clone(), "outcome" => outcome)
            .increment(1);
        metrics::histogram!(TASK_DURATION_METRIC, "kind" => task.kind.clone())
            .record(elapsed.as_secs_f64());
        if matches!(result, Err(JobError::LeaseLost)) {
            tracing::warn!("lease lost to another worker; nothing recorded");
            return;
        }
        let mut tries = 0;
        let applied = loop {
            tries += 1;
            match self.apply(task, &result, limit, elapsed).await {
                Ok(applied) => break applied,
                Err(e) if tries < RECORD_TRIES => {
                    tracing::warn!(error = %e, "cannot record the job's end state; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(tries))).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot record the job's end state; the sweeper will retry the task when its lease expires");
                    return;
                }
            }
        };
        if applied {
            match &result {
                Ok(Outcome::Succeeded) => {
                    tracing::info!(duration_ms = elapsed.as_millis() as u64, "job succeeded")
                }
                Ok(Outcome::Deferred { until, reason }) => {
                    tracing::info!(%until, %reason, "job deferred")
                }
                Err(e) => tracing::warn!(error = %e, outcome, "job failed"),
            }
        } else if matches!(result, Ok(Outcome::Succeeded)) && self.recorded_by_job(task).await {
            tracing::info!(duration_ms = elapsed.as_millis() as u64, "job succeeded");
        } else {
            tracing::warn!(
                outcome,
                "lease lost before the end state was recorded; nothing recorded"
            );
        }
    }

    async fn apply(
        &self,
        task: &tasks::Model,
        result: &Result<Outcome, JobError>,
        limit: i32,
        elapsed: Duration,
    ) -> Result<bool, DbErr> {
        let end = match result {
            Ok(Outcome::Succeeded) => End::Succeeded,
            Ok(Outcome::Deferred { until, reason }) => End::Retry {
                at: *until,
                reason: reason.clone(),
                counted: false,
            },
            Err(JobError::Permanent(e)) => End::GiveUp {
                status: TaskStatus::Failed,
                reason: format!("{e:#}"),
            },
            Err(JobError::Transient { error, .. }) if task.attempts >= limit => End::GiveUp {
                status: TaskStatus::Dead,
                reason: format!("{error:#}"),
            },
            Err(JobError::Transient { error, retry_at }) => End::Retry {
                at: retry_at
                    .unwrap_or_else(|| Utc::now() + retry_delay(task.attempts, &self.config)),
                reason: format!("{error:#}"),
                counted: true,
            },
            Err(JobError::LeaseLost) => return Ok(false),
        };
        let actor = self.config.process_name.as_str();
        lease::record(&self.db, task, &self.owner, &end, elapsed, actor).await
    }

    /// Whether the job itself recorded success ([`JobContext::succeed_in`]).
    async fn recorded_by_job(&self, task: &tasks::Model) -> bool {
        tasks::Entity::find_by_id(task.id)
            .one(&self.db)
            .await
            .ok()
            .flatten()
            .is_some_and(|row| row.status == TaskStatus::Succeeded)
    }
}

/// The delay before retry number `attempt` + 1: `base · 2^(attempt-1)`, capped, with the upper
/// half jittered so that tasks failing together do not retry together.
fn retry_delay(attempt: i32, config: &WorkerConfig) -> Duration {
    let backoff = Backoff {
        base: config.retry_base,
        cap: config.retry_max,
    };
    backoff.wait(u32::try_from(attempt).unwrap_or(1))
}

fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "a non-text panic".to_owned()
    }
}

async fn handle(
    inner: Arc<Inner>,
    delivery: Delivery,
    handback: CancellationToken,
    shutdown: CancellationToken,
) {
    let settle = inner.process(&delivery, &handback, &shutdown).await;
    let settled = match settle {
        DeliveryAnswer::Ack => delivery.acker.ack(BasicAckOptions::default()).await,
        DeliveryAnswer::Requeue => {
            delivery
                .acker
                .nack(BasicNackOptions {
                    requeue: true,
                    ..Default::default()
                })
                .await
        }
        DeliveryAnswer::Reject => {
            delivery
                .acker
                .reject(BasicRejectOptions { requeue: false })
                .await
        }
    };
    if let Err(e) = settled {
        tracing::debug!(error = %e, "cannot settle a delivery (connection lost); the broker will redeliver it");
    }
}

/// One channel and consumer per queue (the prefetch is per channel), merged into one stream.
async fn subscribe(
    connection: &Connection,
    queues: &[String],
    owner: &str,
    prefetch: u16,
) -> Result<
    (
        Vec<(Channel, String)>,
        futures_util::stream::SelectAll<lapin::Consumer>,
    ),
    lapin::Error,
> {
    let mut channels = Vec::with_capacity(queues.len());
    let mut consumers = Vec::with_capacity(queues.len());
    for queue in queues {
        let channel = connection.create_channel().await?;
        let tag = format!("{owner}/{queue}");
        consumers.push(bus::consume(&channel, queue, &tag, prefetch).await?);
        channels.push((channel, tag));
    }
    Ok((channels, futures_util::stream::select_all(consumers)))
}

impl Worker {
    /// Consumes until `cancel` fires, then shuts down as described in the module
    /// documentation. Starts on `first` if given (e.g. the connection the process opened at
    /// start-up), and reconnects with backoff whenever the broker connection is lost. A worker
    /// without jobs consumes nothing and just waits for `cancel`.
    pub async fn run(&self, first: Option<Connection>, cancel: &CancellationToken) {
        let inner = &self.inner;
        let queues = self.queues();
        if queues.is_empty() {
            tracing::info!(process = %inner.config.process_name, "no jobs registered: consuming nothing");
            if let Some(connection) = first {
                bus::close(&connection, "worker stopping").await;
            }
            cancel.cancelled().await;
            return;
        }
        let handback = CancellationToken::new();
        let mut in_flight = JoinSet::new();
        let mut next = first;
        let mut held: Option<(Connection, Vec<(Channel, String)>)> = None;
        while !cancel.is_cancelled() {
            let connection = match next.take() {
                Some(c) if c.status().connected() => c,
                _ => match process::wait_for_broker_at(
                    inner.config.amqp_url.expose_secret(),
                    &inner.config.process_name,
                    inner.config.max_backoff,
                    cancel,
                )
                .await
                {
                    Some(c) => c,
                    None => break,
                },
            };
            let (channels, mut deliveries) = match subscribe(
                &connection,
                &queues,
                &inner.owner,
                inner.config.prefetch,
            )
            .await
            {
                Ok(subscribed) => subscribed,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot subscribe; reconnecting");
                    bus::close(&connection, "worker reconnecting").await;
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(inner.config.max_backoff.min(Duration::from_secs(1))) => continue,
                    }
                }
            };
            tracing::info!(?queues, prefetch = inner.config.prefetch, "consuming");
            let lost = loop {
                tokio::select! {
                    _ = cancel.cancelled() => break false,
                    delivery = deliveries.next() => match delivery {
                        Some(Ok(delivery)) => {
                            in_flight.spawn(handle(inner.clone(), delivery, handback.clone(), cancel.clone()));
                        }
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "broker connection lost; reconnecting");
                            break true;
                        }
                        None => {
                            tracing::warn!("every consumer stopped (connection closed, queues deleted); resubscribing");
                            break true;
                        }
                    },
                    Some(joined) = in_flight.join_next() => {
                        if let Err(e) = joined {
                            tracing::error!(error = %e, "a delivery handler failed");
                        }
                    }
                }
            };
            if lost {
                // In-flight jobs go on and record their results; their acks will fail and the
                // broker redelivers those messages, which are then skipped as finished.
                drop(deliveries);
                bus::close(&connection, "worker reconnecting").await;
                continue;
            }
            for (channel, tag) in &channels {
                if let Err(e) = channel
                    .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
                    .await
                {
                    tracing::debug!(error = %e, "cannot cancel a consumer");
                }
            }
            held = Some((connection, channels));
        }
        self.drain(in_flight, &handback).await;
        // Closing the channels returns deliveries prefetched but never started to the queue.
        if let Some((connection, _channels)) = held {
            bus::close(&connection, "worker stopping").await;
        }
        if let Some((connection, _)) = inner.pending.lock().await.take() {
            bus::close(&connection, "worker stopping").await;
        }
        tracing::info!(process = %inner.config.process_name, "worker stopped");
    }

    async fn drain(&self, mut in_flight: JoinSet<()>, handback: &CancellationToken) {
        let grace = self.inner.config.shutdown_grace;
        if !in_flight.is_empty() {
            tracing::info!(
                jobs = in_flight.len(),
                ?grace,
                "shutting down: letting running jobs finish"
            );
        }
        let finished = tokio::time::timeout(grace, async {
            while in_flight.join_next().await.is_some() {}
        })
        .await;
        if finished.is_err() {
            tracing::warn!(
                jobs = in_flight.len(),
                "grace period over: handing the remaining tasks back"
            );
            handback.cancel();
            let handed_back = tokio::time::timeout(HANDBACK_WAIT, async {
                while in_flight.join_next().await.is_some() {}
            })
            .await;
            if handed_back.is_err() {
                in_flight.shutdown().await;
            }
        }
    }

    /// Processes every message waiting in its queues now, one at a time (with `basic.get`),
    /// until they are empty; returns how many deliveries it handled. For tests and tools:
    /// deterministic, no consumer left running. See also [`crate::worker::run_to_completion`].
    pub async fn run_pending(&self) -> Result<usize, WorkerError> {
        let queues = self.queues();
        if queues.is_empty() {
            return Ok(0);
        }
        let inner = &self.inner;
        let mut guard = inner.pending.lock().await;
        let channel = match guard.as_ref() {
            Some((connection, channel))
                if connection.status().connected() && channel.status().connected() =>
            {
                channel.clone()
            }
            _ => {
                if let Some((stale, _)) = guard.take() {
                    bus::close(&stale, "worker stopping").await;
                }
                let connection = bus::connect(
                    inner.config.amqp_url.expose_secret(),
                    &inner.config.process_name,
                )
                .await?;
                bus::declare_topology(&connection).await?;
                let channel = connection.create_channel().await?;
                *guard = Some((connection, channel.clone()));
                channel
            }
        };
        let never = CancellationToken::new();
        let mut handled = 0;
        loop {
            let mut any = false;
            for queue in &queues {
                if let Some(message) = channel
                    .basic_get(queue.as_str().into(), BasicGetOptions::default())
                    .await?
                {
                    handle(
                        inner.clone(),
                        message.delivery,
                        never.clone(),
                        never.clone(),
                    )
                    .await;
                    handled += 1;
                    any = true;
                }
            }
            if !any {
                return Ok(handled);
            }
        }
    }
}
