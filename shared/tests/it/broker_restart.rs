//! RabbitMQ stopped and started while tasks are enqueued: the relay keeps them pending, and
//! once the broker is back every task completes, each exactly once. A broker that blocks
//! publishers (a memory alarm) cannot hold the relay's claim past its deadline. The broker is
//! a private node ([`RabbitNode`]), so the machine's RabbitMQ and the other tests are never
//! disturbed.

use crate::tasks_support::{
    EffectJob, create_effect_tables, effects, relay, spawn_relay_and_worker, statuses, wait_until,
    worker_config,
};
use sea_orm::ConnectionTrait;
use shared::domain::JobKind;
use shared::domain::{Platform, TaskStatus};
use shared::outbox::{self, NewTask, RelayError};
use shared::testing::{BrokerOutage, RabbitNode, TestBroker, TestDb};
use shared::worker::{Jobs, Worker};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

async fn enqueue(db: &TestDb, n: usize) {
    for i in 0..n {
        let platform = Platform::ALL[i % Platform::ALL.len()];
        outbox::enqueue(db.conn(), NewTask::new(JobKind::Ingest, platform))
            .await
            .expect("enqueue");
    }
}

#[tokio::test]
async fn tasks_enqueued_while_rabbitmq_is_stopped_all_complete_once_it_is_back() {
    let (db, node) = tokio::join!(TestDb::new(), RabbitNode::start());
    let broker = TestBroker::on(&node).await;
    create_effect_tables(&db).await;
    let relay = Arc::new(relay(db.conn(), &broker));
    let worker = Worker::new(
        db.conn().clone(),
        worker_config(&broker, "ingestor"),
        Jobs::new().with(EffectJob {
            worker: "ingestor".to_owned(),
            delay: Duration::from_millis(10),
        }),
    );
    let cancel = CancellationToken::new();
    let loops = spawn_relay_and_worker(&relay, &worker, &cancel);
    enqueue(&db, 20).await;
    wait_until(Duration::from_secs(20), "the first 20 tasks", || async {
        statuses(db.conn()).await.get(&TaskStatus::Succeeded) == Some(&20)
    })
    .await;

    let outage = BrokerOutage::begin(&node).await;
    enqueue(&db, 20).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        statuses(db.conn()).await.get(&TaskStatus::Pending),
        Some(&20),
        "nothing is marked published while the broker is down"
    );
    outage.end().await;

    wait_until(
        Duration::from_secs(60),
        "all 40 tasks after the restart",
        || async { statuses(db.conn()).await.get(&TaskStatus::Succeeded) == Some(&40) },
    )
    .await;
    let effects = effects(db.conn()).await;
    assert_eq!(effects.len(), 40);
    assert!(effects.values().all(|n| *n == 1), "{effects:?}");
    cancel.cancel();
    for handle in loops {
        handle.await.expect("stops");
    }
}

#[tokio::test]
async fn a_broker_that_blocks_publishers_cannot_hold_the_relays_claim_past_its_deadline() {
    let (db, node) = tokio::join!(TestDb::new(), RabbitNode::start());
    let broker = TestBroker::on(&node).await;
    let relay = relay(db.conn(), &broker);
    enqueue(&db, 1).await;
    assert_eq!(relay.publish_due().await.expect("publish"), 1);

    // A memory alarm: the broker stops reading from publishing connections (flow control).
    node.set_memory_alarm(true).await;
    enqueue(&db, 200).await;
    let round = tokio::time::timeout(Duration::from_secs(30), relay.publish_due())
        .await
        .expect("the round ends by its deadline");
    assert!(
        matches!(round, Err(RelayError::PublishTimeout(_))),
        "the publishing itself gave up at the deadline: {round:?}"
    );
    // The claim's transaction is over: the rows are pending and nobody holds their locks.
    let locked = db
        .conn()
        .execute_unprepared("SELECT id FROM tasks WHERE status = 'pending' FOR UPDATE NOWAIT")
        .await
        .expect("no row is still locked by the relay");
    assert_eq!(locked.rows_affected(), 200);

    node.set_memory_alarm(false).await;
    wait_until(Duration::from_secs(30), "the backlog published", || async {
        let _ = relay.publish_due().await;
        statuses(db.conn()).await.get(&TaskStatus::Published) == Some(&201)
    })
    .await;
}
