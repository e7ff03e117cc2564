//! Benchmark: `GET /v1/mentions?limit=50` against a bare axum handler doing one indexed
//! `SELECT … ORDER BY created_at DESC, id DESC LIMIT 50` on the same database, in the same run.
//!
//! 1. A fresh database (from the migrated template) gets 10,000 mentions; the list is timed
//!    one request at a time (first page and a deep page).
//! 2. It grows to 1,000,000 mentions; the same single-request timings are taken again (keyset
//!    pagination and the `(created_at, id)` indexes keep them flat).
//! 3. With 1,000,000 rows, 64 keep-alive HTTP/1.1 connections over loopback drive the bare
//!    handler and then the API route (with a real bearer token, the rate limit raised out of
//!    the way), for a fixed time each: requests/s, p50 and p99, and the ratios. The load
//!    generator is lean (one task per connection, requests back to back, like wrk) and runs
//!    on its own runtime; the servers run on another, with 2 worker threads and a database
//!    pool built as the api binary builds it, as a separate api process would. It also prints
//!    the mean latency that 64 always-busy connections imply (Little's law), then the API's
//!    figures at 8 connections, below saturation.
//!
//! `cargo bench -p api --bench list_mentions`; `BENCH_SECONDS` (default 8) sets each load
//! phase's length, `BENCH_ROWS` (default 1000000) the large table size. Only 127.0.0.1.

use api::AppState;
use api::rate_limit::RateLimit;
use axum::extract::State;
use axum::http::{HeaderValue, Request, Uri, header};
use axum::routing::get;
use axum::{Json, Router};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, QueryOrder, QuerySelect};
use shared::db::entities::mentions;
use shared::testing::TestDb;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

const CONNECTIONS: usize = 64;

/// A lighter load, below saturation, for the route's own latency.
const FEWER_CONNECTIONS: usize = 8;
const SMALL_ROWS: i64 = 10_000;
const SINGLE_REQUESTS: usize = 300;

/// Worker threads of the servers' runtime: one per core of a 2-core machine.
const SERVER_THREADS: usize = 2;

#[tokio::main]
async fn main() {
    let seconds: u64 = env_number("BENCH_SECONDS", 8);
    let large_rows: i64 = env_number("BENCH_ROWS", 1_000_000);
    let db = TestDb::new().await;
    let conn = db.conn().clone();

    // The servers run on a runtime of their own, as the api process would (this one drives
    // the load, like a separate wrk process), with a pool as the api binary configures it.
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(SERVER_THREADS)
        .thread_name("server")
        .enable_all()
        .build()
        .expect("server runtime");
    let (api_addr, bare_addr) = server
        .spawn(start_servers(settings(db.url())))
        .await
        .expect("servers");
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
    // The load generator: plain HTTP/1.1 keep-alive connections, opened before any timing,
    // each driven by one task sending requests back to back (like wrk), so that it takes as
    // little of the shared CPU as it can.
    let bare_target = Target::new(bare_addr, "/bare", None);
    let api_target = Target::new(api_addr, "/v1/mentions?limit=50", Some(&token));
    let mut bare_connections = connect(bare_addr).await;
    let mut api_connections = connect(api_addr).await;
    // Warm both up (connections, plans, caches) before measuring either.
    load(&mut bare_connections, &bare_target, Duration::from_secs(2)).await;
    load(&mut api_connections, &api_target, Duration::from_secs(2)).await;
    let bare = load(&mut bare_connections, &bare_target, run).await;
    let api = load(&mut api_connections, &api_target, run).await;
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
    // Little's law: with every connection always waiting, the mean latency is the number of
    // connections over the throughput; no p99 can be below it.
    println!(
        "  mean latency at {CONNECTIONS} busy connections = {CONNECTIONS} / throughput: \
         {:.1} ms (api), {:.1} ms (bare); p99 under 20 ms needs over {:.0} req/s",
        1000.0 * CONNECTIONS as f64 / api.per_second,
        1000.0 * CONNECTIONS as f64 / bare.per_second,
        CONNECTIONS as f64 / 0.020
    );
    let mut fewer: Vec<Connection> = api_connections.drain(..FEWER_CONNECTIONS).collect();
    let api_fewer = load(&mut fewer, &api_target, run).await;
    println!("{FEWER_CONNECTIONS} connections, {seconds} s:");
    println!("  GET /v1/mentions:       {api_fewer}");
    server.shutdown_background();
}

/// The API (per-token rate limit raised out of the way) and the bare handler, each on a pool
/// built like the api binary's; their addresses.
async fn start_servers(settings: shared::config::Settings) -> (SocketAddr, SocketAddr) {
    let pool = shared::process::database_pool(&settings)
        .await
        .expect("pool");
    let state = AppState::new(pool.clone(), &settings).with_rate_limit(RateLimit {
        per_second: 1_000_000,
        burst: 1_000_000,
    });
    let api = serve(api::router(state)).await;
    let bare = serve(
        Router::new()
            .route("/bare", get(bare_list))
            .with_state(pool),
    )
    .await;
    (api, bare)
}

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn settings(database_url: &str) -> shared::config::Settings {
    let env: HashMap<String, String> = [
        ("SOCIAL_MEDIA_API_URL", "http://127.0.0.1:9/api"),
        ("DATABASE_URL", database_url),
    ]
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
    let user = shared::testing::insert_agent(db, "bench@example.com")
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

/// What the load generator requests.
#[derive(Clone)]
struct Target {
    host: HeaderValue,
    path: Uri,
    authorization: Option<HeaderValue>,
}

impl Target {
    fn new(addr: SocketAddr, path: &str, token: Option<&str>) -> Self {
        Target {
            host: HeaderValue::from_str(&addr.to_string()).expect("host"),
            path: path.parse().expect("path"),
            authorization: token
                .map(|t| HeaderValue::from_str(&format!("Bearer {t}")).expect("token")),
        }
    }

    fn request(&self) -> Request<Empty<Bytes>> {
        let mut request = Request::get(self.path.clone())
            .header(header::HOST, self.host.clone())
            .body(Empty::new())
            .expect("request");
        if let Some(authorization) = &self.authorization {
            request
                .headers_mut()
                .insert(header::AUTHORIZATION, authorization.clone());
        }
        request
    }
}

type Connection = http1::SendRequest<Empty<Bytes>>;

/// `CONNECTIONS` keep-alive connections to `addr`.
async fn connect(addr: SocketAddr) -> Vec<Connection> {
    let mut connections = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(connection);
        connections.push(sender);
    }
    connections
}

/// One task per connection, requesting `target` back to back until `run` is over.
async fn load(connections: &mut Vec<Connection>, target: &Target, run: Duration) -> Figures {
    let started = Instant::now();
    let deadline = started + run;
    let workers: Vec<_> = connections
        .drain(..)
        .map(|mut sender| {
            let target = target.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    sender.ready().await.expect("connection");
                    let response = sender.send_request(target.request()).await.expect("send");
                    assert!(response.status().is_success(), "{}", response.status());
                    let body = response.into_body().collect().await.expect("body");
                    assert!(!body.to_bytes().is_empty());
                    latencies.push(t.elapsed());
                }
                (sender, latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for worker in workers {
        let (sender, measured) = worker.await.expect("worker");
        connections.push(sender);
        latencies.extend(measured);
    }
    figures(latencies, started.elapsed())
}
