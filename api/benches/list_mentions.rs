//! Benchmark: `GET /v1/mentions?limit=50` against a bare axum handler doing one indexed
//! `SELECT … ORDER BY created_at DESC, id DESC LIMIT 50` on the same database, in the same run.
//!
//! 1. A fresh database (from the migrated template) gets 10,000 mentions; the list is timed
//!    one request at a time (first page and a deep page).
//! 2. It grows to 1,000,000 mentions; the same single-request timings are taken again (keyset
//!    pagination and the `(created_at, id)` indexes keep them flat).
//! 3. With 1,000,000 rows, 64 connections over loopback drive the API route (with a real
//!    bearer token, the rate limit raised out of the way) and then the bare handler, for a
//!    fixed time each: requests/s, p50 and p99, and the ratios.
//!
//! `cargo bench -p api --bench list_mentions`; `BENCH_SECONDS` (default 8) sets each load
//! phase's length, `BENCH_ROWS` (default 1000000) the large table size. Only 127.0.0.1.

use api::AppState;
use api::rate_limit::RateLimit;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, QueryOrder, QuerySelect};
use shared::db::entities::mentions;
use shared::domain::Role;
use shared::testing::TestDb;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

const CONNECTIONS: usize = 64;
const SMALL_ROWS: i64 = 10_000;
const SINGLE_REQUESTS: usize = 300;

#[tokio::main]
async fn main() {
    let seconds: u64 = env_number("BENCH_SECONDS", 8);
    let large_rows: i64 = env_number("BENCH_ROWS", 1_000_000);
    let db = TestDb::new().await;
    let conn = db.conn().clone();

    let settings = settings();
    let state = AppState::new(conn.clone(), &settings).with_rate_limit(RateLimit {
        per_second: 1_000_000,
        burst: 1_000_000,
    });
    let api_addr = serve(api::router(state)).await;
    let bare_addr = serve(
        Router::new()
            .route("/bare", get(bare_list))
            .with_state(conn.clone()),
    )
    .await;
    let token = token(&conn).await;

    let started = Instant::now();
    insert_mentions(&conn, 1, SMALL_ROWS).await;
    println!(
        "inserted {SMALL_ROWS} mentions in {:.1?}",
        started.elapsed()
    );
    let client = client();
    let api_url = format!("http://{api_addr}/v1/mentions?limit=50");
    let small_first = sequential(&client, &api_url, &token).await;
    let small_deep = sequential(
        &client,
        &deep_page_url(&client, &api_url, &token, 100).await,
        &token,
    )
    .await;

    let started = Instant::now();
    insert_mentions(&conn, SMALL_ROWS + 1, large_rows).await;
    println!("grew to {large_rows} mentions in {:.1?}", started.elapsed());
    let large_first = sequential(&client, &api_url, &token).await;
    let large_deep = sequential(
        &client,
        &deep_page_url(&client, &api_url, &token, 100).await,
        &token,
    )
    .await;

    println!();
    println!("single requests, GET /v1/mentions?limit=50 ({SINGLE_REQUESTS} each):");
    println!("  {:>9} rows, first page:   {small_first}", SMALL_ROWS);
    println!("  {:>9} rows, page 101:     {small_deep}", SMALL_ROWS);
    println!("  {:>9} rows, first page:   {large_first}", large_rows);
    println!("  {:>9} rows, page 101:     {large_deep}", large_rows);
    println!(
        "  p50 ratio {large_rows} / {SMALL_ROWS} rows: {:.2}x (first page), {:.2}x (page 101)",
        large_first.p50.as_secs_f64() / small_first.p50.as_secs_f64(),
        large_deep.p50.as_secs_f64() / small_deep.p50.as_secs_f64(),
    );

    let run = Duration::from_secs(seconds);
    let bare_url = format!("http://{bare_addr}/bare");
    // One client (one connection) per worker, built before any timing: building a client
    // loads the TLS roots, which is far slower than a request.
    let clients: Vec<reqwest::Client> = (0..CONNECTIONS)
        .map(|_| {
            reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .expect("client")
        })
        .collect();
    // Warm both up (connections, plans, caches) before measuring either.
    load(&clients, &bare_url, None, Duration::from_secs(2)).await;
    load(&clients, &api_url, Some(&token), Duration::from_secs(2)).await;
    let bare = load(&clients, &bare_url, None, run).await;
    let api = load(&clients, &api_url, Some(&token), run).await;
    println!();
    println!("{CONNECTIONS} connections, {seconds} s each, {large_rows} rows:");
    println!("  bare SELECT … LIMIT 50: {bare}");
    println!("  GET /v1/mentions:       {api}");
    println!(
        "  api / bare: {:.2}x throughput, p99 {:.1} ms vs {:.1} ms",
        api.per_second / bare.per_second,
        ms(api.p99),
        ms(bare.p99)
    );
}

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn settings() -> shared::config::Settings {
    let env: HashMap<String, String> = [("SOCIAL_MEDIA_API_URL", "http://127.0.0.1:9/api")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    shared::config::load_from(env).expect("settings")
}

async fn serve(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = router.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// The baseline: one indexed query, rows as JSON.
async fn bare_list(State(db): State<DatabaseConnection>) -> Json<Vec<serde_json::Value>> {
    let rows = mentions::Entity::find()
        .order_by_desc(mentions::Column::CreatedAt)
        .order_by_desc(mentions::Column::Id)
        .limit(50)
        .into_json()
        .all(&db)
        .await
        .expect("bare query");
    Json(rows)
}

async fn token(db: &DatabaseConnection) -> String {
    let user = shared::db::users::insert(
        db,
        shared::db::users::NewUser {
            email: "bench@example.com",
            name: "Bench",
            role: Role::Agent,
            password_hash: "unused".to_owned(),
        },
    )
    .await
    .expect("user");
    let (token, hash) = api::auth::new_token();
    shared::db::tokens::insert(
        db,
        user.id,
        &hash,
        chrono::Utc::now() + chrono::Duration::days(1),
    )
    .await
    .expect("token");
    token
}

/// Mentions `from..=to`, one second apart, spread over platforms, then `VACUUM ANALYZE`, so
/// that autovacuum does not compete with the measurements that follow (steady state).
async fn insert_mentions(db: &DatabaseConnection, from: i64, to: i64) {
    db.execute_unprepared(&format!(
        "INSERT INTO mentions (type, platform, content, platform_ref, provider_post_ref, \
             author_id, author_name, author_handle, posted_at, raw, created_at, updated_at) \
         SELECT 'comment', \
             (ARRAY['bluesky','facebook','instagram','linkedin','threads','tiktok','twitter','youtube'])[1 + n % 8], \
             'Comment number ' || n || ' about order ' || (n % 997) || ', is it shipped yet?', \
             'ref-' || n, 'post-' || (n / 50), 'u' || (n % 5000), 'Author ' || (n % 5000), \
             '@author' || (n % 5000), now() - n * interval '1 second', \
             jsonb_build_object('id', 'ref-' || n, 'comment', 'Comment number ' || n), \
             now() - n * interval '1 second', now() - n * interval '1 second' \
         FROM generate_series({from}, {to}) AS n"
    ))
    .await
    .expect("insert mentions");
    db.execute_unprepared("VACUUM (ANALYZE) mentions")
        .await
        .expect("vacuum");
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(CONNECTIONS)
        .build()
        .expect("client")
}

async fn deep_page_url(client: &reqwest::Client, url: &str, token: &str, pages: usize) -> String {
    let mut next = url.to_owned();
    for _ in 0..pages {
        let page: serde_json::Value = client
            .get(&next)
            .bearer_auth(token)
            .send()
            .await
            .expect("page")
            .json()
            .await
            .expect("json");
        let cursor = page["meta"]["nextCursor"].as_str().expect("more pages");
        next = format!("{url}&cursor={cursor}");
    }
    next
}

/// Latency figures of a series of requests.
struct Figures {
    count: usize,
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  ({} requests)",
            self.per_second,
            ms(self.p50),
            ms(self.p99),
            self.count
        )
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn figures(mut latencies: Vec<Duration>, elapsed: Duration) -> Figures {
    latencies.sort();
    let at = |q: f64| {
        let i = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i]
    };
    Figures {
        count: latencies.len(),
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
    }
}

async fn sequential(client: &reqwest::Client, url: &str, token: &str) -> Figures {
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(SINGLE_REQUESTS);
    for _ in 0..SINGLE_REQUESTS {
        let t = Instant::now();
        let response = client
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .expect("send");
        assert!(response.status().is_success(), "{}", response.status());
        response.bytes().await.expect("body");
        latencies.push(t.elapsed());
    }
    figures(latencies, started.elapsed())
}

/// One worker per client (each keeps one connection), requesting `url` back to back.
async fn load(
    clients: &[reqwest::Client],
    url: &str,
    token: Option<&str>,
    run: Duration,
) -> Figures {
    let url: Arc<str> = url.into();
    let token: Option<Arc<str>> = token.map(Into::into);
    let started = Instant::now();
    let deadline = started + run;
    let workers: Vec<_> = clients
        .iter()
        .map(|client| {
            let client = client.clone();
            let url = url.clone();
            let token = token.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let mut request = client.get(&*url);
                    if let Some(token) = &token {
                        request = request.bearer_auth(&**token);
                    }
                    let response = request.send().await.expect("send");
                    assert!(response.status().is_success(), "{}", response.status());
                    response.bytes().await.expect("body");
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
