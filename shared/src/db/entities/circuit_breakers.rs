//! `circuit_breakers`: the distributed breaker state, one row per key.
//!
//! The key is a platform name today and `<profile>:<platform>` once several Ayrshare profiles
//! are served; `state` is `closed`, `open` or `half_open` (CHECK constraint).

use sea_orm::entity::prelude::*;

/// A row of `circuit_breakers`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "circuit_breakers")]
pub struct Model {
    /// What the breaker guards.
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    /// `closed`, `open` or `half_open`.
    pub state: String,
    /// Calls in the sliding window, as last counted.
    pub calls: i32,
    /// Failed calls among them.
    pub failures: i32,
    /// When it last opened.
    pub opened_at: Option<DateTimeWithTimeZone>,
    /// While open: when it may let probes through.
    pub open_until: Option<DateTimeWithTimeZone>,
    /// Consecutive re-openings (to lengthen the open period).
    pub reopen_count: i32,
    /// Probe permits handed out while half-open.
    pub half_open_permits_in_use: i32,
    /// While closed: when the failure rate reached the threshold (the trip is settling).
    pub trip_pending_since: Option<DateTimeWithTimeZone>,
    /// Last change.
    pub updated_at: DateTimeWithTimeZone,
}

/// `circuit_breakers` has no relation.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
