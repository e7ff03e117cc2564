//! The `ingestor` process. Consumes ingest jobs: reads comments and direct messages from the
//! provider into mentions (DESIGN §6).
//!
//! It runs the worker framework ([`shared::worker`]) on the queues `ingest.<platform>` of the
//! configured `WORKER_PLATFORMS` for the [`job::IngestJob`]; with `RELAY_ENABLED=true` it also
//! runs an outbox relay. Ingestors are stateless: any number of copies may run, each pinned to
//! some platforms or not; the database (one active task per dedup key, unique mentions) keeps
//! their work apart. Memory stays flat: a job holds one page of one post at a time.

pub mod job;

use shared::config::Settings;
use shared::process::CommonArgs;
use shared::worker::{self, Jobs};
use tokio_util::sync::CancellationToken;

/// The name this process uses in logs, audit actors and broker connections.
pub const PROCESS_NAME: &str = "ingestor";

/// The jobs this process runs.
pub fn jobs(settings: &Settings) -> anyhow::Result<Jobs> {
    Ok(Jobs::new().with(job::IngestJob::new(settings, PROCESS_NAME)?))
}

/// Runs until `cancel` fires, then finishes or hands back its jobs within the grace period.
pub async fn run(
    settings: Settings,
    args: CommonArgs,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let jobs = jobs(&settings)?;
    worker::run_process(&settings, PROCESS_NAME, &args, jobs, &cancel).await
}
