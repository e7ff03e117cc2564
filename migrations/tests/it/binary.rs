//! The `migrations` binary, run as a process.

use crate::all_migrations;
use crate::scratch::Scratch;
use std::process::{Command, Output};

fn migrations(database_url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_migrations"))
        .args(args)
        .env("MIGRATION_DATABASE_URL", database_url)
        .output()
        .expect("run the migrations binary")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn up_creates_a_missing_database_and_status_lists_the_applied_migrations() {
    let scratch = Scratch::missing();
    assert!(!scratch.exists().await);

    let up = migrations(&scratch.url, &["up"]);
    assert!(up.status.success(), "{}", stderr(&up));
    let all = all_migrations();
    let last = all.last().expect("at least one migration");
    let out = stdout(&up);
    assert!(out.contains("created database"), "{out}");
    for name in &all {
        assert!(out.contains(&format!("applied {name}")), "{out}");
    }
    assert!(scratch.exists().await);

    let status = migrations(&scratch.url, &["status"]);
    assert!(status.status.success(), "{}", stderr(&status));
    let expected: Vec<String> = all.iter().map(|m| format!("applied  {m}")).collect();
    let lines: Vec<String> = stdout(&status).lines().map(str::to_owned).collect();
    assert_eq!(lines, expected);

    let again = migrations(&scratch.url, &["up"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(stdout(&again).trim(), "the schema is up to date");

    let down = migrations(&scratch.url, &["down"]);
    assert!(down.status.success(), "{}", stderr(&down));
    assert_eq!(stdout(&down).trim(), format!("rolled back {last}"));
    let status = stdout(&migrations(&scratch.url, &["status"]));
    assert_eq!(
        status.lines().last(),
        Some(format!("pending  {last}").as_str())
    );

    let down = migrations(&scratch.url, &["down", "-n", "1000"]);
    assert!(down.status.success(), "{}", stderr(&down));
    assert_eq!(stdout(&down).lines().count(), all.len() - 1);
    assert!(
        stdout(&down)
            .lines()
            .last()
            .is_some_and(|l| l == "rolled back m20261129_000001_create_users")
    );

    let fresh = migrations(&scratch.url, &["fresh"]);
    assert!(fresh.status.success(), "{}", stderr(&fresh));
    let status = stdout(&migrations(&scratch.url, &["status"]));
    assert!(
        status.lines().all(|l| l.starts_with("applied ")),
        "{status}"
    );
}

#[test]
fn an_unreachable_database_is_one_line_on_stderr_without_the_password() {
    for command in ["up", "status", "down", "fresh"] {
        let output = migrations("postgres://postgres:s3cret@127.0.0.1:1/nowhere", &[command]);
        assert!(!output.status.success(), "{command}");
        let err = stderr(&output);
        assert_eq!(err.trim_end().lines().count(), 1, "{command}: {err}");
        assert!(
            err.contains("cannot connect to PostgreSQL"),
            "{command}: {err}"
        );
        assert!(err.contains("127.0.0.1:1"), "{command}: {err}");
        assert!(!err.contains("s3cret"), "{command}: {err}");
    }
}

#[tokio::test]
async fn status_on_a_missing_database_says_so() {
    let scratch = Scratch::missing();
    let output = migrations(&scratch.url, &["status"]);
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(err.contains("does not exist"), "{err}");
    assert!(!scratch.exists().await, "only `up` creates the database");
}
