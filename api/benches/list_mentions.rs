//! Benchmark: `GET /v1/mentions?limit=50` against a bare axum handler doing one indexed
//! `SELECT … ORDER BY created_at DESC, id DESC LIMIT 50` on the same database, in the same run;
//! the same route again while 200 clients hold live event streams open; and the web inbox's
//! first useful paint in a real browser, at 10,000 and at 1,000,000 mentions.
//!
//! 1. A fresh database (from the migrated template) gets 10,000 mentions; the list is timed
//!    one request at a time (first page and a deep page), and the inbox's first useful paint
//!    is measured (see 5).
//! 2. It grows to 1,000,000 mentions (one seeding for everything after); the same
//!    single-request timings and the paint are taken again (keyset pagination and the
//!    `(created_at, id)` indexes keep them flat).
//! 3. With 1,000,000 rows, 64 keep-alive HTTP/1.1 connections over loopback drive the bare
//!    handler and then the API route (with a real bearer token, the rate limit raised out of
//!    the way), for a fixed time each: requests/s, p50 and p99, and the ratios. The load
//!    generator is lean (one task per connection, requests back to back, like wrk) and runs
//!    on its own runtime; the servers run on another, with 2 worker threads and a database
//!    pool built as the api binary builds it (and its event feed started, as `api::serve`
//!    does), as a separate api process would. It also prints the mean latency that 64
//!    always-busy connections imply (Little's law).
//! 4. Live updates under load: 200 clients open `GET /v1/events` (each with a real bearer
//!    token, each on its own connection, reading and parsing its stream continuously) on a
//!    third runtime of one thread, and a writer there assigns (then unassigns) a mention every
//!    100 ms through `PUT /v1/mentions/{id}`, so every change reaches all 200 streams. The
//!    same 64 connections then load `GET /v1/mentions?limit=50` exactly as in 3: throughput
//!    and p99 with the clients against 3's figures without them, the ratios, and how many
//!    events the clients received while it ran (about 200 per change when they are all live).
//!    Then the API's figures at 8 connections, below saturation (no clients).
//! 5. First useful paint: `node api/tests/browser/bench-paint.mjs` (playwright-core from that
//!    folder, Debian's headless Chromium) signs in once through the page's form, then opens
//!    `/#/inbox` in fresh browser contexts with the session already stored, and times, in the
//!    page, navigation start → the animation frame in which the first mention row of the inbox
//!    table is visible; the median of `BENCH_PAINT_RUNS` navigations (after one unmeasured)
//!    for each size, and the ratio 1,000,000 / 10,000. Without node, Chromium or the node
//!    modules (`scripts/browser-deps` installs them), or if the page shows no row, the bench
//!    says why and skips only this part.
//!
//! `cargo bench -p api --bench list_mentions`; `BENCH_SECONDS` (default 8) sets each load
//! phase's length, `BENCH_ROWS` (default 1000000) the large table size, `BENCH_PAINT_RUNS`
//! (default 5) the measured navigations per size. Only 127.0.0.1; every phase has a fixed
//! length or a deadline.

mod support;

use axum::extract::State;
use axum::http::{HeaderValue, Request, StatusCode, Uri, header};
use axum::routing::get;
use axum::{Json, Router};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, QueryOrder, QuerySelect};
use shared::db::entities::mentions;
use shared::testing::TestDb;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use support::{Figures, figures, ms, serve};

const CONNECTIONS: usize = 64;

/// A lighter load, below saturation, for the route's own latency.
const FEWER_CONNECTIONS: usize = 8;
const SMALL_ROWS: i64 = 10_000;
const SINGLE_REQUESTS: usize = 300;

/// Clients holding `GET /v1/events` open in phase 4, and how often the writer changes a mention.
const SSE_CLIENTS: usize = 200;
const WRITE_EVERY: Duration = Duration::from_millis(100);
/// How long the event streams may take to open (each first sends `ready`).
const STREAMS_OPEN_WITHIN: Duration = Duration::from_secs(30);

/// The user the bench acts as: a token for the API, and a password for the page's sign-in.
const EMAIL: &str = "bench@example.com";
const PASSWORD: &str = "bench-password-not-secret";
/// The newest mention's content starts with this (see `insert_mentions`): the first row.
const NEWEST_CONTENT: &str = "Comment number 1 about";
/// The paint script's deadline as a whole (it has its own per navigation).
const PAINT_WITHIN: Duration = Duration::from_secs(300);

#[tokio::main]
async fn main() {
    let seconds: u64 = env_number("BENCH_SECONDS", 8);
    let large_rows: i64 = env_number("BENCH_ROWS", 1_000_000);
    let paint_runs: usize = env_number("BENCH_PAINT_RUNS", 5);
    let db = TestDb::new().await;
    let conn = db.conn().clone();

    // The servers run on a runtime of their own, as the api process would (this one drives
    // the load, like a separate wrk process), with a pool as the api binary configures it.
    let server = support::server_runtime();
    let (api_addr, bare_addr) = server
        .spawn(start_servers(support::settings(&[(
            "DATABASE_URL",
            db.url(),
        )])))
        .await
        .expect("servers");
    let user = BenchUser::insert(&conn).await;
    let token = user.token.as_str();

    let started = Instant::now();
    insert_mentions(&conn, 1, SMALL_ROWS).await;
    println!(
        "inserted {SMALL_ROWS} mentions in {:.1?}",
        started.elapsed()
    );
    let client = client();
    let api_url = format!("http://{api_addr}/v1/mentions?limit=50");
    let small_first = sequential(&client, &api_url, token).await;
    let small_deep = sequential(
        &client,
        &deep_page_url(&client, &api_url, token, 100).await,
        token,
    )
    .await;
    let small_paint = paint(api_addr, paint_runs).await;

    let started = Instant::now();
    insert_mentions(&conn, SMALL_ROWS + 1, large_rows).await;
    println!("grew to {large_rows} mentions in {:.1?}", started.elapsed());
    let large_first = sequential(&client, &api_url, token).await;
    let large_deep = sequential(
        &client,
        &deep_page_url(&client, &api_url, token, 100).await,
        token,
    )
    .await;
    let large_paint = paint(api_addr, paint_runs).await;

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

    println!();
    println!(
        "first useful paint of /#/inbox, signed in (headless Chromium, fresh context each; \
         navigation start → frame with the first mention row visible; median of {paint_runs}):"
    );
    for (rows, paint) in [(SMALL_ROWS, &small_paint), (large_rows, &large_paint)] {
        match paint {
            Ok(paint) => println!("  {rows:>9} rows: {paint}"),
            Err(why) => println!("  {rows:>9} rows: skipped: {why}"),
        }
    }
    if let (Ok(small), Ok(large)) = (&small_paint, &large_paint) {
        println!(
            "  ratio {large_rows} / {SMALL_ROWS} rows: {:.2}x",
            large.median / small.median
        );
    }

    let run = Duration::from_secs(seconds);
    // The load generator: plain HTTP/1.1 keep-alive connections, opened before any timing,
    // each driven by one task sending requests back to back (like wrk), so that it takes as
    // little of the shared CPU as it can.
    let bare_target = Target::new(bare_addr, "/bare", None);
    let api_target = Target::new(api_addr, "/v1/mentions?limit=50", Some(token));
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

    // The event-stream clients and the writer run on a runtime of their own (the browsers of
    // 200 agents, and whoever triages), beside the load generator's.
    let clients = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("sse-clients")
        .enable_all()
        .build()
        .expect("clients runtime");
    let live = Arc::new(LiveCounts::default());
    let streams: Vec<_> = (0..SSE_CLIENTS)
        .map(|_| clients.spawn(read_events(api_addr, token.to_owned(), live.clone())))
        .collect();
    let deadline = Instant::now() + STREAMS_OPEN_WITHIN;
    while live.ready() < SSE_CLIENTS {
        assert!(
            Instant::now() < deadline,
            "only {} of {SSE_CLIENTS} event streams opened within {STREAMS_OPEN_WITHIN:?}",
            live.ready()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ids = first_page_ids(&client, &api_url, token).await;
    let writer = clients.spawn(assign_steadily(api_addr, user.clone(), ids, live.clone()));
    // Warm-up with the clients, as the runs without them had.
    load(&mut api_connections, &api_target, Duration::from_secs(2)).await;
    let before = live.snapshot();
    let with_clients = load(&mut api_connections, &api_target, run).await;
    let after = live.snapshot();
    writer.abort();
    streams.iter().for_each(tokio::task::JoinHandle::abort);
    clients.shutdown_background();
    let changes = after.written - before.written;
    let events = after.events - before.events;
    println!(
        "{CONNECTIONS} connections, {seconds} s, {large_rows} rows, with {SSE_CLIENTS} clients \
         on GET /v1/events and a mention changed every {} ms:",
        WRITE_EVERY.as_millis()
    );
    println!("  GET /v1/mentions:       {with_clients}");
    println!(
        "  with / without clients: {:.2}x throughput, {:.2}x p99 ({:.1} ms vs {:.1} ms)",
        with_clients.per_second / api.per_second,
        with_clients.p99.as_secs_f64() / api.p99.as_secs_f64(),
        ms(with_clients.p99),
        ms(api.p99)
    );
    println!(
        "  events received meanwhile: {events} mention events by the {SSE_CLIENTS} clients \
         ({} streams open) from {changes} changes ({} refused), {:.1} per change",
        live.ready(),
        after.refused - before.refused,
        events as f64 / changes.max(1) as f64
    );

    let mut fewer: Vec<Connection> = api_connections.drain(..FEWER_CONNECTIONS).collect();
    let api_fewer = load(&mut fewer, &api_target, run).await;
    println!("{FEWER_CONNECTIONS} connections, {seconds} s:");
    println!("  GET /v1/mentions:       {api_fewer}");
    server.shutdown_background();
}

/// The API (per-token rate limit raised out of the way, event feed running) and the bare
/// handler, each on a pool built like the api binary's; their addresses.
async fn start_servers(settings: shared::config::Settings) -> (SocketAddr, SocketAddr) {
    let (state, pool) = support::api_state(&settings).await;
    state.spawn_event_feed();
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

/// The agent the bench acts as ([`EMAIL`], [`PASSWORD`]) and a token of theirs.
#[derive(Clone)]
struct BenchUser {
    id: String,
    token: String,
}

impl BenchUser {
    async fn insert(db: &DatabaseConnection) -> BenchUser {
        let user = shared::db::users::insert(
            db,
            shared::db::users::NewUser {
                email: EMAIL,
                name: "Bench Agent",
                role: shared::domain::Role::Agent,
                password_hash: api::auth::hash_password(PASSWORD).expect("hash"),
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
        BenchUser {
            id: user.id.to_string(),
            token,
        }
    }
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

async fn get_page(client: &reqwest::Client, url: &str, token: &str) -> serde_json::Value {
    client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("page")
        .json()
        .await
        .expect("json")
}

async fn deep_page_url(client: &reqwest::Client, url: &str, token: &str, pages: usize) -> String {
    let mut next = url.to_owned();
    for _ in 0..pages {
        let page = get_page(client, &next, token).await;
        let cursor = page["meta"]["nextCursor"].as_str().expect("more pages");
        next = format!("{url}&cursor={cursor}");
    }
    next
}

async fn first_page_ids(client: &reqwest::Client, url: &str, token: &str) -> Vec<String> {
    let page = get_page(client, url, token).await;
    page["result"]
        .as_array()
        .expect("mentions")
        .iter()
        .map(|m| m["id"].as_str().expect("id").to_owned())
        .collect()
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

/// One keep-alive connection to `addr`, driven by a task on the current runtime.
async fn connect_one(addr: SocketAddr) -> Connection {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    sender
}

/// `CONNECTIONS` keep-alive connections to `addr`.
async fn connect(addr: SocketAddr) -> Vec<Connection> {
    let mut connections = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        connections.push(connect_one(addr).await);
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

/// What the event-stream clients and the writer have done so far.
#[derive(Default)]
struct LiveCounts {
    /// Streams that received their first event (`ready`).
    ready: AtomicU64,
    /// `mention` events received, all streams together.
    events: AtomicU64,
    /// Changes the writer made, and those the API refused.
    written: AtomicU64,
    refused: AtomicU64,
}

#[derive(Clone, Copy)]
struct LiveSnapshot {
    events: u64,
    written: u64,
    refused: u64,
}

impl LiveCounts {
    fn ready(&self) -> usize {
        usize::try_from(self.ready.load(Ordering::Relaxed)).unwrap_or(usize::MAX)
    }

    fn snapshot(&self) -> LiveSnapshot {
        LiveSnapshot {
            events: self.events.load(Ordering::Relaxed),
            written: self.written.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }
}

/// One client of `GET /v1/events`: reads its stream as it comes, line by line, and parses
/// every event's data as a page would, until the stream ends or the task is aborted.
async fn read_events(addr: SocketAddr, token: String, counts: Arc<LiveCounts>) {
    let mut sender = connect_one(addr).await;
    let target = Target::new(addr, "/v1/events", Some(&token));
    sender.ready().await.expect("events connection");
    let response = sender.send_request(target.request()).await.expect("events");
    assert_eq!(response.status(), StatusCode::OK, "GET /v1/events");
    let mut body = response.into_body();
    let mut pending: Vec<u8> = Vec::new();
    let mut event = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(chunk) = frame.expect("event stream").into_data() else {
            continue;
        };
        pending.extend_from_slice(&chunk);
        let mut start = 0;
        while let Some(end) = pending[start..].iter().position(|&b| b == b'\n') {
            let line = &pending[start..start + end];
            start += end + 1;
            if let Some(name) = line.strip_prefix(b"event:") {
                event = name.trim_ascii().to_vec();
            } else if let Some(data) = line.strip_prefix(b"data:") {
                let data: serde_json::Value =
                    serde_json::from_slice(data.trim_ascii()).expect("event data is JSON");
                if event == b"ready" {
                    counts.ready.fetch_add(1, Ordering::Relaxed);
                } else if event == b"mention" && data["seq"].is_i64() {
                    counts.events.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        pending.drain(..start);
    }
}

/// Every [`WRITE_EVERY`], assigns one of `ids` to the user through the API, cycling through
/// them, and unassigns them on the next round; until aborted.
async fn assign_steadily(
    addr: SocketAddr,
    user: BenchUser,
    ids: Vec<String>,
    counts: Arc<LiveCounts>,
) {
    let client = client();
    let mut tick = tokio::time::interval(WRITE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for (i, id) in ids.iter().cycle().enumerate() {
        tick.tick().await;
        let assignee = if (i / ids.len()).is_multiple_of(2) {
            serde_json::Value::from(user.id.as_str())
        } else {
            serde_json::Value::Null
        };
        let changed = client
            .put(format!("http://{addr}/v1/mentions/{id}"))
            .bearer_auth(&user.token)
            .json(&serde_json::json!({ "userId": assignee }))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        let count = if changed {
            &counts.written
        } else {
            &counts.refused
        };
        count.fetch_add(1, Ordering::Relaxed);
    }
}

/// First useful paint of the inbox over several navigations, in milliseconds.
struct Paint {
    runs: Vec<f64>,
    median: f64,
    /// When the page's `GET /v1/mentions` had been answered (median, same origin of time).
    listed: Option<f64>,
}

impl std::fmt::Display for Paint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let runs: Vec<String> = self.runs.iter().map(|r| format!("{r:.0}")).collect();
        write!(f, "{:>6.0} ms (runs {} ms", self.median, runs.join(", "))?;
        if let Some(listed) = self.listed {
            write!(f, "; its GET /v1/mentions answered at {listed:.0} ms")?;
        }
        write!(f, ")")
    }
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

/// Runs `api/tests/browser/bench-paint.mjs` against the API at `addr` (see the module
/// documentation, phase 5); why not, when it cannot be measured.
async fn paint(addr: SocketAddr, runs: usize) -> Result<Paint, String> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    if !folder.join("node_modules/playwright-core").is_dir() {
        return Err(
            "api/tests/browser/node_modules has no playwright-core (run scripts/browser-deps)"
                .to_owned(),
        );
    }
    let child = tokio::process::Command::new("node")
        .arg("bench-paint.mjs")
        .current_dir(&folder)
        .env("BASE_URL", format!("http://{addr}"))
        .env("BENCH_EMAIL", EMAIL)
        .env("BENCH_PASSWORD", PASSWORD)
        .env("PAINT_RUNS", runs.to_string())
        .env("EXPECT_TEXT", NEWEST_CONTENT)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run node: {e}"))?;
    let output = tokio::time::timeout(PAINT_WITHIN, child.wait_with_output())
        .await
        .map_err(|_| format!("bench-paint.mjs took over {PAINT_WITHIN:?}"))?
        .map_err(|e| format!("bench-paint.mjs: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let Some(line) = stdout.lines().rev().find(|l| l.starts_with('{')) else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!(
            "bench-paint.mjs printed no result ({}): {}",
            output.status,
            stderr.lines().last().unwrap_or_default()
        ));
    };
    let result: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("bench-paint.mjs result: {e}"))?;
    if let Some(error) = result["error"].as_str() {
        return Err(error.to_owned());
    }
    let numbers = |key: &str| -> Vec<f64> {
        result[key]
            .as_array()
            .map(|a| a.iter().filter_map(serde_json::Value::as_f64).collect())
            .unwrap_or_default()
    };
    let paints = numbers("paintMs");
    Ok(Paint {
        median: median(paints.clone()).ok_or("bench-paint.mjs measured nothing")?,
        runs: paints,
        listed: median(numbers("listMs")),
    })
}
