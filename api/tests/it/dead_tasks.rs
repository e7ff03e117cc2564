//! The outbox, a worker and the task API together: a task whose job keeps failing ends `dead`
//! after its last attempt, people see it in `GET /v1/tasks?status=dead`, and an admin's retry
//! runs it again.

use crate::app::TestApp;
use reqwest::Method;
use shared::config::Settings;
use shared::domain::JobKind;
use shared::domain::{Platform, Role};
use shared::outbox::{self, NewTask, Relay, RelayConfig};
use shared::testing::TestBroker;
use shared::worker::{
    Job, JobContext, JobError, Jobs, Outcome, Worker, WorkerConfig, run_to_completion,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// A reply job whose provider is down until the test says otherwise.
struct Reply {
    provider_down: Arc<AtomicBool>,
    runs: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl Job for Reply {
    fn name(&self) -> &'static str {
        "reply"
    }

    fn kind(&self) -> JobKind {
        JobKind::Reply
    }

    async fn run(&self, _ctx: &JobContext) -> Result<Outcome, JobError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        if self.provider_down.load(Ordering::SeqCst) {
            return Err(JobError::transient(anyhow::anyhow!(
                "provider answered 503 Service Unavailable"
            )));
        }
        Ok(Outcome::Succeeded)
    }
}

fn settings(broker: &TestBroker) -> Settings {
    let env = [
        ("SOCIAL_MEDIA_API_URL", "http://127.0.0.1:9/api"),
        ("AMQP_URL", broker.url()),
        ("TASK_RETRY_BASE_SECONDS", "1"),
        ("TASK_RETRY_MAX_SECONDS", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    shared::config::load_from(env).expect("settings")
}

#[tokio::test]
async fn a_task_dead_after_its_last_attempt_is_listed_as_dead_and_an_admin_retry_runs_it_again() {
    let app = TestApp::spawn().await;
    let broker = TestBroker::new().await;
    let settings = settings(&broker);
    let db = app.db.conn();
    let relay = Relay::new(db.clone(), RelayConfig::from_settings(&settings, "api"));
    let provider_down = Arc::new(AtomicBool::new(true));
    let runs = Arc::new(AtomicUsize::new(0));
    let worker = Worker::new(
        db.clone(),
        WorkerConfig::from_settings(&settings, "replier"),
        Jobs::new().with(Reply {
            provider_down: provider_down.clone(),
            runs: runs.clone(),
        }),
    );
    let id = outbox::enqueue(
        db,
        NewTask::new(JobKind::Reply, Platform::Twitter).with_max_attempts(2),
    )
    .await
    .expect("enqueue")
    .task()
    .id
    .to_string();
    run_to_completion(db, &relay, &[&worker], Duration::from_secs(30))
        .await
        .expect("drains");
    assert_eq!(runs.load(Ordering::SeqCst), 2);

    let admin = app.user(Role::Admin, "admin@example.com").await;
    let page = app.get_json("/v1/tasks?status=dead", &admin.token).await;
    let dead = &page["result"][0];
    assert_eq!(dead["id"], id.as_str(), "{page}");
    assert_eq!(dead["attempts"], 2);
    assert_eq!(
        dead["lastError"],
        "provider answered 503 Service Unavailable"
    );

    provider_down.store(false, Ordering::SeqCst);
    let retried = app
        .send(app.request(
            Method::POST,
            &format!("/v1/tasks/{id}/retry"),
            Some(&admin.token),
        ))
        .await;
    assert_eq!(retried.status(), 200);
    run_to_completion(db, &relay, &[&worker], Duration::from_secs(30))
        .await
        .expect("drains");
    assert_eq!(
        runs.load(Ordering::SeqCst),
        3,
        "the retry ran the job again"
    );
    let page = app
        .get_json("/v1/tasks?status=succeeded", &admin.token)
        .await;
    assert_eq!(page["result"][0]["id"], id.as_str(), "{page}");
    let page = app.get_json("/v1/tasks?status=dead", &admin.token).await;
    assert_eq!(page["meta"]["count"], 0, "{page}");
}
