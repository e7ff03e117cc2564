//! Reaching PostgreSQL and RabbitMQ: waiting for either with [`dependency_backoff`] (and
//! saying why) while it is down, and migrating the database when asked.

use crate::bus;
use crate::config::{Settings, redact_url};
use crate::resilience::Backoff;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};
use secrecy::ExposeSecret;
use std::fmt::Display;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The longest wait between two attempts at reaching a dependency.
const DEPENDENCY_MAX_DELAY: Duration = Duration::from_secs(10);

/// The backoff used while waiting for a dependency, forever: from 100 ms, doubling, never
/// longer than `max_delay`.
pub fn dependency_backoff(max_delay: Duration) -> Backoff {
    Backoff {
        base: Duration::from_millis(100).min(max_delay),
        cap: max_delay,
    }
}

/// Runs `attempt` until it succeeds, waiting out `backoff` between tries and telling `failed`
/// each error and the wait; `None` if `cancel` fires first.
async fn keep_trying<T, E: Display, F: Future<Output = Result<T, E>>>(
    backoff: Backoff,
    cancel: &CancellationToken,
    mut attempt: impl FnMut() -> F,
    failed: impl Fn(&E, Duration),
) -> Option<T> {
    let mut waits = backoff.waits();
    loop {
        let error = tokio::select! {
            result = attempt() => match result {
                Ok(value) => return Some(value),
                Err(error) => error,
            },
            _ = cancel.cancelled() => return None,
        };
        let wait = waits.next().unwrap_or(backoff.cap);
        failed(&error, wait);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = cancel.cancelled() => return None,
        }
    }
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
    keep_trying(
        dependency_backoff(DEPENDENCY_MAX_DELAY),
        cancel,
        attempt,
        |e, wait| tracing::warn!(database = %shown, error = %e, retry_in = ?wait, "database unreachable"),
    )
    .await
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
    keep_trying(dependency_backoff(max_delay), cancel, attempt, |e, wait| {
        tracing::warn!(broker = %shown, error = %e, retry_in = ?wait, "broker unreachable")
    })
    .await
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
