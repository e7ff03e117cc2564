//! Adapters between the provider's shapes and our mentions (DESIGN §3, §6.4), one file per
//! mention type holding both sides: reading mentions from the provider and answering them
//! ([`ReplyAdapter`]). A new mention type is one new file here and one arm in [`for_type`].
//!
//! - [`comment::CommentAdapter`] reads a post's comments: nested `replies` are flattened with
//!   their parent kept ([`NewMention::parent_ref`]); X/Twitter's flat list is split by
//!   `referencedTweets` into top-level comments and replies; a post without comments (404) is
//!   an empty page. It answers a comment (or a reply in a thread) by Social Comment ID and
//!   finds its reply again among the replies below that comment.
//! - [`message::MessageAdapter`] reads direct messages (facebook, instagram, twitter): the
//!   customer's `received` messages become mentions of type `message`, with the conversation
//!   id as provider post ref and the sender as author; our own `sent` ones are skipped. It
//!   answers the sender with a direct message and finds it again in the conversation.
//!
//! Both sides recognise our own replies in a thread with the one rule of [`ExpectedReply`],
//! so ingestion (which links them instead of storing them as inbound mentions) and the
//! replier's reconciliation (which looks for a reply that may have been sent) never disagree.

pub mod comment;
pub mod message;

use crate::db::entities::{mentions, replies};
use crate::domain::{MentionType, Platform};
use crate::provider::Ayrshare;
use crate::provider::{Author, ProviderError};
use chrono::{DateTime, Utc};
use serde_json::Value;

pub use comment::{CommentAdapter, PostRef};
pub use message::MessageAdapter;

/// The adapter that answers a mention of `mention_type`.
pub fn for_type(mention_type: MentionType) -> &'static dyn ReplyAdapter {
    match mention_type {
        MentionType::Comment | MentionType::Reply => &CommentAdapter,
        MentionType::Message => &MessageAdapter,
    }
}

/// A mention as read from the provider, in the common format of DESIGN §3, before it is
/// stored (ids and triage fields are the database's).
#[derive(Debug, Clone, PartialEq)]
pub struct NewMention {
    /// Comment, reply (within a thread) or message.
    pub mention_type: MentionType,
    /// Where it was posted.
    pub platform: Platform,
    /// The text.
    pub content: String,
    /// The network's id of the comment or message (Social Comment ID, message id).
    pub platform_ref: String,
    /// Ayrshare Post ID for comments and replies, conversation id for messages.
    pub provider_post_ref: Option<String>,
    /// The `platform_ref` of the comment this one answers (threads); resolved to
    /// `mentions.parent_id` when stored.
    pub parent_ref: Option<String>,
    /// Who wrote it.
    pub author: Author,
    /// When it was written.
    pub posted_at: Option<DateTime<Utc>>,
    /// The provider's item as received (for comments, without the nested `replies`).
    pub raw: Value,
}

/// What one fetch read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Fetched {
    /// The mentions, parents before their replies.
    pub mentions: Vec<NewMention>,
    /// When the provider refreshes this data next (`nextUpdate`): no use reading before.
    pub next_update: Option<DateTime<Utc>>,
}

/// What the provider says about a reply we sent, or one found when reading a thread back.
#[derive(Debug, Clone, PartialEq)]
pub struct SentReply {
    /// The thread's Ayrshare Post ID (or the conversation for messages), if known.
    pub provider_post_id: Option<String>,
    /// Our reply's Social Comment ID (or message id), if known.
    pub provider_comment_id: Option<String>,
    /// The provider's answer or item as received.
    pub raw: Value,
}

/// The replying side of one mention type.
#[async_trait::async_trait]
pub trait ReplyAdapter: Send + Sync {
    /// Sends `content` in answer to `mention`, once: an
    /// [`ProviderError::OutcomeUnknown`] means "reconcile with
    /// [`ReplyAdapter::find_sent`] before sending again".
    async fn send(
        &self,
        api: &Ayrshare,
        mention: &mentions::Model,
        content: &str,
    ) -> Result<SentReply, ProviderError>;

    /// Reads the thread (or conversation) of `mention` back and looks for `reply`, posted by
    /// `our_account` (its id on the network, when known; see [`ExpectedReply`]); `None` if it
    /// is not (yet) visible.
    async fn find_sent(
        &self,
        api: &Ayrshare,
        mention: &mentions::Model,
        reply: &replies::Model,
        our_account: Option<&str>,
    ) -> Result<Option<SentReply>, ProviderError>;
}

/// Text compared the way the networks may alter it: surrounding whitespace dropped and inner
/// runs of whitespace collapsed to one space.
pub fn normalized_content(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether `posted` (as a network shows it) says `content`: the same after
/// [`normalized_content`], also once the `@handle` mentions a network puts in front of a
/// reply (X does) are taken off.
pub fn same_text(posted: &str, content: &str) -> bool {
    let wanted = normalized_content(content);
    let posted = normalized_content(posted);
    if posted == wanted {
        return true;
    }
    let mut rest = posted.as_str();
    while let Some(after) = rest.strip_prefix('@') {
        match after.split_once(' ') {
            Some((_, tail)) => rest = tail,
            None => return false,
        }
        if rest == wanted {
            return true;
        }
    }
    false
}

/// How long before its request a reply may appear to have been posted, given the clocks of
/// the provider and ours.
pub const CLOCK_SKEW: chrono::TimeDelta = chrono::TimeDelta::minutes(2);

/// The earliest a `reply` may appear to have been posted: its request less [`CLOCK_SKEW`].
fn not_before(reply: &replies::Model) -> DateTime<Utc> {
    reply.created_at.with_timezone(&Utc) - CLOCK_SKEW
}

/// Our reply as it should look in a thread. A candidate read from the thread is it when it
/// answers `parent_ref`, says `content`
/// ([`same_text`]), is written by our account (when known) and was not posted before
/// `not_before` (when known). So a customer who writes the same words under the same comment,
/// or an earlier reply of ours with the same words, is never taken for it.
#[derive(Debug, Clone, Copy)]
pub struct ExpectedReply<'a> {
    /// The `platform_ref` of the comment answered.
    pub parent_ref: &'a str,
    /// What we asked to post.
    pub content: &'a str,
    /// Our account's id on the network (`GET /user`), when known.
    pub author_id: Option<&'a str>,
    /// The reply's request less [`CLOCK_SKEW`], when known.
    pub not_before: Option<DateTime<Utc>>,
}

impl ExpectedReply<'_> {
    /// Whether `candidate` is this reply.
    pub fn matches(&self, candidate: &NewMention) -> bool {
        candidate.parent_ref.as_deref() == Some(self.parent_ref)
            && same_text(&candidate.content, self.content)
            && self
                .author_id
                .is_none_or(|ours| candidate.author.id.as_deref() == Some(ours))
            && self
                .not_before
                .zip(candidate.posted_at)
                .is_none_or(|(earliest, posted)| posted >= earliest)
    }
}
