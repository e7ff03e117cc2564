//! The provider surface under `/api`, shaped like Ayrshare's REST API (see AYRSHARE.md).
//! Every handler parses its input leniently, then hands the work to
//! [`Sim::serve_api`](crate::sim::Sim::serve_api), which authenticates, rate-limits and injects
//! faults before the endpoint runs; input errors are answered after those checks, as the
//! provider does.

mod comments;
mod delete_comment;
mod history;
mod messages;
mod post_comment;
mod reply;
mod user;
mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::platform::Platform;
use crate::sim::Sim;

/// Routes of the provider surface, relative to `/api`.
pub(crate) fn router() -> Router<Arc<Sim>> {
    Router::new()
        .route("/history", get(history::list_history))
        .route("/history/{platform}", get(history::list_platform_history))
        .route(
            "/comments",
            get(comments::list_comments_by_query).post(post_comment::create_comment),
        )
        .route(
            "/comments/{id}",
            get(comments::list_comments).delete(delete_comment::delete_comment),
        )
        .route("/comments/reply", post(reply::create_reply_in_body))
        .route("/comments/reply/{comment_id}", post(reply::create_reply))
        .route(
            "/messages/{platform}",
            get(messages::list_messages).post(messages::send_message),
        )
        .route("/user", get(user::get_user))
        .route(
            "/hook/webhook",
            get(webhooks::list_webhooks)
                .post(webhooks::register_webhook)
                .delete(webhooks::delete_webhook),
        )
}

/// A JSON request body; an empty body reads as `{}`, so a missing field is reported by name.
fn json_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body: &[u8] = if body.trim_ascii().is_empty() {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// A comment or reply request that passed validation.
#[derive(Debug)]
struct WriteRequest {
    /// What the request names: the post to comment on, or the comment to reply to.
    id: String,
    text: String,
    platforms: Vec<Platform>,
    /// `searchPlatformId`: `id` is the network's own id, and exactly one platform is named.
    by_social_id: bool,
}

impl WriteRequest {
    /// Validates the fields a comment or reply body shares; `id_name` names the id field in
    /// error messages.
    fn parse(
        id: Option<String>,
        id_name: &str,
        text: Option<String>,
        platforms: Option<Vec<String>>,
        search_platform_id: Option<bool>,
    ) -> Result<Self, ApiError> {
        let id = required_text(id, id_name)?;
        let text = required_text(text, "comment")?;
        let platforms = platforms
            .unwrap_or_default()
            .iter()
            .map(|p| p.parse::<Platform>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let by_social_id = search_platform_id.unwrap_or(false);
        if by_social_id && platforms.len() != 1 {
            return Err(ApiError::bad_request(
                "searchPlatformId allows exactly one platform in platforms",
            ));
        }
        Ok(WriteRequest {
            id,
            text,
            platforms,
            by_social_id,
        })
    }
}

/// A text field that must be present and not blank.
fn required_text(value: Option<String>, name: &str) -> Result<String, ApiError> {
    value
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request(format!("{name} is required")))
}
