//! The `ayrshare-sim` binary: flags, start-up line, and the acceptance request.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ayrshare-sim");

#[tokio::test]
async fn help_documents_every_flag() {
    let output = Command::new(BIN)
        .arg("--help")
        .output()
        .await
        .expect("binary runs");
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).expect("utf-8 help");
    for flag in [
        "--addr",
        "--api-key",
        "--refresh-seconds",
        "--rate-limit",
        "--rate-window-seconds",
        "--seed",
        "--platforms",
        "--posts-per-platform",
        "--post-days",
        "--comments-per-post",
        "--replies-per-comment",
        "--empty-posts-per-platform",
        "--conversations-per-platform",
        "--messages-per-conversation",
        "--comments-per-minute",
        "--messages-per-minute",
        "--faults",
        "--log-format",
    ] {
        assert!(help.contains(flag), "--help documents {flag}");
    }
    assert!(help.contains("127.0.0.1:3100") && help.contains("sim-key"));
}

#[tokio::test]
async fn the_binary_answers_the_acceptance_request_on_a_free_port() {
    let mut child = Command::new(BIN)
        .args(["--addr", "127.0.0.1:0", "--api-key", "sim-key"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().expect("stdout piped");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("start-up line within 20 s")
        .expect("stdout readable")
        .expect("a line");
    let base = line
        .rsplit(' ')
        .next()
        .expect("address at the end")
        .to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{line}");

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let response = client
        .get(format!(
            "{base}/api/history?lastDays=7&platforms[0]=twitter"
        ))
        .header("Authorization", "Bearer sim-key")
        .send()
        .await
        .expect("history answers");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("JSON");
    let posts = body["history"].as_array().expect("history");
    assert!(!posts.is_empty());
    assert!(posts.iter().all(|p| p["platforms"][0] == "twitter"));

    let ledger: Value = client
        .get(format!("{base}/_sim/ledger"))
        .send()
        .await
        .expect("ledger answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(ledger, crate::support::empty_ledger());

    child.kill().await.expect("binary stops");
}
