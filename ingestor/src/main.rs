//! `ingestor`: Consumes ingest jobs: reads comments and direct messages from the provider into mentions.

#[tokio::main]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    shared::process::worker_main(
        "ingestor",
        "Consumes ingest jobs: reads comments and direct messages from the provider into mentions.",
        ingestor::run,
    )
    .await
}
