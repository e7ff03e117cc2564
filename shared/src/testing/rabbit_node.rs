//! [`RabbitNode`]: a RabbitMQ node of its own for a test or a tool, so that stopping, killing
//! or starving the broker never touches the machine's RabbitMQ.
//!
//! The node is started with `rabbitmq-server -detached` under the name
//! `sm-<unix seconds>-<random>@localhost`, with its AMQP and distribution ports free ports,
//! and its config file, data, logs and pid file in a folder `sm-rabbit-<unix seconds>-<random>`
//! of the temp dir; the enabled plugins file is empty, so no plugin of the machine (the
//! management UI) is started. The Debian wrapper runs the server and `rabbitmqctl` as the
//! `rabbitmq` user, whose Erlang cookie both share, so `rabbitmqctl -n <node>` reaches it.
//! Dropping it kills the node and deletes the folder; nodes and folders left by killed runs are
//! removed after [`STALE_AFTER`] by a later [`RabbitNode::start`].

use super::broker::rabbitmqctl;
use super::process::{blocking, free_port, unix_now, wait_accepting};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Prefix of the node folders in the temp dir; the creation time (unix seconds) follows it.
const DIR_PREFIX: &str = "sm-rabbit-";

/// Nodes older than this are leftovers of killed runs (tests take minutes, chaos ten).
const STALE_AFTER: Duration = Duration::from_secs(3600);

/// Longest wait for the node to accept connections after a start.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// Ports RabbitMQ's CLI tools listen on for their own distribution: never give them to a node.
const CLI_DIST_PORTS: std::ops::RangeInclusive<u16> = 35672..=35682;

/// The default `vm_memory_high_watermark`, restored after a memory alarm.
const DEFAULT_WATERMARK: &str = "0.4";

/// A running RabbitMQ node on its own ports, killed and deleted when dropped.
pub struct RabbitNode {
    spec: Arc<Spec>,
}

/// Where a node lives; shared with the blocking threads that run its commands.
struct Spec {
    name: String,
    dir: PathBuf,
    port: u16,
    dist_port: u16,
}

impl RabbitNode {
    /// Starts a fresh node and waits until it accepts AMQP connections. Panics with the
    /// reason (and the node's log) if it does not start.
    pub async fn start() -> RabbitNode {
        blocking(|| {
            remove_stale_nodes();
            let created = unix_now();
            let suffix = &uuid::Uuid::new_v4().simple().to_string()[..12];
            let dir = std::env::temp_dir().join(format!("{DIR_PREFIX}{created}-{suffix}"));
            let spec = Spec {
                name: format!("sm-{created}-{suffix}@localhost"),
                port: node_port(),
                dist_port: node_port(),
                dir,
            };
            let node = RabbitNode {
                spec: Arc::new(spec),
            };
            node.spec
                .prepare()
                .unwrap_or_else(|e| panic!("cannot prepare {}: {e}", node.spec.dir.display()));
            node.spec.boot();
            node
        })
        .await
    }

    /// `amqp://guest:guest@127.0.0.1:<port>/%2f`: the node's default vhost.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.spec.port)
    }

    /// The Erlang node name (for `rabbitmqctl -n`).
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Stops the broker application (`stop_app`): connections drop and are refused, the node
    /// stays up, so [`RabbitNode::start_app`] is quick.
    pub async fn stop_app(&self) {
        let spec = self.spec.clone();
        blocking(move || ctl(&spec.name, &["stop_app"]))
            .await
            .unwrap_or_else(|e| panic!("cannot stop the RabbitMQ app: {e}"));
    }

    /// Starts the application again and waits until it accepts connections.
    pub async fn start_app(&self) {
        let spec = self.spec.clone();
        blocking(move || spec.start_app())
            .await
            .unwrap_or_else(|e| panic!("cannot start the RabbitMQ app again: {e}"));
    }

    /// Kills the whole node (SIGKILL to the Erlang VM, as a crash would) and starts it again
    /// on the same data, ports and name; waits until it accepts connections.
    pub async fn restart(&self) {
        let spec = self.spec.clone();
        blocking(move || {
            spec.kill();
            spec.boot();
        })
        .await;
    }

    /// Raises (`true`) or clears a memory alarm: with the watermark at 0 the broker blocks
    /// every publishing connection until it is restored.
    pub async fn set_memory_alarm(&self, on: bool) {
        let spec = self.spec.clone();
        let watermark = if on { "0" } else { DEFAULT_WATERMARK };
        blocking(move || ctl(&spec.name, &["set_vm_memory_high_watermark", watermark]))
            .await
            .unwrap_or_else(|e| panic!("cannot set the memory watermark to {watermark}: {e}"));
    }

    /// The blocking [`RabbitNode::start_app`], for a guard's `Drop`.
    pub(super) fn start_app_blocking(&self) -> Result<(), String> {
        self.spec.start_app()
    }
}

impl Spec {
    fn start_app(&self) -> Result<(), String> {
        ctl(&self.name, &["start_app"])?;
        self.wait_ready()
    }

    fn kill(&self) {
        kill_node(&self.name, &self.dir.join("pid"));
    }

    /// The folder, its config (listener on 127.0.0.1 only) and the empty plugins file. The
    /// server runs as the `rabbitmq` user, so the folder is open to it.
    fn prepare(&self) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        for sub in ["", "data", "log"] {
            let dir = self.dir.join(sub);
            std::fs::create_dir_all(&dir)?;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))?;
        }
        std::fs::write(
            self.dir.join("rabbitmq.conf"),
            format!(
                "listeners.tcp.default = 127.0.0.1:{}\nloopback_users.guest = true\n",
                self.port
            ),
        )?;
        std::fs::write(self.dir.join("enabled_plugins"), "[].\n")
    }

    /// `rabbitmq-server -detached` with this node's environment, then [`Self::wait_ready`];
    /// panics with the end of the node's log if it does not come up.
    fn boot(&self) {
        let path = |p: &str| self.dir.join(p).display().to_string();
        let started = Command::new("rabbitmq-server")
            .arg("-detached")
            .env("RABBITMQ_NODENAME", &self.name)
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_CONFIG_FILE", path("rabbitmq.conf"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", path("enabled_plugins"))
            .env("RABBITMQ_MNESIA_BASE", path("data"))
            .env("RABBITMQ_LOG_BASE", path("log"))
            .env("RABBITMQ_PID_FILE", path("pid"))
            .status();
        let outcome = match started {
            Ok(status) if status.success() => self.wait_ready(),
            Ok(status) => Err(format!("rabbitmq-server -detached exited with {status}")),
            Err(e) => Err(format!("cannot run rabbitmq-server: {e}")),
        };
        if let Err(e) = outcome {
            let log =
                std::fs::read_to_string(self.dir.join("log").join(format!("{}.log", self.name)))
                    .unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            panic!(
                "RabbitMQ node {} did not start: {e}\n{}",
                self.name,
                tail.join("\n")
            );
        }
    }

    /// Waits (bounded) until the node reports started and its listener accepts. Right after
    /// `-detached` the node is not registered yet and `await_startup` fails at once: retried.
    fn wait_ready(&self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline
                .saturating_duration_since(Instant::now())
                .as_secs()
                .max(1);
            match ctl(
                &self.name,
                &["await_startup", "--timeout", &left.to_string()],
            ) {
                Ok(_) => break,
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(500)),
            }
        }
        // The app reports started a moment before the listener accepts connections.
        wait_accepting(&format!("127.0.0.1:{}", self.port), deadline)
    }
}

impl Drop for RabbitNode {
    fn drop(&mut self) {
        self.spec.kill();
        let _ = std::fs::remove_dir_all(&self.spec.dir);
    }
}

fn ctl(node: &str, args: &[&str]) -> Result<String, String> {
    rabbitmqctl(Some(node), args)
}

/// A free port outside the CLI tools' distribution ports.
fn node_port() -> u16 {
    loop {
        let port = free_port();
        if !CLI_DIST_PORTS.contains(&port) {
            return port;
        }
    }
}

/// SIGKILLs the node's VM (its pid file says which) and waits (bounded) until it is gone.
/// Best effort: a node that is not running is left as it is.
fn kill_node(name: &str, pid_file: &Path) {
    let Some(pid) = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
    else {
        return;
    };
    // The pid file may be stale: only a process started for this node is killed.
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    if !String::from_utf8_lossy(&cmdline).contains(name.split('@').next().unwrap_or(name)) {
        return;
    }
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Kills the nodes of folders older than [`STALE_AFTER`] and removes the folders. Best
/// effort: a failure here never fails a start.
fn remove_stale_nodes() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    let now = unix_now();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name.to_str().and_then(|n| n.strip_prefix(DIR_PREFIX)) else {
            continue;
        };
        let Some((created, suffix)) = rest.split_once('-') else {
            continue;
        };
        let stale = created
            .parse::<u64>()
            .is_ok_and(|c| now.saturating_sub(c) > STALE_AFTER.as_secs());
        if stale {
            let dir = entry.path();
            kill_node(
                &format!("sm-{created}-{suffix}@localhost"),
                &dir.join("pid"),
            );
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
