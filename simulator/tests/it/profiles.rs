//! One world per `Profile-Key`: each profile has its own posts, comments, ledger, faults, rate
//! budget and stats; control endpoints pick the world with `?profile=`, `/_sim/profiles` lists
//! them, and a reset can spare all profiles but one.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Answer, TestSim, empty_ledger, encode, small, spawn, wait_until};

/// `GET /_sim/comments?profile=<profile>`.
async fn comments_of(t: &TestSim, profile: &str) -> Vec<Value> {
    t.control_get(&format!("/comments?profile={}", encode(profile)))
        .await["comments"]
        .as_array()
        .expect("comments array")
        .clone()
}

/// One field of every item, as a set.
fn field(items: &[Value], name: &str) -> HashSet<String> {
    items
        .iter()
        .map(|c| c[name].as_str().expect("a string field").to_owned())
        .collect()
}

/// `GET /api/history` of twitter as `profile` (None: no `Profile-Key`).
async fn history(t: &TestSim, profile: Option<&str>) -> Answer {
    t.api(Method::GET, "/history?platforms[0]=twitter", None, profile)
        .await
}

/// `GET /api/comments/:post` as `profile`.
async fn post_comments(t: &TestSim, post: &str, profile: Option<&str>) -> Answer {
    t.api(Method::GET, &format!("/comments/{post}"), None, profile)
        .await
}

async fn profiles(t: &TestSim) -> Value {
    t.control_get("/profiles").await["profiles"].clone()
}

#[tokio::test]
async fn each_profile_has_its_own_posts_and_comments_and_the_primary_keeps_the_seeded_world() {
    let t = spawn(small()).await;
    let primary = t.sim_comments().await;
    assert_eq!(
        comments_of(&t, "").await,
        primary,
        "`?profile=` is the primary"
    );
    let a = comments_of(&t, "brand-a").await;
    let b = comments_of(&t, "brand-b").await;
    assert_eq!(a.len(), primary.len(), "the same sizes");
    for (one, other) in [(&a, &primary), (&a, &b), (&b, &primary)] {
        assert!(field(one, "commentId").is_disjoint(&field(other, "commentId")));
        assert!(field(one, "postId").is_disjoint(&field(other, "postId")));
        let texts = |items: &[Value]| {
            items
                .iter()
                .map(|c| c["content"].clone())
                .collect::<Vec<_>>()
        };
        assert_ne!(texts(one), texts(other), "other texts, in another order");
    }

    let post = a[0]["postId"].as_str().expect("postId");
    assert_eq!(post_comments(&t, post, Some("brand-a")).await.status, 200);
    post_comments(&t, post, Some("brand-b"))
        .await
        .assert_error(404);
    post_comments(&t, post, None).await.assert_error(404);
    let history = t
        .api(
            Method::GET,
            "/history?lastDays=0&limit=1000",
            None,
            Some("brand-a"),
        )
        .await;
    let ids: HashSet<&str> = history.body["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|p| p["id"].as_str().expect("id"))
        .collect();
    assert!(ids.contains(post), "a's history lists a's posts");
    assert!(
        ids.is_disjoint(
            &field(&primary, "postId")
                .iter()
                .map(String::as_str)
                .collect()
        )
    );
}

#[tokio::test]
async fn a_comment_added_to_one_profile_is_seen_by_that_profile_only() {
    let t = spawn(small()).await;
    let parent = comments_of(&t, "brand-a")
        .await
        .into_iter()
        .find(|c| c["platform"] == "facebook")
        .expect("a facebook comment in a");
    let post = parent["postId"].as_str().expect("postId").to_owned();
    let added = t
        .control_post(
            "/comments?profile=brand-a",
            &json!({"platform": "facebook", "postId": post, "content": "Only for brand A"}),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.body);
    let id = added.body["commentId"].as_str().expect("id");

    let seen = post_comments(&t, &post, Some("brand-a")).await;
    assert!(seen.body.to_string().contains(id), "{}", seen.body);
    assert!(comments_of(&t, "brand-a").await.contains(&added.body));
    assert!(!comments_of(&t, "brand-b").await.contains(&added.body));
    assert!(!t.sim_comments().await.contains(&added.body));

    // The primary world has no such post: a comment posted there is refused.
    let elsewhere = t
        .control_post(
            "/comments",
            &json!({"platform": "facebook", "postId": post, "content": "x"}),
        )
        .await;
    assert_eq!(elsewhere.status, 404);

    let reply = t
        .api(
            Method::POST,
            &format!("/comments/reply/{}", encode(id)),
            Some(&json!({"comment": "Thanks!", "platforms": ["facebook"],
                         "searchPlatformId": true})),
            Some("brand-a"),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let ledger = t.control_get("/ledger?profile=brand-a").await;
    assert_eq!(ledger["replies"][0]["parentId"], id);
    assert_eq!(t.ledger().await, empty_ledger());
    assert_eq!(
        t.control_get("/ledger?profile=brand-b").await,
        empty_ledger()
    );
    let replied_as_b = t
        .api(
            Method::POST,
            &format!("/comments/reply/{}", encode(id)),
            Some(&json!({"comment": "Thanks!", "platforms": ["facebook"],
                         "searchPlatformId": true})),
            Some("brand-b"),
        )
        .await;
    replied_as_b.assert_error(404);
}

#[tokio::test]
async fn a_named_world_is_the_same_in_every_simulator_and_after_its_reset() {
    let one = spawn(small()).await;
    let two = spawn(small()).await;
    let seeded = comments_of(&one, "brand-a").await;
    assert_eq!(comments_of(&two, "brand-a").await, seeded);
    let post = seeded[0]["postId"].as_str().expect("postId");
    let platform = seeded[0]["platform"].as_str().expect("platform");
    let added = one
        .control_post(
            "/comments?profile=brand-a",
            &json!({"platform": platform, "postId": post, "content": "Gone after reset"}),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.body);
    assert_ne!(comments_of(&one, "brand-a").await, seeded);
    let reset = one.control_post("/reset?profile=brand-a", &json!({})).await;
    assert_eq!(reset.status, 200);
    assert_eq!(comments_of(&one, "brand-a").await, seeded);
}

#[tokio::test]
async fn a_fault_set_on_one_profile_leaves_the_others_alone() {
    let t = spawn(small()).await;
    let rule = json!({"rules": [{"endpoint": "history", "platform": "twitter",
                                 "fault": "status", "status": 503}]});
    let set = t.control_post("/faults?profile=brand-a", &rule).await;
    assert_eq!(set.status, 200, "{}", set.body);
    history(&t, Some("brand-a")).await.assert_error(503);
    assert_eq!(history(&t, Some("brand-b")).await.status, 200);
    assert_eq!(history(&t, None).await.status, 200);
    let shown = t.control_get("/faults?profile=brand-a").await;
    assert_eq!(shown["rules"][0]["status"], 503);
    assert_eq!(
        t.control_get("/faults?profile=brand-b").await["rules"],
        json!([])
    );
    assert_eq!(t.control_get("/faults").await["rules"], json!([]));

    let cleared = t
        .client
        .delete(format!("{}/_sim/faults?profile=brand-a", t.sim.base_url()))
        .send()
        .await
        .expect("request succeeds");
    assert_eq!(cleared.status(), 200);
    assert_eq!(history(&t, Some("brand-a")).await.status, 200);
}

#[tokio::test]
async fn faults_given_at_start_apply_to_every_profile() {
    let faults = simulator::FaultSet::from_json(r#"{"messagingDisabled": ["twitter"]}"#)
        .expect("valid faults");
    let t = spawn(simulator::SimConfig { faults, ..small() }).await;
    for profile in [None, Some("brand-a"), Some("brand-b")] {
        t.api(Method::GET, "/messages/twitter", None, profile)
            .await
            .assert_error(403);
    }
    t.control_post("/faults?profile=brand-a", &json!({})).await;
    let a = t
        .api(Method::GET, "/messages/twitter", None, Some("brand-a"))
        .await;
    assert_eq!(a.status, 200);
    t.api(Method::GET, "/messages/twitter", None, Some("brand-b"))
        .await
        .assert_error(403);
}

#[tokio::test]
async fn each_profile_has_its_own_rate_budget_and_stats() {
    let t = spawn(simulator::SimConfig {
        rate_limit: 3,
        ..small()
    })
    .await;
    for n in 1..=3 {
        let a = history(&t, Some("brand-a")).await;
        assert_eq!(a.status, 200);
        assert_eq!(a.header("x-ratelimit-count"), Some(n));
    }
    history(&t, Some("brand-a")).await.assert_error(429);
    let b = history(&t, Some("brand-b")).await;
    assert_eq!(b.status, 200);
    assert_eq!(b.header("x-ratelimit-count"), Some(1));

    let a = t.control_get("/stats?profile=brand-a").await;
    assert_eq!(a["total"], 4);
    assert_eq!(a["maxRequestsInWindow"], 3);
    let b = t.control_get("/stats?profile=brand-b").await;
    assert_eq!(b["total"], 1);
    assert_eq!(b["maxRequestsInWindow"], 1);
    assert_eq!(t.control_get("/stats").await["total"], 0);
}

#[tokio::test]
async fn sim_profiles_lists_every_profile_in_use_with_its_accepted_requests() {
    let t = spawn(simulator::SimConfig {
        rate_limit: 2,
        ..small()
    })
    .await;
    assert_eq!(
        profiles(&t).await,
        json!([{"profile": "", "total": 0, "maxRequestsInWindow": 0}])
    );
    history(&t, None).await;
    for _ in 0..3 {
        history(&t, Some("brand-b")).await;
    }
    history(&t, Some("brand-a")).await;
    t.control_get("/ledger?profile=brand-c").await;
    assert_eq!(
        profiles(&t).await,
        json!([
            {"profile": "", "total": 1, "maxRequestsInWindow": 1},
            {"profile": "brand-a", "total": 1, "maxRequestsInWindow": 1},
            {"profile": "brand-b", "total": 2, "maxRequestsInWindow": 2},
            {"profile": "brand-c", "total": 0, "maxRequestsInWindow": 0},
        ]),
        "the refused request of brand-b is not counted"
    );
    let windowed = t.control_get("/profiles?windowSeconds=60").await;
    assert_eq!(windowed["profiles"][2]["maxRequestsInWindow"], 2);
    let refused = t
        .client
        .get(format!(
            "{}/_sim/profiles?windowSeconds=0",
            t.sim.base_url()
        ))
        .send()
        .await
        .expect("request succeeds");
    assert_eq!(refused.status(), 400);
}

#[tokio::test]
async fn resetting_one_profile_leaves_the_others_alone() {
    let t = spawn(simulator::SimConfig {
        rate_limit: 1,
        ..small()
    })
    .await;
    let seeded_a = comments_of(&t, "brand-a").await;
    let seeded_b = comments_of(&t, "brand-b").await;
    for (profile, seeded) in [("brand-a", &seeded_a), ("brand-b", &seeded_b)] {
        let body = json!({"platform": seeded[0]["platform"], "postId": seeded[0]["postId"],
                          "content": "Before reset"});
        let added = t
            .control_post(&format!("/comments?profile={profile}"), &body)
            .await;
        assert_eq!(added.status, 201, "{}", added.body);
        t.control_post(
            &format!("/faults?profile={profile}"),
            &json!({"historyNotFound": ["twitter"]}),
        )
        .await;
        history(&t, Some(profile)).await.assert_error(404);
        history(&t, Some(profile)).await.assert_error(429);
    }

    let reset = t.control_post("/reset?profile=brand-a", &json!({})).await;
    assert_eq!(reset.status, 200);
    assert_eq!(comments_of(&t, "brand-a").await, seeded_a);
    assert_eq!(t.control_get("/stats?profile=brand-a").await["total"], 0);
    assert_eq!(
        history(&t, Some("brand-a")).await.status,
        200,
        "budget and faults reset"
    );

    assert_eq!(comments_of(&t, "brand-b").await.len(), seeded_b.len() + 1);
    assert_eq!(t.control_get("/stats?profile=brand-b").await["total"], 2);
    history(&t, Some("brand-b")).await.assert_error(429);
    assert_eq!(
        t.control_get("/faults?profile=brand-b").await["historyNotFound"],
        json!(["twitter"])
    );

    let everything = t.control_post("/reset", &json!({})).await;
    assert_eq!(everything.status, 200);
    assert_eq!(
        profiles(&t).await,
        json!([{"profile": "", "total": 0, "maxRequestsInWindow": 0}]),
        "named profiles are dropped"
    );
    assert_eq!(
        comments_of(&t, "brand-b").await,
        seeded_b,
        "and made again from the seed"
    );
    assert_eq!(history(&t, Some("brand-b")).await.status, 200);
}

#[tokio::test]
async fn comments_arrive_in_every_profile_in_use() {
    let t = spawn(simulator::SimConfig {
        comments_per_minute: 6000.0,
        ..small()
    })
    .await;
    let seeded = 144;
    comments_of(&t, "brand-a").await;
    let grown = wait_until(Duration::from_secs(5), || async {
        comments_of(&t, "brand-a").await.len() >= seeded + 20
            && t.sim_comments().await.len() >= seeded + 20
    })
    .await;
    assert!(grown, "about 100 comments a second arrive in each world");
}
