//! Library shared by the Social Messages processes (`api`, `ingestor`, `replier`).

pub mod adapters;
pub mod audit;
pub mod brands;
pub mod bus;
pub mod config;
pub mod db;
pub mod domain;
pub mod ingest;
pub mod outbox;
pub mod process;
pub mod provider;
pub mod reply;
pub mod resilience;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod worker;
