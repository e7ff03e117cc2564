//! The `replier` process. Consumes reply jobs: sends each reply to the provider exactly once.
//!
//! It runs the worker framework ([`shared::worker`]) on the queues `reply.<platform>` of the
//! configured `WORKER_PLATFORMS` with the [`job::ReplyJob`]; with `RELAY_ENABLED=true` it also
//! runs an outbox relay. Any number of repliers may run: a reply's task is leased to one at a
//! time, and every transition of the reply is fenced by the state it was decided on.

pub mod job;

use shared::config::Settings;
use shared::process::CommonArgs;
use shared::worker::{self, Jobs};
use tokio_util::sync::CancellationToken;

/// The name this process uses in logs, audit actors and broker connections.
pub const PROCESS_NAME: &str = "replier";

/// The jobs this process runs: the reply job.
pub fn jobs(settings: &Settings) -> anyhow::Result<Jobs> {
    Ok(Jobs::new().with(job::ReplyJob::new(settings)?))
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
