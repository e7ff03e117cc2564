//! The provider surface under `/api`, shaped like Ayrshare's REST API (see AYRSHARE.md).
//! Every handler parses its input leniently, then hands the work to
//! [`Sim::serve_api`](crate::sim::Sim::serve_api), which authenticates, rate-limits and injects
//! faults before the endpoint runs; input errors are answered after those checks, as the
//! provider does.

mod comments;
mod history;
mod messages;
mod reply;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use crate::sim::Sim;

/// Routes of the provider surface, relative to `/api`.
pub(crate) fn router() -> Router<Arc<Sim>> {
    Router::new()
        .route("/history", get(history::list_history))
        .route("/history/{platform}", get(history::list_platform_history))
        .route("/comments", get(comments::list_comments_by_query))
        .route("/comments/{id}", get(comments::list_comments))
        .route("/comments/reply", post(reply::create_reply_in_body))
        .route("/comments/reply/{comment_id}", post(reply::create_reply))
        .route(
            "/messages/{platform}",
            get(messages::list_messages).post(messages::send_message),
        )
}
