//! Fault injection: probabilities, latency, timeouts, lost responses, counts and scopes.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::support::{TestSim, encode, small, spawn};

/// Sends `n` history requests, `parallel` at a time; returns how many answered `status`.
async fn count_status(t: &TestSim, n: usize, parallel: usize, status: u16) -> usize {
    let mut hits = 0;
    for _ in 0..n / parallel {
        let batch = join_all((0..parallel).map(|_| t.api_get("/history?platform=twitter"))).await;
        hits += batch.iter().filter(|a| a.status == status).count();
    }
    hits
}

async fn first_comment(t: &TestSim, platform: &str) -> String {
    t.comments_on(platform).await[0]["commentId"]
        .as_str()
        .expect("id")
        .to_owned()
}

async fn first_customer(t: &TestSim, platform: &str) -> String {
    let a = t.api_get(&format!("/messages/{platform}")).await;
    a.body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .find(|m| m["action"] == "received")
        .expect("a received message")["senderId"]
        .as_str()
        .expect("senderId")
        .to_owned()
}

#[tokio::test]
async fn a_status_fault_fires_at_its_probability() {
    let t = spawn(small()).await;
    t.set_faults(
        json!({"rules": [{"endpoint": "history", "platform": "*", "fault": "status",
                                   "status": 503, "probability": 0.2}]}),
    )
    .await;
    let hits = count_status(&t, 1000, 20, 503).await;
    assert!((150..=250).contains(&hits), "{hits} of 1000 at p=0.2");
    let injected = loop {
        let a = t.api_get("/history?platform=twitter").await;
        if a.status == 503 {
            break a;
        }
    };
    injected.assert_error(503);
}

#[tokio::test]
async fn a_latency_fault_adds_at_least_its_ms() {
    let t = spawn(small()).await;
    t.set_faults(json!({"rules": [{"endpoint": "history", "fault": "latency", "ms": 250}]}))
        .await;
    let started = Instant::now();
    let a = t.api_get("/history?platform=twitter").await;
    assert_eq!(a.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[tokio::test]
async fn a_latency_fault_fires_at_its_probability() {
    let t = spawn(small()).await;
    t.set_faults(
        json!({"rules": [{"endpoint": "*", "fault": "latency", "ms": 40,
                                   "probability": 0.5}]}),
    )
    .await;
    let mut slow = 0;
    for _ in 0..100 {
        let started = Instant::now();
        t.api_get("/history?platform=twitter").await;
        if started.elapsed() >= Duration::from_millis(40) {
            slow += 1;
        }
    }
    // Binomial(100, 0.5): 25..=80 leaves room for a few slow answers on a busy machine.
    assert!((25..=80).contains(&slow), "{slow} of 100 delayed at p=0.5");
}

#[tokio::test]
async fn a_timeout_fault_hangs_past_the_client_timeout() {
    let t = spawn(small()).await;
    t.set_faults(json!({"rules": [{"endpoint": "history", "fault": "timeout"}]}))
        .await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let error = client
        .get(format!("{}/history", t.sim.api_url()))
        .bearer_auth(t.sim.api_key())
        .send()
        .await
        .expect_err("no answer within the client timeout");
    assert!(error.is_timeout(), "{error}");
    let stats = t.control_get("/stats").await;
    let unanswered = stats["requests"]
        .as_array()
        .expect("rows")
        .iter()
        .any(|r| r["endpoint"] == "history" && r["status"] == 0);
    assert!(
        unanswered,
        "the hanging request counts as unanswered: {stats}"
    );
    assert_eq!(
        t.api_get("/comments/x").await.status,
        404,
        "other endpoints answer"
    );
}

#[tokio::test]
async fn a_lost_reply_with_502_is_in_the_ledger_while_the_client_saw_an_error() {
    let t = spawn(small()).await;
    t.set_faults(
        json!({"rules": [{"endpoint": "reply", "platform": "facebook",
                                   "fault": "lost_response", "status": 502}]}),
    )
    .await;
    let parent = first_comment(&t, "facebook").await;
    let a = t.reply("facebook", &parent, "Lost but applied").await;
    a.assert_error(502);
    let ledger = t.ledger().await;
    assert_eq!(ledger["replies"][0]["parentId"], parent.as_str());
    assert_eq!(ledger["replies"][0]["content"], "Lost but applied");
    let ours: Vec<Value> = t
        .comments_on("facebook")
        .await
        .into_iter()
        .filter(|c| c["fromUs"] == true)
        .collect();
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0]["commentId"], ledger["replies"][0]["commentId"]);
}

#[tokio::test]
async fn a_lost_reply_with_a_dropped_connection_is_in_the_ledger() {
    let t = spawn(small()).await;
    t.set_faults(json!({"rules": [{"endpoint": "reply", "fault": "lost_response"}]}))
        .await;
    let parent = first_comment(&t, "twitter").await;
    let error = t
        .client
        .post(format!(
            "{}/comments/reply/{}",
            t.sim.api_url(),
            encode(&parent)
        ))
        .bearer_auth(t.sim.api_key())
        .json(&json!({"comment": "Dropped", "platforms": ["twitter"], "searchPlatformId": true}))
        .send()
        .await
        .expect_err("the connection closes without an answer");
    assert!(!error.is_timeout(), "closed, not timed out: {error}");
    let ledger = t.ledger().await;
    assert_eq!(ledger["replies"].as_array().expect("replies").len(), 1);
    assert_eq!(ledger["replies"][0]["content"], "Dropped");
}

#[tokio::test]
async fn a_lost_message_send_is_in_the_ledger_in_both_variants() {
    let t = spawn(small()).await;
    let recipient = first_customer(&t, "facebook").await;
    let send = |text: &'static str| {
        t.client
            .post(format!("{}/messages/facebook", t.sim.api_url()))
            .bearer_auth(t.sim.api_key())
            .json(&json!({"recipientId": recipient, "message": text}))
            .send()
    };
    t.set_faults(
        json!({"rules": [{"endpoint": "messages", "fault": "lost_response",
                                   "status": 502}]}),
    )
    .await;
    let answered = send("first").await.expect("an answer");
    assert_eq!(answered.status(), 502);
    t.set_faults(json!({"rules": [{"endpoint": "messages", "fault": "lost_response"}]}))
        .await;
    send("second").await.expect_err("no answer");
    let ledger = t.ledger().await;
    let sent: Vec<&str> = ledger["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["message"].as_str().expect("message"))
        .collect();
    assert_eq!(sent, ["first", "second"]);
    assert!(
        ledger["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .all(|m| m["recipientId"] == recipient.as_str())
    );
}

#[tokio::test]
async fn a_counted_rule_fires_for_exactly_the_next_count_requests() {
    let t = spawn(small()).await;
    t.set_faults(
        json!({"rules": [{"endpoint": "history", "fault": "status", "status": 500,
                                   "count": 3}]}),
    )
    .await;
    for _ in 0..3 {
        t.api_get("/history").await.assert_error(500);
    }
    assert_eq!(t.api_get("/history").await.status, 200);
    let faults = t.control_get("/faults").await;
    assert_eq!(faults["rules"][0]["count"], 0);
}

#[tokio::test]
async fn rules_are_scoped_by_endpoint_and_platform() {
    let t = spawn(small()).await;
    t.set_faults(
        json!({"rules": [{"endpoint": "comments", "platform": "twitter",
                                   "fault": "status", "status": 503}]}),
    )
    .await;
    let twitter_post = t.comments_on("twitter").await[0]["postId"].clone();
    let facebook_post = t.comments_on("facebook").await[0]["postId"].clone();
    t.api_get(&format!("/comments/{}", twitter_post.as_str().expect("id")))
        .await
        .assert_error(503);
    let facebook = t
        .api_get(&format!(
            "/comments/{}",
            facebook_post.as_str().expect("id")
        ))
        .await;
    assert_eq!(facebook.status, 200);
    assert_eq!(t.api_get("/history?platform=twitter").await.status, 200);
}

#[tokio::test]
async fn an_injected_429_looks_like_the_rate_limiter() {
    let t = spawn(simulator::SimConfig {
        rate_limit: 300,
        ..small()
    })
    .await;
    t.set_faults(json!({"rules": [{"fault": "status", "status": 429, "count": 1}]}))
        .await;
    let a = t.api_get("/history").await;
    a.assert_error(429);
    assert_eq!(a.body["code"], 189);
    assert_eq!(a.header("x-ratelimit-max"), Some(300));
    assert_eq!(
        a.header("retry-after"),
        None,
        "Ayrshare documents no Retry-After"
    );

    t.set_faults(json!({"rules": [
        {"fault": "status", "status": 429, "count": 1, "retryAfterSeconds": 7}]}))
        .await;
    let told = t.api_get("/history").await;
    told.assert_error(429);
    assert_eq!(told.header("retry-after"), Some(7));
}

#[tokio::test]
async fn the_fault_set_round_trips_and_delete_clears_it() {
    let t = spawn(small()).await;
    let documented = json!({"rules": [{"endpoint": "history", "platform": "*", "fault": "status",
                                       "status": 503, "ms": 200, "probability": 0.1}],
                            "cacheDelaySeconds": 0.0, "messagingDisabled": ["instagram"],
                            "historyNotFound": ["bluesky"]});
    t.set_faults(documented.clone()).await;
    assert_eq!(t.control_get("/faults").await, documented);

    let cleared = t
        .client
        .delete(format!("{}/_sim/faults", t.sim.base_url()))
        .send()
        .await
        .expect("delete succeeds");
    assert_eq!(cleared.status(), 200);
    let empty = t.control_get("/faults").await;
    assert_eq!(empty["rules"], json!([]));
    assert_eq!(empty["messagingDisabled"], json!([]));

    for bad in [
        json!({"rules": [{"fault": "explode"}]}),
        json!({"rules": [{"fault": "status"}]}),
        json!({"rules": [{"fault": "latency", "probability": 1.5, "ms": 1}]}),
        json!({"rules": [], "cacheDelay": 3}),
        json!({"messagingDisabled": ["myspace"]}),
    ] {
        let a = t.control_post("/faults", &bad).await;
        assert_eq!(a.status, 400, "{bad} is refused");
        assert!(a.body["error"].is_string());
    }
}

#[tokio::test]
async fn faults_given_at_start_hold_and_come_back_on_reset() {
    let faults = simulator::FaultSet::from_json(r#"{"messagingDisabled": ["facebook"]}"#)
        .expect("valid faults");
    let t = spawn(simulator::SimConfig { faults, ..small() }).await;
    t.api_get("/messages/facebook").await.assert_error(403);
    t.set_faults(json!({})).await;
    assert_eq!(t.api_get("/messages/facebook").await.status, 200);
    t.control_post("/reset", &json!({})).await;
    t.api_get("/messages/facebook").await.assert_error(403);
}
