//! The Ayrshare client (see AYRSHARE.md): typed requests and answers for post history (both
//! forms), comments (both id forms), replies and direct messages, and the one error type that
//! classifies every outcome ([`ProviderError`]).
//!
//! [`Client`] makes single attempts. Callers use the typed operations of [`Ayrshare`], which
//! send each request through the resilience guard ([`crate::resilience::Guard`]): the request
//! budget, the circuit breaker and retries.

mod api;
mod client;
mod error;
mod key;
pub(crate) mod model;
mod request;

pub use api::{Ayrshare, PlatformApis};
pub use client::{Client, ClientBuildError, REQUEST_DURATION_METRIC};
pub use error::{DeferReason, Failure, ProviderError};
pub use key::{InvalidProfileId, ProfileId, ProviderKey};
pub use model::{
    Author, Comment, CommentsPage, ConnectedAccount, DELIVERY_ACTIONS, Delivery, HistoryPost,
    Message, MessageAction, MessagesPage, NativePost, PlatformHistory, Pushed, ReferencedTweet,
    ReplyReceipt, SentMessage, SocialPostRef, delivery, parse_time,
};
pub use request::{
    CommentsTarget, Endpoint, HistoryQuery, MessagesQuery, OutgoingMessage, ReplyTarget,
};

pub(crate) use request::Request;

use std::time::Duration;

/// The longest wait a `Retry-After` (or `x-ratelimit-reset`) is believed for; a longer one
/// (or an absurd one) is read as this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(15 * 60);

/// The furthest ahead a `nextUpdate` is believed; a later one is read as this, so one odd
/// answer cannot leave a post unread for days.
pub const MAX_NEXT_UPDATE: Duration = Duration::from_secs(60 * 60);
