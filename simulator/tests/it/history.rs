//! `GET /history` and `GET /history/:platform`.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::support::{assert_update_times, small, spawn, time};

fn ids(body: &Value) -> BTreeSet<String> {
    body["history"]
        .as_array()
        .expect("history array")
        .iter()
        .map(|p| p["id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test]
async fn history_items_have_the_documented_fields() {
    let t = spawn(small()).await;
    let a = t.api_get("/history?lastDays=0&platforms[0]=twitter").await;
    assert_eq!(a.status, 200);
    let items = a.body["history"].as_array().expect("history array");
    assert_eq!(items.len(), 4);
    for item in items {
        assert_eq!(item["id"].as_str().expect("id").len(), 20);
        assert_eq!(item["status"], "success");
        assert_eq!(item["type"], "now");
        assert!(item["post"].is_string());
        assert_eq!(item["platforms"], json!(["twitter"]));
        assert_eq!(item["errors"], json!([]));
        assert_eq!(item["urls"], json!([]));
        assert!(item["created"].as_str().expect("created").ends_with('Z'));
        time(&item["created"]);
        let post_id = &item["postIds"][0];
        assert_eq!(post_id["status"], "success");
        assert_eq!(post_id["platform"], "twitter");
        assert_eq!(post_id["id"].as_str().expect("social id").len(), 19);
        assert!(
            post_id["postUrl"]
                .as_str()
                .expect("postUrl")
                .starts_with("https://x.com/")
        );
    }
    let created: Vec<_> = items.iter().map(|i| time(&i["created"])).collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "newest first");
}

#[tokio::test]
async fn every_platforms_encoding_selects_the_same_posts() {
    let t = spawn(small()).await;
    let reference = t
        .api_get("/history?lastDays=0&platforms[0]=twitter&platforms[1]=facebook")
        .await;
    assert_eq!(reference.status, 200);
    let expected = ids(&reference.body);
    assert_eq!(expected.len(), 8);
    for query in [
        "platforms%5B0%5D=twitter&platforms%5B1%5D=facebook",
        "platforms[]=twitter&platforms[]=facebook",
        "platforms%5B%5D=facebook&platforms%5B%5D=twitter",
        "platforms=twitter&platforms=facebook",
        "platforms=twitter,facebook",
        "platforms=twitter%2Cfacebook",
        "platform=twitter&platform=facebook",
    ] {
        let a = t.api_get(&format!("/history?lastDays=0&{query}")).await;
        assert_eq!(a.status, 200, "{query}");
        assert_eq!(ids(&a.body), expected, "{query}");
    }
    let singular = t.api_get("/history?lastDays=0&platform=twitter").await;
    let indexed = t.api_get("/history?lastDays=0&platforms[0]=twitter").await;
    assert_eq!(ids(&singular.body), ids(&indexed.body));
    assert_eq!(ids(&singular.body).len(), 4);
}

#[tokio::test]
async fn last_days_and_limit_bound_the_history() {
    let t = spawn(small()).await;
    let all = t.api_get("/history?lastDays=0&limit=1000").await;
    assert_eq!(all.body["history"].as_array().expect("array").len(), 32);
    let default_limit = t.api_get("/history?lastDays=0").await;
    assert_eq!(
        default_limit.body["history"]
            .as_array()
            .expect("array")
            .len(),
        25
    );
    let limited = t.api_get("/history?lastDays=0&limit=3").await;
    assert_eq!(limited.body["history"].as_array().expect("array").len(), 3);
    let legacy = t.api_get("/history?lastDays=0&lastRecords=2").await;
    assert_eq!(legacy.body["history"].as_array().expect("array").len(), 2);

    let week = t.api_get("/history?lastDays=7&limit=1000").await;
    let items = week.body["history"].as_array().expect("array");
    assert!(
        !items.is_empty() && items.len() < 32,
        "{} posts",
        items.len()
    );
    let cutoff = chrono::Utc::now() - chrono::TimeDelta::days(7);
    assert!(items.iter().all(|i| time(&i["created"]) >= cutoff));

    t.api_get("/history?lastDays=soon").await.assert_error(400);
    t.api_get("/history?platforms=myspace")
        .await
        .assert_error(400);
}

#[tokio::test]
async fn platform_history_lists_native_posts_with_update_times() {
    let t = spawn(simulator::SimConfig {
        refresh_seconds: 42,
        ..small()
    })
    .await;
    let a = t.api_get("/history/facebook").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["status"], "success");
    let posts = a.body["posts"].as_array().expect("posts");
    assert_eq!(posts.len(), 4);
    for post in posts {
        assert!(
            post["id"]
                .as_str()
                .expect("id")
                .starts_with("104923907983682_")
        );
        time(&post["created"]);
        assert!(post["post"].is_string());
        assert!(post["postUrl"].is_string());
    }
    assert_update_times(&a.body, 42);
}

#[tokio::test]
async fn platform_history_is_404_where_the_provider_has_none() {
    let t = spawn(small()).await;
    for platform in ["gmb", "reddit", "telegram"] {
        t.api_get(&format!("/history/{platform}"))
            .await
            .assert_error(404);
    }
    t.api_get("/history/myspace").await.assert_error(400);
    assert_eq!(t.api_get("/history/bluesky").await.status, 200);

    t.set_faults(json!({"historyNotFound": ["bluesky"]})).await;
    t.api_get("/history/bluesky").await.assert_error(404);
    t.api_get("/history?platform=bluesky")
        .await
        .assert_error(404);
    let mixed = t
        .api_get("/history?lastDays=0&platforms=bluesky,twitter")
        .await;
    assert_eq!(mixed.status, 200);
    let items = mixed.body["history"].as_array().expect("array");
    assert_eq!(items.len(), 4);
    assert!(items.iter().all(|i| i["platforms"] == json!(["twitter"])));
}

/// The JSON kinds a per-network field must have.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Count,
    Number,
    Bool,
    Object,
    Array,
}

fn has_kind(value: &Value, kind: Kind) -> bool {
    match kind {
        Kind::Str => value.is_string(),
        Kind::Count => value.is_u64(),
        Kind::Number => value.is_number(),
        Kind::Bool => value.is_boolean(),
        Kind::Object => value.is_object(),
        Kind::Array => value.is_array(),
    }
}

/// Each network's own fields, as AYRSHARE.md lists them.
fn network_fields(platform: &str) -> Vec<(&'static str, Kind)> {
    use Kind::*;
    match platform {
        "instagram" => vec![
            ("mediaProductType", Str),
            ("mediaType", Str),
            ("mediaUrl", Str),
            ("username", Str),
        ],
        "facebook" => vec![
            ("isPopular", Bool),
            ("sharesCount", Count),
            ("statusType", Str),
        ],
        "linkedin" => vec![
            ("clickCount", Count),
            ("commentCount", Count),
            ("engagement", Number),
            ("impressionCount", Count),
            ("lastModified", Str),
            ("publishedAt", Str),
            ("shareCount", Count),
            ("status", Str),
            ("uniqueImpressionsCount", Count),
            ("visibility", Str),
        ],
        "twitter" => vec![
            ("authorId", Str),
            ("editHistoryTweetIds", Array),
            ("nonPublicMetrics", Object),
            ("organicMetrics", Object),
            ("publicMetrics", Object),
        ],
        "bluesky" => vec![("cid", Str), ("replyCount", Count), ("repostCount", Count)],
        "tiktok" => vec![
            ("mediaType", Str),
            ("videoDuration", Number),
            ("videoViews", Count),
            ("audienceCountries", Array),
            ("impressionSources", Array),
        ],
        _ => Vec::new(),
    }
}

fn assert_network_fields(platform: &str, item: &Value) {
    for (field, kind) in network_fields(platform) {
        assert!(
            has_kind(&item[field], kind),
            "{platform} has {field} of the right type: {item}"
        );
    }
    let ours = |p| simulator::our_account(p);
    match platform {
        "instagram" => {
            assert_eq!(item["mediaProductType"], "FEED");
            assert_eq!(
                item["username"],
                ours(simulator::Platform::Instagram).handle
            );
        }
        "linkedin" => {
            assert_eq!(item["status"], "PUBLISHED");
            assert_eq!(item["visibility"], "PUBLIC");
            time(&item["publishedAt"]);
            time(&item["lastModified"]);
        }
        "twitter" => {
            assert_eq!(item["authorId"], ours(simulator::Platform::Twitter).id);
            let metrics = &item["publicMetrics"];
            for key in [
                "retweet_count",
                "reply_count",
                "like_count",
                "quote_count",
                "impression_count",
                "bookmark_count",
            ] {
                assert!(metrics[key].is_u64(), "publicMetrics.{key}: {item}");
            }
            assert_eq!(
                item["organicMetrics"]["reply_count"],
                metrics["reply_count"]
            );
        }
        "bluesky" => assert!(item["cid"].as_str().expect("cid").starts_with("bafyrei")),
        "tiktok" => {
            assert_eq!(item["mediaType"], "video");
            assert!(item["audienceCountries"][0]["country"].is_string());
            assert!(item["audienceCountries"][0]["percentage"].is_f64());
            assert!(item["impressionSources"][0]["impression_source"].is_string());
            assert!(item["impressionSources"][0]["percentage"].is_f64());
        }
        _ => {}
    }
}

#[tokio::test]
async fn history_items_and_native_posts_carry_each_networks_fields() {
    let t = spawn(small()).await;
    let a = t.api_get("/history?lastDays=0&limit=1000").await;
    let items = a.body["history"].as_array().expect("history");
    assert_eq!(items.len(), 32);
    for item in items {
        let platform = item["platforms"][0].as_str().expect("platform");
        assert_network_fields(platform, item);
        if platform == "twitter" {
            assert_eq!(
                item["editHistoryTweetIds"],
                json!([item["postIds"][0]["id"]])
            );
        }
    }
    for platform in [
        "instagram",
        "facebook",
        "linkedin",
        "twitter",
        "bluesky",
        "tiktok",
    ] {
        let native = t.api_get(&format!("/history/{platform}")).await;
        for post in native.body["posts"].as_array().expect("posts") {
            assert_network_fields(platform, post);
        }
    }
    let again = t.api_get("/history?lastDays=0&limit=1000").await;
    assert_eq!(again.body, a.body, "the same world reads the same");
}

/// The comment count a one-platform history item reports.
fn history_count(item: &Value) -> u64 {
    let count = match item["platforms"][0].as_str() {
        Some("linkedin") => &item["commentCount"],
        Some("bluesky") => &item["replyCount"],
        _ => &item["publicMetrics"]["reply_count"],
    };
    count.as_u64().expect("a count")
}

#[tokio::test]
async fn history_comment_counts_are_the_visible_thread_and_grow_with_a_new_comment() {
    let t = spawn(small()).await;
    let world = t.sim_comments().await;
    for platform in ["linkedin", "bluesky", "twitter"] {
        let path = format!("/history?lastDays=0&platform={platform}");
        let before = t.api_get(&path).await;
        let native = t.api_get(&format!("/history/{platform}")).await;
        for item in before.body["history"].as_array().expect("history") {
            let in_world = world.iter().filter(|c| c["postId"] == item["id"]).count();
            assert_eq!(history_count(item), in_world as u64, "{platform}: {item}");
            let native_post = native.body["posts"]
                .as_array()
                .expect("posts")
                .iter()
                .find(|p| p["id"] == item["postIds"][0]["id"])
                .expect("the post natively");
            assert_eq!(native_post["commentsCount"], in_world);
        }
        let item = before.body["history"][1].clone();
        let post = item["id"].as_str().expect("id");
        let added = t
            .control_post(
                "/comments",
                &json!({"platform": platform, "postId": post, "content": "Me too!"}),
            )
            .await;
        assert_eq!(added.status, 201, "{}", added.body);
        let after = t.api_get(&path).await;
        let item_after = after.body["history"]
            .as_array()
            .expect("history")
            .iter()
            .find(|i| i["id"] == post)
            .expect("still listed")
            .clone();
        assert_eq!(
            history_count(&item_after),
            history_count(&item) + 1,
            "{platform}"
        );
    }
}
