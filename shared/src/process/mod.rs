//! What every process does around its work: listen for SIGINT/SIGTERM ([`shutdown`]), and
//! connect to PostgreSQL and RabbitMQ, retrying with capped backoff (and saying why) while
//! either is down ([`connect`]); and the whole `main` of a worker binary ([`worker_main`]).
//!
//! Waiting for a dependency is never a crash: a process started before its database or broker
//! keeps trying until it can connect or is told to stop.

mod connect;
mod shutdown;

pub use connect::{
    database_pool, dependency_backoff, migrate, wait_for_broker, wait_for_broker_at,
    wait_for_database,
};
pub use shutdown::shutdown_token;

use crate::config::Settings;
use sea_orm::DatabaseConnection;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

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
) -> anyhow::Result<ExitCode>
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
    let settings = match crate::config::load_or_report() {
        Ok(settings) => settings,
        Err(code) => return Ok(code),
    };
    crate::telemetry::init(settings.log_format);
    run(settings, args, shutdown_token()).await?;
    Ok(ExitCode::SUCCESS)
}
