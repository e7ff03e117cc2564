//! What the outbox and worker tests share: relays and workers tuned for tests (short leases,
//! short backoffs), a job with an observable effect, a consumer that records every message it
//! sees, and bounded waits.

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, Statement, TransactionTrait,
};
use secrecy::SecretString;
use shared::bus;
use shared::db::entities::tasks;
use shared::domain::JobKind;
use shared::domain::{Platform, TaskId, TaskStatus};
use shared::outbox::{Relay, RelayConfig};
use shared::testing::{TestBroker, TestDb};
use shared::worker::{Job, JobContext, JobError, Outcome, Worker, WorkerConfig};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// A relay that polls often and reconnects quickly, without a limit per brand.
pub fn relay(db: &DatabaseConnection, broker: &TestBroker) -> Relay {
    relay_limited(db, broker, u32::MAX)
}

/// [`relay`] publishing at most `brand_in_flight` unfinished tasks of a brand per queue.
pub fn relay_limited(db: &DatabaseConnection, broker: &TestBroker, brand_in_flight: u32) -> Relay {
    Relay::new(
        db.clone(),
        RelayConfig {
            amqp_url: SecretString::from(broker.url().to_owned()),
            connection_name: "test relay".to_owned(),
            batch_size: 200,
            brand_in_flight,
            poll_interval: Duration::from_millis(200),
            max_backoff: Duration::from_millis(500),
            confirm_timeout: Duration::from_secs(5),
        },
    )
}

/// A worker configuration with a 2 s lease, fast retries and a short grace period.
pub fn worker_config(broker: &TestBroker, name: &str) -> WorkerConfig {
    worker_config_for(broker.url(), name)
}

/// [`worker_config`] for a broker URL.
pub fn worker_config_for(amqp_url: &str, name: &str) -> WorkerConfig {
    WorkerConfig {
        process_name: name.to_owned(),
        amqp_url: SecretString::from(amqp_url.to_owned()),
        platforms: Platform::ALL.to_vec(),
        prefetch: 4,
        lease: Duration::from_secs(2),
        max_attempts: 10,
        retry_base: Duration::from_millis(50),
        retry_max: Duration::from_millis(200),
        shutdown_grace: Duration::from_millis(500),
        max_backoff: Duration::from_millis(500),
    }
}

/// Creates the tables [`EffectJob`] writes to, as the schema's owner, for the services' role.
pub async fn create_effect_tables(db: &TestDb) {
    db.owner_conn()
        .execute_unprepared(
            "CREATE TABLE job_starts (task_id uuid NOT NULL, worker text NOT NULL, \
                                      at timestamptz NOT NULL DEFAULT clock_timestamp()); \
             CREATE TABLE job_effects (task_id uuid NOT NULL, worker text NOT NULL); \
             GRANT SELECT, INSERT ON job_starts, job_effects TO social_messages_app",
        )
        .await
        .expect("create effect tables");
}

/// An `ingest` job with an effect a test can count: it records that it started (committed at
/// once), waits `delay`, then writes one `job_effects` row and the task's success in one
/// transaction.
pub struct EffectJob {
    /// Written into both tables.
    pub worker: String,
    /// Time between start and effect.
    pub delay: Duration,
}

#[async_trait::async_trait]
impl Job for EffectJob {
    fn name(&self) -> &'static str {
        "effect"
    }

    fn kind(&self) -> JobKind {
        JobKind::Ingest
    }

    async fn run(&self, ctx: &JobContext) -> Result<Outcome, JobError> {
        ctx.db()
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO job_starts (task_id, worker) VALUES ($1, $2)",
                [ctx.task_id().into(), self.worker.clone().into()],
            ))
            .await?;
        tokio::time::sleep(self.delay).await;
        let txn = ctx.db().begin().await?;
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO job_effects (task_id, worker) VALUES ($1, $2)",
            [ctx.task_id().into(), self.worker.clone().into()],
        ))
        .await?;
        ctx.succeed_in(&txn).await?;
        txn.commit().await?;
        Ok(Outcome::Succeeded)
    }
}

/// `(task_id, count)` of `job_effects` rows.
pub async fn effects(db: &impl ConnectionTrait) -> HashMap<TaskId, i64> {
    count_by_task(db, "job_effects").await
}

/// `(task_id, count)` of `job_starts` rows.
pub async fn starts(db: &impl ConnectionTrait) -> HashMap<TaskId, i64> {
    count_by_task(db, "job_starts").await
}

async fn count_by_task(db: &impl ConnectionTrait, table: &str) -> HashMap<TaskId, i64> {
    db.query_all_raw(Statement::from_string(
        DbBackend::Postgres,
        format!("SELECT task_id, count(*) AS n FROM {table} GROUP BY task_id"),
    ))
    .await
    .expect("count rows")
    .into_iter()
    .map(|row| {
        let id: uuid::Uuid = row.try_get("", "task_id").expect("task_id");
        let n: i64 = row.try_get("", "n").expect("n");
        (TaskId(id), n)
    })
    .collect()
}

/// Tasks per status.
pub async fn statuses(db: &impl ConnectionTrait) -> HashMap<TaskStatus, usize> {
    let mut counts = HashMap::new();
    for task in tasks::Entity::find().all(db).await.expect("tasks") {
        *counts.entry(task.status).or_insert(0) += 1;
    }
    counts
}

/// One task.
pub async fn task(db: &impl ConnectionTrait, id: TaskId) -> tasks::Model {
    tasks::Entity::find_by_id(id)
        .one(db)
        .await
        .expect("read task")
        .expect("task exists")
}

/// Polls `condition` every 50 ms until it holds; panics with `what` after `timeout`.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !condition().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A consumer on every job queue of a vhost that acknowledges everything and counts
/// deliveries by `message_id`.
pub struct Recorder {
    seen: Arc<Mutex<HashMap<String, usize>>>,
    _connection: lapin::Connection,
}

impl Recorder {
    /// Starts consuming.
    pub async fn start(broker: &TestBroker) -> Recorder {
        use futures_util::StreamExt;
        let connection = broker.connect().await;
        let seen = Arc::new(Mutex::new(HashMap::new()));
        for &kind in JobKind::ALL {
            for &platform in Platform::ALL {
                let channel = connection.create_channel().await.expect("channel");
                let mut consumer = bus::consume(
                    &channel,
                    &bus::routing_key(kind, platform),
                    "recorder",
                    1000,
                )
                .await
                .expect("consume");
                let seen = seen.clone();
                tokio::spawn(async move {
                    while let Some(Ok(delivery)) = consumer.next().await {
                        let id = delivery
                            .properties
                            .message_id()
                            .as_ref()
                            .map(|id| id.to_string())
                            .unwrap_or_default();
                        *seen.lock().expect("recorder lock").entry(id).or_insert(0) += 1;
                        let _ = delivery.acker.ack(Default::default()).await;
                    }
                    drop(channel);
                });
            }
        }
        Recorder {
            seen,
            _connection: connection,
        }
    }

    /// Deliveries so far by message id.
    pub fn seen(&self) -> HashMap<String, usize> {
        self.seen.lock().expect("recorder lock").clone()
    }

    /// Deliveries so far.
    pub fn total(&self) -> usize {
        self.seen.lock().expect("recorder lock").values().sum()
    }
}

/// Runs `relay` and `worker` in the background until `cancel` fires; join the handles after.
pub fn spawn_relay_and_worker(
    relay: &Arc<Relay>,
    worker: &Worker,
    cancel: &tokio_util::sync::CancellationToken,
) -> [tokio::task::JoinHandle<()>; 2] {
    [
        tokio::spawn({
            let (relay, cancel) = (relay.clone(), cancel.clone());
            async move { relay.run(&cancel).await }
        }),
        tokio::spawn({
            let (worker, cancel) = (worker.clone(), cancel.clone());
            async move { worker.run(None, &cancel).await }
        }),
    ]
}
