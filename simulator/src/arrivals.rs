//! Traffic that arrives on its own: customer comments (a third of them replies in an existing
//! thread) and customer direct messages, at `--comments-per-minute` and
//! `--messages-per-minute` in each world (every profile in use). Each world's sequence of
//! arrivals is drawn from its seed; new items are subject to its cache delay like any other
//! and delivered to its webhooks.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::delivery::{self, Event};
use crate::profile::Profile;
use crate::sim::Sim;
use crate::world::{NewComment, text};

/// Chance that an arriving comment replies to one already on the post.
const REPLY_SHARE: f64 = 0.3;

fn every(per_minute: f64) -> Option<Interval> {
    if per_minute <= 0.0 {
        return None;
    }
    let period = Duration::from_secs_f64(60.0 / per_minute).max(Duration::from_micros(100));
    let mut interval = tokio::time::interval_at(Instant::now() + period, period);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    Some(interval)
}

async fn tick(interval: &mut Option<Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Adds arrivals until `shutdown`; returns at once when both rates are 0.
pub(crate) async fn run(sim: Arc<Sim>, shutdown: CancellationToken) {
    let mut comments = every(sim.cfg.comments_per_minute);
    let mut messages = every(sim.cfg.messages_per_minute);
    if comments.is_none() && messages.is_none() {
        return;
    }
    // One sequence per profile key; a reset does not restart it.
    let mut rngs: HashMap<String, StdRng> = HashMap::new();
    loop {
        let arrive: fn(&Sim, &Arc<Profile>, &mut StdRng) = tokio::select! {
            () = shutdown.cancelled() => break,
            () = tick(&mut comments) => arrive_comment,
            () = tick(&mut messages) => arrive_message,
        };
        for profile in sim.profiles() {
            let rng = match rngs.get_mut(&profile.key) {
                Some(rng) => rng,
                None => rngs
                    .entry(profile.key.clone())
                    .or_insert_with(|| StdRng::seed_from_u64(profile.seed ^ 0x5EED_A441)),
            };
            arrive(&sim, &profile, rng);
        }
    }
}

fn arrive_comment(sim: &Sim, profile: &Arc<Profile>, rng: &mut StdRng) {
    let Some(&platform) = sim.cfg.platforms.choose(rng) else {
        return;
    };
    let now = Utc::now();
    let visible_at = profile.visible_from(now);
    let n = sim.next_n();
    let mut world = profile.world_mut();
    let Some(&post) = world.by_platform.get(&platform).and_then(|p| p.choose(rng)) else {
        return;
    };
    let Some(author) = world
        .authors
        .get(&platform)
        .and_then(|a| a.choose(rng))
        .cloned()
    else {
        return;
    };
    let thread = world.thread_of_post(post);
    let parent = if rng.random_bool(REPLY_SHARE) {
        thread.choose(rng).copied()
    } else {
        None
    };
    let text = if parent.is_some() {
        text::reply_text(rng)
    } else {
        text::comment_text(rng)
    };
    let idx = world.insert_comment(NewComment {
        post,
        parent,
        text,
        author,
        from_us: false,
        created: now,
        visible_at,
        n,
    });
    let post = &world.posts[post].ayr_id;
    tracing::debug!(%platform, %post, "comment arrived");
    let event = Event::comment(&world, idx, now);
    drop(world);
    delivery::announce(sim, profile, event);
}

fn arrive_message(sim: &Sim, profile: &Arc<Profile>, rng: &mut StdRng) {
    let now = Utc::now();
    let visible_at = profile.visible_from(now);
    let n = sim.next_n();
    let mut world = profile.world_mut();
    if world.conversations.is_empty() {
        return;
    }
    let conversation = rng.random_range(0..world.conversations.len());
    world.receive_message(
        conversation,
        text::customer_message(rng),
        now,
        visible_at,
        n,
    );
    let platform = world.conversations[conversation].platform;
    tracing::debug!(%platform, "message arrived");
    let event = Event::message(&world, conversation);
    drop(world);
    if let Some(event) = event {
        delivery::announce(sim, profile, event);
    }
}
