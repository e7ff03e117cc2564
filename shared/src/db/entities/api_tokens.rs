//! `api_tokens`: bearer tokens, stored hashed; revocable, with an optional expiry.

use crate::domain::{TokenId, UserId};
use sea_orm::entity::prelude::*;

/// A row of `api_tokens`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_tokens")]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: TokenId,
    /// Owner (tokens are deleted with their user).
    pub user_id: UserId,
    /// Hash of the token (unique); the token itself is never stored.
    pub token_hash: String,
    /// When the token was issued.
    pub created_at: DateTimeWithTimeZone,
    /// Last successful use.
    pub last_used_at: Option<DateTimeWithTimeZone>,
    /// After this, the token is refused.
    pub expires_at: Option<DateTimeWithTimeZone>,
    /// Set when revoked; a revoked token is refused.
    pub revoked_at: Option<DateTimeWithTimeZone>,
}

/// Relations of `api_tokens`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The owner.
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
