//! Ayrshare-style error answers: `{"status": "error", "code": N, "message": "…"}`.
//!
//! | HTTP | code | when |
//! |---|---|---|
//! | 400 | 101 | a parameter or the body is missing or invalid |
//! | 400 | 184 | `POST /messages`: no conversation with that recipient |
//! | 401 | 102 | API key missing or not valid |
//! | 403 | 361 | messaging not enabled for the platform (`messagingDisabled`) |
//! | 404 | 180 | no post with that id |
//! | 404 | 181 | the post (or comment) has no comments yet |
//! | 404 | 182 | no comment with that id (`DELETE` by Ayrshare Post ID: none of ours on it) |
//! | 404 | 183 | history not available for the platform |
//! | 404 | 185 | `DELETE /hook/webhook`: no webhook registered for that action |
//! | 429 | 189 | rate limit reached (the limiter's and injected 429s) |
//! | injected 4xx/5xx | the status | `status` and `lost_response` faults |
//!
//! Codes 102 and 361 are Ayrshare's; the others are this simulator's own, stable choices.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::platform::Platform;

/// An error answer of the provider surface.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: u16,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: u16, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, 101, message)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            102,
            "API Key not valid. Please check your API Key in the Authorization header.",
        )
    }

    pub fn messaging_disabled(platform: Platform) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            361,
            format!("Messaging is not enabled for {platform}. Please enable the messaging add-on."),
        )
    }

    pub fn post_not_found(id: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, 180, format!("Post not found: {id}"))
    }

    pub fn no_comments() -> Self {
        Self::new(StatusCode::NOT_FOUND, 181, "No comments found.")
    }

    pub fn comment_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            182,
            format!("Comment not found: {id}"),
        )
    }

    pub fn history_not_available(platform: Platform) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            183,
            format!("History is not available for {platform}."),
        )
    }

    pub fn webhook_not_found(action: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            185,
            format!("No webhook registered for action {action}."),
        )
    }

    pub fn unknown_recipient(id: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            184,
            format!("No conversation with recipient {id}."),
        )
    }

    pub fn rate_limited(max: u32, window_seconds: u64) -> Self {
        let message = if max == 0 {
            "Too many requests for this profile. Please try again later.".to_owned()
        } else {
            format!(
                "Too many requests: the limit is {max} requests per {window_seconds} seconds for this profile."
            )
        };
        Self::new(StatusCode::TOO_MANY_REQUESTS, 189, message)
    }

    /// The answer of a `status` or `lost_response` fault.
    pub fn injected(status: u16, max: u32, window_seconds: u64) -> Self {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Self::rate_limited(max, window_seconds);
        }
        let reason = status.canonical_reason().unwrap_or("Error");
        Self::new(
            status,
            status.as_u16(),
            format!("{reason} (injected by ayrshare-sim)"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"status": "error", "code": self.code, "message": self.message})),
        )
            .into_response()
    }
}
