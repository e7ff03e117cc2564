//! The provider budget end to end, with the real binaries: `ayrshare-sim` enforcing
//! 300 requests per 5 minutes, the api (scheduler, planner, relay), two ingestors and a
//! replier, polling every 5 s. Reads never stop for long, replies overtake polling, and every
//! slot the service consumes is a request the provider saw.

use crate::end_to_end::Stack;
use crate::support::{ledger_replies, sim_get};
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, Statement};
use serde_json::{Value, json};
use shared::db::entities::mentions;
use shared::domain::MentionType;
use shared::testing::Process;
use std::time::{Duration, Instant};

/// The provider's limit, on both sides.
const BUDGET: [(&str, &str); 3] = [
    ("POLL_INTERVAL_SECONDS", "5"),
    ("RATE_BUDGET_REQUESTS", "300"),
    ("RATE_BUDGET_WINDOW_SECONDS", "300"),
];

/// A world of `posts` posts per platform of the last 5 days with two comments each,
/// `nextUpdate` 10 s ahead, nothing arriving on its own, behind the provider's 300 / 5 min.
fn world(posts: &str) -> [&str; 22] {
    [
        "--post-days",
        "5",
        "--empty-posts-per-platform",
        "0",
        "--rate-limit",
        "300",
        "--rate-window-seconds",
        "300",
        "--refresh-seconds",
        "10",
        "--posts-per-platform",
        posts,
        "--comments-per-post",
        "2",
        "--replies-per-comment",
        "0",
        "--comments-per-minute",
        "0",
        "--messages-per-minute",
        "0",
        "--conversations-per-platform",
        "1",
    ]
}

async fn stored_comments(stack: &Stack) -> Vec<mentions::Model> {
    mentions::Entity::find()
        .filter(mentions::Column::MentionType.eq(MentionType::Comment))
        .all(stack.db.conn())
        .await
        .expect("mentions")
}

/// Slots granted and not given back, across every process.
async fn slots_consumed(stack: &Stack) -> i64 {
    stack
        .db
        .conn()
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT coalesce(sum(granted_total - returned_total), 0)::bigint AS n FROM rate_budgets",
        ))
        .await
        .expect("budget totals")
        .and_then(|row| row.try_get::<i64>("", "n").ok())
        .unwrap_or(0)
}

fn status_count(stats: &Value, status: u64) -> u64 {
    stats["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .filter(|r| r["status"] == status)
        .map(|r| r["count"].as_u64().unwrap_or(0))
        .sum()
}

fn sleep_until(at: Instant) -> tokio::time::Sleep {
    tokio::time::sleep(at.saturating_duration_since(Instant::now()))
}

#[tokio::test]
async fn under_saturated_polling_replies_reach_the_provider_within_5_s_and_no_slot_is_wasted() {
    // 200 posts whose `nextUpdate` is 10 s away: far more reads are due than the budget pays.
    let stack = Stack::start(&world("25"), &BUDGET).await;
    let _ingestors = [
        Process::spawn("ingestor", &[], &stack.env),
        Process::spawn("ingestor", &[], &stack.env),
    ];
    let _replier = stack.replier();
    let started = Instant::now();
    let mut latencies = Vec::new();
    for round in 1..=4u32 {
        sleep_until(started + Duration::from_secs(60) * round).await;
        let comments = stored_comments(&stack).await;
        let mention = comments
            .get(round as usize)
            .unwrap_or_else(|| panic!("only {} comments stored", comments.len()));
        let content = format!("We are on it ({round})");
        let requested = Instant::now();
        let (status, body) = stack.post_reply(mention, &content).await;
        assert_eq!(status, 202, "{body}");
        loop {
            let ledger = stack.ledger().await;
            if ledger_replies(&ledger, &mention.platform_ref, &content) == 1 {
                latencies.push(requested.elapsed());
                break;
            }
            assert!(
                requested.elapsed() < Duration::from_secs(60),
                "reply {round} not at the provider after a minute"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    sleep_until(started + Duration::from_secs(300)).await;
    let consumed = slots_consumed(&stack).await;
    // Requests granted before the count above have arrived within a second.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stats = sim_get(&stack.http, &stack.sim_base, "stats").await;
    let reached = stats["total"].as_u64().expect("total");

    assert!(
        latencies.iter().all(|l| *l <= Duration::from_secs(5)),
        "reply request → provider: {latencies:?}"
    );
    assert!(
        consumed >= 240,
        "polling saturates its share: {consumed} slots in 5 min"
    );
    assert!(
        reached as f64 >= 0.97 * consumed as f64,
        "the provider saw {reached} requests of {consumed} slots consumed\n{stats}"
    );
    assert_eq!(status_count(&stats, 429), 0, "{stats}");
    let gap = stats["maxGapSeconds"].as_f64().expect("gap");
    assert!(gap <= 10.0, "{gap} s without a provider request");
}

#[tokio::test]
async fn polling_every_5_s_never_pauses_for_long_and_a_new_comment_is_stored_within_a_minute() {
    // 16 posts: the reads due (every 10 s each, plus history) exceed the budget's pace.
    let stack = Stack::start(&world("2"), &BUDGET).await;
    let _ingestor = Process::spawn("ingestor", &[], &stack.env);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(60);
    let world = sim_get(&stack.http, &stack.sim_base, "comments").await;
    let seeded = world["comments"].as_array().expect("comments").len();
    while stored_comments(&stack).await.len() < seeded {
        assert!(
            Instant::now() < deadline,
            "the seeded comments were not read"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let posts: Vec<(String, String)> = world["comments"]
        .as_array()
        .expect("comments")
        .iter()
        .map(|c| {
            (
                c["platform"].as_str().expect("platform").to_owned(),
                c["postId"].as_str().expect("post").to_owned(),
            )
        })
        .collect();
    // One new comment every 15 s for 3 minutes, each on another post.
    let mut posted = Vec::new();
    for n in 0..12 {
        sleep_until(started + Duration::from_secs(60 + 15 * n)).await;
        let (platform, post) = &posts[(n as usize * 5) % posts.len()];
        let content = format!("Still waiting for my parcel ({n})");
        let response = stack
            .http
            .post(format!("{}/_sim/comments", stack.sim_base))
            .json(&json!({"platform": platform, "postId": post, "content": content}))
            .send()
            .await
            .expect("simulator reachable");
        assert!(response.status().is_success());
        posted.push((content, chrono::Utc::now()));
    }
    let last = Instant::now() + Duration::from_secs(60);
    let stored = loop {
        let stored = stored_comments(&stack).await;
        if posted
            .iter()
            .all(|(c, _)| stored.iter().any(|m| &m.content == c))
            || Instant::now() > last
        {
            break stored;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let waits: Vec<Option<i64>> = posted
        .iter()
        .map(|(content, at)| {
            stored
                .iter()
                .find(|m| &m.content == content)
                .map(|m| (m.created_at.with_timezone(&chrono::Utc) - *at).num_seconds())
        })
        .collect();
    assert!(
        waits.iter().all(|w| w.is_some_and(|s| s <= 60)),
        "seconds from posting to the inbox (None: never): {waits:?}"
    );
    let stats = sim_get(&stack.http, &stack.sim_base, "stats").await;
    let gap = stats["maxGapSeconds"].as_f64().expect("gap");
    assert!(gap <= 10.0, "{gap} s without a provider request\n{stats}");
    assert_eq!(status_count(&stats, 429), 0, "{stats}");
}
