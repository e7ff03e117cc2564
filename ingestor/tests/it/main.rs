//! Integration tests of the `ingestor` binary against real PostgreSQL and RabbitMQ.

mod relay;
mod ingest_support;
mod ingestion;
