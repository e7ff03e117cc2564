//! Integration tests of the shared library against a real PostgreSQL (one fresh database per
//! test, see `shared::testing`).

mod audit;
mod broker_restart;
mod outbox;
mod plan;
mod provider;
mod push;
mod schema;
mod support;
mod tasks_support;
mod worker;
mod worker_crash;
