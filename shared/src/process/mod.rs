//! What every process does around its work: listen for SIGINT/SIGTERM, and connect to
//! PostgreSQL and RabbitMQ, retrying with capped backoff (and saying why) while either is down.
//!
//! Waiting for a dependency is never a crash: a process started before its database or broker
//! keeps trying until it can connect or is told to stop.

use crate::bus;
use crate::config::{Settings, redact_url};
use backon::{ExponentialBuilder, Retryable};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};
use secrecy::ExposeSecret;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A token cancelled on the first SIGINT or SIGTERM.
pub fn shutdown_token() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        // First: logging may fail (a closed stderr), the shutdown must not.
        cancel.cancel();
        tracing::info!("shutdown requested");
    });
    token
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops this process");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

/// The longest wait between two attempts at reaching a dependency.
const DEPENDENCY_MAX_DELAY: Duration = Duration::from_secs(10);

/// The backoff used while waiting for a dependency, forever: 100 ms doubling, each wait
/// jittered up to twice its base and never longer than `max_delay` (the jitter is added after
/// the builder's own cap, so the base stops at half of it).
pub fn dependency_backoff(max_delay: Duration) -> ExponentialBuilder {
    let base_cap = max_delay / 2;
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100).min(base_cap))
        .with_max_delay(base_cap)
        .with_jitter()
        .without_max_times()
}

/// A pool that connects on demand, so a process can start while PostgreSQL is down; queries
/// fail until it is back.
pub async fn database_pool(settings: &Settings) -> Result<DatabaseConnection, sea_orm::DbErr> {
    pool_at(
        settings.database_url.expose_secret(),
        settings.database_max_connections,
    )
    .await
}

async fn pool_at(url: &str, max_connections: u32) -> Result<DatabaseConnection, sea_orm::DbErr> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(max_connections)
        .min_connections(0)
        .connect_timeout(Duration::from_secs(3))
        .acquire_timeout(Duration::from_secs(5))
        .sqlx_logging(false)
        .connect_lazy(true);
    Database::connect(options).await
}

/// Waits until the database answers `SELECT 1`, retrying with backoff; `None` if cancelled first.
pub async fn wait_for_database(
    settings: &Settings,
    cancel: &CancellationToken,
) -> Option<DatabaseConnection> {
    wait_for_database_at(
        settings.database_url.expose_secret(),
        settings.database_max_connections,
        cancel,
    )
    .await
}

async fn wait_for_database_at(
    url: &str,
    max_connections: u32,
    cancel: &CancellationToken,
) -> Option<DatabaseConnection> {
    let shown = redact_url(url);
    let attempt = || async {
        let db = pool_at(url, max_connections).await?;
        db.execute_unprepared("SELECT 1").await?;
        Ok::<_, sea_orm::DbErr>(db)
    };
    let retry = attempt.retry(dependency_backoff(DEPENDENCY_MAX_DELAY)).notify(|e, delay| {
        tracing::warn!(database = %shown, error = %e, retry_in = ?delay, "database unreachable");
    });
    tokio::select! {
        db = retry => db.ok(),
        _ = cancel.cancelled() => None,
    }
}

/// Connects to RabbitMQ and declares the topology, retrying with backoff; `None` if cancelled
/// first.
pub async fn wait_for_broker(
    settings: &Settings,
    connection_name: &str,
    cancel: &CancellationToken,
) -> Option<lapin::Connection> {
    wait_for_broker_at(
        settings.amqp_url.expose_secret(),
        connection_name,
        DEPENDENCY_MAX_DELAY,
        cancel,
    )
    .await
}

/// [`wait_for_broker`] for any broker URL, with `max_delay` as the longest wait between
/// attempts (the outbox relay and the workers reconnect with it after losing the broker).
pub async fn wait_for_broker_at(
    amqp_url: &str,
    connection_name: &str,
    max_delay: Duration,
    cancel: &CancellationToken,
) -> Option<lapin::Connection> {
    let shown = redact_url(amqp_url);
    let attempt = || async {
        let conn = bus::connect(amqp_url, connection_name).await?;
        bus::declare_topology(&conn).await?;
        Ok::<_, lapin::Error>(conn)
    };
    let backoff = dependency_backoff(max_delay);
    let retry = attempt.retry(backoff).notify(|e, delay| {
        tracing::warn!(broker = %shown, error = %e, retry_in = ?delay, "broker unreachable");
    });
    tokio::select! {
        conn = retry => conn.ok(),
        _ = cancel.cancelled() => None,
    }
}

/// Flags every long-running binary accepts.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Apply pending database migrations before starting, as the schema's owner
    /// (`MIGRATION_DATABASE_URL`; convenience for development, in production run the
    /// `migrations` binary).
    #[arg(long)]
    pub migrate: bool,
}

/// Waits for PostgreSQL (and migrates it when asked) and for RabbitMQ (declaring the topology).
/// `None` if shutdown was requested before both were reached.
pub async fn connect_worker(
    settings: &Settings,
    process_name: &str,
    args: &CommonArgs,
    cancel: &CancellationToken,
) -> anyhow::Result<Option<(DatabaseConnection, lapin::Connection)>> {
    // First: on a fresh database, the services' role only exists once migrated.
    if args.migrate && !migrate(settings, cancel).await? {
        return Ok(None);
    }
    let Some(db) = wait_for_database(settings, cancel).await else {
        return Ok(None);
    };
    let Some(broker) = wait_for_broker(settings, process_name, cancel).await else {
        return Ok(None);
    };
    tracing::info!(process = process_name, "connected to database and broker");
    Ok(Some((db, broker)))
}

/// Applies pending migrations as the schema's owner (`MIGRATION_DATABASE_URL`), waiting for
/// that database as [`wait_for_database`] does; `false` if cancelled first.
pub async fn migrate(settings: &Settings, cancel: &CancellationToken) -> anyhow::Result<bool> {
    let Some(db) =
        wait_for_database_at(settings.migration_database_url.expose_secret(), 1, cancel).await
    else {
        return Ok(false);
    };
    let applied = migrations::migrate_up(&db).await;
    if let Err(e) = db.close().await {
        tracing::debug!(error = %e, "migration pool already closed");
    }
    let applied = applied?;
    tracing::info!(applied = applied.len(), "database migrated");
    Ok(true)
}

/// Closes the pool after a worker's loops have stopped (the worker closes its own broker
/// connections).
pub async fn close_worker(db: DatabaseConnection, process_name: &str) {
    if let Err(e) = db.close().await {
        tracing::debug!(error = %e, "database pool already closed");
    }
    tracing::info!(process = process_name, "stopped");
}

/// The whole `main` of a worker binary: parses the command line (`--help`, `--version`,
/// [`CommonArgs`]), loads the settings (exit code 2 when invalid), starts logging, and runs `run`
/// until SIGINT/SIGTERM.
pub async fn worker_main<F, Fut>(
    name: &'static str,
    about: &'static str,
    run: F,
) -> anyhow::Result<()>
where
    F: FnOnce(Settings, CommonArgs, CancellationToken) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    use clap::{Args, FromArgMatches};
    // The struct's doc would become the about text: set ours after the flags.
    let command = CommonArgs::augment_args(clap::Command::new(name))
        .about(about)
        .version(env!("CARGO_PKG_VERSION"));
    let args = CommonArgs::from_arg_matches(&command.get_matches())?;
    let settings = crate::config::load_or_exit();
    crate::telemetry::init(settings.log_format);
    run(settings, args, shutdown_token()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use backon::BackoffBuilder;

    #[test]
    fn the_dependency_backoff_grows_jittered_and_never_passes_its_cap() {
        for cap in [
            Duration::from_millis(150),
            Duration::from_secs(2),
            DEPENDENCY_MAX_DELAY,
        ] {
            let waits: Vec<Duration> = dependency_backoff(cap).build().take(200).collect();
            assert!(waits.iter().all(|w| *w <= cap), "{cap:?}: {waits:?}");
            assert!(waits[0] <= Duration::from_millis(200), "{waits:?}");
            let late = &waits[100..];
            assert!(late.iter().all(|w| *w >= cap / 2), "{cap:?}: {late:?}");
            assert!(
                late.windows(2).any(|w| w[0] != w[1]),
                "still jittered at the cap: {late:?}"
            );
        }
    }
}
