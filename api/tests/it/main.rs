//! Integration tests of the `api` crate: the real binaries against real PostgreSQL and RabbitMQ.

mod accounts;
mod admin_cli;
mod app;
mod audit;
mod auth;
mod bad_inputs;
mod brand_admin;
mod brands;
mod dead_tasks;
mod events;
mod mentions;
mod openapi;
mod processes;
mod push;
mod rate_limit;
mod replies;
#[path = "../common/stack.rs"]
mod stack;
mod status;
mod sync;
mod tasks;
mod triage;
mod webhooks;
