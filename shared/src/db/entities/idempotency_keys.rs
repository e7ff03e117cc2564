//! `idempotency_keys`: the first answer to a request made with an `Idempotency-Key`, per user.

use crate::domain::UserId;
use sea_orm::entity::prelude::*;

/// A row of `idempotency_keys`; primary key (`user_id`, `key`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_keys")]
pub struct Model {
    /// Whose key it is.
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: UserId,
    /// The key as sent by the client.
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    /// Hash of the request (a different request with the same key is refused).
    pub request_hash: String,
    /// The answer's HTTP status; `None` while the first request is still in flight.
    pub response_status: Option<i32>,
    /// The answer's body.
    pub response_body: Option<Json>,
    /// When the key was first used (expired keys are purged by this).
    pub created_at: DateTimeWithTimeZone,
}

/// Relations of `idempotency_keys`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// Whose key it is.
    #[sea_orm(
        belongs_to = "super::users::Entity",
        from = "Column::UserId",
        to = "super::users::Column::Id"
    )]
    User,
}

impl Related<super::users::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
