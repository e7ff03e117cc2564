//! `ingestor`: Consumes ingest jobs: reads comments and direct messages from the provider into mentions.

use clap::Parser;

/// Consumes ingest jobs: reads comments and direct messages from the provider into mentions.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    common: shared::process::CommonArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::process::worker_main(Cli::parse().common, ingestor::run).await
}
