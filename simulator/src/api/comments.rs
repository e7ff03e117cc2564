//! `GET /comments/:id` and `GET /comments?id=`: the comments of a post, by Ayrshare Post ID;
//! with `searchPlatformId=true&platform=<p>` by Social Post ID; with `commentId=true` (and
//! `platform`) the replies below a Social Comment ID.
//!
//! The answer has one array, named after the post's platform (see [`crate::render`] for the
//! shapes). A post without visible comments answers 404 (code 181), the documented quirk.
//! Facebook and Instagram list at most the latest 1,000 top-level comments.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::Utc;
use serde_json::{Map, Value, json};

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
use crate::world::World;

/// Facebook and Instagram return at most this many (latest) comments.
const META_COMMENT_CAP: usize = 1000;

/// What the id of a comments request names.
#[derive(Debug, Clone, Copy)]
enum Lookup {
    AyrsharePost,
    SocialPost(Platform),
    SocialComment(Platform),
}

#[derive(Debug, Clone)]
struct Target {
    id: String,
    lookup: Lookup,
}

impl Target {
    fn parse(id: Option<String>, query: &Query) -> Result<Self, ApiError> {
        let id = id
            .filter(|id| !id.is_empty())
            .ok_or_else(|| ApiError::bad_request("id is required"))?;
        let search = query.flag("searchPlatformId")?;
        let comment = query.flag("commentId")?;
        let lookup = if search || comment {
            let platform = query
                .get("platform")
                .ok_or_else(|| {
                    ApiError::bad_request("platform is required with searchPlatformId or commentId")
                })?
                .parse::<Platform>()
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
            if comment {
                Lookup::SocialComment(platform)
            } else {
                Lookup::SocialPost(platform)
            }
        } else {
            Lookup::AyrsharePost
        };
        Ok(Target { id, lookup })
    }

    /// The post (and, for `commentId=true`, the comment) the target names.
    fn find(&self, world: &World) -> Result<(usize, Option<usize>), ApiError> {
        let post_not_found = || ApiError::post_not_found(&self.id);
        match self.lookup {
            Lookup::AyrsharePost => world
                .post_by_ayr(&self.id)
                .map(|p| (p, None))
                .ok_or_else(post_not_found),
            Lookup::SocialPost(platform) => world
                .post_by_social(platform, &self.id)
                .map(|p| (p, None))
                .ok_or_else(post_not_found),
            Lookup::SocialComment(platform) => world
                .comment_by_social(platform, &self.id)
                .map(|c| (world.comments[c].post, Some(c)))
                .ok_or_else(|| ApiError::comment_not_found(&self.id)),
        }
    }
}

pub(super) async fn list_comments(
    State(sim): State<Arc<Sim>>,
    Extension(conn): Extension<ConnControl>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    comments(&sim, &conn, &headers, Some(id), raw.as_deref()).await
}

pub(super) async fn list_comments_by_query(
    State(sim): State<Arc<Sim>>,
    Extension(conn): Extension<ConnControl>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let id = Query::parse(raw.as_deref()).get("id").map(str::to_owned);
    comments(&sim, &conn, &headers, id, raw.as_deref()).await
}

async fn comments(
    sim: &Sim,
    conn: &ConnControl,
    headers: &HeaderMap,
    id: Option<String>,
    raw: Option<&str>,
) -> Response {
    let query = Query::parse(raw);
    let target = Target::parse(id, &query);
    let profile = sim.profile_of(headers);
    let found = target.as_ref().ok().and_then(|t| {
        let world = profile.world();
        let (post, _) = t.find(&world).ok()?;
        Some((post, world.posts[post].platform))
    });
    // In flight for the whole request, injected latency included, so overlapping fetches of
    // one post are seen however they overlap.
    let _in_flight = found.map(|(post, _)| profile.stats.comment_fetch(post));
    let scope: Vec<Platform> = found.map(|(_, platform)| platform).into_iter().collect();
    let call = ApiCall {
        profile: &profile,
        endpoint: Endpoint::Comments,
        method: Method::Get,
        platforms: &scope,
        headers,
        conn,
    };
    sim.serve_api(call, || list(sim, &profile, &target?)).await
}

fn list(sim: &Sim, profile: &Profile, target: &Target) -> Result<Value, ApiError> {
    let now = Utc::now();
    let world = profile.world();
    let (post_idx, comment) = target.find(&world)?;
    let post = &world.posts[post_idx];
    let visible = |c: &usize| world.comments[*c].visible_at <= now;
    let items: Vec<Value> = if post.platform == Platform::Twitter {
        let mut flat = match comment {
            Some(c) => world.replies_below(c),
            None => world.thread_of_post(post_idx),
        };
        flat.retain(visible);
        flat.sort_by_key(|&c| world.comments[c].created);
        flat.iter()
            .map(|&c| render::comment(&world, c, now, false))
            .collect()
    } else {
        let roots = match comment {
            Some(c) => &world.comments[c].replies,
            None => &post.comments,
        };
        let mut roots: Vec<usize> = roots.iter().copied().filter(visible).collect();
        if matches!(post.platform, Platform::Facebook | Platform::Instagram) {
            roots.drain(..roots.len().saturating_sub(META_COMMENT_CAP));
        }
        roots
            .iter()
            .map(|&c| render::comment(&world, c, now, true))
            .collect()
    };
    if items.is_empty() {
        return Err(ApiError::no_comments());
    }
    let mut body = Map::new();
    body.insert("status".into(), json!("success"));
    body.insert("id".into(), json!(post.ayr_id));
    body.insert(post.platform.as_str().into(), Value::Array(items));
    body.insert("lastUpdated".into(), json!(iso_millis(now)));
    body.insert("nextUpdate".into(), json!(iso_millis(sim.next_update(now))));
    Ok(Value::Object(body))
}
