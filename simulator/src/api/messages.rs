//! `GET /messages/:platform` and `POST /messages/:platform`: direct messages on facebook,
//! instagram and twitter (other platforms: 400; `messagingDisabled`: 403, code 361).
//!
//! GET lists every visible message of the platform's conversations, newest first (as the
//! provider does: right after a send, `messages[0]` is the sent message); `limit` keeps the
//! first (newest) N. X pages: `limit` messages a page (default 20, at most 100), and while
//! more remain the body carries `next`, a cursor to pass back as `next=`. Query `conversationId` narrows to one conversation and adds
//! `messagesCount`, the number of its visible messages (before `limit`);
//! `conversationsOnly=true` answers `conversationIds` instead; `status=archived` finds nothing
//! (every conversation is active). POST sends our message to a customer who has a
//! conversation with us (unknown recipient: 400, code 184) and records it in the ledger.

use std::cmp::Reverse;
use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{json_body, required_text};
use crate::error::ApiError;
use crate::faults::Endpoint;
use crate::platform::Platform;
use crate::profile::Profile;
use crate::query::Query;
use crate::render;
use crate::serve::ConnControl;
use crate::sim::{ApiCall, Sim};
use crate::stats::Method;
use crate::time::iso_millis;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendIn {
    recipient_id: Option<String>,
    message: Option<String>,
    media_urls: Option<Vec<String>>,
}

/// The platform of a messages request, if messaging exists and is enabled there.
fn messaging_platform(profile: &Profile, name: &str) -> Result<Platform, ApiError> {
    let platform = name
        .parse::<Platform>()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    if !platform.has_messaging() {
        return Err(ApiError::bad_request(format!(
            "Messaging is not available for {platform}: use facebook, instagram or twitter."
        )));
    }
    if profile.faults().messaging_disabled(platform) {
        return Err(ApiError::messaging_disabled(platform));
    }
    Ok(platform)
}

pub(super) async fn list_messages(
    State(sim): State<Arc<Sim>>,
    Extension(conn): Extension<ConnControl>,
    headers: HeaderMap,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = Query::parse(raw.as_deref());
    let scope: Vec<Platform> = name.parse().into_iter().collect();
    let profile = sim.profile_of(&headers);
    let call = ApiCall {
        profile: &profile,
        endpoint: Endpoint::Messages,
        method: Method::Get,
        platforms: &scope,
        headers: &headers,
        conn: &conn,
    };
    sim.serve_api(call, || {
        let platform = messaging_platform(&profile, &name)?;
        list(&sim, &profile, platform, &query)
    })
    .await
}

fn list(
    sim: &Sim,
    profile: &Profile,
    platform: Platform,
    query: &Query,
) -> Result<Value, ApiError> {
    let archived = match query.get("status").unwrap_or("active") {
        "active" => false,
        "archived" => true,
        other => {
            return Err(ApiError::bad_request(format!(
                "status must be active or archived, not `{other}`"
            )));
        }
    };
    let only = query.get("conversationId");
    let conversations_only = query.flag("conversationsOnly")?;
    let limit: Option<usize> = query.number("limit")?;
    let now = Utc::now();
    let world = profile.world();
    let ours = world.our_account(platform);
    let ours: &crate::world::Account = &ours;
    let conversations = world
        .conversations
        .iter()
        .filter(|c| !archived && c.platform == platform && only.is_none_or(|id| c.id == id));

    let mut body = if conversations_only {
        let ids: Vec<&str> = conversations
            .filter(|c| c.messages.iter().any(|m| m.visible_at <= now))
            .map(|c| c.id.as_str())
            .collect();
        json!({ "status": "success", "conversationIds": ids })
    } else {
        let mut messages: Vec<(chrono::DateTime<Utc>, Value)> = conversations
            .flat_map(|c| {
                c.messages
                    .iter()
                    .filter(|m| m.visible_at <= now)
                    .map(move |m| (m.created, render::message(c, m, ours)))
            })
            .collect();
        // Reversed first, so that messages of the same instant also come latest first.
        messages.reverse();
        messages.sort_by_key(|(created, _)| Reverse(*created));
        let count = messages.len();
        // X pages (`limit` per page, `next` to go on); the others answer at most `limit`.
        let paged = platform == Platform::Twitter;
        let (start, size) = if paged {
            let start = query
                .get("next")
                .map(parse_cursor)
                .transpose()?
                .unwrap_or(0);
            (start, limit.unwrap_or(X_PAGE).clamp(1, X_MAX_PAGE))
        } else {
            (0, limit.unwrap_or(count))
        };
        let messages: Vec<Value> = messages
            .into_iter()
            .skip(start)
            .take(size)
            .map(|(_, m)| m)
            .collect();
        let mut body = json!({ "status": "success", "messages": messages });
        if only.is_some() {
            body["messagesCount"] = json!(count);
        }
        if paged && start + size < count {
            body["next"] = json!(format!("{CURSOR_PREFIX}{}", start + size));
        }
        body
    };
    body["lastUpdated"] = json!(iso_millis(now));
    body["nextUpdate"] = json!(iso_millis(sim.next_update(now)));
    Ok(body)
}

/// Messages per page on X when `limit` is absent, and the most `limit` may ask for.
const X_PAGE: usize = 20;
const X_MAX_PAGE: usize = 100;

/// Cursors are `m<offset>` into the newest-first list: a message that arrives between two
/// pages shifts the rest by one, so a page may repeat a message but never skips one.
const CURSOR_PREFIX: &str = "m";

fn parse_cursor(cursor: &str) -> Result<usize, ApiError> {
    cursor
        .strip_prefix(CURSOR_PREFIX)
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| ApiError::bad_request(format!("invalid next cursor `{cursor}`")))
}

pub(super) async fn send_message(
    State(sim): State<Arc<Sim>>,
    Extension(conn): Extension<ConnControl>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let scope: Vec<Platform> = name.parse().into_iter().collect();
    let profile = sim.profile_of(&headers);
    let call = ApiCall {
        profile: &profile,
        endpoint: Endpoint::Messages,
        method: Method::Post,
        platforms: &scope,
        headers: &headers,
        conn: &conn,
    };
    sim.serve_api(call, || {
        let platform = messaging_platform(&profile, &name)?;
        send(&sim, &profile, platform, &body)
    })
    .await
}

fn send(sim: &Sim, profile: &Profile, platform: Platform, body: &[u8]) -> Result<Value, ApiError> {
    let body: SendIn = json_body(body)?;
    let recipient = required_text(body.recipient_id, "recipientId")?;
    let text = required_text(body.message, "message")?;
    let now = Utc::now();
    let visible_at = profile.visible_from(now);
    let n = sim.next_n();
    let mut world = profile.world_mut();
    let conversation = world
        .conversation_by_customer(platform, &recipient)
        .ok_or_else(|| ApiError::unknown_recipient(&recipient))?;
    let message_id = world.send_message(
        conversation,
        text.clone(),
        body.media_urls.unwrap_or_default(),
        now,
        visible_at,
        n,
    );
    Ok(json!({
        "status": "success",
        "recipientId": recipient,
        "messageId": message_id,
        "message": text,
    }))
}
