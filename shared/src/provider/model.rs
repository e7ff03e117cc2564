//! What the provider answers, read tolerantly: unknown fields are ignored, optional fields are
//! optional, ids may come as strings or numbers, and dates may be ISO strings or Firestore's
//! `{"_seconds", "_nanoseconds", "utc"}` objects. Each item keeps its raw JSON (`raw`) for
//! storage and for fields this module does not name. Items without the one field that makes
//! them usable (an id) are skipped.

use super::MAX_NEXT_UPDATE;
use crate::domain::{Platform, saturating_add};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};

/// A post made through Ayrshare, from `GET /history`.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPost {
    /// Ayrshare Post ID (what the comments endpoint takes).
    pub id: String,
    /// `success`, `error`, `pending`, …
    pub status: Option<String>,
    /// The text of the post.
    pub text: Option<String>,
    /// The platforms it was sent to.
    pub platforms: Vec<String>,
    /// Where it landed on each platform.
    pub post_ids: Vec<SocialPostRef>,
    /// When it was created (`created`, or the older `createDate`).
    pub created: Option<DateTime<Utc>>,
    /// When it was scheduled for.
    pub schedule_date: Option<DateTime<Utc>>,
    /// How many comments the network counts on the post, where its per-network fields say
    /// (LinkedIn `commentCount`, Bluesky `replyCount`, X `publicMetrics.reply_count`); only
    /// for an item of one platform, whose count is that post's.
    pub comment_count: Option<u32>,
    /// The item as received.
    pub raw: Value,
}

impl HistoryPost {
    /// The Social Post ID on `platform`, if the post landed there.
    pub fn social_post_id(&self, platform: Platform) -> Option<&str> {
        self.post_ids
            .iter()
            .find(|p| p.platform == platform.as_str())
            .and_then(|p| p.id.as_deref())
    }
}

/// One entry of a history item's `postIds`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocialPostRef {
    /// The platform name as the provider wrote it.
    pub platform: String,
    /// The Social Post ID (for X threads, the first tweet's id when `id` is missing).
    pub id: Option<String>,
    /// `success` or `error`.
    pub status: Option<String>,
    /// The post's address on the network.
    pub post_url: Option<String>,
}

/// The network's own posts, from `GET /history/:platform`.
#[derive(Debug, Clone, PartialEq)]
pub struct PlatformHistory {
    /// The posts, as the network lists them.
    pub posts: Vec<NativePost>,
    /// When the provider last refreshed this data.
    pub last_updated: Option<DateTime<Utc>>,
    /// When it will refresh it next.
    pub next_update: Option<DateTime<Utc>>,
    /// Cursor of the next page (`meta.pagination.next`), if any.
    pub next: Option<String>,
}

/// A post as the network lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct NativePost {
    /// Social Post ID.
    pub id: String,
    /// When it was created.
    pub created: Option<DateTime<Utc>>,
    pub text: Option<String>,
    /// Its address on the network.
    pub post_url: Option<String>,
    /// The item as received (metrics included).
    pub raw: Value,
}

/// The comments of one post (or the replies below one comment), from `GET /comments`.
#[derive(Debug, Clone, PartialEq)]
pub struct CommentsPage {
    /// Ayrshare Post ID, when the provider says.
    pub post_id: Option<String>,
    /// Top-level comments with their nested replies (on X: one flat list, see
    /// [`Comment::referenced_tweets`]).
    pub comments: Vec<Comment>,
    /// When the provider last refreshed this data.
    pub last_updated: Option<DateTime<Utc>>,
    /// When it will refresh it next (the earliest useful time to read again).
    pub next_update: Option<DateTime<Utc>>,
}

/// One comment.
#[derive(Debug, Clone, PartialEq)]
pub struct Comment {
    /// Social Comment ID.
    pub comment_id: String,
    /// The platform whose list it came from.
    pub platform: Platform,
    pub text: String,
    /// When it was written.
    pub created: Option<DateTime<Utc>>,
    /// Social Post ID of the post it belongs to.
    pub post_id: Option<String>,
    /// Who wrote it, from whichever fields the platform uses.
    pub author: Author,
    /// Replies nested below it (every platform but X).
    pub replies: Vec<Comment>,
    /// On X, what this tweet answers (a reply to a comment points at that comment).
    pub referenced_tweets: Vec<ReferencedTweet>,
    /// The comment as received, without its `replies` (they are in [`Comment::replies`]).
    pub raw: Value,
}

/// The author of a comment, normalized over the platforms' field names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Author {
    /// The network's id of the author (`from.id`, `user.id`, `userId`, `authorId`).
    pub id: Option<String>,
    /// Display name (`from.name`, `displayName`, `name`).
    pub name: Option<String>,
    /// Handle (`from.username`, `username`, `userName`).
    pub handle: Option<String>,
}

/// An entry of an X comment's `referencedTweets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferencedTweet {
    /// `replied_to`, `quoted`, …
    pub kind: String,
    /// The tweet (post or comment) it refers to.
    pub id: String,
}

/// The provider's confirmation of a reply, from `POST /comments/reply`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplyReceipt {
    /// Ayrshare Post ID of the thread.
    pub post_id: Option<String>,
    /// Ayrshare Comment ID of the new reply.
    pub comment_id: Option<String>,
    /// Social Comment ID of the new reply.
    pub social_comment_id: Option<String>,
    /// Social Comment ID of the comment replied to.
    pub source_comment_id: Option<String>,
    /// The answer as received.
    pub raw: Value,
}

/// Direct messages, from `GET /messages/:platform`.
#[derive(Debug, Clone, PartialEq)]
pub struct MessagesPage {
    /// The messages, as listed.
    pub messages: Vec<Message>,
    /// With `conversationsOnly`: the conversations.
    pub conversation_ids: Vec<String>,
    /// When the provider last refreshed this data.
    pub last_updated: Option<DateTime<Utc>>,
    /// When it will refresh it next.
    pub next_update: Option<DateTime<Utc>>,
    /// Cursor of the next page (X only), if any.
    pub next: Option<String>,
}

/// Whether a direct message came from the customer or from us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageAction {
    /// From the customer.
    Received,
    /// From us.
    Sent,
    /// Anything else the provider may say.
    Other(String),
}

/// One direct message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The message id.
    pub id: String,
    /// The conversation it belongs to.
    pub conversation_id: Option<String>,
    /// Received or sent.
    pub action: MessageAction,
    /// Who sent it.
    pub sender_id: Option<String>,
    /// Who received it.
    pub recipient_id: Option<String>,
    /// The sender's name (`senderDetails.name`), for received messages.
    pub sender_name: Option<String>,
    pub text: Option<String>,
    /// When it was sent.
    pub created: Option<DateTime<Utc>>,
    /// The message as received (attachments, reactions…).
    pub raw: Value,
}

/// One of the profile's connected accounts (`GET /user`, `displayNames[]`): the account our
/// replies and messages are posted as on that network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectedAccount {
    /// The platform name as the provider wrote it.
    pub platform: String,
    /// The network's id of the account (what comments carry as their author's id).
    pub id: Option<String>,
    /// Its handle.
    pub username: Option<String>,
}

/// The provider's confirmation of a direct message, from `POST /messages/:platform`.
#[derive(Debug, Clone, PartialEq)]
pub struct SentMessage {
    pub recipient_id: Option<String>,
    /// The new message's id.
    pub message_id: Option<String>,
    /// The text as sent.
    pub message: Option<String>,
    /// The answer as received.
    pub raw: Value,
}

/// A point in time as the provider writes it: an ISO 8601 string (with or without zone; UTC
/// assumed without), a `{"_seconds", "_nanoseconds"}` object (or its `utc` string), or epoch
/// seconds or milliseconds. Anything else is `None`.
pub fn parse_time(value: &Value) -> Option<DateTime<Utc>> {
    match value {
        Value::String(text) => parse_time_text(text),
        Value::Object(map) => {
            let seconds = map.get("_seconds").or_else(|| map.get("seconds"));
            match seconds.and_then(Value::as_i64) {
                Some(seconds) => {
                    let nanos = map
                        .get("_nanoseconds")
                        .or_else(|| map.get("nanoseconds"))
                        .and_then(Value::as_u64)
                        .and_then(|n| u32::try_from(n).ok())
                        .unwrap_or(0);
                    DateTime::from_timestamp(seconds, nanos)
                }
                None => map.get("utc").and_then(parse_time),
            }
        }
        Value::Number(n) => {
            let n = n.as_i64()?;
            // Epoch milliseconds from 1973 on, else seconds.
            if n.abs() >= 100_000_000_000 {
                DateTime::from_timestamp_millis(n)
            } else {
                DateTime::from_timestamp(n, 0)
            }
        }
        _ => None,
    }
}

fn parse_time_text(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(|t| t.and_utc())
}

/// A string field, also accepting a number (ids are sometimes numeric).
fn text(value: &Value, key: &str) -> Option<String> {
    match value.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn nested_text(value: &Value, outer: &str, key: &str) -> Option<String> {
    value.get(outer).and_then(|inner| text(inner, key))
}

/// `nextUpdate`, at most [`MAX_NEXT_UPDATE`] from now.
fn next_update(body: &Value) -> Option<DateTime<Utc>> {
    let latest = saturating_add(Utc::now(), MAX_NEXT_UPDATE);
    time(body, "nextUpdate").map(|t| t.min(latest))
}

fn time(value: &Value, key: &str) -> Option<DateTime<Utc>> {
    value.get(key).and_then(parse_time)
}

fn array<'v>(value: &'v Value, key: &str) -> &'v [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn texts(value: &Value, key: &str) -> Vec<String> {
    array(value, key)
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// The items of a history answer: `{"history": [...]}`, or a bare array (very old versions).
pub(crate) fn history(body: Value) -> Result<Vec<HistoryPost>, String> {
    let items = match body {
        Value::Array(items) => items,
        Value::Object(mut map) => match map.remove("history") {
            Some(Value::Array(items)) => items,
            Some(_) => return Err("`history` is not a list".to_owned()),
            None => Vec::new(),
        },
        _ => return Err("not a JSON object".to_owned()),
    };
    Ok(items.into_iter().filter_map(history_post).collect())
}

fn history_post(raw: Value) -> Option<HistoryPost> {
    let id = text(&raw, "id")?;
    let post_ids = array(&raw, "postIds")
        .iter()
        .filter_map(|p| {
            Some(SocialPostRef {
                platform: text(p, "platform")?,
                id: text(p, "id").or_else(|| {
                    array(p, "posts")
                        .first()
                        .and_then(|first| text(first, "id"))
                }),
                status: text(p, "status"),
                post_url: text(p, "postUrl"),
            })
        })
        .collect();
    Some(HistoryPost {
        status: text(&raw, "status"),
        text: text(&raw, "post"),
        platforms: texts(&raw, "platforms"),
        post_ids,
        created: time(&raw, "created").or_else(|| time(&raw, "createDate")),
        schedule_date: time(&raw, "scheduleDate"),
        comment_count: comment_count(&raw),
        id,
        raw,
    })
}

/// The network's comment count of a one-platform history item, if it reports one.
fn comment_count(raw: &Value) -> Option<u32> {
    if array(raw, "platforms").len() != 1 {
        return None;
    }
    [
        raw.get("commentCount"),
        raw.get("replyCount"),
        raw.get("publicMetrics").and_then(|m| m.get("reply_count")),
    ]
    .into_iter()
    .flatten()
    .find_map(Value::as_u64)
    .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
}

/// `{status, posts: [...], lastUpdated, nextUpdate, meta.pagination.next}`.
pub(crate) fn platform_history(body: Value) -> Result<PlatformHistory, String> {
    if !body.is_object() {
        return Err("not a JSON object".to_owned());
    }
    let posts = array(&body, "posts")
        .iter()
        .filter_map(|raw| {
            Some(NativePost {
                id: text(raw, "id")?,
                created: time(raw, "created"),
                text: text(raw, "post"),
                post_url: text(raw, "postUrl"),
                raw: raw.clone(),
            })
        })
        .collect();
    Ok(PlatformHistory {
        posts,
        last_updated: time(&body, "lastUpdated"),
        next_update: next_update(&body),
        next: body
            .get("meta")
            .and_then(|m| m.get("pagination"))
            .and_then(|p| text(p, "next")),
    })
}

/// `{status, id, <platform>: [...], lastUpdated, nextUpdate}`: one list per platform of the
/// post; every platform's list is read.
pub(crate) fn comments(body: Value) -> Result<CommentsPage, String> {
    if !body.is_object() {
        return Err("not a JSON object".to_owned());
    }
    let comments = Platform::ALL
        .iter()
        .flat_map(|&platform| {
            array(&body, platform.as_str())
                .iter()
                .filter_map(move |c| comment(platform, c))
        })
        .collect();
    Ok(CommentsPage {
        post_id: text(&body, "id"),
        comments,
        last_updated: time(&body, "lastUpdated"),
        next_update: next_update(&body),
    })
}

fn comment(platform: Platform, raw: &Value) -> Option<Comment> {
    let comment_id = text(raw, "commentId").or_else(|| text(raw, "id"))?;
    let author = Author {
        id: nested_text(raw, "from", "id")
            .or_else(|| nested_text(raw, "user", "id"))
            .or_else(|| text(raw, "userId"))
            .or_else(|| text(raw, "authorId")),
        name: nested_text(raw, "from", "name")
            .or_else(|| text(raw, "displayName"))
            .or_else(|| text(raw, "name")),
        handle: nested_text(raw, "from", "username")
            .or_else(|| text(raw, "username"))
            .or_else(|| text(raw, "userName")),
    };
    let referenced_tweets = array(raw, "referencedTweets")
        .iter()
        .filter_map(|r| {
            Some(ReferencedTweet {
                kind: text(r, "type").unwrap_or_default(),
                id: text(r, "id")?,
            })
        })
        .collect();
    let replies = array(raw, "replies")
        .iter()
        .filter_map(|r| comment(platform, r))
        .collect();
    let mut stored: Map<String, Value> = raw.as_object().cloned().unwrap_or_default();
    stored.remove("replies");
    Some(Comment {
        comment_id,
        platform,
        text: text(raw, "comment").unwrap_or_default(),
        created: time(raw, "created"),
        post_id: text(raw, "postId"),
        author,
        replies,
        referenced_tweets,
        raw: Value::Object(stored),
    })
}

/// `{status, id, commentId, <platform>: {commentId, sourceCommentId, …}}`.
pub(crate) fn reply_receipt(body: Value) -> Result<ReplyReceipt, String> {
    if !body.is_object() {
        return Err("not a JSON object".to_owned());
    }
    let per_platform = Platform::ALL
        .iter()
        .find_map(|p| body.get(p.as_str()).filter(|v| v.is_object()));
    Ok(ReplyReceipt {
        post_id: text(&body, "id"),
        comment_id: text(&body, "commentId"),
        social_comment_id: per_platform.and_then(|p| text(p, "commentId")),
        source_comment_id: per_platform.and_then(|p| text(p, "sourceCommentId")),
        raw: body,
    })
}

/// `{activeSocialAccounts, displayNames: [{platform, id, username, …}], …}`.
pub(crate) fn user(body: Value) -> Result<Vec<ConnectedAccount>, String> {
    if !body.is_object() {
        return Err("not a JSON object".to_owned());
    }
    Ok(array(&body, "displayNames")
        .iter()
        .filter_map(|raw| {
            Some(ConnectedAccount {
                platform: text(raw, "platform")?,
                id: text(raw, "id"),
                username: text(raw, "username"),
            })
        })
        .collect())
}

/// `{status, messages: [...] | conversationIds: [...], lastUpdated, nextUpdate, next?}`.
pub(crate) fn messages(body: Value) -> Result<MessagesPage, String> {
    if !body.is_object() {
        return Err("not a JSON object".to_owned());
    }
    let messages = array(&body, "messages")
        .iter()
        .filter_map(message)
        .collect();
    Ok(MessagesPage {
        messages,
        conversation_ids: texts(&body, "conversationIds"),
        last_updated: time(&body, "lastUpdated"),
        next_update: next_update(&body),
        next: text(&body, "next").or_else(|| {
            body.get("meta")
                .and_then(|m| m.get("pagination"))
                .and_then(|p| text(p, "next"))
        }),
    })
}

fn message(raw: &Value) -> Option<Message> {
    Some(Message {
        id: text(raw, "id")?,
        conversation_id: text(raw, "conversationId"),
        action: match text(raw, "action").as_deref() {
            Some("received") => MessageAction::Received,
            Some("sent") => MessageAction::Sent,
            other => MessageAction::Other(other.unwrap_or_default().to_owned()),
        },
        sender_id: text(raw, "senderId"),
        recipient_id: text(raw, "recipientId"),
        sender_name: nested_text(raw, "senderDetails", "name"),
        text: text(raw, "message"),
        created: time(raw, "created"),
        raw: raw.clone(),
    })
}

/// A webhook delivery of the `comments` or `messages` action (the simulator's README
/// documents the shape): `{action, hookId, platform, …}` with, for comments, `postId`,
/// `socialPostId`, `parentCommentId` and `comment` (as `GET /comments` lists it), for
/// messages `conversationId` and `message` (as `GET /messages` lists it).
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The delivery's id (`hookId`), the same on every attempt (`None`: the body has none).
    pub id: Option<String>,
    pub platform: Platform,
    pub item: Pushed,
}

/// What a delivery brings.
#[derive(Debug, Clone, PartialEq)]
pub enum Pushed {
    /// A comment on a post: its item when complete enough to store (`None`: read the post).
    Comment {
        /// Ayrshare Post ID (`None`: the body says not which post).
        post_id: Option<String>,
        /// Social Comment ID of the comment it answers.
        parent_ref: Option<String>,
        comment: Option<Comment>,
    },
    /// A direct message: its item when complete enough (`None`: read the messages).
    Message { message: Option<Message> },
}

/// The action names of the deliveries taken in.
pub const DELIVERY_ACTIONS: [&str; 2] = ["comments", "messages"];

/// A delivery, or why it cannot be one: not an object, an action other than
/// [`DELIVERY_ACTIONS`], or an unknown platform. What else is missing or unreadable (the id,
/// the post, the item; AYRSHARE.md leaves the shape open) is `None`, for the receiver to
/// read from the provider instead.
pub fn delivery(body: &Value) -> Result<Delivery, String> {
    if !body.is_object() {
        return Err("not a JSON object".to_owned());
    }
    let id = text(body, "hookId").filter(|id| (1..=200).contains(&id.chars().count()));
    let platform: Platform = text(body, "platform")
        .and_then(|p| p.parse().ok())
        .ok_or("no known platform")?;
    let item = match text(body, "action").as_deref() {
        Some("comments") => Pushed::Comment {
            post_id: text(body, "postId"),
            parent_ref: text(body, "parentCommentId"),
            comment: body
                .get("comment")
                .and_then(|c| comment(platform, c))
                .filter(|c| !c.text.is_empty()),
        },
        Some("messages") => Pushed::Message {
            message: body.get("message").and_then(message),
        },
        _ => {
            return Err(format!(
                "an action other than {}",
                DELIVERY_ACTIONS.join(" or ")
            ));
        }
    };
    Ok(Delivery { id, platform, item })
}

/// `GET /hook/webhook` → `{status, <action>: <url>, …, updated}`: the URL of each registered
/// action.
pub(crate) fn webhooks(body: Value) -> Result<std::collections::BTreeMap<String, String>, String> {
    let Value::Object(fields) = body else {
        return Err("not a JSON object".to_owned());
    };
    Ok(fields
        .into_iter()
        .filter(|(key, _)| !matches!(key.as_str(), "status" | "updated" | "refId"))
        .filter_map(|(key, value)| Some((key, value.as_str()?.to_owned())))
        .collect())
}

/// An answer whose content does not matter beyond its success.
pub(crate) fn done(_: Value) -> Result<(), String> {
    Ok(())
}

/// `{status, recipientId, messageId, message}`.
pub(crate) fn sent_message(body: Value) -> Result<SentMessage, String> {
    if !body.is_object() {
        return Err("not a JSON object".to_owned());
    }
    Ok(SentMessage {
        recipient_id: text(&body, "recipientId"),
        message_id: text(&body, "messageId").or_else(|| text(&body, "id")),
        message: text(&body, "message"),
        raw: body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_date_shapes_and_epoch_numbers_are_read() {
        let iso = parse_time(&json!("2022-05-20T17:25:06Z")).expect("iso");
        assert_eq!(iso.timestamp(), 1_653_067_506);
        let firestore = parse_time(&json!({"_seconds": 1604578889, "_nanoseconds": 211000000,
                                           "utc": "2020-11-05T12:21:29Z"}))
        .expect("firestore");
        assert_eq!(firestore.timestamp(), 1_604_578_889);
        assert_eq!(firestore.timestamp_subsec_millis(), 211);
        let utc_only = parse_time(&json!({"utc": "2020-11-05T12:21:29Z"})).expect("utc");
        assert_eq!(utc_only.timestamp(), 1_604_578_889);
        assert_eq!(
            parse_time(&json!("2024-06-06T00:54:28.102")).map(|t| t.timestamp_subsec_millis()),
            Some(102)
        );
        assert_eq!(
            parse_time(&json!(1_604_578_889_000_i64)).map(|t| t.timestamp()),
            Some(1_604_578_889)
        );
        assert_eq!(parse_time(&json!("yesterday")), None);
        assert_eq!(parse_time(&json!(null)), None);
    }

    #[test]
    fn history_items_keep_what_matters_and_ignore_the_rest() {
        let body = json!({"history": [
            {"id": "rhn6", "status": "success", "post": "Hi", "platforms": ["twitter"],
             "postIds": [{"status": "success", "id": 1288968500063775749_u64,
                          "platform": "twitter", "postUrl": "https://x.com/1"},
                         {"platform": "facebook", "posts": [{"id": "fb-1"}]}],
             "createDate": {"_seconds": 1604578889, "_nanoseconds": 0},
             "scheduleDate": "2020-11-05T12:21:29Z", "somethingNew": {"deep": [1, 2]}},
            {"status": "error", "post": "no id, skipped"}
        ]});
        let posts = history(body).expect("valid");
        assert_eq!(posts.len(), 1);
        let post = &posts[0];
        assert_eq!(post.id, "rhn6");
        assert_eq!(
            post.social_post_id(Platform::Twitter),
            Some("1288968500063775749")
        );
        assert_eq!(post.social_post_id(Platform::Facebook), Some("fb-1"));
        assert_eq!(post.created.map(|t| t.timestamp()), Some(1_604_578_889));
        assert!(post.schedule_date.is_some());
        assert_eq!(post.raw["somethingNew"]["deep"][1], 2);
        assert_eq!(
            history(json!([{"id": "old"}])).expect("bare array").len(),
            1
        );
        assert!(history(json!({"history": "nope"})).is_err());
    }

    #[test]
    fn per_network_history_fields_are_kept_and_give_the_comment_count_where_there_is_one() {
        let item = |platform: &str, fields: Value| {
            let mut item = json!({"id": format!("ayr-{platform}"), "platforms": [platform],
                                  "postIds": [{"platform": platform, "id": "p1"}]});
            for (k, v) in fields.as_object().expect("object") {
                item[k] = v.clone();
            }
            item
        };
        let body = json!({"history": [
            item("linkedin", json!({"commentCount": 7, "clickCount": 3, "status": "PUBLISHED",
                                    "engagement": {"likes": 2}, "visibility": "PUBLIC"})),
            item("bluesky", json!({"cid": "bafy", "replyCount": 4, "repostCount": 1})),
            item("twitter", json!({"authorId": "9", "editHistoryTweetIds": ["p1"],
                                   "publicMetrics": {"reply_count": 12, "like_count": 40},
                                   "nonPublicMetrics": {}, "organicMetrics": {"reply_count": 12}})),
            item("instagram", json!({"mediaProductType": "FEED", "mediaType": "IMAGE",
                                     "mediaUrl": "https://cdn/1.jpg", "username": "acme"})),
            item("facebook", json!({"isPopular": false, "sharesCount": 2,
                                    "statusType": "added_photos"})),
            item("tiktok", json!({"mediaType": "video", "videoDuration": 12.5,
                                  "videoViews": 300, "audienceCountries": [],
                                  "impressionSources": [{"impression_source": "For You",
                                                         "percentage": 0.9}]})),
            {"id": "multi", "platforms": ["linkedin", "twitter"], "commentCount": 5}
        ]});
        let counts: Vec<(String, Option<u32>)> = history(body)
            .expect("valid")
            .into_iter()
            .map(|p| (p.id, p.comment_count))
            .collect();
        let expected = [
            ("ayr-linkedin", Some(7)),
            ("ayr-bluesky", Some(4)),
            ("ayr-twitter", Some(12)),
            ("ayr-instagram", None),
            ("ayr-facebook", None),
            ("ayr-tiktok", None),
            ("multi", None),
        ];
        let expected: Vec<(String, Option<u32>)> = expected
            .into_iter()
            .map(|(id, n)| (id.to_owned(), n))
            .collect();
        assert_eq!(counts, expected);
    }

    #[test]
    fn a_next_update_far_ahead_is_believed_for_an_hour_at_most() {
        let body = json!({"status": "success", "id": "ayr-1",
                          "facebook": [{"comment": "a", "commentId": "c1"}],
                          "nextUpdate": "9999-12-31T23:59:59Z"});
        let next = comments(body).expect("valid").next_update.expect("next");
        let hour = chrono::TimeDelta::hours(1);
        assert!(
            next <= Utc::now() + hour && next > Utc::now() + hour - chrono::TimeDelta::minutes(1)
        );
        let soon = Utc::now() + chrono::TimeDelta::minutes(10);
        let body = json!({"status": "success", "messages": [], "nextUpdate": soon.to_rfc3339()});
        let kept = messages(body).expect("valid").next_update.expect("next");
        assert_eq!(
            kept.timestamp(),
            soon.timestamp(),
            "a near one is kept as it is"
        );
    }

    #[test]
    fn comment_authors_are_read_from_every_platform_shape() {
        let body = json!({"status": "success", "id": "ayr-1",
            "facebook": [{"comment": "a", "commentId": "c1", "from": {"name": "Ann", "id": "1"},
                          "replies": [{"comment": "b", "commentId": "c2",
                                       "from": {"name": "Bob", "id": "2"}}]}],
            "twitter": [{"comment": "t", "commentId": 42, "name": "Tim", "userName": "tim",
                         "authorId": "9", "referencedTweets": [{"type": "replied_to", "id": "c1"}]}],
            "nextUpdate": "2024-11-26T12:10:00Z"});
        let page = comments(body).expect("valid");
        assert_eq!(page.post_id.as_deref(), Some("ayr-1"));
        assert_eq!(page.comments.len(), 2);
        let fb = &page.comments[0];
        assert_eq!(fb.platform, Platform::Facebook);
        assert_eq!(fb.author.name.as_deref(), Some("Ann"));
        assert_eq!(fb.replies[0].comment_id, "c2");
        assert!(fb.raw.get("replies").is_none());
        let tw = &page.comments[1];
        assert_eq!(tw.comment_id, "42");
        assert_eq!(tw.author.handle.as_deref(), Some("tim"));
        assert_eq!(tw.author.id.as_deref(), Some("9"));
        assert_eq!(tw.referenced_tweets[0].id, "c1");
        assert!(page.next_update.is_some());
    }
}
