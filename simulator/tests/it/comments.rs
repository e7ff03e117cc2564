//! `GET /comments/:id`, `GET /comments?id=`, `searchPlatformId`, `commentId`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::support::{TestSim, assert_update_times, encode, small, spawn, time};

/// A post of `platform` that has comments: (Ayrshare Post ID, its comments in `/_sim`).
async fn post_with_comments(t: &TestSim, platform: &str) -> (String, Vec<Value>) {
    let comments = t.comments_on(platform).await;
    let post = comments[0]["postId"].as_str().expect("postId").to_owned();
    let of_post = comments
        .into_iter()
        .filter(|c| c["postId"] == post.as_str())
        .collect();
    (post, of_post)
}

/// The Social Post ID of an Ayrshare post, from the history.
async fn social_post_id(t: &TestSim, platform: &str, ayrshare_id: &str) -> String {
    let a = t
        .api_get(&format!(
            "/history?lastDays=0&limit=1000&platform={platform}"
        ))
        .await;
    a.body["history"]
        .as_array()
        .expect("history")
        .iter()
        .find(|p| p["id"] == ayrshare_id)
        .expect("post in history")["postIds"][0]["id"]
        .as_str()
        .expect("social id")
        .to_owned()
}

fn strip_times(mut body: Value) -> Value {
    if let Some(obj) = body.as_object_mut() {
        obj.remove("lastUpdated");
        obj.remove("nextUpdate");
    }
    body
}

#[tokio::test]
async fn comments_of_a_post_follow_the_documented_shape() {
    let t = spawn(simulator::SimConfig {
        refresh_seconds: 30,
        ..small()
    })
    .await;
    let (post, world) = post_with_comments(&t, "instagram").await;
    let social = social_post_id(&t, "instagram", &post).await;
    let a = t.api_get(&format!("/comments/{post}")).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["status"], "success");
    assert_eq!(a.body["id"], post.as_str());
    assert_update_times(&a.body, 30);
    let list = a.body["instagram"].as_array().expect("instagram array");
    let top_level = world.iter().filter(|c| c["parentId"].is_null()).count();
    assert_eq!(list.len(), top_level);
    for c in list {
        assert!(c["comment"].is_string());
        assert_eq!(c["commentId"].as_str().expect("commentId").len(), 17);
        assert!(c["created"].as_str().expect("created").ends_with('Z'));
        time(&c["created"]);
        assert_eq!(c["platform"], "instagram");
        assert_eq!(c["postId"], social.as_str());
        assert!(c["from"]["id"].is_string());
        assert_eq!(c["from"]["username"], c["username"]);
        assert_eq!(c["hidden"], false);
        assert!(c["likeCount"].is_u64());
        assert!(c["replies"].is_array());
    }
}

#[tokio::test]
async fn comments_by_query_id_equal_comments_by_path() {
    let t = spawn(small()).await;
    let (post, _) = post_with_comments(&t, "facebook").await;
    let by_path = t.api_get(&format!("/comments/{post}")).await;
    let by_query = t.api_get(&format!("/comments?id={post}")).await;
    assert_eq!(by_query.status, 200);
    assert_eq!(strip_times(by_path.body), strip_times(by_query.body));
    t.api_get("/comments").await.assert_error(400);
}

#[tokio::test]
async fn twitter_comments_are_flat_with_referenced_tweets_pointing_at_parents() {
    let t = spawn(simulator::SimConfig {
        comments_per_post: 6,
        replies_per_comment: 2,
        ..small()
    })
    .await;
    let world = t.comments_on("twitter").await;
    let posts: BTreeSet<&str> = world
        .iter()
        .map(|c| c["postId"].as_str().expect("postId"))
        .collect();
    let (mut without_ref, mut with_post_ref) = (0, 0);
    for post in posts {
        let social = social_post_id(&t, "twitter", post).await;
        let a = t.api_get(&format!("/comments/{post}")).await;
        assert_eq!(a.status, 200);
        let list = a.body["twitter"].as_array().expect("twitter array");
        let parents: BTreeMap<&str, Option<&str>> = world
            .iter()
            .filter(|c| c["postId"] == post)
            .map(|c| (c["commentId"].as_str().expect("id"), c["parentId"].as_str()))
            .collect();
        assert_eq!(list.len(), parents.len(), "replies come at the top level");
        for tweet in list {
            assert!(tweet.get("replies").is_none(), "X never nests");
            assert!(tweet["userName"].is_string() && tweet["authorId"].is_string());
            let id = tweet["commentId"].as_str().expect("id");
            let refs = &tweet["referencedTweets"];
            match parents[id] {
                Some(parent) => {
                    assert_eq!(refs[0]["type"], "replied_to");
                    assert_eq!(refs[0]["id"], parent);
                }
                None if refs.is_null() => without_ref += 1,
                None => {
                    assert_eq!(refs[0]["type"], "replied_to");
                    assert_eq!(refs[0]["id"], social.as_str());
                    with_post_ref += 1;
                }
            }
        }
    }
    assert!(
        without_ref > 0 && with_post_ref > 0,
        "both top-level forms occur"
    );
}

/// Checks a nested list against the world's parent links, returning how many it holds.
fn count_nested(list: &Value, parent: Option<&str>, parents: &BTreeMap<String, Value>) -> usize {
    let list = list.as_array().expect("array");
    list.iter()
        .map(|c| {
            let id = c["commentId"].as_str().expect("id");
            assert_eq!(parents[id].as_str(), parent, "{id} sits under its parent");
            1 + count_nested(&c["replies"], Some(id), parents)
        })
        .sum()
}

#[tokio::test]
async fn every_platform_but_twitter_nests_replies() {
    let t = spawn(small()).await;
    for platform in [
        "bluesky",
        "facebook",
        "instagram",
        "linkedin",
        "threads",
        "tiktok",
        "youtube",
    ] {
        let (post, world) = post_with_comments(&t, platform).await;
        let parents: BTreeMap<String, Value> = world
            .iter()
            .map(|c| {
                (
                    c["commentId"].as_str().expect("id").to_owned(),
                    c["parentId"].clone(),
                )
            })
            .collect();
        let a = t.api_get(&format!("/comments/{post}")).await;
        assert_eq!(a.status, 200, "{platform}");
        let list = &a.body[platform];
        assert!(
            list.as_array()
                .expect("array")
                .iter()
                .all(|c| c.get("referencedTweets").is_none())
        );
        assert_eq!(
            count_nested(list, None, &parents),
            world.len(),
            "{platform}"
        );
    }
}

#[tokio::test]
async fn each_platform_uses_its_own_author_fields() {
    let t = spawn(small()).await;
    let expectations: [(&str, &[&str]); 8] = [
        ("facebook", &["/from/name", "/from/id"]),
        ("instagram", &["/from/id", "/from/username", "/username"]),
        ("linkedin", &["/from/name", "/user/id"]),
        ("threads", &["/username", "/user/id"]),
        ("tiktok", &["/username", "/displayName", "/userId"]),
        ("twitter", &["/name", "/userName", "/authorId"]),
        ("youtube", &["/displayName", "/userId", "/channelUrl"]),
        ("bluesky", &["/displayName", "/userName", "/userId"]),
    ];
    for (platform, fields) in expectations {
        let (post, _) = post_with_comments(&t, platform).await;
        let a = t.api_get(&format!("/comments/{post}")).await;
        let first = &a.body[platform][0];
        for field in fields {
            let value = first.pointer(field).unwrap_or(&Value::Null);
            assert!(
                value.as_str().is_some_and(|v| !v.is_empty()),
                "{platform} comment has {field}: {first}"
            );
        }
    }
    let (post, _) = post_with_comments(&t, "bluesky").await;
    let a = t.api_get(&format!("/comments/{post}")).await;
    let author = a.body["bluesky"][0]["userName"].as_str().expect("userName");
    assert!(
        author.contains('@'),
        "bluesky authors look like emails: {author}"
    );
    assert!(
        a.body["bluesky"][0]["userId"]
            .as_str()
            .expect("userId")
            .starts_with("did:plc:")
    );
}

#[tokio::test]
async fn search_platform_id_finds_a_post_by_its_social_id() {
    let t = spawn(small()).await;
    for platform in ["facebook", "bluesky", "linkedin"] {
        let (post, _) = post_with_comments(&t, platform).await;
        let social = social_post_id(&t, platform, &post).await;
        let by_ayrshare = t.api_get(&format!("/comments/{post}")).await;
        let by_path = t
            .api_get(&format!(
                "/comments/{}?searchPlatformId=true&platform={platform}",
                encode(&social)
            ))
            .await;
        assert_eq!(by_path.status, 200, "{platform}: {}", by_path.body);
        assert_eq!(
            strip_times(by_path.body),
            strip_times(by_ayrshare.body.clone())
        );
        let by_query = t
            .api_get(&format!(
                "/comments?id={}&searchPlatformId=true&platform={platform}",
                encode(&social)
            ))
            .await;
        assert_eq!(strip_times(by_query.body), strip_times(by_ayrshare.body));
    }
    t.api_get("/comments/123?searchPlatformId=true")
        .await
        .assert_error(400);
}

#[tokio::test]
async fn comment_id_true_lists_the_replies_of_a_social_comment() {
    let t = spawn(simulator::SimConfig {
        replies_per_comment: 2,
        ..small()
    })
    .await;
    for platform in ["facebook", "twitter"] {
        let world = t.comments_on(platform).await;
        let top = world
            .iter()
            .find(|c| c["parentId"].is_null())
            .expect("a top-level comment");
        let top_id = top["commentId"].as_str().expect("id");
        let expected: BTreeSet<&str> = world
            .iter()
            .filter(|c| c["parentId"] == top_id)
            .map(|c| c["commentId"].as_str().expect("id"))
            .collect();
        assert_eq!(expected.len(), 2);
        let a = t
            .api_get(&format!(
                "/comments/{}?searchPlatformId=true&commentId=true&platform={platform}",
                encode(top_id)
            ))
            .await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.body["id"], top["postId"]);
        let got: BTreeSet<&str> = a.body[platform]
            .as_array()
            .expect("array")
            .iter()
            .map(|c| c["commentId"].as_str().expect("id"))
            .collect();
        assert_eq!(got, expected, "{platform}");
    }
    t.api_get("/comments/nope?searchPlatformId=true&commentId=true&platform=facebook")
        .await
        .assert_error(404);
}

#[tokio::test]
async fn a_post_without_comments_answers_404_with_an_error_body() {
    let t = spawn(small()).await;
    let with_comments: BTreeSet<String> = t
        .sim_comments()
        .await
        .iter()
        .map(|c| c["postId"].as_str().expect("postId").to_owned())
        .collect();
    let history = t.api_get("/history?lastDays=0&limit=1000").await;
    let empty: Vec<&str> = history.body["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|p| p["id"].as_str().expect("id"))
        .filter(|id| !with_comments.contains(*id))
        .collect();
    assert_eq!(empty.len(), 8, "one empty post per platform");
    for post in empty {
        t.api_get(&format!("/comments/{post}"))
            .await
            .assert_error(404);
    }
    t.api_get("/comments/no-such-post").await.assert_error(404);
}
