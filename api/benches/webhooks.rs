//! Benchmark: push ingest.
//!
//! 1. Deliveries taken in by one api process, signature to commit: distinct signed comment
//!    deliveries posted to `POST /v1/webhooks/ayrshare` from 16 keep-alive connections for
//!    `BENCH_SECONDS` (default 8; each one a new mention, stored from its payload and audited),
//!    against, in the same run, a bare handler doing only what any exactly-once receiver must:
//!    verify the HMAC and insert the delivery id in a transaction of its own; then the route
//!    again with one delivery at a time (its latency unloaded). The servers run on
//!    a runtime of two threads (as the api binary on this 2-core machine), the load on another.
//! 2. Time to inbox, webhooks beside polling: the simulator (customers commenting at
//!    `BENCH_ARRIVALS_PER_MINUTE`, default 60, and writing direct messages at a quarter of that,
//!    under the provider's real budget of 300 requests per 5 minutes) with Facebook and
//!    Instagram on webhooks and X and LinkedIn polled, the api and an ingestor as processes;
//!    after a warm-up, for `BENCH_INBOX_SECONDS` (default 120): per platform, p50 and p99 of
//!    stored − posted for what arrived meanwhile (the simulator writes `created` in whole
//!    seconds, so each figure may be up to a second long), and the provider requests by
//!    platform.
//!
//! `cargo build --release --workspace --bins && cargo bench -p api --bench webhooks` (part 2
//! starts the release binaries). Only 127.0.0.1; every phase has a fixed length.

mod support;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, KeyInit, Mac};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait};
use serde_json::{Value, json};
use sha2::Sha256;
use shared::testing::{Process, TestBroker, TestDb, free_port, sim_get, wait_http_ok};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::{figures, ms, serve};

const SECRET: &str = "bench-webhook-secret";
const CONNECTIONS: usize = 16;
const POST: &str = "ayr-bench-post";
const WARM_UP: Duration = Duration::from_secs(45);

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Delivery `i` of `run`: a distinct comment on the bench post, and its signature.
fn delivery(run: &str, i: usize) -> (Bytes, String) {
    let body = json!({
        "action": "comments", "subAction": "commentAdded",
        "hookId": format!("hook-{run}-{i}"), "platform": "facebook", "postId": POST,
        "parentCommentId": null,
        "comment": {"comment": format!("Comment {i} of the bench"),
            "commentId": format!("fb-{run}-{i}"), "created": "2026-12-03T07:00:00Z",
            "from": {"id": format!("customer-{i}"), "name": "Bench Customer"}},
    });
    let bytes = Bytes::from(serde_json::to_vec(&body).expect("json"));
    let signature = sign(&bytes);
    (bytes, signature)
}

/// The least an exactly-once receiver does: the signature, then the id in a transaction.
async fn bare(State(db): State<DatabaseConnection>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let signature = headers
        .get("x-authorization-content-sha256")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| hex::decode(s).ok())
        .unwrap_or_default();
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(&body);
    if mac.verify_slice(&signature).is_err() {
        return StatusCode::UNAUTHORIZED;
    }
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let id = value["hookId"].as_str().unwrap_or_default().to_owned();
    let txn = db.begin().await.expect("begin");
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO webhook_deliveries (id, profile, action, platform, outcome) \
         VALUES ($1, 'bare', 'comments', 'facebook', 'stored') ON CONFLICT (id) DO NOTHING",
        [id.into()],
    ))
    .await
    .expect("insert");
    txn.commit().await.expect("commit");
    StatusCode::OK
}

/// Posts the deliveries from `connections` tasks, each as soon as the last was answered.
async fn load(url: &str, run_name: &str, connections: usize, run: Duration) -> support::Figures {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()
        .expect("client");
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + run;
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (client, next, url, run_name) = (
                client.clone(),
                next.clone(),
                url.to_owned(),
                run_name.to_owned(),
            );
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let (body, signature) =
                        delivery(&run_name, next.fetch_add(1, Ordering::Relaxed));
                    let t = Instant::now();
                    let answer = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .header(
                            "x-authorization-timestamp",
                            chrono::Utc::now().timestamp().to_string(),
                        )
                        .header("x-authorization-content-sha256", signature)
                        .body(body.clone())
                        .send()
                        .await
                        .expect("send");
                    assert_eq!(
                        answer.status(),
                        200,
                        "{}",
                        answer.text().await.unwrap_or_default()
                    );
                    answer.bytes().await.expect("body");
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.expect("worker"));
    }
    figures(latencies, started.elapsed())
}

async fn taken_in(seconds: u64) {
    let db = TestDb::new().await;
    db.conn()
        .execute_unprepared(&format!(
            "INSERT INTO posts (platform, ayrshare_post_id, platform_post_id) \
             VALUES ('facebook', '{POST}', 'fb-bench-post')"
        ))
        .await
        .expect("post");
    let settings = support::settings(&[("DATABASE_URL", db.url()), ("WEBHOOK_SECRET", SECRET)]);
    let server = support::server_runtime();
    let (api, bare_addr) = server
        .spawn(async move {
            let (state, pool) = support::api_state(&settings).await;
            let api = serve(api::router(state)).await;
            let bare_addr = serve(Router::new().route("/bare", post(bare)).with_state(pool)).await;
            (api, bare_addr)
        })
        .await
        .expect("servers");
    let run = Duration::from_secs(seconds);
    let warm = Duration::from_secs(2);
    let api_url = format!("http://{api}/v1/webhooks/ayrshare");
    let bare_url = format!("http://{bare_addr}/bare");
    load(&bare_url, "warm-bare", CONNECTIONS, warm).await;
    load(&api_url, "warm-api", CONNECTIONS, warm).await;
    let bare_figures = load(&bare_url, "bare", CONNECTIONS, run).await;
    let api_figures = load(&api_url, "api", CONNECTIONS, run).await;
    let one = load(&api_url, "one", 1, run).await;
    let stored = db
        .conn()
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*) AS n FROM mentions WHERE platform_ref LIKE 'fb-api-%'",
        ))
        .await
        .expect("count")
        .map(|r| r.try_get::<i64>("", "n").expect("n"))
        .unwrap_or(0);
    println!("1. deliveries taken in, {CONNECTIONS} connections, {seconds} s each:");
    println!("  bare (HMAC + insert the id):       {bare_figures}");
    println!("  POST /v1/webhooks/ayrshare:        {api_figures}");
    println!(
        "  api / bare: {:.2}x throughput, p99 {:.1} ms vs {:.1} ms; {} new mentions stored \
         and audited ({} requests answered)",
        api_figures.per_second / bare_figures.per_second,
        ms(api_figures.p99),
        ms(bare_figures.p99),
        stored,
        api_figures.count
    );
    println!("  one delivery at a time:            {one}");
    server.shutdown_background();
}

async fn time_to_inbox(seconds: u64, per_minute: f64) {
    let (db, broker) = tokio::join!(TestDb::new(), TestBroker::new());
    let sim_addr = format!("127.0.0.1:{}", free_port());
    let api_addr = format!("127.0.0.1:{}", free_port());
    let (comments, messages) = (per_minute.to_string(), (per_minute / 4.0).to_string());
    let platforms = "facebook,instagram,twitter,linkedin";
    let sim = Process::spawn(
        "ayrshare-sim",
        &[
            "--addr",
            &sim_addr,
            "--platforms",
            platforms,
            "--posts-per-platform",
            "5",
            "--comments-per-post",
            "3",
            "--post-days",
            "3",
            "--refresh-seconds",
            "10",
            "--comments-per-minute",
            &comments,
            "--messages-per-minute",
            &messages,
        ],
        &HashMap::new(),
    );
    let sim_base = format!("http://{sim_addr}");
    let api_base = format!("http://{api_addr}");
    let env: HashMap<String, String> = [
        ("DATABASE_URL", db.url()),
        ("AMQP_URL", broker.url()),
        ("SOCIAL_MEDIA_API_URL", &format!("{sim_base}/api")),
        ("SOCIAL_PLATFORMS", platforms),
        ("POLL_INTERVAL_SECONDS", "10"),
        ("API_ADDR", &api_addr),
        ("PUBLIC_BASE_URL", &api_base),
        ("WEBHOOK_SECRET", SECRET),
        ("RUST_LOG", "warn"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let http = reqwest::Client::new();
    wait_http_ok(
        &http,
        &format!("{sim_base}/_sim/stats"),
        Duration::from_secs(30),
    )
    .await;
    let api = Process::spawn("api", &[], &env);
    let ingestor = Process::spawn("ingestor", &[], &env);
    wait_http_ok(
        &http,
        &format!("{api_base}/healthz"),
        Duration::from_secs(30),
    )
    .await;
    tokio::time::sleep(WARM_UP).await;
    let since = chrono::Utc::now();
    let stats_before = sim_get(&http, &sim_base, "stats").await;
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let stats_after = sim_get(&http, &sim_base, "stats").await;
    // What arrived near the end may still be on its way: a little time to land.
    tokio::time::sleep(Duration::from_secs(20)).await;
    let rows = db
        .conn()
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT platform, count(*) AS n, \
                 percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM created_at - posted_at)) AS p50, \
                 percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM created_at - posted_at)) AS p99 \
             FROM mentions WHERE posted_at >= $1 AND posted_at < $2 GROUP BY platform ORDER BY platform",
            [since.into(), (since + chrono::Duration::seconds(seconds as i64)).into()],
        ))
        .await
        .expect("percentiles");
    let reads = |stats: &Value, platform: &str| -> u64 {
        stats["requests"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .filter(|r| r["platform"] == platform)
                    .map(|r| r["count"].as_u64().unwrap_or(0))
                    .sum()
            })
            .unwrap_or(0)
    };
    println!();
    println!(
        "2. time to inbox over {seconds} s ({per_minute} comments and {} messages a minute; \
         Facebook and Instagram by webhook, X and LinkedIn polled within 300 requests / 5 min):",
        per_minute / 4.0
    );
    let mut by_kind: HashMap<bool, Vec<f64>> = HashMap::new();
    for row in &rows {
        let platform: String = row.try_get("", "platform").expect("platform");
        let n: i64 = row.try_get("", "n").expect("n");
        let p50: f64 = row.try_get("", "p50").expect("p50");
        let p99: f64 = row.try_get("", "p99").expect("p99");
        let pushed = matches!(platform.as_str(), "facebook" | "instagram");
        by_kind.entry(pushed).or_default().push(p50);
        println!(
            "  {platform:>9} ({}): {n:>4} arrived, p50 {p50:>6.1} s, p99 {p99:>6.1} s; {} provider requests",
            if pushed { "webhook" } else { "polled " },
            reads(&stats_after, &platform) - reads(&stats_before, &platform)
        );
    }
    let mean = |v: &Vec<f64>| v.iter().sum::<f64>() / v.len().max(1) as f64;
    if let (Some(pushed), Some(polled)) = (by_kind.get(&true), by_kind.get(&false)) {
        println!(
            "  p50 polled / webhook: {:.1}x ({:.1} s vs {:.1} s, means over the platforms)",
            mean(polled) / mean(pushed).max(0.001),
            mean(polled),
            mean(pushed)
        );
    }
    drop((api, ingestor, sim));
}

#[tokio::main]
async fn main() {
    let seconds: u64 = env_number("BENCH_SECONDS", 8);
    let inbox_seconds: u64 = env_number("BENCH_INBOX_SECONDS", 120);
    let per_minute: f64 = env_number("BENCH_ARRIVALS_PER_MINUTE", 60.0);
    taken_in(seconds).await;
    time_to_inbox(inbox_seconds, per_minute).await;
}
