//! `POST /comments`: our own top-level comment on a post.
//!
//! Body `{"id", "comment", "platforms"?, "searchPlatformId"?, "mediaUrls"?}`. `id` is an
//! Ayrshare Post ID; with `searchPlatformId: true` a Social Post ID, and exactly one platform
//! must be named. Without `platforms` the comment goes to the post's network; `platforms` that
//! leave that network out answer 400. An unknown post answers 404 (code 180); `mediaUrls` are
//! accepted and not shown. The comment is by our account (see [`crate::our_account`]), visible
//! to GET after the cache delay, has an Ayrshare Comment ID (which `POST /comments/reply` and
//! `DELETE /comments` take) and is recorded in the ledger under `comments`. On X it replies to
//! the post's tweet. Answer:
//!
//! ```json
//! {"status": "success", "id": "<Ayrshare Post ID>", "commentId": "<Ayrshare Comment ID>",
//!  "linkedin": {"status": "success", "commentId": "<Social Comment ID>", "comment": "text",
//!               "platform": "linkedin", "commentUrn": "<Social Comment ID>"}}
//! ```
//!
//! (`commentUrn` on LinkedIn only.) As for replies, nothing guards against a repeated request:
//! it comments twice.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{WriteRequest, json_body};
use crate::error::ApiError;
use crate::faults::Endpoint;
use crate::platform::Platform;
use crate::profile::Profile;
use crate::serve::ConnControl;
use crate::sim::{ApiCall, Sim};
use crate::stats::Method;
use crate::world::World;

/// The request body; unknown fields (`mediaUrls`, …) are accepted and ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CommentIn {
    id: Option<String>,
    comment: Option<String>,
    platforms: Option<Vec<String>>,
    search_platform_id: Option<bool>,
}

pub(super) async fn create_comment(
    State(sim): State<Arc<Sim>>,
    Extension(conn): Extension<ConnControl>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = json_body::<CommentIn>(&body).and_then(|body| {
        WriteRequest::parse(
            body.id,
            "id",
            body.comment,
            body.platforms,
            body.search_platform_id,
        )
    });
    let profile = sim.profile_of(&headers);
    let scope: Vec<Platform> = match &request {
        Ok(r) => {
            let world = profile.world();
            match find_post(&world, r) {
                Some(post) => vec![world.posts[post].platform],
                None => r.platforms.clone(),
            }
        }
        Err(_) => Vec::new(),
    };
    let call = ApiCall {
        profile: &profile,
        endpoint: Endpoint::PostComment,
        method: Method::Post,
        platforms: &scope,
        headers: &headers,
        conn: &conn,
    };
    sim.serve_api(call, || apply(&sim, &profile, request?))
        .await
}

/// The post a comment request names.
fn find_post(world: &World, request: &WriteRequest) -> Option<usize> {
    if request.by_social_id {
        world.post_by_social(request.platforms[0], &request.id)
    } else {
        world.post_by_ayr(&request.id)
    }
}

fn apply(sim: &Sim, profile: &Profile, request: WriteRequest) -> Result<Value, ApiError> {
    let now = Utc::now();
    let visible_at = profile.visible_from(now);
    let n = sim.next_n();
    let mut world = profile.world_mut();
    let post = find_post(&world, &request).ok_or_else(|| ApiError::post_not_found(&request.id))?;
    let platform = world.posts[post].platform;
    if !request.platforms.is_empty() && !request.platforms.contains(&platform) {
        return Err(ApiError::bad_request(format!(
            "post {} is on {platform}, which is not in platforms",
            request.id
        )));
    }
    let idx = world.add_comment(post, request.text, now, visible_at, n);
    let comment = &world.comments[idx];
    let mut result = json!({
        "status": "success",
        "commentId": comment.social_id,
        "comment": comment.text,
        "platform": platform,
    });
    if platform == Platform::Linkedin {
        result["commentUrn"] = json!(comment.social_id);
    }
    let mut body = Map::new();
    body.insert("status".into(), json!("success"));
    body.insert("id".into(), json!(world.posts[post].ayr_id));
    body.insert("commentId".into(), json!(comment.ayr_id));
    body.insert(platform.as_str().into(), result);
    Ok(Value::Object(body))
}
