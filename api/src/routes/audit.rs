//! The audit trail: `GET /v1/audit` (filters), `GET /v1/mentions/{id}/audit` and, for admins,
//! `GET /v1/audit/head` (the chain head, to anchor it outside the database) and
//! `GET /v1/audit/verify`, which walks the hash chain, through an anchor when given one.

use crate::AppState;
use crate::auth::{Admin, Principal};
use crate::error::{ApiError, Problem};
use crate::extract::{Params, parse_id, parse_time};
use crate::page::{AUDIT_LIMITS, Page, PageRequest};
use crate::routes::mentions::visible_mention;
use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};
use shared::audit::{Anchor, entity};
use shared::db::audit_log::{self as queries, AuditFilter};
use shared::db::entities::audit_log;
use shared::domain::MentionId;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The audit routes (all need a token).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_audit))
        .routes(routes!(get_audit_head))
        .routes(routes!(verify_audit))
        .routes(routes!(list_mention_audit))
}

/// One audit row.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditOut {
    /// Position in the chain.
    pub id: i64,
    /// When it happened.
    pub occurred_at: DateTime<FixedOffset>,
    /// `user:<id>` or `system:<process>`.
    pub actor: String,
    /// What happened, e.g. `mention.assigned`.
    pub action: String,
    /// Kind of entity, e.g. `mention`.
    pub entity_type: String,
    /// Its id.
    pub entity_id: String,
    /// Details (secrets removed, at most 2 KB).
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// The previous row's hash.
    pub prev_hash: String,
    /// This row's hash.
    pub hash: String,
}

impl From<audit_log::Model> for AuditOut {
    fn from(row: audit_log::Model) -> Self {
        AuditOut {
            id: row.id,
            occurred_at: row.occurred_at,
            actor: row.actor,
            action: row.action,
            entity_type: row.entity_type,
            entity_id: row.entity_id,
            payload: row.payload,
            prev_hash: row.prev_hash,
            hash: row.hash,
        }
    }
}

/// Filters of the audit trail.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ListAuditQuery {
    /// Kind of entity, e.g. `mention`, `user`, `task`.
    pub entity: Option<String>,
    /// Id of the entity.
    pub entity_id: Option<String>,
    /// Who, e.g. `user:<id>` or `system:ingestor`.
    pub actor: Option<String>,
    /// What, e.g. `mention.assigned`.
    pub action: Option<String>,
    /// At or after this time.
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// Page size (default 100).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
    /// `meta.nextCursor` of the previous page.
    #[param(pattern = "^[0-9]{1,18}$")]
    pub cursor: Option<String>,
}

/// Paging of the audit routes.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size (default 100).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
    /// `meta.nextCursor` of the previous page.
    #[param(pattern = "^[0-9]{1,18}$")]
    pub cursor: Option<String>,
}

/// The position in an audit cursor (1 to 18 digits, as documented): the id of the previous
/// page's last row.
fn decode_cursor(text: &str) -> Result<i64, ApiError> {
    Some(text)
        .filter(|t| (1..=18).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| ApiError::invalid("cursor", "cursor: not a cursor given by this API"))
}

async fn page(
    state: &AppState,
    filter: &AuditFilter,
    limit: Option<String>,
    cursor: Option<String>,
) -> Result<Json<AuditPage>, ApiError> {
    let page = PageRequest::first(limit.as_deref(), AUDIT_LIMITS)?
        .after(cursor.as_deref(), decode_cursor)?;
    let rows = queries::list(&state.db, filter, page.after, page.fetch()).await?;
    Ok(Json(page.cut(rows, |r| r.id.to_string(), AuditOut::from)))
}

/// A page of [`AuditOut`] (a named alias: the document names its schema `AuditPage`).
pub type AuditPage = Page<AuditOut>;

/// The audit trail, newest first.
#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(ListAuditQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of audit rows", body = AuditPage),
        (status = 422, description = "A parameter is invalid", body = Problem),
    ))]
async fn list_audit(
    State(state): State<AppState>,
    me: Principal,
    Params(query): Params<ListAuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let filter = AuditFilter {
        entity_type: query.entity,
        entity_id: query.entity_id,
        actor: query.actor,
        action: query.action,
        since: parse_time("since", query.since.as_deref())?,
        // An agent reads what happened to the mentions of their brands.
        brands: me.brands.clone(),
    };
    page(&state, &filter, query.limit, query.cursor).await
}

/// The audit trail of one mention, newest first.
#[utoipa::path(get, path = "/v1/mentions/{id}/audit", tag = "audit", params(
        ("id" = String, Path, description = "Mention id"), PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of audit rows", body = AuditPage),
        (status = 404, description = "No such mention", body = Problem),
        (status = 422, description = "Malformed id", body = Problem),
    ))]
async fn list_mention_audit(
    State(state): State<AppState>,
    me: Principal,
    Path(id): Path<String>,
    Params(query): Params<PageQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let id: MentionId = parse_id("id", &id)?;
    visible_mention(&state.db, &me, id).await?;
    let filter = AuditFilter {
        entity_type: Some(entity::MENTION.to_owned()),
        entity_id: Some(id.to_string()),
        ..AuditFilter::default()
    };
    page(&state, &filter, query.limit, query.cursor).await
}

/// Where the chain is broken.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChainBreakOut {
    /// The first broken row.
    pub id: i64,
    /// What is wrong with it.
    pub reason: String,
}

/// The outcome of a chain check.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifyOut {
    /// Whether the chain is intact.
    pub valid: bool,
    /// Rows checked.
    pub rows_checked: u64,
    /// The chain head when the check began.
    pub head_id: i64,
    /// The first broken row, if any.
    pub first_broken: Option<ChainBreakOut>,
}

/// A chain position and its hash.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditHeadOut {
    /// The last row's position (0 while the log is empty).
    pub seq: i64,
    /// Its hash (64 zeros while the log is empty).
    pub hash: String,
}

/// The chain head now (admins only).
///
/// Note it outside the database, and pass it to `GET /v1/audit/verify` later as `anchorSeq`
/// and `anchorHash`.
#[utoipa::path(get, path = "/v1/audit/head", tag = "audit", security(("bearer" = [])),
    responses(
        (status = 200, description = "The latest position and hash", body = AuditHeadOut),
        (status = 403, description = "Not an admin", body = Problem),
    ))]
async fn get_audit_head(
    State(state): State<AppState>,
    _: Admin,
) -> Result<Json<AuditHeadOut>, ApiError> {
    let head = shared::audit::head(&state.db).await?;
    Ok(Json(AuditHeadOut {
        seq: head.seq,
        hash: head.hash,
    }))
}

/// An anchor for the chain check: both parameters or neither.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct VerifyAuditQuery {
    /// `seq` of an earlier `GET /v1/audit/head`.
    #[param(value_type = Option<i64>, minimum = 1)]
    pub anchor_seq: Option<String>,
    /// `hash` of that head.
    #[param(pattern = "^[0-9a-f]{64}$")]
    pub anchor_hash: Option<String>,
}

impl VerifyAuditQuery {
    fn anchor(self) -> Result<Option<Anchor>, ApiError> {
        let (seq, hash) = match (self.anchor_seq, self.anchor_hash) {
            (None, None) => return Ok(None),
            (Some(seq), Some(hash)) => (seq, hash),
            (None, Some(_)) | (Some(_), None) => {
                return Err(ApiError::invalid(
                    "anchorSeq",
                    "anchorSeq and anchorHash: give both or neither",
                ));
            }
        };
        let digits = !seq.is_empty() && seq.bytes().all(|b| b.is_ascii_digit());
        let seq = digits
            .then(|| seq.parse().ok())
            .flatten()
            .filter(|n: &i64| *n >= 1)
            .ok_or_else(|| {
                ApiError::invalid("anchorSeq", "anchorSeq: a whole number, 1 or more")
            })?;
        if hash.len() != 64 || !hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(ApiError::invalid(
                "anchorHash",
                "anchorHash: 64 lower-case hex digits",
            ));
        }
        Ok(Some(Anchor { seq, hash }))
    }
}

/// Recomputes the whole hash chain (admins only).
///
/// With `anchorSeq` and `anchorHash`, the chain must also pass through that anchor (reason
/// `the chain does not pass through the anchor…` otherwise).
#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit", params(VerifyAuditQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The outcome (see `valid`)", body = VerifyOut),
        (status = 403, description = "Not an admin", body = Problem),
        (status = 422, description = "A malformed or half-given anchor", body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn verify_audit(
    State(state): State<AppState>,
    _: Admin,
    Params(query): Params<VerifyAuditQuery>,
) -> Result<Json<VerifyOut>, ApiError> {
    let anchor = query.anchor()?;
    let report = shared::audit::verify(&state.db, anchor.as_ref()).await?;
    Ok(Json(VerifyOut {
        valid: report.is_valid(),
        rows_checked: report.rows_checked,
        head_id: report.head_id,
        first_broken: report.first_broken.map(|b| ChainBreakOut {
            id: b.id,
            reason: b.reason.to_string(),
        }),
    }))
}
