//! The outbox: enqueue in the caller's transaction, dedup keys, the relay publishing each
//! committed task exactly once, the scheduler and the sweeper.

use crate::tasks_support::{Recorder, relay, relay_limited, statuses, task, wait_until};
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};
use shared::brands::DEFAULT_BRAND;
use shared::db::idempotency::{self, Claim};
use shared::domain::JobKind;
use shared::domain::{Platform, TaskStatus};
use shared::outbox::scheduler::schedule_ingests;
use shared::outbox::sweeper::{SweeperConfig, sweep};
use shared::outbox::{self, Enqueued, NewTask, monitor};
use shared::testing::{TestBroker, TestDb};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn ingest(platform: Platform) -> NewTask {
    NewTask::new(JobKind::Ingest, platform)
}

#[tokio::test]
async fn a_task_enqueued_in_a_rolled_back_transaction_is_never_published_and_a_committed_one_is() {
    let (db, broker) = (TestDb::new().await, TestBroker::new().await);
    let recorder = Recorder::start(&broker).await;
    let relay = Arc::new(relay(db.conn(), &broker));
    let cancel = CancellationToken::new();
    let running = tokio::spawn({
        let (relay, cancel) = (relay.clone(), cancel.clone());
        async move { relay.run(&cancel).await }
    });

    let txn = db.conn().begin().await.expect("begin");
    let rolled_back = outbox::enqueue(&txn, ingest(Platform::Twitter))
        .await
        .expect("enqueue")
        .task()
        .id;
    txn.rollback().await.expect("rollback");
    let txn = db.conn().begin().await.expect("begin");
    let committed = outbox::enqueue(&txn, ingest(Platform::Twitter))
        .await
        .expect("enqueue")
        .task()
        .id;
    txn.commit().await.expect("commit");

    wait_until(
        Duration::from_secs(10),
        "the committed task's message",
        || async { recorder.total() >= 1 },
    )
    .await;
    // The relay marks the row in the transaction that claimed it, after the broker's
    // confirmation: the message may arrive first.
    wait_until(
        Duration::from_secs(10),
        "the task marked published",
        || async { task(db.conn(), committed).await.status == TaskStatus::Published },
    )
    .await;
    // Nothing is left for any relay to publish, and only the committed task was sent.
    assert_eq!(relay.publish_due().await.expect("publish"), 0);
    let seen = recorder.seen();
    assert_eq!(seen.get(&committed.to_string()), Some(&1));
    assert!(!seen.contains_key(&rolled_back.to_string()));
    assert_eq!(seen.len(), 1, "{seen:?}");
    cancel.cancel();
    running.await.expect("relay stops");
}

#[tokio::test]
async fn enqueueing_a_task_whose_dedup_key_is_active_returns_the_existing_task() {
    let db = TestDb::new().await;
    let first = outbox::enqueue(
        db.conn(),
        ingest(Platform::Facebook).with_dedup_key("comments:post-1"),
    )
    .await
    .expect("first");
    assert!(first.is_created());

    // A concurrent enqueue waits for the first transaction and then sees its task.
    let txn = db.conn().begin().await.expect("begin");
    let second = outbox::enqueue(
        &txn,
        ingest(Platform::Facebook).with_dedup_key("comments:post-2"),
    )
    .await
    .expect("second");
    let racing = tokio::spawn({
        let conn = db.conn().clone();
        async move {
            outbox::enqueue(
                &conn,
                ingest(Platform::Facebook).with_dedup_key("comments:post-2"),
            )
            .await
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    txn.commit().await.expect("commit");
    let raced = racing.await.expect("join").expect("enqueue");
    assert_eq!(raced, Enqueued::Existing(second.task().clone()));

    let again = outbox::enqueue(
        db.conn(),
        ingest(Platform::Facebook).with_dedup_key("comments:post-1"),
    )
    .await
    .expect("again");
    assert_eq!(again, Enqueued::Existing(first.task().clone()));

    // Once the task is finished, the key is free again.
    db.conn()
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE tasks SET status = 'succeeded' WHERE id = $1",
            [first.task().id.into()],
        ))
        .await
        .expect("finish");
    let later = outbox::enqueue(
        db.conn(),
        ingest(Platform::Facebook).with_dedup_key("comments:post-1"),
    )
    .await
    .expect("later");
    assert!(later.is_created());
    assert_ne!(later.task().id, first.task().id);
}

#[tokio::test]
async fn ten_thousand_tasks_enqueued_by_four_connections_are_each_published_exactly_once_by_three_relays()
 {
    const WRITERS: usize = 4;
    const PER_WRITER: usize = 2_500;
    const PER_TRANSACTION: usize = 100;
    let (db, broker) = (TestDb::new().await, TestBroker::new().await);
    let recorder = Recorder::start(&broker).await;
    let cancel = CancellationToken::new();
    let mut relays = Vec::new();
    for _ in 0..3 {
        let relay = relay(db.conn(), &broker);
        let cancel = cancel.clone();
        relays.push(tokio::spawn(async move { relay.run(&cancel).await }));
    }

    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let conn = db.conn().clone();
        writers.push(tokio::spawn(async move {
            let mut ids = Vec::with_capacity(PER_WRITER);
            for chunk in 0..PER_WRITER / PER_TRANSACTION {
                let txn = conn.begin().await.expect("begin");
                for i in 0..PER_TRANSACTION {
                    let n = writer * PER_WRITER + chunk * PER_TRANSACTION + i;
                    let platform = Platform::ALL[n % Platform::ALL.len()];
                    let enqueued = outbox::enqueue(&txn, ingest(platform))
                        .await
                        .expect("enqueue");
                    ids.push(enqueued.task().id.to_string());
                }
                txn.commit().await.expect("commit");
            }
            ids
        }));
    }
    let mut enqueued = HashSet::new();
    for writer in writers {
        enqueued.extend(writer.await.expect("writer"));
    }
    assert_eq!(enqueued.len(), WRITERS * PER_WRITER);

    wait_until(Duration::from_secs(60), "10,000 deliveries", || async {
        recorder.total() >= enqueued.len()
    })
    .await;
    // A relay's deliveries can arrive before its transaction marking them commits: wait for
    // the marks themselves (what is asserted), not only for the deliveries.
    wait_until(
        Duration::from_secs(30),
        "every task marked published",
        || async { statuses(db.conn()).await.get(&TaskStatus::Published) == Some(&enqueued.len()) },
    )
    .await;
    cancel.cancel();
    for relay in relays {
        relay.await.expect("relay stops");
    }
    // A late duplicate would have arrived by now: every row was marked before its relay
    // committed, and the relays have stopped.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = recorder.seen();
    let duplicates: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        duplicates.is_empty(),
        "published more than once: {duplicates:?}"
    );
    let seen_ids: HashSet<String> = seen.into_keys().collect();
    assert_eq!(seen_ids, enqueued);
}

#[tokio::test]
async fn the_scheduler_enqueues_one_ingest_per_platform_however_many_replicas_tick() {
    let db = TestDb::new().await;
    let platforms = [Platform::Twitter, Platform::Facebook];
    let interval = Duration::from_secs(60);
    let replicas = (0..3).map(|_| schedule_ingests(db.conn(), DEFAULT_BRAND, &platforms, interval));
    let scheduled: Vec<_> = futures_util::future::join_all(replicas)
        .await
        .into_iter()
        .map(|r| r.expect("schedule"))
        .collect();
    assert_eq!(
        scheduled.iter().map(Vec::len).sum::<usize>(),
        2,
        "{scheduled:?}"
    );
    assert_eq!(
        statuses(db.conn()).await.get(&TaskStatus::Pending),
        Some(&2)
    );

    // Finished quickly: another replica ticking within the same interval adds nothing.
    db.conn()
        .execute_unprepared("UPDATE tasks SET status = 'succeeded'")
        .await
        .expect("finish");
    let late = schedule_ingests(db.conn(), DEFAULT_BRAND, &platforms, interval)
        .await
        .expect("schedule");
    assert!(late.is_empty(), "{late:?}");

    // A tick an interval later schedules again.
    db.conn()
        .execute_unprepared("UPDATE tasks SET created_at = created_at - interval '61 seconds'")
        .await
        .expect("age");
    let next = schedule_ingests(db.conn(), DEFAULT_BRAND, &platforms, interval)
        .await
        .expect("schedule");
    assert_eq!(next, platforms.to_vec());
}

/// A sweeper configuration republishing `published` tasks after a minute.
fn sweeper_config() -> SweeperConfig {
    SweeperConfig {
        interval: Duration::from_secs(1),
        published_timeout: Duration::from_secs(60),
        max_attempts: 10,
        process_name: "test".to_owned(),
        idempotency_key_ttl: Duration::from_secs(86_400),
    }
}

#[tokio::test]
async fn a_published_task_whose_message_was_lost_is_published_again_after_the_timeout() {
    let (db, broker) = (TestDb::new().await, TestBroker::new().await);
    let relay = relay(db.conn(), &broker);
    let id = outbox::enqueue(db.conn(), ingest(Platform::Youtube))
        .await
        .expect("enqueue")
        .task()
        .id;
    assert_eq!(relay.publish_due().await.expect("publish"), 1);
    let config = sweeper_config();
    let mut link = broker.link();
    assert!(
        sweep(db.conn(), &config, &mut link)
            .await
            .expect("sweep")
            .is_empty()
    );

    // Its message is lost (purged); a minute later the sweeper hands it back.
    broker.purge("ingest.youtube").await;
    db.conn()
        .execute_unprepared("UPDATE tasks SET published_at = now() - interval '61 seconds'")
        .await
        .expect("age");
    let report = sweep(db.conn(), &config, &mut link).await.expect("sweep");
    assert_eq!(report.republished, 1);
    assert_eq!(task(db.conn(), id).await.status, TaskStatus::Pending);
    assert_eq!(relay.publish_due().await.expect("publish"), 1);
    assert_eq!(broker.queue_depth("ingest.youtube").await, 1);
}

/// Enqueues `n` YouTube ingests, publishes them, and makes them look published over a minute
/// ago (past the sweeper's timeout).
async fn published_a_minute_ago(db: &TestDb, relay: &outbox::Relay, n: usize) {
    for _ in 0..n {
        outbox::enqueue(db.conn(), ingest(Platform::Youtube))
            .await
            .expect("enqueue");
    }
    assert_eq!(relay.publish_due().await.expect("publish"), n);
    db.conn()
        .execute_unprepared("UPDATE tasks SET published_at = now() - interval '61 seconds'")
        .await
        .expect("age");
}

#[tokio::test]
async fn published_tasks_whose_messages_still_wait_in_a_long_queue_are_not_published_twice() {
    let (db, broker) = (TestDb::new().await, TestBroker::new().await);
    let relay = relay(db.conn(), &broker);
    // Nobody consumed them for over the timeout: a busy queue, not lost messages.
    published_a_minute_ago(&db, &relay, 5).await;
    let config = sweeper_config();
    let mut link = broker.link();
    let report = sweep(db.conn(), &config, &mut link).await.expect("sweep");
    assert_eq!(report.republished, 0, "{report:?}");
    assert_eq!(relay.publish_due().await.expect("publish"), 0);
    assert_eq!(broker.queue_depth("ingest.youtube").await, 5);

    // Two of the five messages are lost: the two oldest tasks go back, no more.
    broker.purge("ingest.youtube").await;
    assert_eq!(relay.publish_due().await.expect("publish"), 0);
    let conn = broker.connect().await;
    let channel = shared::bus::confirmed_channel(&conn)
        .await
        .expect("channel");
    for _ in 0..3 {
        let message = shared::bus::TaskMessage::V1 {
            task_id: shared::domain::TaskId(uuid::Uuid::new_v4()),
            kind: JobKind::Ingest,
            platform: Platform::Youtube,
            attempt: 1,
        };
        shared::bus::confirmed(
            shared::bus::publish_task(&channel, &message, None)
                .await
                .expect("publish"),
        )
        .await
        .expect("confirmed");
    }
    let report = sweep(db.conn(), &config, &mut link).await.expect("sweep");
    assert_eq!(report.republished, 2, "{report:?}");
    assert_eq!(relay.publish_due().await.expect("publish"), 2);
}

#[tokio::test]
async fn while_the_broker_cannot_be_asked_stale_published_tasks_are_left_for_a_later_sweep() {
    let (db, broker) = (TestDb::new().await, TestBroker::new().await);
    let relay = relay(db.conn(), &broker);
    published_a_minute_ago(&db, &relay, 1).await;
    let port = shared::testing::free_port();
    let mut unreachable = shared::bus::Link::new(
        &secrecy::SecretString::from(format!("amqp://guest:guest@127.0.0.1:{port}/%2f")),
        "test",
    );
    let report = sweep(db.conn(), &sweeper_config(), &mut unreachable)
        .await
        .expect("sweep");
    assert_eq!((report.republished, report.unchecked), (0, 1));
    assert_eq!(broker.queue_depth("ingest.youtube").await, 1);
}

#[tokio::test]
async fn the_sweeper_purges_idempotency_keys_past_their_time_to_live_and_keeps_the_others() {
    let db = TestDb::new().await;
    let user = shared::testing::insert_agent(db.conn(), "agent@example.com")
        .await
        .expect("user");
    for (key, age) in [("old", "25 hours"), ("recent", "23 hours")] {
        db.conn()
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO idempotency_keys \
                     (user_id, key, request_hash, response_status, response_body, created_at) \
                 VALUES ($1, $2, 'first', 202, '{}', now() - $3::interval)",
                [user.id.into(), key.into(), age.into()],
            ))
            .await
            .expect("key");
    }
    let config = SweeperConfig {
        idempotency_key_ttl: Duration::from_secs(24 * 3600),
        ..sweeper_config()
    };
    let mut link = shared::bus::Link::new(&secrecy::SecretString::from(String::new()), "test");
    let report = sweep(db.conn(), &config, &mut link).await.expect("sweep");
    assert_eq!(report.idempotency_keys_purged, 1);
    assert_eq!(
        sweep(db.conn(), &config, &mut link).await.expect("sweep"),
        Default::default()
    );

    // A purged key used again is a new request; a kept one still guards its first answer.
    let txn = db.conn().begin().await.expect("begin");
    let claim = |key| idempotency::claim(&txn, user.id, key, "second");
    assert_eq!(claim("old").await.expect("claim"), Claim::Fresh);
    assert_eq!(claim("recent").await.expect("claim"), Claim::Mismatch);
}

#[tokio::test]
async fn the_gauges_show_tasks_by_kind_and_status_the_relay_lag_and_the_queue_depth() {
    let (db, broker) = (TestDb::new().await, TestBroker::new().await);
    let handle = shared::telemetry::metrics_handle();
    for _ in 0..2 {
        outbox::enqueue(db.conn(), ingest(Platform::Twitter))
            .await
            .expect("enqueue");
    }
    outbox::enqueue(
        db.conn(),
        NewTask::new(JobKind::Reply, Platform::Facebook)
            .with_available_at(chrono::Utc::now() + chrono::Duration::hours(1)),
    )
    .await
    .expect("enqueue");
    // The oldest due task has waited a minute.
    db.conn()
        .execute_unprepared(
            "UPDATE tasks SET available_at = now() - interval '60 seconds' \
             WHERE kind = 'ingest' AND platform = 'twitter'",
        )
        .await
        .expect("age");
    monitor::refresh_task_gauges(db.conn())
        .await
        .expect("refresh");
    let text = handle.render();
    assert!(
        text.contains(r#"outbox_tasks{kind="ingest",status="pending"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"outbox_tasks{kind="reply",status="pending"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"outbox_tasks{kind="reply",status="dead"} 0"#),
        "{text}"
    );
    let lag: f64 = text
        .lines()
        .find_map(|line| line.strip_prefix("outbox_relay_lag_seconds "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no relay lag in {text}"));
    assert!((59.0..120.0).contains(&lag), "{lag}");

    relay(db.conn(), &broker)
        .publish_due()
        .await
        .expect("publish");
    let connection = broker.connect().await;
    monitor::refresh_queue_depths(&connection, &[Platform::Twitter, Platform::Facebook])
        .await
        .expect("depths");
    let text = handle.render();
    assert!(
        text.contains(r#"jobs_queue_depth{queue="ingest.twitter"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"jobs_queue_depth{queue="reply.facebook"} 0"#),
        "{text}"
    );
    assert!(
        text.contains(r#"outbox_published_total{kind="ingest",platform="twitter"} 2"#),
        "{text}"
    );
}

#[tokio::test]
async fn dead_lettered_messages_are_recorded_on_their_task_and_the_dead_letter_queue_drains() {
    use futures_util::StreamExt;
    use shared::bus::{self, DEAD_EXCHANGE, DEAD_QUEUE, DELIVERY_LIMIT};
    let metrics = shared::telemetry::metrics_handle();
    let (db, broker) = (TestDb::new().await, TestBroker::new().await);
    let relay = relay(db.conn(), &broker);
    let id = outbox::enqueue(db.conn(), ingest(Platform::Youtube))
        .await
        .expect("enqueue")
        .task()
        .id;
    assert_eq!(relay.publish_due().await.expect("publish"), 1);

    // A consumer that keeps handing the message back: past the delivery limit the broker
    // dead-letters it. And something that is not a task message lands there too.
    let conn = broker.connect().await;
    let channel = conn.create_channel().await.expect("channel");
    let mut flaky = bus::consume(&channel, "ingest.youtube", "flaky", 1)
        .await
        .expect("consume");
    let mut deliveries = 0;
    while let Ok(Some(Ok(delivery))) =
        tokio::time::timeout(Duration::from_secs(2), flaky.next()).await
    {
        deliveries += 1;
        let requeue = lapin::options::BasicNackOptions {
            requeue: true,
            ..Default::default()
        };
        delivery.acker.nack(requeue).await.expect("nack");
    }
    assert!(deliveries > DELIVERY_LIMIT, "{deliveries} deliveries");
    let confirmed = bus::confirmed_channel(&conn).await.expect("channel");
    confirmed
        .basic_publish(
            DEAD_EXCHANGE.into(),
            "".into(),
            Default::default(),
            b"not a task message",
            Default::default(),
        )
        .await
        .expect("publish")
        .await
        .expect("confirmed");
    wait_until(
        Duration::from_secs(10),
        "both messages in jobs.dead",
        || async { broker.queue_depth(DEAD_QUEUE).await == 2 },
    )
    .await;

    let cancel = CancellationToken::new();
    let recorder = tokio::spawn({
        let (db, cancel) = (db.conn().clone(), cancel.clone());
        let amqp_url = secrecy::SecretString::from(broker.url().to_owned());
        async move { outbox::dead_letters::run(&db, &amqp_url, "api", &cancel).await }
    });
    let counted = |queue: &str| {
        metrics.render().contains(&format!(
            "{}{{queue=\"{queue}\"}} 1",
            outbox::dead_letters::DEAD_LETTERED_METRIC
        ))
    };
    // A queue shows no ready message while the recorder still holds one: wait for the note
    // and the counts too.
    wait_until(
        Duration::from_secs(30),
        "jobs.dead drained and recorded",
        || async {
            broker.queue_depth(DEAD_QUEUE).await == 0
                && task(db.conn(), id).await.last_error.is_some()
                && counted("ingest.youtube")
                && counted("unknown")
        },
    )
    .await;
    let recorded = task(db.conn(), id).await;
    assert_eq!(
        recorded.status,
        TaskStatus::Published,
        "the sweeper's to hand back"
    );
    assert!(
        recorded
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("dead-lettered after 20 deliveries")),
        "{recorded:?}"
    );
    cancel.cancel();
    recorder.await.expect("recorder stops");
    let _ = conn.close(200, "done".into()).await;
}

#[tokio::test]
async fn a_brands_backlog_holds_no_more_than_its_share_of_a_queue_and_another_brands_task_is_published_at_once()
 {
    let (db, broker) = (TestDb::new().await, TestBroker::new().await);
    let other = shared::domain::BrandId::new();
    db.conn()
        .execute_unprepared(&format!(
            "INSERT INTO brands (id, name, profile_key, profile_key_hash) \
             VALUES ('{other}', 'Other', '\\x01', '\\x02')"
        ))
        .await
        .expect("a second brand");
    for _ in 0..50 {
        outbox::enqueue(db.conn(), NewTask::new(JobKind::Reply, Platform::Twitter))
            .await
            .expect("enqueue");
    }
    // Enqueued after the backlog, on the same queue, and on another queue of the same brand.
    let theirs = outbox::enqueue(
        db.conn(),
        NewTask::new(JobKind::Reply, Platform::Twitter).with_brand(other),
    )
    .await
    .expect("enqueue")
    .task()
    .id;
    let ingest = outbox::enqueue(db.conn(), ingest(Platform::Twitter))
        .await
        .expect("enqueue")
        .task()
        .id;
    let relay = relay_limited(db.conn(), &broker, 5);

    assert_eq!(relay.publish_due().await.expect("publish"), 7);
    assert_eq!(task(db.conn(), theirs).await.status, TaskStatus::Published);
    assert_eq!(task(db.conn(), ingest).await.status, TaskStatus::Published);
    let backlog = |status: &'static str| {
        let conn = db.conn().clone();
        async move {
            let row = conn
                .query_one_raw(Statement::from_string(
                    DbBackend::Postgres,
                    format!(
                        "SELECT count(*) AS n FROM tasks WHERE kind = 'reply' \
                         AND brand_id = '{DEFAULT_BRAND}' AND status = '{status}'"
                    ),
                ))
                .await
                .expect("count")
                .expect("row");
            row.try_get::<i64>("", "n").expect("n")
        }
    };
    assert_eq!(
        backlog("published").await,
        5,
        "the backlog's share of the queue"
    );
    assert_eq!(
        relay.publish_due().await.expect("publish"),
        0,
        "nothing more until some finish"
    );

    // Three finish: three more of the backlog go out.
    db.conn()
        .execute_unprepared(&format!(
            "UPDATE tasks SET status = 'succeeded', finished_at = now() WHERE id IN \
             (SELECT id FROM tasks WHERE kind = 'reply' AND brand_id = '{DEFAULT_BRAND}' \
              AND status = 'published' LIMIT 3)"
        ))
        .await
        .expect("three finish");
    assert_eq!(relay.publish_due().await.expect("publish"), 3);
    assert_eq!(backlog("published").await, 5);
    assert_eq!(backlog("pending").await, 42);
}
