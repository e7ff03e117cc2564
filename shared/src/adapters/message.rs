//! Direct messages (facebook, instagram, twitter): the customer's messages are read into
//! mentions, and answered through `POST /messages/:platform` to their sender. A reply is found
//! again among the conversation's messages: one we `sent` to that sender with the same text,
//! not before the reply was requested.

use super::{Fetched, NewMention, ReplyAdapter, SentReply, not_before, same_text};
use crate::db::entities::{mentions, replies};
use crate::domain::{MentionType, Platform};
use crate::provider::Ayrshare;
use crate::provider::{
    Author, Endpoint, Failure, Message, MessageAction, MessagesQuery, OutgoingMessage,
    ProviderError,
};
use chrono::{DateTime, Utc};

/// Direct messages: the customer's are read as mentions of type [`MentionType::Message`]
/// (the conversation id is the provider post ref, the sender the author; our own `sent`
/// messages are skipped) and answered with a direct message to their sender.
#[derive(Debug, Clone, Copy, Default)]
pub struct MessageAdapter;

impl MessageAdapter {
    /// Reads `query` through `api` (the platform's operations), following its
    /// pages. Messaging not enabled for the platform is the provider's 403
    /// ([`ProviderError::is_messaging_disabled`]), returned as is for the caller to record.
    pub async fn fetch(
        &self,
        api: &Ayrshare,
        query: &MessagesQuery,
    ) -> Result<Fetched, ProviderError> {
        let read = read_pages(api, query, |_| false).await?;
        Ok(map_messages(api.key().platform, read))
    }
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
impl ReplyAdapter for MessageAdapter {
    async fn send(
        &self,
        api: &Ayrshare,
        mention: &mentions::Model,
        content: &str,
    ) -> Result<SentReply, ProviderError> {
        let message = OutgoingMessage {
            recipient_id: recipient(mention)?.to_owned(),
            message: content.to_owned(),
            media_urls: Vec::new(),
        };
        let sent = api.send_message(&message).await?;
        Ok(SentReply {
            provider_post_id: mention.provider_post_ref.clone(),
            provider_comment_id: sent.message_id,
            raw: sent.raw,
        })
    }

    async fn find_sent(
        &self,
        api: &Ayrshare,
        mention: &mentions::Model,
        reply: &replies::Model,
        our_account: Option<&str>,
    ) -> Result<Option<SentReply>, ProviderError> {
        let recipient = recipient(mention)?;
        let not_before = not_before(reply);
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
        let read = read_pages(api, &query, ours).await?;
        Ok(read.messages.into_iter().find(ours).map(|m| SentReply {
            provider_post_id: m.conversation_id.or(mention.provider_post_ref.clone()),
            provider_comment_id: Some(m.id),
            raw: m.raw,
        }))
    }
}

/// The most pages one read follows (X pages its messages; the others answer in one).
pub const MAX_PAGES: usize = 25;

/// Messages read over one or more pages.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadMessages {
    /// Every message of the pages read, newest first (a message may repeat across pages).
    pub messages: Vec<Message>,
    /// The first page's `nextUpdate`.
    pub next_update: Option<DateTime<Utc>>,
}

/// Reads `query` and follows the provider's `next` cursor, at most [`MAX_PAGES`] pages, until
/// there is none or a message satisfies `enough`.
pub async fn read_pages(
    api: &Ayrshare,
    query: &MessagesQuery,
    mut enough: impl FnMut(&Message) -> bool,
) -> Result<ReadMessages, ProviderError> {
    let mut query = query.clone();
    let mut read = ReadMessages {
        messages: Vec::new(),
        next_update: None,
    };
    for n in 0..MAX_PAGES {
        let page = api.messages(&query).await?;
        if n == 0 {
            read.next_update = page.next_update;
        }
        let done = page.messages.iter().any(&mut enough);
        read.messages.extend(page.messages);
        match page.next {
            Some(next) if !done => query.next = Some(next),
            _ => return Ok(read),
        }
    }
    tracing::warn!(
        platform = %api.key().platform,
        pages = MAX_PAGES,
        "direct messages still have more pages; reading the rest next time"
    );
    Ok(read)
}

/// The received messages of `read` as mentions.
pub fn map_messages(platform: Platform, read: ReadMessages) -> Fetched {
    let mentions = read
        .messages
        .into_iter()
        .filter(|m| m.action == MessageAction::Received)
        .map(|m| NewMention {
            mention_type: MentionType::Message,
            platform,
            content: m.text.unwrap_or_default(),
            platform_ref: m.id,
            provider_post_ref: m.conversation_id,
            parent_ref: None,
            author: Author {
                id: m.sender_id,
                name: m.sender_name,
                handle: None,
            },
            posted_at: m.created,
            raw: m.raw,
        })
        .collect();
    Fetched {
        mentions,
        next_update: read.next_update,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::Message;
    use serde_json::json;

    fn message(id: &str, action: MessageAction) -> Message {
        Message {
            id: id.to_owned(),
            conversation_id: Some("conv".to_owned()),
            action,
            sender_id: Some("customer".to_owned()),
            recipient_id: Some("us".to_owned()),
            sender_name: Some("Ann".to_owned()),
            text: Some("hello".to_owned()),
            created: None,
            raw: json!({}),
        }
    }

    #[test]
    fn received_messages_become_mentions_and_our_sent_ones_are_skipped() {
        let read = ReadMessages {
            messages: vec![
                message("m2", MessageAction::Sent),
                message("m1", MessageAction::Received),
            ],
            next_update: None,
        };
        let fetched = map_messages(Platform::Facebook, read);
        assert_eq!(fetched.mentions.len(), 1);
        let m = &fetched.mentions[0];
        assert_eq!(m.platform_ref, "m1");
        assert_eq!(m.mention_type, MentionType::Message);
        assert_eq!(m.provider_post_ref.as_deref(), Some("conv"));
        assert_eq!(m.author.id.as_deref(), Some("customer"));
        assert_eq!(m.author.name.as_deref(), Some("Ann"));
    }
}
