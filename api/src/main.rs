//! `api`: the Social Messages HTTP API.
//!
//! `api create-admin --email … [--name …] [--password …]` creates an admin user (reading the
//! password from stdin when `--password` is not given) and exits.

use clap::{Parser, Subcommand};
use shared::process::CommonArgs;
use std::io::BufRead;
use std::process::ExitCode;

#[derive(Parser)]
#[command(version, about = "The Social Messages HTTP API")]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Create an admin user (the first one, typically), then exit.
    CreateAdmin {
        /// The admin's login address.
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long, default_value = "Admin")]
        name: String,
        /// The password; read from the first line of stdin when absent.
        #[arg(long)]
        password: Option<String>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let settings = match shared::config::load_or_report() {
        Ok(settings) => settings,
        Err(code) => return Ok(code),
    };
    shared::telemetry::init(settings.log_format);
    let cancel = shared::process::shutdown_token();
    if cli.common.migrate && !shared::process::migrate(&settings, &cancel).await? {
        return Ok(ExitCode::SUCCESS);
    }
    match cli.command {
        Some(Command::CreateAdmin {
            email,
            name,
            password,
        }) => {
            let password = match password {
                Some(password) => password,
                None => read_password()?,
            };
            let user = api::admin::create_admin(&settings, &email, &name, password).await?;
            println!("created admin {} ({})", user.email, user.id);
        }
        None => api::run(settings, cancel).await?,
    }
    Ok(ExitCode::SUCCESS)
}

fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}
