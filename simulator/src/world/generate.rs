//! A seeded world: the same seed and sizes always give the same posts, threads and
//! conversations (ids, texts, authors and times relative to the start instant). Each profile
//! has its own seed ([`crate::profile`]).
//!
//! Per platform: `posts_per_platform` posts spread evenly over the last `post_days` days; the
//! newest `empty_posts_per_platform` of them have no comments yet; every other post has exactly
//! `comments_per_post` top-level comments, each with exactly `replies_per_comment` replies.
//! Facebook, Instagram and X get `conversations_per_platform` conversations of
//! `messages_per_conversation` messages each, alternating received and sent.
//! Our accounts were linked (`GET /user`) a month before the oldest possible post.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{Account, Conversation, Message, NewComment, Post, World, text};
use crate::config::SimConfig;
use crate::ids;
use crate::platform::Platform;

/// Customer accounts per platform that comments are drawn from.
const AUTHORS_PER_PLATFORM: usize = 40;

/// Hands out the unique numbers ids derive from: increasing, with random low digits so ids do
/// not look consecutive, offset by the seed so different seeds give different ids.
struct Numbers {
    next: u64,
}

impl Numbers {
    fn new(seed: u64) -> Self {
        Numbers {
            next: (ids::mix(seed) % 1000) * 1_000_000_000,
        }
    }

    fn take(&mut self, rng: &mut StdRng) -> u64 {
        self.next += 1000;
        self.next + rng.random_range(0..1000)
    }
}

/// A customer account on `platform`, with the handle format that network uses.
fn customer_account(platform: Platform, n: u64, rng: &mut impl Rng) -> Account {
    let (first, last) = text::person_name(rng);
    let suffix = n % 100;
    let handle = match platform {
        Platform::Bluesky => text::email(rng, first, last),
        Platform::Twitter => format!("{first}{last}{suffix}"),
        Platform::Youtube => format!("@{first}{last}"),
        Platform::Tiktok => format!("{}.{}{suffix}", first.to_lowercase(), last.to_lowercase()),
        _ => format!("{}_{}", first.to_lowercase(), last.to_lowercase()),
    };
    Account {
        id: ids::account_id(platform, n),
        name: format!("{first} {last}"),
        handle,
    }
}

/// Builds the world of `seed` with `cfg`'s sizes as it stands at `anchor` (the simulator's
/// start).
pub(crate) fn generate(cfg: &SimConfig, seed: u64, anchor: DateTime<Utc>) -> World {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut numbers = Numbers::new(seed);
    let mut world = World {
        ayr_salt: ids::mix(seed ^ 0xA7B5_4A2E),
        linked: anchor - TimeDelta::days(i64::from(cfg.post_days) + 30),
        our_accounts: Platform::ALL
            .into_iter()
            .map(|p| (p, Arc::new(super::our_account(p))))
            .collect(),
        ..World::default()
    };
    let span_secs = i64::from(cfg.post_days) * 86_400;

    for &platform in &cfg.platforms {
        let pool: Vec<Arc<Account>> = (0..AUTHORS_PER_PLATFORM)
            .map(|_| {
                let n = numbers.take(&mut rng);
                Arc::new(customer_account(platform, n, &mut rng))
            })
            .collect();
        world.authors.insert(platform, pool.clone());

        let posts = cfg.posts_per_platform.max(1) as f64;
        for i in 0..cfg.posts_per_platform {
            let age = (i as f64 + 0.2 + 0.6 * rng.random::<f64>()) * span_secs as f64 / posts;
            let created = anchor - TimeDelta::seconds(age as i64);
            let n = numbers.take(&mut rng);
            let social_id = ids::post_social_id(platform, n);
            let post = world.insert_post(Post {
                ayr_id: ids::ayrshare_id(world.ayr_salt ^ n),
                platform,
                url: ids::post_url(platform, &social_id, n),
                social_id,
                text: text::post_text(&mut rng),
                created,
                like_count: rng.random_range(0..500),
                comments: Vec::new(),
            });
            if i < cfg.empty_posts_per_platform {
                continue;
            }
            for _ in 0..cfg.comments_per_post {
                let at = between(&mut rng, created, anchor);
                let author = pool[rng.random_range(0..pool.len())].clone();
                let top = world.insert_comment(NewComment {
                    post,
                    parent: None,
                    text: text::comment_text(&mut rng),
                    author,
                    from_us: false,
                    created: at,
                    visible_at: at,
                    n: numbers.take(&mut rng),
                });
                for _ in 0..cfg.replies_per_comment {
                    let reply_at = between(&mut rng, at, anchor);
                    let author = pool[rng.random_range(0..pool.len())].clone();
                    world.insert_comment(NewComment {
                        post,
                        parent: Some(top),
                        text: text::reply_text(&mut rng),
                        author,
                        from_us: false,
                        created: reply_at,
                        visible_at: reply_at,
                        n: numbers.take(&mut rng),
                    });
                }
            }
            sort_thread(&mut world, post);
        }

        if platform.has_messaging() {
            for _ in 0..cfg.conversations_per_platform {
                generate_conversation(&mut world, platform, cfg, anchor, &mut rng, &mut numbers);
            }
        }
    }
    world
}

fn generate_conversation(
    world: &mut World,
    platform: Platform,
    cfg: &SimConfig,
    anchor: DateTime<Utc>,
    rng: &mut StdRng,
    numbers: &mut Numbers,
) {
    let n = numbers.take(rng);
    let customer = Arc::new(customer_account(platform, n, rng));
    let mut at = anchor - TimeDelta::seconds(rng.random_range(3_600..259_200));
    let mut messages = Vec::with_capacity(cfg.messages_per_conversation);
    for k in 0..cfg.messages_per_conversation {
        let sent = k % 2 == 1;
        messages.push(Message {
            id: ids::message_id(platform, numbers.take(rng)),
            sent,
            text: if sent {
                text::our_message(rng)
            } else {
                text::customer_message(rng)
            },
            created: at,
            visible_at: at,
            attachments: Vec::new(),
        });
        at = (at + TimeDelta::seconds(rng.random_range(30..7_200))).min(anchor);
    }
    world.insert_conversation(Conversation {
        platform,
        id: ids::conversation_id(platform, n, &customer.id),
        customer,
        messages,
    });
}

/// A whole-second instant between `from` and `to`, never before `from`.
fn between(rng: &mut StdRng, from: DateTime<Utc>, to: DateTime<Utc>) -> DateTime<Utc> {
    let span = (to - from).num_seconds().max(1);
    from + TimeDelta::seconds(((span as f64) * rng.random_range(0.02..0.95)) as i64)
}

/// Puts a post's comments and every reply list in time order.
fn sort_thread(world: &mut World, post: usize) {
    let mut top = std::mem::take(&mut world.posts[post].comments);
    top.sort_by_key(|&c| world.comments[c].created);
    for &c in &top {
        let mut replies = std::mem::take(&mut world.comments[c].replies);
        replies.sort_by_key(|&r| world.comments[r].created);
        world.comments[c].replies = replies;
    }
    world.posts[post].comments = top;
}
