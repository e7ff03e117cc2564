//! Configuration: built-in defaults, then an optional TOML file, then the environment.
//!
//! Keys are the seed's environment variable names (`SOCIAL_PLATFORMS`, …); in the file they are
//! the same names in lower case (`social_platforms = "twitter,facebook"`). The file is
//! `social-messages.toml` in the working directory, or the path in `CONFIG_FILE`; it is optional.
//!
//! Every value is read as text and validated here, so that a bad value stops the process with one
//! line naming the variable, the value and what is allowed ([`ConfigError`]), and exit code 2
//! ([`load_or_exit`]). Secrets (the API keys, passwords inside URLs) are wrapped in
//! [`SecretString`] and never appear in errors or logs.

use crate::domain::Platform;
use config::{Config, Environment, File};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;
use url::Url;

/// Exit code of a process stopped by invalid configuration.
pub const EXIT_CONFIG: i32 = 2;

/// The API key the simulator accepts by default; used when the provider is not Ayrshare and no
/// key is configured.
pub const SIMULATOR_API_KEY: &str = "sim-key";

/// Fully validated settings of every process.
#[derive(Clone)]
pub struct Settings {
    /// Platforms to ingest (`SOCIAL_PLATFORMS`).
    pub platforms: Vec<Platform>,
    /// Posts created in the last N days are polled (`SOCIAL_MEDIA_API_HISTORY_LAST_DAYS`; 0 = all).
    pub history_last_days: u32,
    /// How to reach the provider.
    pub provider: ProviderSettings,
    /// PostgreSQL URL of the services (`DATABASE_URL`), signing in as the role that may only
    /// append to the audit log (`social_messages_app`); may hold a password.
    pub database_url: SecretString,
    /// PostgreSQL URL of the schema's owner (`MIGRATION_DATABASE_URL`), used only by
    /// `--migrate`; may hold a password.
    pub migration_database_url: SecretString,
    /// Pool size of each process (`DATABASE_MAX_CONNECTIONS`).
    pub database_max_connections: u32,
    /// RabbitMQ URL (`AMQP_URL`); may hold a password.
    pub amqp_url: SecretString,
    /// Where `api` listens (`API_ADDR`).
    pub api_addr: SocketAddr,
    /// Platforms a worker consumes (`WORKER_PLATFORMS`); defaults to all of `platforms`.
    pub worker_platforms: Vec<Platform>,
    /// The shortest time between two history reads of a platform (`POLL_INTERVAL_SECONDS`):
    /// the scheduler reads less often when the budget cannot afford it.
    pub poll_interval: Duration,
    /// How the poll planner picks the next posts to read (`POLL_POLICY`).
    pub poll_policy: PollPolicy,
    /// The time over which a post's comment rate is averaged, and the age prior of a post
    /// without comments (`POLL_RATE_HORIZON_SECONDS`).
    pub poll_rate_horizon: Duration,
    /// Time allowed to finish or hand back in-flight work on SIGTERM (`SHUTDOWN_GRACE_SECONDS`).
    pub shutdown_grace: Duration,
    /// Log output (`LOG_FORMAT`): `text` for people, `json` for production.
    pub log_format: LogFormat,
    /// Origins allowed by CORS (`CORS_ALLOWED_ORIGINS`).
    pub cors_allowed_origins: Vec<String>,
    /// How often the api logs the audit chain head, an anchor kept outside the database
    /// (`AUDIT_HEAD_LOG_SECONDS`).
    pub audit_head_log_interval: Duration,
    /// Sustained requests per second each API token may make (`API_RATE_LIMIT_PER_SECOND`).
    pub api_rate_limit_per_second: u32,
    /// Requests an API token may make at once (`API_RATE_LIMIT_BURST`).
    pub api_rate_limit_burst: u32,
    /// Background work: outbox relay, sweeper and workers.
    pub tasks: TaskSettings,
    /// Calling the provider: timeouts, retries, circuit breakers and the request budget.
    pub resilience: ResilienceSettings,
    /// Sending replies exactly once: the provider's read cache, the undecided limit.
    pub replies: ReplySettings,
}

/// How the replier decides whether an attempt whose outcome is unknown reached the provider
/// (DESIGN §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplySettings {
    /// How long after an attempt a reply may still be hidden by the provider's read cache: a
    /// reply not found when reading back is sent again only once this has passed since the
    /// attempt (`REPLY_CACHE_WINDOW_SECONDS`).
    pub cache_window: Duration,
    /// A reply whose outcome still cannot be decided this long after its last attempt (the
    /// read-back keeps failing) ends `failed` instead of being sent again
    /// (`REPLY_UNDECIDED_LIMIT_SECONDS`).
    pub undecided_limit: Duration,
    /// How long the answer to a request with an `Idempotency-Key` is kept for its repetitions
    /// before the sweeper purges it (`IDEMPOTENCY_KEY_TTL_SECONDS`).
    pub idempotency_key_ttl: Duration,
}

/// How background work is relayed, claimed, retried and swept (DESIGN §4–§5).
#[derive(Debug, Clone)]
pub struct TaskSettings {
    /// Whether this process runs the outbox relay (`RELAY_ENABLED`); `None` leaves it to the
    /// process: on in `api`, off in the workers.
    pub relay_enabled: Option<bool>,
    /// Rows a relay claims, publishes and marks per transaction (`RELAY_BATCH_SIZE`).
    pub relay_batch_size: u32,
    /// How long a worker's claim on a task lasts; renewed while the job runs, and handed back
    /// by the sweeper once expired (`TASK_LEASE_SECONDS`).
    pub lease: Duration,
    /// Unacknowledged deliveries a worker holds per queue, i.e. jobs it runs at once per
    /// platform (`WORKER_PREFETCH`).
    pub prefetch: u16,
    /// Attempts after which a task that keeps failing is `dead` (`TASK_MAX_ATTEMPTS`); a task
    /// enqueued with a lower `max_attempts` gives up sooner.
    pub max_attempts: u32,
    /// Delay before the first retry of a transient failure, doubling with each attempt
    /// (`TASK_RETRY_BASE_SECONDS`).
    pub retry_base: Duration,
    /// Longest delay between two attempts (`TASK_RETRY_MAX_SECONDS`).
    pub retry_max: Duration,
    /// How often the sweeper looks for expired leases and lost messages
    /// (`SWEEPER_INTERVAL_SECONDS`).
    pub sweeper_interval: Duration,
    /// A `published` task no worker picked up within this time is published again
    /// (`SWEEPER_PUBLISHED_TIMEOUT_SECONDS`).
    pub published_timeout: Duration,
}

/// How provider calls are cut off, retried, kept inside the provider's request budget and
/// stopped while the provider is unwell (DESIGN §7).
#[derive(Debug, Clone, PartialEq)]
pub struct ResilienceSettings {
    /// Time allowed for one provider request, connection included (`PROVIDER_TIMEOUT_MS`).
    pub request_timeout: Duration,
    /// Attempts per call, the first included (`PROVIDER_RETRY_MAX_ATTEMPTS`).
    pub retry_max_attempts: u32,
    /// Ceiling of the first retry's delay, doubling with each retry; the delay is drawn
    /// between zero and the ceiling (`PROVIDER_RETRY_BASE_MS`).
    pub retry_base: Duration,
    /// Largest retry ceiling (`PROVIDER_RETRY_CAP_MS`). When the provider asks for a longer
    /// wait (`Retry-After`), the call is handed back to its caller to reschedule.
    pub retry_cap: Duration,
    /// Window in which a circuit breaker counts calls and failures (`BREAKER_WINDOW_SECONDS`).
    pub breaker_window: Duration,
    /// Calls the window needs before the breaker may open (`BREAKER_MIN_CALLS`).
    pub breaker_min_calls: u32,
    /// Share of failed calls in the window, in percent, that opens the breaker
    /// (`BREAKER_FAILURE_RATE_PERCENT`).
    pub breaker_failure_rate_percent: u32,
    /// How long a breaker stays open the first time (`BREAKER_OPEN_SECONDS`).
    pub breaker_open: Duration,
    /// Factor by which the open period grows with each failed probe (`BREAKER_OPEN_GROWTH`).
    pub breaker_open_growth: u32,
    /// Longest open period (`BREAKER_OPEN_MAX_SECONDS`).
    pub breaker_open_max: Duration,
    /// Probe calls let through, across all processes, once the open period is over
    /// (`BREAKER_PROBE_PERMITS`).
    pub breaker_probe_permits: u32,
    /// How long a process lets calls through a breaker it saw closed before asking the
    /// database again (`BREAKER_RECHECK_MS`; 0: ask before every call).
    pub breaker_recheck: Duration,
    /// Provider requests allowed per profile in any window of `rate_budget_window`, across
    /// all processes (`RATE_BUDGET_REQUESTS`).
    pub rate_budget_requests: u32,
    /// Length of the sliding budget window (`RATE_BUDGET_WINDOW_SECONDS`).
    pub rate_budget_window: Duration,
    /// Share of the budget, in percent, that only replies may use (`BUDGET_RESERVE_PERCENT`).
    pub budget_reserve_percent: u32,
}

/// How the poll planner orders the posts that are due (see `ingest::plan`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollPolicy {
    /// By expected value: time since the last read × √(comment rate), first reads first.
    Adaptive,
    /// By due time, first in first out (the earlier policy; kept as a benchmark baseline).
    Fifo,
}

/// How to reach Ayrshare (or the simulator).
#[derive(Clone)]
pub struct ProviderSettings {
    /// Base URL ending in `/api` (`SOCIAL_MEDIA_API_URL`).
    pub url: Url,
    /// API key (`SOCIAL_MEDIA_API_KEY`).
    pub api_key: SecretString,
    /// Optional `Profile-Key` header (`SOCIAL_MEDIA_API_PROFILE_KEY`).
    pub profile_key: Option<SecretString>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// A configuration value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {variable}={value}: {problem}; allowed: {allowed}")]
pub struct ConfigError {
    /// The environment variable (or file key, upper-cased).
    pub variable: &'static str,
    /// The value as given, quoted, or a placeholder for secrets and missing values.
    pub value: String,
    /// What is wrong with it.
    pub problem: String,
    /// What would be accepted.
    pub allowed: String,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("platforms", &self.platforms)
            .field("history_last_days", &self.history_last_days)
            .field("provider_url", &self.provider.url.as_str())
            .field(
                "database_url",
                &redact_url(self.database_url.expose_secret()),
            )
            .field(
                "migration_database_url",
                &redact_url(self.migration_database_url.expose_secret()),
            )
            .field("amqp_url", &redact_url(self.amqp_url.expose_secret()))
            .field("api_addr", &self.api_addr)
            .field("worker_platforms", &self.worker_platforms)
            .field("poll_interval", &self.poll_interval)
            .field("poll_policy", &self.poll_policy)
            .field("poll_rate_horizon", &self.poll_rate_horizon)
            .field("tasks", &self.tasks)
            .field("resilience", &self.resilience)
            .field("replies", &self.replies)
            .finish_non_exhaustive()
    }
}

/// The raw layer: every key as text, before validation.
#[derive(Deserialize)]
struct Raw {
    social_platforms: String,
    social_media_api_history_last_days: String,
    social_media_api_url: String,
    social_media_api_key: Option<String>,
    social_media_api_profile_key: Option<String>,
    database_url: String,
    migration_database_url: String,
    database_max_connections: String,
    amqp_url: String,
    api_addr: String,
    worker_platforms: Option<String>,
    poll_interval_seconds: String,
    poll_policy: String,
    poll_rate_horizon_seconds: String,
    shutdown_grace_seconds: String,
    log_format: String,
    cors_allowed_origins: String,
    audit_head_log_seconds: String,
    api_rate_limit_per_second: String,
    api_rate_limit_burst: String,
    relay_enabled: Option<String>,
    relay_batch_size: String,
    task_lease_seconds: String,
    worker_prefetch: String,
    task_max_attempts: String,
    task_retry_base_seconds: String,
    task_retry_max_seconds: String,
    sweeper_interval_seconds: String,
    sweeper_published_timeout_seconds: String,
    provider_timeout_ms: String,
    provider_retry_max_attempts: String,
    provider_retry_base_ms: String,
    provider_retry_cap_ms: String,
    breaker_window_seconds: String,
    breaker_min_calls: String,
    breaker_failure_rate_percent: String,
    breaker_open_seconds: String,
    breaker_open_growth: String,
    breaker_open_max_seconds: String,
    breaker_probe_permits: String,
    breaker_recheck_ms: String,
    rate_budget_requests: String,
    rate_budget_window_seconds: String,
    budget_reserve_percent: String,
    reply_cache_window_seconds: String,
    reply_undecided_limit_seconds: String,
    idempotency_key_ttl_seconds: String,
}

const DEFAULTS: &[(&str, &str)] = &[
    (
        "social_platforms",
        "bluesky,facebook,instagram,linkedin,threads,tiktok,twitter,youtube",
    ),
    ("social_media_api_history_last_days", "7"),
    ("social_media_api_url", "https://api.ayrshare.com/api"),
    (
        "database_url",
        "postgres://social_messages_app@127.0.0.1:5432/social_messages",
    ),
    (
        "migration_database_url",
        "postgres://postgres@127.0.0.1:5432/social_messages",
    ),
    ("database_max_connections", "10"),
    ("amqp_url", "amqp://guest:guest@127.0.0.1:5672/%2f"),
    ("api_addr", "127.0.0.1:3000"),
    ("poll_interval_seconds", "60"),
    ("poll_policy", "adaptive"),
    ("poll_rate_horizon_seconds", "3600"),
    ("shutdown_grace_seconds", "8"),
    ("log_format", "text"),
    ("cors_allowed_origins", "http://localhost:5173"),
    ("audit_head_log_seconds", "3600"),
    ("api_rate_limit_per_second", "20"),
    ("api_rate_limit_burst", "40"),
    ("relay_batch_size", "200"),
    ("task_lease_seconds", "60"),
    ("worker_prefetch", "4"),
    ("task_max_attempts", "10"),
    ("task_retry_base_seconds", "5"),
    ("task_retry_max_seconds", "900"),
    ("sweeper_interval_seconds", "5"),
    ("sweeper_published_timeout_seconds", "300"),
    ("provider_timeout_ms", "30000"),
    ("provider_retry_max_attempts", "4"),
    ("provider_retry_base_ms", "500"),
    ("provider_retry_cap_ms", "30000"),
    ("breaker_window_seconds", "60"),
    ("breaker_min_calls", "10"),
    ("breaker_failure_rate_percent", "50"),
    ("breaker_open_seconds", "30"),
    ("breaker_open_growth", "2"),
    ("breaker_open_max_seconds", "600"),
    ("breaker_probe_permits", "1"),
    ("breaker_recheck_ms", "500"),
    ("rate_budget_requests", "300"),
    ("rate_budget_window_seconds", "300"),
    ("budget_reserve_percent", "20"),
    ("reply_cache_window_seconds", "660"),
    ("reply_undecided_limit_seconds", "86400"),
    ("idempotency_key_ttl_seconds", "86400"),
];

/// Loads and validates the settings from defaults, the optional file and the process
/// environment.
pub fn load() -> Result<Settings, ConfigError> {
    load_from(std::env::vars().collect())
}

/// Like [`load`], but on error prints the one-line reason to stderr and exits with code 2.
pub fn load_or_exit() -> Settings {
    match load() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("{err}");
            std::process::exit(EXIT_CONFIG);
        }
    }
}

/// Loads and validates the settings with `env` standing in for the process environment.
pub fn load_from(env: HashMap<String, String>) -> Result<Settings, ConfigError> {
    let file = env
        .get("CONFIG_FILE")
        .cloned()
        .unwrap_or_else(|| "social-messages.toml".to_owned());
    let required = env.contains_key("CONFIG_FILE");
    // Empty variables count as unset, as in a `.env` file with `KEY=`.
    let env: HashMap<String, String> = env.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    let mut builder = Config::builder();
    for (key, value) in DEFAULTS {
        builder = builder
            .set_default(*key, *value)
            .map_err(|e| internal("CONFIG_FILE", e))?;
    }
    let raw: Raw = builder
        .add_source(File::with_name(&file).required(required))
        .add_source(Environment::default().source(Some(env)))
        .build()
        .and_then(Config::try_deserialize)
        .map_err(|e| ConfigError {
            variable: "CONFIG_FILE",
            value: quote(&file),
            problem: format!("cannot be read: {e}"),
            allowed: "a readable TOML file with the documented keys".to_owned(),
        })?;
    validate(raw)
}

fn internal(variable: &'static str, e: config::ConfigError) -> ConfigError {
    ConfigError {
        variable,
        value: String::new(),
        problem: e.to_string(),
        allowed: "the documented keys".to_owned(),
    }
}

fn validate(raw: Raw) -> Result<Settings, ConfigError> {
    // Before any field is moved out of `raw`.
    let tasks = validate_tasks(&raw)?;
    let resilience = validate_resilience(&raw)?;
    let replies = validate_replies(&raw)?;
    let platforms = parse_platforms("SOCIAL_PLATFORMS", &raw.social_platforms)?;
    let worker_platforms = match raw.worker_platforms.as_deref() {
        None => platforms.clone(),
        Some(text) => {
            let pinned = parse_platforms("WORKER_PLATFORMS", text)?;
            if let Some(p) = pinned.iter().find(|p| !platforms.contains(p)) {
                return Err(ConfigError {
                    variable: "WORKER_PLATFORMS",
                    value: quote(text),
                    problem: format!("{p} is not in SOCIAL_PLATFORMS"),
                    allowed: join(&platforms),
                });
            }
            pinned
        }
    };
    let history_last_days = parse_number(
        "SOCIAL_MEDIA_API_HISTORY_LAST_DAYS",
        &raw.social_media_api_history_last_days,
        0,
        365,
        "a whole number of days from 0 (all history) to 365",
    )?;
    let url = parse_url(
        "SOCIAL_MEDIA_API_URL",
        &raw.social_media_api_url,
        &["http", "https"],
    )?;
    let is_ayrshare = url
        .host_str()
        .is_some_and(|h| h == "ayrshare.com" || h.ends_with(".ayrshare.com"));
    let api_key = match raw.social_media_api_key {
        Some(key) => SecretString::from(key),
        None if is_ayrshare => {
            return Err(ConfigError {
                variable: "SOCIAL_MEDIA_API_KEY",
                value: "(missing)".to_owned(),
                problem: format!("required when SOCIAL_MEDIA_API_URL is Ayrshare ({url})"),
                allowed: "your Ayrshare API key".to_owned(),
            });
        }
        None => SecretString::from(SIMULATOR_API_KEY),
    };
    let database_url = parse_url(
        "DATABASE_URL",
        &raw.database_url,
        &["postgres", "postgresql"],
    )?;
    let migration_database_url = parse_url(
        "MIGRATION_DATABASE_URL",
        &raw.migration_database_url,
        &["postgres", "postgresql"],
    )?;
    let amqp_url = parse_url("AMQP_URL", &raw.amqp_url, &["amqp", "amqps"])?;
    let audit_head_log_interval = parse_seconds(
        "AUDIT_HEAD_LOG_SECONDS",
        &raw.audit_head_log_seconds,
        1,
        86_400,
    )?;
    let api_addr = raw.api_addr.parse().map_err(|_| ConfigError {
        variable: "API_ADDR",
        value: quote(&raw.api_addr),
        problem: "not a socket address".to_owned(),
        allowed: "IP:PORT, e.g. 127.0.0.1:3000 or 0.0.0.0:3000".to_owned(),
    })?;
    let poll_interval = parse_seconds(
        "POLL_INTERVAL_SECONDS",
        &raw.poll_interval_seconds,
        1,
        86_400,
    )?;
    let poll_policy = match raw.poll_policy.as_str() {
        "adaptive" => PollPolicy::Adaptive,
        "fifo" => PollPolicy::Fifo,
        other => {
            return Err(ConfigError {
                variable: "POLL_POLICY",
                value: quote(other),
                problem: "unknown poll policy".to_owned(),
                allowed: "adaptive, fifo".to_owned(),
            });
        }
    };
    let poll_rate_horizon = parse_seconds(
        "POLL_RATE_HORIZON_SECONDS",
        &raw.poll_rate_horizon_seconds,
        1,
        86_400 * 30,
    )?;
    let shutdown_grace = parse_seconds(
        "SHUTDOWN_GRACE_SECONDS",
        &raw.shutdown_grace_seconds,
        0,
        3_600,
    )?;
    let database_max_connections = parse_whole(
        "DATABASE_MAX_CONNECTIONS",
        &raw.database_max_connections,
        1,
        1_000,
    )?;
    let log_format = match raw.log_format.as_str() {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        other => {
            return Err(ConfigError {
                variable: "LOG_FORMAT",
                value: quote(other),
                problem: "unknown log format".to_owned(),
                allowed: "text, json".to_owned(),
            });
        }
    };
    let cors_allowed_origins = split_list(&raw.cors_allowed_origins);
    if let Some(bad) = cors_allowed_origins
        .iter()
        .find(|o| o.as_str() != "*" && Url::parse(o).map_or(true, |u| !u.has_host()))
    {
        return Err(ConfigError {
            variable: "CORS_ALLOWED_ORIGINS",
            value: quote(bad),
            problem: "not an origin".to_owned(),
            allowed: "a comma list of origins like http://localhost:5173, or *".to_owned(),
        });
    }
    let api_rate_limit_per_second = parse_number(
        "API_RATE_LIMIT_PER_SECOND",
        &raw.api_rate_limit_per_second,
        1,
        100_000,
        "a whole number of requests per second from 1 to 100000",
    )?;
    let api_rate_limit_burst = parse_number(
        "API_RATE_LIMIT_BURST",
        &raw.api_rate_limit_burst,
        1,
        100_000,
        "a whole number of requests from 1 to 100000",
    )?;
    Ok(Settings {
        platforms,
        history_last_days,
        provider: ProviderSettings {
            url,
            api_key,
            profile_key: raw.social_media_api_profile_key.map(SecretString::from),
        },
        database_url: SecretString::from(database_url.to_string()),
        migration_database_url: SecretString::from(migration_database_url.to_string()),
        database_max_connections,
        amqp_url: SecretString::from(amqp_url.to_string()),
        api_addr,
        worker_platforms,
        poll_interval,
        poll_policy,
        poll_rate_horizon,
        shutdown_grace,
        log_format,
        cors_allowed_origins,
        audit_head_log_interval,
        api_rate_limit_per_second,
        api_rate_limit_burst,
        tasks,
        resilience,
        replies,
    })
}

fn validate_replies(raw: &Raw) -> Result<ReplySettings, ConfigError> {
    let cache_window = parse_seconds(
        "REPLY_CACHE_WINDOW_SECONDS",
        &raw.reply_cache_window_seconds,
        0,
        86_400,
    )?;
    let undecided_limit = parse_seconds(
        "REPLY_UNDECIDED_LIMIT_SECONDS",
        &raw.reply_undecided_limit_seconds,
        1,
        30 * 86_400,
    )?;
    if undecided_limit <= cache_window {
        return Err(ConfigError {
            variable: "REPLY_UNDECIDED_LIMIT_SECONDS",
            value: quote(&raw.reply_undecided_limit_seconds),
            problem: "not longer than REPLY_CACHE_WINDOW_SECONDS".to_owned(),
            allowed: format!("more than {}", cache_window.as_secs()),
        });
    }
    Ok(ReplySettings {
        cache_window,
        undecided_limit,
        idempotency_key_ttl: parse_seconds(
            "IDEMPOTENCY_KEY_TTL_SECONDS",
            &raw.idempotency_key_ttl_seconds,
            60,
            365 * 86_400,
        )?,
    })
}

fn validate_tasks(raw: &Raw) -> Result<TaskSettings, ConfigError> {
    let relay_enabled = match raw.relay_enabled.as_deref() {
        None => None,
        Some(text) => Some(parse_bool("RELAY_ENABLED", text)?),
    };
    let retry_base = parse_seconds(
        "TASK_RETRY_BASE_SECONDS",
        &raw.task_retry_base_seconds,
        1,
        3_600,
    )?;
    let retry_max = parse_seconds(
        "TASK_RETRY_MAX_SECONDS",
        &raw.task_retry_max_seconds,
        1,
        86_400,
    )?;
    if retry_max < retry_base {
        return Err(not_below(
            "TASK_RETRY_MAX_SECONDS",
            &raw.task_retry_max_seconds,
            "TASK_RETRY_BASE_SECONDS",
            retry_base.as_secs(),
        ));
    }
    Ok(TaskSettings {
        relay_enabled,
        relay_batch_size: parse_whole("RELAY_BATCH_SIZE", &raw.relay_batch_size, 1, 10_000)?,
        lease: parse_seconds("TASK_LEASE_SECONDS", &raw.task_lease_seconds, 3, 3_600)?,
        prefetch: parse_whole("WORKER_PREFETCH", &raw.worker_prefetch, 1, 1_000)?,
        max_attempts: parse_whole("TASK_MAX_ATTEMPTS", &raw.task_max_attempts, 1, 1_000)?,
        retry_base,
        retry_max,
        sweeper_interval: parse_seconds(
            "SWEEPER_INTERVAL_SECONDS",
            &raw.sweeper_interval_seconds,
            1,
            3_600,
        )?,
        published_timeout: parse_seconds(
            "SWEEPER_PUBLISHED_TIMEOUT_SECONDS",
            &raw.sweeper_published_timeout_seconds,
            10,
            86_400,
        )?,
    })
}

fn validate_resilience(raw: &Raw) -> Result<ResilienceSettings, ConfigError> {
    let retry_base = parse_millis(
        "PROVIDER_RETRY_BASE_MS",
        &raw.provider_retry_base_ms,
        1,
        600_000,
    )?;
    let retry_cap = parse_millis(
        "PROVIDER_RETRY_CAP_MS",
        &raw.provider_retry_cap_ms,
        1,
        3_600_000,
    )?;
    if retry_cap < retry_base {
        return Err(not_below(
            "PROVIDER_RETRY_CAP_MS",
            &raw.provider_retry_cap_ms,
            "PROVIDER_RETRY_BASE_MS",
            retry_base.as_millis(),
        ));
    }
    let breaker_open = parse_seconds("BREAKER_OPEN_SECONDS", &raw.breaker_open_seconds, 1, 86_400)?;
    let breaker_open_max = parse_seconds(
        "BREAKER_OPEN_MAX_SECONDS",
        &raw.breaker_open_max_seconds,
        1,
        86_400,
    )?;
    if breaker_open_max < breaker_open {
        return Err(not_below(
            "BREAKER_OPEN_MAX_SECONDS",
            &raw.breaker_open_max_seconds,
            "BREAKER_OPEN_SECONDS",
            breaker_open.as_secs(),
        ));
    }
    Ok(ResilienceSettings {
        request_timeout: parse_millis(
            "PROVIDER_TIMEOUT_MS",
            &raw.provider_timeout_ms,
            100,
            600_000,
        )?,
        retry_max_attempts: parse_whole(
            "PROVIDER_RETRY_MAX_ATTEMPTS",
            &raw.provider_retry_max_attempts,
            1,
            20,
        )?,
        retry_base,
        retry_cap,
        breaker_window: parse_seconds(
            "BREAKER_WINDOW_SECONDS",
            &raw.breaker_window_seconds,
            1,
            86_400,
        )?,
        breaker_min_calls: parse_whole("BREAKER_MIN_CALLS", &raw.breaker_min_calls, 1, 100_000)?,
        breaker_failure_rate_percent: parse_whole(
            "BREAKER_FAILURE_RATE_PERCENT",
            &raw.breaker_failure_rate_percent,
            1,
            100,
        )?,
        breaker_open,
        breaker_open_growth: parse_whole("BREAKER_OPEN_GROWTH", &raw.breaker_open_growth, 1, 10)?,
        breaker_open_max,
        breaker_probe_permits: parse_whole(
            "BREAKER_PROBE_PERMITS",
            &raw.breaker_probe_permits,
            1,
            1_000,
        )?,
        breaker_recheck: parse_millis("BREAKER_RECHECK_MS", &raw.breaker_recheck_ms, 0, 60_000)?,
        rate_budget_requests: parse_whole(
            "RATE_BUDGET_REQUESTS",
            &raw.rate_budget_requests,
            1,
            1_000_000,
        )?,
        rate_budget_window: parse_seconds(
            "RATE_BUDGET_WINDOW_SECONDS",
            &raw.rate_budget_window_seconds,
            1,
            86_400,
        )?,
        budget_reserve_percent: parse_whole(
            "BUDGET_RESERVE_PERCENT",
            &raw.budget_reserve_percent,
            0,
            90,
        )?,
    })
}

/// `variable`'s value `text` is below `bound`, the value of the setting `smaller`.
fn not_below(
    variable: &'static str,
    text: &str,
    smaller: &str,
    bound: impl fmt::Display,
) -> ConfigError {
    ConfigError {
        variable,
        value: quote(text),
        problem: format!("smaller than {smaller}"),
        allowed: format!("at least {bound}"),
    }
}

fn parse_bool(variable: &'static str, text: &str) -> Result<bool, ConfigError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(ConfigError {
            variable,
            value: quote(text),
            problem: "not a boolean".to_owned(),
            allowed: "true or false (also 1/0, yes/no, on/off)".to_owned(),
        }),
    }
}

fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn join(platforms: &[Platform]) -> String {
    platforms
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn parse_platforms(variable: &'static str, text: &str) -> Result<Vec<Platform>, ConfigError> {
    let mut platforms = Vec::new();
    for item in split_list(text) {
        let platform = item
            .to_ascii_lowercase()
            .parse::<Platform>()
            .map_err(|e| ConfigError {
                variable,
                value: quote(text),
                problem: format!("{:?} is not a supported platform", e.value),
                allowed: e.allowed,
            })?;
        if !platforms.contains(&platform) {
            platforms.push(platform);
        }
    }
    if platforms.is_empty() {
        return Err(ConfigError {
            variable,
            value: quote(text),
            problem: "no platform given".to_owned(),
            allowed: Platform::allowed(),
        });
    }
    Ok(platforms)
}

fn parse_number<T>(
    variable: &'static str,
    text: &str,
    min: T,
    max: T,
    allowed: &str,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd,
{
    match text.trim().parse::<T>() {
        Ok(n) if n >= min && n <= max => Ok(n),
        Ok(_) => Err(ConfigError {
            variable,
            value: quote(text),
            problem: "out of range".to_owned(),
            allowed: allowed.to_owned(),
        }),
        Err(_) => Err(ConfigError {
            variable,
            value: quote(text),
            problem: "not a whole number".to_owned(),
            allowed: allowed.to_owned(),
        }),
    }
}

/// A whole number from `min` to `max`.
fn parse_whole<T>(variable: &'static str, text: &str, min: T, max: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + fmt::Display,
{
    let allowed = format!("a whole number from {min} to {max}");
    parse_number(variable, text, min, max, &allowed)
}

/// A duration given as a whole number of seconds from `min` to `max`.
fn parse_seconds(
    variable: &'static str,
    text: &str,
    min: u64,
    max: u64,
) -> Result<Duration, ConfigError> {
    let allowed = format!("a whole number of seconds from {min} to {max}");
    parse_number(variable, text, min, max, &allowed).map(Duration::from_secs)
}

/// A duration given as a whole number of milliseconds from `min` to `max`.
fn parse_millis(
    variable: &'static str,
    text: &str,
    min: u64,
    max: u64,
) -> Result<Duration, ConfigError> {
    let allowed = format!("a whole number of milliseconds from {min} to {max}");
    parse_number(variable, text, min, max, &allowed).map(Duration::from_millis)
}

fn parse_url(variable: &'static str, text: &str, schemes: &[&str]) -> Result<Url, ConfigError> {
    let allowed = format!(
        "a URL with scheme {} and a host",
        schemes
            .iter()
            .map(|s| format!("{s}://"))
            .collect::<Vec<_>>()
            .join(" or ")
    );
    let shown = redact_url(text);
    match Url::parse(text) {
        Ok(url) if schemes.contains(&url.scheme()) && url.has_host() => Ok(url),
        Ok(url) => Err(ConfigError {
            variable,
            value: quote(&shown),
            problem: format!("unsupported scheme {:?} or missing host", url.scheme()),
            allowed,
        }),
        Err(e) => Err(ConfigError {
            variable,
            value: quote(&shown),
            problem: format!("not a valid URL ({e})"),
            allowed,
        }),
    }
}

fn quote(text: &str) -> String {
    format!("{text:?}")
}

pub use migrations::redact_url;

#[cfg(test)]
mod tests {
    use super::*;

    fn load_with(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let mut env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        env.entry("SOCIAL_MEDIA_API_URL".to_owned())
            .or_insert_with(|| "http://127.0.0.1:3100/api".to_owned());
        // An empty file, so that no `social-messages.toml` lying around changes the outcome
        // (`/dev/null` does not do: the config crate only reads regular files).
        let empty = std::env::temp_dir().join("social-messages-test-empty.toml");
        std::fs::write(&empty, "").expect("write an empty config file");
        env.entry("CONFIG_FILE".to_owned())
            .or_insert_with(|| empty.display().to_string());
        load_from(env)
    }

    #[test]
    fn a_config_file_is_read_and_the_environment_wins_over_it() {
        let path = std::env::temp_dir().join(format!("sm-config-{}.toml", std::process::id()));
        std::fs::write(
            &path,
            "social_platforms = \"twitter\"\npoll_interval_seconds = \"5\"\n",
        )
        .expect("write config file");
        let file = path.to_str().expect("utf-8 path");
        let s = load_with(&[("CONFIG_FILE", file), ("POLL_INTERVAL_SECONDS", "7")]);
        std::fs::remove_file(&path).expect("remove config file");
        let s = s.expect("valid");
        assert_eq!(s.platforms, vec![Platform::Twitter]);
        assert_eq!(s.poll_interval, Duration::from_secs(7));
    }

    #[test]
    fn a_missing_config_file_named_explicitly_is_an_error() {
        let err = load_with(&[("CONFIG_FILE", "/nonexistent/social-messages.toml")])
            .expect_err("missing file");
        assert_eq!(err.variable, "CONFIG_FILE");
    }

    #[test]
    fn defaults_give_the_documented_values() {
        let s = load_with(&[]).expect("defaults are valid");
        assert_eq!(s.platforms.len(), 8);
        assert_eq!(s.worker_platforms, s.platforms);
        assert_eq!(s.history_last_days, 7);
        assert_eq!(s.api_addr.port(), 3000);
        assert_eq!(s.poll_interval, Duration::from_secs(60));
        assert_eq!(s.provider.api_key.expose_secret(), SIMULATOR_API_KEY);
    }

    #[test]
    fn platforms_are_trimmed_lowercased_and_deduplicated() {
        let s = load_with(&[("SOCIAL_PLATFORMS", " Twitter, facebook,twitter ")]).expect("valid");
        assert_eq!(s.platforms, vec![Platform::Twitter, Platform::Facebook]);
    }

    #[test]
    fn unknown_platform_names_variable_value_and_allowed() {
        let err = load_with(&[("SOCIAL_PLATFORMS", "twitter,myspace")]).expect_err("invalid");
        assert_eq!(err.variable, "SOCIAL_PLATFORMS");
        let line = err.to_string();
        assert!(line.contains("myspace"), "{line}");
        assert!(line.contains("allowed: bluesky, facebook"), "{line}");
    }

    #[test]
    fn worker_platforms_must_be_ingested_platforms() {
        let err = load_with(&[
            ("SOCIAL_PLATFORMS", "twitter"),
            ("WORKER_PLATFORMS", "facebook"),
        ])
        .expect_err("invalid");
        assert_eq!(err.variable, "WORKER_PLATFORMS");
    }

    #[test]
    fn non_numeric_days_are_refused() {
        let err =
            load_with(&[("SOCIAL_MEDIA_API_HISTORY_LAST_DAYS", "seven")]).expect_err("invalid");
        assert_eq!(err.variable, "SOCIAL_MEDIA_API_HISTORY_LAST_DAYS");
        assert!(err.to_string().contains("\"seven\""));
    }

    #[test]
    fn missing_key_with_real_ayrshare_is_refused_without_leaking_anything() {
        let err = load_with(&[("SOCIAL_MEDIA_API_URL", "https://api.ayrshare.com/api")])
            .expect_err("key required");
        assert_eq!(err.variable, "SOCIAL_MEDIA_API_KEY");
    }

    #[test]
    fn malformed_database_url_is_refused_with_its_password_hidden() {
        let err = load_with(&[("DATABASE_URL", "mysql://u:hunter2@db/x")]).expect_err("invalid");
        assert_eq!(err.variable, "DATABASE_URL");
        let line = err.to_string();
        assert!(!line.contains("hunter2"), "{line}");
    }

    #[test]
    fn task_settings_default_to_the_documented_values() {
        let s = load_with(&[]).expect("defaults are valid");
        assert_eq!(s.tasks.relay_enabled, None);
        assert_eq!(s.tasks.relay_batch_size, 200);
        assert_eq!(s.tasks.lease, Duration::from_secs(60));
        assert_eq!(s.tasks.prefetch, 4);
        assert_eq!(s.tasks.max_attempts, 10);
        assert_eq!(s.tasks.published_timeout, Duration::from_secs(300));
    }

    #[test]
    fn relay_enabled_accepts_the_usual_spellings_and_refuses_others() {
        for (text, expected) in [("true", true), ("0", false), ("Yes", true), ("off", false)] {
            let s = load_with(&[("RELAY_ENABLED", text)]).expect("valid");
            assert_eq!(s.tasks.relay_enabled, Some(expected), "{text}");
        }
        let err = load_with(&[("RELAY_ENABLED", "maybe")]).expect_err("invalid");
        assert_eq!(err.variable, "RELAY_ENABLED");
        assert!(err.to_string().contains("\"maybe\""), "{err}");
    }

    #[test]
    fn out_of_range_task_settings_name_their_variable() {
        for (variable, value) in [
            ("RELAY_BATCH_SIZE", "0"),
            ("TASK_LEASE_SECONDS", "1"),
            ("WORKER_PREFETCH", "many"),
            ("TASK_MAX_ATTEMPTS", "0"),
            ("SWEEPER_PUBLISHED_TIMEOUT_SECONDS", "5"),
        ] {
            let err = load_with(&[(variable, value)]).expect_err("invalid");
            assert_eq!(err.variable, variable);
        }
        let err = load_with(&[
            ("TASK_RETRY_BASE_SECONDS", "60"),
            ("TASK_RETRY_MAX_SECONDS", "30"),
        ])
        .expect_err("max below base");
        assert_eq!(err.variable, "TASK_RETRY_MAX_SECONDS");
    }

    #[test]
    fn resilience_settings_default_to_the_documented_values() {
        let r = load_with(&[]).expect("defaults are valid").resilience;
        assert_eq!(r.request_timeout, Duration::from_secs(30));
        assert_eq!(r.retry_max_attempts, 4);
        assert_eq!(r.retry_base, Duration::from_millis(500));
        assert_eq!(r.retry_cap, Duration::from_secs(30));
        assert_eq!(r.breaker_window, Duration::from_secs(60));
        assert_eq!(r.breaker_min_calls, 10);
        assert_eq!(r.breaker_failure_rate_percent, 50);
        assert_eq!(r.breaker_open, Duration::from_secs(30));
        assert_eq!(r.breaker_open_growth, 2);
        assert_eq!(r.breaker_open_max, Duration::from_secs(600));
        assert_eq!(r.breaker_probe_permits, 1);
        assert_eq!(r.breaker_recheck, Duration::from_millis(500));
        assert_eq!(r.rate_budget_requests, 300);
        assert_eq!(r.rate_budget_window, Duration::from_secs(300));
    }

    #[test]
    fn reply_settings_default_to_the_documented_values_and_bad_ones_are_named() {
        let r = load_with(&[]).expect("defaults are valid").replies;
        assert_eq!(r.cache_window, Duration::from_secs(660));
        assert_eq!(r.undecided_limit, Duration::from_secs(86_400));
        assert_eq!(r.idempotency_key_ttl, Duration::from_secs(86_400));
        for (variable, value) in [
            ("REPLY_CACHE_WINDOW_SECONDS", "-1"),
            ("IDEMPOTENCY_KEY_TTL_SECONDS", "59"),
            ("IDEMPOTENCY_KEY_TTL_SECONDS", "a day"),
        ] {
            let err = load_with(&[(variable, value)]).expect_err("invalid");
            assert_eq!(err.variable, variable);
        }
    }

    #[test]
    fn out_of_range_resilience_settings_name_their_variable() {
        for (variable, value) in [
            ("PROVIDER_TIMEOUT_MS", "5"),
            ("PROVIDER_RETRY_MAX_ATTEMPTS", "0"),
            ("BREAKER_FAILURE_RATE_PERCENT", "101"),
            ("BREAKER_PROBE_PERMITS", "0"),
            ("BREAKER_RECHECK_MS", "61000"),
            ("RATE_BUDGET_REQUESTS", "lots"),
            ("RATE_BUDGET_WINDOW_SECONDS", "0"),
        ] {
            let err = load_with(&[(variable, value)]).expect_err("invalid");
            assert_eq!(err.variable, variable);
        }
        let err = load_with(&[
            ("PROVIDER_RETRY_BASE_MS", "2000"),
            ("PROVIDER_RETRY_CAP_MS", "1000"),
        ])
        .expect_err("cap below base");
        assert_eq!(err.variable, "PROVIDER_RETRY_CAP_MS");
        let err = load_with(&[("BREAKER_OPEN_MAX_SECONDS", "10")]).expect_err("max below open");
        assert_eq!(err.variable, "BREAKER_OPEN_MAX_SECONDS");
    }

    #[test]
    fn settings_debug_output_hides_secrets() {
        let s = load_with(&[
            ("SOCIAL_MEDIA_API_KEY", "top-secret-key"),
            ("AMQP_URL", "amqp://user:hunter2@127.0.0.1:5672/%2f"),
        ])
        .expect("valid");
        let shown = format!("{s:?}");
        assert!(!shown.contains("top-secret-key"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
