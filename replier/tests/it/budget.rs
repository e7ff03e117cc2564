//! The provider budget end to end, with the real binaries: `ayrshare-sim` enforcing
//! 300 requests per 5 minutes per profile, the api (scheduler, planner, relay), two ingestors
//! and a replier, polling every 5 s. Reads never stop for long, replies overtake polling, and
//! every slot the service consumes is a request the provider saw; with two brands (two
//! profiles) saturated at once, each within its own limit, each brand's replies as prompt.

use crate::end_to_end::Stack;
use crate::support::{BRANDS_KEY, add_brand, ledger_replies, sim_get, sim_profile_get};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, Statement,
};
use serde_json::{Value, json};
use shared::brands::DEFAULT_BRAND;
use shared::db::entities::{mentions, replies, tasks};
use shared::domain::{BrandId, MentionId, MentionType, Platform, TaskStatus};
use shared::testing::Process;
use std::time::{Duration, Instant};

/// The provider's limit, on both sides (and the key that seals the brands' Profile-Keys).
/// Each process's pool is kept small: two of these tests run beside each other in CI, with
/// five processes each, under PostgreSQL's 100 connections.
const BUDGET: [(&str, &str); 5] = [
    ("BRANDS_KEY", BRANDS_KEY),
    ("DATABASE_MAX_CONNECTIONS", "5"),
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

async fn stored_comments(stack: &Stack, brand: BrandId) -> Vec<mentions::Model> {
    mentions::Entity::find()
        .filter(mentions::Column::MentionType.eq(MentionType::Comment))
        .filter(mentions::Column::BrandId.eq(brand))
        // Stable: a round takes the next one, never one replied to in an earlier round.
        .order_by_asc(mentions::Column::CreatedAt)
        .order_by_asc(mentions::Column::Id)
        .all(stack.db.conn())
        .await
        .expect("mentions")
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

/// When the reply to `mention` and its tasks were made, published, started and finished (for a
/// reply that took long), and how long the api took to answer its request.
async fn reply_timeline(stack: &Stack, mention: MentionId, answered: Duration) -> String {
    let reply = replies::Entity::find()
        .filter(replies::Column::MentionId.eq(mention))
        .one(stack.db.conn())
        .await
        .expect("reply")
        .expect("a reply");
    let tasks = tasks::Entity::find()
        .filter(tasks::Column::SubjectId.eq(reply.id.0))
        .all(stack.db.conn())
        .await
        .expect("tasks");
    let tasks: Vec<String> = tasks
        .iter()
        .map(|t| {
            format!(
                "task {:?} attempts={} created={} available={} published={:?} started={:?} \
                 finished={:?} error={:?}",
                t.status,
                t.attempts,
                t.created_at,
                t.available_at,
                t.published_at,
                t.started_at,
                t.finished_at,
                t.last_error
            )
        })
        .collect();
    format!(
        "api answered in {answered:?}; reply created {} updated {} attempts {}: {tasks:?}",
        reply.created_at, reply.updated_at, reply.attempts
    )
}

fn sleep_until(at: Instant) -> tokio::time::Sleep {
    tokio::time::sleep(at.saturating_duration_since(Instant::now()))
}

/// The second brand's Profile-Key: its world, budget and breakers in the simulator.
const BRAND_B_PROFILE: &str = "brand-b-profile";

/// Slots granted and not given back, per budget key.
async fn slots_consumed_by(stack: &Stack, key: &str) -> i64 {
    stack
        .db
        .conn()
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT coalesce(sum(granted_total - returned_total), 0)::bigint AS n \
             FROM rate_budgets WHERE key = $1",
            [key.into()],
        ))
        .await
        .expect("budget totals")
        .and_then(|row| row.try_get::<i64>("", "n").ok())
        .unwrap_or(0)
}

/// One brand of the saturated test: its id, simulator profile and what was measured.
struct Saturated {
    brand: BrandId,
    profile: &'static str,
    latencies: Vec<Duration>,
    /// Slots consumed by the end of the first minute.
    after_a_minute: i64,
    /// What a reply slower than 5 s went through.
    slow: Vec<String>,
}

#[tokio::test]
async fn two_brands_under_saturated_polling_each_replies_within_5_s_no_profile_exceeds_its_limit_and_no_slot_is_wasted()
 {
    // Two brands, each with 200 posts whose `nextUpdate` is 10 s away in its own world of the
    // simulator: far more reads are due than either budget pays.
    let stack = Stack::start(&world("25"), &BUDGET).await;
    let brand_b = add_brand(&stack.db, "Brand B", BRAND_B_PROFILE).await;
    let mut brands = [
        Saturated {
            brand: DEFAULT_BRAND,
            profile: "",
            latencies: Vec::new(),
            after_a_minute: 0,
            slow: Vec::new(),
        },
        Saturated {
            brand: brand_b,
            profile: BRAND_B_PROFILE,
            latencies: Vec::new(),
            after_a_minute: 0,
            slow: Vec::new(),
        },
    ];
    let _ingestors = [
        Process::spawn("ingestor", &[], &stack.env),
        Process::spawn("ingestor", &[], &stack.env),
    ];
    let _replier = stack.replier();
    let started = Instant::now();
    for round in 1..=4u32 {
        sleep_until(started + Duration::from_secs(60) * round).await;
        // Both brands ask for a reply at the same moment.
        let requests = futures_util::future::join_all(brands.iter_mut().map(|b| {
            let stack = &stack;
            async move {
                let comments = stored_comments(stack, b.brand).await;
                let mention = comments.get(round as usize).unwrap_or_else(|| {
                    panic!(
                        "brand {:?}: only {} comments stored",
                        b.profile,
                        comments.len()
                    )
                });
                let content = format!("We are on it ({round})");
                let requested = Instant::now();
                let (status, body) = stack.post_reply(mention, &content).await;
                let answered = requested.elapsed();
                assert_eq!(status, 202, "{body}");
                loop {
                    let ledger =
                        sim_profile_get(&stack.http, &stack.sim_base, "ledger", b.profile).await;
                    if ledger_replies(&ledger, &mention.platform_ref, &content) == 1 {
                        let took = requested.elapsed();
                        b.latencies.push(took);
                        if took > Duration::from_secs(5) {
                            b.slow
                                .push(reply_timeline(stack, mention.id, answered).await);
                        }
                        break;
                    }
                    assert!(
                        requested.elapsed() < Duration::from_secs(60),
                        "brand {:?}: reply {round} not at the provider after a minute",
                        b.profile
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }));
        requests.await;
        let mut line = format!("{:>5.1} s: slots consumed", started.elapsed().as_secs_f64());
        for b in &mut brands {
            let key = shared::brands::provider_key(b.brand, Platform::Twitter).budget_key();
            let consumed = slots_consumed_by(&stack, &key).await;
            if round == 1 {
                b.after_a_minute = consumed;
            }
            line.push_str(&format!(" {:?} {consumed}", b.profile));
        }
        println!("{line}");
    }
    sleep_until(started + Duration::from_secs(300)).await;
    let mut consumed = Vec::new();
    for b in &brands {
        let key = shared::brands::provider_key(b.brand, Platform::Twitter).budget_key();
        consumed.push(slots_consumed_by(&stack, &key).await);
    }
    // Requests granted before the counts above have arrived within a second.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let profiles = sim_get(&stack.http, &stack.sim_base, "profiles").await;
    let firsts = stack
        .db
        .conn()
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT brand_id::text AS brand, kind::text AS kind, count(*) AS n, \
             min(started_at)::text AS first_started, \
             count(*) FILTER (WHERE status IN ('pending', 'published', 'running'))::bigint AS active \
             FROM tasks GROUP BY 1, 2 ORDER BY 1, 2",
        ))
        .await
        .expect("tasks per brand");
    for row in &firsts {
        println!(
            "tasks of brand {} {}: {} (active {}), first started {}",
            row.try_get::<String>("", "brand").unwrap_or_default(),
            row.try_get::<String>("", "kind").unwrap_or_default(),
            row.try_get::<i64>("", "n").unwrap_or_default(),
            row.try_get::<i64>("", "active").unwrap_or_default(),
            row.try_get::<Option<String>>("", "first_started")
                .ok()
                .flatten()
                .unwrap_or_default()
        );
    }
    println!(
        "test started at {}",
        chrono::Utc::now() - chrono::Duration::from_std(started.elapsed()).expect("elapsed")
    );
    for (b, consumed) in brands.iter().zip(consumed) {
        let stats = sim_profile_get(&stack.http, &stack.sim_base, "stats", b.profile).await;
        let reached = stats["total"].as_u64().expect("total");
        let load = profiles["profiles"]
            .as_array()
            .expect("profiles")
            .iter()
            .find(|p| p["profile"] == b.profile)
            .unwrap_or_else(|| panic!("profile {:?} in use: {profiles}", b.profile));
        let most = load["maxRequestsInWindow"]
            .as_u64()
            .expect("maxRequestsInWindow");
        let name = b.profile;
        println!(
            "brand {name:?}: replies {:?}, {consumed} slots consumed, {reached} requests seen, \
             {most} at most in a window, longest gap {} s",
            b.latencies, stats["maxGapSeconds"]
        );
        assert!(
            b.latencies.iter().all(|l| *l <= Duration::from_secs(5)),
            "brand {name:?}: reply request → provider: {:?}\n{:#?}",
            b.latencies,
            b.slow
        );
        assert!(
            most <= 300,
            "brand {name:?}: {most} requests accepted in one 5-minute window\n{profiles}"
        );
        // Saturation, not idleness: from the second minute on, each brand's polling takes its
        // whole share (0.8 × 300 / 300 s × 240 s = 192, less the scheduler's and planner's
        // pace rounding), and over the whole 5 minutes nearly all of its 240 (the brand added
        // second starts within the scheduler's next look, 5 s; before, it waited for the next
        // history round, 55 s, and took 206).
        let steady = consumed - b.after_a_minute;
        assert!(
            steady >= 170,
            "brand {name:?}: polling saturates its share: {steady} slots from 60 s to 300 s"
        );
        assert!(
            consumed >= 230,
            "brand {name:?}: {consumed} slots of polling's 240 in 5 minutes"
        );
        assert!(
            most >= 230,
            "brand {name:?}: the provider accepted at most {most} requests in a window\n{profiles}"
        );
        assert!(
            reached as f64 >= 0.97 * consumed as f64,
            "brand {name:?}: the provider saw {reached} requests of {consumed} slots consumed\n{stats}"
        );
        assert_eq!(status_count(&stats, 429), 0, "brand {name:?}: {stats}");
        let gap = stats["maxGapSeconds"].as_f64().expect("gap");
        assert!(
            gap <= 10.0,
            "brand {name:?}: {gap} s without a provider request"
        );
    }
}

/// Unfinished ingest tasks of `brand`.
async fn ingest_backlog(stack: &Stack, brand: BrandId) -> u64 {
    use sea_orm::PaginatorTrait;
    tasks::Entity::find()
        .filter(tasks::Column::BrandId.eq(brand))
        .filter(tasks::Column::Kind.eq("ingest"))
        .filter(tasks::Column::Status.is_in([
            TaskStatus::Pending,
            TaskStatus::Published,
            TaskStatus::Running,
        ]))
        .count(stack.db.conn())
        .await
        .expect("tasks")
}

#[tokio::test]
async fn a_brand_added_beside_another_brands_backlog_starts_reading_within_seconds_at_its_own_pace()
{
    // One ingestor, 4 jobs at once per queue: the default brand's 200 first reads (8
    // platforms × 25 posts) are far more than its budget pays, and more than the consumers.
    let stack = Stack::start(&world("25"), &BUDGET).await;
    let _ingestor = Process::spawn("ingestor", &[], &stack.env);
    let default_key = shared::brands::provider_key(DEFAULT_BRAND, Platform::Twitter).budget_key();
    let deadline = Instant::now() + Duration::from_secs(60);
    while slots_consumed_by(&stack, &default_key).await < 20
        || ingest_backlog(&stack, DEFAULT_BRAND).await < 100
    {
        assert!(
            Instant::now() < deadline,
            "the default brand's backlog never formed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Brand B joins: its own budget is untouched, so nothing but the workers stands between
    // it and its polling share (a burst of 8, then 0.8 per second).
    let added = Instant::now();
    let brand_b = add_brand(&stack.db, "Brand B", BRAND_B_PROFILE).await;
    let key = shared::brands::provider_key(brand_b, Platform::Twitter).budget_key();
    sleep_until(added + Duration::from_secs(40)).await;
    let consumed = slots_consumed_by(&stack, &key).await;
    let backlog = ingest_backlog(&stack, DEFAULT_BRAND).await;
    let tasks_of_b = stack
        .db
        .conn()
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT status::text || ' ' || coalesce(payload->>'step', '?') || ' ' || count(*) \
             || ' due in ' || round(extract(epoch FROM min(available_at) - now())) || ' to ' \
             || round(extract(epoch FROM max(available_at) - now())) || ' s, ' \
             || sum(attempts) || ' attempts, ' || coalesce(max(last_error), '') AS t \
             FROM tasks WHERE brand_id = $1 GROUP BY status, payload->>'step'",
            [brand_b.0.into()],
        ))
        .await
        .expect("tasks of brand B")
        .iter()
        .map(|row| row.try_get::<String>("", "t").unwrap_or_default())
        .collect::<Vec<_>>();
    let first = stack
        .db
        .conn()
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT extract(epoch FROM min(g.granted_at) - b.created_at)::float8 AS s \
             FROM rate_budget_grants g, brands b WHERE g.key = $1 AND b.id = $2 \
             GROUP BY b.created_at",
            [key.clone().into(), brand_b.0.into()],
        ))
        .await
        .expect("first grant")
        .and_then(|row| row.try_get::<f64>("", "s").ok());
    // Its first round waits for the scheduler's next look (every 5 s, however long the history
    // interval: 55 s for this budget), not for the other brand's reads.
    assert!(
        first.is_some_and(|s| s <= 15.0),
        "brand B's first request {first:?} s after it joined; its tasks: {tasks_of_b:?}"
    );
    // Then its share: a burst of 8 and 0.8 per second, with time to spare for the history read
    // before the comments reads and for the turns of what its burst could not pay.
    assert!(
        consumed >= 24,
        "brand B took {consumed} slots in the 40 s after it joined, beside the default \
         brand's {backlog} unfinished reads; its tasks: {tasks_of_b:?}"
    );
    let stats = sim_profile_get(&stack.http, &stack.sim_base, "stats", BRAND_B_PROFILE).await;
    assert_eq!(status_count(&stats, 429), 0, "{stats}");
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
    while stored_comments(&stack, DEFAULT_BRAND).await.len() < seeded {
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
        let stored = stored_comments(&stack, DEFAULT_BRAND).await;
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
