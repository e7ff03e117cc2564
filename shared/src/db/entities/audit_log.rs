//! `audit_log`: append-only, hash-chained; write it through `crate::audit::append`.
//!
//! The database assigns `id` (the chain position), `prev_hash` and `hash` on insert, and
//! rejects UPDATE, DELETE and TRUNCATE.

use sea_orm::entity::prelude::*;

/// A row of `audit_log`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    /// Position in the chain: 1, 2, 3… without gaps, in chain order.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i64,
    /// When it happened (the start of the writing transaction).
    pub occurred_at: DateTimeWithTimeZone,
    /// `user:<uuid>` or `system:<process>`.
    pub actor: String,
    /// What happened, e.g. `mention.assigned`.
    pub action: String,
    /// The kind of thing it happened to, e.g. `mention`.
    pub entity_type: String,
    pub entity_id: String,
    /// Excerpt of the details: secrets removed, at most 2 KB.
    pub payload: Json,
    /// The previous row's `hash` (64 zeros for the first row).
    pub prev_hash: String,
    /// Hex SHA-256 over `prev_hash` and this row (see `crate::audit`).
    pub hash: String,
}

/// `audit_log` has no relation mapped (`entity_id` points at different tables).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
