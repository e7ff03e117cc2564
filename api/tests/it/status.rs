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
