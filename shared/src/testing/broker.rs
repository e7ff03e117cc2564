//! RabbitMQ for tests: a virtual host per test, and stopping the broker on purpose.
//!
//! [`TestBroker::new`] creates a vhost `sm_test_<unix seconds>_<random>` with `rabbitmqctl`
//! (as the machine's tests run as root), gives the URL's user full permissions on it and
//! declares the topology there; dropping it deletes the vhost with everything in it. Vhosts
//! left behind by killed test runs are deleted after six hours by a later `new`.
//!
//! The broker is `amqp://guest:guest@127.0.0.1:5672`; `TEST_AMQP_URL` overrides it (any path
//! is replaced by the test's vhost).

use crate::bus;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use url::Url;

const DEFAULT_BROKER_URL: &str = "amqp://guest:guest@127.0.0.1:5672";

/// Prefix of test vhost names; the creation time (unix seconds) follows it.
const VHOST_PREFIX: &str = "sm_test_";

/// Test vhosts older than this are leftovers of killed test runs.
const STALE_AFTER: Duration = Duration::from_secs(6 * 3600);

/// Longest wait for the broker to come back after [`BrokerOutage`].
const RESTART_TIMEOUT: Duration = Duration::from_secs(90);

/// A fresh vhost with the topology declared, deleted when dropped.
pub struct TestBroker {
    vhost: String,
    url: String,
}

impl TestBroker {
    /// Creates the vhost and declares the topology in it. Panics with the reason if RabbitMQ
    /// or `rabbitmqctl` is not usable: a test cannot run without them.
    pub async fn new() -> TestBroker {
        let base = base_url();
        let user = match base.username() {
            "" => "guest".to_owned(),
            user => user.to_owned(),
        };
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let vhost = format!("{VHOST_PREFIX}{created}_{}", &suffix[..12]);

        let listing = tokio::task::spawn_blocking(|| rabbitmqctl(&["-q", "list_vhosts"]));
        let setup = {
            let (vhost, user) = (vhost.clone(), user.clone());
            tokio::task::spawn_blocking(move || {
                rabbitmqctl(&["add_vhost", &vhost])?;
                rabbitmqctl(&["set_permissions", "-p", &vhost, &user, ".*", ".*", ".*"])
            })
        };
        if let Ok(Ok(list)) = listing.await {
            delete_stale_vhosts(&list, created);
        }
        setup
            .await
            .expect("rabbitmqctl thread")
            .unwrap_or_else(|e| panic!("cannot create the test vhost {vhost}: {e}"));

        let mut url = base;
        url.set_path(&format!("/{vhost}"));
        let broker = TestBroker {
            vhost,
            url: url.to_string(),
        };
        let conn = broker.connect().await;
        bus::declare_topology(&conn)
            .await
            .unwrap_or_else(|e| panic!("cannot declare the topology in {}: {e}", broker.vhost));
        let _ = conn.close(200, "topology declared".into()).await;
        broker
    }

    /// The AMQP URL of the vhost (e.g. to pass as `AMQP_URL`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The vhost's name.
    pub fn vhost(&self) -> &str {
        &self.vhost
    }

    /// A new connection to the vhost.
    pub async fn connect(&self) -> lapin::Connection {
        bus::connect(&self.url, "test")
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the test vhost {}: {e}", self.vhost))
    }

    /// Messages ready in `queue` of this vhost.
    pub async fn queue_depth(&self, queue: &str) -> u32 {
        let conn = self.connect().await;
        let channel = conn.create_channel().await.expect("channel");
        let depth = bus::queue_depth(&channel, queue)
            .await
            .unwrap_or_else(|e| panic!("cannot read the depth of {queue}: {e}"));
        let _ = conn.close(200, "depth read".into()).await;
        depth
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Err(e) = rabbitmqctl(&["delete_vhost", &self.vhost]) {
            eprintln!("warning: cannot delete test vhost {}: {e}", self.vhost);
        }
    }
}

/// The whole broker stopped (`rabbitmqctl stop_app`) until this guard is dropped or
/// [`BrokerOutage::end`] is called; then it is started again and waited for, also when the
/// test panics. Stopping the broker affects every vhost: run such a test alone.
pub struct BrokerOutage {
    ended: bool,
}

impl BrokerOutage {
    /// Stops the broker application (the node stays up, so `start_app` is quick).
    pub fn begin() -> BrokerOutage {
        rabbitmqctl(&["stop_app"]).unwrap_or_else(|e| panic!("cannot stop RabbitMQ: {e}"));
        BrokerOutage { ended: false }
    }

    /// Starts the broker again and waits until it accepts connections.
    pub fn end(mut self) {
        self.ended = true;
        restart().unwrap_or_else(|e| panic!("cannot start RabbitMQ again: {e}"));
    }
}

impl Drop for BrokerOutage {
    fn drop(&mut self) {
        if !self.ended
            && let Err(e) = restart()
        {
            eprintln!("warning: cannot start RabbitMQ again: {e}");
        }
    }
}

fn restart() -> Result<(), String> {
    rabbitmqctl(&["start_app"])?;
    let timeout = RESTART_TIMEOUT.as_secs().to_string();
    rabbitmqctl(&["await_startup", "--timeout", &timeout])?;
    // The app reports started a moment before the listener accepts connections.
    let deadline = Instant::now() + RESTART_TIMEOUT;
    let address = format!(
        "{}:{}",
        base_url().host_str().unwrap_or("127.0.0.1"),
        base_url().port().unwrap_or(5672)
    );
    while std::net::TcpStream::connect(&address).is_err() {
        if Instant::now() > deadline {
            return Err(format!("{address} does not accept connections"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

fn base_url() -> Url {
    let text = std::env::var("TEST_AMQP_URL").unwrap_or_else(|_| DEFAULT_BROKER_URL.to_owned());
    Url::parse(&text).unwrap_or_else(|e| panic!("TEST_AMQP_URL is not a valid URL: {e}"))
}

/// Runs `rabbitmqctl args…`; its stdout, or its stderr as the error.
fn rabbitmqctl(args: &[&str]) -> Result<String, String> {
    let output = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run rabbitmqctl: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "rabbitmqctl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Deletes (in the background, best effort) test vhosts older than [`STALE_AFTER`].
fn delete_stale_vhosts(list: &str, now: u64) {
    let stale: Vec<String> = list
        .lines()
        .map(str::trim)
        .filter(|name| {
            name.strip_prefix(VHOST_PREFIX)
                .and_then(|rest| rest.split('_').next())
                .and_then(|secs| secs.parse::<u64>().ok())
                .is_some_and(|created| now.saturating_sub(created) > STALE_AFTER.as_secs())
        })
        .map(str::to_owned)
        .collect();
    if !stale.is_empty() {
        std::thread::spawn(move || {
            for vhost in stale {
                let _ = rabbitmqctl(&["delete_vhost", &vhost]);
            }
        });
    }
}
