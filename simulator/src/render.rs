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
//!
//! History items (`GET /history`) and native posts (`GET /history/:platform`) carry the
//! network's own fields beside the common ones:
//!
//! - instagram: `mediaProductType` (`FEED`), `mediaType` (`IMAGE`, `CAROUSEL_ALBUM`),
//!   `mediaUrl`, `username` (our handle).
//! - facebook: `isPopular`, `sharesCount`, `statusType` (`added_photos`,
//!   `mobile_status_update`).
//! - linkedin: `clickCount`, `commentCount`, `engagement` (a ratio), `impressionCount`,
//!   `lastModified`, `publishedAt`, `shareCount`, `status: "PUBLISHED"` (in a history item it
//!   takes the place of `success`), `uniqueImpressionsCount`, `visibility: "PUBLIC"`.
//! - twitter: `authorId` (our account), `editHistoryTweetIds` (`[<Social Post ID>]`),
//!   `publicMetrics` `{retweet_count, reply_count, like_count, quote_count, impression_count,
//!   bookmark_count}`, `nonPublicMetrics` `{impression_count, url_link_clicks,
//!   user_profile_clicks}`, `organicMetrics` `{impression_count, like_count, reply_count,
//!   retweet_count, url_link_clicks, user_profile_clicks}`.
//! - bluesky: `cid`, `replyCount`, `repostCount`.
//! - tiktok: `mediaType: "video"`, `videoDuration` (seconds), `videoViews`,
//!   `audienceCountries` `[{country, percentage}]`, `impressionSources`
//!   `[{impression_source, percentage}]` (percentages as fractions of 1).
//!
//! The numbers derive from the post (its likes and a digest of its id) and from the comments
//! of its thread visible at request time, so reads repeat until a comment arrives. LinkedIn
//! `commentCount`, Bluesky `replyCount` and X `reply_count` are exactly that visible count
//! (all depths, ours included), the same as a native post's `commentsCount`.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value, json};

use crate::ids;
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

/// A post as `GET /history` lists it, at `now`.
pub(crate) fn history_item(world: &World, idx: usize, now: DateTime<Utc>) -> Value {
    let post = &world.posts[idx];
    let mut item = json!({
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
    });
    let metrics = Metrics::of(post, world.visible_comments(idx, now));
    network_fields(post, &world.our_account(post.platform), &metrics, &mut item);
    item
}

/// A post as `GET /history/:platform` lists it at `now` (the network's own view, with
/// metrics).
pub(crate) fn native_post(world: &World, idx: usize, now: DateTime<Utc>) -> Value {
    let post = &world.posts[idx];
    let metrics = Metrics::of(post, world.visible_comments(idx, now));
    let mut item = json!({
        "id": post.social_id,
        "created": iso_secs(post.created),
        "post": post.text,
        "postUrl": post.url,
        "likeCount": post.like_count,
        "commentsCount": metrics.comments,
    });
    network_fields(post, &world.our_account(post.platform), &metrics, &mut item);
    item
}

/// A post's engagement numbers (see the module documentation).
struct Metrics {
    /// Digest of the Social Post ID: the post's own variation.
    h: u64,
    likes: u64,
    comments: usize,
    shares: u64,
    impressions: u64,
    clicks: u64,
}

impl Metrics {
    fn of(post: &Post, comments: usize) -> Self {
        let h = ids::digest(&post.social_id);
        let likes = u64::from(post.like_count);
        let shares = likes / 10 + h % 7;
        let impressions = 150 + likes * 12 + comments as u64 * 30 + shares * 20 + h % 400;
        Metrics {
            h,
            likes,
            comments,
            shares,
            impressions,
            clicks: impressions / 25 + h % 11,
        }
    }

    /// The `i`-th small number of this post, below `m`.
    fn pick(&self, i: u64, m: u64) -> u64 {
        ids::mix(self.h ^ i) % m
    }

    /// Three shrinking fractions of 1 (two decimals) that leave a rest; `salt` tells apart
    /// the breakdowns of one post.
    fn fractions(&self, salt: u64) -> [f64; 3] {
        let first = 40 + self.pick(salt, 25);
        let second = (100 - first) / 2 - self.pick(salt + 1, 10);
        let third = (100 - first - second) / 2;
        [first, second, third].map(|p| p as f64 / 100.0)
    }
}

/// Adds the fields of `post`'s network to a history item or native post.
fn network_fields(post: &Post, ours: &Account, m: &Metrics, item: &mut Value) {
    let fields = match post.platform {
        Platform::Instagram => json!({
            "mediaProductType": "FEED",
            "mediaType": if m.pick(3, 3) == 0 { "CAROUSEL_ALBUM" } else { "IMAGE" },
            "mediaUrl": format!("https://cdn.ayrshare-sim.example/media/{:016x}.jpg", m.h),
            "username": ours.handle,
        }),
        Platform::Facebook => json!({
            "isPopular": m.likes >= 250,
            "sharesCount": m.shares,
            "statusType": if m.pick(4, 2) == 0 { "added_photos" } else { "mobile_status_update" },
        }),
        Platform::Linkedin => {
            let engaged = m.likes + m.comments as u64 + m.shares + m.clicks;
            let engagement = (engaged as f64 / m.impressions as f64 * 10_000.0).round() / 10_000.0;
            json!({
                "clickCount": m.clicks,
                "commentCount": m.comments,
                "engagement": engagement,
                "impressionCount": m.impressions,
                "lastModified": iso_secs(post.created),
                "publishedAt": iso_secs(post.created),
                "shareCount": m.shares,
                "status": "PUBLISHED",
                "uniqueImpressionsCount": m.impressions * 3 / 4,
                "visibility": "PUBLIC",
            })
        }
        Platform::Twitter => {
            let profile_clicks = m.clicks / 3;
            json!({
                "authorId": ours.id,
                "editHistoryTweetIds": [post.social_id],
                "publicMetrics": {
                    "retweet_count": m.shares,
                    "reply_count": m.comments,
                    "like_count": m.likes,
                    "quote_count": m.pick(5, 4),
                    "impression_count": m.impressions,
                    "bookmark_count": m.likes / 20,
                },
                "nonPublicMetrics": {
                    "impression_count": m.impressions,
                    "url_link_clicks": m.clicks,
                    "user_profile_clicks": profile_clicks,
                },
                "organicMetrics": {
                    "impression_count": m.impressions,
                    "like_count": m.likes,
                    "reply_count": m.comments,
                    "retweet_count": m.shares,
                    "url_link_clicks": m.clicks,
                    "user_profile_clicks": profile_clicks,
                },
            })
        }
        Platform::Bluesky => json!({
            "cid": ids::bluesky_cid(m.h),
            "replyCount": m.comments,
            "repostCount": m.shares,
        }),
        Platform::Tiktok => {
            let [us, gb, ca] = m.fractions(10);
            let [for_you, follow, profile] = m.fractions(20);
            json!({
                "mediaType": "video",
                "videoDuration": (150 + m.pick(6, 450)) as f64 / 10.0,
                "videoViews": m.impressions,
                "audienceCountries": [
                    {"country": "US", "percentage": us},
                    {"country": "GB", "percentage": gb},
                    {"country": "CA", "percentage": ca},
                ],
                "impressionSources": [
                    {"impression_source": "For You", "percentage": for_you},
                    {"impression_source": "Follow", "percentage": follow},
                    {"impression_source": "Personal Profile", "percentage": profile},
                ],
            })
        }
        _ => return,
    };
    if let (Value::Object(item), Value::Object(fields)) = (item, fields) {
        item.extend(fields);
    }
}

/// `GET /user`: the profile (`""` for the primary one) and our account on each of
/// `platforms`, as the author of our comments and replies shows it (`id`, `username`, `displayName`).
pub(crate) fn user(world: &World, platforms: &[Platform], profile: &str) -> Value {
    let display_names: Vec<Value> = platforms
        .iter()
        .zip(0i64..)
        .map(|(&platform, k)| {
            let ours = world.our_account(platform);
            json!({
                "platform": platform,
                "id": ours.id,
                "username": ours.handle,
                "displayName": ours.name,
                "created": iso_secs(world.linked + TimeDelta::hours(k)),
                "profileUrl": ids::profile_url(platform, &ours.id, &ours.handle),
                "userImage": avatar_url(&ours.id),
            })
        })
        .collect();
    json!({
        "activeSocialAccounts": platforms,
        "displayNames": display_names,
        "created": iso_secs(world.linked),
        "email": "social@acme-outdoors.example",
        "refId": ids::ref_id(world.ayr_salt, profile),
        "title": if profile.is_empty() { "Primary Profile" } else { "User Profile" },
    })
}

/// The profile picture of an account.
fn avatar_url(account_id: &str) -> String {
    format!("https://cdn.ayrshare-sim.example/avatars/{account_id}.jpg")
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
                "profileImage": avatar_url(&customer.id),
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
