//! Queries on `api_tokens`: issuing, looking up a presented token, listing a user's, recording
//! use and revoking. Only hashes are stored; hashing and generating tokens is the API's business.

use crate::db::entities::{api_tokens, users};
use crate::domain::{TokenId, UserId};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    QueryOrder, Set,
};

/// A token that may be used, with its owner.
#[derive(Debug, Clone)]
pub struct ValidToken {
    /// The token row.
    pub token: api_tokens::Model,
    /// Its owner.
    pub user: users::Model,
}

/// Stores a new token (its hash) for `user_id`, valid until `expires_at`.
pub async fn insert(
    conn: &impl ConnectionTrait,
    user_id: UserId,
    token_hash: &str,
    expires_at: DateTime<Utc>,
) -> Result<api_tokens::Model, DbErr> {
    api_tokens::ActiveModel {
        id: Set(TokenId::new()),
        user_id: Set(user_id),
        token_hash: Set(token_hash.to_owned()),
        expires_at: Set(Some(expires_at.fixed_offset())),
        ..Default::default()
    }
    .insert(conn)
    .await
}

/// The token with this hash and its owner, unless it is revoked or expired or its owner is
/// disabled.
pub async fn find_valid(
    conn: &impl ConnectionTrait,
    token_hash: &str,
) -> Result<Option<ValidToken>, DbErr> {
    let found = api_tokens::Entity::find()
        .find_also_related(users::Entity)
        .filter(api_tokens::Column::TokenHash.eq(token_hash))
        .filter(api_tokens::Column::RevokedAt.is_null())
        .filter(unexpired())
        .filter(users::Column::DisabledAt.is_null())
        .one(conn)
        .await?;
    Ok(found.and_then(|(token, user)| Some(ValidToken { token, user: user? })))
}

fn unexpired() -> Condition {
    Condition::any()
        .add(api_tokens::Column::ExpiresAt.is_null())
        .add(Expr::col(api_tokens::Column::ExpiresAt).gt(Expr::cust("now()")))
}

/// The user's tokens that may still be used, newest first.
pub async fn list_valid(
    conn: &impl ConnectionTrait,
    user_id: UserId,
) -> Result<Vec<api_tokens::Model>, DbErr> {
    api_tokens::Entity::find()
        .filter(api_tokens::Column::UserId.eq(user_id))
        .filter(api_tokens::Column::RevokedAt.is_null())
        .filter(unexpired())
        .order_by_desc(api_tokens::Column::CreatedAt)
        .all(conn)
        .await
}

/// Revokes every token of the user but `keep`; returns how many.
pub async fn revoke_all_of(
    conn: &impl ConnectionTrait,
    user_id: UserId,
    keep: Option<TokenId>,
) -> Result<u64, DbErr> {
    let mut update = api_tokens::Entity::update_many()
        .col_expr(api_tokens::Column::RevokedAt, Expr::cust("now()"))
        .filter(api_tokens::Column::UserId.eq(user_id))
        .filter(api_tokens::Column::RevokedAt.is_null());
    if let Some(keep) = keep {
        update = update.filter(api_tokens::Column::Id.ne(keep));
    }
    Ok(update.exec(conn).await?.rows_affected)
}

/// Records that the token was just used.
pub async fn touch(conn: &impl ConnectionTrait, id: TokenId) -> Result<(), DbErr> {
    api_tokens::Entity::update_many()
        .col_expr(api_tokens::Column::LastUsedAt, Expr::cust("now()"))
        .filter(api_tokens::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Revokes the token of `user_id` with this id; returns whether it was still valid.
pub async fn revoke(
    conn: &impl ConnectionTrait,
    user_id: UserId,
    id: TokenId,
) -> Result<bool, DbErr> {
    let result = api_tokens::Entity::update_many()
        .col_expr(api_tokens::Column::RevokedAt, Expr::cust("now()"))
        .filter(api_tokens::Column::Id.eq(id))
        .filter(api_tokens::Column::UserId.eq(user_id))
        .filter(api_tokens::Column::RevokedAt.is_null())
        .filter(unexpired())
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}
