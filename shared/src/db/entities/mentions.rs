//! `mentions`: the inbox: comments, replies in threads and direct messages, each stored once.
//!
//! Unique on (`brand_id`, `platform`, `type`, `platform_ref`): insert with `ON CONFLICT DO NOTHING`.
//! The table also has a generated `search` column (`tsvector` over content, author name and
//! handle, text search configuration `simple`, GIN-indexed) that this entity leaves out:
//! filter with `search @@ websearch_to_tsquery('simple', $1)`.

use crate::domain::{BrandId, Disposition, MentionId, MentionState, MentionType, Platform, UserId};
use sea_orm::entity::prelude::*;

/// A row of `mentions`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mentions")]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: MentionId,
    /// The brand whose inbox it is in.
    pub brand_id: BrandId,
    /// Comment, reply or message (column `type`).
    #[sea_orm(column_name = "type")]
    pub mention_type: MentionType,
    /// Where it was posted.
    pub platform: Platform,
    /// The text.
    pub content: String,
    /// The social network's id of the comment or message.
    pub platform_ref: String,
    /// Ayrshare post id (comments) or conversation id (messages).
    pub provider_post_ref: Option<String>,
    /// The mention this one answers (threads, and our own replies).
    pub parent_id: Option<MentionId>,
    /// The author's id on the platform.
    pub author_id: Option<String>,
    /// The author's display name.
    pub author_name: Option<String>,
    /// The author's handle.
    pub author_handle: Option<String>,
    /// When the author posted it.
    pub posted_at: Option<DateTimeWithTimeZone>,
    /// Triage state; `None` means new.
    pub state: Option<MentionState>,
    /// The agent's decision, if any.
    pub disposition: Option<Disposition>,
    /// The agent it is assigned to.
    pub assignee_id: Option<UserId>,
    /// The provider's payload as received.
    pub raw: Json,
    /// Optimistic concurrency: bump on every change, compare with `If-Match`.
    pub version: i32,
    /// When it was stored (the inbox is ordered by `created_at DESC, id DESC`).
    pub created_at: DateTimeWithTimeZone,
    /// Last change.
    pub updated_at: DateTimeWithTimeZone,
}

/// Relations of `mentions`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The assigned agent.
    #[sea_orm(
        belongs_to = "super::users::Entity",
        from = "Column::AssigneeId",
        to = "super::users::Column::Id"
    )]
    Assignee,
    /// The parent mention.
    #[sea_orm(belongs_to = "Entity", from = "Column::ParentId", to = "Column::Id")]
    Parent,
    /// Replies requested for this mention.
    #[sea_orm(has_many = "super::replies::Entity")]
    Replies,
}

impl Related<super::users::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Assignee.def()
    }
}

impl Related<super::replies::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Replies.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
