//! The distributed circuit breaker: opening on the failure rate, failing fast while open,
//! exactly K probes across instances, longer reopening, closing, audit and metrics.

use super::support::{
    Logs, PROCESS, ayrshare, breaker_audit, breaker_state, last_30_days, persistent_status_fault,
    requests, resilience, set_faults, start, status_fault,
};
use futures_util::future::join_all;
use sea_orm::{ConnectOptions, Database};
use serde_json::json;
use shared::domain::Platform;
use shared::provider::Ayrshare;
use shared::provider::DeferReason;
use shared::resilience::STATE_METRIC;
use shared::testing::TestDb;
use simulator::Simulator;
use std::time::Duration;

/// Settings where each call is one request (no retries) and no process holds outcomes in
/// memory (no recheck time), so a trip is decided by the call that reaches the threshold.
fn single_attempt(api_url: &str) -> shared::config::ResilienceSettings {
    resilience(
        api_url,
        &[
            ("PROVIDER_RETRY_MAX_ATTEMPTS", "1"),
            ("BREAKER_RECHECK_MS", "0"),
        ],
    )
}

/// Twitter operations on `db` without retries.
fn twitter_single_attempt(sim: &Simulator, db: &sea_orm::DatabaseConnection) -> Ayrshare {
    ayrshare(sim, db, &single_attempt(&sim.api_url()), Platform::Twitter)
}

/// A second pool on the same database: another process, as far as the database can tell.
async fn other_pool(db: &TestDb) -> sea_orm::DatabaseConnection {
    let mut options = ConnectOptions::new(db.url().to_owned());
    options.max_connections(8).sqlx_logging(false);
    Database::connect(options).await.expect("second pool")
}

#[tokio::test]
async fn the_breaker_opens_at_the_threshold_and_then_fails_fast_without_calling_the_provider() {
    let metrics = shared::telemetry::metrics_handle();
    let (sim, db) = start().await;
    let twitter = twitter_single_attempt(&sim, db.conn());
    let (logs, _guard) = Logs::capture();
    set_faults(&sim, persistent_status_fault("history", 503)).await;

    for n in 1..=3 {
        let err = twitter.history(&last_30_days(None)).await.expect_err("503");
        assert!(err.is_transient(), "call {n}: {err}");
        assert_eq!(
            breaker_state(db.conn(), "twitter").await,
            "closed",
            "call {n}"
        );
    }
    let fourth = twitter.history(&last_30_days(None)).await.expect_err("503");
    assert!(fourth.is_transient());
    assert_eq!(breaker_state(db.conn(), "twitter").await, "open");

    for _ in 0..10 {
        let err = twitter
            .history(&last_30_days(None))
            .await
            .expect_err("open");
        assert!(err.is_deferred(), "{err}");
        assert!(matches!(
            err,
            shared::provider::ProviderError::Deferred { reason: DeferReason::BreakerOpen(ref key), .. }
                if key == "twitter"
        ));
        let wait = err.retry_at().expect("retry time") - chrono::Utc::now();
        assert!(wait > chrono::TimeDelta::milliseconds(1000), "{wait}");
    }
    assert_eq!(
        requests(&sim, "history", None).await,
        4,
        "open calls never left"
    );

    let audit = breaker_audit(db.conn(), "twitter").await;
    assert_eq!(audit.len(), 1);
    let (actor, action, payload) = &audit[0];
    assert_eq!(actor, &format!("system:{PROCESS}"));
    assert_eq!(action, "breaker.opened");
    assert_eq!(
        (payload["calls"].clone(), payload["failures"].clone()),
        (json!(4), json!(4))
    );
    assert_eq!(logs.events("circuit breaker opened").len(), 1);
    assert!(
        metrics
            .render()
            .contains(&format!("{STATE_METRIC}{{breaker=\"twitter\"}} 2")),
        "{}",
        metrics.render()
    );
    // Other platforms have their own breaker.
    ayrshare(
        &sim,
        db.conn(),
        &single_attempt(&sim.api_url()),
        Platform::Facebook,
    )
    .comments(&shared::provider::CommentsTarget::AyrsharePost(
        "nope".to_owned(),
    ))
    .await
    .expect_err("unknown post")
    .is_not_found()
    .then_some(())
    .expect("facebook still reaches the provider");
}

#[tokio::test]
async fn breaker_state_written_by_one_instance_is_obeyed_by_another() {
    let (sim, db) = start().await;
    let settings = single_attempt(&sim.api_url());
    let first = ayrshare(&sim, db.conn(), &settings, Platform::Twitter);
    set_faults(&sim, status_fault("history", 503, 4)).await;
    for _ in 0..4 {
        first.history(&last_30_days(None)).await.expect_err("503");
    }

    let pool = other_pool(&db).await;
    let second = ayrshare(&sim, &pool, &settings, Platform::Twitter);
    let err = second.history(&last_30_days(None)).await.expect_err("open");
    assert!(err.is_deferred(), "{err}");
    assert_eq!(requests(&sim, "history", None).await, 4);
}

/// Twitter operations on a pool of their own, rechecking a closed breaker after `recheck_ms`,
/// that have seen the breaker closed, after which another instance's failures opened it; and the
/// history requests the provider has seen by then (the opening one is the fourth failure, or
/// the third once the watcher's healthy call is counted).
async fn saw_closed_then_opened_elsewhere(
    sim: &Simulator,
    db: &TestDb,
    recheck_ms: &str,
) -> (Ayrshare, u64) {
    let settings = resilience(
        &sim.api_url(),
        &[
            ("PROVIDER_RETRY_MAX_ATTEMPTS", "1"),
            ("BREAKER_RECHECK_MS", recheck_ms),
        ],
    );
    let pool = other_pool(db).await;
    let watcher = ayrshare(sim, &pool, &settings, Platform::Twitter);
    watcher
        .history(&last_30_days(None))
        .await
        .expect("closed: goes through");
    let tripper = twitter_single_attempt(sim, db.conn());
    set_faults(sim, persistent_status_fault("history", 503)).await;
    for _ in 0..4 {
        tripper.history(&last_30_days(None)).await.expect_err("503");
    }
    assert_eq!(breaker_state(db.conn(), "twitter").await, "open");
    (watcher, requests(sim, "history", None).await)
}

#[tokio::test]
async fn a_process_that_saw_the_breaker_closed_obeys_another_opening_it_within_the_recheck_time() {
    let (sim, db) = start().await;
    let (watcher, seen) = saw_closed_then_opened_elsewhere(&sim, &db, "300").await;

    tokio::time::sleep(Duration::from_millis(300)).await;
    let err = watcher
        .history(&last_30_days(None))
        .await
        .expect_err("open for everyone");
    assert!(err.is_deferred(), "{err}");
    assert_eq!(requests(&sim, "history", None).await, seen);
}

#[tokio::test]
async fn a_failure_seen_after_another_process_opened_it_stops_this_process_at_once() {
    let (sim, db) = start().await;
    let (watcher, seen) = saw_closed_then_opened_elsewhere(&sim, &db, "60000").await;

    // Still inside its recheck time, the watcher's next call is let through and fails; that
    // failure finds the breaker open, and the call after it is refused without a request.
    watcher.history(&last_30_days(None)).await.expect_err("503");
    let err = watcher
        .history(&last_30_days(None))
        .await
        .expect_err("open");
    assert!(err.is_deferred(), "{err}");
    assert_eq!(requests(&sim, "history", None).await, seen + 1);
}

#[tokio::test]
async fn healthy_calls_counted_in_memory_still_dilute_the_failure_rate() {
    let (sim, db) = start().await;
    let twitter = twitter_single_attempt(&sim, db.conn());
    for _ in 0..4 {
        twitter.history(&last_30_days(None)).await.expect("healthy");
    }
    set_faults(&sim, persistent_status_fault("history", 503)).await;
    // 4 healthy calls, then failures: 3 of 7 stay under 50 %, the 4th of 8 reaches it.
    for n in 1..=3 {
        twitter.history(&last_30_days(None)).await.expect_err("503");
        assert_eq!(breaker_state(db.conn(), "twitter").await, "closed", "{n}");
    }
    twitter.history(&last_30_days(None)).await.expect_err("503");
    let audit = breaker_audit(db.conn(), "twitter").await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(
        (audit[0].2["calls"].clone(), audit[0].2["failures"].clone()),
        (json!(8), json!(4))
    );
}

#[tokio::test]
async fn after_the_open_period_exactly_k_probes_pass_across_instances_then_it_reopens_longer_and_a_good_probe_closes_it()
 {
    let (sim, db) = start().await;
    // Two probe permits; open 2 s, then 4 s after a failed probe.
    let settings = single_attempt(&sim.api_url());
    let pool = other_pool(&db).await;
    let instances = [
        ayrshare(&sim, db.conn(), &settings, Platform::Twitter),
        ayrshare(&sim, &pool, &settings, Platform::Twitter),
    ];
    set_faults(&sim, persistent_status_fault("history", 503)).await;
    for _ in 0..4 {
        instances[0]
            .history(&last_30_days(None))
            .await
            .expect_err("503");
    }
    let opened = breaker_audit(db.conn(), "twitter").await;
    let first_open_until: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(opened[0].2["openUntil"].clone()).expect("openUntil");

    // Slow failing probes, so that every racer asks while they are out.
    set_faults(
        &sim,
        json!({"rules": [{"endpoint": "history", "fault": "latency", "ms": 1500},
                         {"endpoint": "history", "fault": "status", "status": 503}]}),
    )
    .await;
    let wait = (first_open_until - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(50)).await;
    let q = last_30_days(None);
    let racers = instances
        .iter()
        .flat_map(|chain| (0..6).map(|_| chain.history(&q)));
    let results = join_all(racers).await;
    let probed = results
        .iter()
        .filter(|r| matches!(r, Err(e) if e.is_transient()))
        .count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(e) if e.is_deferred()))
        .count();
    assert_eq!((probed, refused), (2, 10), "{results:?}");
    assert_eq!(
        requests(&sim, "history", None).await,
        4 + 2,
        "exactly K probes reached it"
    );

    assert_eq!(breaker_state(db.conn(), "twitter").await, "open");
    let audit = breaker_audit(db.conn(), "twitter").await;
    let actions: Vec<&str> = audit.iter().map(|(_, a, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        ["breaker.opened", "breaker.half_opened", "breaker.opened"]
    );
    let reopened = &audit[2].2;
    assert_eq!(reopened["from"], "half_open");
    assert_eq!(reopened["reopenCount"], 1);
    let reopen_until: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(reopened["openUntil"].clone()).expect("openUntil");
    let longer = reopen_until - chrono::Utc::now();
    assert!(
        longer > chrono::TimeDelta::milliseconds(2500),
        "open for 4 s now: {longer}"
    );

    // The provider recovers; the next probe closes the breaker for everyone. Each instance
    // remembers the open period from the answer that reported it, which may have come back
    // well after the database's clock read it on a busy machine: wait out that lag too.
    set_faults(&sim, json!({})).await;
    let wait = (reopen_until - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(500)).await;
    instances[1]
        .history(&last_30_days(None))
        .await
        .expect("probe succeeds");
    assert_eq!(breaker_state(db.conn(), "twitter").await, "closed");
    instances[0]
        .history(&last_30_days(None))
        .await
        .expect("closed for everyone");
    let actions: Vec<String> = breaker_audit(db.conn(), "twitter")
        .await
        .into_iter()
        .map(|(_, a, _)| a)
        .collect();
    assert_eq!(
        actions[3..],
        [
            "breaker.half_opened".to_owned(),
            "breaker.closed".to_owned()
        ]
    );
    assert!(
        shared::audit::verify(db.conn(), None)
            .await
            .expect("verify")
            .is_valid()
    );
}

#[tokio::test]
async fn the_failure_rate_is_counted_over_a_sliding_window_that_does_not_forget_at_a_boundary() {
    let (sim, db) = start().await;
    let settings = resilience(
        &sim.api_url(),
        &[
            ("PROVIDER_RETRY_MAX_ATTEMPTS", "1"),
            ("BREAKER_RECHECK_MS", "0"),
            ("BREAKER_WINDOW_SECONDS", "2"),
        ],
    );
    let twitter = ayrshare(&sim, db.conn(), &settings, Platform::Twitter);
    for _ in 0..4 {
        twitter.history(&last_30_days(None)).await.expect("healthy");
    }
    // Timed from the last healthy call (the calls themselves may be slow on a busy machine).
    let started = tokio::time::Instant::now();
    tokio::time::sleep_until(started + Duration::from_millis(1000)).await;
    set_faults(&sim, persistent_status_fault("history", 503)).await;
    for n in 1..=3 {
        twitter.history(&last_30_days(None)).await.expect_err("503");
        assert_eq!(breaker_state(db.conn(), "twitter").await, "closed", "{n}");
    }
    // Two seconds after the healthy calls they have left the window; the three failures of a
    // second ago have not: with this one, 4 of 4 calls of the last two seconds failed.
    tokio::time::sleep_until(started + Duration::from_millis(2300)).await;
    twitter.history(&last_30_days(None)).await.expect_err("503");
    assert_eq!(breaker_state(db.conn(), "twitter").await, "open");
    let audit = breaker_audit(db.conn(), "twitter").await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(
        (audit[0].2["calls"].clone(), audit[0].2["failures"].clone()),
        (json!(4), json!(4))
    );
}

#[tokio::test]
async fn healthy_calls_another_process_holds_in_memory_are_counted_before_a_trip_is_decided() {
    let (sim, db) = start().await;
    // Each process holds healthy outcomes for up to 300 ms; a trip settles for 600 ms.
    let settings = resilience(
        &sim.api_url(),
        &[
            ("PROVIDER_RETRY_MAX_ATTEMPTS", "1"),
            ("BREAKER_RECHECK_MS", "300"),
        ],
    );
    let pool = other_pool(&db).await;
    let holder = ayrshare(&sim, &pool, &settings, Platform::Twitter);
    let tripper = ayrshare(&sim, db.conn(), &settings, Platform::Twitter);
    for _ in 0..6 {
        holder.history(&last_30_days(None)).await.expect("healthy");
    }
    set_faults(&sim, persistent_status_fault("history", 503)).await;
    // 4 of 4 counted calls failed, but the other process holds 6 healthy ones: the true rate
    // is 40%, and the breaker waits for them.
    for n in 1..=4 {
        tripper.history(&last_30_days(None)).await.expect_err("503");
        assert_eq!(breaker_state(db.conn(), "twitter").await, "closed", "{n}");
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // 5 of 11.
    tripper.history(&last_30_days(None)).await.expect_err("503");
    assert_eq!(breaker_state(db.conn(), "twitter").await, "closed");
    assert!(breaker_audit(db.conn(), "twitter").await.is_empty());

    // 6 of 12 reaches the threshold; still there after the settling time, 7 of 13 opens it.
    tripper.history(&last_30_days(None)).await.expect_err("503");
    assert_eq!(breaker_state(db.conn(), "twitter").await, "closed");
    tokio::time::sleep(Duration::from_millis(700)).await;
    tripper.history(&last_30_days(None)).await.expect_err("503");
    assert_eq!(breaker_state(db.conn(), "twitter").await, "open");
    let audit = breaker_audit(db.conn(), "twitter").await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(
        (audit[0].2["calls"].clone(), audit[0].2["failures"].clone()),
        (json!(13), json!(7))
    );
    assert_eq!(requests(&sim, "history", None).await, 6 + 7);
}
