//! The processes start, report readiness, refuse bad configuration and stop on SIGTERM.

use shared::testing::{Process, free_port};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const BINARIES: [&str; 3] = ["api", "ingestor", "replier"];

/// Settings that reach the machine's PostgreSQL and RabbitMQ (no table is touched here).
fn base_env() -> HashMap<String, String> {
    [
        ("SOCIAL_MEDIA_API_URL", "http://127.0.0.1:3100/api"),
        (
            "DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/postgres",
        ),
        ("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f"),
        ("RUST_LOG", "info"),
        ("SHUTDOWN_GRACE_SECONDS", "5"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn with(overrides: &[(&str, &str)]) -> HashMap<String, String> {
    let mut env = base_env();
    for (k, v) in overrides {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    env
}

fn readyz(port: u16) -> Option<(u16, serde_json::Value)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let response = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()?;
        let status = response.status().as_u16();
        Some((status, response.json().await.ok()?))
    })
}

/// Polls `/readyz` until it answers `expected` (bounded).
fn wait_ready(process: &Process, port: u16, expected: u16) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = None;
    while Instant::now() < deadline {
        last = readyz(port);
        if let Some((status, body)) = &last
            && *status == expected
        {
            return body.clone();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "readyz never answered {expected}; last {last:?}; output:\n{}",
        process.output()
    );
}

#[test]
fn each_configuration_error_stops_every_binary_with_exit_code_2_naming_the_variable() {
    let cases: [(&str, &[(&str, &str)]); 5] = [
        (
            "SOCIAL_PLATFORMS",
            &[("SOCIAL_PLATFORMS", "twitter,myspace")],
        ),
        (
            "SOCIAL_MEDIA_API_HISTORY_LAST_DAYS",
            &[("SOCIAL_MEDIA_API_HISTORY_LAST_DAYS", "a week")],
        ),
        (
            "SOCIAL_MEDIA_API_URL",
            &[("SOCIAL_MEDIA_API_URL", "not a url")],
        ),
        (
            "SOCIAL_MEDIA_API_KEY",
            &[("SOCIAL_MEDIA_API_URL", "https://api.ayrshare.com/api")],
        ),
        (
            "DATABASE_URL",
            &[
                ("DATABASE_URL", "mysql://admin:hunter2@db/x"),
                ("SOCIAL_MEDIA_API_KEY", "live-key-do-not-print"),
            ],
        ),
    ];
    for binary in BINARIES {
        for (variable, overrides) in cases {
            let mut process = Process::spawn(binary, &[], &with(overrides));
            let status = process.wait_exit(Duration::from_secs(10));
            let output = process.output();
            assert_eq!(
                status.code(),
                Some(2),
                "{binary} with bad {variable}: {output}"
            );
            assert_eq!(output.lines().count(), 1, "one line expected: {output}");
            assert!(output.contains(variable), "{binary}: {output}");
            assert!(output.contains("allowed:"), "{binary}: {output}");
            assert!(!output.contains("hunter2"), "password leaked: {output}");
            assert!(!output.contains("live-key"), "API key leaked: {output}");
        }
    }
}

#[test]
fn readyz_answers_503_naming_the_broker_while_amqp_is_unreachable_and_the_api_stays_up() {
    let port = free_port();
    let closed = free_port();
    let amqp = format!("amqp://guest:guest@127.0.0.1:{closed}/%2f");
    let addr = format!("127.0.0.1:{port}");
    let mut api = Process::spawn(
        "api",
        &[],
        &with(&[("API_ADDR", &addr), ("AMQP_URL", &amqp)]),
    );
    let body = wait_ready(&api, port, 503);
    assert_eq!(body["checks"]["broker"], "down");
    assert_eq!(body["checks"]["database"], "up");
    assert_eq!(body["down"], serde_json::json!(["broker"]));
    api.wait_for_line("broker unreachable", Duration::from_secs(10));
    // Still up and still saying why after several retries.
    std::thread::sleep(Duration::from_secs(2));
    assert!(api.is_running(), "api exited: {}", api.output());
    assert_eq!(readyz(port).map(|(s, _)| s), Some(503));
}

#[test]
fn readyz_answers_200_when_database_and_broker_are_reachable() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let api = Process::spawn("api", &[], &with(&[("API_ADDR", &addr)]));
    let body = wait_ready(&api, port, 200);
    assert_eq!(body["status"], "ready");
    assert_eq!(body["down"], serde_json::json!([]));
}

#[test]
fn readyz_answers_503_naming_the_database_while_postgres_is_unreachable() {
    let port = free_port();
    let closed = free_port();
    let addr = format!("127.0.0.1:{port}");
    let db = format!("postgres://postgres@127.0.0.1:{closed}/postgres");
    let api = Process::spawn(
        "api",
        &[],
        &with(&[("API_ADDR", &addr), ("DATABASE_URL", &db)]),
    );
    let body = wait_ready(&api, port, 503);
    assert_eq!(body["checks"]["database"], "down");
}

#[test]
fn every_process_stops_cleanly_within_10_seconds_of_sigterm() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let env = with(&[("API_ADDR", &addr)]);
    let mut processes: Vec<Process> = BINARIES
        .iter()
        .map(|b| Process::spawn(b, &[], &env))
        .collect();
    wait_ready(&processes[0], port, 200);
    for worker in &processes[1..] {
        worker.wait_for_line("connected to database and broker", Duration::from_secs(30));
    }
    for process in &mut processes {
        let started = Instant::now();
        process.terminate();
        let status = process.wait_exit(Duration::from_secs(10));
        assert!(status.success(), "exit {status:?}: {}", process.output());
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}

#[test]
fn workers_keep_retrying_an_unreachable_database_and_still_stop_on_sigterm() {
    let closed = free_port();
    let db = format!("postgres://postgres@127.0.0.1:{closed}/postgres");
    for binary in ["ingestor", "replier"] {
        let mut worker = Process::spawn(binary, &[], &with(&[("DATABASE_URL", &db)]));
        worker.wait_for_line("database unreachable", Duration::from_secs(10));
        std::thread::sleep(Duration::from_secs(1));
        assert!(worker.is_running(), "{binary} exited: {}", worker.output());
        worker.terminate();
        let status = worker.wait_exit(Duration::from_secs(10));
        assert!(status.success(), "{binary}: {}", worker.output());
    }
}

#[test]
fn an_invalid_ingest_setting_stops_the_ingestor_with_exit_code_2_naming_it() {
    let mut ingestor = Process::spawn("ingestor", &[], &with(&[("INGEST_HISTORY_LIMIT", "lots")]));
    let status = ingestor.wait_exit(Duration::from_secs(10));
    let output = ingestor.output();
    assert_eq!(status.code(), Some(2), "{output}");
    assert_eq!(output.lines().count(), 1, "one line expected: {output}");
    assert!(output.contains("INGEST_HISTORY_LIMIT"), "{output}");
}

#[test]
fn a_process_whose_log_reader_is_gone_still_stops_on_sigterm() {
    // Ctrl-C in a terminal stops the reader of the log pipe (scripts/dev's `sed`) together
    // with the process; logging "shutdown requested" then fails, and must not stop the
    // shutdown.
    for (binary, ready) in [
        ("api", "api listening"),
        ("ingestor", "connected to database and broker"),
        ("replier", "connected to database and broker"),
    ] {
        let addr = format!("127.0.0.1:{}", free_port());
        let mut child = std::process::Command::new(shared::testing::bin_path(binary))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(with(&[("API_ADDR", &addr)]))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let stderr = child.stderr.take().expect("piped stderr");
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
        assert!(
            lines.any(|line| line.is_ok_and(|l| l.contains(ready))),
            "{binary} never logged {ready:?}"
        );
        drop(lines);
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(killed.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().expect("wait").is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{binary} ignored SIGTERM once its log reader was gone");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
