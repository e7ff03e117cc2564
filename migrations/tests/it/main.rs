//! Tests of the migrations and of the `migrations` binary against a real PostgreSQL
//! (`TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`). Each test
//! works in its own scratch database, dropped at the end.

mod binary;
mod schema;
mod scratch;
