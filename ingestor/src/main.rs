//! `ingestor`: Consumes ingest jobs: reads comments and direct messages from the provider into mentions.

use clap::Parser;
use shared::process::CommonArgs;

#[derive(Parser)]
#[command(
    version,
    about = "Consumes ingest jobs: reads comments and direct messages from the provider into mentions."
)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = shared::config::load_or_exit();
    shared::telemetry::init(settings.log_format);
    ingestor::run(settings, cli.common, shared::process::shutdown_token()).await
}
