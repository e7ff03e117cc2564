//! `replier`: Consumes reply jobs: sends each reply to the provider exactly once.

#[tokio::main]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    shared::process::worker_main(
        "replier",
        "Consumes reply jobs: sends each reply to the provider exactly once.",
        replier::run,
    )
    .await
}
