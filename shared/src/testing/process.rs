//! Running the workspace's binaries as child processes and reading what they log.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Waits until `url` answers with a 2xx status, polling every 50 ms; panics after `timeout`.
pub async fn wait_http_ok(http: &reqwest::Client, url: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if http
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} did not answer within {timeout:?}");
}

/// Path of a workspace binary in the same target directory as the running executable: beside
/// it for a binary (`target/release/chaos`), one level up for a test or benchmark
/// (`target/debug/deps/it-…`). `cargo build --workspace --bins` (which `scripts/test` runs
/// first) builds them. An absolute `name` is kept as it is.
pub fn bin_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("executable path");
    let mut dir = exe.parent().expect("target directory");
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir = dir.parent().expect("target directory");
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind port 0")
        .port()
}

/// Waits until `address` accepts a TCP connection; an error after `deadline`.
pub(super) fn wait_accepting(address: &str, deadline: Instant) -> Result<(), String> {
    while std::net::TcpStream::connect(address).is_err() {
        if Instant::now() > deadline {
            return Err(format!("{address} does not accept connections"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Runs `program args…` to completion; its stdout, or its stderr as the error.
pub(super) fn run_command(program: &str, args: &[&str]) -> Result<String, String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "{program} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Runs a blocking closure (commands, waits) on tokio's blocking pool.
pub(super) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("blocking helper thread")
}

/// Seconds since the Unix epoch: the creation time in the names of test resources.
pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Creates an admin with `<api> create-admin` (`api` a binary name or absolute path, `env` its
/// environment) and signs in as them at `api_base` over HTTP; the bearer token. Panics with
/// the output or answer if either fails.
pub async fn admin_token(
    http: &reqwest::Client,
    api_base: &str,
    api: &str,
    env: &HashMap<String, String>,
    (email, password): (&str, &str),
) -> String {
    let (api, env) = (api.to_owned(), env.clone());
    let args = ["create-admin", "--email", email, "--password", password].map(str::to_owned);
    let (status, output) = blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut admin = Process::spawn(&api, &args, &env);
        let status = admin.wait_exit(Duration::from_secs(60));
        (status, admin.output())
    })
    .await;
    assert!(status.success(), "api create-admin failed:\n{output}");
    let login = serde_json::json!({"email": email, "password": password});
    let answer: serde_json::Value = http
        .post(format!("{api_base}/v1/users/login"))
        .json(&login)
        .send()
        .await
        .expect("api reachable")
        .json()
        .await
        .expect("login answers JSON");
    answer["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token in {answer}"))
        .to_owned()
}

/// A running child process whose stderr lines are collected.
pub struct Process {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    /// Collects stderr until the process closes it.
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Process {
    /// Starts `name` with exactly `env` (plus PATH) as its environment.
    pub fn spawn(name: &str, args: &[&str], env: &HashMap<String, String>) -> Process {
        let mut child = Command::new(bin_path(name))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn process");
        let stderr = child.stderr.take().expect("piped stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().expect("log lock").push(line);
            }
        });
        Process {
            child,
            lines,
            reader: Some(reader),
        }
    }

    /// Everything it wrote to stderr so far.
    pub fn output(&self) -> String {
        self.lines.lock().expect("log lock").join("\n")
    }

    /// Waits (bounded) until a stderr line contains `needle`.
    pub fn wait_for_line(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.output().contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "no line containing {needle:?} within {timeout:?}; output:\n{}",
            self.output()
        );
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Waits (bounded) for it to exit on its own; everything it wrote is in
    /// [`Process::output`] by then.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // Its stderr is closed: the reader is reading the last lines, or done.
                if let Some(reader) = self.reader.take() {
                    let _ = reader.join();
                }
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "still running after {timeout:?}; output:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills it with SIGKILL (no chance to clean up, as in a crash) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Its last `n` stderr lines.
    pub fn tail(&self, n: usize) -> String {
        let lines = self.lines.lock().expect("log lock");
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `request` to the simulator; its JSON answer (panics if it cannot be reached or the
/// answer is not JSON).
pub async fn sim_json(request: reqwest::RequestBuilder) -> serde_json::Value {
    request
        .send()
        .await
        .expect("simulator reachable")
        .json()
        .await
        .expect("json")
}

/// `GET <base>/_sim/<path>` of the simulator at `base`, as JSON.
pub async fn sim_get(http: &reqwest::Client, base: &str, path: &str) -> serde_json::Value {
    sim_json(http.get(format!("{base}/_sim/{path}"))).await
}

/// `POST <base>/_sim/faults`: replaces the fault set of the simulator at `base`.
pub async fn set_faults(http: &reqwest::Client, base: &str, faults: serde_json::Value) {
    let response = http
        .post(format!("{base}/_sim/faults"))
        .json(&faults)
        .send()
        .await
        .expect("simulator reachable");
    assert!(response.status().is_success(), "faults refused: {faults}");
}
