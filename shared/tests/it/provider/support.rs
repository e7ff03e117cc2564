//! What the provider tests share: a simulator in-process, settings with test-sized timings,
//! chains built like the workers build them, the simulator's control surface, captured logs
//! and a header-adding proxy.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, Response, StatusCode};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use secrecy::SecretString;
use serde_json::{Value, json};
use shared::config::{ProviderSettings, ResilienceSettings, Settings};
use shared::domain::Platform;
use shared::provider::Ayrshare;
use shared::provider::{Client, HistoryQuery, ProviderKey};
use shared::testing::TestDb;
use simulator::{SimConfig, Simulator};
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use tracing::subscriber::DefaultGuard;
use tracing_subscriber::fmt::MakeWriter;

/// The process name the tests' chains write audit rows as.
pub const PROCESS: &str = "provider-test";

/// A simulator on a free port, without rate limit unless `config` sets one.
pub async fn simulator(config: SimConfig) -> Simulator {
    simulator::spawn(config).await.expect("start the simulator")
}

/// The simulator's defaults, on a free port, with the rate limit off.
pub fn sim_config() -> SimConfig {
    SimConfig {
        rate_limit: 0,
        ..SimConfig::on_free_port()
    }
}

/// A simulator with [`sim_config`] and a fresh database: what most tests start from.
pub async fn start() -> (Simulator, TestDb) {
    let sim = simulator(sim_config()).await;
    let db = TestDb::new().await;
    (sim, db)
}

/// Settings loaded like a process loads them, from `env` on top of the defaults, with the
/// provider at `api_url`.
pub fn settings(api_url: &str, env: &[(&str, &str)]) -> Settings {
    let mut vars: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    vars.insert("SOCIAL_MEDIA_API_URL".to_owned(), api_url.to_owned());
    shared::config::load_from(vars).expect("valid test settings")
}

/// Fast timings for tests: 2 s timeout, 4 attempts from 50 ms up to 2 s, a breaker that needs
/// 4 calls at 50% failures and opens for 2 s, growing ×2, 2 probe permits, a budget too large
/// to pace the calls of a test; `env` on top.
pub fn resilience(api_url: &str, env: &[(&str, &str)]) -> ResilienceSettings {
    let mut all = vec![
        ("PROVIDER_TIMEOUT_MS", "2000"),
        ("PROVIDER_RETRY_MAX_ATTEMPTS", "4"),
        ("PROVIDER_RETRY_BASE_MS", "50"),
        ("PROVIDER_RETRY_CAP_MS", "3000"),
        ("BREAKER_WINDOW_SECONDS", "60"),
        ("BREAKER_MIN_CALLS", "4"),
        ("BREAKER_FAILURE_RATE_PERCENT", "50"),
        ("BREAKER_OPEN_SECONDS", "2"),
        ("BREAKER_OPEN_GROWTH", "2"),
        ("BREAKER_OPEN_MAX_SECONDS", "60"),
        ("BREAKER_PROBE_PERMITS", "2"),
        ("RATE_BUDGET_REQUESTS", "1000000"),
    ];
    all.extend_from_slice(env);
    settings(api_url, &all).resilience
}

/// A client of the provider at `api_url` with `api_key` (and a profile key, if given).
pub fn client(api_url: &str, api_key: &str, profile_key: Option<&str>, timeout_ms: u64) -> Client {
    let provider = ProviderSettings {
        url: api_url.parse().expect("provider URL"),
        api_key: SecretString::from(api_key.to_owned()),
        profile_key: profile_key.map(|k| SecretString::from(k.to_owned())),
    };
    Client::new(&provider, std::time::Duration::from_millis(timeout_ms)).expect("client")
}

/// The operations for `platform` against `sim`, its breaker and budget in `db`.
pub fn ayrshare(
    sim: &Simulator,
    db: &DatabaseConnection,
    settings: &ResilienceSettings,
    platform: Platform,
) -> Ayrshare {
    ayrshare_at(&sim.api_url(), sim.api_key(), db, settings, platform)
}

/// The operations for `platform` against `sim` with the default test timings of [`resilience`].
pub fn default_ayrshare(sim: &Simulator, db: &DatabaseConnection, platform: Platform) -> Ayrshare {
    ayrshare(sim, db, &resilience(&sim.api_url(), &[]), platform)
}

/// The operations for `platform` reaching `sim` through a [`retry_after_proxy`] that adds
/// `Retry-After: <seconds>` to its 429s.
pub async fn ayrshare_behind_retry_after_proxy(
    sim: &Simulator,
    db: &DatabaseConnection,
    settings: &ResilienceSettings,
    seconds: u32,
    platform: Platform,
) -> Ayrshare {
    let proxy = retry_after_proxy(sim.base_url(), seconds).await;
    ayrshare_at(
        &format!("{proxy}/api"),
        sim.api_key(),
        db,
        settings,
        platform,
    )
}

/// The operations for `platform` against the provider at `api_url`.
pub fn ayrshare_at(
    api_url: &str,
    api_key: &str,
    db: &DatabaseConnection,
    settings: &ResilienceSettings,
    platform: Platform,
) -> Ayrshare {
    let timeout = settings.request_timeout.as_millis() as u64;
    Ayrshare::new(
        ProviderKey::platform(platform),
        client(api_url, api_key, None, timeout),
        db.clone(),
        settings,
        PROCESS,
    )
}

/// Replaces the simulator's fault set of the primary profile.
pub async fn set_faults(sim: &Simulator, faults: Value) {
    set_profile_faults(sim, "", faults).await;
}

/// Replaces the simulator's fault set of the profile whose Profile-Key is `profile`.
pub async fn set_profile_faults(sim: &Simulator, profile: &str, faults: Value) {
    let status = reqwest::Client::new()
        .post(format!("{}/_sim/faults", sim.base_url()))
        .query(&[("profile", profile)])
        .json(&faults)
        .send()
        .await
        .expect("POST /_sim/faults")
        .status();
    assert!(status.is_success(), "fault set refused: {status}");
}

/// Posts of the last 30 days, at most `limit` of them.
pub const fn last_30_days(limit: Option<u32>) -> HistoryQuery {
    HistoryQuery {
        last_days: 30,
        limit,
    }
}

/// A top-level comment of `platform` in the simulator's world: its social comment ID.
pub async fn some_comment(sim: &Simulator, platform: &str) -> String {
    let comments = control(sim, "comments").await;
    comments["comments"]
        .as_array()
        .expect("comments")
        .iter()
        .find(|c| c["platform"] == platform && c["parentId"].is_null())
        .and_then(|c| c["commentId"].as_str())
        .expect("a comment")
        .to_owned()
}

/// `GET /_sim/<path>` as JSON.
pub async fn control(sim: &Simulator, path: &str) -> Value {
    reqwest::get(format!("{}/_sim/{path}", sim.base_url()))
        .await
        .expect("GET /_sim")
        .json()
        .await
        .expect("JSON")
}

/// Requests the simulator counted for `endpoint` (all platforms), by status: `None` for all.
pub async fn requests(sim: &Simulator, endpoint: &str, status: Option<u64>) -> u64 {
    let stats = control(sim, "stats").await;
    stats["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .filter(|r| r["endpoint"] == endpoint)
        .filter(|r| status.is_none_or(|s| r["status"] == s))
        .map(|r| r["count"].as_u64().expect("count"))
        .sum()
}

/// Audit rows of the breaker `key`, oldest first: (actor, action, payload).
pub async fn breaker_audit(db: &DatabaseConnection, key: &str) -> Vec<(String, String, Value)> {
    db.query_all_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT actor, action, payload FROM audit_log \
         WHERE entity_type = 'circuit_breaker' AND entity_id = $1 ORDER BY id",
        [key.into()],
    ))
    .await
    .expect("read audit_log")
    .iter()
    .map(|row| {
        (
            row.try_get("", "actor").expect("actor"),
            row.try_get("", "action").expect("action"),
            row.try_get("", "payload").expect("payload"),
        )
    })
    .collect()
}

/// The stored state of breaker `key`.
pub async fn breaker_state(db: &DatabaseConnection, key: &str) -> String {
    shared::resilience::statuses(db)
        .await
        .expect("breaker statuses")
        .into_iter()
        .find(|b| b.key == key)
        .map_or_else(|| "closed".to_owned(), |b| b.state.as_str().to_owned())
}

/// Everything logged (as JSON lines) while the guard lives, on this thread.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

/// Writes into [`Logs`].
pub struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Logs {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LogWriter(self.0.clone())
    }
}

impl Logs {
    /// Captures this thread's logs (a `#[tokio::test]` runs everything on it) as JSON.
    pub fn capture() -> (Logs, DefaultGuard) {
        let logs = Logs::default();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(logs.clone())
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        (logs, guard)
    }

    /// Everything, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log buffer")).into_owned()
    }

    /// The events whose message is `message`.
    pub fn events(&self, message: &str) -> Vec<Value> {
        self.text()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|event| event["message"] == message)
            .collect()
    }
}

/// A proxy in front of `target` (a base URL) that adds `Retry-After: <seconds>` to 429
/// answers: the simulator does not send that header. Returns the proxy's base URL.
pub async fn retry_after_proxy(target: String, seconds: u32) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind proxy");
    let addr = listener.local_addr().expect("proxy address");
    let state = Arc::new((reqwest::Client::new(), target, seconds));
    let app = axum::Router::new().fallback(forward).with_state(state);
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("proxy server");
    });
    format!("http://{addr}")
}

async fn forward(
    State(state): State<Arc<(reqwest::Client, String, u32)>>,
    request: axum::extract::Request,
) -> Response<Body> {
    let (client, target, seconds) = &*state;
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .expect("request body");
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut outgoing = client.request(parts.method, format!("{target}{path}"));
    for (name, value) in &parts.headers {
        if name != "host" {
            outgoing = outgoing.header(name, value);
        }
    }
    let answer = outgoing.body(body).send().await.expect("forward");
    let status = answer.status();
    let mut response = Response::builder().status(status);
    for (name, value) in answer.headers() {
        if name != "content-length" && name != "transfer-encoding" {
            response = response.header(name, value);
        }
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        response = response.header("retry-after", HeaderValue::from(*seconds));
    }
    let bytes = answer.bytes().await.expect("answer body");
    response.body(Body::from(bytes)).expect("response")
}

/// A JSON rule answering `status` on `endpoint` for the next `count` requests.
pub fn status_fault(endpoint: &str, status: u16, count: u64) -> Value {
    json!({"rules": [{"endpoint": endpoint, "fault": "status", "status": status, "count": count}]})
}

/// A JSON rule answering `status` on `endpoint` to every request, until replaced.
pub fn persistent_status_fault(endpoint: &str, status: u16) -> Value {
    json!({"rules": [{"endpoint": endpoint, "fault": "status", "status": status}]})
}
