//! Benchmark: how fresh the inbox stays when the provider's request budget, not the CPU, is
//! the limit: the poll planner (`POLL_POLICY=adaptive`) against the earlier first-in-first-out
//! order (`POLL_POLICY=fifo`) and the analytic uniform round-robin at the same budget.
//!
//! Two stacks run side by side, each with its own database, vhost and real binaries
//! (`ayrshare-sim`, `api`, one `ingestor`, one `replier`; from `target/release` when newer than
//! `target/debug`). Each simulator allows 30 requests per 30 s and reports `nextUpdate` 60 s
//! ahead, over a world of 8 platforms × 25 posts with one seeded comment each and no direct
//! messages; each service has the same budget with 20% reserved for replies, reads history
//! every 30 s and averages comment rates over 120 s.
//!
//! Comments arrive from the start, the same seeded sequence to both simulators at the same
//! moments (Poisson, 12 a minute, 92% on 6 hot posts, the rest uniform over the others), so
//! what is measured is the steady state a running service is in, not its cold start.
//!
//! 1. Warm-up, `FRESHNESS_WARMUP_SECONDS` (default 280: reading all 200 posts once takes over
//!    250 s at this budget): the seeded comments are read, the arriving ones teach the planner
//!    which posts are busy; none of them is measured.
//! 2. `FRESHNESS_MEASURE_SECONDS` (default 200): the arriving comments are timed, and every
//!    10 s a reply to a stored mention is requested through each `api`.
//! 3. Drain until everything arrived, at most `FRESHNESS_DRAIN_SECONDS` (default 60); then per
//!    stack: time-to-inbox (`mentions.created_at` − the moment the comment was posted; a
//!    comment never stored counts as measure + drain), reply latency (`replies.created_at` →
//!    the ledger's `at`), budget utilisation (requests the simulator accepted during 2. over
//!    the slots the service consumed then: granted and not given back), the share of the
//!    window used (accepted over 30 per 30 s × its length; the reserve keeps 20% for
//!    replies) and the 429s it answered; to explain them, the comments never stored that
//!    were on hot posts, the mean comments reads per hot and per other post (uniform
//!    round-robin: measure × B / N) and the accepted requests by endpoint.
//!
//! Uniform round-robin at the same budget: polling reads B = 30 × (1 − 0.2) / 30 per second,
//! each of N posts read every N/B s, a comment waits uniformly in [0, N/B]: p50 N/2B, p95
//! 0.95·N/B, max N/B (history and message reads left out, which flatters it).
//!
//! `cargo build --workspace --bins && cargo bench -p ingestor --bench freshness`. At most 10
//! minutes of wall time; only 127.0.0.1. Percentiles are nearest-rank.

#[path = "common/processes.rs"]
mod processes;

use chrono::{DateTime, FixedOffset, Utc};
use processes::{binary, get_json, spawn};
use rand::rngs::StdRng;
use rand::seq::index;
use rand::{Rng, SeedableRng};
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement};
use serde_json::{Value, json};
use shared::testing::{Process, TestBroker, TestDb, admin_token, free_port, wait_http_ok};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

/// The whole run, start-up and report included.
const TOTAL: Duration = Duration::from_secs(600);
/// Kept out of the phases' share of [`TOTAL`] for start-up and the report.
const SETUP_ALLOWANCE: Duration = Duration::from_secs(60);
const BUDGET_REQUESTS: u32 = 30;
const BUDGET_WINDOW_SECONDS: u32 = 30;
const RESERVE_PERCENT: u32 = 20;
const POSTS_PER_PLATFORM: u32 = 25;
const COMMENTS_PER_MINUTE: f64 = 12.0;
const HOT_POSTS: usize = 6;
const HOT_SHARE: f64 = 0.92;
const REPLY_EVERY: Duration = Duration::from_secs(10);
const SEED: u64 = 0x6672_6573_6821;
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
const START_TIMEOUT: Duration = Duration::from_secs(60);
const ADMIN_EMAIL: &str = "freshness-bench@example.com";
const ADMIN_PASSWORD: &str = "freshness-bench-password";
/// Markers that make each posted comment and requested reply findable by content.
const PROBE: &str = "probe#";
/// The marker of the comments posted during the warm-up (not measured).
const WARM: &str = "warm#";
const REPLY: &str = "reply#";

#[tokio::main]
async fn main() {
    let phases = Phases::from_env();
    if tokio::time::timeout(TOTAL, run(phases)).await.is_err() {
        // The run's future, with every process, database and vhost, is dropped by now.
        eprintln!("freshness: not finished within {TOTAL:?}, stopped");
        std::process::exit(1);
    }
}

struct Phases {
    warmup: Duration,
    measure: Duration,
    drain: Duration,
}

impl Phases {
    fn from_env() -> Phases {
        let seconds = |name: &str, default: u64| {
            Duration::from_secs(
                std::env::var(name)
                    .ok()
                    .map(|v| {
                        v.parse()
                            .unwrap_or_else(|_| panic!("{name} must be seconds"))
                    })
                    .unwrap_or(default),
            )
        };
        let phases = Phases {
            warmup: seconds("FRESHNESS_WARMUP_SECONDS", 280),
            measure: seconds("FRESHNESS_MEASURE_SECONDS", 200),
            drain: seconds("FRESHNESS_DRAIN_SECONDS", 60),
        };
        assert!(
            phases.warmup + phases.measure + phases.drain + SETUP_ALLOWANCE <= TOTAL,
            "warm-up + measure + drain must leave {SETUP_ALLOWANCE:?} of {TOTAL:?}"
        );
        assert!(
            !phases.measure.is_zero(),
            "FRESHNESS_MEASURE_SECONDS must be positive"
        );
        phases
    }
}

async fn run(phases: Phases) {
    let http = reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .build()
        .expect("http client");
    for name in BINARIES {
        println!("{name}: {}", binary(name).display());
    }
    let (mut a, mut b) = tokio::join!(Stack::start("adaptive", &http), Stack::start("fifo", &http));
    let posts = a.posts(&http).await;
    assert_eq!(posts, b.posts(&http).await, "both worlds are the same");
    let seeded = i64::try_from(posts.len()).unwrap_or(i64::MAX);

    let (events, hot) = schedule(posts.len(), &phases);
    let on_hot: HashSet<usize> = events
        .iter()
        .filter_map(|e| match e.action {
            Action::Comment {
                n,
                hot: true,
                measured: true,
                ..
            } => Some(n),
            _ => None,
        })
        .collect();
    let (warmup, measuring): (Vec<&Event>, Vec<&Event>) =
        events.iter().partition(|e| e.at < phases.warmup);
    let t0 = tokio::time::Instant::now();
    let mut late = play(&warmup, t0, &http, &posts, &mut a, &mut b).await;
    tokio::time::sleep_until(t0 + phases.warmup).await;
    a.assert_running();
    b.assert_running();
    let seeded_stored = format!(
        "SELECT count(*) FROM mentions WHERE content NOT LIKE '%{PROBE}%' \
         AND content NOT LIKE '%{WARM}%' AND content NOT LIKE '%{REPLY}%'"
    );
    let stored = tokio::join!(a.count(&seeded_stored), b.count(&seeded_stored));
    println!(
        "warm-up {:.0} s ({} comments arriving as they will while measuring): seeded comments \
         stored: adaptive {}/{seeded}, fifo {}/{seeded}",
        phases.warmup.as_secs_f64(),
        warmup.len(),
        stored.0,
        stored.1
    );

    let before = tokio::join!(a.snapshot(&http), b.snapshot(&http));
    let from = Utc::now();
    let started = t0 + phases.warmup;
    late = late.max(play(&measuring, t0, &http, &posts, &mut a, &mut b).await);
    tokio::time::sleep_until(started + phases.measure).await;
    let after = tokio::join!(a.snapshot(&http), b.snapshot(&http));
    let measured = Measured {
        length: started.elapsed(),
        from,
        to: Utc::now(),
        censored: (phases.measure + phases.drain).as_secs_f64(),
        on_hot,
        hot_posts: hot.iter().map(|&p| posts[p].id.clone()).collect(),
    };
    println!(
        "measured {:.0} s: {} comments posted, {} replies requested per stack (events at most {:.2} s late)",
        measured.length.as_secs_f64(),
        a.posted.len(),
        a.replies_requested,
        late.as_secs_f64()
    );

    let drain_started = Instant::now();
    loop {
        let done = tokio::join!(a.all_arrived(&http), b.all_arrived(&http));
        if (done.0 && done.1) || drain_started.elapsed() >= phases.drain {
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    println!("drained {:.0} s", drain_started.elapsed().as_secs_f64());
    a.assert_running();
    b.assert_running();

    let fa = a.figures(&http, &before.0, &after.0, &measured).await;
    let fb = b.figures(&http, &before.1, &after.1, &measured).await;
    report(posts.len(), phases.measure, &fa, &fb);
}

/// Plays `events` (their times are from `t0`) on both stacks at the same moments;
/// returns how late the latest one was.
async fn play(
    events: &[&Event],
    t0: tokio::time::Instant,
    http: &reqwest::Client,
    posts: &[Post],
    a: &mut Stack,
    b: &mut Stack,
) -> Duration {
    let mut late = Duration::ZERO;
    for event in events {
        let at = t0 + event.at;
        tokio::time::sleep_until(at).await;
        late = late.max(at.elapsed());
        match event.action {
            Action::Comment {
                n, post, measured, ..
            } => {
                let marker = if measured { PROBE } else { WARM };
                let content = format!("Is this still available? {marker}{n:04}.");
                tokio::join!(
                    a.post_comment(http, n, &posts[post], &content, measured),
                    b.post_comment(http, n, &posts[post], &content, measured)
                );
            }
            Action::Reply { n } => {
                let content = format!("Thanks, we are looking into it. {REPLY}{n:04}.");
                tokio::join!(
                    a.request_reply(http, n, &content),
                    b.request_reply(http, n, &content)
                );
            }
        }
    }
    late
}

/// One post of the world.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Post {
    platform: String,
    id: String,
}

enum Action {
    /// A customer comment; `measured` when posted after the warm-up.
    Comment {
        n: usize,
        post: usize,
        hot: bool,
        measured: bool,
    },
    Reply {
        n: usize,
    },
}

struct Event {
    at: Duration,
    action: Action,
}

/// What a stack had counted at one moment.
struct Snapshot {
    /// `GET /_sim/stats`.
    stats: Value,
    /// Slots granted and not given back, over every profile.
    consumed: i64,
}

/// What every stack's figures are taken over.
struct Measured {
    length: Duration,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    /// The time-to-inbox counted for a comment never stored.
    censored: f64,
    /// The numbers of the comments posted on a hot post.
    on_hot: HashSet<usize>,
    /// Ayrshare ids of the hot posts.
    hot_posts: HashSet<String>,
}

/// The run's events from the start of the warm-up, the same for every stack: Poisson comment
/// arrivals (a share [`HOT_SHARE`] on [`HOT_POSTS`] posts, the rest uniform over the others)
/// from the start, so the measurement sees the steady state, not the cold start, and a reply
/// request every [`REPLY_EVERY`] of the measurement, half a period in; and the hot posts.
fn schedule(posts: usize, phases: &Phases) -> (Vec<Event>, Vec<usize>) {
    assert!(
        posts > HOT_POSTS,
        "the world has more than {HOT_POSTS} posts"
    );
    let mut rng = StdRng::seed_from_u64(SEED);
    let hot = index::sample(&mut rng, posts, HOT_POSTS).into_vec();
    let cold: Vec<usize> = (0..posts).filter(|p| !hot.contains(p)).collect();
    let mut events = Vec::new();
    let mean_gap = 60.0 / COMMENTS_PER_MINUTE;
    let end = phases.warmup + phases.measure;
    let mut at = 0.0;
    for n in 0.. {
        at += -(1.0 - rng.random::<f64>()).ln() * mean_gap;
        if at >= end.as_secs_f64() {
            break;
        }
        let on_hot = rng.random_bool(HOT_SHARE);
        let post = if on_hot {
            hot[rng.random_range(0..hot.len())]
        } else {
            cold[rng.random_range(0..cold.len())]
        };
        let at = Duration::from_secs_f64(at);
        events.push(Event {
            at,
            action: Action::Comment {
                n,
                post,
                hot: on_hot,
                measured: at >= phases.warmup,
            },
        });
    }
    let mut at = phases.warmup + REPLY_EVERY / 2;
    for n in 0.. {
        if at >= end {
            break;
        }
        events.push(Event {
            at,
            action: Action::Reply { n },
        });
        at += REPLY_EVERY;
    }
    events.sort_by_key(|e| e.at);
    (events, hot)
}

/// The processes of one policy and what was done to them. Fields drop in order: the processes
/// are killed before the database and the vhost go.
struct Stack {
    policy: &'static str,
    api: Process,
    ingestor: Process,
    replier: Process,
    sim: Process,
    sim_base: String,
    api_base: String,
    token: String,
    /// When each comment `n` was posted (only those the simulator took).
    posted: HashMap<usize, DateTime<Utc>>,
    replies_requested: usize,
    /// Why a comment or reply request failed, one line each.
    errors: Vec<String>,
    db: TestDb,
    _broker: TestBroker,
}

impl Stack {
    async fn start(policy: &'static str, http: &reqwest::Client) -> Stack {
        let (db, broker) = tokio::join!(TestDb::new(), TestBroker::new());
        let sim_addr = format!("127.0.0.1:{}", free_port());
        let sim_base = format!("http://{sim_addr}");
        let sim = spawn("ayrshare-sim", &sim_args(&sim_addr), &HashMap::new());

        let budget = |v: u32| v.to_string();
        let env: HashMap<String, String> = [
            ("DATABASE_URL", db.url().to_owned()),
            ("AMQP_URL", broker.url().to_owned()),
            ("SOCIAL_MEDIA_API_URL", format!("{sim_base}/api")),
            ("POLL_POLICY", policy.to_owned()),
            ("RATE_BUDGET_REQUESTS", budget(BUDGET_REQUESTS)),
            ("RATE_BUDGET_WINDOW_SECONDS", budget(BUDGET_WINDOW_SECONDS)),
            ("BUDGET_RESERVE_PERCENT", budget(RESERVE_PERCENT)),
            ("POLL_INTERVAL_SECONDS", "30".to_owned()),
            ("POLL_RATE_HORIZON_SECONDS", "120".to_owned()),
            ("SOCIAL_MEDIA_API_HISTORY_LAST_DAYS", "30".to_owned()),
            ("API_RATE_LIMIT_PER_SECOND", "100000".to_owned()),
            ("API_RATE_LIMIT_BURST", "100000".to_owned()),
            // Six processes share PostgreSQL's 100 connections with the tests of the machine.
            ("DATABASE_MAX_CONNECTIONS", "5".to_owned()),
            ("SHUTDOWN_GRACE_SECONDS", "2".to_owned()),
            ("RUST_LOG", "warn".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let api_addr = format!("127.0.0.1:{}", free_port());
        let api_base = format!("http://{api_addr}");
        let mut api_env = env.clone();
        api_env.insert("API_ADDR".into(), api_addr);
        let api = spawn("api", &[], &api_env);
        wait_http_ok(http, &format!("{sim_base}/_sim/stats"), START_TIMEOUT).await;
        wait_http_ok(http, &format!("{api_base}/readyz"), START_TIMEOUT).await;
        let api_bin = binary("api");
        let token = admin_token(
            http,
            &api_base,
            api_bin.to_str().expect("UTF-8 path"),
            &env,
            (ADMIN_EMAIL, ADMIN_PASSWORD),
        )
        .await;
        Stack {
            policy,
            api,
            ingestor: spawn("ingestor", &[], &env),
            replier: spawn("replier", &[], &env),
            sim,
            sim_base,
            api_base,
            token,
            posted: HashMap::new(),
            replies_requested: 0,
            errors: Vec::new(),
            db,
            _broker: broker,
        }
    }

    /// Panics with its output if a process has exited (a refused setting, a crash).
    fn assert_running(&mut self) {
        let policy = self.policy;
        for (name, process) in [
            ("ayrshare-sim", &mut self.sim),
            ("api", &mut self.api),
            ("ingestor", &mut self.ingestor),
            ("replier", &mut self.replier),
        ] {
            assert!(
                process.is_running(),
                "{name} of {policy} exited:\n{}",
                process.output()
            );
        }
    }

    /// Every post of the world, in a stable order.
    async fn posts(&self, http: &reqwest::Client) -> Vec<Post> {
        let world = get_json(http, &format!("{}/_sim/comments", self.sim_base)).await;
        let posts: BTreeSet<Post> = world["comments"]
            .as_array()
            .expect("comments")
            .iter()
            .map(|c| Post {
                platform: c["platform"].as_str().expect("platform").to_owned(),
                id: c["postId"].as_str().expect("postId").to_owned(),
            })
            .collect();
        posts.into_iter().collect()
    }

    async fn stats(&self, http: &reqwest::Client) -> Value {
        get_json(http, &format!("{}/_sim/stats", self.sim_base)).await
    }

    /// The simulator's counts and the slots the service consumed (granted, not given back).
    async fn snapshot(&self, http: &reqwest::Client) -> Snapshot {
        let consumed = self
            .count(
                "SELECT coalesce(sum(granted_total - returned_total), 0)::bigint FROM rate_budgets",
            )
            .await;
        Snapshot {
            stats: self.stats(http).await,
            consumed,
        }
    }

    async fn rows(&self, sql: &str) -> Vec<QueryResult> {
        self.db
            .conn()
            .query_all_raw(Statement::from_string(DbBackend::Postgres, sql))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    async fn count(&self, sql: &str) -> i64 {
        self.rows(sql)
            .await
            .first()
            .and_then(|r| r.try_get_by_index::<i64>(0).ok())
            .unwrap_or_default()
    }

    /// Posts a customer comment; a `measured` one is timed to the inbox.
    async fn post_comment(
        &mut self,
        http: &reqwest::Client,
        n: usize,
        post: &Post,
        content: &str,
        measured: bool,
    ) {
        let at = Utc::now();
        let body = json!({"platform": post.platform, "postId": post.id, "content": content});
        match http
            .post(format!("{}/_sim/comments", self.sim_base))
            .json(&body)
            .send()
            .await
        {
            Ok(r) if r.status().as_u16() == 201 => {
                if measured {
                    self.posted.insert(n, at);
                }
            }
            Ok(r) => self.errors.push(format!("comment {n}: {}", r.status())),
            Err(e) => self.errors.push(format!("comment {n}: {e}")),
        }
    }

    /// Requests a reply to the oldest stored customer comment that has none yet.
    async fn request_reply(&mut self, http: &reqwest::Client, n: usize, content: &str) {
        let sql = format!(
            "SELECT m.id::text FROM mentions m WHERE m.type = 'comment' AND m.state IS NULL \
             AND m.content NOT LIKE '%{PROBE}%' AND m.content NOT LIKE '%{REPLY}%' \
             AND NOT EXISTS (SELECT 1 FROM replies r WHERE r.mention_id = m.id) \
             ORDER BY m.created_at, m.id LIMIT 1"
        );
        let Some(id) = self
            .rows(&sql)
            .await
            .first()
            .and_then(|r| r.try_get_by_index::<String>(0).ok())
        else {
            self.errors
                .push(format!("reply {n}: no mention to reply to"));
            return;
        };
        let answer = http
            .post(format!("{}/v1/mentions/{id}/reply", self.api_base))
            .bearer_auth(&self.token)
            .json(&json!({ "content": content }))
            .send()
            .await;
        match answer {
            Ok(r) if r.status().as_u16() == 202 => self.replies_requested += 1,
            Ok(r) => {
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                self.errors.push(format!("reply {n}: {status} {body}"));
            }
            Err(e) => self.errors.push(format!("reply {n}: {e}")),
        }
    }

    async fn ledger(&self, http: &reqwest::Client) -> Value {
        get_json(http, &format!("{}/_sim/ledger", self.sim_base)).await
    }

    /// Whether every posted comment is stored and every requested reply is in the ledger.
    async fn all_arrived(&self, http: &reqwest::Client) -> bool {
        let stored = self
            .count(&format!(
                "SELECT count(*) FROM mentions WHERE content LIKE '%{PROBE}%'"
            ))
            .await;
        let ledger = self.ledger(http).await;
        let sent = ledger["replies"].as_array().map_or(0, |r| {
            r.iter()
                .filter(|r| {
                    r["content"]
                        .as_str()
                        .and_then(|c| marker(c, REPLY))
                        .is_some()
                })
                .count()
        });
        usize::try_from(stored).unwrap_or_default() >= self.posted.len()
            && sent >= self.replies_requested
    }

    async fn figures(
        &self,
        http: &reqwest::Client,
        before: &Snapshot,
        after: &Snapshot,
        m: &Measured,
    ) -> Figures {
        let mut stored: HashMap<usize, DateTime<FixedOffset>> = HashMap::new();
        let probes =
            format!("SELECT content, created_at FROM mentions WHERE content LIKE '%{PROBE}%'");
        for row in self.rows(&probes).await {
            let content: String = row.try_get("", "content").expect("content");
            let created: DateTime<FixedOffset> = row.try_get("", "created_at").expect("created_at");
            if let Some(n) = marker(&content, PROBE) {
                stored.entry(n).or_insert(created);
            }
        }
        let (mut missing, mut missing_hot) = (0, 0);
        let inbox: Vec<f64> = self
            .posted
            .iter()
            .map(|(n, at)| match stored.get(n) {
                Some(created) => seconds_between(*at, created.to_utc()),
                None => {
                    missing += 1;
                    missing_hot += usize::from(m.on_hot.contains(n));
                    m.censored
                }
            })
            .collect();

        let ledger = self.ledger(http).await;
        let applied: HashMap<usize, DateTime<Utc>> = ledger["replies"]
            .as_array()
            .expect("ledger replies")
            .iter()
            .filter_map(|r| {
                let at = DateTime::parse_from_rfc3339(r["at"].as_str()?).ok()?;
                Some((marker(r["content"].as_str()?, REPLY)?, at.to_utc()))
            })
            .collect();
        let requested =
            format!("SELECT content, created_at FROM replies WHERE content LIKE '%{REPLY}%'");
        let mut reply = Vec::new();
        let mut reply_missing = 0;
        for row in self.rows(&requested).await {
            let content: String = row.try_get("", "content").expect("content");
            let created: DateTime<FixedOffset> = row.try_get("", "created_at").expect("created_at");
            match marker(&content, REPLY).and_then(|n| applied.get(&n)) {
                Some(at) => reply.push(seconds_between(created.to_utc(), *at)),
                None => reply_missing += 1,
            }
        }

        let accepted =
            |s: &Value| requests(s, |r| !matches!(r["status"].as_u64(), Some(401 | 429)));
        let used = accepted(&after.stats).saturating_sub(accepted(&before.stats));
        let rate = f64::from(BUDGET_REQUESTS) / f64::from(BUDGET_WINDOW_SECONDS);
        let by_endpoint = ["history", "comments", "messages", "reply"]
            .iter()
            .map(|endpoint| {
                let of = |s: &Value| {
                    requests(s, |r| {
                        r["endpoint"] == *endpoint
                            && !matches!(r["status"].as_u64(), Some(401 | 429))
                    })
                };
                format!(
                    "{endpoint} {}",
                    of(&after.stats).saturating_sub(of(&before.stats))
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        Figures {
            inbox: sorted(inbox),
            missing,
            missing_hot,
            posted: self.posted.len(),
            reply: sorted(reply),
            reply_missing,
            utilisation: used as f64 / (after.consumed - before.consumed).max(1) as f64,
            window_share: used as f64 / (rate * m.length.as_secs_f64()),
            too_many: requests(&after.stats, |r| r["status"].as_u64() == Some(429)),
            max_gap: self.stats(http).await["maxGapSeconds"].as_f64(),
            by_endpoint,
            reads: self.reads_per_post(m).await,
            errors: self.errors.clone(),
        }
    }

    /// Mean comments reads finished during the measurement per hot post and per other post.
    async fn reads_per_post(&self, m: &Measured) -> (f64, f64) {
        let sql = "SELECT p.ayrshare_post_id, count(t.id) FROM posts p \
                   LEFT JOIN tasks t ON t.dedup_key = 'comments:' || p.id::text \
                   AND t.status = 'succeeded' AND t.finished_at >= $1 AND t.finished_at < $2 \
                   GROUP BY p.ayrshare_post_id";
        let rows = self
            .db
            .conn()
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                sql,
                [m.from.into(), m.to.into()],
            ))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let (mut hot, mut other) = ((0, 0), (0, 0));
        for row in rows {
            let post: String = row.try_get_by_index(0).expect("post");
            let reads: i64 = row.try_get_by_index(1).expect("reads");
            let group = if m.hot_posts.contains(&post) {
                &mut hot
            } else {
                &mut other
            };
            *group = (group.0 + reads, group.1 + 1);
        }
        let mean = |(reads, posts): (i64, i64)| reads as f64 / posts.max(1) as f64;
        (mean(hot), mean(other))
    }
}

/// The simulator's flags for `addr`: the budget, a world of 8 × [`POSTS_PER_PLATFORM`] posts
/// with one seeded comment each and no conversations, nothing arriving on its own.
fn sim_args(addr: &str) -> Vec<String> {
    let posts = POSTS_PER_PLATFORM.to_string();
    let (limit, window) = (
        BUDGET_REQUESTS.to_string(),
        BUDGET_WINDOW_SECONDS.to_string(),
    );
    [
        ("--addr", addr),
        ("--rate-limit", limit.as_str()),
        ("--rate-window-seconds", window.as_str()),
        ("--refresh-seconds", "60"),
        ("--comments-per-minute", "0"),
        ("--messages-per-minute", "0"),
        ("--posts-per-platform", posts.as_str()),
        ("--comments-per-post", "1"),
        ("--replies-per-comment", "0"),
        ("--empty-posts-per-platform", "0"),
        ("--conversations-per-platform", "0"),
    ]
    .iter()
    .flat_map(|(k, v)| [(*k).to_owned(), (*v).to_owned()])
    .collect()
}

const BINARIES: [&str; 4] = ["ayrshare-sim", "api", "ingestor", "replier"];

/// The sum of `count` over the rows of `GET /_sim/stats` that `keep` keeps.
fn requests(stats: &Value, keep: impl Fn(&Value) -> bool) -> u64 {
    stats["requests"]
        .as_array()
        .expect("stats rows")
        .iter()
        .filter(|r| keep(r))
        .filter_map(|r| r["count"].as_u64())
        .sum()
}

/// The number after `prefix` in `text` (`probe#0007.` → 7).
fn marker(text: &str, prefix: &str) -> Option<usize> {
    let rest = &text[text.find(prefix)? + prefix.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn seconds_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).as_seconds_f64()
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// Nearest-rank percentile of sorted `v` (NaN when empty).
fn percentile(v: &[f64], p: f64) -> f64 {
    let rank = (p * v.len() as f64).ceil() as usize;
    v.get(rank.clamp(1, v.len().max(1)) - 1)
        .copied()
        .unwrap_or(f64::NAN)
}

struct Figures {
    /// Seconds from posted to stored, sorted; a comment never stored counts as the run's
    /// length, which no stored one exceeds, so those come last.
    inbox: Vec<f64>,
    missing: usize,
    /// Of `missing`, those on a hot post.
    missing_hot: usize,
    posted: usize,
    /// Seconds from requested to applied at the provider, sorted.
    reply: Vec<f64>,
    reply_missing: usize,
    /// Requests the provider accepted over the slots the service consumed.
    utilisation: f64,
    /// Requests the provider accepted over what its window allows.
    window_share: f64,
    too_many: u64,
    /// `maxGapSeconds` of the whole run (absent from a simulator older than it).
    max_gap: Option<f64>,
    /// Accepted requests during the measurement, by endpoint.
    by_endpoint: String,
    /// Mean comments reads during the measurement per hot post, per other post.
    reads: (f64, f64),
    errors: Vec<String>,
}

impl Figures {
    /// The time-to-inbox percentile `p`, and whether it falls on a comment never stored (then
    /// it is only a lower bound).
    fn inbox(&self, p: f64) -> (f64, bool) {
        let rank = (p * self.inbox.len() as f64).ceil() as usize;
        (
            percentile(&self.inbox, p),
            rank > self.posted - self.missing,
        )
    }
}

fn seconds(v: f64, decimals: usize) -> String {
    if v.is_nan() {
        "-".to_owned()
    } else {
        format!("{v:.decimals$}")
    }
}

fn bounded(&(v, lower): &(f64, bool)) -> String {
    format!("{}{}", if lower { "≥" } else { "" }, seconds(v, 1))
}

fn report(posts: usize, measure: Duration, a: &Figures, b: &Figures) {
    let share = f64::from(BUDGET_REQUESTS) * (1.0 - f64::from(RESERVE_PERCENT) / 100.0)
        / f64::from(BUDGET_WINDOW_SECONDS);
    let cycle = posts as f64 / share;
    let rr = [cycle / 2.0, 0.95 * cycle, cycle];
    let row = |label: &str, cells: [String; 3], ratios: [String; 2]| {
        println!(
            "  {label:<28}{:>12}{:>12}{:>12}{:>14}{:>15}",
            cells[0], cells[1], cells[2], ratios[0], ratios[1]
        );
    };
    let none = || [String::new(), String::new()];
    let dash = || "-".to_owned();

    println!(
        "freshness: {posts} posts, budget {BUDGET_REQUESTS} / {BUDGET_WINDOW_SECONDS} s \
         ({RESERVE_PERCENT}% for replies), {:.0} s measured, {} comments, {} replies per stack",
        measure.as_secs_f64(),
        a.posted,
        a.reply.len() + a.reply_missing
    );
    row(
        "",
        ["adaptive".into(), "fifo".into(), "uniform RR".into()],
        ["adaptive/RR".into(), "adaptive/fifo".into()],
    );
    let p95 = (a.inbox(0.95), b.inbox(0.95));
    for (i, (label, p)) in [("p50", 0.5), ("p95", 0.95), ("max", 1.0)]
        .into_iter()
        .enumerate()
    {
        let ratios = if i == 1 {
            [
                format!("{:.2}x", p95.0.0 / rr[1]),
                format!("{:.2}x", p95.0.0 / p95.1.0),
            ]
        } else {
            none()
        };
        row(
            &format!("time-to-inbox {label} (s)"),
            [
                bounded(&a.inbox(p)),
                bounded(&b.inbox(p)),
                seconds(rr[i], 1),
            ],
            ratios,
        );
    }
    let missing = |f: &Figures| format!("{}/{}", f.missing, f.posted);
    let missing_hot = |f: &Figures| f.missing_hot.to_string();
    row(
        "comments never stored",
        [missing(a), missing(b), dash()],
        none(),
    );
    row(
        "  of them on hot posts",
        [missing_hot(a), missing_hot(b), dash()],
        none(),
    );
    for (label, p) in [("p50", 0.5), ("p99", 0.99)] {
        let at = |f: &Figures| seconds(percentile(&f.reply, p), 2);
        row(
            &format!("reply {label} (s)"),
            [at(a), at(b), dash()],
            none(),
        );
    }
    let unapplied = |f: &Figures| f.reply_missing.to_string();
    row(
        "replies never applied",
        [unapplied(a), unapplied(b), dash()],
        none(),
    );
    let used = |f: &Figures| format!("{:.2}", f.utilisation);
    row(
        "utilisation (used/consumed)",
        [used(a), used(b), dash()],
        none(),
    );
    let share = |f: &Figures| format!("{:.2}", f.window_share);
    row(
        "window used (reserve 0.20)",
        [share(a), share(b), dash()],
        none(),
    );
    let too_many = |f: &Figures| f.too_many.to_string();
    row("429s", [too_many(a), too_many(b), dash()], none());
    let reads = |f: &Figures| format!("{:.1} / {:.2}", f.reads.0, f.reads.1);
    row(
        "reads per hot / other post",
        [
            reads(a),
            reads(b),
            format!("{:.2}", measure.as_secs_f64() / cycle),
        ],
        none(),
    );
    let gap = |f: &Figures| f.max_gap.map_or("n/a".to_owned(), |g| seconds(g, 1));
    row("longest request gap (s)", [gap(a), gap(b), dash()], none());
    println!("  accepted while measuring: adaptive {}", a.by_endpoint);
    println!("                            fifo     {}", b.by_endpoint);
    for (policy, f) in [("adaptive", a), ("fifo", b)] {
        for e in f.errors.iter().take(5) {
            println!("  {policy}: {e}");
        }
        if f.errors.len() > 5 {
            println!("  {policy}: … {} more", f.errors.len() - 5);
        }
    }

    let met = |ok: bool| if ok { "met" } else { "not met" };
    let (p95, lower) = p95.0;
    let p95_verdict = if lower && p95 <= 0.5 * rr[1] {
        format!("undecided: {} comments never stored", a.missing)
    } else {
        met(p95 <= 0.5 * rr[1]).to_owned()
    };
    let reply_p99 = percentile(&a.reply, 0.99);
    let aim = |label: &str, value: String, verdict: &str| {
        println!("  {label:<38}{value:>8}   {verdict}");
    };
    println!("aims (adaptive):");
    aim(
        "p95 time-to-inbox <= 0.5x uniform RR",
        format!("{:.2}x", p95 / rr[1]),
        &p95_verdict,
    );
    aim(
        "reply p99 < 5 s, every reply applied",
        format!("{} s", seconds(reply_p99, 2)),
        met(reply_p99 < 5.0 && a.reply_missing == 0),
    );
    aim(
        "utilisation >= 0.97",
        format!("{:.2}", a.utilisation),
        met(a.utilisation >= 0.97),
    );
    aim("no 429", a.too_many.to_string(), met(a.too_many == 0));
}
