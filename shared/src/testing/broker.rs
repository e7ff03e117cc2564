//! RabbitMQ for tests: a virtual host per test, and stopping a broker on purpose.
//!
//! [`TestBroker::new`] creates a vhost `sm_test_<unix seconds>_<random>` with `rabbitmqctl`
//! (as the machine's tests run as root), gives the URL's user full permissions on it and
//! declares the topology there; dropping it deletes the vhost with everything in it. Vhosts
//! left behind by killed test runs are deleted after six hours by a later `new`.
//!
//! The broker is `amqp://guest:guest@127.0.0.1:5672`; `TEST_AMQP_URL` overrides it (any path
//! is replaced by the test's vhost). [`TestBroker::on`] puts the vhost on a private
//! [`RabbitNode`] instead, which a test may stop ([`BrokerOutage`]) without disturbing others.

use super::process::{run_command, unix_now};
use super::rabbit_node::RabbitNode;
use crate::bus;
use std::time::Duration;
use url::Url;

const DEFAULT_BROKER_URL: &str = "amqp://guest:guest@127.0.0.1:5672";

/// Prefix of test vhost names; the creation time (unix seconds) follows it.
const VHOST_PREFIX: &str = "sm_test_";

/// Test vhosts older than this are leftovers of killed test runs.
const STALE_AFTER: Duration = Duration::from_secs(6 * 3600);

/// A fresh vhost with the topology declared, deleted when dropped.
pub struct TestBroker {
    vhost: String,
    url: String,
    /// The node for `rabbitmqctl -n`; `None`: the machine's broker.
    node: Option<String>,
}

impl TestBroker {
    /// Creates the vhost on the machine's broker and declares the topology in it. Panics
    /// with the reason if RabbitMQ or `rabbitmqctl` is not usable: a test cannot run without
    /// them.
    pub async fn new() -> TestBroker {
        TestBroker::create(base_url(), None).await
    }

    /// The same on a private node.
    pub async fn on(node: &RabbitNode) -> TestBroker {
        let url = Url::parse(&node.url()).expect("node URL");
        TestBroker::create(url, Some(node.name().to_owned())).await
    }

    async fn create(base: Url, node: Option<String>) -> TestBroker {
        let user = match base.username() {
            "" => "guest".to_owned(),
            user => user.to_owned(),
        };
        let created = unix_now();
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let vhost = format!("{VHOST_PREFIX}{created}_{}", &suffix[..12]);

        let listing = {
            let node = node.clone();
            tokio::task::spawn_blocking(move || {
                rabbitmqctl(node.as_deref(), &["-q", "list_vhosts"])
            })
        };
        let setup = {
            let (vhost, user, node) = (vhost.clone(), user.clone(), node.clone());
            tokio::task::spawn_blocking(move || {
                let node = node.as_deref();
                rabbitmqctl(node, &["add_vhost", &vhost])?;
                rabbitmqctl(
                    node,
                    &["set_permissions", "-p", &vhost, &user, ".*", ".*", ".*"],
                )
            })
        };
        if let Ok(Ok(list)) = listing.await {
            delete_stale_vhosts(node.clone(), &list, created);
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
            node,
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

    /// A link to the vhost for a background loop (as the sweeper keeps one).
    pub fn link(&self) -> bus::Link {
        bus::Link::new(&secrecy::SecretString::from(self.url.clone()), "test")
    }

    /// A new connection to the vhost.
    pub async fn connect(&self) -> lapin::Connection {
        bus::connect(&self.url, "test")
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the test vhost {}: {e}", self.vhost))
    }

    /// Deletes every message ready in `queue` of this vhost (as an operator's purge would).
    pub async fn purge(&self, queue: &str) {
        let conn = self.connect().await;
        let channel = conn.create_channel().await.expect("channel");
        channel
            .queue_purge(queue.into(), Default::default())
            .await
            .unwrap_or_else(|e| panic!("cannot purge {queue}: {e}"));
        let _ = conn.close(200, "queue purged".into()).await;
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
        if let Err(e) = rabbitmqctl(self.node.as_deref(), &["delete_vhost", &self.vhost]) {
            eprintln!("warning: cannot delete test vhost {}: {e}", self.vhost);
        }
    }
}

/// A private node's broker application stopped (`rabbitmqctl stop_app`) until this guard is
/// dropped or [`BrokerOutage::end`] is called; then it is started again and waited for, also
/// when the test panics. Only the node's own vhosts are affected.
pub struct BrokerOutage<'a> {
    node: &'a RabbitNode,
    ended: bool,
}

impl<'a> BrokerOutage<'a> {
    /// Stops the node's broker application (the node stays up, so `start_app` is quick).
    pub async fn begin(node: &'a RabbitNode) -> BrokerOutage<'a> {
        node.stop_app().await;
        BrokerOutage { node, ended: false }
    }

    /// Starts the broker again and waits until it accepts connections.
    pub async fn end(mut self) {
        self.ended = true;
        self.node.start_app().await;
    }
}

impl Drop for BrokerOutage<'_> {
    fn drop(&mut self) {
        if !self.ended
            && let Err(e) = self.node.start_app_blocking()
        {
            eprintln!("warning: cannot start RabbitMQ again: {e}");
        }
    }
}

fn base_url() -> Url {
    let text = std::env::var("TEST_AMQP_URL").unwrap_or_else(|_| DEFAULT_BROKER_URL.to_owned());
    Url::parse(&text).unwrap_or_else(|e| panic!("TEST_AMQP_URL is not a valid URL: {e}"))
}

/// Runs `rabbitmqctl [-n node] args…`; its stdout, or its stderr as the error.
pub(super) fn rabbitmqctl(node: Option<&str>, args: &[&str]) -> Result<String, String> {
    let args: Vec<&str> = node
        .map(|n| ["-n", n])
        .into_iter()
        .flatten()
        .chain(args.iter().copied())
        .collect();
    run_command("rabbitmqctl", &args)
}

/// Deletes (in the background, best effort) test vhosts older than [`STALE_AFTER`].
fn delete_stale_vhosts(node: Option<String>, list: &str, now: u64) {
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
                let _ = rabbitmqctl(node.as_deref(), &["delete_vhost", &vhost]);
            }
        });
    }
}
