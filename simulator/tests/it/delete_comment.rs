//! `DELETE /comments/:id`: by Ayrshare Comment ID, Ayrshare Post ID, or Social Comment ID.

use serde_json::{Value, json};

use crate::support::{TestSim, encode, find_comment, small, spawn, time};

/// Our comment on the second-newest post of `platform`: (Ayrshare Post ID, the answer).
async fn comment_on(t: &TestSim, platform: &str, text: &str) -> (String, Value) {
    let history = t
        .api_get(&format!("/history?lastDays=0&platform={platform}"))
        .await;
    let post = history.body["history"][1]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let a = t
        .api_post("/comments", &json!({"id": post, "comment": text}))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    (post, a.body)
}

#[tokio::test]
async fn deleting_our_comment_answers_as_documented_and_removes_it() {
    let t = spawn(small()).await;
    let (post, posted) = comment_on(&t, "linkedin", "Oops, typo").await;
    let ayrshare_id = posted["commentId"].as_str().expect("Ayrshare Comment ID");
    let social_id = posted["linkedin"]["commentId"]
        .as_str()
        .expect("Social Comment ID");

    let a = t
        .api_delete(&format!("/comments/{ayrshare_id}"), None)
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.body,
        json!({"status": "success", "linkedin": {"action": "delete", "status": "success",
                                                "id": social_id, "comment": "Oops, typo"}})
    );
    let comments = t.api_get(&format!("/comments/{post}")).await;
    assert!(find_comment(&comments.body, social_id).is_none());
    assert!(
        !t.comments_on("linkedin")
            .await
            .iter()
            .any(|c| c["commentId"] == social_id)
    );
    let deletion = &t.ledger().await["deletions"][0];
    assert_eq!(deletion["platform"], "linkedin");
    assert_eq!(deletion["commentId"], social_id);
    time(&deletion["at"]);

    let again = t
        .api_delete(&format!("/comments/{ayrshare_id}"), None)
        .await;
    again.assert_error(404);
    assert_eq!(again.body["code"], 182);
    t.api_post(
        &format!("/comments/reply/{ayrshare_id}"),
        &json!({"comment": "Hello?", "platforms": ["linkedin"]}),
    )
    .await
    .assert_error(404);
}

#[tokio::test]
async fn a_customer_comment_is_deleted_by_social_id_with_its_replies() {
    let t = spawn(small()).await;
    let world = t.comments_on("facebook").await;
    let parent = world
        .iter()
        .find(|c| c["parentId"].is_null())
        .expect("a top-level comment")
        .clone();
    let parent_id = parent["commentId"].as_str().expect("id");
    let reply = world
        .iter()
        .find(|c| c["parentId"] == parent_id)
        .expect("its reply")
        .clone();
    let post = parent["postId"].as_str().expect("post");
    let native_count = |body: &Value, social: &Value| {
        body["posts"]
            .as_array()
            .expect("posts")
            .iter()
            .find(|p| p["id"] == *social)
            .expect("post")["commentsCount"]
            .as_u64()
            .expect("count")
    };
    let history = t.api_get("/history?lastDays=0&platform=facebook").await;
    let social_post = history.body["history"]
        .as_array()
        .expect("history")
        .iter()
        .find(|i| i["id"] == post)
        .expect("post in history")["postIds"][0]["id"]
        .clone();
    let before = native_count(&t.api_get("/history/facebook").await.body, &social_post);

    let a = t
        .api_delete(
            &format!(
                "/comments/{}?searchPlatformId=true&platform=facebook",
                encode(parent_id)
            ),
            None,
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["facebook"]["id"], parent_id);
    assert_eq!(a.body["facebook"]["comment"], parent["content"]);

    let after = native_count(&t.api_get("/history/facebook").await.body, &social_post);
    assert_eq!(after, before - 2, "the comment and its reply");
    let left = t.comments_on("facebook").await;
    assert!(
        !left
            .iter()
            .any(|c| c["commentId"] == parent_id || c["commentId"] == reply["commentId"])
    );
    let comments = t.api_get(&format!("/comments/{post}")).await;
    assert!(find_comment(&comments.body, parent_id).is_none());
    assert!(find_comment(&comments.body, reply["commentId"].as_str().expect("id")).is_none());
    t.reply("facebook", parent_id, "Too late")
        .await
        .assert_error(404);
}

#[tokio::test]
async fn search_platform_id_may_come_in_the_body() {
    let t = spawn(small()).await;
    let target = t.comments_on("instagram").await[0].clone();
    let id = target["commentId"].as_str().expect("id");
    let a = t
        .api_delete(
            &format!("/comments/{id}"),
            Some(&json!({"searchPlatformId": true, "platform": "instagram"})),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["instagram"]["id"], id);
    t.api_delete(&format!("/comments/{id}?searchPlatformId=true"), None)
        .await
        .assert_error(400);
}

#[tokio::test]
async fn an_ayrshare_post_id_deletes_every_comment_we_made_there_and_nothing_else() {
    let t = spawn(small()).await;
    let (post, first) = comment_on(&t, "tiktok", "First of ours").await;
    t.api_post(
        "/comments",
        &json!({"id": post, "comment": "Second of ours"}),
    )
    .await;
    let customers = |all: Vec<Value>| {
        all.into_iter()
            .filter(|c| c["postId"] == post.as_str() && c["fromUs"] == false)
            .count()
    };
    let before = customers(t.comments_on("tiktok").await);

    let a = t.api_delete(&format!("/comments/{post}"), None).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let deleted = a.body["tiktok"].as_array().expect("one entry per comment");
    assert_eq!(deleted.len(), 2);
    assert_eq!(deleted[0]["id"], first["tiktok"]["commentId"]);
    assert_eq!(
        deleted[0]["commentId"], deleted[0]["id"],
        "TikTok's deprecated field"
    );
    assert_eq!(deleted[1]["comment"], "Second of ours");
    assert_eq!(customers(t.comments_on("tiktok").await), before);
    assert_eq!(
        t.ledger().await["deletions"]
            .as_array()
            .expect("deletions")
            .len(),
        2
    );

    let none_left = t.api_delete(&format!("/comments/{post}"), None).await;
    none_left.assert_error(404);
    t.api_delete("/comments/unknown", None)
        .await
        .assert_error(404);
}
