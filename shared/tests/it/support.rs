//! Rows that several tests need.

use sea_orm::{ActiveModelTrait, ConnectionTrait, Set};
use serde_json::json;
use shared::db::entities::{mentions, users};
use shared::domain::{MentionId, MentionType, Platform, Role, UserId};

/// Inserts an agent.
pub async fn insert_user(db: &impl ConnectionTrait, email: &str) -> users::Model {
    users::ActiveModel {
        id: Set(UserId::new()),
        email: Set(email.to_owned()),
        name: Set("Agent".to_owned()),
        role: Set(Role::Agent),
        password_hash: Set("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned()),
        ..Default::default()
    }
    .insert(db)
    .await
    .expect("insert user")
}

/// An unsaved facebook comment with the given platform ref.
pub fn comment(platform_ref: &str) -> mentions::ActiveModel {
    mentions::ActiveModel {
        id: Set(MentionId::new()),
        mention_type: Set(MentionType::Comment),
        platform: Set(Platform::Facebook),
        content: Set("Where is my order?".to_owned()),
        platform_ref: Set(platform_ref.to_owned()),
        provider_post_ref: Set(Some("ayr-post-1".to_owned())),
        author_name: Set(Some("Jane Doe".to_owned())),
        author_handle: Set(Some("@jdoe".to_owned())),
        raw: Set(json!({"id": platform_ref})),
        ..Default::default()
    }
}

/// Inserts a facebook comment with the given platform ref.
pub async fn insert_comment(db: &impl ConnectionTrait, platform_ref: &str) -> mentions::Model {
    comment(platform_ref)
        .insert(db)
        .await
        .expect("insert mention")
}
