//! Integration tests of the `ingestor` binary against real PostgreSQL and RabbitMQ.

mod relay;
