//! `migrations`: apply, roll back, rebuild or inspect the Social Messages schema.
//!
//! `migrations up` creates the database first when it does not exist. Errors are one line on
//! stderr with exit code 1; the database password is never printed.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use sea_orm_migration::sea_orm::{ConnectOptions, Database, DatabaseConnection};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(version, about = "Manage the Social Messages database schema")]
struct Cli {
    /// PostgreSQL URL of the service's database, signing in as the role that owns the schema
    /// (the services themselves sign in as `social_messages_app`, through `DATABASE_URL`).
    #[arg(
        long,
        env = "MIGRATION_DATABASE_URL",
        hide_env_values = true,
        default_value = "postgres://postgres@127.0.0.1:5432/social_messages",
        global = true
    )]
    database_url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the database if it does not exist, then apply every pending migration.
    Up,
    /// Roll back the last applied migration(s).
    Down {
        /// How many migrations to roll back.
        #[arg(short = 'n', long = "steps", default_value_t = 1)]
        steps: u32,
    },
    /// Drop everything in the database and apply every migration again (destroys all data).
    Fresh,
    /// List the migrations and whether each is applied.
    Status,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("migrations: error: {}", one_line(&err));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let url = cli.database_url;
    match cli.command {
        Command::Up => {
            if migrations::create_database_if_missing(&url).await? {
                println!("created database {}", migrations::redact_url(&url));
            }
            let db = connect(&url).await?;
            let applied = migrations::migrate_up(&db)
                .await
                .context("applying migrations")?;
            report("applied", &applied, "the schema is up to date");
            db.close().await.ok();
        }
        Command::Down { steps } => {
            let db = connect(&url).await?;
            let rolled_back = migrations::migrate_down(&db, Some(steps))
                .await
                .context("rolling back migrations")?;
            report("rolled back", &rolled_back, "no migration is applied");
            db.close().await.ok();
        }
        Command::Fresh => {
            let db = connect(&url).await?;
            let applied = migrations::fresh(&db)
                .await
                .context("rebuilding the schema")?;
            report("applied", &applied, "no migration to apply");
            db.close().await.ok();
        }
        Command::Status => {
            let db = connect(&url).await?;
            for m in migrations::status(&db)
                .await
                .context("reading migration status")?
            {
                let state = if m.applied { "applied" } else { "pending" };
                println!("{state:<8} {}", m.name);
            }
            db.close().await.ok();
        }
    }
    Ok(())
}

/// The error and its causes on one line, skipping causes whose text is already included
/// (sea-orm and sqlx errors repeat their source in their own message).
fn one_line(err: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message.replace(['\n', '\r'], " ")
}

fn report(verb: &str, names: &[String], when_empty: &str) {
    if names.is_empty() {
        println!("{when_empty}");
    }
    for name in names {
        println!("{verb} {name}");
    }
}

async fn connect(url: &str) -> anyhow::Result<DatabaseConnection> {
    migrations::probe(url).await?;
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(2)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    Database::connect(options).await.with_context(|| {
        format!(
            "cannot connect to PostgreSQL at {}",
            migrations::redact_url(url)
        )
    })
}
