//! Queries on `api_tokens`: issuing, looking up a presented token, recording its use and
//! revoking it. Only hashes are stored; hashing and generating tokens is the API's business.

use crate::db::entities::{api_tokens, users};
use crate::domain::{TokenId, UserId};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
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

/// The token with this hash and its owner, unless it is revoked or expired.
pub async fn find_valid(
    conn: &impl ConnectionTrait,
    token_hash: &str,
) -> Result<Option<ValidToken>, DbErr> {
    let found = api_tokens::Entity::find()
        .find_also_related(users::Entity)
        .filter(api_tokens::Column::TokenHash.eq(token_hash))
        .filter(api_tokens::Column::RevokedAt.is_null())
        .filter(
            Condition::any()
                .add(api_tokens::Column::ExpiresAt.is_null())
                .add(Expr::col(api_tokens::Column::ExpiresAt).gt(Expr::cust("now()"))),
        )
        .one(conn)
        .await?;
    Ok(found.and_then(|(token, user)| Some(ValidToken { token, user: user? })))
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

/// Revokes the token; returns whether it was still valid.
pub async fn revoke(conn: &impl ConnectionTrait, id: TokenId) -> Result<bool, DbErr> {
    let result = api_tokens::Entity::update_many()
        .col_expr(api_tokens::Column::RevokedAt, Expr::cust("now()"))
        .filter(api_tokens::Column::Id.eq(id))
        .filter(api_tokens::Column::RevokedAt.is_null())
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}
