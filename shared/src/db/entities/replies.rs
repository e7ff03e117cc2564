//! `replies`: outbound replies. At most one per mention is not `failed` (partial unique
//! index `replies_one_live_per_mention_key`).

use crate::domain::{MentionId, ReplyId, ReplyStatus, UserId};
use sea_orm::entity::prelude::*;

/// A row of `replies`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "replies")]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: ReplyId,
    /// The mention answered.
    pub mention_id: MentionId,
    /// The reply's text.
    pub content: String,
    /// Hash of `content` (the same content requested again is the same reply).
    pub content_hash: String,
    /// Who asked for it.
    pub requested_by: Option<UserId>,
    /// The `Idempotency-Key` of the request, if any.
    pub idempotency_key: Option<String>,
    /// Where it is in the exactly-once protocol.
    pub status: ReplyStatus,
    /// Send attempts so far.
    pub attempts: i32,
    /// Our reply's post id at the provider.
    pub provider_post_id: Option<String>,
    /// Our reply's comment id at the provider.
    pub provider_comment_id: Option<String>,
    /// The last failure, for people.
    pub last_error: Option<String>,
    /// When the last attempt started.
    pub last_attempt_at: Option<DateTimeWithTimeZone>,
    /// When the provider accepted it.
    pub sent_at: Option<DateTimeWithTimeZone>,
    /// When it was requested.
    pub created_at: DateTimeWithTimeZone,
    /// Last change.
    pub updated_at: DateTimeWithTimeZone,
}

/// Relations of `replies`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The mention answered.
    #[sea_orm(
        belongs_to = "super::mentions::Entity",
        from = "Column::MentionId",
        to = "super::mentions::Column::Id"
    )]
    Mention,
    /// Who asked for it.
    #[sea_orm(
        belongs_to = "super::users::Entity",
        from = "Column::RequestedBy",
        to = "super::users::Column::Id"
    )]
    RequestedBy,
}

impl Related<super::mentions::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Mention.def()
    }
}

impl Related<super::users::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::RequestedBy.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
