//! Library shared by the Social Messages processes (`api`, `ingestor`, `replier`).

pub mod audit;
pub mod bus;
pub mod config;
pub mod db;
pub mod domain;
pub mod process;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
