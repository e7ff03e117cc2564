//! `POST /comments/reply/:commentId` and `POST /comments/reply` (`commentId` in the body):
//! our reply to a comment.
//!
//! Body `{"comment": "text", "platforms": ["<p>"], "searchPlatformId": true}`. With
//! `searchPlatformId` the id is a Social Comment ID and exactly one platform is allowed;
//! without it, an Ayrshare Comment ID (only comments made through Ayrshare — our comments
//! and replies — have one). An unknown id answers 404 (code 182). The reply joins the thread as a comment by
//! our account (see [`crate::our_account`]), visible to GET after the cache delay, and is
//! recorded in the ledger. There is no duplicate check: a repeated request posts twice, as
//! at the provider.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{WriteRequest, json_body};
use crate::error::ApiError;
use crate::faults::Endpoint;
use crate::profile::Profile;
use crate::serve::ConnControl;
use crate::sim::{ApiCall, Sim};
use crate::stats::Method;

/// The request body; unknown fields (`videoId`, `commentUrn`, …) are accepted and ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReplyIn {
    comment: Option<String>,
    platforms: Option<Vec<String>>,
    search_platform_id: Option<bool>,
    comment_id: Option<String>,
}

pub(super) async fn create_reply(
    State(sim): State<Arc<Sim>>,
    Extension(conn): Extension<ConnControl>,
    headers: HeaderMap,
    Path(comment_id): Path<String>,
    body: Bytes,
) -> Response {
    reply(&sim, &conn, &headers, Some(comment_id), &body).await
}

pub(super) async fn create_reply_in_body(
    State(sim): State<Arc<Sim>>,
    Extension(conn): Extension<ConnControl>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    reply(&sim, &conn, &headers, None, &body).await
}

async fn reply(
    sim: &Sim,
    conn: &ConnControl,
    headers: &HeaderMap,
    path_id: Option<String>,
    body: &[u8],
) -> Response {
    let request = parse(path_id, body);
    let scope = request
        .as_ref()
        .map(|r| r.platforms.clone())
        .unwrap_or_default();
    let profile = sim.profile_of(headers);
    let call = ApiCall {
        profile: &profile,
        endpoint: Endpoint::Reply,
        method: Method::Post,
        platforms: &scope,
        headers,
        conn,
    };
    sim.serve_api(call, || apply(sim, &profile, request?)).await
}

fn parse(path_id: Option<String>, body: &[u8]) -> Result<WriteRequest, ApiError> {
    let body: ReplyIn = json_body(body)?;
    let request = WriteRequest::parse(
        path_id.or(body.comment_id),
        "commentId",
        body.comment,
        body.platforms,
        body.search_platform_id,
    )?;
    if request.platforms.is_empty() {
        return Err(ApiError::bad_request("platforms is required"));
    }
    Ok(request)
}

fn apply(sim: &Sim, profile: &Profile, request: WriteRequest) -> Result<Value, ApiError> {
    let now = Utc::now();
    let visible_at = profile.visible_from(now);
    let n = sim.next_n();
    let mut world = profile.world_mut();
    let parent = if request.by_social_id {
        world.comment_by_social(request.platforms[0], &request.id)
    } else {
        world.comment_by_ayr(&request.id)
    }
    .ok_or_else(|| ApiError::comment_not_found(&request.id))?;
    let platform = world.comments[parent].platform;
    if !request.platforms.contains(&platform) {
        return Err(ApiError::bad_request(format!(
            "comment {} is on {platform}, which is not in platforms",
            request.id
        )));
    }
    let idx = world.add_reply(parent, request.text, now, visible_at, n);
    let reply = &world.comments[idx];
    let mut body = Map::new();
    body.insert("status".into(), json!("success"));
    body.insert("id".into(), json!(world.posts[reply.post].ayr_id));
    body.insert("commentId".into(), json!(reply.ayr_id));
    body.insert(
        platform.as_str().into(),
        json!({
            "status": "success",
            "commentId": reply.social_id,
            "sourceCommentId": world.comments[parent].social_id,
            "comment": reply.text,
            "platform": platform,
        }),
    );
    Ok(Value::Object(body))
}
