//! The `ingestor` process. Consumes ingest jobs: reads comments and direct messages from the
//! provider into mentions.
//!
//! It runs the worker framework ([`shared::worker`]) on the queues `ingest.<platform>` of the
//! configured `WORKER_PLATFORMS`, for the jobs in [`jobs`]; with `RELAY_ENABLED=true` it also
//! runs an outbox relay. The ingest job itself arrives with the ingestion issue: until then
//! [`jobs`] is empty, so the ingestor subscribes to nothing and ingest tasks wait in their
//! queues (and rows) for a worker that can run them.

use shared::config::Settings;
use shared::process::CommonArgs;
use shared::worker::{self, Jobs};
use tokio_util::sync::CancellationToken;

/// The name this process uses in logs, audit actors and broker connections.
pub const PROCESS_NAME: &str = "ingestor";

/// The jobs this process runs (none yet: see the module documentation).
pub fn jobs() -> Jobs {
    Jobs::new()
}

/// Runs until `cancel` fires, then finishes or hands back its jobs within the grace period.
pub async fn run(
    settings: Settings,
    args: CommonArgs,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    worker::run_process(&settings, PROCESS_NAME, &args, jobs(), &cancel).await
}
