//! Brands (Ayrshare User Profiles): `GET /v1/brands` (an agent sees their own brands only),
//! and for admins `POST /v1/brands` and `PATCH /v1/brands/{id}` (rename, new Profile-Key,
//! platforms, disable or enable), each audited in the transaction of the change.
//!
//! The Profile-Key goes one way: in through a body, sealed by [`brands`] with `BRANDS_KEY`,
//! never out (answers say `hasProfileKey`; audit rows name the field, never its value). A
//! Profile-Key while `BRANDS_KEY` is not set is a 409 `brands_key_not_set`: the request is
//! well formed, the installation cannot store it. The uniqueness rules are the database's
//! (`brands_name_key`, `brands_profile_key_hash_key`, `brands_one_primary_profile`), read back
//! here as 409s with a code each.

use crate::AppState;
use crate::auth::{Admin, Principal};
use crate::error::{ApiError, Problem};
use crate::extract::{Body, parse_id, present};
use crate::openapi::{self, PlatformValues};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use sea_orm::TransactionTrait;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use shared::audit::{self, Entry, entity};
use shared::brands::{
    self, Brand, BrandChange, BrandWriteError, MAX_NAME_LEN, MAX_PROFILE_KEY_LEN, NewBrand,
};
use shared::domain::{BrandId, Platform};
use utoipa::ToSchema;
use utoipa::openapi::Ref;
use utoipa::openapi::schema::{Array, ArrayBuilder, Object, ObjectBuilder, SchemaType, Type};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes that need a token.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_brands, create_brand))
        .routes(routes!(update_brand))
}

/// A brand as the API shows it (never its Profile-Key).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BrandOut {
    /// Id (a UUID string).
    #[schema(value_type = String, format = Uuid)]
    pub id: BrandId,
    /// Name, unique whatever its case.
    pub name: String,
    /// Whether a Profile-Key is stored; without one the brand uses the account's primary
    /// profile (`SOCIAL_MEDIA_API_PROFILE_KEY`, or none).
    pub has_profile_key: bool,
    /// The platforms it watches; `null`: every platform of `SOCIAL_PLATFORMS`.
    #[schema(value_type = Option<Vec<PlatformValues>>)]
    pub platforms: Option<Vec<Platform>>,
    /// Whether it is disabled (not polled; its history stays).
    pub disabled: bool,
    /// Since when it is disabled.
    pub disabled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Brand> for BrandOut {
    fn from(brand: Brand) -> Self {
        BrandOut {
            platforms: brand.platforms(),
            id: brand.id,
            name: brand.name,
            has_profile_key: brand.has_profile_key,
            disabled: brand.disabled_at.is_some(),
            disabled_at: brand.disabled_at,
            created_at: brand.created_at,
            updated_at: brand.updated_at,
        }
    }
}

/// A brand to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateBrandIn {
    /// Name, unique whatever its case; surrounding white space is removed.
    #[schema(schema_with = name_schema)]
    pub name: String,
    /// The Ayrshare Profile-Key of the brand's User Profile (needs `BRANDS_KEY`). Without
    /// one the brand uses the account's primary profile, which only one brand can do.
    #[serde(default, deserialize_with = "secret")]
    #[schema(schema_with = profile_key_schema, required = false)]
    pub profile_key: Option<SecretString>,
    /// The platforms it watches (default: every platform of `SOCIAL_PLATFORMS`).
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = platforms_schema, required = false)]
    pub platforms: Option<Vec<Platform>>,
}

/// Changes to a brand; at least one field.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(min_properties = 1)]
pub struct UpdateBrandIn {
    /// A new name, unique whatever its case; surrounding white space is removed.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = name_schema, required = false)]
    pub name: Option<String>,
    /// A new Profile-Key (needs `BRANDS_KEY`); the brand's work goes to that profile from
    /// then on.
    #[serde(default, deserialize_with = "secret")]
    #[schema(schema_with = profile_key_schema, required = false)]
    pub profile_key: Option<SecretString>,
    /// The platforms it watches; `null`: every platform of `SOCIAL_PLATFORMS` again.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = platforms_or_null_schema, required = false)]
    pub platforms: Option<Option<Vec<Platform>>>,
    /// `true` disables the brand (its polling stops, its history stays); `false` enables it.
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    pub disabled: Option<bool>,
}

/// Like [`present`], for a secret: the text goes straight into a [`SecretString`] (whose
/// `Debug` says nothing of it).
fn secret<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SecretString>, D::Error> {
    String::deserialize(deserializer).map(|text| Some(SecretString::from(text)))
}

fn name_schema() -> Object {
    openapi::non_blank_text(
        MAX_NAME_LEN,
        "Name, unique whatever its case; surrounding white space is removed",
    )
}

/// 1 to 8 platforms, each once.
fn platforms_array(nullable: bool, description: &str) -> Array {
    let types = match nullable {
        true => SchemaType::from_iter([Type::Array, Type::Null]),
        false => SchemaType::Type(Type::Array),
    };
    ArrayBuilder::new()
        .schema_type(types)
        .items(Ref::from_schema_name(PlatformValues::name()))
        .min_items(Some(1))
        .max_items(Some(Platform::ALL.len()))
        .unique_items(true)
        .description(Some(description))
        .build()
}

fn platforms_schema() -> Array {
    platforms_array(
        false,
        "The platforms it watches (default: every platform of `SOCIAL_PLATFORMS`).",
    )
}

fn platforms_or_null_schema() -> Array {
    platforms_array(
        true,
        "The platforms it watches; `null`: every platform of `SOCIAL_PLATFORMS` again.",
    )
}

/// Visible ASCII only: it is sent as an HTTP header.
const PROFILE_KEY_PATTERN: &str = "^[!-~]+$";

fn profile_key_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(MAX_PROFILE_KEY_LEN))
        .pattern(Some(PROFILE_KEY_PATTERN))
        .write_only(true)
        .description(Some(
            "Ayrshare Profile-Key (visible ASCII, sent as the `Profile-Key` header); stored \
             sealed with BRANDS_KEY, never returned",
        ))
        .build()
}

/// `name` trimmed, or 422 naming the field (blank, or longer than [`MAX_NAME_LEN`] as sent).
fn checked_name(name: &str) -> Result<String, ApiError> {
    if name.chars().count() > MAX_NAME_LEN {
        return Err(ApiError::invalid(
            "name",
            format!("name: at most {MAX_NAME_LEN} characters"),
        ));
    }
    let name = name.trim();
    if name.is_empty() {
        return Err(ApiError::invalid("name", "name: must not be blank"));
    }
    Ok(name.to_owned())
}

/// 422 naming `profileKey` unless it is 1 to [`MAX_PROFILE_KEY_LEN`] visible ASCII characters;
/// the message never repeats the key.
fn check_profile_key(key: &SecretString) -> Result<(), ApiError> {
    use secrecy::ExposeSecret;
    let key = key.expose_secret();
    if key.is_empty() || key.len() > MAX_PROFILE_KEY_LEN {
        return Err(ApiError::invalid(
            "profileKey",
            format!("profileKey: 1 to {MAX_PROFILE_KEY_LEN} characters"),
        ));
    }
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid(
            "profileKey",
            "profileKey: visible ASCII characters only (no spaces)",
        ));
    }
    Ok(())
}

/// `platforms`, or 422 when empty or when one is given twice (the document says
/// `uniqueItems`).
fn checked_platforms(platforms: &[Platform]) -> Result<Vec<Platform>, ApiError> {
    if platforms.is_empty() {
        return Err(ApiError::invalid(
            "platforms",
            "platforms: give at least one platform (or leave it out for every configured one)",
        ));
    }
    for (i, platform) in platforms.iter().enumerate() {
        if platforms[..i].contains(platform) {
            return Err(ApiError::invalid(
                format!("platforms[{i}]"),
                format!("platforms[{i}]: {platform} is given twice"),
            ));
        }
    }
    Ok(platforms.to_vec())
}

fn write_error(error: BrandWriteError) -> ApiError {
    match error {
        BrandWriteError::NoBrandsKey => ApiError::conflict(
            "brands_key_not_set",
            "BRANDS_KEY is not set, so a Profile-Key cannot be stored; set it and restart",
        )
        .with_field("profileKey"),
        BrandWriteError::NameTaken => {
            ApiError::conflict("brand_name_taken", "another brand has this name").with_field("name")
        }
        BrandWriteError::ProfileKeyTaken => ApiError::conflict(
            "profile_key_taken",
            "another brand has this Profile-Key (each profile has one budget)",
        )
        .with_field("profileKey"),
        BrandWriteError::PrimaryTaken => ApiError::conflict(
            "primary_profile_taken",
            "another brand already uses the primary profile; give this one a Profile-Key",
        )
        .with_field("profileKey"),
        BrandWriteError::Db(e) => e.into(),
    }
}

fn platform_names(platforms: Option<&[Platform]>) -> Value {
    platforms.map_or(Value::Null, |p| {
        p.iter().map(|p| p.as_str()).collect::<Vec<_>>().into()
    })
}

/// The brands the caller may see: every brand for an admin, their own for an agent.
#[utoipa::path(get, path = "/v1/brands", tag = "brands", security(("bearer" = [])),
    responses(
        (status = 200, description = "The brands, by name", body = [BrandOut]),
    ))]
async fn list_brands(
    State(state): State<AppState>,
    me: Principal,
) -> Result<Json<Vec<BrandOut>>, ApiError> {
    let listed = brands::list(&state.db)
        .await?
        .into_iter()
        .filter(|b| me.sees(b.id))
        .map(BrandOut::from)
        .collect();
    Ok(Json(listed))
}

/// Creates a brand (admins only), audited as `brand.created`.
#[utoipa::path(post, path = "/v1/brands", tag = "brands", security(("bearer" = [])),
    request_body = CreateBrandIn,
    responses(
        (status = 201, description = "Created", body = BrandOut),
        (status = 403, description = "Not an admin", body = Problem),
        (status = 409, description = "The name is taken (`brand_name_taken`), another brand has this Profile-Key (`profile_key_taken`), another brand already uses the primary profile (`primary_profile_taken`), or a Profile-Key is given while BRANDS_KEY is not set (`brands_key_not_set`)", body = Problem),
        (status = 422, description = "A field is invalid", body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn create_brand(
    State(state): State<AppState>,
    Admin(me): Admin,
    Body(input): Body<CreateBrandIn>,
) -> Result<(StatusCode, Json<BrandOut>), ApiError> {
    let name = checked_name(&input.name)?;
    if let Some(key) = &input.profile_key {
        check_profile_key(key)?;
    }
    let platforms = input
        .platforms
        .as_deref()
        .map(checked_platforms)
        .transpose()?;
    let mut fields = vec!["name"];
    if input.profile_key.is_some() {
        fields.push("profileKey");
    }
    if platforms.is_some() {
        fields.push("platforms");
    }
    let new = NewBrand {
        name,
        profile_key: input.profile_key,
        platforms,
    };
    let txn = state.db.begin().await?;
    let brand = brands::create(&txn, state.brands_key.as_ref(), &new)
        .await
        .map_err(write_error)?;
    audit::append(
        &txn,
        Entry::new(me.actor(), "brand.created", entity::BRAND, brand.id).with_payload(json!({
            "fields": fields,
            "name": brand.name,
            "platforms": platform_names(brand.platforms().as_deref()),
        })),
    )
    .await?;
    txn.commit().await?;
    Ok((StatusCode::CREATED, Json(brand.into())))
}

/// Changes a brand (admins only): renames it, gives it a new Profile-Key, sets its platforms
/// or disables and enables it, audited as `brand.updated` with the fields changed (a new
/// Profile-Key only by name).
#[utoipa::path(patch, path = "/v1/brands/{id}", tag = "brands", security(("bearer" = [])),
    params(("id" = String, Path, description = "Brand id")),
    request_body = UpdateBrandIn,
    responses(
        (status = 200, description = "The brand after the change", body = BrandOut),
        (status = 403, description = "Not an admin", body = Problem),
        (status = 404, description = "No such brand", body = Problem),
        (status = 409, description = "The name is taken (`brand_name_taken`), another brand has this Profile-Key (`profile_key_taken`), or a Profile-Key is given while BRANDS_KEY is not set (`brands_key_not_set`)", body = Problem),
        (status = 422, description = "A field is invalid, or none is given", body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn update_brand(
    State(state): State<AppState>,
    Admin(me): Admin,
    Path(id): Path<String>,
    Body(input): Body<UpdateBrandIn>,
) -> Result<Json<BrandOut>, ApiError> {
    let id: BrandId = parse_id("id", &id)?;
    if input.name.is_none()
        && input.profile_key.is_none()
        && input.platforms.is_none()
        && input.disabled.is_none()
    {
        return Err(ApiError::invalid(
            "",
            "give at least one of name, profileKey, platforms and disabled",
        ));
    }
    let name = input.name.as_deref().map(checked_name).transpose()?;
    if let Some(key) = &input.profile_key {
        check_profile_key(key)?;
    }
    let platforms = match &input.platforms {
        None => None,
        Some(None) => Some(None),
        Some(Some(list)) => Some(Some(checked_platforms(list)?)),
    };
    let mut fields = Vec::new();
    let mut payload = Map::new();
    if let Some(name) = &name {
        fields.push("name");
        payload.insert("name".into(), name.as_str().into());
    }
    if input.profile_key.is_some() {
        fields.push("profileKey");
    }
    if let Some(platforms) = &platforms {
        fields.push("platforms");
        payload.insert("platforms".into(), platform_names(platforms.as_deref()));
    }
    if let Some(disabled) = input.disabled {
        fields.push("disabled");
        payload.insert("disabled".into(), disabled.into());
    }
    payload.insert("fields".into(), json!(fields));
    let change = BrandChange {
        name,
        profile_key: input.profile_key,
        platforms,
        disabled: input.disabled,
    };
    let txn = state.db.begin().await?;
    let brand = brands::update(&txn, state.brands_key.as_ref(), id, &change)
        .await
        .map_err(write_error)?
        .ok_or_else(|| ApiError::not_found("no brand with this id"))?;
    audit::append(
        &txn,
        Entry::new(me.actor(), "brand.updated", entity::BRAND, id)
            .with_payload(Value::Object(payload)),
    )
    .await?;
    txn.commit().await?;
    Ok(Json(brand.into()))
}
