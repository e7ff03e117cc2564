//! Authentication, the per-profile rate limit and its headers, and the stats that prove it.

use std::time::Duration;

use serde_json::Value;

use crate::support::{Answer, TestSim, small, spawn, wait_until};

async fn history(t: &TestSim, profile: Option<&str>) -> Answer {
    let mut request = t
        .client
        .get(format!("{}/history?platforms[0]=twitter", t.sim.api_url()))
        .bearer_auth(t.sim.api_key());
    if let Some(profile) = profile {
        request = request.header("Profile-Key", profile);
    }
    let response = request.send().await.expect("request succeeds");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
    }
}

#[tokio::test]
async fn a_missing_or_wrong_api_key_is_401_with_code_102() {
    let t = spawn(small()).await;
    let url = format!("{}/history", t.sim.api_url());
    let attempts = [
        t.client.get(&url),
        t.client.get(&url).bearer_auth("wrong-key"),
        t.client.get(&url).header("Authorization", t.sim.api_key()),
    ];
    for request in attempts {
        let response = request.send().await.expect("request succeeds");
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.expect("JSON body");
        assert_eq!(body["status"], "error");
        assert_eq!(body["code"], 102);
        assert!(body["message"].is_string());
    }
    let reply = t
        .client
        .post(format!("{}/comments/reply/1", t.sim.api_url()))
        .send()
        .await
        .expect("request succeeds");
    assert_eq!(reply.status(), 401);
}

#[tokio::test]
async fn rate_limit_headers_count_each_request_and_429_arrives_exactly_at_the_limit() {
    let t = spawn(simulator::SimConfig {
        rate_limit: 5,
        ..small()
    })
    .await;
    for n in 1..=5 {
        let a = history(&t, None).await;
        assert_eq!(a.status, 200, "request {n}");
        assert_eq!(a.header("x-ratelimit-max"), Some(5));
        assert_eq!(a.header("x-ratelimit-count"), Some(n));
    }
    let limited = history(&t, None).await;
    limited.assert_error(429);
    assert_eq!(limited.header("x-ratelimit-max"), Some(5));
    assert_eq!(limited.header("x-ratelimit-count"), Some(5));

    let other = history(&t, Some("brand-b")).await;
    assert_eq!(other.status, 200, "each profile has its own budget");
    assert_eq!(other.header("x-ratelimit-count"), Some(1));
}

#[tokio::test]
async fn the_rate_window_slides() {
    let t = spawn(simulator::SimConfig {
        rate_limit: 2,
        rate_window_seconds: 1,
        ..small()
    })
    .await;
    assert_eq!(history(&t, None).await.status, 200);
    assert_eq!(history(&t, None).await.status, 200);
    assert_eq!(history(&t, None).await.status, 429);
    assert!(
        wait_until(Duration::from_secs(3), || async {
            history(&t, None).await.status == 200
        })
        .await
    );
}

#[tokio::test]
async fn with_the_limit_off_there_are_no_rate_headers() {
    let t = spawn(small()).await;
    let a = history(&t, None).await;
    assert_eq!(a.status, 200);
    assert!(a.headers.get("x-ratelimit-max").is_none());
}

#[tokio::test]
async fn stats_count_requests_and_report_the_busiest_window() {
    let t = spawn(simulator::SimConfig {
        rate_limit: 8,
        ..small()
    })
    .await;
    for _ in 0..10 {
        history(&t, None).await;
    }
    t.api_get("/history/gmb").await;
    let stats = t.control_get("/stats?windowSeconds=60").await;
    assert_eq!(stats["total"], 11);
    assert_eq!(stats["windowSeconds"], 60.0);
    assert_eq!(
        stats["maxRequestsInWindow"], 8,
        "only accepted requests count"
    );
    assert_eq!(stats["maxConcurrentCommentFetchesPerPost"], 0);
    let rows = stats["requests"].as_array().expect("rows");
    let count = |status: u64, platform: &str| {
        rows.iter()
            .find(|r| {
                r["endpoint"] == "history"
                    && r["method"] == "GET"
                    && r["platform"] == platform
                    && r["status"] == status
            })
            .map(|r| r["count"].clone())
    };
    assert_eq!(count(200, "twitter"), Some(8.into()));
    assert_eq!(count(429, "twitter"), Some(2.into()));
    assert_eq!(count(429, "gmb"), Some(1.into()));
    t.control_get("/stats").await;
}

#[tokio::test]
async fn stats_report_the_longest_pause_between_accepted_requests() {
    let t = spawn(simulator::SimConfig {
        rate_limit: 10,
        ..small()
    })
    .await;
    assert_eq!(t.control_get("/stats").await["maxGapSeconds"], 0.0);
    let pause = Duration::from_millis(1200);
    history(&t, None).await;
    history(&t, None).await;
    tokio::time::sleep(pause / 2).await;
    // Refused before the limiter: not an accepted request, so it does not split the pause.
    let refused = t
        .client
        .get(format!("{}/history", t.sim.api_url()))
        .send()
        .await
        .expect("request succeeds");
    assert_eq!(refused.status(), 401);
    tokio::time::sleep(pause / 2).await;
    history(&t, None).await;
    let gap = t.control_get("/stats").await["maxGapSeconds"]
        .as_f64()
        .expect("maxGapSeconds is a number");
    assert!(
        (pause.as_secs_f64()..pause.as_secs_f64() + 0.5).contains(&gap),
        "gap {gap} s for a pause of {pause:?}"
    );
}
