//! The whole system as processes for end-to-end tests of the api crate (the `web` and `it`
//! binaries include this file): the simulator, api, ingestor and replier on a database and a
//! RabbitMQ vhost of their own, with fast polling, and an admin signed in over HTTP.

use serde_json::Value;
use shared::testing::{Process, TestBroker, TestDb, admin_token, free_port, sim_get, wait_http_ok};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const START_TIMEOUT: Duration = Duration::from_secs(30);
const INGEST_TIMEOUT: Duration = Duration::from_secs(60);
/// The admin's email.
pub const ADMIN_EMAIL: &str = "admin@example.com";
/// Every password of the stack's users.
pub const PASSWORD: &str = "a long enough password";

/// What differs between stacks.
#[derive(Debug, Clone, Default)]
pub struct Options<'a> {
    /// The simulator's arguments beyond its address (no rate limit unless they set one).
    pub sim_args: &'a [&'a str],
    /// Settings of every process beyond the stack's own (they win).
    pub env: &'a [(&'a str, &'a str)],
    /// Webhooks on: the api's own address as `PUBLIC_BASE_URL`, signed with this secret.
    pub webhook_secret: Option<&'a str>,
}

/// The running system.
pub struct Stack {
    pub db: TestDb,
    _broker: TestBroker,
    processes: Vec<(&'static str, Process)>,
    pub sim_base: String,
    pub api_base: String,
    pub http: reqwest::Client,
    /// The settings every process got.
    pub env: HashMap<String, String>,
    admin: String,
}

impl Stack {
    /// Starts everything and waits until the api answers.
    pub async fn start(options: Options<'_>) -> Stack {
        let (db, broker) = tokio::join!(TestDb::new(), TestBroker::new());
        let sim_addr = format!("127.0.0.1:{}", free_port());
        let mut args = vec!["--addr", sim_addr.as_str()];
        if !options.sim_args.contains(&"--rate-limit") {
            args.extend(["--rate-limit", "0"]);
        }
        args.extend(options.sim_args);
        let sim = Process::spawn("ayrshare-sim", &args, &HashMap::new());
        let sim_base = format!("http://{sim_addr}");
        let api_addr = format!("127.0.0.1:{}", free_port());
        let api_base = format!("http://{api_addr}");
        let mut env: HashMap<String, String> = [
            ("DATABASE_URL", db.url()),
            ("AMQP_URL", broker.url()),
            ("SOCIAL_MEDIA_API_URL", &format!("{sim_base}/api")),
            ("SOCIAL_MEDIA_API_KEY", "sim-key"),
            ("POLL_INTERVAL_SECONDS", "1"),
            ("RATE_BUDGET_REQUESTS", "100000"),
            ("PROVIDER_TIMEOUT_MS", "5000"),
            ("PROVIDER_RETRY_BASE_MS", "20"),
            ("PROVIDER_RETRY_CAP_MS", "200"),
            ("TASK_RETRY_BASE_SECONDS", "1"),
            ("TASK_RETRY_MAX_SECONDS", "2"),
            ("SWEEPER_INTERVAL_SECONDS", "1"),
            ("SHUTDOWN_GRACE_SECONDS", "2"),
            ("API_ADDR", &api_addr),
            ("RUST_LOG", "info"),
        ]
        .into_iter()
        .chain(options.env.iter().copied())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        if let Some(secret) = options.webhook_secret {
            env.insert("PUBLIC_BASE_URL".into(), api_base.clone());
            env.insert("WEBHOOK_SECRET".into(), secret.to_owned());
        }
        let http = reqwest::Client::new();
        let mut processes = vec![("ayrshare-sim", sim)];
        wait_http_ok(&http, &format!("{sim_base}/_sim/stats"), START_TIMEOUT).await;
        for name in ["api", "ingestor", "replier"] {
            processes.push((name, Process::spawn(name, &[], &env)));
        }
        wait_http_ok(&http, &format!("{api_base}/healthz"), START_TIMEOUT).await;
        let admin = admin_token(&http, &api_base, "api", &env, (ADMIN_EMAIL, PASSWORD)).await;
        Stack {
            db,
            _broker: broker,
            processes,
            sim_base,
            api_base,
            http,
            env,
            admin,
        }
    }

    /// `method path` as the admin; the JSON answer (`null` if none).
    pub async fn api(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.api_base))
            .bearer_auth(&self.admin);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("api reachable");
        response.json().await.unwrap_or(Value::Null)
    }

    /// Waits (bounded) until every comment and direct message of the simulated world from
    /// someone else is an inbox mention; how many that is.
    pub async fn ingested(&self) -> usize {
        let mut theirs = 0;
        for kind in ["comments", "messages"] {
            let world = sim_get(&self.http, &self.sim_base, kind).await;
            theirs += world[kind]
                .as_array()
                .expect("items")
                .iter()
                .filter(|item| item["fromUs"] != true)
                .count();
        }
        let deadline = Instant::now() + INGEST_TIMEOUT;
        loop {
            let stored = self.scalar("SELECT count(*) FROM mentions").await;
            if stored as usize >= theirs {
                return theirs;
            }
            assert!(
                Instant::now() < deadline,
                "{stored} of {theirs} comments and messages ingested after {INGEST_TIMEOUT:?}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// One number, read as the services read.
    pub async fn scalar(&self, sql: &str) -> i64 {
        value(self.db.conn(), sql).await
    }

    /// One text value, read as the schema's owner (who may change any row).
    pub async fn owner_scalar(&self, sql: &str) -> String {
        value(self.db.owner_conn(), sql).await
    }

    /// Stops the api and workers (SIGTERM, then their grace) and gives each one's whole output.
    pub fn stop(self) -> Vec<(&'static str, String)> {
        let mut workers: Vec<_> = self
            .processes
            .into_iter()
            .filter(|(name, _)| *name != "ayrshare-sim")
            .collect();
        for (_, process) in &workers {
            process.terminate();
        }
        workers
            .iter_mut()
            .map(|(name, process)| {
                process.wait_exit(START_TIMEOUT);
                (*name, process.output())
            })
            .collect()
    }

    /// The last lines of every process.
    pub fn logs(&self) -> String {
        self.processes
            .iter()
            .map(|(name, p)| format!("--- {name}\n{}", p.tail(30)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The first column of the one row `sql` returns.
async fn value<T: sea_orm::TryGetable>(conn: &sea_orm::DatabaseConnection, sql: &str) -> T {
    use sea_orm::{ConnectionTrait, Statement};
    conn.query_one_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .expect("query")
        .expect("a row")
        .try_get_by_index(0)
        .expect("a value of that type")
}
