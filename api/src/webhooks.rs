//! Push ingest: `POST /v1/webhooks/ayrshare` takes the provider's webhook deliveries of the
//! `comments` and `messages` actions (Facebook and Instagram), for the default brand, and
//! `POST /v1/webhooks/ayrshare?brandId=<id>` for any other brand (each brand's profile has its
//! webhooks registered at its own URL).
//!
//! The route is public, and the signature decides: before anything else, the timestamp
//! (`X-Authorization-Timestamp`, Unix seconds or milliseconds) must be within
//! `WEBHOOK_TOLERANCE_SECONDS` of now, and `X-Authorization-Content-SHA256` must be the
//! HMAC-SHA256 of the body under the brand's secret ([`brand_secret`] of `WEBHOOK_SECRET` or,
//! while a rotation lasts, of `WEBHOOK_SECRET_PREVIOUS`; hex, or base64; an optional `sha256=`
//! prefix). Anything else is 401 `invalid_signature`, and nothing is read or stored: a
//! delivery signed for one brand does not verify at another's URL. A signed delivery for a
//! brand that does not exist is 404. The body is limited like every body (64 KB).
//!
//! A signed delivery is taken in one transaction, and never calls the provider:
//! 1. its id (`hookId`; without one, a hash of the body) goes into `webhook_deliveries` (per
//!    brand); an id already there is a delivery sent again (deliveries come at least once): 200
//!    `duplicate`, nothing else changes; a disabled brand's delivery is recorded `ignored`;
//! 2. a complete comment on a known post, or a complete received message, is stored as a
//!    mention exactly as a read would store it (`stored`, or `known` when a read was first);
//!    our own comments and messages change nothing (`ignored`); anything else becomes a
//!    targeted read through the outbox: the post's comments, the platform's history for a
//!    post not known yet (or not named), the platform's direct messages (`fetch`). So a
//!    delivery shaped otherwise than expected costs a read and loses nothing.
//!
//! Deliveries are counted in `webhook_deliveries_total{platform, outcome}` (signature failures
//! as `outcome="unauthorized"`, with platform `unknown`).

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{self, Params};
use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, TransactionTrait};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shared::adapters::comment::{self, PostRef};
use shared::adapters::message::{ReadMessages, map_messages};
use shared::audit::Actor;
use shared::brands::{self, DEFAULT_BRAND};
use shared::domain::{BrandId, Platform};
use shared::ingest::IngestStep;
use shared::ingest::{platform_status, statement, store};
use shared::outbox::{self, NewTask};
use shared::provider::{Delivery, MessageAction, Pushed};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Deliveries taken in, by `platform` and `outcome`.
pub const DELIVERIES_METRIC: &str = "webhook_deliveries_total";
/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-authorization-content-sha256";
/// The timestamp header.
pub const TIMESTAMP_HEADER: &str = "x-authorization-timestamp";

/// The secret `brand`'s deliveries are signed with, from `secret` (`WEBHOOK_SECRET`, or the
/// previous one): `secret` itself for the default brand (so an installation from before brands
/// keeps its registrations), else the hex HMAC-SHA256 of the brand's id under `secret`. A
/// delivery signed for one brand so never verifies for another.
pub fn brand_secret(secret: &str, brand: BrandId) -> String {
    if brand == DEFAULT_BRAND {
        return secret.to_owned();
    }
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(format!("brand:{brand}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// How deliveries are verified, and how many were refused.
#[derive(Debug)]
pub struct WebhookKeys {
    /// Current first; empty: every delivery is refused.
    secrets: Vec<SecretString>,
    tolerance: Duration,
    /// Deliveries this process refused for their signature or timestamp, since it started.
    pub(crate) refused: AtomicU64,
}

impl WebhookKeys {
    /// From the settings.
    pub fn from_settings(settings: &shared::config::WebhookSettings) -> WebhookKeys {
        WebhookKeys {
            secrets: [&settings.secret, &settings.previous_secret]
                .into_iter()
                .flatten()
                .cloned()
                .collect(),
            tolerance: settings.tolerance,
            refused: AtomicU64::new(0),
        }
    }

    /// Whether deliveries can get in at all (a secret is set).
    pub fn enabled(&self) -> bool {
        !self.secrets.is_empty()
    }

    /// Whether `headers` sign `body` with one of `brand`'s secrets at a time within the
    /// tolerance of `now` (Unix seconds).
    fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: i64,
        brand: BrandId,
    ) -> Result<(), &'static str> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let stamp: i64 = header(TIMESTAMP_HEADER)
            .and_then(|t| t.trim().parse().ok())
            .ok_or("no X-Authorization-Timestamp")?;
        // Milliseconds are 13 digits for centuries yet; seconds 10.
        let stamp = if stamp > 100_000_000_000 {
            stamp / 1000
        } else {
            stamp
        };
        let tolerance = i64::try_from(self.tolerance.as_secs()).unwrap_or(i64::MAX);
        if (now - stamp).abs() > tolerance {
            return Err("X-Authorization-Timestamp is outside the tolerance");
        }
        let signature = header(SIGNATURE_HEADER).ok_or("no X-Authorization-Content-SHA256")?;
        let signature = signature.trim();
        let signature = signature.strip_prefix("sha256=").unwrap_or(signature);
        let digest = hex::decode(signature)
            .ok()
            .or_else(|| {
                base64::engine::general_purpose::STANDARD
                    .decode(signature)
                    .ok()
            })
            .ok_or("X-Authorization-Content-SHA256 is neither hex nor base64")?;
        let signed = self.secrets.iter().any(|secret| {
            let secret = brand_secret(secret.expose_secret(), brand);
            let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
                .expect("HMAC takes keys of any length");
            mac.update(body);
            mac.verify_slice(&digest).is_ok()
        });
        match signed {
            true => Ok(()),
            false => Err("the signature does not match"),
        }
    }
}

/// The webhook route (public: the signature is the authentication).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(receive_webhook))
}

/// What became of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A new mention, from the payload.
    Stored,
    /// The mention was already stored.
    Known,
    /// A read of the post, the history or the direct messages was enqueued.
    Fetch,
    /// Nothing to do (our own comment or message).
    Ignored,
    /// The delivery was taken in before.
    Duplicate,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Stored => "stored",
            Outcome::Known => "known",
            Outcome::Fetch => "fetch",
            Outcome::Ignored => "ignored",
            Outcome::Duplicate => "duplicate",
        }
    }
}

/// The answer to a delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryOut {
    /// What became of it.
    pub outcome: Outcome,
}

/// Whose delivery it is.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReceiveQuery {
    /// The brand whose profile's webhook this is (default: the default brand).
    #[serde(rename = "brandId")]
    #[param(rename = "brandId", format = Uuid)]
    pub brand_id: Option<String>,
}

/// Takes in a signed webhook delivery of the provider (see the module documentation).
#[utoipa::path(post, path = "/v1/webhooks/ayrshare", tag = "webhooks",
    params(
        ReceiveQuery,
        ("X-Authorization-Timestamp" = String, Header, description = "Unix time of the delivery attempt, in seconds or milliseconds"),
        ("X-Authorization-Content-SHA256" = String, Header, description = "HMAC-SHA256 of the body under the signing secret, hex or base64"),
    ),
    request_body(content = Object, content_type = "application/json",
        description = "The provider's delivery: `{action: comments|messages, hookId, platform, …}`"),
    responses(
        (status = 200, description = "Taken in (also when it was taken in before)", body = DeliveryOut),
        (status = 400, description = "Signed, but not a delivery of `comments` or `messages` (`invalid_delivery`)", body = crate::error::Problem),
        (status = 401, description = "No valid signature, or a timestamp outside the tolerance (`invalid_signature`); nothing was stored", body = crate::error::Problem),
        (status = 404, description = "Signed for a brand that does not exist (`not_found`)", body = crate::error::Problem),
        (status = 413, description = "The body is over 64 KB (`payload_too_large`)", body = crate::error::Problem),
        (status = 422, description = "`brandId` is not a brand id (`validation_failed`)", body = crate::error::Problem),
        (status = 503, description = "The database is unavailable (`unavailable`)", body = crate::error::Problem,
            headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    ))]
async fn receive_webhook(
    State(state): State<AppState>,
    Params(query): Params<ReceiveQuery>,
    request: Request,
) -> Result<Json<DeliveryOut>, ApiError> {
    let brand = match query.brand_id.as_deref() {
        None => DEFAULT_BRAND,
        Some(text) => text
            .parse()
            .map_err(|_| ApiError::invalid("brandId", "brandId: not a brand id"))?,
    };
    let headers = request.headers().clone();
    let body = extract::body_bytes(request, &()).await?;
    if let Err(why) =
        state
            .webhook_keys
            .verify(&headers, &body, chrono::Utc::now().timestamp(), brand)
    {
        metrics::counter!(DELIVERIES_METRIC, "platform" => "unknown", "outcome" => "unauthorized")
            .increment(1);
        state.webhook_keys.refused.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(reason = why, "webhook delivery refused");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
            format!("not a signed delivery: {why}"),
        ));
    }
    let delivery = serde_json::from_slice(&body)
        .map_err(|e| e.to_string())
        .and_then(|value| shared::provider::delivery(&value))
        .map_err(|why| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_delivery",
                format!("not a webhook delivery: {why}"),
            )
        })?;
    // Without an id of its own, the same bytes are the same delivery.
    let id = delivery
        .id
        .clone()
        .unwrap_or_else(|| format!("body:{}", &hex::encode(Sha256::digest(&body))[..40]));
    let Some(brand) = brands::get(&state.db, brand).await? else {
        return Err(ApiError::not_found("no such brand"));
    };
    let outcome = take_in(&state.db, &brand, &id, &delivery).await?;
    metrics::counter!(DELIVERIES_METRIC, "platform" => delivery.platform.as_str(),
        "outcome" => outcome.as_str())
    .increment(1);
    Ok(Json(DeliveryOut { outcome }))
}

/// Steps 1 and 2 of the module documentation, in one transaction.
async fn take_in(
    db: &DatabaseConnection,
    brand: &brands::Brand,
    id: &str,
    delivery: &Delivery,
) -> Result<Outcome, DbErr> {
    let txn = db.begin().await?;
    let action = match delivery.item {
        Pushed::Comment { .. } => "comments",
        Pushed::Message { .. } => "messages",
    };
    let fresh = txn
        .execute_raw(statement(
            "INSERT INTO webhook_deliveries (id, brand_id, action, platform, outcome) \
             VALUES ($1, $2, $3, $4, 'received') ON CONFLICT (brand_id, id) DO NOTHING",
            vec![
                id.into(),
                brand.id.into(),
                action.into(),
                delivery.platform.into(),
            ],
        ))
        .await?
        .rows_affected()
        == 1;
    if !fresh {
        txn.commit().await?;
        return Ok(Outcome::Duplicate);
    }
    let brand_id = brand.id;
    let outcome = match &delivery.item {
        // A disabled brand keeps its history and takes nothing new.
        _ if brand.disabled_at.is_some() => Outcome::Ignored,
        Pushed::Comment {
            post_id,
            parent_ref,
            comment,
        } => {
            take_comment(
                &txn,
                brand_id,
                delivery.platform,
                post_id.as_deref(),
                parent_ref,
                comment.clone(),
            )
            .await?
        }
        Pushed::Message { message } => {
            take_message(&txn, brand_id, delivery.platform, message.clone()).await?
        }
    };
    txn.execute_raw(statement(
        "UPDATE webhook_deliveries SET outcome = $2 WHERE brand_id = $3 AND id = $1",
        vec![id.into(), outcome.as_str().into(), brand_id.into()],
    ))
    .await?;
    txn.commit().await?;
    Ok(outcome)
}

fn actor() -> Actor {
    Actor::system("webhook")
}

async fn take_comment(
    conn: &impl ConnectionTrait,
    brand: BrandId,
    platform: Platform,
    post_id: Option<&str>,
    parent_ref: &Option<String>,
    comment: Option<shared::provider::Comment>,
) -> Result<Outcome, DbErr> {
    let Some(post_id) = post_id else {
        return fetch(conn, brand, platform, &IngestStep::Platform).await;
    };
    let post = conn
        .query_one_raw(statement(
            "SELECT id, platform_post_id FROM posts \
             WHERE brand_id = $3 AND platform = $1 AND ayrshare_post_id = $2",
            vec![platform.into(), post_id.into(), brand.into()],
        ))
        .await?;
    let Some(post) = post else {
        // A post the history has not shown yet: reading it finds the post, then its comments.
        return fetch(conn, brand, platform, &IngestStep::Platform).await;
    };
    let post_row: uuid::Uuid = post.try_get("", "id")?;
    let read_post = IngestStep::Comments {
        post_id: post_row.into(),
    };
    let Some(comment) = comment else {
        return fetch(conn, brand, platform, &read_post).await;
    };
    if comment.author.id.is_some()
        && comment.author.id == platform_status::our_account(conn, brand, platform).await?
    {
        return Ok(Outcome::Ignored);
    }
    // A reply whose parent is not stored would lose its thread: the read stores both.
    if let Some(parent) = parent_ref
        && !mention_exists(conn, brand, platform, parent).await?
    {
        return fetch(conn, brand, platform, &read_post).await;
    }
    let post = PostRef {
        ayrshare_post_id: post_id.to_owned(),
        social_post_id: post.try_get("", "platform_post_id").ok(),
    };
    let mention = comment::pushed(&post, comment, parent_ref.clone());
    store_one(conn, brand, mention).await
}

async fn take_message(
    conn: &impl ConnectionTrait,
    brand: BrandId,
    platform: Platform,
    message: Option<shared::provider::Message>,
) -> Result<Outcome, DbErr> {
    let Some(message) = message.filter(|m| m.conversation_id.is_some()) else {
        return fetch(conn, brand, platform, &IngestStep::Messages).await;
    };
    if message.action != MessageAction::Received {
        return Ok(Outcome::Ignored);
    }
    let read = ReadMessages {
        messages: vec![message],
        next_update: None,
    };
    match map_messages(platform, read).mentions.pop() {
        Some(mention) => store_one(conn, brand, mention).await,
        None => Ok(Outcome::Ignored),
    }
}

async fn store_one(
    conn: &impl ConnectionTrait,
    brand: BrandId,
    mention: shared::adapters::NewMention,
) -> Result<Outcome, DbErr> {
    let inserted = store::insert_mentions(conn, brand, &[mention], &actor()).await?;
    Ok(match inserted.count() {
        0 => Outcome::Known,
        _ => Outcome::Stored,
    })
}

async fn mention_exists(
    conn: &impl ConnectionTrait,
    brand: BrandId,
    platform: Platform,
    platform_ref: &str,
) -> Result<bool, DbErr> {
    let row = conn
        .query_one_raw(statement(
            "SELECT 1 FROM mentions WHERE brand_id = $3 AND platform = $1 \
             AND type IN ('comment', 'reply') AND platform_ref = $2",
            vec![platform.into(), platform_ref.into(), brand.into()],
        ))
        .await?;
    Ok(row.is_some())
}

/// Enqueues `step` (a read already pending is not repeated: the dedup key).
async fn fetch(
    conn: &impl ConnectionTrait,
    brand: BrandId,
    platform: Platform,
    step: &IngestStep,
) -> Result<Outcome, DbErr> {
    outbox::enqueue(conn, NewTask::of(brand, platform, step))
        .await
        .map_err(|e| match e {
            outbox::OutboxError::Db(e) => e,
            other => DbErr::Custom(other.to_string()),
        })?;
    Ok(Outcome::Fetch)
}
