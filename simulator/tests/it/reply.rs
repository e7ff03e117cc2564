//! `POST /comments/reply/:commentId` and `POST /comments/reply`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{TestSim, empty_ledger, small, spawn, wait_until};

/// A top-level comment of `platform` in the world.
async fn some_comment(t: &TestSim, platform: &str) -> Value {
    t.comments_on(platform)
        .await
        .into_iter()
        .find(|c| c["parentId"].is_null())
        .expect("a top-level comment")
}

/// Whether GET comments of `post` shows a comment with this Social Comment ID anywhere.
async fn visible(t: &TestSim, post: &str, comment_id: &str) -> bool {
    let a = t.api_get(&format!("/comments/{post}")).await;
    a.body
        .to_string()
        .contains(&format!("\"commentId\":\"{comment_id}\""))
}

#[tokio::test]
async fn a_reply_is_answered_as_documented() {
    let t = spawn(small()).await;
    let parent = some_comment(&t, "facebook").await;
    let parent_id = parent["commentId"].as_str().expect("id");
    let a = t.reply("facebook", parent_id, "Thanks for asking!").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["status"], "success");
    assert_eq!(a.body["id"], parent["postId"]);
    assert_eq!(
        a.body["commentId"]
            .as_str()
            .expect("Ayrshare Comment ID")
            .len(),
        20
    );
    let fb = &a.body["facebook"];
    assert_eq!(fb["status"], "success");
    assert_eq!(fb["sourceCommentId"], parent_id);
    assert_eq!(fb["comment"], "Thanks for asking!");
    assert_eq!(fb["platform"], "facebook");
    let new_id = fb["commentId"].as_str().expect("Social Comment ID");
    assert_ne!(new_id, parent_id);
    assert_eq!(
        a.body.as_object().expect("object").len(),
        4,
        "status, id, commentId, facebook: {}",
        a.body
    );
}

#[tokio::test]
async fn a_reply_with_the_comment_id_in_the_body_is_accepted() {
    let t = spawn(small()).await;
    let parent = some_comment(&t, "youtube").await;
    let a = t
        .api_post(
            "/comments/reply",
            &json!({
                "commentId": parent["commentId"],
                "comment": "We'll look into it.",
                "platforms": ["youtube"],
                "searchPlatformId": true,
            }),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["youtube"]["sourceCommentId"], parent["commentId"]);
}

#[tokio::test]
async fn the_ledger_is_empty_until_a_reply_is_posted() {
    let t = spawn(small()).await;
    assert_eq!(t.ledger().await, empty_ledger());
    let parent = some_comment(&t, "linkedin").await;
    let a = t
        .reply(
            "linkedin",
            parent["commentId"].as_str().expect("id"),
            "Hello!",
        )
        .await;
    assert_eq!(a.status, 200);
    let ledger = t.ledger().await;
    let replies = ledger["replies"].as_array().expect("replies");
    assert_eq!(replies.len(), 1);
    let entry = &replies[0];
    assert_eq!(entry["platform"], "linkedin");
    assert_eq!(entry["parentId"], parent["commentId"]);
    assert_eq!(entry["commentId"], a.body["linkedin"]["commentId"]);
    assert_eq!(entry["content"], "Hello!");
    crate::support::time(&entry["at"]);
    assert_eq!(ledger["messages"], json!([]));
}

#[tokio::test]
async fn a_reply_joins_the_thread_under_its_parent_as_ours() {
    let t = spawn(small()).await;
    let parent = some_comment(&t, "instagram").await;
    let parent_id = parent["commentId"].as_str().expect("id");
    let post = parent["postId"].as_str().expect("post");
    let a = t.reply("instagram", parent_id, "On its way!").await;
    let reply_id = a.body["instagram"]["commentId"].as_str().expect("id");

    let comments = t.api_get(&format!("/comments/{post}")).await;
    let holder = comments.body["instagram"]
        .as_array()
        .expect("array")
        .iter()
        .find(|c| c["commentId"] == parent_id)
        .expect("parent listed")
        .clone();
    let ours = holder["replies"]
        .as_array()
        .expect("replies")
        .iter()
        .find(|r| r["commentId"] == reply_id)
        .expect("reply nested under its parent");
    let account = simulator::our_account(simulator::Platform::Instagram);
    assert_eq!(ours["username"], account.handle.as_str());
    assert_eq!(ours["from"]["id"], account.id.as_str());
    assert_eq!(ours["comment"], "On its way!");

    let world = t.comments_on("instagram").await;
    let entry = world
        .iter()
        .find(|c| c["commentId"] == reply_id)
        .expect("in /_sim/comments");
    assert_eq!(entry["fromUs"], true);
    assert_eq!(entry["parentId"], parent_id);
    assert_eq!(entry["content"], "On its way!");
}

#[tokio::test]
async fn a_twitter_reply_is_flat_and_references_its_parent() {
    let t = spawn(small()).await;
    let parent = some_comment(&t, "twitter").await;
    let parent_id = parent["commentId"].as_str().expect("id");
    let a = t.reply("twitter", parent_id, "DM us!").await;
    let reply_id = a.body["twitter"]["commentId"].as_str().expect("id");
    let comments = t
        .api_get(&format!(
            "/comments/{}",
            parent["postId"].as_str().expect("post")
        ))
        .await;
    let tweet = comments.body["twitter"]
        .as_array()
        .expect("array")
        .iter()
        .find(|c| c["commentId"] == reply_id)
        .expect("reply at the top level")
        .clone();
    assert_eq!(
        tweet["referencedTweets"],
        json!([{"type": "replied_to", "id": parent_id}])
    );
    assert_eq!(tweet["userName"], "AcmeOutdoors");
    // X shows the handle answered in front; the ledger keeps what was asked.
    let parent_tweet = comments.body["twitter"]
        .as_array()
        .expect("array")
        .iter()
        .find(|c| c["commentId"] == parent_id)
        .expect("the parent")
        .clone();
    let handle = parent_tweet["userName"].as_str().expect("handle");
    assert_eq!(tweet["comment"], format!("@{handle} DM us!"));
    let ledger = t.control_get("/ledger").await;
    assert_eq!(ledger["replies"][0]["content"], "DM us!");
}

#[tokio::test]
async fn a_reply_by_ayrshare_comment_id_answers_our_earlier_reply() {
    let t = spawn(small()).await;
    let parent = some_comment(&t, "tiktok").await;
    let first = t
        .reply("tiktok", parent["commentId"].as_str().expect("id"), "First")
        .await;
    let ayrshare_id = first.body["commentId"]
        .as_str()
        .expect("Ayrshare Comment ID");
    let second = t
        .api_post(
            &format!("/comments/reply/{ayrshare_id}"),
            &json!({"comment": "Second", "platforms": ["tiktok"]}),
        )
        .await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(
        second.body["tiktok"]["sourceCommentId"],
        first.body["tiktok"]["commentId"]
    );
}

#[tokio::test]
async fn replies_to_unknown_comments_or_without_text_are_refused_with_error_bodies() {
    let t = spawn(small()).await;
    t.reply("facebook", "123_456", "Hello")
        .await
        .assert_error(404);
    let parent = some_comment(&t, "facebook").await;
    t.reply(
        "twitter",
        parent["commentId"].as_str().expect("id"),
        "Wrong platform",
    )
    .await
    .assert_error(404);
    t.reply("facebook", parent["commentId"].as_str().expect("id"), "  ")
        .await
        .assert_error(400);
    t.api_post(
        &format!(
            "/comments/reply/{}",
            parent["commentId"].as_str().expect("id")
        ),
        &json!({"comment": "Hi", "platforms": ["facebook", "twitter"], "searchPlatformId": true}),
    )
    .await
    .assert_error(400);
    assert_eq!(t.ledger().await["replies"], json!([]));
}

#[tokio::test]
async fn the_cache_delay_hides_a_new_reply_then_shows_it() {
    let t = spawn(small()).await;
    t.set_faults(json!({"cacheDelaySeconds": 1.5})).await;
    let parent = some_comment(&t, "facebook").await;
    let post = parent["postId"].as_str().expect("post").to_owned();
    let posted = Instant::now();
    let a = t
        .reply(
            "facebook",
            parent["commentId"].as_str().expect("id"),
            "Cached",
        )
        .await;
    let reply_id = a.body["facebook"]["commentId"]
        .as_str()
        .expect("id")
        .to_owned();
    assert!(
        !visible(&t, &post, &reply_id).await,
        "hidden right after posting"
    );
    assert_eq!(
        t.ledger().await["replies"]
            .as_array()
            .expect("ledger")
            .len(),
        1
    );
    assert!(
        wait_until(Duration::from_secs(6), || visible(&t, &post, &reply_id)).await,
        "visible once the cache delay has passed"
    );
    assert!(posted.elapsed() >= Duration::from_millis(1400));
}
