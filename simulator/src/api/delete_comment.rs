//! `DELETE /comments/:id`: deletes comments, by the ids the provider takes.
//!
//! - An Ayrshare Comment ID (our comment or reply) deletes that comment.
//! - An Ayrshare Post ID deletes every comment we made through Ayrshare on that post (none:
//!   404, code 182).
//! - With `searchPlatformId=true` and `platform=<p>` (in the query or the JSON body) the id is
//!   a Social Comment ID: any comment on that network, ours or a customer's.
//!
//! Replies below a deleted comment go with it. Deleted comments disappear from
//! `GET /comments`, the history counts and `/_sim/comments`, take no more replies (404), and
//! are listed in the ledger under `deletions`. An unknown id answers 404 (code 182). Answer,
//! as documented:
//!
//! ```json
//! {"status": "success",
//!  "facebook": {"action": "delete", "status": "success", "id": "<Social Comment ID>",
//!               "comment": "text"}}
//! ```
//!
//! TikTok repeats the id as the deprecated `commentId`. When an Ayrshare Post ID deletes several
//! comments, the platform's value is an array of such objects.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::json_body;
use crate::error::ApiError;
use crate::faults::Endpoint;
use crate::platform::Platform;
use crate::profile::Profile;
use crate::query::Query;
use crate::serve::ConnControl;
use crate::sim::{ApiCall, Sim};
use crate::stats::Method;
use crate::world::World;

/// The optional body; the same flags may come in the query instead.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteIn {
    search_platform_id: Option<bool>,
    platform: Option<String>,
}

/// What the id of a delete request names.
#[derive(Debug)]
enum Target {
    /// An Ayrshare Comment ID or Ayrshare Post ID.
    Ayrshare(String),
    /// A Social Comment ID on a platform.
    Social(Platform, String),
}

impl Target {
    fn parse(id: String, query: &Query, body: &[u8]) -> Result<Self, ApiError> {
        let body: DeleteIn = json_body(body)?;
        let by_social = query.flag("searchPlatformId")? || body.search_platform_id == Some(true);
        if !by_social {
            return Ok(Target::Ayrshare(id));
        }
        let platform = query
            .get("platform")
            .map(str::to_owned)
            .or(body.platform)
            .ok_or_else(|| ApiError::bad_request("platform is required with searchPlatformId"))?
            .parse::<Platform>()
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok(Target::Social(platform, id))
    }

    /// The comments to delete, in thread order.
    fn find(&self, world: &World) -> Result<Vec<usize>, ApiError> {
        let found = match self {
            Target::Social(platform, id) => world.comment_by_social(*platform, id).map(|c| vec![c]),
            Target::Ayrshare(id) => world
                .comment_by_ayr(id)
                .map(|c| vec![c])
                .or_else(|| world.post_by_ayr(id).map(|p| world.ours_on_post(p))),
        };
        found.filter(|c| !c.is_empty()).ok_or_else(|| {
            let (Target::Social(_, id) | Target::Ayrshare(id)) = self;
            ApiError::comment_not_found(id)
        })
    }
}

pub(super) async fn delete_comment(
    State(sim): State<Arc<Sim>>,
    Extension(conn): Extension<ConnControl>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let target = Target::parse(id, &Query::parse(raw.as_deref()), &body);
    let profile = sim.profile_of(&headers);
    let scope: Vec<Platform> = match &target {
        Ok(Target::Social(platform, _)) => vec![*platform],
        Ok(target) => {
            let world = profile.world();
            let first = target.find(&world).ok().and_then(|c| c.first().copied());
            first
                .map(|c| world.comments[c].platform)
                .into_iter()
                .collect()
        }
        Err(_) => Vec::new(),
    };
    let call = ApiCall {
        profile: &profile,
        endpoint: Endpoint::DeleteComment,
        method: Method::Delete,
        platforms: &scope,
        headers: &headers,
        conn: &conn,
    };
    sim.serve_api(call, || apply(&profile, &target?)).await
}

fn apply(profile: &Profile, target: &Target) -> Result<Value, ApiError> {
    let now = Utc::now();
    let mut world = profile.world_mut();
    let found = target.find(&world)?;
    // One post's comments: one platform.
    let platform = world.comments[found[0]].platform;
    let mut results: Vec<Value> = Vec::with_capacity(found.len());
    for c in found {
        // A reply of ours below a comment of ours deleted just before went with it.
        if world.comments[c].deleted {
            continue;
        }
        world.delete_comment(c, now);
        let comment = &world.comments[c];
        let mut result = json!({
            "action": "delete",
            "status": "success",
            "id": comment.social_id,
            "comment": comment.text,
        });
        if platform == Platform::Tiktok {
            result["commentId"] = json!(comment.social_id);
        }
        results.push(result);
    }
    let value = match results.len() {
        1 => results.remove(0),
        _ => Value::Array(results),
    };
    let mut body = Map::new();
    body.insert("status".into(), json!("success"));
    body.insert(platform.as_str().into(), value);
    Ok(Value::Object(body))
}
