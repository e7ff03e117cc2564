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
    /// PostgreSQL URL (`DATABASE_URL`); may hold a password.
    pub database_url: SecretString,
    /// Pool size of each process (`DATABASE_MAX_CONNECTIONS`).
    pub database_max_connections: u32,
    /// RabbitMQ URL (`AMQP_URL`); may hold a password.
    pub amqp_url: SecretString,
    /// Where `api` listens (`API_ADDR`).
    pub api_addr: SocketAddr,
    /// Platforms a worker consumes (`WORKER_PLATFORMS`); defaults to all of `platforms`.
    pub worker_platforms: Vec<Platform>,
    /// How often the scheduler enqueues an ingest per platform (`POLL_INTERVAL_SECONDS`).
    pub poll_interval: Duration,
    /// Time allowed to finish or hand back in-flight work on SIGTERM (`SHUTDOWN_GRACE_SECONDS`).
    pub shutdown_grace: Duration,
    /// Log output (`LOG_FORMAT`): `text` for people, `json` for production.
    pub log_format: LogFormat,
    /// Origins allowed by CORS (`CORS_ALLOWED_ORIGINS`).
    pub cors_allowed_origins: Vec<String>,
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
            .field("database_url", &redact_url(self.database_url.expose_secret()))
            .field("amqp_url", &redact_url(self.amqp_url.expose_secret()))
            .field("api_addr", &self.api_addr)
            .field("worker_platforms", &self.worker_platforms)
            .field("poll_interval", &self.poll_interval)
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
    database_max_connections: String,
    amqp_url: String,
    api_addr: String,
    worker_platforms: Option<String>,
    poll_interval_seconds: String,
    shutdown_grace_seconds: String,
    log_format: String,
    cors_allowed_origins: String,
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
        "postgres://postgres@127.0.0.1:5432/social_messages",
    ),
    ("database_max_connections", "10"),
    ("amqp_url", "amqp://guest:guest@127.0.0.1:5672/%2f"),
    ("api_addr", "127.0.0.1:3000"),
    ("poll_interval_seconds", "60"),
    ("shutdown_grace_seconds", "8"),
    ("log_format", "text"),
    ("cors_allowed_origins", "http://localhost:5173"),
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
    let amqp_url = parse_url("AMQP_URL", &raw.amqp_url, &["amqp", "amqps"])?;
    let api_addr = raw.api_addr.parse().map_err(|_| ConfigError {
        variable: "API_ADDR",
        value: quote(&raw.api_addr),
        problem: "not a socket address".to_owned(),
        allowed: "IP:PORT, e.g. 127.0.0.1:3000 or 0.0.0.0:3000".to_owned(),
    })?;
    let poll = parse_number(
        "POLL_INTERVAL_SECONDS",
        &raw.poll_interval_seconds,
        1,
        86_400,
        "a whole number of seconds from 1 to 86400",
    )?;
    let grace = parse_number(
        "SHUTDOWN_GRACE_SECONDS",
        &raw.shutdown_grace_seconds,
        0,
        3_600,
        "a whole number of seconds from 0 to 3600",
    )?;
    let database_max_connections = parse_number(
        "DATABASE_MAX_CONNECTIONS",
        &raw.database_max_connections,
        1,
        1_000,
        "a whole number from 1 to 1000",
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
    Ok(Settings {
        platforms,
        history_last_days,
        provider: ProviderSettings {
            url,
            api_key,
            profile_key: raw.social_media_api_profile_key.map(SecretString::from),
        },
        database_url: SecretString::from(database_url.to_string()),
        database_max_connections,
        amqp_url: SecretString::from(amqp_url.to_string()),
        api_addr,
        worker_platforms,
        poll_interval: Duration::from_secs(poll),
        shutdown_grace: Duration::from_secs(grace),
        log_format,
        cors_allowed_origins,
    })
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

/// The URL with its password replaced by `***`, for logs and errors. Text that does not parse
/// as a URL is shown only up to its last `@`, which is where a password would end.
pub fn redact_url(text: &str) -> String {
    match Url::parse(text) {
        Ok(mut url) => {
            if url.password().is_some() {
                // Only fails for URLs that cannot have credentials, which have no password.
                let _ = url.set_password(Some("***"));
            }
            url.to_string()
        }
        Err(_) => match text.rfind('@') {
            Some(at) => format!("***{}", &text[at..]),
            None => text.to_owned(),
        },
    }
}

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
        env.insert("CONFIG_FILE".to_owned(), "/dev/null".to_owned());
        load_from(env)
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
