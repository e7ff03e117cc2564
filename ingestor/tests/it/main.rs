//! Integration tests of the `ingestor` binary against real PostgreSQL and RabbitMQ.

mod ingest_support;
mod ingestion;
mod relay;
