//! The provider operations and how each one is put on the wire (paths, query parameters,
//! bodies), following AYRSHARE.md.

use crate::domain::Platform;
use reqwest::Method;
use serde_json::{Value, json};
use std::fmt;

/// A provider operation, as named in logs, metrics and errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `GET /history`: posts made through Ayrshare.
    History,
    /// `GET /history/:platform`: the network's own posts.
    PlatformHistory,
    /// `GET /comments/:id`: the comments of a post (or the replies below a comment).
    Comments,
    /// `POST /comments/reply/:commentId`: our reply to a comment.
    Reply,
    /// `GET /messages/:platform`: direct messages.
    Messages,
    /// `POST /messages/:platform`: our direct message.
    SendMessage,
    /// `GET /user`: the profile and its connected accounts.
    User,
    /// `GET|POST|DELETE /hook/webhook`: the profile's webhook registrations.
    Webhook,
}

impl Endpoint {
    /// The name used in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::History => "history",
            Endpoint::PlatformHistory => "platform_history",
            Endpoint::Comments => "comments",
            Endpoint::Reply => "reply",
            Endpoint::Messages => "messages",
            Endpoint::SendMessage => "send_message",
            Endpoint::User => "user",
            Endpoint::Webhook => "webhook",
        }
    }

    /// Whether the operation changes something at the provider. Writes have no idempotency
    /// key there, so one that may have reached the provider is never repeated blindly.
    pub fn is_write(self) -> bool {
        matches!(self, Endpoint::Reply | Endpoint::SendMessage)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which posts `GET /history` lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Posts created in the last N days (0 = all).
    pub last_days: u32,
    /// At most this many posts (the provider's default is 25, its maximum 1000).
    pub limit: Option<u32>,
}

/// Whose comments `GET /comments` reads: the two id forms of a post, or a comment's replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommentsTarget {
    /// By Ayrshare Post ID (`/comments/:id`).
    AyrsharePost(String),
    /// By Social Post ID (`?searchPlatformId=true&platform=<p>`).
    SocialPost(String),
    /// The replies below a Social Comment ID (`?commentId=true&platform=<p>`).
    SocialComment(String),
}

/// Which comment a reply answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyTarget {
    /// By Social Comment ID (`searchPlatformId: true`): any comment on the network.
    SocialComment(String),
    /// By Ayrshare Comment ID: only comments made through Ayrshare have one.
    AyrshareComment(String),
}

/// Which direct messages `GET /messages/:platform` lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessagesQuery {
    /// Only this conversation.
    pub conversation_id: Option<String>,
    /// At most this many (the newest); on X, per page.
    pub limit: Option<u32>,
    /// The page after this cursor (the previous page's `next`; X only).
    pub next: Option<String>,
}

/// A direct message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// The customer's id on the network (the `senderId` of their messages).
    pub recipient_id: String,
    /// The text.
    pub message: String,
    /// Images or videos to attach.
    pub media_urls: Vec<String>,
}

/// One provider request, ready to be sent any number of times.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) endpoint: Endpoint,
    pub(crate) platform: Platform,
    pub(crate) method: Method,
    pub(crate) path: Vec<String>,
    pub(crate) query: Vec<(&'static str, String)>,
    pub(crate) body: Option<Value>,
}

impl Request {
    fn get(endpoint: Endpoint, platform: Platform, path: &[&str]) -> Self {
        Request {
            endpoint,
            platform,
            method: Method::GET,
            path: path.iter().map(|s| (*s).to_owned()).collect(),
            query: Vec::new(),
            body: None,
        }
    }

    fn param(mut self, key: &'static str, value: impl ToString) -> Self {
        self.query.push((key, value.to_string()));
        self
    }

    fn param_opt(self, key: &'static str, value: Option<impl ToString>) -> Self {
        match value {
            Some(value) => self.param(key, value),
            None => self,
        }
    }

    /// `GET /history?lastDays=N&platform=<p>`. The singular `platform` is what the
    /// predecessor found reliable (array parameters were not).
    pub(crate) fn history(platform: Platform, query: &HistoryQuery) -> Self {
        Request::get(Endpoint::History, platform, &["history"])
            .param("lastDays", query.last_days)
            .param("platform", platform)
            .param_opt("limit", query.limit)
    }

    /// `GET /user` (the platform only labels the call and picks its budget and breaker).
    pub(crate) fn user(platform: Platform) -> Self {
        Request::get(Endpoint::User, platform, &["user"])
    }

    /// `GET /hook/webhook` (the platform labels the call, as for [`Request::user`]).
    pub(crate) fn webhooks(platform: Platform) -> Self {
        Request::get(Endpoint::Webhook, platform, &["hook", "webhook"])
    }

    /// `POST /hook/webhook` `{"action", "url", "secret"}`: registers `url` for `action`,
    /// replacing the profile's earlier URL for it (the same URL again changes nothing).
    pub(crate) fn register_webhook(
        platform: Platform,
        action: &str,
        url: &str,
        secret: &str,
    ) -> Self {
        Request {
            method: Method::POST,
            body: Some(json!({ "action": action, "url": url, "secret": secret })),
            ..Request::webhooks(platform)
        }
    }

    /// `DELETE /hook/webhook` `{"action"}`.
    pub(crate) fn delete_webhook(platform: Platform, action: &str) -> Self {
        Request {
            method: Method::DELETE,
            body: Some(json!({ "action": action })),
            ..Request::webhooks(platform)
        }
    }

    /// `GET /history/:platform`.
    pub(crate) fn platform_history(platform: Platform) -> Self {
        Request::get(
            Endpoint::PlatformHistory,
            platform,
            &["history", platform.as_str()],
        )
    }

    /// `GET /comments/:id`, with the flags of the id form.
    pub(crate) fn comments(platform: Platform, target: &CommentsTarget) -> Self {
        match target {
            CommentsTarget::AyrsharePost(id) => {
                Request::get(Endpoint::Comments, platform, &["comments", id])
            }
            CommentsTarget::SocialPost(id) => {
                Request::get(Endpoint::Comments, platform, &["comments", id])
                    .param("searchPlatformId", true)
                    .param("platform", platform)
            }
            CommentsTarget::SocialComment(id) => {
                Request::get(Endpoint::Comments, platform, &["comments", id])
                    .param("commentId", true)
                    .param("platform", platform)
            }
        }
    }

    /// `POST /comments/reply/:commentId` with `{"comment", "platforms": [p]}` (and
    /// `searchPlatformId: true` for a Social Comment ID).
    pub(crate) fn reply(platform: Platform, target: &ReplyTarget, text: &str) -> Self {
        let (id, by_social_id) = match target {
            ReplyTarget::SocialComment(id) => (id, true),
            ReplyTarget::AyrshareComment(id) => (id, false),
        };
        let mut body = json!({ "comment": text, "platforms": [platform] });
        if by_social_id {
            body["searchPlatformId"] = json!(true);
        }
        Request {
            endpoint: Endpoint::Reply,
            platform,
            method: Method::POST,
            path: vec!["comments".to_owned(), "reply".to_owned(), id.clone()],
            query: Vec::new(),
            body: Some(body),
        }
    }

    /// `GET /messages/:platform`.
    pub(crate) fn messages(platform: Platform, query: &MessagesQuery) -> Self {
        Request::get(
            Endpoint::Messages,
            platform,
            &["messages", platform.as_str()],
        )
        .param_opt("conversationId", query.conversation_id.as_ref())
        .param_opt("limit", query.limit)
        .param_opt("next", query.next.as_ref())
    }

    /// `POST /messages/:platform` with `{"recipientId", "message", "mediaUrls"?}`.
    pub(crate) fn send_message(platform: Platform, message: &OutgoingMessage) -> Self {
        let mut body = json!({
            "recipientId": message.recipient_id,
            "message": message.message,
        });
        if !message.media_urls.is_empty() {
            body["mediaUrls"] = json!(message.media_urls);
        }
        Request {
            endpoint: Endpoint::SendMessage,
            platform,
            method: Method::POST,
            path: vec!["messages".to_owned(), platform.as_str().to_owned()],
            query: Vec::new(),
            body: Some(body),
        }
    }
}
