//! Replies, once and only once (DESIGN §8): everything both sides of the reply path share.
//!
//! - [`request`]: the API side. One transaction locks the mention, inserts the `replies` row
//!   (the partial unique index `replies_one_live_per_mention_key` decides which of concurrent
//!   requests wins), moves the mention to `reply_attempt` and enqueues the reply task.
//!   Its `Idempotency-Key` is handled by [`crate::db::idempotency`].
//! - [`protocol`]: the replier's write-ahead and outcome transitions of a `replies` row, each
//!   with its audit row, fenced by the status and attempt count they were decided on.
//!
//! Audit rows of the reply path name the mention (`entity_type = "mention"`) with the reply
//! id in their payload, so a mention's trail (`GET /v1/mentions/{id}/audit`) tells the
//! reply's whole story.

pub mod protocol;
pub mod request;

pub use request::{ReplyRequest, RequestError, Requested, request_reply};

use crate::adapters::normalized_content;
use crate::domain::{JobKind, Platform, ReplyId};
use crate::outbox::TaskPayload;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The payload of a reply task: which reply to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplyTask {
    /// The `replies` row.
    pub reply_id: ReplyId,
}

impl TaskPayload for ReplyTask {
    const KIND: JobKind = JobKind::Reply;

    /// One active task per reply.
    fn dedup_key(&self, _: Platform) -> String {
        format!("reply:{}", self.reply_id)
    }

    fn subject(&self) -> Option<uuid::Uuid> {
        Some(self.reply_id.into())
    }
}

/// `content_hash` of a reply: hex SHA-256 of its text.
pub fn content_hash(content: &str) -> String {
    hex::encode(Sha256::digest(content.as_bytes()))
}

/// Whether two reply texts say the same thing, compared the way the networks may alter them
/// ([`normalized_content`]).
pub fn same_content(a: &str, b: &str) -> bool {
    normalized_content(a) == normalized_content(b)
}
