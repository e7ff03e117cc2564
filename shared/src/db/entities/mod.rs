//! sea-orm entities, one module per table (named like the table).
//!
//! Ids are the domain's typed ids and enum-valued columns are the domain enums (see
//! `db::values`); timestamps are `timestamptz` (`DateTimeWithTimeZone`), JSON columns `jsonb`.

pub mod api_tokens;
pub mod audit_log;
pub mod circuit_breakers;
pub mod idempotency_keys;
pub mod mentions;
pub mod posts;
pub mod replies;
pub mod tasks;
pub mod users;
