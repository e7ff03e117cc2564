//! Configuration: built-in defaults, then an optional TOML file, then the environment.
//!
//! Keys are the seed's environment variable names (`SOCIAL_PLATFORMS`, …); in the file they are
//! the same names in lower case (`social_platforms = "twitter,facebook"`). The file is
//! `social-messages.toml` in the working directory, or the path in `CONFIG_FILE`; it is optional.
//!
//! Every variable is one row of a table (`VARS`): its name, default, parser with its range,
//! and what it is for. Defaults, validation and the check of `.env.sample` come from that
//! table; adding a setting is adding a row (and the field it fills). Every value is read as
//! text and validated here, so that a bad value stops the process with one line naming the
//! variable, the value and what is allowed ([`ConfigError`]), and exit code [`EXIT_CONFIG`].
//! Secrets (the API keys, passwords inside URLs) are wrapped in [`SecretString`] and never
//! appear in errors or logs.

use crate::brands::BrandsKey;
use crate::domain::Platform;
use config::{Config, Environment, File};
use secrecy::SecretString;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;
use url::Url;

/// Exit code of a process stopped by invalid configuration.
pub const EXIT_CONFIG: u8 = 2;

/// The API key the simulator accepts by default; used when the provider is not Ayrshare and no
/// key is configured.
pub const SIMULATOR_API_KEY: &str = "sim-key";

/// Fully validated settings of every process; `validate` shows which variable fills which
/// field, the table of variables what each is for. Its `Debug` shows no secret.
#[derive(Debug, Clone)]
pub struct Settings {
    pub platforms: Vec<Platform>,
    pub history_last_days: u32,
    pub provider: ProviderSettings,
    /// The services' role, which may only append to the audit log.
    pub database_url: SecretString,
    /// The schema's owner, used only by `--migrate`.
    pub migration_database_url: SecretString,
    pub database_max_connections: u32,
    pub amqp_url: SecretString,
    pub api_addr: SocketAddr,
    pub worker_platforms: Vec<Platform>,
    /// The scheduler reads less often when the budget cannot afford it.
    pub poll_interval: Duration,
    pub poll_policy: PollPolicy,
    /// Also the age prior of a post without comments.
    pub poll_rate_horizon: Duration,
    pub shutdown_grace: Duration,
    pub log_format: LogFormat,
    pub cors_allowed_origins: Vec<String>,
    pub audit_head_log_interval: Duration,
    pub api_rate_limit_per_second: u32,
    pub api_rate_limit_burst: u32,
    pub tasks: TaskSettings,
    pub resilience: ResilienceSettings,
    pub replies: ReplySettings,
    pub ingest: IngestSettings,
    pub webhooks: WebhookSettings,
    /// Seals the brands' Profile-Keys; without it, only the default brand's (the
    /// environment's) can be used.
    pub brands_key: Option<BrandsKey>,
}

/// Push ingest: the provider's webhooks (`POST /v1/webhooks/ayrshare`).
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Where the provider reaches the api; `None`: no registration.
    pub public_base_url: Option<Url>,
    /// `None`: deliveries are refused.
    pub secret: Option<SecretString>,
    pub previous_secret: Option<SecretString>,
    pub tolerance: Duration,
    pub safety_poll: Duration,
    pub quiet: Duration,
    /// A registration not confirmed for three checks no longer counts.
    pub check: Duration,
}

/// How ingestion paces itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestSettings {
    pub history_limit: u32,
    pub messaging_recheck: Duration,
}

/// How the replier decides whether an attempt whose outcome is unknown reached the provider
/// (DESIGN §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplySettings {
    /// A reply not found when reading back is sent again only once this has passed since the
    /// attempt.
    pub cache_window: Duration,
    /// Past it, a reply whose read-back keeps failing ends `failed` instead of being sent again.
    pub undecided_limit: Duration,
    pub idempotency_key_ttl: Duration,
}

/// How background work is relayed, claimed, retried and swept (DESIGN §4–§5).
#[derive(Debug, Clone)]
pub struct TaskSettings {
    /// `None` leaves it to the process: on in `api`, off in the workers.
    pub relay_enabled: Option<bool>,
    pub relay_batch_size: u32,
    /// Tasks of one brand that may be published or running per queue at once.
    pub relay_brand_in_flight: u32,
    pub lease: Duration,
    pub prefetch: u16,
    /// A task enqueued with a lower `max_attempts` gives up sooner.
    pub max_attempts: u32,
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub sweeper_interval: Duration,
    pub published_timeout: Duration,
}

/// How provider calls are cut off, retried, kept inside the provider's request budget and
/// stopped while the provider is unwell (DESIGN §7).
#[derive(Debug, Clone, PartialEq)]
pub struct ResilienceSettings {
    pub request_timeout: Duration,
    /// The first included.
    pub retry_max_attempts: u32,
    pub retry_base: Duration,
    /// A longer `Retry-After` hands the call back to be rescheduled.
    pub retry_cap: Duration,
    pub breaker_window: Duration,
    pub breaker_min_calls: u32,
    pub breaker_failure_rate_percent: u32,
    pub breaker_open: Duration,
    pub breaker_open_growth: u32,
    pub breaker_open_max: Duration,
    /// Across all processes.
    pub breaker_probe_permits: u32,
    pub breaker_recheck: Duration,
    /// Per profile in any window, across all processes.
    pub rate_budget_requests: u32,
    pub rate_budget_window: Duration,
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
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    /// Ending in `/api`.
    pub url: Url,
    pub api_key: SecretString,
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
#[error("invalid configuration: {variable}={value} ({meaning}): {problem}; allowed: {allowed}")]
pub struct ConfigError {
    /// The environment variable (or file key, upper-cased).
    pub variable: &'static str,
    /// What the variable is for.
    pub meaning: &'static str,
    /// The value as given, quoted, or a placeholder for secrets and missing values.
    pub value: String,
    /// What is wrong with it.
    pub problem: String,
    /// What would be accepted.
    pub allowed: String,
}

/// How a variable's text is read, and the values it may take.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A whole number from the first to the second.
    Whole(u64, u64),
    /// Whole seconds in this range.
    Seconds(u64, u64),
    /// Whole milliseconds in this range.
    Millis(u64, u64),
    /// `true` or `false` (also 1/0, yes/no, on/off).
    Bool,
    /// A URL with a host and one of these schemes.
    Url(&'static [&'static str]),
    /// A comma list of platforms.
    Platforms,
    /// One of these words.
    Choice(&'static [&'static str]),
    /// `IP:PORT`.
    Addr,
    /// A comma list of origins, or `*`.
    Origins,
    /// Any text, never shown.
    Secret,
}

/// One variable: its name, its default (`None`: unset unless given), how it is read and what
/// it is for.
#[derive(Debug)]
struct Var {
    name: &'static str,
    default: Option<&'static str>,
    kind: Kind,
    meaning: &'static str,
}

/// A row of the table; an empty default leaves the variable unset unless given.
const fn var(name: &'static str, default: &'static str, kind: Kind, meaning: &'static str) -> Var {
    let default = if default.is_empty() {
        None
    } else {
        Some(default)
    };
    Var {
        name,
        default,
        kind,
        meaning,
    }
}

const POSTGRES: &[&str] = &["postgres", "postgresql"];

/// Every variable, once. `.env.sample` lists the same ones (a test checks it).
#[rustfmt::skip]
const VARS: &[Var] = &[
    var("SOCIAL_PLATFORMS", "bluesky,facebook,instagram,linkedin,threads,tiktok,twitter,youtube", Kind::Platforms, "platforms to ingest"),
    var("SOCIAL_MEDIA_API_HISTORY_LAST_DAYS", "7", Kind::Whole(0, 365), "posts created in the last N days are polled; 0: all"),
    var("SOCIAL_MEDIA_API_URL", "https://api.ayrshare.com/api", Kind::Url(&["http", "https"]), "the provider's base URL"),
    var("SOCIAL_MEDIA_API_KEY", "", Kind::Secret, "the provider's API key"),
    var("SOCIAL_MEDIA_API_PROFILE_KEY", "", Kind::Secret, "the provider's Profile-Key (of the default brand)"),
    var("BRANDS_KEY", "", Kind::Secret, "64 hex digits sealing the brands' Profile-Keys"),
    var("DATABASE_URL", "postgres://social_messages_app@127.0.0.1:5432/social_messages", Kind::Url(POSTGRES), "PostgreSQL of the services"),
    var("MIGRATION_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/social_messages", Kind::Url(POSTGRES), "PostgreSQL of the schema's owner"),
    var("DATABASE_MAX_CONNECTIONS", "10", Kind::Whole(1, 1_000), "pool size of each process"),
    var("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f", Kind::Url(&["amqp", "amqps"]), "RabbitMQ"),
    var("API_ADDR", "127.0.0.1:3000", Kind::Addr, "where the api listens"),
    var("WORKER_PLATFORMS", "", Kind::Platforms, "platforms a worker consumes; all ingested ones by default"),
    var("POLL_INTERVAL_SECONDS", "60", Kind::Seconds(1, 86_400), "shortest time between two history reads of a platform"),
    var("POLL_POLICY", "adaptive", Kind::Choice(&["adaptive", "fifo"]), "how the poll planner orders due posts"),
    var("POLL_RATE_HORIZON_SECONDS", "3600", Kind::Seconds(1, 30 * 86_400), "time over which a post's comment rate is averaged"),
    var("SHUTDOWN_GRACE_SECONDS", "8", Kind::Seconds(0, 3_600), "time to finish or hand back work on SIGTERM"),
    var("LOG_FORMAT", "text", Kind::Choice(&["text", "json"]), "log output"),
    var("CORS_ALLOWED_ORIGINS", "http://localhost:5173", Kind::Origins, "origins allowed by CORS"),
    var("AUDIT_HEAD_LOG_SECONDS", "3600", Kind::Seconds(1, 86_400), "how often the api logs the audit chain head"),
    var("API_RATE_LIMIT_PER_SECOND", "20", Kind::Whole(1, 100_000), "sustained requests per second per token"),
    var("API_RATE_LIMIT_BURST", "40", Kind::Whole(1, 100_000), "requests a token may make at once"),
    var("RELAY_ENABLED", "", Kind::Bool, "run the outbox relay here; on in api, off in the workers by default"),
    var("RELAY_BATCH_SIZE", "200", Kind::Whole(1, 10_000), "rows a relay publishes per transaction"),
    var("RELAY_BRAND_IN_FLIGHT", "8", Kind::Whole(1, 100_000), "tasks of one brand a queue holds at once (published or running)"),
    var("TASK_LEASE_SECONDS", "60", Kind::Seconds(3, 3_600), "how long a worker's claim on a task lasts"),
    var("WORKER_PREFETCH", "4", Kind::Whole(1, 1_000), "jobs a worker runs at once per queue"),
    var("TASK_MAX_ATTEMPTS", "10", Kind::Whole(1, 1_000), "attempts after which a failing task is dead"),
    var("TASK_RETRY_BASE_SECONDS", "5", Kind::Seconds(1, 3_600), "first retry delay of a task, doubling"),
    var("TASK_RETRY_MAX_SECONDS", "900", Kind::Seconds(1, 86_400), "longest retry delay of a task"),
    var("SWEEPER_INTERVAL_SECONDS", "5", Kind::Seconds(1, 3_600), "how often the sweeper runs"),
    var("SWEEPER_PUBLISHED_TIMEOUT_SECONDS", "300", Kind::Seconds(10, 86_400), "a published task nobody took is published again after this"),
    var("PROVIDER_TIMEOUT_MS", "30000", Kind::Millis(100, 600_000), "time allowed for one provider request"),
    var("PROVIDER_RETRY_MAX_ATTEMPTS", "4", Kind::Whole(1, 20), "attempts per provider call"),
    var("PROVIDER_RETRY_BASE_MS", "500", Kind::Millis(1, 600_000), "ceiling of the first provider retry's delay, doubling"),
    var("PROVIDER_RETRY_CAP_MS", "30000", Kind::Millis(1, 3_600_000), "largest provider retry delay"),
    var("BREAKER_WINDOW_SECONDS", "60", Kind::Seconds(1, 86_400), "window in which a breaker counts calls"),
    var("BREAKER_MIN_CALLS", "10", Kind::Whole(1, 100_000), "calls a breaker's window needs before it may open"),
    var("BREAKER_FAILURE_RATE_PERCENT", "50", Kind::Whole(1, 100), "failed share of calls that opens a breaker"),
    var("BREAKER_OPEN_SECONDS", "30", Kind::Seconds(1, 86_400), "first open period of a breaker"),
    var("BREAKER_OPEN_GROWTH", "2", Kind::Whole(1, 10), "growth of the open period with each failed probe"),
    var("BREAKER_OPEN_MAX_SECONDS", "600", Kind::Seconds(1, 86_400), "longest open period"),
    var("BREAKER_PROBE_PERMITS", "1", Kind::Whole(1, 1_000), "probe calls once the open period is over"),
    var("BREAKER_RECHECK_MS", "500", Kind::Millis(0, 60_000), "how long a breaker seen closed is trusted; 0: ask every call"),
    var("RATE_BUDGET_REQUESTS", "300", Kind::Whole(1, 1_000_000), "provider requests per profile per budget window"),
    var("RATE_BUDGET_WINDOW_SECONDS", "300", Kind::Seconds(1, 86_400), "length of the sliding budget window"),
    var("BUDGET_RESERVE_PERCENT", "20", Kind::Whole(0, 90), "share of the budget only replies may use"),
    var("REPLY_CACHE_WINDOW_SECONDS", "660", Kind::Seconds(0, 86_400), "how long the provider's read cache may hide a reply"),
    var("REPLY_UNDECIDED_LIMIT_SECONDS", "86400", Kind::Seconds(1, 30 * 86_400), "an undecidable reply fails after this"),
    var("IDEMPOTENCY_KEY_TTL_SECONDS", "86400", Kind::Seconds(60, 365 * 86_400), "how long an Idempotency-Key's answer is kept"),
    var("INGEST_HISTORY_LIMIT", "1000", Kind::Whole(1, 1_000), "posts asked per history read"),
    var("INGEST_MESSAGING_RECHECK_SECONDS", "3600", Kind::Seconds(1, 30 * 86_400), "while messaging is disabled, the time until it is checked again"),
    var("PUBLIC_BASE_URL", "", Kind::Url(&["http", "https"]), "the service's public address; set, the provider's webhooks are registered to it"),
    var("WEBHOOK_SECRET", "", Kind::Secret, "signing secret of the provider's webhook deliveries"),
    var("WEBHOOK_SECRET_PREVIOUS", "", Kind::Secret, "the previous signing secret, also accepted while a rotation lasts"),
    var("WEBHOOK_TOLERANCE_SECONDS", "300", Kind::Seconds(1, 3_600), "how far a delivery's timestamp may be from now"),
    var("WEBHOOK_SAFETY_POLL_SECONDS", "3600", Kind::Seconds(1, 86_400), "polling interval of the platforms healthy webhooks cover"),
    var("WEBHOOK_QUIET_SECONDS", "1800", Kind::Seconds(1, 86_400), "without a delivery for this long, a platform is polled normally again"),
    var("WEBHOOK_CHECK_SECONDS", "600", Kind::Seconds(1, 86_400), "how often the api checks its webhook registrations"),
];

/// Pairs of variables in one unit where the first may not be below the second; `true`: it
/// must be above it.
#[rustfmt::skip]
const ORDER: &[(&str, &str, bool)] = &[
    ("TASK_RETRY_MAX_SECONDS", "TASK_RETRY_BASE_SECONDS", false),
    ("PROVIDER_RETRY_CAP_MS", "PROVIDER_RETRY_BASE_MS", false),
    ("BREAKER_OPEN_MAX_SECONDS", "BREAKER_OPEN_SECONDS", false),
    ("REPLY_UNDECIDED_LIMIT_SECONDS", "REPLY_CACHE_WINDOW_SECONDS", true),
];

/// The file read when `CONFIG_FILE` does not name one.
const DEFAULT_FILE: &str = "social-messages.toml";

/// Loads and validates the settings from defaults, the optional file and the process
/// environment.
pub fn load() -> Result<Settings, ConfigError> {
    load_from(std::env::vars().collect())
}

/// [`load`] for a binary's `main`: on error, prints the one-line reason to stderr and gives
/// the exit code to stop with, [`EXIT_CONFIG`].
pub fn load_or_report() -> Result<Settings, std::process::ExitCode> {
    load().map_err(|e| {
        eprintln!("{e}");
        std::process::ExitCode::from(EXIT_CONFIG)
    })
}

/// Loads and validates the settings with `env` standing in for the process environment.
pub fn load_from(env: HashMap<String, String>) -> Result<Settings, ConfigError> {
    let file = env
        .get("CONFIG_FILE")
        .cloned()
        .unwrap_or_else(|| DEFAULT_FILE.to_owned());
    let required = env.contains_key("CONFIG_FILE");
    // Empty variables count as unset, as in a `.env` file with `KEY=`.
    let env: HashMap<String, String> = env.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    let unreadable = |e: config::ConfigError| ConfigError {
        variable: "CONFIG_FILE",
        meaning: "the TOML file of settings",
        value: quote(&file),
        problem: format!("cannot be read: {e}"),
        allowed: "a readable TOML file with the documented keys".to_owned(),
    };
    let mut builder = Config::builder();
    for var in VARS {
        if let Some(default) = var.default {
            builder = builder
                .set_default(var.name.to_ascii_lowercase(), default)
                .map_err(unreadable)?;
        }
    }
    let layered = builder
        .add_source(File::with_name(&file).required(required))
        .add_source(Environment::default().source(Some(env)))
        .build()
        .map_err(unreadable)?;
    let mut texts = HashMap::new();
    for var in VARS {
        match layered.get_string(&var.name.to_ascii_lowercase()) {
            Ok(text) => {
                texts.insert(var.name, text);
            }
            Err(config::ConfigError::NotFound(_)) => {}
            Err(e) => return Err(unreadable(e)),
        }
    }
    validate(&Values(texts))
}

/// The text of every variable that has one, after defaults, file and environment.
struct Values(HashMap<&'static str, String>);

impl Values {
    fn var(name: &str) -> &'static Var {
        VARS.iter()
            .find(|v| v.name == name)
            .unwrap_or_else(|| panic!("{name} is not in the table of variables"))
    }

    fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The error for `name`'s value.
    fn error(
        &self,
        name: &str,
        problem: impl Into<String>,
        allowed: impl Into<String>,
    ) -> ConfigError {
        let var = Values::var(name);
        let value = match (var.kind, self.text(name)) {
            (_, None) => "(missing)".to_owned(),
            (Kind::Secret, Some(_)) => "(hidden)".to_owned(),
            (Kind::Url(_), Some(text)) => quote(&redact_url(text)),
            (_, Some(text)) => quote(text),
        };
        ConfigError {
            variable: var.name,
            meaning: var.meaning,
            value,
            problem: problem.into(),
            allowed: allowed.into(),
        }
    }

    /// A whole number, seconds or milliseconds (every one has a default), in its range.
    fn number(&self, name: &str) -> Result<u64, ConfigError> {
        let (min, max, unit) = match Values::var(name).kind {
            Kind::Whole(min, max) => (min, max, ""),
            Kind::Seconds(min, max) => (min, max, " of seconds"),
            Kind::Millis(min, max) => (min, max, " of milliseconds"),
            other => panic!("{name} is {other:?}, not a number"),
        };
        let allowed = format!("a whole number{unit} from {min} to {max}");
        match self.text(name).unwrap_or_default().trim().parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            Ok(_) => Err(self.error(name, "out of range", allowed)),
            Err(_) => Err(self.error(name, "not a whole number", allowed)),
        }
    }

    fn whole<T: TryFrom<u64>>(&self, name: &str) -> Result<T, ConfigError> {
        // The table's ranges fit the fields' types.
        T::try_from(self.number(name)?)
            .map_err(|_| self.error(name, "out of range", "a smaller number"))
    }

    fn duration(&self, name: &str) -> Result<Duration, ConfigError> {
        let n = self.number(name)?;
        Ok(match Values::var(name).kind {
            Kind::Millis(..) => Duration::from_millis(n),
            _ => Duration::from_secs(n),
        })
    }

    fn bool(&self, name: &str) -> Result<Option<bool>, ConfigError> {
        let Some(text) = self.text(name) else {
            return Ok(None);
        };
        match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(Some(true)),
            "false" | "0" | "no" | "off" => Ok(Some(false)),
            _ => Err(self.error(
                name,
                "not a boolean",
                "true or false (also 1/0, yes/no, on/off)",
            )),
        }
    }

    fn url(&self, name: &str) -> Result<Url, ConfigError> {
        let Kind::Url(schemes) = Values::var(name).kind else {
            panic!("{name} is not a URL");
        };
        let allowed = format!(
            "a URL with scheme {}:// and a host",
            schemes.join(":// or ")
        );
        match Url::parse(self.text(name).unwrap_or_default()) {
            Ok(url) if schemes.contains(&url.scheme()) && url.has_host() => Ok(url),
            Ok(url) => Err(self.error(
                name,
                format!("unsupported scheme {:?} or missing host", url.scheme()),
                allowed,
            )),
            Err(e) => Err(self.error(name, format!("not a valid URL ({e})"), allowed)),
        }
    }

    fn platforms(&self, name: &str) -> Result<Option<Vec<Platform>>, ConfigError> {
        let Some(text) = self.text(name) else {
            return Ok(None);
        };
        let mut platforms = Vec::new();
        for item in split_list(text) {
            let platform = item.to_ascii_lowercase().parse::<Platform>().map_err(|e| {
                let problem = format!("{:?} is not a supported platform", e.value);
                self.error(name, problem, e.allowed)
            })?;
            if !platforms.contains(&platform) {
                platforms.push(platform);
            }
        }
        if platforms.is_empty() {
            return Err(self.error(name, "no platform given", Platform::allowed()));
        }
        Ok(Some(platforms))
    }

    /// Whether `name` is set to `word`, once its text is known to be one of its choices.
    fn is(&self, name: &str, word: &str) -> Result<bool, ConfigError> {
        let Kind::Choice(words) = Values::var(name).kind else {
            panic!("{name} is not a choice");
        };
        match self.text(name).unwrap_or_default() {
            text if words.contains(&text) => Ok(text == word),
            _ => Err(self.error(name, "not one of the choices", words.join(", "))),
        }
    }

    fn addr(&self, name: &str) -> Result<SocketAddr, ConfigError> {
        let allowed = "IP:PORT, e.g. 127.0.0.1:3000 or 0.0.0.0:3000";
        let text = self.text(name).unwrap_or_default();
        text.parse()
            .map_err(|_| self.error(name, "not a socket address", allowed))
    }

    fn origins(&self, name: &str) -> Result<Vec<String>, ConfigError> {
        let origins = split_list(self.text(name).unwrap_or_default());
        let not_origin =
            |o: &&String| o.as_str() != "*" && Url::parse(o).map_or(true, |u| !u.has_host());
        match origins.iter().find(not_origin) {
            Some(bad) => Err(ConfigError {
                value: quote(bad),
                ..self.error(
                    name,
                    "not an origin",
                    "a comma list of origins like http://localhost:5173, or *",
                )
            }),
            None => Ok(origins),
        }
    }

    fn secret(&self, name: &str) -> Option<SecretString> {
        self.text(name).map(SecretString::from)
    }

    fn secret_url(&self, name: &str) -> Result<SecretString, ConfigError> {
        Ok(SecretString::from(self.url(name)?.to_string()))
    }

    /// The first pair of [`ORDER`] whose values are the wrong way round.
    fn check_order(&self) -> Result<(), ConfigError> {
        for &(name, smaller, strict) in ORDER {
            let (value, bound) = (self.number(name)?, self.number(smaller)?);
            if value < bound || (strict && value == bound) {
                let (problem, allowed) = match strict {
                    true => ("not longer than", "more than"),
                    false => ("smaller than", "at least"),
                };
                let problem = format!("{problem} {smaller}");
                return Err(self.error(name, problem, format!("{allowed} {bound}")));
            }
        }
        Ok(())
    }
}

fn validate(v: &Values) -> Result<Settings, ConfigError> {
    let platforms = v.platforms("SOCIAL_PLATFORMS")?.unwrap_or_default();
    let worker_platforms = v.platforms("WORKER_PLATFORMS")?;
    let worker_platforms = worker_platforms.unwrap_or_else(|| platforms.clone());
    if let Some(p) = worker_platforms.iter().find(|p| !platforms.contains(p)) {
        let ingested: Vec<&str> = platforms.iter().map(|p| p.as_str()).collect();
        let problem = format!("{p} is not in SOCIAL_PLATFORMS");
        return Err(v.error("WORKER_PLATFORMS", problem, ingested.join(", ")));
    }
    let url = v.url("SOCIAL_MEDIA_API_URL")?;
    let is_ayrshare = url
        .host_str()
        .is_some_and(|h| h == "ayrshare.com" || h.ends_with(".ayrshare.com"));
    let api_key = match v.secret("SOCIAL_MEDIA_API_KEY") {
        Some(key) => key,
        None if is_ayrshare => {
            return Err(v.error(
                "SOCIAL_MEDIA_API_KEY",
                format!("required when SOCIAL_MEDIA_API_URL is Ayrshare ({url})"),
                "your Ayrshare API key",
            ));
        }
        None => SecretString::from(SIMULATOR_API_KEY),
    };
    v.check_order()?;
    let webhooks = webhook_settings(v)?;
    let brands_key = match v.text("BRANDS_KEY") {
        None => None,
        Some(text) => Some(BrandsKey::from_hex(text).map_err(|e| {
            v.error(
                "BRANDS_KEY",
                e.to_string(),
                "64 hexadecimal digits, e.g. from `openssl rand -hex 32`",
            )
        })?),
    };
    Ok(Settings {
        platforms,
        history_last_days: v.whole("SOCIAL_MEDIA_API_HISTORY_LAST_DAYS")?,
        provider: ProviderSettings {
            url,
            api_key,
            profile_key: v.secret("SOCIAL_MEDIA_API_PROFILE_KEY"),
        },
        database_url: v.secret_url("DATABASE_URL")?,
        migration_database_url: v.secret_url("MIGRATION_DATABASE_URL")?,
        database_max_connections: v.whole("DATABASE_MAX_CONNECTIONS")?,
        amqp_url: v.secret_url("AMQP_URL")?,
        api_addr: v.addr("API_ADDR")?,
        worker_platforms,
        poll_interval: v.duration("POLL_INTERVAL_SECONDS")?,
        poll_policy: match v.is("POLL_POLICY", "fifo")? {
            true => PollPolicy::Fifo,
            false => PollPolicy::Adaptive,
        },
        poll_rate_horizon: v.duration("POLL_RATE_HORIZON_SECONDS")?,
        shutdown_grace: v.duration("SHUTDOWN_GRACE_SECONDS")?,
        log_format: match v.is("LOG_FORMAT", "json")? {
            true => LogFormat::Json,
            false => LogFormat::Text,
        },
        cors_allowed_origins: v.origins("CORS_ALLOWED_ORIGINS")?,
        audit_head_log_interval: v.duration("AUDIT_HEAD_LOG_SECONDS")?,
        api_rate_limit_per_second: v.whole("API_RATE_LIMIT_PER_SECOND")?,
        api_rate_limit_burst: v.whole("API_RATE_LIMIT_BURST")?,
        tasks: TaskSettings {
            relay_enabled: v.bool("RELAY_ENABLED")?,
            relay_batch_size: v.whole("RELAY_BATCH_SIZE")?,
            relay_brand_in_flight: v.whole("RELAY_BRAND_IN_FLIGHT")?,
            lease: v.duration("TASK_LEASE_SECONDS")?,
            prefetch: v.whole("WORKER_PREFETCH")?,
            max_attempts: v.whole("TASK_MAX_ATTEMPTS")?,
            retry_base: v.duration("TASK_RETRY_BASE_SECONDS")?,
            retry_max: v.duration("TASK_RETRY_MAX_SECONDS")?,
            sweeper_interval: v.duration("SWEEPER_INTERVAL_SECONDS")?,
            published_timeout: v.duration("SWEEPER_PUBLISHED_TIMEOUT_SECONDS")?,
        },
        resilience: ResilienceSettings {
            request_timeout: v.duration("PROVIDER_TIMEOUT_MS")?,
            retry_max_attempts: v.whole("PROVIDER_RETRY_MAX_ATTEMPTS")?,
            retry_base: v.duration("PROVIDER_RETRY_BASE_MS")?,
            retry_cap: v.duration("PROVIDER_RETRY_CAP_MS")?,
            breaker_window: v.duration("BREAKER_WINDOW_SECONDS")?,
            breaker_min_calls: v.whole("BREAKER_MIN_CALLS")?,
            breaker_failure_rate_percent: v.whole("BREAKER_FAILURE_RATE_PERCENT")?,
            breaker_open: v.duration("BREAKER_OPEN_SECONDS")?,
            breaker_open_growth: v.whole("BREAKER_OPEN_GROWTH")?,
            breaker_open_max: v.duration("BREAKER_OPEN_MAX_SECONDS")?,
            breaker_probe_permits: v.whole("BREAKER_PROBE_PERMITS")?,
            breaker_recheck: v.duration("BREAKER_RECHECK_MS")?,
            rate_budget_requests: v.whole("RATE_BUDGET_REQUESTS")?,
            rate_budget_window: v.duration("RATE_BUDGET_WINDOW_SECONDS")?,
            budget_reserve_percent: v.whole("BUDGET_RESERVE_PERCENT")?,
        },
        replies: ReplySettings {
            cache_window: v.duration("REPLY_CACHE_WINDOW_SECONDS")?,
            undecided_limit: v.duration("REPLY_UNDECIDED_LIMIT_SECONDS")?,
            idempotency_key_ttl: v.duration("IDEMPOTENCY_KEY_TTL_SECONDS")?,
        },
        ingest: IngestSettings {
            history_limit: v.whole("INGEST_HISTORY_LIMIT")?,
            messaging_recheck: v.duration("INGEST_MESSAGING_RECHECK_SECONDS")?,
        },
        webhooks,
        brands_key,
    })
}

/// Webhooks need a secret to be registered or received, and plain HTTP is for this machine.
fn webhook_settings(v: &Values) -> Result<WebhookSettings, ConfigError> {
    let secret = v.secret("WEBHOOK_SECRET");
    let previous_secret = v.secret("WEBHOOK_SECRET_PREVIOUS");
    let public_base_url = match v.text("PUBLIC_BASE_URL") {
        None => None,
        Some(_) => Some(v.url("PUBLIC_BASE_URL")?),
    };
    if let Some(url) = &public_base_url {
        let local = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        if url.scheme() == "http" && !local {
            let problem = "plain http reaches only this machine";
            return Err(v.error("PUBLIC_BASE_URL", problem, "an https:// URL"));
        }
        if secret.is_none() {
            let problem = "set, but WEBHOOK_SECRET is not";
            return Err(v.error(
                "PUBLIC_BASE_URL",
                problem,
                "unset, or WEBHOOK_SECRET set too",
            ));
        }
    }
    if previous_secret.is_some() && secret.is_none() {
        let problem = "set, but WEBHOOK_SECRET is not";
        return Err(v.error(
            "WEBHOOK_SECRET_PREVIOUS",
            problem,
            "the secret being replaced, beside WEBHOOK_SECRET",
        ));
    }
    Ok(WebhookSettings {
        public_base_url,
        secret,
        previous_secret,
        tolerance: v.duration("WEBHOOK_TOLERANCE_SECONDS")?,
        safety_poll: v.duration("WEBHOOK_SAFETY_POLL_SECONDS")?,
        quiet: v.duration("WEBHOOK_QUIET_SECONDS")?,
        check: v.duration("WEBHOOK_CHECK_SECONDS")?,
    })
}

fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn quote(text: &str) -> String {
    format!("{text:?}")
}

pub use migrations::redact_url;

#[cfg(test)]
mod tests;
