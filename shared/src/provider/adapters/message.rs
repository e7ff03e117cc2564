//! The fetching side of direct messages (facebook, instagram, twitter).

use super::{FetchAdapter, Fetched, NewMention};
use crate::domain::{MentionType, Platform};
use crate::provider::{Author, MessageAction, MessagesPage, MessagesQuery, ProviderError};
use crate::resilience::Chain;

/// Reads the customer's direct messages into mentions of type [`MentionType::Message`]: the
/// conversation id is the provider post ref, the sender the author; our own `sent` messages
/// are skipped. Messaging not enabled for the platform is the provider's 403
/// ([`ProviderError::is_messaging_disabled`]), returned as is for the caller to record.
#[derive(Debug, Clone, Copy, Default)]
pub struct MessageAdapter;

#[async_trait::async_trait]
impl FetchAdapter for MessageAdapter {
    type Source = MessagesQuery;

    fn mention_type(&self) -> MentionType {
        MentionType::Message
    }

    async fn fetch(&self, chain: &Chain, query: &MessagesQuery) -> Result<Fetched, ProviderError> {
        let page = chain.messages(query).await?;
        Ok(map_page(chain.key().platform, page))
    }
}

/// The received messages of `page` as mentions.
pub fn map_page(platform: Platform, page: MessagesPage) -> Fetched {
    let mentions = page
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
        next_update: page.next_update,
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
        let page = MessagesPage {
            messages: vec![
                message("m1", MessageAction::Received),
                message("m2", MessageAction::Sent),
            ],
            conversation_ids: Vec::new(),
            last_updated: None,
            next_update: None,
            next: None,
        };
        let fetched = map_page(Platform::Facebook, page);
        assert_eq!(fetched.mentions.len(), 1);
        let m = &fetched.mentions[0];
        assert_eq!(m.platform_ref, "m1");
        assert_eq!(m.mention_type, MentionType::Message);
        assert_eq!(m.provider_post_ref.as_deref(), Some("conv"));
        assert_eq!(m.author.id.as_deref(), Some("customer"));
        assert_eq!(m.author.name.as_deref(), Some("Ann"));
    }
}
