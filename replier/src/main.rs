//! `replier`: Consumes reply jobs: sends each reply to the provider exactly once.

use clap::Parser;
use shared::process::CommonArgs;

#[derive(Parser)]
#[command(
    version,
    about = "Consumes reply jobs: sends each reply to the provider exactly once."
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
    replier::run(settings, cli.common, shared::process::shutdown_token()).await
}
