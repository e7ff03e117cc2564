//! The `/_sim` control surface: comments, reset, seeds, sizes, arrivals and fetch concurrency.

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::support::{empty_ledger, small, spawn, wait_until};

#[tokio::test]
async fn sim_comments_list_every_comment_with_the_contract_fields() {
    let t = spawn(small()).await;
    let comments = t.sim_comments().await;
    // 8 platforms × 3 posts with comments × 3 comments × (1 + 1 reply).
    assert_eq!(comments.len(), 144);
    for c in &comments {
        let mut keys: Vec<&str> = c
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "commentId",
                "content",
                "fromUs",
                "parentId",
                "platform",
                "postId"
            ]
        );
        assert_eq!(c["fromUs"], false);
        assert_eq!(c["postId"].as_str().expect("postId").len(), 20);
    }
    assert_eq!(
        comments.iter().filter(|c| c["parentId"].is_null()).count(),
        72
    );
}

#[tokio::test]
async fn a_posted_sim_comment_is_returned_and_shows_in_get_comments() {
    let t = spawn(small()).await;
    let parent = t.comments_on("facebook").await[0].clone();
    let post = parent["postId"].as_str().expect("post");
    let created = t
        .control_post(
            "/comments",
            &json!({"platform": "facebook", "postId": post, "parentId": parent["commentId"],
                    "content": "Any update?", "author": "Dana Ray"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["platform"], "facebook");
    assert_eq!(created.body["postId"], post);
    assert_eq!(created.body["parentId"], parent["commentId"]);
    assert_eq!(created.body["content"], "Any update?");
    assert_eq!(created.body["fromUs"], false);

    let a = t.api_get(&format!("/comments/{post}")).await;
    let holder = a.body["facebook"]
        .as_array()
        .expect("array")
        .iter()
        .find(|c| c["commentId"] == parent["commentId"])
        .expect("parent")
        .clone();
    let new = holder["replies"]
        .as_array()
        .expect("replies")
        .iter()
        .find(|r| r["commentId"] == created.body["commentId"])
        .expect("new reply nested")
        .clone();
    assert_eq!(new["from"]["name"], "Dana Ray");
    assert!(t.sim_comments().await.contains(&created.body));
}

#[tokio::test]
async fn a_sim_comment_on_an_empty_post_ends_its_404() {
    let t = spawn(small()).await;
    let history = t.api_get("/history?lastDays=0&platform=threads").await;
    let newest = history.body["history"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    t.api_get(&format!("/comments/{newest}"))
        .await
        .assert_error(404);
    let created = t
        .control_post(
            "/comments",
            &json!({"platform": "threads", "postId": newest, "content": "First!"}),
        )
        .await;
    assert_eq!(created.status, 201);
    assert!(created.body["parentId"].is_null());
    let a = t.api_get(&format!("/comments/{newest}")).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["threads"][0]["comment"], "First!");
}

#[tokio::test]
async fn sim_comments_on_unknown_posts_or_parents_are_refused() {
    let t = spawn(small()).await;
    let missing = t
        .control_post(
            "/comments",
            &json!({"platform": "facebook", "postId": "nope", "content": "x"}),
        )
        .await;
    assert_eq!(missing.status, 404);
    let post = t.comments_on("facebook").await[0]["postId"].clone();
    let wrong_platform = t
        .control_post(
            "/comments",
            &json!({"platform": "twitter", "postId": post, "content": "x"}),
        )
        .await;
    assert_eq!(wrong_platform.status, 400);
    let bad_parent = t
        .control_post(
            "/comments",
            &json!({"platform": "facebook", "postId": post, "parentId": "1_2", "content": "x"}),
        )
        .await;
    assert_eq!(bad_parent.status, 404);
}

#[tokio::test]
async fn reset_restores_the_seeded_world_and_empties_ledger_and_stats() {
    let t = spawn(small()).await;
    let seeded = t.sim_comments().await;
    let parent = seeded[0].clone();
    let platform = parent["platform"].as_str().expect("platform");
    t.reply(
        platform,
        parent["commentId"].as_str().expect("id"),
        "Before reset",
    )
    .await;
    t.set_faults(json!({"messagingDisabled": ["twitter"]}))
        .await;
    assert_ne!(t.sim_comments().await, seeded);

    let reset = t.control_post("/reset", &json!({})).await;
    assert_eq!(reset.status, 200);
    assert_eq!(t.sim_comments().await, seeded);
    assert_eq!(t.ledger().await, empty_ledger());
    assert_eq!(t.control_get("/stats").await["total"], 0);
    assert_eq!(
        t.control_get("/faults").await["messagingDisabled"],
        json!([])
    );

    let again = t
        .reply(
            platform,
            parent["commentId"].as_str().expect("id"),
            "After reset",
        )
        .await;
    assert_eq!(again.status, 200);
}

/// `value` without the instants it carries (`created`, `lastModified`, `publishedAt`).
fn without_times(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| !matches!(k.as_str(), "created" | "lastModified" | "publishedAt"))
                .map(|(k, v)| (k, without_times(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_times).collect()),
        other => other,
    }
}

#[tokio::test]
async fn the_same_seed_builds_the_same_world_and_another_seed_another() {
    let a = spawn(small()).await;
    let b = spawn(small()).await;
    let c = spawn(simulator::SimConfig { seed: 7, ..small() }).await;
    assert_eq!(a.sim_comments().await, b.sim_comments().await);
    // Times are relative to each simulator's start, which may fall in different seconds.
    let everything = "/history?lastDays=0&limit=1000";
    assert_eq!(
        without_times(a.api_get(everything).await.body),
        without_times(b.api_get(everything).await.body)
    );
    assert_ne!(a.sim_comments().await, c.sim_comments().await);
}

#[tokio::test]
async fn a_large_world_of_8_platforms_20_posts_and_25_comments_is_served() {
    let t = spawn(simulator::SimConfig {
        posts_per_platform: 20,
        comments_per_post: 25,
        replies_per_comment: 0,
        empty_posts_per_platform: 0,
        ..small()
    })
    .await;
    assert_eq!(t.sim_comments().await.len(), 8 * 20 * 25);
    let history = t.api_get("/history?lastDays=0&limit=1000").await;
    let posts = history.body["history"].as_array().expect("history");
    assert_eq!(posts.len(), 160);
    let post = posts[0]["id"].as_str().expect("id");
    let platform = posts[0]["platforms"][0].as_str().expect("platform");
    let a = t.api_get(&format!("/comments/{post}")).await;
    assert_eq!(a.body[platform].as_array().expect("comments").len(), 25);
}

#[tokio::test]
async fn concurrent_fetches_of_one_post_are_reported() {
    let t = spawn(small()).await;
    t.set_faults(json!({"rules": [{"endpoint": "comments", "fault": "latency", "ms": 300}]}))
        .await;
    let comments = t.sim_comments().await;
    let post = comments[0]["postId"].as_str().expect("post").to_owned();
    let other = comments
        .iter()
        .map(|c| c["postId"].as_str().expect("post"))
        .find(|p| *p != post)
        .expect("another post")
        .to_owned();
    let path = format!("/comments/{post}");
    let answers = join_all((0..3).map(|_| t.api_get(&path))).await;
    assert!(answers.iter().all(|a| a.status == 200));
    t.api_get(&format!("/comments/{other}")).await;
    let stats = t.control_get("/stats").await;
    assert_eq!(stats["maxConcurrentCommentFetchesPerPost"], 3);
}

#[tokio::test]
async fn comments_and_messages_arrive_over_time() {
    let t = spawn(simulator::SimConfig {
        comments_per_minute: 6000.0,
        messages_per_minute: 3000.0,
        ..small()
    })
    .await;
    let seeded = 144;
    let grown = wait_until(Duration::from_secs(5), || async {
        t.sim_comments().await.len() >= seeded + 20
    })
    .await;
    assert!(grown, "about 100 comments a second arrive");
    let more = wait_until(Duration::from_secs(5), || async {
        let mut all = 0;
        for platform in ["facebook", "instagram", "twitter"] {
            let a = t.api_get(&format!("/messages/{platform}")).await;
            all += a.body["messages"].as_array().map_or(0, Vec::len);
        }
        all > 36
    })
    .await;
    assert!(more, "messages arrive too");
}

#[tokio::test]
async fn a_posted_sim_message_is_returned_listed_and_served_in_its_conversation() {
    let t = spawn(small()).await;
    let messages = t.control_get("/messages").await["messages"]
        .as_array()
        .expect("messages")
        .clone();
    let first = messages
        .iter()
        .find(|m| m["platform"] == "instagram")
        .expect("an instagram conversation")
        .clone();
    let created = t
        .control_post(
            "/messages",
            &json!({"platform": "instagram", "conversationId": first["conversationId"],
                    "content": "Is my order on its way?"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["conversationId"], first["conversationId"]);
    assert_eq!(created.body["content"], "Is my order on its way?");
    assert_eq!(created.body["fromUs"], false);
    let listed = t.control_get("/messages").await["messages"]
        .as_array()
        .expect("messages")
        .clone();
    assert_eq!(listed.len(), messages.len() + 1);
    assert!(listed.contains(&created.body));

    let served = t.api_get("/messages/instagram").await;
    assert!(
        served.body["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .any(|m| m["id"] == created.body["messageId"]),
        "{}",
        served.body
    );

    let unknown = t
        .control_post(
            "/messages",
            &json!({"platform": "instagram", "conversationId": "nope", "content": "Hi"}),
        )
        .await;
    assert_eq!(unknown.status, 404);
}
