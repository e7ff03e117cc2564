//! The reply side of the provider adapters ([`ReplyAdapter`]), one implementation per
//! mention type that can be answered:
//!
//! - [`CommentReplies`] answers a comment (or a reply in a thread) through the comments reply
//!   endpoint by Social Comment ID (`searchPlatformId: true`), and finds a reply again by
//!   reading the replies below that comment (`GET /comments/:id?commentId=true`), recognised
//!   with the ingestion's own rule ([`ExpectedReply`]) so both sides always agree;
//! - [`MessageReplies`] answers a direct message through `POST /messages/:platform` to its
//!   sender, and finds a reply again among the conversation's messages: one we `sent` to that
//!   sender with the same text, not before the reply was requested.

use crate::db::entities::{mentions, replies};
use crate::domain::MentionType;
use crate::provider::adapters::comment::{self, PostRef};
use crate::provider::adapters::message;
use crate::provider::adapters::{CLOCK_SKEW, ExpectedReply, ReplyAdapter, SentReply, same_text};
use crate::provider::{
    CommentsTarget, Endpoint, Failure, Message, MessageAction, MessagesQuery, OutgoingMessage,
    ProviderError, ReplyTarget,
};
use crate::resilience::Chain;

/// The reply side for a mention of `mention_type`.
pub fn for_type(mention_type: MentionType) -> &'static dyn ReplyAdapter {
    match mention_type {
        MentionType::Comment | MentionType::Reply => &CommentReplies,
        MentionType::Message => &MessageReplies,
    }
}

/// Replies to comments and to replies in a thread.
#[derive(Debug, Clone, Copy, Default)]
pub struct CommentReplies;

#[async_trait::async_trait]
impl ReplyAdapter for CommentReplies {
    fn mention_types(&self) -> &'static [MentionType] {
        &[MentionType::Comment, MentionType::Reply]
    }

    async fn send(
        &self,
        chain: &Chain,
        mention: &mentions::Model,
        content: &str,
    ) -> Result<SentReply, ProviderError> {
        let target = ReplyTarget::SocialComment(mention.platform_ref.clone());
        let receipt = chain.reply(&target, content).await?;
        Ok(SentReply {
            provider_post_id: receipt.post_id.or(mention.provider_post_ref.clone()),
            provider_comment_id: receipt.social_comment_id.or(receipt.comment_id),
            raw: receipt.raw,
        })
    }

    async fn find_sent(
        &self,
        chain: &Chain,
        mention: &mentions::Model,
        reply: &replies::Model,
        our_account: Option<&str>,
    ) -> Result<Option<SentReply>, ProviderError> {
        let parent = mention.platform_ref.as_str();
        let expected = ExpectedReply {
            parent_ref: parent,
            content: &reply.content,
            author_id: our_account,
            not_before: Some(requested(reply) - CLOCK_SKEW),
        };
        let target = CommentsTarget::SocialComment(parent.to_owned());
        let page = match chain.comments(&target).await {
            Ok(page) => page,
            // Nothing below the comment yet: the documented "404 means no comments".
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let post = PostRef {
            ayrshare_post_id: page
                .post_id
                .clone()
                .or(mention.provider_post_ref.clone())
                .unwrap_or_default(),
            social_post_id: None,
        };
        let fetched = comment::map_page(mention.platform, &post, page);
        Ok(fetched
            .mentions
            .into_iter()
            .map(|mut candidate| {
                // The page lists the replies below `parent` as its top level.
                if candidate.parent_ref.is_none() {
                    candidate.parent_ref = Some(parent.to_owned());
                }
                candidate
            })
            .find(|candidate| expected.matches(candidate))
            .map(|ours| SentReply {
                provider_post_id: ours.provider_post_ref,
                provider_comment_id: Some(ours.platform_ref),
                raw: ours.raw,
            }))
    }
}

/// Direct messages answering a customer's message.
#[derive(Debug, Clone, Copy, Default)]
pub struct MessageReplies;

/// When `reply` was requested.
fn requested(reply: &replies::Model) -> chrono::DateTime<chrono::Utc> {
    reply.created_at.with_timezone(&chrono::Utc)
}

/// The customer to answer: the sender of the message mention.
fn recipient(mention: &mentions::Model) -> Result<&str, ProviderError> {
    let refuse = |message: String| ProviderError::Rejected {
        endpoint: Endpoint::SendMessage,
        failure: Failure::Status {
            status: 400,
            code: None,
            message,
        },
    };
    if !mention.platform.has_messages() {
        return Err(refuse(format!(
            "{} has no direct messages",
            mention.platform
        )));
    }
    mention
        .author_id
        .as_deref()
        .ok_or_else(|| refuse("the message has no sender to answer".to_owned()))
}

#[async_trait::async_trait]
impl ReplyAdapter for MessageReplies {
    fn mention_types(&self) -> &'static [MentionType] {
        &[MentionType::Message]
    }

    async fn send(
        &self,
        chain: &Chain,
        mention: &mentions::Model,
        content: &str,
    ) -> Result<SentReply, ProviderError> {
        let message = OutgoingMessage {
            recipient_id: recipient(mention)?.to_owned(),
            message: content.to_owned(),
            media_urls: Vec::new(),
        };
        let sent = chain.send_message(&message).await?;
        Ok(SentReply {
            provider_post_id: mention.provider_post_ref.clone(),
            provider_comment_id: sent.message_id,
            raw: sent.raw,
        })
    }

    async fn find_sent(
        &self,
        chain: &Chain,
        mention: &mentions::Model,
        reply: &replies::Model,
        our_account: Option<&str>,
    ) -> Result<Option<SentReply>, ProviderError> {
        let recipient = recipient(mention)?;
        let not_before = requested(reply) - CLOCK_SKEW;
        let query = MessagesQuery {
            conversation_id: mention.provider_post_ref.clone(),
            ..MessagesQuery::default()
        };
        let ours = |m: &Message| {
            m.action == MessageAction::Sent
                && m.recipient_id.as_deref() == Some(recipient)
                && our_account.is_none_or(|ours| m.sender_id.as_deref() == Some(ours))
                && m.created.is_none_or(|created| created >= not_before)
                && m.text
                    .as_deref()
                    .is_some_and(|text| same_text(text, &reply.content))
        };
        // Newest first: the pages are followed until the reply is found or the conversation
        // is covered.
        let read = message::read_pages(chain, &query, ours).await?;
        Ok(read.messages.into_iter().find(ours).map(|m| SentReply {
            provider_post_id: m.conversation_id.or(mention.provider_post_ref.clone()),
            provider_comment_id: Some(m.id),
            raw: m.raw,
        }))
    }
}
