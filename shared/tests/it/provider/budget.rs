//! The request budget shared through the database: callers that reschedule, callers that
//! wait, separate processes that together stay inside it, the classes and their reserve,
//! pacing, slots given back, and the provider's own word on what is left.

use super::support::{ayrshare, control, last_30_days, requests, resilience, simulator, start};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};
use serde_json::Value;
use shared::domain::Platform;
use shared::provider::{DeferReason, ProviderError};
use shared::resilience::{BudgetClass, RateBudget, SEND_MARGIN, Take};
use shared::testing::TestDb;
use simulator::SimConfig;
use std::process::Stdio;
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_spent_budget_defers_a_rescheduling_caller_and_makes_a_waiting_caller_wait_for_a_slot() {
    let (sim, db) = start().await;
    let settings = resilience(
        &sim.api_url(),
        &[
            ("RATE_BUDGET_REQUESTS", "3"),
            ("RATE_BUDGET_WINDOW_SECONDS", "2"),
        ],
    );
    let waiting =
        ayrshare(&sim, db.conn(), &settings, Platform::Twitter).for_class(BudgetClass::Reply);
    let rescheduling = ayrshare(&sim, db.conn(), &settings, Platform::Facebook)
        .for_class(BudgetClass::Reply)
        .rescheduling();

    let started = Instant::now();
    for _ in 0..3 {
        waiting
            .history(&last_30_days(Some(1)))
            .await
            .expect("inside the budget");
    }
    // The budget is per profile: another platform's chain shares it.
    let err = rescheduling
        .history(&last_30_days(Some(1)))
        .await
        .expect_err("spent");
    assert!(
        matches!(&err, ProviderError::Deferred { reason: DeferReason::BudgetSpent(key), .. }
                 if key == "default"),
        "{err}"
    );
    let free_in = err.retry_at().expect("when") - chrono::Utc::now();
    let window = chrono::TimeDelta::from_std(Duration::from_secs(2) + SEND_MARGIN).expect("delta");
    assert!(
        free_in > chrono::TimeDelta::zero() && free_in <= window,
        "{free_in}"
    );

    waiting
        .history(&last_30_days(Some(1)))
        .await
        .expect("after waiting");
    assert!(started.elapsed() >= Duration::from_secs(2) + SEND_MARGIN);
    assert_eq!(
        requests(&sim, "history", None).await,
        4,
        "the deferred call sent nothing"
    );
}

fn budget(db: &DatabaseConnection, limit: u32, window_s: u64, reserve_percent: u32) -> RateBudget {
    RateBudget::new(
        "default".to_owned(),
        limit,
        Duration::from_secs(window_s),
        reserve_percent,
        db.clone(),
    )
}

async fn granted(budget: &RateBudget, class: BudgetClass) -> bool {
    match budget.try_take(class).await.expect("take") {
        Take::Granted(slot) => {
            budget.used(slot);
            true
        }
        Take::Spent { .. } => false,
    }
}

async fn totals(db: &TestDb) -> (i64, i64) {
    let row = db
        .conn()
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT granted_total, returned_total FROM rate_budgets WHERE key = 'default'",
        ))
        .await
        .expect("totals")
        .expect("the budget row");
    (
        row.try_get("", "granted_total").expect("granted"),
        row.try_get("", "returned_total").expect("returned"),
    )
}

#[tokio::test]
async fn polling_never_takes_the_reserve_which_replies_may_use_whichever_process_asks() {
    let db = TestDb::new().await;
    let other = Database::connect(db.url()).await.expect("second pool");
    // 10 slots, 3 kept for replies; a 100 s window paces polling at 7 per 100 s with a
    // bucket of 1, so reads after the first wait for the pace, whoever asks.
    let first = budget(db.conn(), 10, 100, 30);
    let second = budget(&other, 10, 100, 30);
    assert!(granted(&first, BudgetClass::Discover).await);
    let Take::Spent { wait, .. } = second.try_take(BudgetClass::Refresh).await.expect("take")
    else {
        panic!("the second read within the pace is refused");
    };
    assert!(
        wait > Duration::from_secs(5),
        "paced at 7 per 100 s: {wait:?}"
    );
    for _ in 0..6 {
        assert!(
            granted(&second, BudgetClass::Reply).await,
            "replies are not paced"
        );
    }
    // 7 used: polling's share is gone, whatever its tokens say; the reserve is the replies'.
    let Take::Spent { retry_at, .. } = first.try_take(BudgetClass::Discover).await.expect("take")
    else {
        panic!("polling may not use the reserve");
    };
    let free_in = retry_at - chrono::Utc::now();
    assert!(
        free_in > chrono::TimeDelta::seconds(90),
        "when the first grant leaves: {free_in}"
    );
    for _ in 0..3 {
        assert!(
            granted(&first, BudgetClass::Reply).await,
            "the reserve is for replies"
        );
    }
    assert!(
        !granted(&second, BudgetClass::Reply).await,
        "the whole window is spent"
    );
    assert_eq!(totals(&db).await, (10, 0));
}

#[tokio::test]
async fn polling_is_paced_over_the_window_instead_of_spent_at_once() {
    let db = TestDb::new().await;
    // 60 per 60 s, no reserve: one read per second, a bucket of 2.
    let paced = budget(db.conn(), 60, 60, 0);
    assert!(granted(&paced, BudgetClass::Refresh).await);
    assert!(granted(&paced, BudgetClass::Refresh).await);
    let Take::Spent { wait, .. } = paced.try_take(BudgetClass::Refresh).await.expect("take") else {
        panic!("the bucket holds two reads");
    };
    assert!(
        wait > Duration::from_millis(500) && wait <= Duration::from_secs(1),
        "the next read is a second's pace away, not a window: {wait:?}"
    );
    tokio::time::sleep(wait).await;
    assert!(
        granted(&paced, BudgetClass::Refresh).await,
        "after the pace"
    );
}

#[tokio::test]
async fn a_slot_given_back_is_granted_again_and_counted_as_returned() {
    let db = TestDb::new().await;
    let small = budget(db.conn(), 2, 60, 0);
    let Take::Granted(slot) = small.try_take(BudgetClass::Reply).await.expect("take") else {
        panic!("an empty budget grants");
    };
    assert!(granted(&small, BudgetClass::Reply).await);
    assert!(!granted(&small, BudgetClass::Reply).await, "spent");
    assert!(small.give_back(slot).await.expect("give back"));
    assert!(
        granted(&small, BudgetClass::Reply).await,
        "the slot given back"
    );
    assert_eq!(totals(&db).await, (3, 1));
}

#[tokio::test]
async fn the_providers_word_caps_the_grants_and_a_429_stops_them_until_it_frees() {
    let db = TestDb::new().await;
    let large = budget(db.conn(), 100, 60, 0);
    assert!(granted(&large, BudgetClass::Reply).await, "the row exists");
    large.observe(2, None).await.expect("observe");
    assert!(granted(&large, BudgetClass::Reply).await);
    assert!(granted(&large, BudgetClass::Reply).await);
    assert!(
        !granted(&large, BudgetClass::Reply).await,
        "the provider said two were left"
    );
    large
        .observe(0, Some(Duration::from_secs(1)))
        .await
        .expect("observe a 429");
    let Take::Spent { wait, .. } = large.try_take(BudgetClass::Reply).await.expect("take") else {
        panic!("refused until the provider frees");
    };
    assert!(wait <= Duration::from_secs(1), "{wait:?}");
    tokio::time::sleep(wait).await;
    assert!(granted(&large, BudgetClass::Reply).await, "after the reset");
}

#[tokio::test]
async fn a_429_from_the_provider_defers_the_next_call_without_sending_it() {
    // The provider allows 3 requests per 10 s; our own view would allow 100.
    let sim = simulator(SimConfig {
        rate_limit: 3,
        rate_window_seconds: 10,
        ..SimConfig::on_free_port()
    })
    .await;
    let db = TestDb::new().await;
    let settings = resilience(
        &sim.api_url(),
        &[
            ("RATE_BUDGET_REQUESTS", "100"),
            ("RATE_BUDGET_WINDOW_SECONDS", "10"),
            ("PROVIDER_RETRY_MAX_ATTEMPTS", "1"),
        ],
    );
    let replies = ayrshare(&sim, db.conn(), &settings, Platform::Twitter)
        .for_class(BudgetClass::Reply)
        .rescheduling();
    let mut outcomes = Vec::new();
    for _ in 0..5 {
        outcomes.push(match replies.history(&last_30_days(Some(1))).await {
            Ok(_) => "ok",
            Err(e) if e.is_deferred() => "deferred",
            Err(_) => "failed",
        });
    }
    assert_eq!(outcomes, ["ok", "ok", "ok", "deferred", "deferred"]);
    assert_eq!(
        requests(&sim, "history", Some(429)).await,
        0,
        "the provider's count in the headers stopped us before any 429"
    );
}

#[tokio::test]
async fn a_429_saying_the_providers_window_is_full_stops_the_budget_at_once() {
    let sim = simulator(SimConfig {
        rate_limit: 2,
        rate_window_seconds: 30,
        ..SimConfig::on_free_port()
    })
    .await;
    // Somebody else spends the profile's window at the provider.
    let http = reqwest::Client::new();
    for _ in 0..2 {
        http.get(format!("{}/history?lastDays=1", sim.api_url()))
            .bearer_auth(sim.api_key())
            .send()
            .await
            .expect("simulator reachable");
    }
    let db = TestDb::new().await;
    let settings = resilience(
        &sim.api_url(),
        &[
            ("RATE_BUDGET_REQUESTS", "100"),
            ("RATE_BUDGET_WINDOW_SECONDS", "30"),
            ("PROVIDER_RETRY_MAX_ATTEMPTS", "1"),
        ],
    );
    let replies = ayrshare(&sim, db.conn(), &settings, Platform::Twitter)
        .for_class(BudgetClass::Reply)
        .rescheduling();
    let first = replies
        .history(&last_30_days(Some(1)))
        .await
        .expect_err("429");
    assert_eq!(first.status(), Some(429), "{first}");
    let second = replies
        .history(&last_30_days(Some(1)))
        .await
        .expect_err("held back");
    assert!(second.is_deferred(), "{second}");
    assert_eq!(
        requests(&sim, "history", Some(429)).await,
        1,
        "one 429, then nothing sent"
    );
}

#[tokio::test]
async fn a_request_that_cannot_connect_gives_its_slot_back() {
    let db = TestDb::new().await;
    let closed = format!("http://127.0.0.1:{}/api", shared::testing::free_port());
    let settings = resilience(
        &closed,
        &[
            ("RATE_BUDGET_REQUESTS", "10"),
            ("PROVIDER_RETRY_MAX_ATTEMPTS", "3"),
        ],
    );
    let twitter =
        super::support::ayrshare_at(&closed, "sim-key", db.conn(), &settings, Platform::Twitter)
            .for_class(BudgetClass::Reply);
    let err = twitter
        .history(&last_30_days(Some(1)))
        .await
        .expect_err("nobody listens");
    assert!(err.is_transient(), "{err}");
    assert_eq!(
        totals(&db).await,
        (3, 3),
        "three attempts, every slot given back"
    );
}

/// Environment of a child process of the shared-budget test.
const CHILD_DB: &str = "PROVIDER_BUDGET_CHILD_DATABASE_URL";
const CHILD_API: &str = "PROVIDER_BUDGET_CHILD_API_URL";
const CHILD_CALLS: &str = "PROVIDER_BUDGET_CHILD_CALLS";
const CHILD_RESULT: &str = "budget child result:";

/// One of the processes of the test below (run by it, with its environment; does nothing on
/// its own): makes its calls as fast as the shared budget allows, then prints what happened.
#[tokio::test]
#[ignore = "a child process of three_processes_sharing_a_budget_never_exceed_it_and_finish_their_work"]
async fn budget_child_process() {
    let (Ok(db_url), Ok(api_url), Ok(calls)) = (
        std::env::var(CHILD_DB),
        std::env::var(CHILD_API),
        std::env::var(CHILD_CALLS),
    ) else {
        return;
    };
    let calls: usize = calls.parse().expect("call count");
    let db = Database::connect(db_url).await.expect("database");
    let settings = resilience(
        &api_url,
        &[
            ("RATE_BUDGET_REQUESTS", "30"),
            ("RATE_BUDGET_WINDOW_SECONDS", "10"),
        ],
    );
    let twitter =
        super::support::ayrshare_at(&api_url, "sim-key", &db, &settings, Platform::Twitter)
            .for_class(BudgetClass::Reply);
    let mut ok = 0;
    let mut errors = Vec::new();
    for _ in 0..calls {
        match twitter.history(&last_30_days(Some(1))).await {
            Ok(_) => ok += 1,
            Err(e) => errors.push(e.to_string()),
        }
    }
    println!(
        "{CHILD_RESULT} {}",
        serde_json::json!({"ok": ok, "errors": errors})
    );
}

#[tokio::test]
async fn three_processes_sharing_a_budget_never_exceed_it_and_finish_their_work() {
    const PROCESSES: usize = 3;
    const CALLS_EACH: usize = 30;
    // The simulator enforces the same budget (sliding): any excess would be a 429.
    let sim = simulator(SimConfig {
        rate_limit: 30,
        rate_window_seconds: 10,
        ..SimConfig::on_free_port()
    })
    .await;
    let db = TestDb::new().await;
    let exe = std::env::current_exe().expect("test binary");
    let child_test = concat!(module_path!(), "::budget_child_process")
        .split_once("::")
        .map(|(_, path)| path)
        .expect("module path");

    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            tokio::process::Command::new(&exe)
                .args([child_test, "--exact", "--ignored", "--nocapture"])
                .env(CHILD_DB, db.url())
                .env(CHILD_API, sim.api_url())
                .env(CHILD_CALLS, CALLS_EACH.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("spawn a child process")
        })
        .collect();
    for child in children {
        let output = tokio::time::timeout(Duration::from_secs(50), child.wait_with_output())
            .await
            .expect("the child finished in time")
            .expect("child output");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let result: Value = stdout
            .lines()
            .find_map(|l| l.strip_prefix(CHILD_RESULT))
            .map(|json| serde_json::from_str(json.trim()).expect("result JSON"))
            .unwrap_or_else(|| panic!("no result line in:\n{stdout}"));
        assert_eq!(result["ok"], CALLS_EACH, "{result}");
    }

    let stats = control(&sim, "stats?windowSeconds=10").await;
    assert_eq!(requests(&sim, "history", Some(429)).await, 0, "{stats}");
    assert_eq!(
        requests(&sim, "history", Some(200)).await,
        (PROCESSES * CALLS_EACH) as u64
    );
    let busiest = stats["maxRequestsInWindow"]
        .as_u64()
        .expect("max in window");
    assert!(busiest <= 30, "{busiest} requests in one 10 s window");
}
