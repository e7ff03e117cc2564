//! The inbox: `GET /v1/mentions` (filters, keyset pagination), `GET /v1/mentions/{id}` with its
//! replies, and `PUT`/`PATCH /v1/mentions/{id}` to assign, unassign and set the disposition.
//!
//! Field names are the seed's (`socialMediaPlatformRef`, `socialMediaAPIPostRef`, `userId` for
//! the assignee, `mentionId` for the parent, `data.socialMediaPayload` for the raw payload),
//! plus ours (`author`, `postedAt`, `version`, `reply`).

use crate::AppState;
use crate::auth::Principal;
use crate::cursor;
use crate::error::{ApiError, Problem, is_foreign_key_violation};
use crate::extract::{
    Body, Params, parse_id, parse_list, parse_optional_list, parse_time, present,
};
use crate::openapi::{
    self, DispositionValues, MentionStateValues, MentionTypeValues, PlatformValues,
    ReplyStatusValues,
};
use crate::page::{LIST_LIMITS, Page, PageRequest};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, FixedOffset};
use sea_orm::{ConnectionTrait, TransactionTrait};
use serde::{Deserialize, Serialize};
use shared::audit::{self, Entry, entity};
use shared::db::entities::{mentions, replies};
use shared::db::mentions::{self as queries, ListedMention, MentionCursor, MentionFilter, Triage};
use shared::domain::{
    BrandId, Disposition, MentionEvent, MentionId, MentionState, MentionType, Platform, ReplyId,
    ReplyStatus, UserId, next_state,
};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Longest full-text query.
const MAX_QUERY_CHARS: usize = 500;

/// The inbox routes (all need a token).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_mentions))
        .routes(routes!(get_mention, update_mention, patch_mention))
}

/// Who wrote a mention.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthorOut {
    /// The author's id on the platform.
    pub id: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Handle.
    pub handle: Option<String>,
}

/// The seed's `data` object.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MentionData {
    /// The provider's payload as received.
    #[schema(value_type = Object)]
    pub social_media_payload: serde_json::Value,
}

/// The latest reply of a mention, in brief.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplySummaryOut {
    /// The reply's id.
    #[schema(value_type = String, format = Uuid)]
    pub id: ReplyId,
    /// Where it is in the exactly-once protocol.
    #[schema(value_type = ReplyStatusValues)]
    pub status: ReplyStatus,
    /// When the provider accepted it.
    pub sent_at: Option<DateTime<FixedOffset>>,
    /// Its last change.
    pub updated_at: DateTime<FixedOffset>,
}

/// A mention.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MentionOut {
    /// Id (a UUID string).
    #[schema(value_type = String, format = Uuid)]
    pub id: MentionId,
    /// The brand whose inbox it is in.
    #[schema(value_type = String, format = Uuid)]
    pub brand_id: BrandId,
    /// What it is.
    #[serde(rename = "type")]
    #[schema(value_type = MentionTypeValues)]
    pub mention_type: MentionType,
    /// Where it was posted.
    #[schema(value_type = PlatformValues)]
    pub platform: Platform,
    /// The text.
    pub content: String,
    /// The social network's id of the comment or message.
    #[serde(rename = "socialMediaPlatformRef")]
    pub social_media_platform_ref: String,
    /// Ayrshare's post id (comments) or conversation id (messages).
    #[serde(rename = "socialMediaAPIPostRef")]
    pub social_media_api_post_ref: Option<String>,
    /// Where it is in triage; `null` while new.
    #[schema(value_type = Option<MentionStateValues>)]
    pub state: Option<MentionState>,
    /// What to do with it; `null` while undecided.
    #[schema(value_type = Option<DispositionValues>)]
    pub disposition: Option<Disposition>,
    /// The assigned user.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub user_id: Option<UserId>,
    /// The parent mention (threads, our own replies).
    #[schema(value_type = Option<String>, format = Uuid)]
    pub mention_id: Option<MentionId>,
    /// The raw payload, as the seed exposed it.
    pub data: MentionData,
    /// When it was stored.
    pub created_at: DateTime<FixedOffset>,
    /// Last change.
    pub updated_at: DateTime<FixedOffset>,
    /// Who wrote it.
    pub author: AuthorOut,
    /// When the author posted it.
    pub posted_at: Option<DateTime<FixedOffset>>,
    /// Changes with every update; send it as `If-Match` to update safely.
    pub version: i32,
    /// The latest reply, if one was requested.
    pub reply: Option<ReplySummaryOut>,
}

impl MentionOut {
    fn new(mention: mentions::Model, reply: Option<ReplySummaryOut>) -> Self {
        MentionOut {
            id: mention.id,
            brand_id: mention.brand_id,
            mention_type: mention.mention_type,
            platform: mention.platform,
            content: mention.content,
            social_media_platform_ref: mention.platform_ref,
            social_media_api_post_ref: mention.provider_post_ref,
            state: mention.state,
            disposition: mention.disposition,
            user_id: mention.assignee_id,
            mention_id: mention.parent_id,
            data: MentionData {
                social_media_payload: mention.raw,
            },
            created_at: mention.created_at,
            updated_at: mention.updated_at,
            author: AuthorOut {
                id: mention.author_id,
                name: mention.author_name,
                handle: mention.author_handle,
            },
            posted_at: mention.posted_at,
            version: mention.version,
            reply,
        }
    }

    fn with_replies(mention: mentions::Model, replies: &[replies::Model]) -> Self {
        let latest = replies.last().map(|r| ReplySummaryOut {
            id: r.id,
            status: r.status,
            sent_at: r.sent_at,
            updated_at: r.updated_at,
        });
        MentionOut::new(mention, latest)
    }
}

impl From<ListedMention> for MentionOut {
    fn from(listed: ListedMention) -> Self {
        let reply = listed.latest_reply.map(|r| ReplySummaryOut {
            id: r.id,
            status: r.status,
            sent_at: r.sent_at,
            updated_at: r.updated_at,
        });
        MentionOut::new(listed.mention, reply)
    }
}

/// A reply (with its mention, and from `/v1/replies`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplyOut {
    /// Id.
    #[schema(value_type = String, format = Uuid)]
    pub id: ReplyId,
    /// The mention it answers.
    #[schema(value_type = String, format = Uuid)]
    pub mention_id: MentionId,
    /// The text.
    pub content: String,
    /// Where it is in the exactly-once protocol.
    #[schema(value_type = ReplyStatusValues)]
    pub status: ReplyStatus,
    /// Who asked for it.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub requested_by: Option<UserId>,
    /// Send attempts so far.
    pub attempts: i32,
    /// The last failure, for people.
    pub last_error: Option<String>,
    /// Our reply's comment id at the provider.
    pub provider_comment_id: Option<String>,
    /// When the provider accepted it.
    pub sent_at: Option<DateTime<FixedOffset>>,
    /// When it was requested.
    pub created_at: DateTime<FixedOffset>,
    /// Last change.
    pub updated_at: DateTime<FixedOffset>,
}

impl From<replies::Model> for ReplyOut {
    fn from(r: replies::Model) -> Self {
        ReplyOut {
            id: r.id,
            mention_id: r.mention_id,
            content: r.content,
            status: r.status,
            requested_by: r.requested_by,
            attempts: r.attempts,
            last_error: r.last_error,
            provider_comment_id: r.provider_comment_id,
            sent_at: r.sent_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A mention with every reply requested for it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MentionDetailOut {
    /// The mention.
    #[serde(flatten)]
    pub mention: MentionOut,
    /// Its replies, oldest first.
    pub replies: Vec<ReplyOut>,
    /// What came before it in its thread, oldest first (at most 50): the parents of a reply
    /// to a comment, or the earlier messages of a direct-message conversation.
    pub thread: Vec<MentionOut>,
}

/// Filters and pagination of the inbox. Multi-valued filters are comma lists.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ListMentionsQuery {
    /// Brand ids (an agent sees only the brands they work for).
    #[param(schema_with = openapi::uuid_list)]
    pub brand_id: Option<String>,
    /// Platforms, e.g. `twitter,facebook`.
    #[param(schema_with = PlatformValues::list)]
    pub platform: Option<String>,
    /// Types, e.g. `comment,message`.
    #[serde(rename = "type")]
    #[param(rename = "type", schema_with = MentionTypeValues::list)]
    pub mention_type: Option<String>,
    /// States, `new` for mentions without one.
    #[param(schema_with = MentionStateValues::filter)]
    pub state: Option<String>,
    /// Dispositions, `none` for mentions without one.
    #[param(schema_with = DispositionValues::filter)]
    pub disposition: Option<String>,
    /// Assigned to one of these user ids.
    #[param(schema_with = openapi::uuid_list)]
    pub user_id: Option<String>,
    /// `true`: assigned to nobody (combined with `userId` as "or").
    #[param(value_type = Option<bool>)]
    pub unassigned: Option<String>,
    /// Full-text search over content and author (web search syntax: words, "phrases", -not).
    #[param(max_length = 500)]
    pub q: Option<String>,
    /// Stored at or after this time.
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// Stored before this time.
    #[param(format = DateTime)]
    pub until: Option<String>,
    /// Page size (default 50).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 500)]
    pub limit: Option<String>,
    /// `meta.nextCursor` of the previous page.
    #[param(pattern = "^[0-9]{1,16}\\.[0-9a-f]{32}$")]
    pub cursor: Option<String>,
}

impl ListMentionsQuery {
    fn filter(&self) -> Result<MentionFilter, ApiError> {
        let unassigned = match self.unassigned.as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(ApiError::invalid(
                    "unassigned",
                    format!("unassigned: {other:?} is not one of: true, false"),
                ));
            }
        };
        // Counted as given, like the document's `maxLength`.
        if self
            .q
            .as_ref()
            .is_some_and(|q| q.chars().count() > MAX_QUERY_CHARS)
        {
            return Err(ApiError::invalid(
                "q",
                format!("q: at most {MAX_QUERY_CHARS} characters"),
            ));
        }
        let text = self
            .q
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(str::to_owned);
        let assignees = parse_list::<String>("userId", self.user_id.as_deref())?
            .iter()
            .map(|id| parse_id::<UserId>("userId", id))
            .collect::<Result<_, _>>()?;
        let brands = parse_list::<String>("brandId", self.brand_id.as_deref())?
            .iter()
            .map(|id| parse_id::<BrandId>("brandId", id))
            .collect::<Result<_, _>>()?;
        Ok(MentionFilter {
            brands,
            visible: None,
            platforms: parse_list("platform", self.platform.as_deref())?,
            types: parse_list("type", self.mention_type.as_deref())?,
            states: parse_optional_list("state", self.state.as_deref(), "new")?,
            dispositions: parse_optional_list("disposition", self.disposition.as_deref(), "none")?,
            assignees,
            unassigned,
            text,
            since: parse_time("since", self.since.as_deref())?,
            until: parse_time("until", self.until.as_deref())?,
        })
    }
}

/// A page of [`MentionOut`] (a named alias: the document names its schema `MentionPage`).
pub type MentionPage = Page<MentionOut>;

/// The inbox, newest first, filtered, one page at a time.
#[utoipa::path(get, path = "/v1/mentions", tag = "mentions", params(ListMentionsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of mentions", body = MentionPage),
        (status = 401, description = "No valid token", body = Problem),
        (status = 422, description = "A parameter is invalid (named in `field`)", body = Problem),
    ))]
async fn list_mentions(
    State(state): State<AppState>,
    me: Principal,
    Params(query): Params<ListMentionsQuery>,
) -> Result<Json<MentionPage>, ApiError> {
    let filter = MentionFilter {
        visible: me.brands.clone(),
        ..query.filter()?
    };
    let page = PageRequest::first(query.limit.as_deref(), LIST_LIMITS)?
        .after(query.cursor.as_deref(), |text| {
            cursor::decode(text).map(|(created_at, id)| MentionCursor { created_at, id })
        })?;
    let rows = queries::list(&state.db, &filter, page.after, page.fetch()).await?;
    let mut page = page.cut(
        rows,
        |last| cursor::encode(last.mention.created_at, last.mention.id.0),
        MentionOut::from,
    );
    page.meta.is_syncing = Some(false);
    Ok(Json(page))
}

/// Mention `id`, if `me` sees its brand; 404 otherwise, as if it did not exist.
pub(crate) async fn visible_mention(
    conn: &impl ConnectionTrait,
    me: &Principal,
    id: MentionId,
) -> Result<mentions::Model, ApiError> {
    let mention = queries::find(conn, id)
        .await?
        .ok_or_else(|| ApiError::not_found("no mention with this id"))?;
    me.check_sees(mention.brand_id, "mention")?;
    Ok(mention)
}

fn with_etag(version: i32, body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("\"{version}\"")) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// One mention with its replies. The `ETag` is its version.
#[utoipa::path(get, path = "/v1/mentions/{id}", tag = "mentions", security(("bearer" = [])),
    params(("id" = String, Path, description = "Mention id")),
    responses(
        (status = 200, description = "The mention", body = MentionDetailOut),
        (status = 404, description = "No such mention", body = Problem),
        (status = 422, description = "Malformed id", body = Problem),
    ))]
async fn get_mention(
    State(state): State<AppState>,
    me: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id: MentionId = parse_id("id", &id)?;
    let mention = visible_mention(&state.db, &me, id).await?;
    let replies = queries::replies(&state.db, id).await?;
    let thread = queries::thread(&state.db, &mention).await?;
    let version = mention.version;
    let body = MentionDetailOut {
        mention: MentionOut::with_replies(mention, &replies),
        replies: replies.into_iter().map(ReplyOut::from).collect(),
        thread: thread
            .into_iter()
            .map(|m| MentionOut::new(m, None))
            .collect(),
    };
    Ok(with_etag(version, Json(body)))
}

/// A triage change; absent fields stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateMentionIn {
    /// Assign to this user; `null` unassigns.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub user_id: Option<Option<UserId>>,
    /// The disposition; `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<DispositionValues>)]
    pub disposition: Option<Option<Disposition>>,
}

/// The version in `If-Match`, `None` for `*` or no header. The documented form: `*`, or a
/// version of up to nine digits as the ETag gives it (`"3"`), weak (`W/"3"`) or bare (`3`).
pub(crate) fn if_match(headers: &HeaderMap) -> Result<Option<i32>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default();
    if text == "*" {
        return Ok(None);
    }
    let tag = text.strip_prefix("W/").unwrap_or(text);
    let digits = match tag.strip_prefix('"') {
        Some(quoted) => quoted.strip_suffix('"'),
        None if tag.len() == text.len() => Some(tag),
        None => None,
    };
    digits
        .filter(|d| (1..=9).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse().ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::invalid(
                "If-Match",
                "If-Match: the mention's version, as given in its ETag or `version`",
            )
        })
}

/// Assigns, unassigns, or sets or clears the disposition (`If-Match: <version>` makes the
/// change conditional). Each change is audited with the acting user.
#[utoipa::path(put, path = "/v1/mentions/{id}", tag = "mentions", security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Mention id"),
        ("If-Match" = Option<String>, Header, nullable = false, pattern = r#"^(?:\*|(?:W/)?"[0-9]{1,9}"|[0-9]{1,9})$"#, description = "The version the change is based on"),
    ),
    request_body = UpdateMentionIn,
    responses(
        (status = 200, description = "The mention after the change", body = MentionOut),
        (status = 404, description = "No such mention", body = Problem),
        (status = 409, description = "The state does not allow it (`illegal_transition`)", body = Problem),
        (status = 412, description = "`If-Match` is stale (`version_mismatch`)", body = Problem),
        (status = 422, description = "Invalid field, id or unknown user", body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn update_mention(
    State(state): State<AppState>,
    me: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(input): Body<UpdateMentionIn>,
) -> Result<Response, ApiError> {
    let id: MentionId = parse_id("id", &id)?;
    let expected = if_match(&headers)?;
    let mention = apply_update(&state, &me, id, expected, input).await?;
    let version = mention.version;
    Ok(with_etag(version, Json(mention)))
}

/// Same as `PUT /v1/mentions/{id}`.
#[utoipa::path(patch, path = "/v1/mentions/{id}", tag = "mentions", security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Mention id"),
        ("If-Match" = Option<String>, Header, nullable = false, pattern = r#"^(?:\*|(?:W/)?"[0-9]{1,9}"|[0-9]{1,9})$"#, description = "The version the change is based on"),
    ),
    request_body = UpdateMentionIn,
    responses(
        (status = 200, description = "The mention after the change", body = MentionOut),
        (status = 409, description = "The state does not allow it", body = Problem),
        (status = 412, description = "`If-Match` is stale", body = Problem),
    ))]
async fn patch_mention(
    state: State<AppState>,
    me: Principal,
    id: Path<String>,
    headers: HeaderMap,
    body: Body<UpdateMentionIn>,
) -> Result<Response, ApiError> {
    update_mention(state, me, id, headers, body).await
}

async fn apply_update(
    state: &AppState,
    me: &Principal,
    id: MentionId,
    expected: Option<i32>,
    input: UpdateMentionIn,
) -> Result<MentionOut, ApiError> {
    let txn = state.db.begin().await?;
    let current = queries::find_for_update(&txn, id)
        .await?
        .ok_or_else(|| ApiError::not_found("no mention with this id"))?;
    me.check_sees(current.brand_id, "mention")?;
    if let Some(expected) = expected
        && expected != current.version
    {
        return Err(ApiError::new(
            axum::http::StatusCode::PRECONDITION_FAILED,
            "version_mismatch",
            format!(
                "the mention changed: it is at version {}, not {expected}",
                current.version
            ),
        )
        .with_details(serde_json::json!({ "currentVersion": current.version })));
    }
    let before = Triage {
        assignee_id: current.assignee_id,
        state: current.state,
        disposition: current.disposition,
    };
    let mut triage = before;
    if let Some(assignee) = input.user_id {
        let event = match assignee {
            Some(_) => MentionEvent::Assign,
            None => MentionEvent::Unassign,
        };
        triage.state = next_state(current.state, event)?;
        triage.assignee_id = assignee;
    }
    if let Some(disposition) = input.disposition {
        triage.disposition = disposition;
    }
    if triage == before {
        let replies = queries::replies(&txn, id).await?;
        txn.commit().await?;
        return Ok(MentionOut::with_replies(current, &replies));
    }
    let updated = queries::update_triage(&txn, current, triage)
        .await
        .map_err(|e| {
            if is_foreign_key_violation(&e, "mentions_assignee_id_fkey") {
                ApiError::invalid("userId", "userId: no user has this id")
            } else if shared::db::violated_constraint(&e).as_deref()
                == Some("mentions_assignee_of_brand")
            {
                ApiError::invalid(
                    "userId",
                    "userId: this user does not work for the mention's brand",
                )
            } else {
                e.into()
            }
        })?;
    let replies = queries::replies(&txn, id).await?;
    // Audit rows last: the chain head stays locked until commit.
    if triage.assignee_id != before.assignee_id || triage.state != before.state {
        let action = if triage.assignee_id.is_some() {
            "mention.assigned"
        } else {
            "mention.unassigned"
        };
        let payload = serde_json::json!({
            "userId": triage.assignee_id,
            "previousUserId": before.assignee_id,
            "fromState": before.state,
            "toState": triage.state,
            "version": updated.version,
        });
        audit_change(&txn, me, id, action, payload).await?;
    }
    if triage.disposition != before.disposition {
        let action = if triage.disposition.is_some() {
            "mention.disposition_set"
        } else {
            "mention.disposition_cleared"
        };
        let payload = serde_json::json!({
            "disposition": triage.disposition,
            "previousDisposition": before.disposition,
            "version": updated.version,
        });
        audit_change(&txn, me, id, action, payload).await?;
    }
    txn.commit().await?;
    Ok(MentionOut::with_replies(updated, &replies))
}

/// Appends the audit row of one triage change of mention `id` by `me`.
async fn audit_change(
    conn: &impl ConnectionTrait,
    me: &Principal,
    id: MentionId,
    action: &str,
    payload: serde_json::Value,
) -> Result<(), ApiError> {
    let entry = Entry::new(me.actor(), action, entity::MENTION, id).with_payload(payload);
    audit::append(conn, entry).await?;
    Ok(())
}
