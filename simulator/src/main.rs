//! `ayrshare-sim`: parse flags, start logging, run the simulator until SIGINT or SIGTERM.

use clap::{Parser, ValueEnum};
use tracing_subscriber::EnvFilter;

/// A local Ayrshare look-alike with fault injection, for tests, demos and benchmarks.
///
/// Provider API under /api (`Authorization: Bearer <api key>`, one world per `Profile-Key`);
/// control API under /_sim (faults, comments, messages, ledger, stats, webhooks, profiles,
/// reset; `?profile=` picks the world). Every flag can also be set through the environment
/// variable shown with it.
#[derive(Debug, Parser)]
#[command(name = "ayrshare-sim", version)]
struct Cli {
    #[command(flatten)]
    sim: simulator::SimConfig,

    /// Log format: `text` for people, `json` for log collectors (filter with RUST_LOG).
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }

    let sim = simulator::spawn(cli.sim).await?;
    // Scripts and tests read this line to learn the port.
    println!("ayrshare-sim listening on {}", sim.base_url());
    shutdown_signal().await?;
    tracing::info!("shutting down");
    sim.shutdown().await;
    Ok(())
}

async fn shutdown_signal() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
