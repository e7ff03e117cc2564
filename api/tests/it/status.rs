//! Status, provider health and metrics.

use crate::app::TestApp;
use reqwest::Method;
use serde_json::Value;
use shared::domain::Role;

async fn health(app: &TestApp) -> (u16, Value) {
    let response = app
        .send(app.request(Method::GET, "/v1/status/health", None))
        .await;
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

#[tokio::test]
async fn health_is_200_while_every_breaker_is_closed_and_503_with_the_open_platform_named() {
    let app = TestApp::spawn().await;
    // The test settings configure facebook, twitter and youtube.
    let (status, body) = health(&app).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "healthy");
    let platforms = body["platforms"].as_object().expect("platforms");
    assert_eq!(platforms.len(), 3);
    assert_eq!(body["platforms"]["twitter"]["breaker"], "closed");
    assert_eq!(body["platforms"]["twitter"]["messaging"], "unknown");
    assert_eq!(body["platforms"]["facebook"]["messaging"], "unknown");
    assert_eq!(body["platforms"]["youtube"]["messaging"], "unsupported");
    assert_eq!(
        body["platforms"]["twitter"]["lastSuccessfulIngestAt"],
        Value::Null
    );

    app.sql(
        "INSERT INTO circuit_breakers (key, state, opened_at, open_until) \
         VALUES ('twitter', 'open', now(), now() + interval '30 seconds'), ('facebook', 'closed', NULL, NULL); \
         INSERT INTO platform_status (platform, messaging_enabled, messaging_error) \
         VALUES ('twitter', true, NULL), ('facebook', false, 'Messaging is not enabled'); \
         INSERT INTO tasks (kind, platform, status, finished_at) \
         VALUES ('ingest', 'facebook', 'succeeded', '2026-11-29T10:00:00Z'), \
                ('ingest', 'facebook', 'succeeded', '2026-11-29T11:00:00Z'), \
                ('ingest', 'facebook', 'dead', '2026-11-29T12:00:00Z')",
    )
    .await;
    let (status, body) = health(&app).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["platforms"]["twitter"]["breaker"], "open");
    assert!(body["platforms"]["twitter"]["openUntil"].is_string());
    assert_eq!(body["platforms"]["facebook"]["breaker"], "closed");
    assert_eq!(body["platforms"]["twitter"]["messaging"], "available");
    assert_eq!(body["platforms"]["facebook"]["messaging"], "unavailable");
    assert_eq!(
        body["platforms"]["facebook"]["messagingError"],
        "Messaging is not enabled"
    );
    let last = body["platforms"]["facebook"]["lastSuccessfulIngestAt"]
        .as_str()
        .expect("a time");
    assert!(last.starts_with("2026-11-29T11:00:00"), "{last}");

    let up = app.send(app.request(Method::GET, "/v1/status", None)).await;
    assert_eq!(up.status(), 200);
}

#[tokio::test]
async fn metrics_count_requests_by_matched_route_and_status() {
    let app = TestApp::spawn().await;
    let ann = app.user(Role::Agent, "ann@example.com").await;
    let unknown = "/v1/mentions/0191e1c2-7b3a-7cc0-8f5e-1a2b3c4d5e6f";
    let response = app
        .send(app.request(Method::GET, unknown, Some(&ann.token)))
        .await;
    assert_eq!(response.status(), 404);

    let text = app
        .send(app.request(Method::GET, "/metrics", None))
        .await
        .text()
        .await
        .expect("text");
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("http_requests_total")
                && l.contains("route=\"/v1/mentions/{id}\"")
                && l.contains("status=\"404\"")
        })
        .unwrap_or_else(|| panic!("no request counter for the route:\n{text}"));
    assert!(!line.contains("0191e1c2"), "ids stay out of labels: {line}");
    assert!(text.contains("http_request_duration_seconds"), "{text}");
}

#[tokio::test]
async fn the_budget_report_shows_slots_by_class_the_reserve_the_next_reads_and_freshness() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin, "admin@example.com").await;
    let agent = app.user(Role::Agent, "agent@example.com").await;
    let response = app
        .send(app.request(Method::GET, "/v1/status/budget", Some(&agent.token)))
        .await;
    assert_eq!(response.status().as_u16(), 403, "admins only");

    // Two replies and a re-read spent, one given back; a post never read; a comment that
    // reached the inbox 30 s after it was posted; a reply sent 2 s after it was requested.
    app.sql(
        "SELECT take_budget_slot('default', 300, interval '301 s', 'reply', 60, 8); \
         SELECT take_budget_slot('default', 300, interval '301 s', 'reply', 60, 8); \
         SELECT take_budget_slot('default', 300, interval '301 s', 'refresh', 60, 8); \
         SELECT return_budget_slot(min(id)) FROM rate_budget_grants; \
         INSERT INTO posts (platform, ayrshare_post_id, platform_post_id, next_fetch_at) \
         VALUES ('twitter', 'ayr-1', 'tw-1', now() - interval '1 minute'); \
         INSERT INTO mentions (type, platform, platform_ref, posted_at) \
         VALUES ('comment', 'facebook', 'c-1', now() - interval '30 seconds')",
    )
    .await;
    let body = app.get_json("/v1/status/budget", &admin.token).await;
    let profile = &body["profiles"][0];
    assert_eq!(profile["profile"], "default", "{body}");
    assert_eq!(profile["limit"], 300);
    assert_eq!(profile["windowSeconds"], 300);
    assert_eq!(profile["reserved"], 60, "20% by default");
    assert_eq!(profile["used"]["reply"], 1, "{body}");
    assert_eq!(profile["used"]["refresh"], 1);
    assert_eq!(profile["used"]["discover"], 0);
    assert_eq!(profile["left"], 298);
    assert_eq!(profile["grantedTotal"], 3);
    assert_eq!(profile["returnedTotal"], 1);
    assert_eq!(
        profile["provider"],
        Value::Null,
        "the provider has not spoken"
    );
    assert_eq!(profile["nextReads"][0]["platform"], "twitter", "{body}");
    assert_eq!(profile["nextReads"][0]["firstRead"], true);
    assert_eq!(profile["timeToInbox"]["count"], 1);
    let p50 = profile["timeToInbox"]["p50"].as_f64().expect("p50");
    assert!((29.0..60.0).contains(&p50), "{p50}");
    assert_eq!(profile["replyLatency"]["count"], 0);
    assert_eq!(profile["replyLatency"]["p99"], Value::Null);
}

#[tokio::test]
async fn while_the_database_is_unreachable_requests_answer_503_unavailable_with_retry_after() {
    let (app, gate) = TestApp::spawn_gated().await;
    let agent = app.user(Role::Agent, "agent@example.com").await;
    let mentions = || app.request(Method::GET, "/v1/mentions", Some(&agent.token));
    assert_eq!(app.send(mentions()).await.status(), 200);

    gate.shut();
    let login = app
        .request(Method::POST, "/v1/users/login", None)
        .json(&serde_json::json!({"email": "agent@example.com", "password": "x"}));
    for request in [mentions(), login] {
        let response = app.send(request).await;
        assert!(
            response.headers().contains_key("retry-after"),
            "{:?}",
            response.headers()
        );
        let problem = crate::app::assert_problem(response, 503, "unavailable").await;
        assert!(
            !problem.to_string().contains("127.0.0.1"),
            "nothing of the cause is shown: {problem}"
        );
    }

    gate.open();
    assert_eq!(
        app.send(mentions()).await.status(),
        200,
        "back once the database is"
    );
}
