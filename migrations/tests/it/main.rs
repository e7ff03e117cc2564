//! Tests of the migrations and of the `migrations` binary against a real PostgreSQL
//! (`TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`). Each test
//! works in its own scratch database, dropped at the end.

mod binary;
mod schema;
mod scratch;

use sea_orm_migration::MigratorTrait;

/// Every migration's name, in order (tests must keep passing as migrations are added).
pub fn all_migrations() -> Vec<String> {
    migrations::Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect()
}
