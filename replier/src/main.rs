//! `replier`: Consumes reply jobs: sends each reply to the provider exactly once.

use clap::Parser;

/// Consumes reply jobs: sends each reply to the provider exactly once.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    common: shared::process::CommonArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::process::worker_main(Cli::parse().common, replier::run).await
}
