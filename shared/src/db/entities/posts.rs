//! `posts`: one row per social post being watched for comments.

use crate::domain::{BrandId, Platform, PostId};
use sea_orm::entity::prelude::*;

/// A row of `posts`. Unique on (`brand_id`, `platform`, `platform_post_id`).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "posts")]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: PostId,
    /// The brand whose post it is.
    pub brand_id: BrandId,
    /// Where the post lives.
    pub platform: Platform,
    /// Ayrshare's id of the post.
    pub ayrshare_post_id: String,
    /// The social network's id of the post.
    pub platform_post_id: String,
    /// When the post was published, if the provider said.
    pub post_created_at: Option<DateTimeWithTimeZone>,
    /// When its comments may be fetched next (from the provider's `nextUpdate`).
    pub next_fetch_at: DateTimeWithTimeZone,
    /// When its comments were last fetched.
    pub last_fetched_at: Option<DateTimeWithTimeZone>,
    /// When a fetch last found a new comment.
    pub last_new_comment_at: Option<DateTimeWithTimeZone>,
    /// Comments per second, decayed over the poll planner's horizon, as of `comment_rate_at`.
    pub comment_rate: f64,
    /// When `comment_rate` was last updated (a fetch).
    pub comment_rate_at: Option<DateTimeWithTimeZone>,
    /// The comment count of its latest history item, if the network reports one.
    pub comments_hint: Option<i32>,
    /// When a history read last reported `comments_hint`.
    pub comments_hint_at: Option<DateTimeWithTimeZone>,
    /// `comments_hint` when its last comments read began: a hint above it means comments
    /// not read yet.
    pub comments_hint_read: Option<i32>,
    /// When the row was created.
    pub created_at: DateTimeWithTimeZone,
    /// Last change.
    pub updated_at: DateTimeWithTimeZone,
}

/// `posts` has no relation mapped.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
