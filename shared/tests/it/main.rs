//! Integration tests of the shared library against a real PostgreSQL (one fresh database per
//! test, see `shared::testing`).

mod audit;
mod schema;
mod support;
