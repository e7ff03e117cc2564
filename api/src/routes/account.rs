//! The signed-in user's own account: changing their password (`POST /v1/me/password`) and
//! their sessions (`GET /v1/me/tokens`, `DELETE /v1/me/tokens/{id}`). Every change is audited.

use crate::AppState;
use crate::accounts;
use crate::auth::{self, Principal};
use crate::error::{ApiError, Problem};
use crate::extract::{Body, parse_id};
use crate::routes::users::{self, ClientAddress};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, FixedOffset};
use sea_orm::TransactionTrait;
use serde::{Deserialize, Serialize};
use shared::audit::{self, Entry, entity};
use shared::db::entities::api_tokens;
use shared::db::users::LoginKeys;
use shared::db::{tokens, users as user_queries};
use shared::domain::TokenId;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes that need a token.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(change_password))
        .routes(routes!(list_tokens))
        .routes(routes!(revoke_token))
}

/// A password change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ChangePasswordIn {
    /// The current password.
    pub old_password: String,
    /// The new one.
    #[schema(min_length = 8, max_length = 1024)]
    pub new_password: String,
}

/// One of the user's sessions.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenOut {
    /// Id (a UUID string), for revoking it.
    #[schema(value_type = String, format = Uuid)]
    pub id: TokenId,
    /// When it was issued.
    pub created_at: DateTime<FixedOffset>,
    /// Its last use (recorded at most once a minute).
    pub last_used_at: Option<DateTime<FixedOffset>>,
    /// When it stops working.
    pub expires_at: Option<DateTime<FixedOffset>>,
    /// Whether it is the token of this request.
    pub current: bool,
}

/// Changes the signed-in user's password. The old one is checked like a login (and throttled
/// like one); every other token of the user is revoked, this one keeps working.
#[utoipa::path(post, path = "/v1/me/password", tag = "users", security(("bearer" = [])),
    request_body = ChangePasswordIn,
    responses(
        (status = 204, description = "Changed"),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "`oldPassword` is not the current password (`wrong_password`)", body = Problem),
        (status = 422, description = "The new password is invalid", body = Problem),
        (status = 429, description = "Too many wrong passwords (`login_throttled`)", body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn change_password(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    me: Principal,
    Body(input): Body<ChangePasswordIn>,
) -> Result<StatusCode, ApiError> {
    let user = user_queries::find(&state.db, me.user_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("the user no longer exists"))?;
    let keys = LoginKeys::new(&address, &user.email);
    if let Some(until) = user_queries::begin_login(&state.db, &keys, state.login_throttle).await? {
        return Err(users::throttled(until));
    }
    let (old, hash) = (input.old_password, user.password_hash.clone());
    if !auth::password_work(move || auth::verify_password(&old, &hash)).await? {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "wrong_password",
            "oldPassword: not the current password",
        )
        .with_field("oldPassword"));
    }
    user_queries::login_succeeded(&state.db, &keys, state.login_throttle).await?;
    let password_hash = accounts::hash_new_password("newPassword", input.new_password).await?;
    let txn = state.db.begin().await?;
    let change = user_queries::UserChange {
        password_hash: Some(password_hash),
        ..Default::default()
    };
    user_queries::update(&txn, me.user_id, change).await?;
    let revoked = tokens::revoke_all_of(&txn, me.user_id, Some(me.token_id)).await?;
    audit::append(
        &txn,
        Entry::new(
            me.actor(),
            "user.password_changed",
            entity::USER,
            me.user_id,
        )
        .with_payload(serde_json::json!({ "sessionsEnded": revoked })),
    )
    .await?;
    txn.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The signed-in user's tokens that still work, newest first.
#[utoipa::path(get, path = "/v1/me/tokens", tag = "users", security(("bearer" = [])),
    responses(
        (status = 200, description = "The user's valid tokens", body = [TokenOut]),
        (status = 401, description = "No valid token", body = Problem),
    ))]
async fn list_tokens(
    State(state): State<AppState>,
    me: Principal,
) -> Result<Json<Vec<TokenOut>>, ApiError> {
    let rows = tokens::list_valid(&state.db, me.user_id).await?;
    Ok(Json(
        rows.into_iter()
            .map(|row: api_tokens::Model| TokenOut {
                current: row.id == me.token_id,
                id: row.id,
                created_at: row.created_at,
                last_used_at: row.last_used_at,
                expires_at: row.expires_at,
            })
            .collect(),
    ))
}

/// Revokes one of the signed-in user's tokens (another session, or this one).
#[utoipa::path(delete, path = "/v1/me/tokens/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "Token id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "No valid token", body = Problem),
        (status = 404, description = "No valid token of this user with this id", body = Problem),
        (status = 422, description = "Malformed id", body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn revoke_token(
    State(state): State<AppState>,
    me: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id: TokenId = parse_id("id", &id)?;
    let txn = state.db.begin().await?;
    if !tokens::revoke(&txn, me.user_id, id).await? {
        return Err(ApiError::not_found("no valid token of yours with this id"));
    }
    audit::append(
        &txn,
        Entry::new(me.actor(), "token.revoked", entity::TOKEN, id)
            .with_payload(serde_json::json!({ "current": id == me.token_id })),
    )
    .await?;
    txn.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
