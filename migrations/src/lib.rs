//! The database schema of Social Messages: sea-orm-migration migrations, plus the functions
//! behind the `migrations` binary and the other binaries' `--migrate` flag.
//!
//! Migrations are plain SQL (constraints, partial indexes and triggers are the point of this
//! schema, and SQL says them most directly). Each one has a `down`. Schema changes take a
//! PostgreSQL advisory lock and run in one transaction, so several processes started with
//! `--migrate` at the same time apply each migration exactly once.
//!
//! Whoever applies the migrations owns the schema (in development the `postgres` superuser,
//! through `MIGRATION_DATABASE_URL`); the services sign in as [`APP_ROLE`], which the
//! migrations create and grant only what the code uses.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::sqlx::{self, Connection as _};
use sea_orm_migration::sea_orm::{DatabaseConnection, TransactionTrait};
use sea_orm_migration::{MigrationStatus, MigratorTrait};
use std::time::Duration;

/// Declares the migration of the module it is used in: `Migration`, named after the module's
/// file, whose `up` and `down` run the module's `UP` and `DOWN` SQL; with `down_then: SQL`,
/// `down` runs that SQL after `DOWN` (to restore what an earlier migration created).
macro_rules! sql_migration {
    ($(#[$doc:meta])*) => {
        sql_migration! { $(#[$doc])* down_then: "" }
    };
    ($(#[$doc:meta])* down_then: $restore:expr) => {
        $(#[$doc])*
        #[derive(sea_orm_migration::prelude::DeriveMigrationName)]
        pub struct Migration;

        #[sea_orm_migration::async_trait::async_trait]
        impl sea_orm_migration::MigrationTrait for Migration {
            async fn up(
                &self,
                manager: &sea_orm_migration::SchemaManager,
            ) -> Result<(), sea_orm_migration::DbErr> {
                use sea_orm_migration::sea_orm::ConnectionTrait as _;
                manager.get_connection().execute_unprepared(UP).await?;
                Ok(())
            }

            async fn down(
                &self,
                manager: &sea_orm_migration::SchemaManager,
            ) -> Result<(), sea_orm_migration::DbErr> {
                use sea_orm_migration::sea_orm::ConnectionTrait as _;
                let conn = manager.get_connection();
                conn.execute_unprepared(DOWN).await?;
                let restore: &str = $restore;
                if !restore.is_empty() {
                    conn.execute_unprepared(restore).await?;
                }
                Ok(())
            }
        }
    };
}

mod m20261129_000001_create_users;
mod m20261129_000002_create_posts_and_mentions;
mod m20261129_000003_create_replies;
mod m20261129_000004_create_tasks;
mod m20261129_000005_create_circuit_breakers;
mod m20261129_000006_create_audit_log;
mod m20261130_000001_api_login_throttle;
mod m20261130_000010_notify_pending_tasks;
mod m20261130_000020_create_rate_budgets;
mod m20261201_000010_create_platform_status;
mod m20261202_000010_take_rate_budget;
mod m20261203_000010_budget_schedule;
mod m20261204_000010_comment_hints;
mod m20261204_000020_dead_reply_tasks;
mod m20261204_000030_our_accounts;
mod m20261205_000010_sliding_breaker;
mod m20261206_000010_app_role;
mod m20261207_000010_login_throttle_keys;
mod m20261207_000020_manage_accounts;
mod m20261208_000010_live_events;
mod m20261209_000010_webhooks;
mod m20261210_000010_brands;
mod m20261211_000010_failed_reply_tasks;

/// The ordered list of migrations.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261129_000001_create_users::Migration),
            Box::new(m20261129_000002_create_posts_and_mentions::Migration),
            Box::new(m20261129_000003_create_replies::Migration),
            Box::new(m20261129_000004_create_tasks::Migration),
            Box::new(m20261129_000005_create_circuit_breakers::Migration),
            Box::new(m20261129_000006_create_audit_log::Migration),
            Box::new(m20261130_000001_api_login_throttle::Migration),
            Box::new(m20261130_000010_notify_pending_tasks::Migration),
            Box::new(m20261130_000020_create_rate_budgets::Migration),
            Box::new(m20261201_000010_create_platform_status::Migration),
            Box::new(m20261202_000010_take_rate_budget::Migration),
            Box::new(m20261203_000010_budget_schedule::Migration),
            Box::new(m20261204_000010_comment_hints::Migration),
            Box::new(m20261204_000020_dead_reply_tasks::Migration),
            Box::new(m20261204_000030_our_accounts::Migration),
            Box::new(m20261205_000010_sliding_breaker::Migration),
            Box::new(m20261206_000010_app_role::Migration),
            Box::new(m20261207_000010_login_throttle_keys::Migration),
            Box::new(m20261207_000020_manage_accounts::Migration),
            Box::new(m20261208_000010_live_events::Migration),
            Box::new(m20261209_000010_webhooks::Migration),
            Box::new(m20261210_000010_brands::Migration),
            Box::new(m20261211_000010_failed_reply_tasks::Migration),
        ]
    }
}

/// The role the services connect as (`DATABASE_URL`), created by the migrations: it may read
/// and append to `audit_log` but owns nothing (see `m20261206_000010_app_role`).
pub const APP_ROLE: &str = "social_messages_app";

/// Advisory lock held (for the transaction) while the schema changes.
const SCHEMA_LOCK_KEY: i64 = 0x534d_5f4d_4947; // "SM_MIG"

/// How long connecting to the server may take before it counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors of the database-level operations (creating the database, parsing its URL).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL is not a usable PostgreSQL URL (the message never contains the URL itself).
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    /// The server could not be reached, refused the connection, or has no such database.
    #[error("cannot connect to PostgreSQL at {url}: {reason}")]
    Connect {
        /// The URL with its password masked.
        url: String,
        /// Why, in the server's or the network's words.
        reason: String,
    },
    /// `CREATE DATABASE` failed.
    #[error("cannot create database {name:?}: {reason}")]
    CreateDatabase {
        /// The database name.
        name: String,
        /// Why, in the server's words.
        reason: String,
    },
}

/// One migration and whether the database has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationState {
    /// The migration's name, e.g. `m20261129_000001_create_users`.
    pub name: String,
    /// Whether it is applied.
    pub applied: bool,
}

/// Applies every pending migration; returns the names applied, in order (empty when the
/// schema was already up to date). Safe to call from several processes at once.
pub async fn migrate_up(db: &DatabaseConnection) -> Result<Vec<String>, DbErr> {
    let txn = db.begin().await?;
    lock_schema(&txn).await?;
    let pending = names(Migrator::get_pending_migrations(&txn).await?);
    Migrator::up(&txn, None).await?;
    txn.commit().await?;
    Ok(pending)
}

/// Rolls back the last `steps` applied migrations (all of them with `None`); returns the
/// names rolled back, newest first.
pub async fn migrate_down(
    db: &DatabaseConnection,
    steps: Option<u32>,
) -> Result<Vec<String>, DbErr> {
    let txn = db.begin().await?;
    lock_schema(&txn).await?;
    let mut applied = names(Migrator::get_applied_migrations(&txn).await?);
    applied.reverse();
    if let Some(steps) = steps {
        applied.truncate(usize::try_from(steps).unwrap_or(usize::MAX));
    }
    Migrator::down(&txn, steps).await?;
    txn.commit().await?;
    Ok(applied)
}

/// Drops every table, type and function of the current schema, then applies every migration;
/// returns the names applied. Destroys all data.
pub async fn fresh(db: &DatabaseConnection) -> Result<Vec<String>, DbErr> {
    let txn = db.begin().await?;
    lock_schema(&txn).await?;
    // sea-orm's `fresh` drops tables and types but not functions; dropping the functions first
    // (with their triggers) leaves nothing behind for the migrations to trip over.
    txn.execute_unprepared(
        r#"DO $$
        DECLARE r regprocedure;
        BEGIN
            FOR r IN
                SELECT p.oid::regprocedure FROM pg_proc p
                WHERE p.pronamespace = current_schema()::regnamespace
                  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                                  WHERE d.objid = p.oid AND d.deptype = 'e')
            LOOP
                EXECUTE format('DROP ROUTINE %s CASCADE', r);
            END LOOP;
        END $$"#,
    )
    .await?;
    Migrator::fresh(&txn).await?;
    let applied = names(Migrator::get_applied_migrations(&txn).await?);
    txn.commit().await?;
    Ok(applied)
}

/// Every known migration, in order, with whether it is applied. Read-only: does not create
/// the migrations table.
pub async fn status(db: &DatabaseConnection) -> Result<Vec<MigrationState>, DbErr> {
    Ok(Migrator::get_migration_with_status_read_only(db)
        .await?
        .iter()
        .map(|m| MigrationState {
            name: m.name().to_owned(),
            applied: m.status() == MigrationStatus::Applied,
        })
        .collect())
}

/// Creates the database named in `url` unless it exists, connecting to the server's
/// `postgres` maintenance database to do so. Returns whether it was created. Safe to race.
pub async fn create_database_if_missing(url: &str) -> Result<bool, Error> {
    let parsed = url::Url::parse(url).map_err(|e| Error::InvalidUrl(e.to_string()))?;
    let name = database_name(&parsed)?;
    match connect_once(url).await {
        Ok(conn) => {
            // Best effort: the answer does not depend on a clean goodbye.
            let _ = conn.close().await;
            return Ok(false);
        }
        Err(e) if sqlstate(&e).as_deref() == Some("3D000") => {} // invalid_catalog_name
        Err(e) => return Err(connect_error(url, &e)),
    }

    let mut maintenance = parsed.clone();
    maintenance.set_path("/postgres");
    let mut conn = connect_once(maintenance.as_str())
        .await
        .map_err(|e| connect_error(maintenance.as_str(), &e))?;
    let created = match sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE DATABASE {}",
        quote_ident(&name)
    )))
    .execute(&mut conn)
    .await
    {
        Ok(_) => Ok(true),
        // duplicate_database: another process created it in the meantime.
        Err(e) if sqlstate(&e).as_deref() == Some("42P04") => Ok(false),
        Err(e) => Err(Error::CreateDatabase {
            name,
            reason: describe(&e),
        }),
    };
    let _ = conn.close().await;
    created
}

/// Opens and closes one connection to `url`, to fail early with a clear reason (a pool only
/// reports that it timed out).
pub async fn probe(url: &str) -> Result<(), Error> {
    url::Url::parse(url).map_err(|e| Error::InvalidUrl(e.to_string()))?;
    let conn = connect_once(url)
        .await
        .map_err(|e| connect_error(url, &e))?;
    let _ = conn.close().await;
    Ok(())
}

/// The URL with its password replaced by `***`, for logs and errors. Text that does not parse
/// as a URL is shown only from its last `@`, which is where a password would end.
pub fn redact_url(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(mut url) => {
            if url.password().is_some() {
                // Only fails for URLs that cannot have credentials, which have no password.
                let _ = url.set_password(Some("***"));
            }
            url.to_string()
        }
        Err(_) => match text.rfind('@') {
            Some(at) => format!("***{}", &text[at..]),
            None => text.to_owned(),
        },
    }
}

/// A short hash of the migration sources: it changes whenever a migration is added or edited.
/// Test helpers name their template databases after it.
pub fn schema_fingerprint() -> &'static str {
    env!("MIGRATIONS_SOURCE_FINGERPRINT")
}

/// `"name"` with embedded quotes doubled: a safe SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn database_name(url: &url::Url) -> Result<String, Error> {
    let name = percent_decode(url.path().trim_start_matches('/'));
    if name.is_empty() {
        return Err(Error::InvalidUrl("it names no database".to_owned()));
    }
    Ok(name)
}

/// One connection, given up after [`CONNECT_TIMEOUT`] (sqlx itself would wait as long as the
/// operating system does, minutes for an unroutable host).
async fn connect_once(url: &str) -> Result<sqlx::PgConnection, sqlx::Error> {
    tokio::time::timeout(CONNECT_TIMEOUT, sqlx::PgConnection::connect(url))
        .await
        .unwrap_or_else(|_| {
            Err(sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
            )))
        })
}

fn connect_error(url: &str, err: &sqlx::Error) -> Error {
    Error::Connect {
        url: redact_url(url),
        reason: describe(err),
    }
}

/// The server's message without sqlx's decorations (it appends the server's C source line).
fn describe(err: &sqlx::Error) -> String {
    match err.as_database_error() {
        Some(db) => db.message().to_owned(),
        None => err.to_string(),
    }
}

/// The SQLSTATE code of an error the server raised, if it is one.
pub fn sqlstate(err: &sqlx::Error) -> Option<String> {
    err.as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned())
}

async fn lock_schema(txn: &impl ConnectionTrait) -> Result<(), DbErr> {
    txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({SCHEMA_LOCK_KEY})"))
        .await?;
    Ok(())
}

fn names(migrations: Vec<sea_orm_migration::Migration>) -> Vec<String> {
    migrations.iter().map(|m| m.name().to_owned()).collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
