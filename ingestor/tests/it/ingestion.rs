//! Ingestion end to end: the simulator, real `ingestor` processes (with the relay), real
//! PostgreSQL and RabbitMQ. The database must hold exactly the simulator's comments.

use crate::ingest_support::{SETTLE, World, assert_same_comments, plan_settings, sim_config};
use serde_json::json;
use shared::brands::DEFAULT_BRAND;
use shared::domain::Platform;
use shared::ingest::plan;
use shared::ingest::platform_status;
use shared::outbox::scheduler;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn every_simulated_comment_is_stored_exactly_once_and_a_second_pass_adds_nothing() {
    let world = World::start(sim_config(20, 25)).await;
    let ingestor = world.ingestor(&[]);
    world.schedule().await;
    world.drain(&[&ingestor]).await;
    assert_same_comments(&world).await;
    let stored = world.stored_comments().await.len();
    let audited = world
        .scalar("SELECT count(*) FROM audit_log WHERE action = 'mention.ingested'")
        .await;
    let mentions = world.scalar("SELECT count(*) FROM mentions").await;
    assert_eq!(audited, mentions, "one audit row per stored mention");
    let twitter_replies = world
        .scalar(
            "SELECT count(*) FROM mentions WHERE platform = 'twitter' AND type = 'reply' \
             AND parent_id IS NOT NULL",
        )
        .await;
    assert!(twitter_replies > 0, "X threads are kept as replies");

    // Every post's `nextUpdate` (one second) passes: the second pass reads them all again.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    world.schedule().await;
    world.drain(&[&ingestor]).await;
    assert_same_comments(&world).await;
    assert_eq!(world.stored_comments().await.len(), stored);
    let fetches = world
        .scalar(
            "SELECT count(*) FROM tasks WHERE payload->>'step' = 'comments' \
             AND status = 'succeeded'",
        )
        .await;
    assert!(
        fetches >= 2 * 8 * 20,
        "each post was fetched twice ({fetches})"
    );
    assert_eq!(
        world
            .scalar("SELECT count(*) FROM audit_log WHERE action = 'mention.ingested'")
            .await,
        audited,
        "the second pass audited nothing new"
    );
}

#[tokio::test]
async fn comments_added_to_the_world_appear_within_seconds_through_the_scheduler_and_planner() {
    let world = World::start(sim_config(3, 4)).await;
    let ingestor = world.ingestor(&[]);
    let interval = Duration::from_secs(2);
    let cancel = CancellationToken::new();
    let scheduler = {
        let (db, cancel) = (world.db.conn().clone(), cancel.clone());
        tokio::spawn(async move {
            scheduler::run(&db, Platform::ALL, interval, None, &cancel).await;
        })
    };
    let planner = {
        let (db, cancel) = (world.db.conn().clone(), cancel.clone());
        tokio::spawn(async move { plan::run(&db, &plan_settings(4), &cancel).await })
    };
    let deadline = Instant::now() + SETTLE;
    while world.stored_comments().await.len() < world.sim_comments().await.len() {
        assert!(Instant::now() < deadline, "{}", ingestor.output());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, parent, _) = world
        .sim_comments()
        .await
        .into_iter()
        .find(|(p, _, parent)| p == "facebook" && parent.is_none())
        .expect("a facebook comment");
    let post = post_of(&world, |c| c["commentId"] == parent.as_str()).await;
    let top = world
        .add_comment(
            json!({"platform": "twitter", "postId": post_of(&world, |c| c["platform"] == "twitter").await,
                            "content": "Is this still on sale?"}),
        )
        .await;
    let reply = world
        .add_comment(
            json!({"platform": "facebook", "postId": post, "parentId": parent,
                            "content": "Same question here"}),
        )
        .await;
    // The provider's refresh (one second), a planner tick, and time to work.
    let added = Instant::now();
    let deadline = added + interval + Duration::from_secs(6);
    loop {
        let stored = world.stored_comments().await;
        let has = |id: &str| stored.iter().any(|(_, r, _)| r == id);
        if has(&top) && has(&reply) {
            let reply_row = stored.iter().find(|(_, r, _)| *r == reply).expect("reply");
            assert_eq!(
                reply_row.2.as_deref(),
                Some(parent.as_str()),
                "kept with its parent"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "new comments not stored {:?} after they were added\n{}",
            added.elapsed(),
            ingestor.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cancel.cancel();
    scheduler.await.expect("scheduler stops");
    planner.await.expect("planner stops");
    assert_same_comments(&world).await;
}

/// The post of the first comment in the simulator's world that `pick` accepts.
async fn post_of(world: &World, pick: impl Fn(&serde_json::Value) -> bool) -> String {
    let body: serde_json::Value = reqwest::get(format!("{}/_sim/comments", world.sim.base_url()))
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    body["comments"]
        .as_array()
        .expect("comments")
        .iter()
        .find(|c| pick(c))
        .and_then(|c| c["postId"].as_str())
        .expect("a matching comment")
        .to_owned()
}

#[tokio::test]
async fn with_transient_faults_and_429s_the_stored_comments_are_exactly_the_same() {
    let world = World::start(sim_config(8, 10)).await;
    world
        .faults(json!({"rules": [
            {"endpoint": "*", "platform": "*", "fault": "status", "status": 503, "probability": 0.2},
            {"endpoint": "*", "platform": "*", "fault": "status", "status": 429, "probability": 0.05}
        ]}))
        .await;
    let ingestor = world.ingestor(&[]);
    world.schedule().await;
    world.drain(&[&ingestor]).await;
    assert_same_comments(&world).await;
    let stats = world.stats().await;
    let faulted: u64 = stats["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .filter(|r| r["status"] == 503 || r["status"] == 429)
        .filter_map(|r| r["count"].as_u64())
        .sum();
    assert!(faulted > 0, "faults were injected: {stats}");
}

#[tokio::test]
async fn three_ingestors_store_the_same_comments_and_never_fetch_one_post_concurrently() {
    let world = World::start(sim_config(10, 10)).await;
    // Latency makes overlapping fetches of one post likely if anything allowed them.
    world
        .faults(json!({"rules": [
            {"endpoint": "comments", "platform": "*", "fault": "latency", "ms": 30}
        ]}))
        .await;
    let ingestors = [
        world.ingestor(&[]),
        world.ingestor(&[]),
        world.ingestor(&[]),
    ];
    for _ in 0..3 {
        world.schedule().await;
        world.drain(&ingestors.iter().collect::<Vec<_>>()).await;
        tokio::time::sleep(Duration::from_millis(1_100)).await;
    }
    assert_same_comments(&world).await;
    let stats = world.stats().await;
    assert_eq!(
        stats["maxConcurrentCommentFetchesPerPost"], 1,
        "no post was fetched by two workers at once: {stats}"
    );
    let owners = world
        .scalar(
            "SELECT count(DISTINCT split_part(lease_owner, ':', 2)) FROM tasks \
             WHERE lease_owner IS NOT NULL",
        )
        .await;
    assert_eq!(owners, 0, "no task is left leased");
}

#[tokio::test]
async fn with_messaging_disabled_on_one_platform_comments_and_other_messages_still_flow() {
    let world = World::start(sim_config(3, 4)).await;
    world
        .faults(json!({"messagingDisabled": ["instagram"]}))
        .await;
    let ingestor = world.ingestor(&[]);
    world.schedule().await;
    world.drain(&[&ingestor]).await;
    // A second pass does not ask again (the next check is an hour away by default).
    world.schedule().await;
    world.drain(&[&ingestor]).await;
    assert_same_comments(&world).await;

    for platform in [Platform::Facebook, Platform::Twitter] {
        let expected = world.sim_received_messages(platform).await;
        assert!(!expected.is_empty());
        assert_eq!(world.stored_messages(platform).await, expected);
    }
    assert!(world.stored_messages(Platform::Instagram).await.is_empty());
    let statuses = platform_status::list(world.db.conn(), DEFAULT_BRAND)
        .await
        .expect("status");
    let messaging = |p: Platform| {
        statuses
            .iter()
            .find(|s| s.platform == p)
            .and_then(|s| s.messaging_enabled)
    };
    assert_eq!(messaging(Platform::Instagram), Some(false));
    assert_eq!(messaging(Platform::Facebook), Some(true));
    let open = world
        .scalar("SELECT count(*) FROM circuit_breakers WHERE state <> 'closed'")
        .await;
    assert_eq!(open, 0, "no breaker opened");
    let stats = world.stats().await;
    let instagram_403s: u64 = stats["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .filter(|r| r["platform"] == "instagram" && r["status"] == 403)
        .filter_map(|r| r["count"].as_u64())
        .sum();
    assert_eq!(
        instagram_403s, 1,
        "messaging was checked once, not at every poll"
    );
    let errors = ingestor
        .output()
        .lines()
        .filter(|l| l.contains("ERROR"))
        .count();
    assert_eq!(errors, 0, "{}", ingestor.output());
}

#[tokio::test]
async fn direct_messages_listed_newest_first_with_ours_on_top_are_all_stored_and_ours_never() {
    let world = World::start(sim_config(1, 1)).await;
    let platforms = [Platform::Facebook, Platform::Instagram, Platform::Twitter];
    for platform in platforms {
        let messages = world.sim_messages(platform).await;
        let customer = messages
            .iter()
            .find(|m| m["action"] == "received")
            .and_then(|m| m["senderId"].as_str())
            .expect("a customer")
            .to_owned();
        world
            .send_message(platform, &customer, "Thanks, we are on it")
            .await;
        let listed = world.sim_messages(platform).await;
        assert_eq!(listed[0]["action"], "sent", "{platform}: newest first");
        assert_eq!(listed[0]["message"], "Thanks, we are on it");
    }
    let ingestor = world.ingestor(&[]);
    world.schedule().await;
    world.drain(&[&ingestor]).await;
    for platform in platforms {
        let expected = world.sim_received_messages(platform).await;
        assert_eq!(
            expected.len(),
            6,
            "{platform}: 3 conversations, 2 received in each"
        );
        assert_eq!(
            world.stored_messages(platform).await,
            expected,
            "{platform}: every received message, whatever its place in the list, and no sent one"
        );
    }
}

#[tokio::test]
async fn every_received_message_of_a_long_x_conversation_is_stored_across_its_pages() {
    let world = World::start(simulator::SimConfig {
        platforms: vec![simulator::Platform::Twitter],
        conversations_per_platform: 2,
        messages_per_conversation: 60,
        ..sim_config(1, 1)
    })
    .await;
    let expected = world.sim_received_messages(Platform::Twitter).await;
    assert_eq!(expected.len(), 60, "2 conversations, 30 received in each");
    let ingestor = world.ingestor(&[]);
    world.schedule().await;
    world.drain(&[&ingestor]).await;
    assert_eq!(
        world.stored_messages(Platform::Twitter).await,
        expected,
        "all of them, not only the first page's"
    );
}

#[tokio::test]
async fn a_bluesky_history_404_does_not_stop_the_other_platforms() {
    let world = World::start(sim_config(3, 4)).await;
    world.faults(json!({"historyNotFound": ["bluesky"]})).await;
    let ingestor = world.ingestor(&[]);
    world.schedule().await;
    world.drain(&[&ingestor]).await;
    let expected: Vec<_> = world
        .sim_comments()
        .await
        .into_iter()
        .filter(|(p, _, _)| p != "bluesky")
        .collect();
    let stored = world.stored_comments().await;
    assert_eq!(stored, expected);
    let failed = world
        .scalar("SELECT count(*) FROM tasks WHERE status IN ('failed', 'dead')")
        .await;
    assert_eq!(failed, 0, "{:?}", world.task_summary().await);
}
