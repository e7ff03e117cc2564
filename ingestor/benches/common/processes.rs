//! Starting the workspace's binaries from a benchmark (included by each one with `#[path]`).

use serde_json::Value;
use shared::testing::Process;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A workspace binary: `target/release/<name>` when it exists and is newer than
/// `target/debug/<name>`, else the debug one (`bin_path` alone would look only beside this
/// benchmark, in `target/release`, where `cargo bench` builds just this crate's `ingestor`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("benchmark path");
    // target/<profile>/deps/<benchmark>-… → target
    let target = exe.ancestors().nth(3).expect("target directory");
    let modified = |p: &Path| p.metadata().and_then(|m| m.modified()).ok();
    let debug = target.join("debug").join(name);
    let release = target.join("release").join(name);
    let path = match (modified(&release), modified(&debug)) {
        (Some(r), Some(d)) if r > d => release,
        (Some(_), None) => release,
        _ => debug,
    };
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

pub fn spawn(name: &str, args: &[String], env: &HashMap<String, String>) -> Process {
    let path = binary(name);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // An absolute path: `bin_path` keeps it as it is.
    Process::spawn(path.to_str().expect("UTF-8 path"), &args, env)
}

pub async fn get_json(http: &reqwest::Client, url: &str) -> Value {
    http.get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"))
}
