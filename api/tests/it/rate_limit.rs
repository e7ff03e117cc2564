//! The per-token rate limit.

use crate::app::{TestApp, assert_problem};
use api::rate_limit::RateLimit;
use reqwest::Method;
use shared::domain::Role;

#[tokio::test]
async fn a_burst_beyond_the_limit_gets_429_with_retry_after_and_other_tokens_are_unaffected() {
    let app = TestApp::spawn_with(RateLimit {
        per_second: 1,
        burst: 5,
    })
    .await;
    let ann = app.user(Role::Agent, "ann@example.com").await;
    let bob = app.user(Role::Agent, "bob@example.com").await;
    for _ in 0..5 {
        app.get_json("/v1/me", &ann.token).await;
    }
    let refused = app
        .send(app.request(Method::GET, "/v1/me", Some(&ann.token)))
        .await;
    let retry_after: u64 = refused
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert_eq!(retry_after, 1);
    assert_problem(refused, 429, "rate_limited").await;
    app.get_json("/v1/me", &bob.token).await;
}
