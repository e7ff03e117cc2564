//! The system under test: the release binaries, their settings, and the handles the chaos
//! and the checks use (HTTP bases, the token, a database pool).
//!
//! The settings shorten every clock the protocol has, so that a few minutes exercise it:
//! provider timeout 3 s, read cache window 30 s (the simulator's cache is 30 s), undecided
//! limit 45 s, leases 10 s, retries capped at 15 s, breakers open 5–20 s, the sweeper every
//! 2 s republishing after 10 s, and no rate limit at either end (the budget is not what
//! this run is about).

use crate::Infra;
use migrations::APP_ROLE;
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use shared::testing::{
    PgCluster, Process, RabbitNode, admin_token, bin_path, free_port, wait_http_ok,
};
use std::collections::HashMap;
use std::time::Duration;

/// The platforms of the run: three with direct messages, one without.
pub const PLATFORMS: &str = "facebook,instagram,twitter,youtube";
/// The packages of the binaries the run starts, and the binaries.
const PACKAGES: [&str; 5] = ["api", "ingestor", "replier", "simulator", "migrations"];
const BINARIES: [&str; 5] = ["api", "ingestor", "replier", "ayrshare-sim", "migrations"];
const START_TIMEOUT: Duration = Duration::from_secs(60);
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);
const ADMIN: (&str, &str) = ("chaos-agent@example.com", "chaos-agent-password");
/// Workers of each kind.
const WORKERS_PER_KIND: usize = 2;

/// `$CARGO build --release --bins -p …` of the binaries the run starts (`cargo run` sets
/// `CARGO`), so they are never older than their sources.
pub fn build_binaries() -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = std::process::Command::new(cargo);
    command.args(["build", "--release", "--bins"]);
    for package in PACKAGES {
        command.args(["-p", package]);
    }
    let status = command
        .status()
        .map_err(|e| format!("cannot run cargo build: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo build of {PACKAGES:?} failed: {status}"))
    }
}

/// Processes first: they are killed before the pool closes and the services go.
pub struct Stack {
    pub processes: Processes,
    pub endpoints: Endpoints,
    pub infra: Infra,
}

/// How the chaos and the checks reach the system.
pub struct Endpoints {
    pub http: reqwest::Client,
    pub sim_base: String,
    pub api_base: String,
    pub token: String,
    /// A small pool on the service's database as its owner (it reconnects after a restart).
    pub db: DatabaseConnection,
}

impl Stack {
    /// Starts the cluster and the node, migrates, starts every process and signs in; panics
    /// with the reason (and the output of the process concerned) if any of it fails.
    pub async fn start() -> Stack {
        for name in BINARIES {
            println!("chaos: {}", bin_path(name).display());
        }
        let (db, broker) = tokio::join!(PgCluster::start(), RabbitNode::start());
        println!(
            "chaos: PostgreSQL cluster {} and RabbitMQ node {}",
            db.name(),
            broker.name()
        );
        let infra = Infra { db, broker };
        // The migrations run as the owner; the services sign in as the role they create.
        let owner_url = infra.db.url("social_messages");
        let database_url = owner_url.replacen("postgres@", &format!("{APP_ROLE}@"), 1);
        let sim_addr = format!("127.0.0.1:{}", free_port());
        let api_addr = format!("127.0.0.1:{}", free_port());
        let env = service_env(&database_url, &infra.broker.url(), &sim_addr, &api_addr);

        let mut migrate_env = env.clone();
        migrate_env.insert("MIGRATION_DATABASE_URL".to_owned(), owner_url.clone());
        let mut migrate = Process::spawn("migrations", &["up"], &migrate_env);
        let migrated = migrate.wait_exit(START_TIMEOUT);
        assert!(
            migrated.success(),
            "migrations up failed:\n{}",
            migrate.output()
        );

        let http = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .build()
            .expect("http client");
        let sim = Process::spawn("ayrshare-sim", &[], &sim_env(&sim_addr));
        let (sim_base, api_base) = (format!("http://{sim_addr}"), format!("http://{api_addr}"));
        wait_http_ok(&http, &format!("{sim_base}/_sim/stats"), START_TIMEOUT).await;
        let mut processes = Processes {
            sim,
            api: Slot::start("api", "api", &env),
            workers: (1..=WORKERS_PER_KIND)
                .flat_map(|n| ["ingestor", "replier"].map(|bin| (bin, n)))
                .map(|(bin, n)| Slot::start(&format!("{bin}-{n}"), bin, &env))
                .collect(),
            env,
            unexpected: Vec::new(),
        };
        // Timed out here, before `wait_http_ok` would panic, to show why.
        let readyz = format!("{api_base}/readyz");
        let ready = wait_http_ok(&http, &readyz, START_TIMEOUT + Duration::from_secs(5));
        if tokio::time::timeout(START_TIMEOUT, ready).await.is_err() {
            panic!("the api is not ready:\n{}", processes.api.tail(40));
        }
        let token = admin_token(&http, &api_base, "api", &processes.env, ADMIN).await;
        processes.assert_running();

        let mut options = ConnectOptions::new(owner_url);
        options
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(5))
            .sqlx_logging(false);
        let db = Database::connect(options)
            .await
            .expect("connect to the run's database");
        Stack {
            processes,
            endpoints: Endpoints {
                http,
                sim_base,
                api_base,
                token,
                db,
            },
            infra,
        }
    }
}

/// One service process that the chaos kills and starts again.
pub struct Slot {
    pub name: String,
    bin: &'static str,
    process: Option<Process>,
    /// Killed by the chaos and not started again yet.
    down: bool,
    /// SIGKILLs sent by the chaos.
    pub kills: usize,
}

impl Slot {
    fn start(name: &str, bin: &'static str, env: &HashMap<String, String>) -> Slot {
        Slot {
            name: name.to_owned(),
            bin,
            process: Some(Process::spawn(bin, &[], env)),
            down: false,
            kills: 0,
        }
    }

    /// SIGKILL, as a crash or an OOM kill would.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
            self.kills += 1;
            self.down = true;
        }
    }

    /// Starts it if it is not running (killed, or exited on its own).
    pub fn ensure_started(&mut self, env: &HashMap<String, String>) {
        if self.process.is_none() {
            self.process = Some(Process::spawn(self.bin, &[], env));
        }
        self.down = false;
    }

    /// Its last `n` lines of output.
    fn tail(&self, n: usize) -> String {
        self.process.as_ref().map(|p| p.tail(n)).unwrap_or_default()
    }

    /// The exit of a process that ended without being killed: its name and last lines.
    fn take_unexpected_exit(&mut self) -> Option<String> {
        let process = self.process.as_mut()?;
        if process.is_running() {
            return None;
        }
        let tail = process.tail(20);
        self.process = None;
        Some(format!(
            "{} exited on its own; its last lines:\n{tail}",
            self.name
        ))
    }
}

/// Every process of the run.
pub struct Processes {
    sim: Process,
    pub api: Slot,
    pub workers: Vec<Slot>,
    pub env: HashMap<String, String>,
    /// Processes that exited without being killed: found by the checks, reported.
    unexpected: Vec<String>,
}

impl Processes {
    fn assert_running(&mut self) {
        assert!(
            self.sim.is_running(),
            "ayrshare-sim exited:\n{}",
            self.sim.output()
        );
        self.note_exits();
        assert!(self.unexpected.is_empty(), "{}", self.unexpected.join("\n"));
    }

    /// Records (and does not restart) the processes that exited on their own.
    pub fn note_exits(&mut self) {
        let exits: Vec<String> = std::iter::once(&mut self.api)
            .chain(self.workers.iter_mut())
            .filter_map(Slot::take_unexpected_exit)
            .collect();
        for exit in &exits {
            eprintln!("chaos: {exit}");
        }
        self.unexpected.extend(exits);
    }

    /// Records the processes that exited on their own and starts them again (not those the
    /// chaos keeps down).
    pub fn revive(&mut self) {
        self.note_exits();
        let env = self.env.clone();
        for slot in std::iter::once(&mut self.api).chain(self.workers.iter_mut()) {
            if !slot.down {
                slot.ensure_started(&env);
            }
        }
    }

    /// Records the processes that exited on their own and starts every missing one; waits
    /// (bounded) for the api to be ready again.
    pub async fn restart_exited(&mut self, endpoints: &Endpoints) {
        self.note_exits();
        let env = self.env.clone();
        for slot in std::iter::once(&mut self.api).chain(self.workers.iter_mut()) {
            slot.ensure_started(&env);
        }
        wait_http_ok(
            &endpoints.http,
            &format!("{}/readyz", endpoints.api_base),
            START_TIMEOUT,
        )
        .await;
    }

    /// What happened to the processes, for the report.
    pub fn summary(&self) -> ProcessSummary {
        ProcessSummary {
            worker_kills: self.workers.iter().map(|w| w.kills).sum(),
            api_kills: self.api.kills,
            unexpected: self.unexpected.clone(),
        }
    }
}

pub struct ProcessSummary {
    pub worker_kills: usize,
    pub api_kills: usize,
    pub unexpected: Vec<String>,
}

/// The simulator's settings: a small world on [`PLATFORMS`] (recent posts, two conversations
/// per messaging platform), no rate limit, nothing arriving on its own (the workload makes
/// every arrival, so it can stop them before the checks).
fn sim_env(addr: &str) -> HashMap<String, String> {
    [
        ("AYRSHARE_SIM_ADDR", addr),
        ("AYRSHARE_SIM_PLATFORMS", PLATFORMS),
        ("AYRSHARE_SIM_RATE_LIMIT", "0"),
        ("AYRSHARE_SIM_REFRESH_SECONDS", "5"),
        ("AYRSHARE_SIM_POSTS_PER_PLATFORM", "3"),
        ("AYRSHARE_SIM_POST_DAYS", "3"),
        ("AYRSHARE_SIM_COMMENTS_PER_POST", "2"),
        ("AYRSHARE_SIM_REPLIES_PER_COMMENT", "1"),
        ("AYRSHARE_SIM_EMPTY_POSTS_PER_PLATFORM", "0"),
        ("AYRSHARE_SIM_CONVERSATIONS_PER_PLATFORM", "2"),
        ("AYRSHARE_SIM_MESSAGES_PER_CONVERSATION", "2"),
        ("AYRSHARE_SIM_COMMENTS_PER_MINUTE", "0"),
        ("AYRSHARE_SIM_MESSAGES_PER_MINUTE", "0"),
        ("RUST_LOG", "warn"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// The services' settings (see the module documentation).
fn service_env(
    database_url: &str,
    amqp_url: &str,
    sim_addr: &str,
    api_addr: &str,
) -> HashMap<String, String> {
    let sim_url = format!("http://{sim_addr}/api");
    [
        ("DATABASE_URL", database_url),
        ("AMQP_URL", amqp_url),
        ("API_ADDR", api_addr),
        ("SOCIAL_MEDIA_API_URL", sim_url.as_str()),
        ("SOCIAL_PLATFORMS", PLATFORMS),
        ("SOCIAL_MEDIA_API_HISTORY_LAST_DAYS", "30"),
        ("POLL_INTERVAL_SECONDS", "5"),
        ("POLL_RATE_HORIZON_SECONDS", "60"),
        ("PROVIDER_TIMEOUT_MS", "3000"),
        ("PROVIDER_RETRY_CAP_MS", "2000"),
        ("REPLY_CACHE_WINDOW_SECONDS", "30"),
        ("REPLY_UNDECIDED_LIMIT_SECONDS", "45"),
        ("RATE_BUDGET_REQUESTS", "1000000"),
        ("BREAKER_OPEN_SECONDS", "5"),
        ("BREAKER_OPEN_MAX_SECONDS", "20"),
        ("TASK_LEASE_SECONDS", "10"),
        ("TASK_RETRY_BASE_SECONDS", "1"),
        ("TASK_RETRY_MAX_SECONDS", "15"),
        ("SWEEPER_INTERVAL_SECONDS", "2"),
        ("SWEEPER_PUBLISHED_TIMEOUT_SECONDS", "10"),
        ("API_RATE_LIMIT_PER_SECOND", "1000"),
        ("API_RATE_LIMIT_BURST", "1000"),
        ("DATABASE_MAX_CONNECTIONS", "8"),
        ("SHUTDOWN_GRACE_SECONDS", "2"),
        ("LOG_FORMAT", "text"),
        ("RUST_LOG", "warn"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}
