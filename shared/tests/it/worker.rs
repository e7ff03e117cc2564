//! The worker framework: end states for every kind of outcome, panics, duplicates and
//! shutdown.

use crate::tasks_support::{
    EffectJob, create_effect_tables, effects, relay, spawn_relay_and_worker, starts, task,
    wait_until, worker_config,
};
use chrono::Utc;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use shared::bus::{self, TaskMessage};
use shared::db::entities::audit_log;
use shared::domain::JobKind;
use shared::domain::{Platform, TaskStatus};
use shared::outbox::{self, NewTask};
use shared::provider::{DeferReason, Endpoint, ProviderError};
use shared::testing::{TestBroker, TestDb};
use shared::worker::{self, Job, JobContext, JobError, Jobs, Outcome, Worker, run_to_completion};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Fails transiently, naming the attempt.
struct FlakyProvider;

#[async_trait::async_trait]
impl Job for FlakyProvider {
    fn name(&self) -> &'static str {
        "flaky"
    }

    fn kind(&self) -> JobKind {
        JobKind::Reply
    }

    async fn run(&self, ctx: &JobContext) -> Result<Outcome, JobError> {
        Err(JobError::transient(anyhow::anyhow!(
            "provider answered 503 on attempt {}",
            ctx.attempt()
        )))
    }
}

/// Panics on tasks whose payload says so, succeeds on the others.
struct Panicky {
    succeeded: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl Job for Panicky {
    fn name(&self) -> &'static str {
        "panicky"
    }

    fn kind(&self) -> JobKind {
        JobKind::Ingest
    }

    async fn run(&self, ctx: &JobContext) -> Result<Outcome, JobError> {
        if ctx.task().payload["panic"] == true {
            panic!("index out of bounds in the comment adapter");
        }
        self.succeeded.fetch_add(1, Ordering::SeqCst);
        Ok(Outcome::Succeeded)
    }
}

/// The breaker is open on the first attempt; then it works.
struct BreakerOnce {
    runs: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl Job for BreakerOnce {
    fn name(&self) -> &'static str {
        "breaker-once"
    }

    fn kind(&self) -> JobKind {
        JobKind::Ingest
    }

    async fn run(&self, _ctx: &JobContext) -> Result<Outcome, JobError> {
        if self.runs.fetch_add(1, Ordering::SeqCst) == 0 {
            return worker::provider_failure(ProviderError::Deferred {
                endpoint: Endpoint::History,
                reason: DeferReason::BreakerOpen("linkedin".to_owned()),
                retry_at: Utc::now() + chrono::Duration::milliseconds(100),
            });
        }
        Ok(Outcome::Succeeded)
    }
}

#[tokio::test]
async fn a_job_that_always_fails_transiently_ends_dead_after_the_maximum_attempts_with_its_last_error()
 {
    let (db, broker) = (TestDb::new().await, TestBroker::new().await);
    let relay = relay(db.conn(), &broker);
    let worker = Worker::new(
        db.conn().clone(),
        worker_config(&broker, "replier"),
        Jobs::new().with(FlakyProvider),
    );
    let id = outbox::enqueue(
        db.conn(),
        NewTask::new(JobKind::Reply, Platform::Facebook).with_max_attempts(3),
    )
    .await
    .expect("enqueue")
    .task()
    .id;

    run_to_completion(db.conn(), &relay, &[&worker], Duration::from_secs(30))
        .await
        .expect("drains");

    let dead = task(db.conn(), id).await;
    assert_eq!(dead.status, TaskStatus::Dead);
    assert_eq!(dead.attempts, 3);
    assert_eq!(
        dead.last_error.as_deref(),
        Some("provider answered 503 on attempt 3")
    );
    assert!(dead.finished_at.is_some());
    assert!(dead.lease_owner.is_none());
    let audited = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("task.dead"))
        .filter(audit_log::Column::EntityId.eq(id.to_string()))
        .one(db.conn())
        .await
        .expect("audit");
    let audited = audited.expect("the death is audited");
    assert_eq!(audited.actor, "system:replier");
}

#[tokio::test]
async fn a_panicking_job_is_recorded_as_a_failure_and_the_worker_goes_on_with_the_next_task() {
    let (db, broker) = (TestDb::new().await, TestBroker::new().await);
    let relay = Arc::new(relay(db.conn(), &broker));
    let succeeded = Arc::new(AtomicUsize::new(0));
    let worker = Worker::new(
        db.conn().clone(),
        worker_config(&broker, "ingestor"),
        Jobs::new().with(Panicky {
            succeeded: succeeded.clone(),
        }),
    );
    let cancel = CancellationToken::new();
    let background = spawn_relay_and_worker(&relay, &worker, &cancel);

    let panics = outbox::enqueue(
        db.conn(),
        NewTask::new(JobKind::Ingest, Platform::Tiktok)
            .with_payload(serde_json::json!({"panic": true}))
            .with_max_attempts(1),
    )
    .await
    .expect("enqueue")
    .task()
    .id;
    let fine = outbox::enqueue(db.conn(), NewTask::new(JobKind::Ingest, Platform::Tiktok))
        .await
        .expect("enqueue")
        .task()
        .id;

    wait_until(Duration::from_secs(20), "both tasks to finish", || async {
        let (a, b) = (task(db.conn(), panics).await, task(db.conn(), fine).await);
        !a.status.is_active() && !b.status.is_active()
    })
    .await;
    let panicked = task(db.conn(), panics).await;
    assert_eq!(panicked.status, TaskStatus::Dead);
    let error = panicked.last_error.unwrap_or_default();
    assert!(error.contains("panicked"), "{error}");
    assert!(error.contains("comment adapter"), "{error}");
    assert_eq!(task(db.conn(), fine).await.status, TaskStatus::Succeeded);
    assert_eq!(succeeded.load(Ordering::SeqCst), 1);
    cancel.cancel();
    for handle in background {
        handle.await.expect("stops");
    }
}

#[tokio::test]
async fn an_open_breaker_reschedules_the_task_without_counting_an_attempt() {
    let (db, broker) = (TestDb::new().await, TestBroker::new().await);
    let relay = relay(db.conn(), &broker);
    let runs = Arc::new(AtomicUsize::new(0));
    let worker = Worker::new(
        db.conn().clone(),
        worker_config(&broker, "ingestor"),
        Jobs::new().with(BreakerOnce { runs: runs.clone() }),
    );
    let id = outbox::enqueue(
        db.conn(),
        NewTask::new(JobKind::Ingest, Platform::Linkedin).with_max_attempts(1),
    )
    .await
    .expect("enqueue")
    .task()
    .id;

    run_to_completion(db.conn(), &relay, &[&worker], Duration::from_secs(20))
        .await
        .expect("drains");
    let done = task(db.conn(), id).await;
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    // With one attempt allowed, a counted breaker rejection would have killed it.
    assert_eq!(done.status, TaskStatus::Succeeded);
    assert_eq!(done.attempts, 1);
}

#[tokio::test]
async fn a_duplicate_message_for_a_finished_task_is_acknowledged_without_running_the_job_again() {
    let (db, broker) = (TestDb::new().await, TestBroker::new().await);
    create_effect_tables(&db).await;
    let relay = relay(db.conn(), &broker);
    let worker = Worker::new(
        db.conn().clone(),
        worker_config(&broker, "ingestor"),
        Jobs::new().with(EffectJob {
            worker: "only".to_owned(),
            delay: Duration::ZERO,
        }),
    );
    let done = outbox::enqueue(db.conn(), NewTask::new(JobKind::Ingest, Platform::Threads))
        .await
        .expect("enqueue")
        .task()
        .clone();
    run_to_completion(db.conn(), &relay, &[&worker], Duration::from_secs(20))
        .await
        .expect("drains");
    assert_eq!(task(db.conn(), done.id).await.status, TaskStatus::Succeeded);

    // The broker delivers the same message again (e.g. after a consumer's connection dropped
    // before its ack).
    let conn = broker.connect().await;
    let channel = bus::confirmed_channel(&conn).await.expect("channel");
    let message = TaskMessage::V1 {
        task_id: done.id,
        kind: JobKind::Ingest,
        platform: Platform::Threads,
        attempt: 1,
    };
    let confirm = bus::publish_task(&channel, &message, None)
        .await
        .expect("publish");
    bus::confirmed(confirm).await.expect("confirmed");
    assert_eq!(worker.run_pending().await.expect("run"), 1);

    assert_eq!(effects(db.conn()).await.get(&done.id), Some(&1));
    assert_eq!(starts(db.conn()).await.get(&done.id), Some(&1));
    assert_eq!(broker.queue_depth("ingest.threads").await, 0);
}

#[tokio::test]
async fn on_shutdown_a_worker_hands_back_its_running_task_and_another_worker_finishes_it() {
    let (db, broker) = (TestDb::new().await, TestBroker::new().await);
    create_effect_tables(&db).await;
    let relay = relay(db.conn(), &broker);
    let slow = Worker::new(
        db.conn().clone(),
        worker_config(&broker, "slow"),
        Jobs::new().with(EffectJob {
            worker: "slow".to_owned(),
            delay: Duration::from_secs(60),
        }),
    );
    let id = outbox::enqueue(db.conn(), NewTask::new(JobKind::Ingest, Platform::Bluesky))
        .await
        .expect("enqueue")
        .task()
        .id;
    relay.publish_due().await.expect("publish");
    let cancel = CancellationToken::new();
    let running = tokio::spawn({
        let (slow, cancel) = (slow.clone(), cancel.clone());
        async move { slow.run(None, &cancel).await }
    });
    wait_until(Duration::from_secs(10), "the slow job to start", || async {
        starts(db.conn()).await.contains_key(&id)
    })
    .await;
    assert_eq!(
        task(db.conn(), id).await.lease_owner.as_deref(),
        Some(slow.owner())
    );

    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("stops within grace + hand-back")
        .expect("join");
    let handed_back = task(db.conn(), id).await;
    assert_eq!(handed_back.status, TaskStatus::Published);
    assert_eq!(
        handed_back.attempts, 0,
        "a handed-back attempt does not count"
    );
    assert!(handed_back.lease_owner.is_none());
    wait_until(
        Duration::from_secs(5),
        "the message to be requeued",
        || async { broker.queue_depth("ingest.bluesky").await == 1 },
    )
    .await;

    let fast = Worker::new(
        db.conn().clone(),
        worker_config(&broker, "fast"),
        Jobs::new().with(EffectJob {
            worker: "fast".to_owned(),
            delay: Duration::ZERO,
        }),
    );
    run_to_completion(db.conn(), &relay, &[&fast], Duration::from_secs(20))
        .await
        .expect("drains");
    let done = task(db.conn(), id).await;
    assert_eq!(done.status, TaskStatus::Succeeded);
    assert_eq!(done.attempts, 1);
    assert_eq!(effects(db.conn()).await.get(&id), Some(&1));
}

#[tokio::test]
async fn a_worker_that_cannot_reach_the_database_holds_its_delivery_and_runs_the_task_when_it_is_back()
 {
    let (db, broker) = (TestDb::new().await, TestBroker::new().await);
    create_effect_tables(&db).await;
    let (gate, gated) = db.gated().await;
    let worker = Worker::new(
        gated,
        worker_config(&broker, "worker-behind-gate"),
        Jobs::new().with(EffectJob {
            worker: "behind-gate".to_owned(),
            delay: Duration::ZERO,
        }),
    );
    let relay = Arc::new(relay(db.conn(), &broker));
    let cancel = CancellationToken::new();
    let background = spawn_relay_and_worker(&relay, &worker, &cancel);

    gate.shut();
    let id = outbox::enqueue(db.conn(), NewTask::new(JobKind::Ingest, Platform::Tiktok))
        .await
        .expect("enqueue")
        .task()
        .id;
    wait_until(Duration::from_secs(10), "the task published", || async {
        task(db.conn(), id).await.status == TaskStatus::Published
    })
    .await;
    // Longer than the queue's delivery limit (20) at one requeue a second: a worker that
    // requeued on every failed claim would have dead-lettered the message by now.
    tokio::time::sleep(Duration::from_secs(bus::DELIVERY_LIMIT as u64 + 8)).await;
    assert_eq!(task(db.conn(), id).await.status, TaskStatus::Published);

    gate.open();
    wait_until(Duration::from_secs(20), "the task to run", || async {
        task(db.conn(), id).await.status == TaskStatus::Succeeded
    })
    .await;
    assert_eq!(effects(db.conn()).await.get(&id), Some(&1));
    cancel.cancel();
    for handle in background {
        handle.await.expect("stops");
    }
}
