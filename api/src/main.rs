//! `api`: the Social Messages HTTP API.

use clap::Parser;
use shared::process::CommonArgs;

#[derive(Parser)]
#[command(version, about = "The Social Messages HTTP API")]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = shared::config::load_or_exit();
    shared::telemetry::init(settings.log_format);
    let cancel = shared::process::shutdown_token();
    if cli.common.migrate {
        let Some(db) = shared::process::wait_for_database(&settings, &cancel).await else {
            return Ok(());
        };
        shared::process::migrate(&db).await?;
    }
    api::run(settings, cancel).await
}
