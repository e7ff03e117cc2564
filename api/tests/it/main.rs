//! Integration tests of the `api` crate: the real binaries against real PostgreSQL and RabbitMQ.

mod processes;
