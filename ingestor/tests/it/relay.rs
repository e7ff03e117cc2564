//! The outbox relay runs in any process that is told to: an ingestor started with
//! `RELAY_ENABLED=true` publishes the pending tasks.

use sea_orm::EntityTrait;
use shared::db::entities::tasks;
use shared::domain::JobKind;
use shared::domain::{Platform, TaskStatus};
use shared::outbox::{self, NewTask};
use shared::testing::{Process, TestBroker, TestDb};
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[tokio::test]
async fn an_ingestor_started_with_relay_enabled_publishes_the_pending_tasks() {
    let (db, broker) = (TestDb::new().await, TestBroker::new().await);
    let id = outbox::enqueue(db.conn(), NewTask::new(JobKind::Reply, Platform::Twitter))
        .await
        .expect("enqueue")
        .task()
        .id;
    let env: HashMap<String, String> = [
        ("SOCIAL_MEDIA_API_URL", "http://127.0.0.1:9/api"),
        ("DATABASE_URL", db.url()),
        ("AMQP_URL", broker.url()),
        ("RELAY_ENABLED", "true"),
        ("RUST_LOG", "info"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let mut ingestor = Process::spawn("ingestor", &[], &env);

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let task = tasks::Entity::find_by_id(id)
            .one(db.conn())
            .await
            .expect("read task")
            .expect("task");
        if task.status == TaskStatus::Published {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {} after 30 s; output:\n{}",
            task.status,
            ingestor.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(broker.queue_depth("reply.twitter").await, 1);
    ingestor.terminate();
    let status = ingestor.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{}", ingestor.output());
}
