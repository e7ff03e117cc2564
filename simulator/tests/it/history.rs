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
