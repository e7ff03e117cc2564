//! JSON shapes of the provider's answers, following AYRSHARE.md field by field.
//!
//! Every comment has `comment`, `commentId` (Social Comment ID), `created`, `platform`,
//! `postId` (Social Post ID) and `likeCount`. The author fields differ per platform, as they
//! do at Ayrshare:
//!
//! | platform | author fields |
//! |---|---|
//! | facebook | `from: {name, id}` |
//! | instagram | `from: {id, username}`, `username` (and `hidden: false`) |
//! | linkedin | `from: {name}`, `user: {id}` (`urn:li:person:…`) |
//! | threads | `username`, `user: {id}` |
//! | tiktok | `username`, `displayName`, `userId` |
//! | twitter | `name`, `userName`, `authorId` |
//! | youtube | `displayName`, `userId` (channel id), `channelUrl` |
//! | bluesky | `displayName`, `userName` (email-like, as observed), `userId` (a DID) |
//! | others | `from: {name, id}` |
//!
//! Every platform but X nests `replies: [...]` (same shape, any depth). X is flat: all tweets
//! of the conversation come at the top level; a reply carries
//! `referencedTweets: [{"type": "replied_to", "id": <parent's Social Comment ID>}]`, and a
//! top-level tweet carries either no `referencedTweets` or one pointing at the post.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::platform::Platform;
use crate::time::{iso_millis, iso_secs};
use crate::world::{Account, Comment, Conversation, Message, Post, World};

/// A comment as `GET /comments` lists it; with `nested`, its visible replies under `replies`.
pub(crate) fn comment(world: &World, idx: usize, now: DateTime<Utc>, nested: bool) -> Value {
    let c = &world.comments[idx];
    let mut obj = Map::new();
    obj.insert("comment".into(), json!(c.text));
    obj.insert("commentId".into(), json!(c.social_id));
    obj.insert("created".into(), json!(iso_secs(c.created)));
    obj.insert("platform".into(), json!(c.platform));
    obj.insert("postId".into(), json!(world.posts[c.post].social_id));
    obj.insert("likeCount".into(), json!(c.like_count));
    author_fields(c.platform, &c.author, &mut obj);
    if c.platform == Platform::Twitter {
        if let Some(referenced) = referenced_tweet(world, c) {
            obj.insert(
                "referencedTweets".into(),
                json!([{"type": "replied_to", "id": referenced}]),
            );
        }
    } else if nested {
        let replies: Vec<Value> = c
            .replies
            .iter()
            .filter(|&&r| world.comments[r].visible_at <= now)
            .map(|&r| comment(world, r, now, true))
            .collect();
        obj.insert("replies".into(), Value::Array(replies));
    }
    Value::Object(obj)
}

fn referenced_tweet<'w>(world: &'w World, c: &Comment) -> Option<&'w str> {
    match c.parent {
        Some(parent) => Some(&world.comments[parent].social_id),
        None if c.refs_post => Some(&world.posts[c.post].social_id),
        None => None,
    }
}

fn author_fields(platform: Platform, a: &Account, obj: &mut Map<String, Value>) {
    let mut put = |k: &str, v: Value| {
        obj.insert(k.to_owned(), v);
    };
    match platform {
        Platform::Instagram => {
            put("from", json!({"id": a.id, "username": a.handle}));
            put("username", json!(a.handle));
            put("hidden", json!(false));
        }
        Platform::Linkedin => {
            put("from", json!({"name": a.name}));
            put("user", json!({"id": a.id}));
        }
        Platform::Threads => {
            put("username", json!(a.handle));
            put("user", json!({"id": a.id}));
        }
        Platform::Tiktok => {
            put("username", json!(a.handle));
            put("displayName", json!(a.name));
            put("userId", json!(a.id));
        }
        Platform::Twitter => {
            put("name", json!(a.name));
            put("userName", json!(a.handle));
            put("authorId", json!(a.id));
        }
        Platform::Youtube => {
            put("displayName", json!(a.name));
            put("userId", json!(a.id));
            put(
                "channelUrl",
                json!(format!("https://www.youtube.com/channel/{}", a.id)),
            );
        }
        Platform::Bluesky => {
            put("displayName", json!(a.name));
            put("userName", json!(a.handle));
            put("userId", json!(a.id));
        }
        _ => put("from", json!({"name": a.name, "id": a.id})),
    }
}

/// A post as `GET /history` lists it.
pub(crate) fn history_item(post: &Post) -> Value {
    json!({
        "id": post.ayr_id,
        "status": "success",
        "type": "now",
        "post": post.text,
        "platforms": [post.platform],
        "postIds": [{
            "status": "success",
            "id": post.social_id,
            "platform": post.platform,
            "postUrl": post.url,
        }],
        "errors": [],
        "urls": [],
        "created": iso_secs(post.created),
    })
}

/// A post as `GET /history/:platform` lists it (the network's own view, with metrics).
pub(crate) fn native_post(post: &Post, comments: usize) -> Value {
    json!({
        "id": post.social_id,
        "created": iso_secs(post.created),
        "post": post.text,
        "postUrl": post.url,
        "likeCount": post.like_count,
        "commentsCount": comments,
    })
}

/// A direct message as `GET /messages/:platform` lists it.
pub(crate) fn message(conv: &Conversation, m: &Message, ours: &Account) -> Value {
    let customer = &conv.customer;
    let (action, sender, recipient) = if m.sent {
        ("sent", &ours.id, &customer.id)
    } else {
        ("received", &customer.id, &ours.id)
    };
    let mut obj = Map::new();
    obj.insert("id".into(), json!(m.id));
    obj.insert("conversationId".into(), json!(conv.id));
    obj.insert("action".into(), json!(action));
    obj.insert("senderId".into(), json!(sender));
    obj.insert("recipientId".into(), json!(recipient));
    if !m.sent {
        obj.insert(
            "senderDetails".into(),
            json!({
                "name": customer.name,
                "profileImage": format!("https://cdn.ayrshare-sim.example/avatars/{}.jpg", customer.id),
            }),
        );
    }
    obj.insert("message".into(), json!(m.text));
    obj.insert("platform".into(), json!(conv.platform));
    obj.insert("created".into(), json!(iso_millis(m.created)));
    if !m.attachments.is_empty() {
        let attachments: Vec<Value> = m
            .attachments
            .iter()
            .map(|url| json!({"type": "image", "url": url}))
            .collect();
        obj.insert("attachments".into(), Value::Array(attachments));
    }
    Value::Object(obj)
}
