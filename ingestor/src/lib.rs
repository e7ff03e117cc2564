//! The `ingestor` process. Consumes ingest jobs: reads comments and direct messages from the provider into mentions.
//!
//! Today it connects to PostgreSQL and RabbitMQ (waiting for them with backoff), declares the
//! topology and stays up until SIGINT/SIGTERM; the job consumers arrive with the outbox issue.

use shared::config::Settings;
use shared::process::{self, CommonArgs};
use tokio_util::sync::CancellationToken;

/// The name this process uses in logs, audit actors and broker connections.
pub const PROCESS_NAME: &str = "ingestor";

/// Runs until `cancel` fires.
pub async fn run(
    settings: Settings,
    args: CommonArgs,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let Some((db, broker)) = process::connect_worker(&settings, PROCESS_NAME, &args, &cancel).await?
    else {
        return Ok(());
    };
    cancel.cancelled().await;
    process::close_worker(db, broker, PROCESS_NAME).await;
    Ok(())
}
