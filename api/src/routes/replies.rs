//! Replies: `POST /v1/mentions/{id}/reply` requests the reply to a mention (DESIGN §8.1), and
//! `GET /v1/replies/{id}` follows it. The replier sends it exactly once in the background.
//!
//! | request | answer |
//! |---|---|
//! | first request | 202 with the reply (`pending`) |
//! | same content as the mention's live or sent reply, no key | 200 with that reply |
//! | other content while a reply is live or sent | 409 `reply_exists`, naming it |
//! | after the reply `failed` | a new reply (202) |
//! | same `Idempotency-Key` and body | the first answer again (status and body) |
//! | same key, other body | 422 `idempotency_key_reused` |
//! | same key while the first request is being handled | 409 `request_in_flight` |
//! | another request holds the mention longer than a moment (a burst) | 409 `mention_busy`, `Retry-After` |
//! | `If-Match` names a version the mention has left (a stale view) | 412 `stale_view`, saying what changed |
//!
//! Answers are stored under their key for successful requests only: a refused request leaves
//! nothing, and repeating it is evaluated again.

use crate::AppState;
use crate::auth::Principal;
use crate::error::{ApiError, Problem};
use crate::extract::{Body, parse_id};
use crate::openapi;
use crate::routes::mentions::{ReplyOut, if_match, visible_mention};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, TransactionTrait};
use serde::Deserialize;
use shared::db::idempotency::{self, Claim, MAX_KEY_CHARS};
use shared::domain::{MentionId, ReplyId};
use shared::reply::{self, ReplyRequest, RequestError, Requested};
use std::time::Duration;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Longest reply, in characters (the longest any supported network accepts in a comment).
pub const MAX_CONTENT_CHARS: usize = 8000;

/// The header carrying the client's idempotency key.
const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// The reply routes (all need a token).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_reply))
        .routes(routes!(get_reply))
}

/// A reply to send.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateReplyIn {
    /// The text; surrounding white space is removed.
    #[schema(schema_with = content_schema)]
    pub content: String,
}

fn content_schema() -> utoipa::openapi::schema::Object {
    openapi::non_blank_text(
        MAX_CONTENT_CHARS,
        "The text; surrounding white space is removed",
    )
}

fn validate_content(content: &str) -> Result<&str, ApiError> {
    // Counted as given, like the document's `maxLength`.
    if content.chars().count() > MAX_CONTENT_CHARS {
        return Err(ApiError::invalid(
            "content",
            format!("content: at most {MAX_CONTENT_CHARS} characters"),
        ));
    }
    let content = content.trim();
    if content.is_empty() {
        return Err(ApiError::invalid("content", "content: must not be blank"));
    }
    Ok(content)
}

/// The `Idempotency-Key` header, if sent: 1 to 255 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let invalid = || {
        ApiError::invalid(
            IDEMPOTENCY_KEY,
            format!("{IDEMPOTENCY_KEY}: 1 to {MAX_KEY_CHARS} visible ASCII characters"),
        )
    };
    let key = value.to_str().map_err(|_| invalid())?.trim();
    let valid = !key.is_empty()
        && key.len() <= MAX_KEY_CHARS
        && key.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    if valid {
        Ok(Some(key.to_owned()))
    } else {
        Err(invalid())
    }
}

/// What makes two requests under one key the same request: the mention and the content.
fn request_hash(mention_id: MentionId, content: &str) -> String {
    reply::content_hash(&format!("{mention_id}\n{content}"))
}

/// `Retry-After` of a 409 `mention_busy`.
const BUSY_RETRY_AFTER: Duration = Duration::from_secs(1);

fn request_error(err: RequestError) -> ApiError {
    match err {
        RequestError::MentionNotFound => ApiError::not_found("no mention with this id"),
        RequestError::Conflict { existing } => ApiError::conflict(
            "reply_exists",
            format!(
                "the mention already has reply {} ({}) with other content; a new reply can be \
                 requested only after that one failed",
                existing.id, existing.status
            ),
        )
        .with_details(serde_json::json!({
            "replyId": existing.id,
            "status": existing.status,
        })),
        RequestError::Busy => ApiError::conflict(
            "mention_busy",
            "another request is changing this mention right now; nothing was done, try again",
        )
        .with_retry_after(BUSY_RETRY_AFTER),
        // `create_reply` says what changed; this is the bare answer.
        RequestError::Stale { current_version } => ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "stale_view",
            format!("the mention changed since you opened it: it is at version {current_version}"),
        ),
        RequestError::Illegal(e) => e.into(),
        RequestError::Db(e) => e.into(),
        RequestError::Outbox(e) => ApiError::internal(&e),
    }
}

/// The 412 for a reply requested from a stale view (Freshdesk's "Traffic Cop"): what changed
/// since version `seen`, from the mention's audit rows that recorded a newer version.
async fn stale_view(
    db: &impl ConnectionTrait,
    mention_id: MentionId,
    seen: i32,
    current_version: i32,
) -> Result<ApiError, DbErr> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT a.action, a.occurred_at, a.payload->>'disposition' AS disposition, \
                    coalesce(actor.name, a.actor) AS actor_name, target.name AS target_name \
             FROM audit_log a \
             LEFT JOIN users actor ON a.actor = 'user:' || actor.id::text \
             LEFT JOIN users target ON target.id::text = a.payload->>'userId' \
             WHERE a.entity_type = 'mention' AND a.entity_id = $1 \
               AND CASE WHEN jsonb_typeof(a.payload->'version') = 'number' \
                        THEN (a.payload->>'version')::numeric > $2 ELSE false END \
             ORDER BY a.id LIMIT 20",
            [mention_id.to_string().into(), seen.into()],
        ))
        .await?;
    let mut changes = Vec::new();
    let mut summaries = Vec::new();
    for row in rows {
        let action: String = row.try_get("", "action")?;
        let actor: String = row.try_get("", "actor_name")?;
        let target: Option<String> = row.try_get("", "target_name")?;
        let disposition: Option<String> = row.try_get("", "disposition")?;
        let at: chrono::DateTime<chrono::FixedOffset> = row.try_get("", "occurred_at")?;
        let summary = match action.as_str() {
            "reply.requested" => format!("{actor} replied"),
            "mention.assigned" => match target {
                Some(target) => format!("{actor} assigned it to {target}"),
                None => format!("{actor} assigned it"),
            },
            "mention.unassigned" => format!("{actor} unassigned it"),
            "mention.disposition_set" => format!(
                "{actor} set the disposition to {}",
                disposition.unwrap_or_default()
            ),
            "mention.disposition_cleared" => format!("{actor} cleared the disposition"),
            other => format!("{actor}: {other}"),
        };
        changes.push(serde_json::json!({
            "action": action, "actorName": actor, "at": at, "summary": summary,
        }));
        summaries.push(summary);
    }
    let what = if summaries.is_empty() {
        format!("it is at version {current_version}, not {seen}")
    } else {
        summaries.join("; ")
    };
    Ok(ApiError::new(
        StatusCode::PRECONDITION_FAILED,
        "stale_view",
        format!(
            "the mention changed since you opened it: {what}. Nothing was sent; look at it \
             again before replying"
        ),
    )
    .with_details(serde_json::json!({
        "currentVersion": current_version,
        "changes": changes,
    })))
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    (status, Json(body)).into_response()
}

/// Requests the reply to a mention. The replier sends it exactly once; follow it with
/// `GET /v1/replies/{id}`. See the module documentation for repeated requests.
#[utoipa::path(post, path = "/v1/mentions/{id}/reply", tag = "mentions",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Mention id"),
        ("Idempotency-Key" = Option<String>, Header, nullable = false, pattern = "^[!-~](?:[ -~]{0,253}[!-~])?$",
            description = "1 to 255 visible ASCII characters or spaces; repeating the request with it replays the first answer"),
        ("If-Match" = Option<String>, Header, nullable = false, pattern = r#"^(?:\*|(?:W/)?"[0-9]{1,9}"|[0-9]{1,9})$"#,
            description = "The mention's version the reply was written against; if the mention changed since, nothing is sent"),
    ),
    request_body = CreateReplyIn,
    responses(
        (status = 202, description = "The reply was accepted and will be sent", body = ReplyOut),
        (status = 200, description = "The mention's reply with this content already exists", body = ReplyOut),
        (status = 404, description = "No such mention", body = Problem),
        (status = 409, description = "Another reply is live or sent (`reply_exists`), the state does not allow a reply (`illegal_transition`), a request with this key is in flight (`request_in_flight`), or another request holds the mention (`mention_busy`, with `Retry-After`)", body = Problem),
        (status = 412, description = "The mention changed since the version in `If-Match` (`stale_view`); the detail says what changed, `details.changes` lists it", body = Problem),
        (status = 422, description = "Invalid content, id or key, or the key was used for another request (`idempotency_key_reused`)", body = Problem),
    ))]
#[tracing::instrument(skip_all, fields(mention_id = %id))]
async fn create_reply(
    State(state): State<AppState>,
    me: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(input): Body<CreateReplyIn>,
) -> Result<Response, ApiError> {
    let mention_id: MentionId = parse_id("id", &id)?;
    let content = validate_content(&input.content)?;
    visible_mention(&state.db, &me, mention_id).await?;
    let key = idempotency_key(&headers)?;
    let seen_version = if_match(&headers)?;
    let hash = request_hash(mention_id, content);
    let txn = state.db.begin().await?;
    if let Some(key) = &key {
        match idempotency::claim(&txn, me.user_id, key, &hash).await? {
            Claim::Fresh => {}
            Claim::Replay { status, body } => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
                return Ok(json_response(status, body));
            }
            Claim::Mismatch => {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency_key_reused",
                    "this Idempotency-Key was used for a different request",
                )
                .with_field(IDEMPOTENCY_KEY));
            }
            Claim::InFlight => {
                return Err(ApiError::conflict(
                    "request_in_flight",
                    "a request with this Idempotency-Key is still being handled; retry later",
                ));
            }
        }
    }
    let requested = reply::request_reply(
        &txn,
        ReplyRequest {
            mention_id,
            content,
            requested_by: me.user_id,
            idempotency_key: key.as_deref(),
            trace_id: None,
            seen_version,
        },
    )
    .await;
    let requested = match requested {
        Err(RequestError::Stale { current_version }) => {
            drop(txn);
            let seen = seen_version.unwrap_or_default();
            return Err(stale_view(&state.db, mention_id, seen, current_version).await?);
        }
        other => other.map_err(request_error)?,
    };
    let status = match requested {
        Requested::Created { .. } => StatusCode::ACCEPTED,
        Requested::Existing(_) => StatusCode::OK,
    };
    let body = serde_json::to_value(ReplyOut::from(requested.reply().clone()))
        .map_err(|e| ApiError::internal(&e))?;
    if let Some(key) = &key {
        idempotency::save(&txn, me.user_id, key, &hash, status.as_u16(), &body).await?;
    }
    requested.audit(&txn, me.actor()).await?;
    txn.commit().await?;
    Ok(json_response(status, body))
}

/// One reply: its status in the exactly-once protocol, attempts, and the provider's answer.
#[utoipa::path(get, path = "/v1/replies/{id}", tag = "mentions", security(("bearer" = [])),
    params(("id" = String, Path, description = "Reply id")),
    responses(
        (status = 200, description = "The reply", body = ReplyOut),
        (status = 404, description = "No such reply", body = Problem),
        (status = 422, description = "Malformed id", body = Problem),
    ))]
async fn get_reply(
    State(state): State<AppState>,
    me: Principal,
    Path(id): Path<String>,
) -> Result<Json<ReplyOut>, ApiError> {
    let id: ReplyId = parse_id("id", &id)?;
    let reply = reply::request::find(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("no reply with this id"))?;
    visible_mention(&state.db, &me, reply.mention_id)
        .await
        .map_err(|_| ApiError::not_found("no reply with this id"))?;
    Ok(Json(ReplyOut::from(reply)))
}
