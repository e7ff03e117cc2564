//! The `replier` process. Consumes reply jobs: sends each reply to the provider exactly once.
//!
//! It runs the worker framework ([`shared::worker`]) on the queues `reply.<platform>` of the
//! configured `WORKER_PLATFORMS`, for the jobs in [`jobs`]; with `RELAY_ENABLED=true` it also
//! runs an outbox relay. The reply job itself arrives with the replies issue: until then
//! [`jobs`] is empty, so the replier subscribes to nothing and reply tasks wait in their
//! queues (and rows) for a worker that can run them.

use shared::config::Settings;
use shared::process::CommonArgs;
use shared::worker::{self, Jobs};
use tokio_util::sync::CancellationToken;

/// The name this process uses in logs, audit actors and broker connections.
pub const PROCESS_NAME: &str = "replier";

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
