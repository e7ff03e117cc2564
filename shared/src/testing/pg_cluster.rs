//! [`PgCluster`]: a PostgreSQL cluster of its own for a test or a tool, so that stopping or
//! restarting the database never touches the machine's server.
//!
//! Created with Debian's `pg_createcluster` (the machine's major version, [`PG_VERSION`]) as
//! `sm_<unix seconds>_<random>` on a free port, with trust authentication for local and
//! 127.0.0.1 connections (user `postgres`), and started with `pg_ctlcluster`. Dropping it runs
//! `pg_dropcluster --stop`, which deletes its data, config and log; clusters left by killed
//! runs are dropped after [`STALE_AFTER`] by a later [`PgCluster::start`].

use super::process::{blocking, free_port, run_command as run, unix_now, wait_accepting};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The PostgreSQL major version of the machine's clusters.
pub const PG_VERSION: &str = "15";

/// Prefix of the cluster names; the creation time (unix seconds) follows it.
const NAME_PREFIX: &str = "sm_";

/// Clusters older than this are leftovers of killed runs.
const STALE_AFTER: Duration = Duration::from_secs(3600);

/// Longest wait for the cluster to accept connections after a start.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running PostgreSQL cluster on its own port, dropped (data and all) when dropped.
pub struct PgCluster {
    spec: Arc<Spec>,
}

struct Spec {
    name: String,
    port: u16,
}

impl PgCluster {
    /// Creates and starts a fresh cluster; waits until it accepts connections. Panics with
    /// the reason if it cannot.
    pub async fn start() -> PgCluster {
        blocking(|| {
            drop_stale_clusters();
            let suffix = &uuid::Uuid::new_v4().simple().to_string()[..12];
            let spec = Spec {
                name: format!("{NAME_PREFIX}{}_{suffix}", unix_now()),
                port: free_port(),
            };
            let port = spec.port.to_string();
            run(
                "pg_createcluster",
                &[PG_VERSION, &spec.name, "-p", &port, "--", "--auth=trust"],
            )
            .unwrap_or_else(|e| panic!("cannot create cluster {}: {e}", spec.name));
            let cluster = PgCluster {
                spec: Arc::new(spec),
            };
            cluster
                .spec
                .start()
                .unwrap_or_else(|e| panic!("cannot start cluster {}: {e}", cluster.spec.name));
            cluster
        })
        .await
    }

    /// `postgres://postgres@127.0.0.1:<port>/<database>`.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{database}",
            self.spec.port
        )
    }

    /// The cluster's name (for `pg_ctlcluster`).
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Stops the server (`-m fast`: sessions are disconnected, as in a restart by an operator).
    pub async fn stop(&self) {
        let spec = self.spec.clone();
        blocking(move || spec.stop())
            .await
            .unwrap_or_else(|e| panic!("cannot stop cluster {}: {e}", self.spec.name));
    }

    /// Starts the server again and waits until it accepts connections.
    pub async fn start_again(&self) {
        let spec = self.spec.clone();
        blocking(move || spec.start())
            .await
            .unwrap_or_else(|e| panic!("cannot start cluster {}: {e}", self.spec.name));
    }

    /// [`PgCluster::stop`] then [`PgCluster::start_again`].
    pub async fn restart(&self) {
        self.stop().await;
        self.start_again().await;
    }
}

impl Spec {
    fn start(&self) -> Result<(), String> {
        run(
            "pg_ctlcluster",
            &["--skip-systemctl-redirect", PG_VERSION, &self.name, "start"],
        )?;
        wait_accepting(
            &format!("127.0.0.1:{}", self.port),
            Instant::now() + START_TIMEOUT,
        )
    }

    fn stop(&self) -> Result<(), String> {
        run(
            "pg_ctlcluster",
            &[
                "--skip-systemctl-redirect",
                PG_VERSION,
                &self.name,
                "stop",
                "-m",
                "fast",
            ],
        )
        .map(|_| ())
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if let Err(e) = drop_cluster(&self.spec.name) {
            eprintln!("warning: cannot drop cluster {}: {e}", self.spec.name);
        }
    }
}

fn drop_cluster(name: &str) -> Result<String, String> {
    run("pg_dropcluster", &["--stop", PG_VERSION, name])
}

/// Drops clusters named `sm_<unix seconds>_…` older than [`STALE_AFTER`]. Best effort.
fn drop_stale_clusters() {
    let Ok(list) = run("pg_lsclusters", &["--no-header"]) else {
        return;
    };
    let now = unix_now();
    for line in list.lines() {
        let mut fields = line.split_whitespace();
        let (Some(PG_VERSION), Some(name)) = (fields.next(), fields.next()) else {
            continue;
        };
        let stale = name
            .strip_prefix(NAME_PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|secs| secs.parse::<u64>().ok())
            .is_some_and(|created| now.saturating_sub(created) > STALE_AFTER.as_secs());
        if stale {
            let _ = drop_cluster(name);
        }
    }
}
