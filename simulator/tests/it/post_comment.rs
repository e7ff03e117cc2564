//! `POST /comments`: our top-level comment on a post.

use serde_json::{Value, json};

use crate::support::{TestSim, author_id, find_comment, small, spawn, time};

/// A post of `platform` that has comments: (Ayrshare Post ID, Social Post ID).
async fn post_of(t: &TestSim, platform: &str) -> (String, String) {
    let a = t
        .api_get(&format!("/history?lastDays=0&platform={platform}"))
        .await;
    let item = &a.body["history"][1];
    (
        item["id"].as_str().expect("id").to_owned(),
        item["postIds"][0]["id"]
            .as_str()
            .expect("social id")
            .to_owned(),
    )
}

#[tokio::test]
async fn a_comment_is_answered_as_documented_with_linkedins_comment_urn() {
    let t = spawn(small()).await;
    let (post, _) = post_of(&t, "linkedin").await;
    let a = t
        .api_post(
            "/comments",
            &json!({"id": post, "comment": "Thanks, everyone!", "platforms": ["linkedin"]}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["status"], "success");
    assert_eq!(a.body["id"], post.as_str());
    assert_eq!(
        a.body["commentId"]
            .as_str()
            .expect("Ayrshare Comment ID")
            .len(),
        20
    );
    let li = &a.body["linkedin"];
    assert_eq!(li["status"], "success");
    assert_eq!(li["comment"], "Thanks, everyone!");
    assert_eq!(li["platform"], "linkedin");
    let social = li["commentId"].as_str().expect("Social Comment ID");
    assert!(social.starts_with("urn:li:comment:"), "{social}");
    assert_eq!(li["commentUrn"], social);
    assert_eq!(a.body.as_object().expect("object").len(), 4, "{}", a.body);

    let facebook = post_of(&t, "facebook").await.0;
    let fb = t
        .api_post("/comments", &json!({"id": facebook, "comment": "Hi!"}))
        .await;
    assert_eq!(fb.status, 200, "without platforms: the post's own");
    let keys: Vec<&String> = fb.body["facebook"]
        .as_object()
        .expect("facebook")
        .keys()
        .collect();
    assert_eq!(keys.len(), 4, "no commentUrn off LinkedIn: {}", fb.body);
}

#[tokio::test]
async fn our_comment_joins_the_post_as_ours_and_is_in_the_ledger() {
    let t = spawn(small()).await;
    let (post, social_post) = post_of(&t, "twitter").await;
    let a = t
        .api_post(
            "/comments",
            &json!({"id": social_post, "comment": "New colours out now!",
                    "platforms": ["twitter"], "searchPlatformId": true,
                    "mediaUrls": ["https://img.example/a.png"]}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["id"], post.as_str(), "the Ayrshare Post ID");
    let comment_id = a.body["twitter"]["commentId"].as_str().expect("id");

    let comments = t.api_get(&format!("/comments/{post}")).await;
    let ours = find_comment(&comments.body, comment_id).expect("listed");
    assert_eq!(ours["comment"], "New colours out now!");
    assert_eq!(
        ours["referencedTweets"],
        json!([{"type": "replied_to", "id": social_post}]),
        "a top-level tweet answering the post"
    );
    let us = simulator::our_account(simulator::Platform::Twitter);
    assert_eq!(author_id("twitter", ours), Some(us.id.as_str()));

    let world = t.comments_on("twitter").await;
    let entry = world
        .iter()
        .find(|c| c["commentId"] == comment_id)
        .expect("in /_sim/comments");
    assert_eq!(entry["fromUs"], true);
    assert!(entry["parentId"].is_null());

    let ledger = t.ledger().await;
    assert_eq!(ledger["replies"], json!([]));
    let logged = &ledger["comments"][0];
    assert_eq!(logged["platform"], "twitter");
    assert_eq!(logged["postId"], post.as_str());
    assert_eq!(logged["commentId"], comment_id);
    assert_eq!(logged["content"], "New colours out now!");
    time(&logged["at"]);

    let reply = t
        .api_post(
            &format!(
                "/comments/reply/{}",
                a.body["commentId"].as_str().expect("Ayrshare Comment ID")
            ),
            &json!({"comment": "And a thread!", "platforms": ["twitter"]}),
        )
        .await;
    assert_eq!(
        reply.status, 200,
        "its Ayrshare Comment ID takes replies: {}",
        reply.body
    );
    assert_eq!(reply.body["twitter"]["sourceCommentId"], comment_id);
}

#[tokio::test]
async fn our_comment_waits_out_the_cache_delay() {
    let t = spawn(small()).await;
    t.set_faults(json!({"cacheDelaySeconds": 30})).await;
    let (post, _) = post_of(&t, "instagram").await;
    let a = t
        .api_post("/comments", &json!({"id": post, "comment": "Cached"}))
        .await;
    let comment_id = a.body["instagram"]["commentId"].as_str().expect("id");
    let comments = t.api_get(&format!("/comments/{post}")).await;
    assert!(find_comment(&comments.body, comment_id).is_none());
    assert!(
        t.comments_on("instagram")
            .await
            .iter()
            .any(|c| c["commentId"] == comment_id)
    );
}

#[tokio::test]
async fn comments_on_unknown_posts_other_platforms_or_without_text_are_refused() {
    let t = spawn(small()).await;
    let (post, social_post) = post_of(&t, "facebook").await;
    let refused: [(Value, u16); 5] = [
        (json!({"id": "nope", "comment": "Hi"}), 404),
        (
            json!({"id": post, "comment": "Hi", "platforms": ["twitter"]}),
            400,
        ),
        (json!({"id": post, "comment": " "}), 400),
        (json!({"comment": "Hi"}), 400),
        (
            json!({"id": social_post, "comment": "Hi", "searchPlatformId": true}),
            400,
        ),
    ];
    for (body, status) in refused {
        t.api_post("/comments", &body).await.assert_error(status);
    }
    assert_eq!(t.ledger().await["comments"], json!([]));
}
