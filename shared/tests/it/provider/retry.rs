//! Retries: what is retried, how long the chain waits, and the writes that are never repeated
//! once they may have reached the provider.

use super::support::{
    Logs, ayrshare, ayrshare_at, ayrshare_behind_retry_after_proxy, control, default_ayrshare,
    last_30_days, requests, resilience, set_faults, some_comment, start, status_fault,
};
use serde_json::json;
use shared::domain::Platform;
use shared::provider::{Failure, ReplyTarget};
use shared::testing::{TestDb, free_port};
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_read_facing_three_503s_returns_the_data_after_three_retries_with_growing_backoff() {
    let (sim, db) = start().await;
    let settings = resilience(
        &sim.api_url(),
        &[
            ("PROVIDER_RETRY_MAX_ATTEMPTS", "5"),
            ("PROVIDER_RETRY_BASE_MS", "100"),
            ("BREAKER_MIN_CALLS", "100"),
        ],
    );
    let twitter = ayrshare(&sim, db.conn(), &settings, Platform::Twitter);
    set_faults(&sim, status_fault("history", 503, 3)).await;
    let (logs, _guard) = Logs::capture();

    let started = Instant::now();
    let posts = twitter
        .history(&last_30_days(None))
        .await
        .expect("data after retries");
    let elapsed = started.elapsed();

    assert_eq!(posts.len(), 10);
    assert_eq!(requests(&sim, "history", Some(503)).await, 3);
    assert_eq!(requests(&sim, "history", Some(200)).await, 1);
    let retries = logs.events("retrying provider call");
    let field = |name: &str| -> Vec<u64> {
        retries
            .iter()
            .map(|r| r[name].as_u64().expect("number"))
            .collect()
    };
    assert_eq!(field("attempt"), [1, 2, 3]);
    // Full jitter: each delay is drawn below a ceiling that doubles with every retry.
    assert_eq!(field("ceiling_ms"), [100, 200, 400]);
    let delays = field("delay_ms");
    for (delay, ceiling) in delays.iter().zip(field("ceiling_ms")) {
        assert!(*delay <= ceiling, "{delays:?}");
    }
    assert!(elapsed >= Duration::from_millis(delays.iter().sum()));
    let attempts: Vec<u64> = logs
        .events("provider request")
        .iter()
        .map(|e| e["attempt"].as_u64().expect("attempt"))
        .collect();
    assert_eq!(attempts, [4], "the fourth attempt succeeded");
}

#[tokio::test]
async fn a_400_is_final_and_not_retried() {
    let (sim, db) = start().await;
    let twitter = default_ayrshare(&sim, db.conn(), Platform::Twitter);
    set_faults(&sim, status_fault("history", 400, 10)).await;

    let err = twitter
        .history(&last_30_days(None))
        .await
        .expect_err("bad request");
    assert!(err.is_definite_rejection(), "{err}");
    assert_eq!(err.status(), Some(400));
    assert!(
        err.to_string().contains("injected by ayrshare-sim"),
        "{err}"
    );
    assert_eq!(requests(&sim, "history", None).await, 1);
}

#[tokio::test]
async fn a_429_with_retry_after_2_waits_at_least_2_seconds_then_succeeds() {
    let (sim, db) = start().await;
    // The simulator sends no Retry-After; a proxy in front of it adds one to its 429s.
    let settings = resilience(&sim.api_url(), &[("PROVIDER_RETRY_CAP_MS", "5000")]);
    let twitter =
        ayrshare_behind_retry_after_proxy(&sim, db.conn(), &settings, 2, Platform::Twitter).await;
    set_faults(&sim, status_fault("history", 429, 1)).await;

    let started = Instant::now();
    twitter
        .history(&last_30_days(None))
        .await
        .expect("data after the wait");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(requests(&sim, "history", Some(429)).await, 1);
    assert_eq!(requests(&sim, "history", Some(200)).await, 1);
}

#[tokio::test]
async fn a_retry_after_longer_than_the_cap_is_handed_back_with_when_to_try_again() {
    let (sim, db) = start().await;
    let settings = resilience(&sim.api_url(), &[]);
    let twitter =
        ayrshare_behind_retry_after_proxy(&sim, db.conn(), &settings, 60, Platform::Twitter).await;
    set_faults(&sim, status_fault("history", 429, 1)).await;

    let started = Instant::now();
    let err = twitter
        .history(&last_30_days(None))
        .await
        .expect_err("not waited out");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(err.is_transient(), "{err}");
    let retry_at = err.retry_at().expect("when to try again");
    let from_now = retry_at - chrono::Utc::now();
    assert!(from_now > chrono::TimeDelta::seconds(55), "{from_now}");
}

#[tokio::test]
async fn a_reply_facing_a_502_is_outcome_unknown_and_not_retried() {
    let (sim, db) = start().await;
    let twitter = default_ayrshare(&sim, db.conn(), Platform::Twitter);
    let comment = some_comment(&sim, "twitter").await;
    // The reply is applied, then the answer is lost behind a 502.
    set_faults(
        &sim,
        json!({"rules": [{"endpoint": "reply", "fault": "lost_response", "status": 502}]}),
    )
    .await;

    let err = twitter
        .reply(
            &ReplyTarget::SocialComment(comment.clone()),
            "Sorry about that!",
        )
        .await
        .expect_err("502");
    assert!(err.is_outcome_unknown(), "{err}");
    assert!(!err.is_transient() && !err.is_definite_rejection());
    assert_eq!(requests(&sim, "reply", None).await, 1, "one request only");
    let ledger = control(&sim, "ledger").await;
    assert_eq!(ledger["replies"].as_array().expect("replies").len(), 1);
    assert_eq!(ledger["replies"][0]["parentId"], comment.as_str());
}

#[tokio::test]
async fn a_reply_that_times_out_is_outcome_unknown_and_not_retried() {
    let (sim, db) = start().await;
    let settings = resilience(&sim.api_url(), &[("PROVIDER_TIMEOUT_MS", "300")]);
    let twitter = ayrshare(&sim, db.conn(), &settings, Platform::Twitter);
    let comment = some_comment(&sim, "twitter").await;
    set_faults(
        &sim,
        json!({"rules": [{"endpoint": "reply", "fault": "timeout", "ms": 2000}]}),
    )
    .await;

    let err = twitter
        .reply(&ReplyTarget::SocialComment(comment), "Hello?")
        .await
        .expect_err("timeout");
    assert!(err.is_outcome_unknown(), "{err}");
    assert_eq!(err.failure(), Some(&Failure::Timeout));
    assert_eq!(requests(&sim, "reply", None).await, 1, "one request only");
}

#[tokio::test]
async fn a_reply_refused_with_429_is_retried_and_applied_once() {
    let (sim, db) = start().await;
    let twitter = default_ayrshare(&sim, db.conn(), Platform::Twitter);
    let comment = some_comment(&sim, "twitter").await;
    set_faults(&sim, status_fault("reply", 429, 1)).await;

    twitter
        .reply(&ReplyTarget::SocialComment(comment), "Thanks!")
        .await
        .expect("sent after the 429");
    assert_eq!(requests(&sim, "reply", Some(429)).await, 1);
    assert_eq!(requests(&sim, "reply", Some(200)).await, 1);
    let ledger = control(&sim, "ledger").await;
    assert_eq!(ledger["replies"].as_array().expect("replies").len(), 1);
}

#[tokio::test]
async fn a_reply_to_an_unreachable_provider_is_retried_because_nothing_was_sent() {
    let db = TestDb::new().await;
    let closed = format!("http://127.0.0.1:{}/api", free_port());
    let settings = resilience(&closed, &[("BREAKER_MIN_CALLS", "100")]);
    let twitter = ayrshare_at(&closed, "sim-key", db.conn(), &settings, Platform::Twitter);
    let (logs, _guard) = Logs::capture();

    let err = twitter
        .reply(&ReplyTarget::SocialComment("123".to_owned()), "Hi")
        .await
        .expect_err("nobody listens");
    assert!(err.is_transient(), "{err}");
    assert!(
        matches!(err.failure(), Some(Failure::Unreachable(_))),
        "{err}"
    );
    assert_eq!(
        logs.events("provider request failed").len(),
        4,
        "every attempt was made: {}",
        logs.text()
    );
}
