//! The table of variables, its defaults and its checks.

use super::*;
use secrecy::ExposeSecret;

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
    let err = load_with(&[("SOCIAL_MEDIA_API_HISTORY_LAST_DAYS", "seven")]).expect_err("invalid");
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
fn env_sample_lists_every_variable_of_the_table_with_its_default() {
    let listed: Vec<(&str, &str)> = include_str!("../../../.env.sample")
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        // The log filter is tracing's, not ours.
        .filter(|(name, _)| *name != "RUST_LOG")
        .collect();
    let mut names: Vec<&str> = listed.iter().map(|(name, _)| *name).collect();
    let mut table: Vec<&str> = VARS.iter().map(|v| v.name).collect();
    names.sort_unstable();
    table.sort_unstable();
    assert_eq!(names, table);
    for (name, value) in listed {
        // The sample points scripts/dev at the simulator.
        if matches!(name, "SOCIAL_MEDIA_API_URL" | "SOCIAL_MEDIA_API_KEY") {
            continue;
        }
        let default = Values::var(name).default;
        assert_eq!(Some(value).filter(|v| !v.is_empty()), default, "{name}");
    }
}

#[test]
fn ingest_settings_default_to_the_documented_values_and_bad_ones_are_named() {
    let i = load_with(&[]).expect("defaults are valid").ingest;
    assert_eq!(i.history_limit, 1_000);
    assert_eq!(i.messaging_recheck, Duration::from_secs(3_600));
    let custom = load_with(&[("INGEST_MESSAGING_RECHECK_SECONDS", "5")]).expect("valid");
    assert_eq!(custom.ingest.messaging_recheck, Duration::from_secs(5));
    let err =
        load_with(&[("INGEST_HISTORY_LIMIT", "5000")]).expect_err("over the provider's maximum");
    assert_eq!(err.variable, "INGEST_HISTORY_LIMIT");
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

#[test]
fn webhooks_need_a_secret_and_https_outside_this_machine() {
    let none = load_with(&[]).expect("valid");
    assert!(none.webhooks.public_base_url.is_none() && none.webhooks.secret.is_none());
    assert_eq!(none.webhooks.tolerance, Duration::from_secs(300));

    let secret = ("WEBHOOK_SECRET", "whsec-1");
    let on = load_with(&[("PUBLIC_BASE_URL", "https://inbox.example.com"), secret]).expect("valid");
    assert_eq!(
        on.webhooks
            .public_base_url
            .map(|u| u.to_string())
            .as_deref(),
        Some("https://inbox.example.com/")
    );
    let local = load_with(&[("PUBLIC_BASE_URL", "http://127.0.0.1:3000"), secret]);
    assert!(local.is_ok(), "{local:?}");

    let plain = load_with(&[("PUBLIC_BASE_URL", "http://inbox.example.com"), secret])
        .expect_err("plain http to another machine");
    assert_eq!(plain.variable, "PUBLIC_BASE_URL");
    let unsigned =
        load_with(&[("PUBLIC_BASE_URL", "https://inbox.example.com")]).expect_err("no secret");
    assert!(
        unsigned.to_string().contains("WEBHOOK_SECRET"),
        "{unsigned}"
    );
    let previous =
        load_with(&[("WEBHOOK_SECRET_PREVIOUS", "whsec-0")]).expect_err("a previous secret alone");
    assert_eq!(previous.variable, "WEBHOOK_SECRET_PREVIOUS");
    assert!(
        !previous.to_string().contains("whsec-0"),
        "secret leaked: {previous}"
    );
}
