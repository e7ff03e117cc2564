//! The control surface under `/_sim` (no auth; bind to loopback unless others must reach it).
//! Its JSON shapes are a contract (DESIGN.md §11) that tests and tools script against.
//!
//! There is one world per `Profile-Key` ([`crate::profile`]). Every route but `/profiles`
//! takes `?profile=<key>` and works on that profile's world (absent or empty: the primary
//! profile, whose key is `""`); naming a profile not in use yet makes it, with its seeded
//! world, as its first provider request would.
//!
//! - `GET|POST|DELETE /faults`: read, replace or clear the profile's fault set
//!   ([`crate::FaultSet`]).
//! - `GET /comments` → `{"comments": [{"platform", "postId", "commentId", "parentId",
//!   "content", "fromUs"}]}`: every comment the world holds, hidden ones included and deleted
//!   ones not (`postId` is the Ayrshare Post ID, `commentId`/`parentId` Social Comment IDs,
//!   `parentId` null for top-level comments).
//! - `POST /comments` `{"platform", "postId", "parentId"?, "content", "author"?}` → 201 with
//!   the new comment in the same shape (a customer comment, subject to the cache delay,
//!   delivered to the profile's `comments` webhook).
//! - `GET /messages` → `{"messages": [{"platform", "conversationId", "messageId", "content",
//!   "fromUs"}]}`: every direct message of every conversation, hidden ones included.
//! - `POST /messages` `{"platform", "conversationId", "content"}` → 201 with the new message in
//!   the same shape (the customer's, subject to the cache delay, delivered to the profile's
//!   `messages` webhook).
//! - `GET /ledger` → `{"replies": [{"platform", "parentId", "commentId", "content", "at"}],
//!   "messages": [{"platform", "recipientId", "messageId", "message", "at"}],
//!   "comments": [{"platform", "postId", "commentId", "content", "at"}],
//!   "deletions": [{"platform", "commentId", "at"}]}`: replies, sent messages, our top-level
//!   comments (`postId`: Ayrshare Post ID) and deleted comments (Social Comment IDs), each list
//!   in the order applied.
//! - `GET /stats[?windowSeconds=N]` → `{"total", "requests": [{"endpoint", "method",
//!   "platform", "status", "count"}], "maxConcurrentCommentFetchesPerPost", "windowSeconds",
//!   "maxRequestsInWindow", "maxGapSeconds"}`: the profile's requests (window default: the
//!   rate window).
//! - `GET /webhooks` → `{"deliveries": [{"hookId", "profile", "action", "platform", "url",
//!   "createdAt", "outcome", "attempts", "lastStatus", "lastError", "delayMs", "duplicate",
//!   "badSignature", "deliveredAt", "payload"}]}`: the profile's webhook deliveries, oldest
//!   first ([`crate::delivery`]).
//! - `GET /profiles[?windowSeconds=N]` → `{"profiles": [{"profile", "total",
//!   "maxRequestsInWindow"}]}`: every profile in use, by key (the primary profile, `""`,
//!   first), with the requests its rate limiter accepted in all and the most in any window
//!   (as in `/stats`).
//! - `POST /reset`: every profile back to the start: the primary profile's seeded world,
//!   empty ledger and stats, fresh budget, no webhooks or deliveries, start-up faults; named
//!   profiles are dropped (made again from their seeds on next use). With `?profile=<key>`:
//!   that profile alone. → `{"status": "reset"}`.
//!
//! Errors answer `{"error": "…"}` with 400 or 404.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, RawQuery, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::delivery::{self, Event};
use crate::faults::FaultSet;
use crate::ids;
use crate::platform::Platform;
use crate::profile::Profile;
use crate::query::Query;
use crate::sim::Sim;
use crate::world::{Account, NewComment, World};

/// Routes of the control surface, relative to `/_sim`.
pub(crate) fn router() -> Router<Arc<Sim>> {
    Router::new()
        .route(
            "/faults",
            get(get_faults).post(set_faults).delete(clear_faults),
        )
        .route("/comments", get(list_comments).post(create_comment))
        .route("/messages", get(list_messages).post(create_message))
        .route("/ledger", get(get_ledger))
        .route("/webhooks", get(list_deliveries))
        .route("/stats", get(get_stats))
        .route("/profiles", get(list_profiles))
        .route("/reset", post(reset))
}

/// The profile a control request names with `?profile=` (absent or empty: the primary
/// profile), made on first use.
struct Named(Arc<Profile>);

impl FromRequestParts<Arc<Sim>> for Named {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        sim: &Arc<Sim>,
    ) -> Result<Self, Self::Rejection> {
        let query = Query::parse(parts.uri.query());
        Ok(Named(sim.profile(query.get("profile").unwrap_or(""))))
    }
}

fn fail(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

async fn get_faults(Named(profile): Named) -> Json<FaultSet> {
    Json(profile.faults().snapshot())
}

async fn set_faults(Named(profile): Named, body: Bytes) -> Response {
    let parsed = std::str::from_utf8(&body)
        .map_err(|e| e.to_string())
        .and_then(|json| FaultSet::from_json(json).map_err(|e| e.to_string()));
    match parsed {
        Ok(set) => {
            tracing::info!(rules = set.rules.len(), "fault set replaced");
            profile.set_faults(set);
            Json(profile.faults().snapshot()).into_response()
        }
        Err(message) => fail(StatusCode::BAD_REQUEST, message),
    }
}

async fn clear_faults(Named(profile): Named) -> Json<FaultSet> {
    tracing::info!("fault set cleared");
    profile.set_faults(FaultSet::default());
    Json(profile.faults().snapshot())
}

fn comment_item(world: &World, idx: usize) -> Value {
    let c = &world.comments[idx];
    json!({
        "platform": c.platform,
        "postId": world.posts[c.post].ayr_id,
        "commentId": c.social_id,
        "parentId": c.parent.map(|p| &world.comments[p].social_id),
        "content": c.text,
        "fromUs": c.from_us,
    })
}

async fn list_comments(Named(profile): Named) -> Json<Value> {
    let world = profile.world();
    let comments: Vec<Value> = (0..world.comments.len())
        .filter(|&i| !world.comments[i].deleted)
        .map(|i| comment_item(&world, i))
        .collect();
    Json(json!({ "comments": comments }))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewCommentIn {
    platform: Platform,
    post_id: String,
    parent_id: Option<String>,
    content: String,
    author: Option<String>,
}

/// A control body of `what` (a comment, a message) whose `content` is not blank; else what is
/// wrong with it (for a 400).
fn text_input<T: serde::de::DeserializeOwned>(
    body: &Bytes,
    what: &str,
    content: impl Fn(&T) -> &str,
) -> Result<T, String> {
    let input: T = serde_json::from_slice(body).map_err(|e| format!("invalid {what}: {e}"))?;
    if content(&input).trim().is_empty() {
        return Err("content must not be empty".to_owned());
    }
    Ok(input)
}

async fn create_comment(
    State(sim): State<Arc<Sim>>,
    Named(profile): Named,
    body: Bytes,
) -> Response {
    let input = match text_input(&body, "comment", |c: &NewCommentIn| &c.content) {
        Ok(input) => input,
        Err(message) => return fail(StatusCode::BAD_REQUEST, message),
    };
    let now = Utc::now();
    let visible_at = profile.visible_from(now);
    let n = sim.next_n();
    let mut world = profile.world_mut();
    let Some(post) = world.post_by_ayr(&input.post_id) else {
        return fail(StatusCode::NOT_FOUND, format!("no post {}", input.post_id));
    };
    let platform = world.posts[post].platform;
    if platform != input.platform {
        return fail(
            StatusCode::BAD_REQUEST,
            format!("post {} is on {platform}", input.post_id),
        );
    }
    let parent = match &input.parent_id {
        None => None,
        Some(id) => match world
            .comment_by_social(platform, id)
            .filter(|&c| world.comments[c].post == post)
        {
            Some(c) => Some(c),
            None => {
                return fail(
                    StatusCode::NOT_FOUND,
                    format!("no comment {id} on post {}", input.post_id),
                );
            }
        },
    };
    let author = match input.author {
        Some(name) => Arc::new(named_account(platform, n, name)),
        None => {
            let pool = world.authors.get(&platform).cloned().unwrap_or_default();
            match pool.get((n % pool.len().max(1) as u64) as usize) {
                Some(author) => author.clone(),
                None => Arc::new(named_account(platform, n, "Sam Guest".to_owned())),
            }
        }
    };
    let idx = world.insert_comment(NewComment {
        post,
        parent,
        text: input.content,
        author,
        from_us: false,
        created: now,
        visible_at,
        n,
    });
    let item = comment_item(&world, idx);
    let event = Event::comment(&world, idx, now);
    drop(world);
    delivery::announce(&sim, &profile, event);
    (StatusCode::CREATED, Json(item)).into_response()
}

/// A customer account with a given display name (handle derived from it).
fn named_account(platform: Platform, n: u64, name: String) -> Account {
    let slug: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    let handle = if platform == Platform::Bluesky {
        format!("{}@example.com", slug.replace('_', "."))
    } else {
        slug
    };
    Account {
        id: ids::account_id(platform, n),
        name,
        handle,
    }
}

fn message_item(world: &World, conversation: usize, idx: usize) -> Value {
    let c = &world.conversations[conversation];
    let m = &c.messages[idx];
    json!({
        "platform": c.platform,
        "conversationId": c.id,
        "messageId": m.id,
        "content": m.text,
        "fromUs": m.sent,
    })
}

async fn list_messages(Named(profile): Named) -> Json<Value> {
    let world = profile.world();
    let messages: Vec<Value> = (0..world.conversations.len())
        .flat_map(|c| (0..world.conversations[c].messages.len()).map(move |m| (c, m)))
        .map(|(c, m)| message_item(&world, c, m))
        .collect();
    Json(json!({ "messages": messages }))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewMessageIn {
    platform: Platform,
    conversation_id: String,
    content: String,
}

async fn create_message(
    State(sim): State<Arc<Sim>>,
    Named(profile): Named,
    body: Bytes,
) -> Response {
    let input = match text_input(&body, "message", |m: &NewMessageIn| &m.content) {
        Ok(input) => input,
        Err(message) => return fail(StatusCode::BAD_REQUEST, message),
    };
    let now = Utc::now();
    let visible_at = profile.visible_from(now);
    let n = sim.next_n();
    let mut world = profile.world_mut();
    let Some(conversation) = world
        .conversations
        .iter()
        .position(|c| c.platform == input.platform && c.id == input.conversation_id)
    else {
        return fail(
            StatusCode::NOT_FOUND,
            format!(
                "no conversation {} on {}",
                input.conversation_id, input.platform
            ),
        );
    };
    world.receive_message(conversation, input.content, now, visible_at, n);
    let idx = world.conversations[conversation].messages.len() - 1;
    let item = message_item(&world, conversation, idx);
    let event = Event::message(&world, conversation);
    drop(world);
    if let Some(event) = event {
        delivery::announce(&sim, &profile, event);
    }
    (StatusCode::CREATED, Json(item)).into_response()
}

async fn list_deliveries(Named(profile): Named) -> Json<Value> {
    Json(json!({ "deliveries": profile.deliveries.list() }))
}

async fn get_ledger(Named(profile): Named) -> Response {
    Json(&profile.world().ledger).into_response()
}

/// The window of `?windowSeconds=` (default: the rate window); else why it is refused.
fn window(sim: &Sim, raw: Option<&str>) -> Result<Duration, &'static str> {
    let seconds = match Query::parse(raw).number::<f64>("windowSeconds") {
        Ok(Some(s)) => s,
        Ok(None) => sim.cfg.rate_window_seconds.max(1) as f64,
        Err(_) => return Err("windowSeconds must be a number"),
    };
    match Duration::try_from_secs_f64(seconds) {
        Ok(window) if !window.is_zero() => Ok(window),
        _ => Err("windowSeconds must be positive"),
    }
}

async fn get_stats(
    State(sim): State<Arc<Sim>>,
    Named(profile): Named,
    RawQuery(raw): RawQuery,
) -> Response {
    match window(&sim, raw.as_deref()) {
        Ok(window) => Json(profile.stats.snapshot(window)).into_response(),
        Err(message) => fail(StatusCode::BAD_REQUEST, message),
    }
}

async fn list_profiles(State(sim): State<Arc<Sim>>, RawQuery(raw): RawQuery) -> Response {
    let window = match window(&sim, raw.as_deref()) {
        Ok(window) => window,
        Err(message) => return fail(StatusCode::BAD_REQUEST, message),
    };
    let profiles: Vec<Value> = sim
        .profiles()
        .iter()
        .map(|profile| {
            let load = profile.stats.load(window);
            json!({
                "profile": profile.key,
                "total": load.accepted,
                "maxRequestsInWindow": load.max_in_window,
            })
        })
        .collect();
    Json(json!({ "profiles": profiles })).into_response()
}

async fn reset(State(sim): State<Arc<Sim>>, RawQuery(raw): RawQuery) -> Json<Value> {
    match Query::parse(raw.as_deref()).get("profile") {
        Some(key) => {
            sim.reset_profile(key);
            tracing::info!("one profile reset to its seed");
        }
        None => {
            sim.reset();
            tracing::info!("every profile reset to its seed");
        }
    }
    Json(json!({ "status": "reset" }))
}
