//! Benchmark: many brands in one installation, each polled within its own provider budget.
//! How long a comment takes to reach the inbox of each of 50 brands (8 platforms each) when
//! every brand's budget is saturated, how evenly that is spread over the brands (fairness),
//! and how many provider requests go out per window against 50 × the per-profile limit;
//! against a baseline measured in the same run: one brand alone, run the same way.
//!
//! Each phase (first the baseline of 1 brand, then `BRANDS_BENCH_BRANDS`, default 50) has its
//! own database, vhost and real binaries (`ayrshare-sim`, `api`, two `ingestor`s; from
//! `target/release` when newer than `target/debug`). The simulator keeps one world per
//! Profile-Key (the default brand: the primary profile; the others `bench-brand-NN`), each of
//! 8 platforms × `BRANDS_BENCH_POSTS_PER_PLATFORM` (default 2) posts with one seeded comment,
//! `nextUpdate` 10 s ahead, and a rate limit per profile. The provider's 300 requests / 5 min
//! would need a phase of many 5-minute windows; the rate is kept and the window shortened
//! instead (`BRANDS_BENCH_RATE_LIMIT` requests per `BRANDS_BENCH_WINDOW_SECONDS`, default
//! 30 / 30 s, on both sides), with 20% reserved for replies, history read every 60 s.
//!
//! From the start, each brand gets a customer comment every `BRANDS_BENCH_COMMENT_EVERY_SECONDS`
//! (default 5) on one of its posts (uniform, seeded), the brands' comments staggered over the
//! period. Those of the warm-up (`BRANDS_BENCH_WARMUP_SECONDS`, default 60) are not measured;
//! those of the measurement (`BRANDS_BENCH_MEASURE_SECONDS`, default 120) are, until all are
//! stored or `BRANDS_BENCH_DRAIN_SECONDS` (default 30) more have passed. Time to inbox:
//! `mentions.created_at` − the moment the comment was posted (a comment never stored counts
//! as the time until the drain ended). Requests: what each profile's limiter accepted during
//! the measurement (`GET /_sim/profiles`), per window, and the most any profile accepted in
//! one window over the whole phase.
//!
//! `cargo build --workspace --bins && cargo bench -p ingestor --bench brands` (add
//! `--profile dev` to skip the release build of the benchmark itself: it only drives the
//! processes). Bounded (each phase: start-up, warm-up, measurement, drain; the whole run is
//! stopped after twice that plus 2 minutes); only 127.0.0.1. Percentiles are nearest-rank.

#[path = "common/processes.rs"]
mod processes;

use chrono::{DateTime, FixedOffset, Utc};
use processes::{binary, get_json, spawn};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{Value, json};
use shared::brands::{BrandsKey, DEFAULT_BRAND, NewBrand};
use shared::domain::BrandId;
use shared::testing::{Process, TestBroker, TestDb, free_port, wait_http_ok};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

const BRANDS_KEY: &str = "62656e63682d6272616e64732d6b65792d3530782d382d706c6174666f726d73";
const SEED: u64 = 0x6272_616e_6473;
const RESERVE_PERCENT: u32 = 20;
const POLL_INTERVAL_SECONDS: u32 = 60;
const REFRESH_SECONDS: u32 = 10;
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Start-up and report of one phase, beside its warm-up, measurement and drain.
const SETUP_ALLOWANCE: Duration = Duration::from_secs(60);
/// Marks the measured comments: `probe#<brand>-<n>.`.
const PROBE: &str = "probe#";
const WARM: &str = "warm#";

#[tokio::main]
async fn main() {
    let settings = Settings::from_env();
    let total = (SETUP_ALLOWANCE + settings.warmup + settings.measure + settings.drain) * 2
        + Duration::from_secs(120);
    if tokio::time::timeout(total, run(settings)).await.is_err() {
        // The run's future, with every process, database and vhost, is dropped by now.
        eprintln!("brands: not finished within {total:?}, stopped");
        std::process::exit(1);
    }
}

#[derive(Debug, Clone)]
struct Settings {
    brands: usize,
    posts_per_platform: u32,
    rate_limit: u32,
    window_seconds: u32,
    comment_every: Duration,
    warmup: Duration,
    measure: Duration,
    drain: Duration,
}

impl Settings {
    fn from_env() -> Settings {
        let number = |name: &str, default: u64| -> u64 {
            std::env::var(name)
                .ok()
                .map(|v| {
                    v.parse()
                        .unwrap_or_else(|_| panic!("{name} must be a whole number"))
                })
                .unwrap_or(default)
        };
        let seconds = |name: &str, default: u64| Duration::from_secs(number(name, default));
        let settings = Settings {
            brands: usize::try_from(number("BRANDS_BENCH_BRANDS", 50)).unwrap_or(50),
            posts_per_platform: u32::try_from(number("BRANDS_BENCH_POSTS_PER_PLATFORM", 2))
                .unwrap_or(2),
            rate_limit: u32::try_from(number("BRANDS_BENCH_RATE_LIMIT", 30)).unwrap_or(30),
            window_seconds: u32::try_from(number("BRANDS_BENCH_WINDOW_SECONDS", 30)).unwrap_or(30),
            comment_every: seconds("BRANDS_BENCH_COMMENT_EVERY_SECONDS", 5),
            warmup: seconds("BRANDS_BENCH_WARMUP_SECONDS", 60),
            measure: seconds("BRANDS_BENCH_MEASURE_SECONDS", 120),
            drain: seconds("BRANDS_BENCH_DRAIN_SECONDS", 30),
        };
        assert!(
            (1..=200).contains(&settings.brands),
            "BRANDS_BENCH_BRANDS must be 1 to 200"
        );
        assert!(
            settings.posts_per_platform >= 1,
            "BRANDS_BENCH_POSTS_PER_PLATFORM must be positive"
        );
        assert!(
            settings.rate_limit >= 5 && settings.window_seconds >= 1,
            "BRANDS_BENCH_RATE_LIMIT must be at least 5 per a positive window"
        );
        assert!(
            !settings.comment_every.is_zero() && !settings.measure.is_zero(),
            "BRANDS_BENCH_COMMENT_EVERY_SECONDS and BRANDS_BENCH_MEASURE_SECONDS must be positive"
        );
        assert!(
            settings.warmup + settings.measure + settings.drain <= Duration::from_secs(1800),
            "a phase is at most 30 minutes"
        );
        settings
    }
}

async fn run(settings: Settings) {
    let http = reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .build()
        .expect("http client");
    for name in BINARIES {
        println!("{name}: {}", binary(name).display());
    }
    println!(
        "each brand: 8 platforms × {} posts, {} requests / {} s per profile ({}% reserved for \
         replies), a comment every {:.0} s; warm-up {:.0} s, measure {:.0} s, drain ≤ {:.0} s",
        settings.posts_per_platform,
        settings.rate_limit,
        settings.window_seconds,
        RESERVE_PERCENT,
        settings.comment_every.as_secs_f64(),
        settings.warmup.as_secs_f64(),
        settings.measure.as_secs_f64(),
        settings.drain.as_secs_f64(),
    );
    let baseline = phase(&http, &settings, 1).await;
    baseline.print(&settings);
    let many = phase(&http, &settings, settings.brands).await;
    many.print(&settings);
    compare(&baseline, &many);
}

/// One brand's world and what was done to it.
struct BrandRun {
    /// The simulator's profile (`""`: the primary one, the default brand's).
    profile: String,
    posts: Vec<(String, String)>,
    /// When each measured comment `n` was posted (those the simulator took).
    posted: HashMap<usize, DateTime<Utc>>,
}

/// The figures of one phase.
struct PhaseFigures {
    brands: usize,
    /// Per brand: sorted times to inbox (seconds) and how many were never stored.
    per_brand: Vec<(Vec<f64>, usize)>,
    /// Requests every limiter accepted during the measurement, over all profiles.
    accepted: u64,
    measured_seconds: f64,
    /// The most one profile accepted in any window of the phase, and whose.
    max_in_window: (u64, String),
    /// Sum over the profiles of the most each accepted in any window.
    sum_max_in_window: u64,
    too_many: u64,
    errors: Vec<String>,
    late: Duration,
}

async fn phase(http: &reqwest::Client, settings: &Settings, n: usize) -> PhaseFigures {
    // The brands exist before the api starts: its scheduler's first tick reads them all.
    let (mut stack, ids) = Stack::start(http, settings, n).await;
    let mut brands: Vec<BrandRun> = (0..n)
        .map(|b| BrandRun {
            profile: profile_key(b),
            posts: Vec::new(),
            posted: HashMap::new(),
        })
        .collect();
    for brand in &mut brands {
        brand.posts = stack.posts(http, &brand.profile).await;
    }
    stack.spawn_ingestors();

    // Every brand's comments, staggered: brand b's k-th at k·every + b·every/n.
    let mut rng = StdRng::seed_from_u64(SEED);
    let end = settings.warmup + settings.measure;
    let mut events: Vec<(Duration, usize, usize)> = Vec::new();
    for b in 0..n {
        let offset = settings.comment_every.mul_f64(b as f64 / n as f64);
        let mut k = 0;
        while offset + settings.comment_every * k < end {
            events.push((offset + settings.comment_every * k, b, k as usize));
            k += 1;
        }
    }
    events.sort();
    let t0 = tokio::time::Instant::now();
    let mut late = Duration::ZERO;
    let mut errors = Vec::new();
    let mut before = None;
    for (at, b, k) in events {
        if before.is_none() && at >= settings.warmup {
            tokio::time::sleep_until(t0 + settings.warmup).await;
            before = Some(stack.profiles(http).await);
        }
        tokio::time::sleep_until(t0 + at).await;
        late = late.max((t0 + at).elapsed());
        let measured = at >= settings.warmup;
        let brand = &mut brands[b];
        let (platform, post) = &brand.posts[rng.random_range(0..brand.posts.len())];
        let content = if measured {
            format!("Any news on my order? {PROBE}{b:03}-{k:05}.")
        } else {
            format!("Any news on my order? {WARM}{b:03}-{k:05}.")
        };
        let posted_at = Utc::now();
        match http
            .post(format!("{}/_sim/comments", stack.sim_base))
            .query(&[("profile", brand.profile.as_str())])
            .json(&json!({"platform": platform, "postId": post, "content": content}))
            .send()
            .await
        {
            Ok(r) if r.status().as_u16() == 201 => {
                if measured {
                    brand.posted.insert(k, posted_at);
                }
            }
            Ok(r) => errors.push(format!("comment {b}/{k}: {}", r.status())),
            Err(e) => errors.push(format!("comment {b}/{k}: {e}")),
        }
    }
    let before = match before {
        Some(before) => before,
        None => stack.profiles(http).await,
    };
    tokio::time::sleep_until(t0 + end).await;
    let measured_seconds = (tokio::time::Instant::now() - (t0 + settings.warmup)).as_secs_f64();
    let after = stack.profiles(http).await;
    stack.assert_running();

    let expected: usize = brands.iter().map(|b| b.posted.len()).sum();
    let drain_started = tokio::time::Instant::now();
    loop {
        let stored = stack
            .count(&format!(
                "SELECT count(*) FROM mentions WHERE content LIKE '%{PROBE}%'"
            ))
            .await;
        if usize::try_from(stored).unwrap_or(0) >= expected
            || drain_started.elapsed() >= settings.drain
        {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let drained = Utc::now();
    stack.assert_running();

    // Time to inbox, per brand.
    let rows = stack
        .db
        .conn()
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            format!(
                "SELECT brand_id::text AS brand_id, content, created_at FROM mentions WHERE content LIKE '%{PROBE}%'"
            ),
        ))
        .await
        .expect("probe mentions");
    let index: HashMap<String, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.to_string(), i))
        .collect();
    let mut stored: Vec<HashMap<usize, DateTime<Utc>>> = vec![HashMap::new(); n];
    for row in &rows {
        let brand: String = row.try_get("", "brand_id").expect("brand_id");
        let content: String = row.try_get("", "content").expect("content");
        let at: DateTime<FixedOffset> = row.try_get("", "created_at").expect("created_at");
        let Some((b, k)) = probe(&content) else {
            continue;
        };
        let Some(&i) = index.get(&brand) else {
            continue;
        };
        assert_eq!(i, b, "comment {content:?} stored in the inbox of brand {i}");
        stored[i].insert(k, at.with_timezone(&Utc));
    }
    let per_brand: Vec<(Vec<f64>, usize)> = brands
        .iter()
        .zip(&stored)
        .map(|(brand, stored)| {
            let mut missing = 0;
            let mut waits: Vec<f64> = brand
                .posted
                .iter()
                .map(|(k, posted)| match stored.get(k) {
                    Some(at) => (*at - *posted).as_seconds_f64().max(0.0),
                    None => {
                        missing += 1;
                        (drained - *posted).as_seconds_f64()
                    }
                })
                .collect();
            waits.sort_by(f64::total_cmp);
            (waits, missing)
        })
        .collect();

    // Requests per profile.
    let total = |profiles: &Value, key: &str| -> u64 {
        profiles["profiles"]
            .as_array()
            .expect("profiles")
            .iter()
            .find(|p| p["profile"] == key)
            .and_then(|p| p["total"].as_u64())
            .unwrap_or(0)
    };
    let accepted: u64 = brands
        .iter()
        .map(|b| total(&after, &b.profile).saturating_sub(total(&before, &b.profile)))
        .sum();
    let last = stack.profiles(http).await;
    let mut max_in_window = (0, String::new());
    let mut sum_max_in_window = 0;
    for p in last["profiles"].as_array().expect("profiles") {
        let most = p["maxRequestsInWindow"].as_u64().unwrap_or(0);
        sum_max_in_window += most;
        if most > max_in_window.0 {
            max_in_window = (most, p["profile"].as_str().unwrap_or("?").to_owned());
        }
    }
    let mut too_many = 0;
    for brand in &brands {
        let stats = get_json(
            http,
            &format!("{}/_sim/stats?profile={}", stack.sim_base, brand.profile),
        )
        .await;
        too_many += stats["requests"]
            .as_array()
            .expect("stats rows")
            .iter()
            .filter(|r| r["status"] == 429)
            .filter_map(|r| r["count"].as_u64())
            .sum::<u64>();
    }
    PhaseFigures {
        brands: n,
        per_brand,
        accepted,
        measured_seconds,
        max_in_window,
        sum_max_in_window,
        too_many,
        errors,
        late,
    }
}

/// The Profile-Key of brand `b` (0: the default brand, the primary profile).
fn profile_key(b: usize) -> String {
    if b == 0 {
        String::new()
    } else {
        format!("bench-brand-{b:02}")
    }
}

/// `probe#007-00012.` → (7, 12).
fn probe(content: &str) -> Option<(usize, usize)> {
    let rest = &content[content.find(PROBE)? + PROBE.len()..];
    let (b, rest) = rest.split_once('-')?;
    let k: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((b.parse().ok()?, k.parse().ok()?))
}

impl PhaseFigures {
    fn p(&self, brand: usize, q: f64) -> f64 {
        percentile(&self.per_brand[brand].0, q)
    }

    /// Per-brand `q` percentiles, sorted.
    fn per_brand_percentiles(&self, q: f64) -> Vec<f64> {
        let mut v: Vec<f64> = (0..self.brands).map(|b| self.p(b, q)).collect();
        v.sort_by(f64::total_cmp);
        v
    }

    fn print(&self, settings: &Settings) {
        println!();
        println!(
            "== {} brand{} ({} comments measured, {} never stored; comments posted at most \
             {:.2} s late{})",
            self.brands,
            if self.brands == 1 { "" } else { "s" },
            self.per_brand.iter().map(|(w, _)| w.len()).sum::<usize>(),
            self.per_brand.iter().map(|(_, m)| m).sum::<usize>(),
            self.late.as_secs_f64(),
            if self.errors.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} refused: {:?}",
                    self.errors.len(),
                    &self.errors[..self.errors.len().min(3)]
                )
            }
        );
        println!("time to inbox per brand (s): brand p50 / p95 (n, never stored)");
        let mut line = String::new();
        for b in 0..self.brands {
            let cell = format!(
                "#{b:02} {:5.1} / {:5.1} ({}{})",
                self.p(b, 0.50),
                self.p(b, 0.95),
                self.per_brand[b].0.len(),
                match self.per_brand[b].1 {
                    0 => String::new(),
                    m => format!(", {m}"),
                }
            );
            line.push_str(&format!("{cell:<27}"));
            if b % 4 == 3 || b + 1 == self.brands {
                println!("  {}", line.trim_end());
                line.clear();
            }
        }
        let p50 = self.per_brand_percentiles(0.50);
        let p95 = self.per_brand_percentiles(0.95);
        let all: Vec<f64> = {
            let mut v: Vec<f64> = self.per_brand.iter().flat_map(|(w, _)| w.clone()).collect();
            v.sort_by(f64::total_cmp);
            v
        };
        println!(
            "all brands' comments: p50 {:.1} s, p95 {:.1} s, max {:.1} s",
            percentile(&all, 0.50),
            percentile(&all, 0.95),
            all.last().copied().unwrap_or(f64::NAN)
        );
        if self.brands > 1 {
            println!(
                "spread over brands: p50 min {:.1} / median {:.1} / max {:.1} s (max/min {:.2}×); \
                 p95 min {:.1} / median {:.1} / max {:.1} s (max/min {:.2}×)",
                p50[0],
                percentile(&p50, 0.5),
                p50[p50.len() - 1],
                p50[p50.len() - 1] / p50[0],
                p95[0],
                percentile(&p95, 0.5),
                p95[p95.len() - 1],
                p95[p95.len() - 1] / p95[0],
            );
        }
        let window = f64::from(settings.window_seconds);
        let per_window = self.accepted as f64 * window / self.measured_seconds;
        let ceiling = self.brands as u64 * u64::from(settings.rate_limit);
        println!(
            "provider requests: {} accepted in {:.0} s = {:.0} per {:.0} s window against \
             {} × {} = {} ({:.2} of the ceiling; polling's share is {:.2}); the most one \
             profile took in any window: {} ({:?}, limit {}); sum over profiles of each one's \
             most in a window: {} (≤ {}); 429s: {}",
            self.accepted,
            self.measured_seconds,
            per_window,
            window,
            self.brands,
            settings.rate_limit,
            ceiling,
            per_window / ceiling as f64,
            f64::from(100 - RESERVE_PERCENT) / 100.0,
            self.max_in_window.0,
            self.max_in_window.1,
            settings.rate_limit,
            self.sum_max_in_window,
            ceiling,
            self.too_many
        );
    }
}

fn compare(baseline: &PhaseFigures, many: &PhaseFigures) {
    let (b50, b95) = (baseline.p(0, 0.50), baseline.p(0, 0.95));
    let p50 = many.per_brand_percentiles(0.50);
    let p95 = many.per_brand_percentiles(0.95);
    println!();
    println!(
        "{} brands against 1 (time to inbox, per brand): p50 median brand {:.2}×, worst brand \
         {:.2}× ({:.1} s vs {:.1} s); p95 median brand {:.2}×, worst brand {:.2}× ({:.1} s vs \
         {:.1} s)",
        many.brands,
        percentile(&p50, 0.5) / b50,
        p50[p50.len() - 1] / b50,
        p50[p50.len() - 1],
        b50,
        percentile(&p95, 0.5) / b95,
        p95[p95.len() - 1] / b95,
        p95[p95.len() - 1],
        b95,
    );
}

/// The processes of one phase. Fields drop in order: the processes are killed before the
/// database and the vhost go.
struct Stack {
    sim: Process,
    api: Process,
    ingestors: Vec<Process>,
    sim_base: String,
    env: HashMap<String, String>,
    db: TestDb,
    _broker: TestBroker,
}

impl Stack {
    /// The stack of `n` brands (the default one and `n - 1` others), and their ids.
    async fn start(http: &reqwest::Client, settings: &Settings, n: usize) -> (Stack, Vec<BrandId>) {
        let (db, broker) = tokio::join!(TestDb::new(), TestBroker::new());
        let key = BrandsKey::from_hex(BRANDS_KEY).expect("64 hex digits");
        let mut ids = vec![DEFAULT_BRAND];
        for b in 1..n {
            let brand = shared::brands::create(
                db.conn(),
                Some(&key),
                &NewBrand {
                    name: format!("Brand {b:02}"),
                    profile_key: Some(profile_key(b).into()),
                    platforms: None,
                },
            )
            .await
            .expect("brand created");
            ids.push(brand.id);
        }
        let sim_addr = format!("127.0.0.1:{}", free_port());
        let sim_base = format!("http://{sim_addr}");
        let sim = spawn(
            "ayrshare-sim",
            &sim_args(&sim_addr, settings),
            &HashMap::new(),
        );
        let env: HashMap<String, String> = [
            ("DATABASE_URL", db.url().to_owned()),
            ("AMQP_URL", broker.url().to_owned()),
            ("SOCIAL_MEDIA_API_URL", format!("{sim_base}/api")),
            ("BRANDS_KEY", BRANDS_KEY.to_owned()),
            ("RATE_BUDGET_REQUESTS", settings.rate_limit.to_string()),
            (
                "RATE_BUDGET_WINDOW_SECONDS",
                settings.window_seconds.to_string(),
            ),
            ("BUDGET_RESERVE_PERCENT", RESERVE_PERCENT.to_string()),
            ("POLL_INTERVAL_SECONDS", POLL_INTERVAL_SECONDS.to_string()),
            ("POLL_RATE_HORIZON_SECONDS", "120".to_owned()),
            ("SOCIAL_MEDIA_API_HISTORY_LAST_DAYS", "30".to_owned()),
            // Four processes share PostgreSQL's connections with the rest of the machine.
            ("DATABASE_MAX_CONNECTIONS", "8".to_owned()),
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
        let stack = Stack {
            sim,
            api,
            ingestors: Vec::new(),
            sim_base,
            env,
            db,
            _broker: broker,
        };
        (stack, ids)
    }

    fn spawn_ingestors(&mut self) {
        for _ in 0..2 {
            self.ingestors.push(spawn("ingestor", &[], &self.env));
        }
    }

    /// Panics with its output if a process has exited (a refused setting, a crash).
    fn assert_running(&mut self) {
        let mut processes = vec![("ayrshare-sim", &mut self.sim), ("api", &mut self.api)];
        processes.extend(self.ingestors.iter_mut().map(|p| ("ingestor", p)));
        for (name, process) in processes {
            assert!(process.is_running(), "{name} exited:\n{}", process.output());
        }
    }

    /// The posts of `profile`'s world, in a stable order.
    async fn posts(&self, http: &reqwest::Client, profile: &str) -> Vec<(String, String)> {
        let world = get_json(
            http,
            &format!("{}/_sim/comments?profile={profile}", self.sim_base),
        )
        .await;
        let posts: BTreeSet<(String, String)> = world["comments"]
            .as_array()
            .expect("comments")
            .iter()
            .map(|c| {
                (
                    c["platform"].as_str().expect("platform").to_owned(),
                    c["postId"].as_str().expect("postId").to_owned(),
                )
            })
            .collect();
        assert!(!posts.is_empty(), "the world of {profile:?} has posts");
        posts.into_iter().collect()
    }

    async fn profiles(&self, http: &reqwest::Client) -> Value {
        get_json(http, &format!("{}/_sim/profiles", self.sim_base)).await
    }

    async fn count(&self, sql: &str) -> i64 {
        self.db
            .conn()
            .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .and_then(|r| r.try_get_by_index::<i64>(0).ok())
            .unwrap_or_default()
    }
}

/// The simulator's flags for `addr`: the rate limit per profile, worlds of 8 × posts with one
/// seeded comment each and no conversations, nothing arriving on its own.
fn sim_args(addr: &str, settings: &Settings) -> Vec<String> {
    [
        ("--addr", addr.to_owned()),
        ("--rate-limit", settings.rate_limit.to_string()),
        ("--rate-window-seconds", settings.window_seconds.to_string()),
        ("--refresh-seconds", REFRESH_SECONDS.to_string()),
        ("--comments-per-minute", "0".to_owned()),
        ("--messages-per-minute", "0".to_owned()),
        ("--post-days", "5".to_owned()),
        (
            "--posts-per-platform",
            settings.posts_per_platform.to_string(),
        ),
        ("--comments-per-post", "1".to_owned()),
        ("--replies-per-comment", "0".to_owned()),
        ("--empty-posts-per-platform", "0".to_owned()),
        ("--conversations-per-platform", "0".to_owned()),
    ]
    .into_iter()
    .flat_map(|(k, v)| [k.to_owned(), v])
    .collect()
}

const BINARIES: [&str; 3] = ["ayrshare-sim", "api", "ingestor"];

/// Nearest-rank percentile of sorted `v` (NaN when empty).
fn percentile(v: &[f64], p: f64) -> f64 {
    let rank = (p * v.len() as f64).ceil() as usize;
    v.get(rank.clamp(1, v.len().max(1)) - 1)
        .copied()
        .unwrap_or(f64::NAN)
}
