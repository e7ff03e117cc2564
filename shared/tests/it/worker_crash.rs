//! A worker process killed with SIGKILL in the middle of a job: the task is finished by
//! another worker once the lease has expired, and the job's effect happens once.
//!
//! The killed worker is a real, separate process: this test binary started again to run only
//! [`crash_child_worker`] (an ignored test that does nothing unless given its environment),
//! which runs the worker framework against the same database and vhost.

use crate::tasks_support::{
    EffectJob, create_effect_tables, effects, relay, starts, task, wait_until, worker_config,
};
use shared::domain::JobKind;
use shared::domain::{Platform, TaskStatus};
use shared::outbox::sweeper::{self, SweeperConfig};
use shared::outbox::{self, NewTask};
use shared::testing::{TestBroker, TestDb};
use shared::worker::{Jobs, Worker};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const CHILD_DATABASE_URL: &str = "CRASH_CHILD_DATABASE_URL";
const CHILD_AMQP_URL: &str = "CRASH_CHILD_AMQP_URL";

/// Kills the child when the test ends, whatever happens.
struct ChildWorker(Child);

impl Drop for ChildWorker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_child(db: &TestDb, broker: &TestBroker) -> ChildWorker {
    let exe = std::env::current_exe().expect("test executable");
    let child = Command::new(exe)
        .args([
            "--exact",
            "worker_crash::crash_child_worker",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_DATABASE_URL, db.url())
        .env(CHILD_AMQP_URL, broker.url())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn the child worker");
    ChildWorker(child)
}

/// The child worker: consumes with a job that takes a minute, until it is killed.
#[tokio::test]
#[ignore = "the child process of worker_process_killed_mid_job_…; does nothing on its own"]
async fn crash_child_worker() {
    let (Ok(database_url), Ok(amqp_url)) = (
        std::env::var(CHILD_DATABASE_URL),
        std::env::var(CHILD_AMQP_URL),
    ) else {
        return;
    };
    shared::telemetry::init(shared::config::LogFormat::Text);
    let db = sea_orm::Database::connect(database_url)
        .await
        .expect("child connects to the database");
    let worker = Worker::new(
        db,
        crate::tasks_support::worker_config_for(&amqp_url, "doomed"),
        Jobs::new().with(EffectJob {
            worker: "doomed".to_owned(),
            delay: Duration::from_secs(60),
        }),
    );
    worker.run(None, &CancellationToken::new()).await;
}

#[tokio::test]
async fn a_worker_process_killed_mid_job_leaves_the_task_to_another_worker_which_does_it_once() {
    let (db, broker) = (TestDb::new().await, TestBroker::new().await);
    create_effect_tables(&db).await;
    let relay = Arc::new(relay(db.conn(), &broker));
    let cancel = CancellationToken::new();
    let relay_loop = tokio::spawn({
        let (relay, cancel) = (relay.clone(), cancel.clone());
        async move { relay.run(&cancel).await }
    });
    let mut child = spawn_child(&db, &broker);

    let id = outbox::enqueue(
        db.conn(),
        NewTask::new(JobKind::Ingest, Platform::Instagram),
    )
    .await
    .expect("enqueue")
    .task()
    .id;
    wait_until(
        Duration::from_secs(30),
        "the child worker to start the job",
        || async { starts(db.conn()).await.contains_key(&id) },
    )
    .await;
    let running = task(db.conn(), id).await;
    assert_eq!(running.status, TaskStatus::Running);
    assert!(
        running
            .lease_owner
            .as_deref()
            .is_some_and(|owner| owner.starts_with("doomed:")),
        "{running:?}"
    );

    child.0.kill().expect("SIGKILL the child worker");
    child.0.wait().expect("reap the child");

    // The survivors: a worker and the sweeper (as in api), on the same vhost.
    let survivor = Worker::new(
        db.conn().clone(),
        worker_config(&broker, "survivor"),
        Jobs::new().with(EffectJob {
            worker: "survivor".to_owned(),
            delay: Duration::ZERO,
        }),
    );
    let sweeper_config = SweeperConfig {
        interval: Duration::from_millis(250),
        published_timeout: Duration::from_secs(60),
        max_attempts: 10,
        process_name: "api".to_owned(),
        idempotency_key_ttl: Duration::from_secs(86_400),
    };
    let loops = [
        tokio::spawn({
            let (survivor, cancel) = (survivor.clone(), cancel.clone());
            async move { survivor.run(None, &cancel).await }
        }),
        tokio::spawn({
            let (db, cancel) = (db.conn().clone(), cancel.clone());
            let amqp_url = secrecy::SecretString::from(broker.url().to_owned());
            async move { sweeper::run(&db, &sweeper_config, &amqp_url, &cancel).await }
        }),
    ];
    wait_until(
        Duration::from_secs(30),
        "the survivor to finish the task",
        || async { task(db.conn(), id).await.status == TaskStatus::Succeeded },
    )
    .await;

    let done = task(db.conn(), id).await;
    assert_eq!(done.attempts, 2, "the killed attempt counts");
    assert!(done.lease_owner.is_none());
    let error = done.last_error.unwrap_or_default();
    assert!(error.contains("lease of doomed:"), "{error}");
    assert_eq!(
        effects(db.conn()).await.get(&id),
        Some(&1),
        "the effect happened once"
    );
    assert_eq!(starts(db.conn()).await.get(&id), Some(&2));
    cancel.cancel();
    relay_loop.await.expect("relay stops");
    for handle in loops {
        handle.await.expect("stops");
    }
}
