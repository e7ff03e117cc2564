//! Users and sessions: login (`POST /v1/users/login`), logout, the current user
//! (`GET /v1/me`), the user list and, for admins, creating and changing users
//! (`PATCH /v1/users/{id}`: disable or enable, role, password, brands).

use crate::AppState;
use crate::accounts::{self, MAX_NAME_CHARS, NewAccount};
use crate::auth::{self, Admin, Principal};
use crate::error::{ApiError, Problem};
use crate::extract::{Body, Params, parse_id, present};
use crate::openapi::{self, RoleValues};
use axum::Json;
use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use sea_orm::{ConnectionTrait, TransactionTrait};
use serde::{Deserialize, Serialize};
use shared::audit::{self, Entry, entity};
use shared::brands::{self, DEFAULT_BRAND};
use shared::db::entities::users;
use shared::db::users::LoginKeys;
use shared::db::{tokens, users as user_queries};
use shared::domain::{BrandId, Role, UserId};
use std::net::SocketAddr;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes open to anyone (login).
pub fn public_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(login))
}

/// Routes that need a token.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(logout))
        .routes(routes!(get_me))
        .routes(routes!(list_users, create_user))
        .routes(routes!(update_user))
}

/// A user as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserOut {
    /// Id (a UUID string).
    #[schema(value_type = String, format = Uuid)]
    pub id: UserId,
    /// Login address.
    pub email: String,
    /// Display name.
    pub name: String,
    /// What the user may do.
    #[schema(value_type = RoleValues)]
    pub role: Role,
    /// Whether the user is disabled (cannot sign in).
    pub disabled: bool,
    /// The brands the user works for (an agent sees their mentions only; admins see every
    /// brand's).
    #[schema(value_type = Vec<uuid::Uuid>)]
    pub brand_ids: Vec<BrandId>,
}

impl UserOut {
    fn new(user: users::Model, brand_ids: Vec<BrandId>) -> Self {
        UserOut {
            id: user.id,
            email: user.email,
            name: user.name,
            role: user.role,
            disabled: user.disabled_at.is_some(),
            brand_ids,
        }
    }

    /// `user` with its brands read from `conn`.
    async fn of(conn: &impl ConnectionTrait, user: users::Model) -> Result<Self, ApiError> {
        let brand_ids = brands::of_user(conn, user.id).await?;
        Ok(UserOut::new(user, brand_ids))
    }
}

/// Changes to a user; at least one field (none may be `null`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct UpdateUserIn {
    /// `true` disables the user (every token of theirs stops working at once); `false`
    /// enables them again.
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    pub disabled: Option<bool>,
    /// The new role.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = RoleValues, required = false)]
    pub role: Option<Role>,
    /// A new password (every token of the user is revoked).
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false, min_length = 8, max_length = 1024)]
    pub password: Option<String>,
    /// The brands the user works for, replacing the current ones.
    #[serde(default, rename = "brandIds", deserialize_with = "present")]
    #[schema(value_type = Vec<uuid::Uuid>, nullable = false, max_items = 1000)]
    pub brand_ids: Option<Vec<BrandId>>,
}

/// Credentials.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginIn {
    /// Login address (any case).
    pub email: String,
    /// Password.
    pub password: String,
}

/// A new session.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginOut {
    /// Bearer token for `Authorization: Bearer <token>`; shown only here.
    pub token: String,
    /// The signed-in user.
    pub user: UserOut,
}

/// A user to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserIn {
    /// Login address; unique whatever its case.
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// Display name; surrounding white space is removed.
    #[schema(schema_with = name_schema)]
    pub name: String,
    /// Password.
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
    /// What the user may do.
    #[schema(value_type = RoleValues)]
    pub role: Role,
    /// The brands the user works for (default: the default brand).
    #[serde(default, rename = "brandIds", deserialize_with = "present")]
    #[schema(value_type = Option<Vec<uuid::Uuid>>, nullable = false, max_items = 1000)]
    pub brand_ids: Option<Vec<BrandId>>,
}

fn name_schema() -> utoipa::openapi::schema::Object {
    openapi::non_blank_text(
        MAX_NAME_CHARS,
        "Display name; surrounding white space is removed",
    )
}

/// The address of the client, for login throttling.
pub(crate) struct ClientAddress(pub(crate) String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(|| "unknown".to_owned(), |info| info.0.ip().to_string());
        Ok(ClientAddress(address))
    }
}

fn wrong_credentials() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
        "wrong email or password",
    )
}

/// Signs in: answers a bearer token. A wrong email and a wrong password get the same 401;
/// repeated failures on one account, or from one address, are refused for a while with 429
/// and `Retry-After`.
#[utoipa::path(post, path = "/v1/users/login", tag = "users", request_body = LoginIn,
    responses(
        (status = 200, description = "Signed in", body = LoginOut),
        (status = 401, description = "Wrong email or password", body = Problem),
        (status = 403, description = "The account is disabled", body = Problem),
        (status = 429, description = "Too many failures on this account or from this address (`login_throttled`)", body = Problem),
        (status = 503, description = "Too many sign-ins at once (`busy`), or the database is unavailable (`unavailable`)", body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn login(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    Body(input): Body<LoginIn>,
) -> Result<Json<LoginOut>, ApiError> {
    let keys = LoginKeys::new(&address, &input.email);
    if let Some(until) = user_queries::begin_login(&state.db, &keys, state.login_throttle).await? {
        return Err(throttled(until));
    }
    let user = user_queries::find_by_email(&state.db, &input.email).await?;
    let hash = user.as_ref().map_or_else(
        || auth::decoy_hash().to_owned(),
        |u| u.password_hash.clone(),
    );
    let password = input.password;
    let matches = auth::password_work(move || auth::verify_password(&password, &hash)).await?;
    let Some(user) = user.filter(|_| matches) else {
        tracing::info!(%address, "failed login");
        return Err(wrong_credentials());
    };
    user_queries::login_succeeded(&state.db, &keys, state.login_throttle).await?;
    if user.disabled_at.is_some() {
        return Err(ApiError::forbidden(
            "this account is disabled; ask an admin",
        ));
    }
    let (token, token_hash) = auth::new_token();
    let expires = chrono::Utc::now()
        + chrono::Duration::from_std(auth::TOKEN_LIFETIME).unwrap_or(chrono::Duration::days(30));
    tokens::insert(&state.db, user.id, &token_hash, expires).await?;
    Ok(Json(LoginOut {
        token,
        user: UserOut::of(&state.db, user).await?,
    }))
}

/// 429 `login_throttled` until `until`.
pub(crate) fn throttled(until: chrono::DateTime<chrono::FixedOffset>) -> ApiError {
    let wait = until
        .signed_duration_since(chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "login_throttled",
        "too many failed logins on this account or from this address; try again later",
    )
    .with_retry_after(wait)
}

/// Signs out: revokes the token of this request.
#[utoipa::path(post, path = "/v1/users/logout", tag = "users", security(("bearer" = [])),
    responses(
        (status = 204, description = "The token is revoked"),
        (status = 401, description = "No valid token", body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn logout(State(state): State<AppState>, me: Principal) -> Result<StatusCode, ApiError> {
    tokens::revoke(&state.db, me.user_id, me.token_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The signed-in user.
#[utoipa::path(get, path = "/v1/me", tag = "users", security(("bearer" = [])),
    responses(
        (status = 200, description = "The signed-in user", body = UserOut),
        (status = 401, description = "No valid token", body = Problem),
    ))]
async fn get_me(State(state): State<AppState>, me: Principal) -> Result<Json<UserOut>, ApiError> {
    let user = user_queries::find(&state.db, me.user_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("the user no longer exists"))?;
    Ok(Json(UserOut::of(&state.db, user).await?))
}

/// Which users to list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListUsersQuery {
    /// Only the users who may be assigned a mention of this brand: its users and the admins.
    #[serde(rename = "brandId")]
    #[param(rename = "brandId", format = Uuid)]
    pub brand_id: Option<String>,
}

/// Every user (the seed's shape: an array of `{id, email, name, role}`, plus `disabled` and
/// `brandIds`); with `brandId`, the users a mention of that brand can be assigned to. An agent
/// sees the admins, themselves and the users of their own brands, with those brands only.
#[utoipa::path(get, path = "/v1/users", tag = "users", params(ListUsersQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every user (for an agent: the admins and their brands' users), oldest first", body = [UserOut]),
        (status = 401, description = "No valid token", body = Problem),
        (status = 404, description = "No such brand (or not one of the agent's)", body = Problem),
        (status = 422, description = "Malformed brand id", body = Problem),
    ))]
async fn list_users(
    State(state): State<AppState>,
    me: Principal,
    Params(query): Params<ListUsersQuery>,
) -> Result<Json<Vec<UserOut>>, ApiError> {
    let brand = match query.brand_id.as_deref() {
        Some(text) => {
            let brand: BrandId = parse_id("brandId", text)?;
            me.check_sees(brand, "brand")?;
            if brands::get(&state.db, brand).await?.is_none() {
                return Err(ApiError::not_found("no brand with this id"));
            }
            Some(brand)
        }
        None => None,
    };
    let users = user_queries::list(&state.db).await?;
    let mut memberships = brands::memberships(&state.db).await?;
    let listed = users
        .into_iter()
        .map(|user| {
            let brand_ids = memberships.remove(&user.id).unwrap_or_default();
            UserOut::new(user, brand_ids)
        })
        .filter(|user| {
            brand.is_none_or(|b| user.role == Role::Admin || user.brand_ids.contains(&b))
        })
        // An agent sees the admins, themselves and the users of their brands, with those
        // brands only.
        .filter_map(|mut user| match &me.brands {
            None => Some(user),
            Some(own) => {
                let shares = user.brand_ids.iter().any(|b| own.contains(b));
                user.brand_ids.retain(|b| own.contains(b));
                (user.role == Role::Admin || user.id == me.user_id || shares).then_some(user)
            }
        })
        .collect();
    Ok(Json(listed))
}

/// Creates a user (admins only).
#[utoipa::path(post, path = "/v1/users", tag = "users", security(("bearer" = [])),
    request_body = CreateUserIn,
    responses(
        (status = 201, description = "Created", body = UserOut),
        (status = 403, description = "Not an admin", body = Problem),
        (status = 409, description = "The email is taken", body = Problem),
        (status = 422, description = "A field is invalid", body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn create_user(
    State(state): State<AppState>,
    Admin(me): Admin,
    Body(input): Body<CreateUserIn>,
) -> Result<(StatusCode, Json<UserOut>), ApiError> {
    let brand_ids = input.brand_ids.unwrap_or_else(|| vec![DEFAULT_BRAND]);
    let account = NewAccount {
        email: &input.email,
        name: &input.name,
        password: input.password,
        role: input.role,
        brands: &brand_ids,
    };
    let user = accounts::create(&state.db, account, me.actor()).await?;
    Ok((
        StatusCode::CREATED,
        Json(UserOut::of(&state.db, user).await?),
    ))
}

/// Changes a user (admins only): disables or enables them, changes their role or sets a new
/// password, audited as `user.updated` (a new password only as `"reset": "password"`). The last enabled admin
/// can be neither disabled nor demoted.
#[utoipa::path(patch, path = "/v1/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    request_body = UpdateUserIn,
    responses(
        (status = 200, description = "The user after the change", body = UserOut),
        (status = 403, description = "Not an admin", body = Problem),
        (status = 404, description = "No such user", body = Problem),
        (status = 409, description = "It would leave no enabled admin (`last_admin`)", body = Problem),
        (status = 422, description = "A field is invalid, or none is given", body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn update_user(
    State(state): State<AppState>,
    Admin(me): Admin,
    Path(id): Path<String>,
    Body(input): Body<UpdateUserIn>,
) -> Result<Json<UserOut>, ApiError> {
    let id: UserId = parse_id("id", &id)?;
    if input.disabled.is_none()
        && input.role.is_none()
        && input.password.is_none()
        && input.brand_ids.is_none()
    {
        return Err(ApiError::invalid(
            "",
            "give at least one of disabled, role, password and brandIds",
        ));
    }
    let password_hash = match input.password {
        Some(password) => Some(accounts::hash_new_password("password", password).await?),
        None => None,
    };
    let mut changes = serde_json::Map::new();
    if let Some(disabled) = input.disabled {
        changes.insert("disabled".into(), disabled.into());
    }
    if let Some(role) = input.role {
        changes.insert("role".into(), role.as_str().into());
    }
    if let Some(brand_ids) = &input.brand_ids {
        changes.insert("brandIds".into(), serde_json::json!(brand_ids));
    }
    let new_password = password_hash.is_some();
    if new_password {
        // (A key naming the password would be redacted from the audit row.)
        changes.insert("reset".into(), "password".into());
    }
    let change = user_queries::UserChange {
        disabled: input.disabled,
        role: input.role,
        password_hash,
    };
    let txn = state.db.begin().await?;
    let user = user_queries::update(&txn, id, change)
        .await
        .map_err(|e| {
            if shared::db::violated_constraint(&e).as_deref() == Some(user_queries::KEEP_AN_ADMIN) {
                ApiError::conflict(
                    "last_admin",
                    "this would leave no enabled admin; promote or enable another first",
                )
            } else {
                e.into()
            }
        })?
        .ok_or_else(|| ApiError::not_found("no user with this id"))?;
    if new_password {
        tokens::revoke_all_of(&txn, id, None).await?;
    }
    if let Some(brand_ids) = &input.brand_ids {
        accounts::set_brands(&txn, id, brand_ids).await?;
    }
    audit::append(
        &txn,
        Entry::new(me.actor(), "user.updated", entity::USER, id)
            .with_payload(serde_json::Value::Object(changes)),
    )
    .await?;
    let out = UserOut::of(&txn, user).await?;
    txn.commit().await?;
    Ok(Json(out))
}
