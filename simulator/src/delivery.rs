//! Webhook deliveries: when a customer's comment or direct message is added on Facebook or
//! Instagram in a profile's world (`POST /_sim/comments`, `POST /_sim/messages`, or an
//! arrival), and that profile registered the `comments` (or `messages`) action, its URL gets a
//! signed `POST`. Other profiles' registrations never see it.
//!
//! The body is JSON: `action`, `subAction` (`commentAdded`, `messageReceived`), `hookId` (the
//! delivery's id, the same on every attempt and on a duplicate), `created`, `code` 200,
//! `status` `success`, `refId` (the profile's), `platform`, and
//! - comments: `postId` (Ayrshare Post ID), `socialPostId`, `parentCommentId` (the Social
//!   Comment ID of the comment it answers, or `null`) and `comment`, the comment as
//!   `GET /comments/:id` lists it (without `replies`);
//! - messages: `conversationId` and `message`, the message as `GET /messages/:platform` lists
//!   it.
//!
//! Headers: `X-Authorization-Timestamp` (Unix seconds of the attempt) and
//! `X-Authorization-Content-SHA256`, the lowercase hex HMAC-SHA256 of the body under the
//! profile's secret (`AYRSHARE.md`: "HMAC-SHA256 of the body under the secret"; none without a
//! secret). An attempt answered 429, 408, 425 or 5xx, or not answered within 10 s, is tried
//! again with a doubling wait (Ayrshare keeps trying for about an hour; here
//! [`MAX_ATTEMPTS`] attempts over about half a minute); any other answer ends the delivery.
//! The `delivery` rules of the profile's fault set delay, duplicate, drop or mis-sign a
//! delivery ([`crate::faults`]). `GET /_sim/webhooks?profile=` lists the profile's deliveries
//! with their outcomes.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::faults::DeliveryDraw;
use crate::ids;
use crate::platform::Platform;
use crate::profile::Profile;
use crate::render;
use crate::sim::Sim;
use crate::time::iso_millis;
use crate::webhooks::Action;
use crate::world::World;

/// Attempts of one delivery.
pub(crate) const MAX_ATTEMPTS: u32 = 6;
/// The wait before the second attempt; it doubles after each.
const FIRST_RETRY: Duration = Duration::from_millis(500);
/// Time allowed for one attempt.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Deliveries kept per profile for `GET /_sim/webhooks` (the oldest go first).
const LOG_MAX: usize = 10_000;
/// The signature header.
pub(crate) const SIGNATURE_HEADER: &str = "X-Authorization-Content-SHA256";
/// The timestamp header.
pub(crate) const TIMESTAMP_HEADER: &str = "X-Authorization-Timestamp";

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Outcome {
    /// Not answered with a final status yet (waiting, being tried or retried).
    Pending,
    /// Answered 2xx.
    Delivered,
    /// Answered with a status that is not retried, or out of attempts.
    Failed,
    /// Never sent (a `drop` fault).
    Dropped,
}

/// One delivery as `GET /_sim/webhooks` lists it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Delivery {
    pub hook_id: String,
    /// The profile's key (`""`: the primary profile).
    pub profile: String,
    pub action: &'static str,
    pub platform: Platform,
    pub url: String,
    pub created_at: String,
    pub outcome: Outcome,
    /// Requests sent (a duplicate counts).
    pub attempts: u32,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub delay_ms: u64,
    pub duplicate: bool,
    pub bad_signature: bool,
    pub delivered_at: Option<String>,
    pub payload: Value,
}

/// The log of one profile's deliveries.
#[derive(Debug, Default)]
pub(crate) struct Deliveries(Mutex<Vec<Delivery>>);

impl Deliveries {
    fn log(&self) -> MutexGuard<'_, Vec<Delivery>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every delivery, oldest first.
    pub fn list(&self) -> Vec<Delivery> {
        self.log().clone()
    }

    fn push(&self, delivery: Delivery) {
        let mut log = self.log();
        if log.len() >= LOG_MAX {
            log.remove(0);
        }
        log.push(delivery);
    }

    fn update(&self, hook_id: &str, change: impl FnOnce(&mut Delivery)) {
        if let Some(delivery) = self.log().iter_mut().rev().find(|d| d.hook_id == hook_id) {
            change(delivery);
        }
    }
}

/// What happened, to be delivered: the action, its platform and the event's own fields.
pub(crate) struct Event {
    action: Action,
    platform: Platform,
    fields: Value,
}

impl Event {
    /// A customer's comment `idx` was added.
    pub fn comment(world: &World, idx: usize, now: DateTime<Utc>) -> Event {
        let c = &world.comments[idx];
        let post = &world.posts[c.post];
        Event {
            action: Action::Comments,
            platform: c.platform,
            fields: json!({
                "subAction": "commentAdded",
                "postId": post.ayr_id,
                "socialPostId": post.social_id,
                "parentCommentId": c.parent.map(|p| &world.comments[p].social_id),
                "comment": render::comment(world, idx, now, false),
            }),
        }
    }

    /// The last message of `conversation` was received from the customer.
    pub fn message(world: &World, conversation: usize) -> Option<Event> {
        let conv = &world.conversations[conversation];
        let message = conv.messages.last()?;
        let ours = world.our_account(conv.platform);
        Some(Event {
            action: Action::Messages,
            platform: conv.platform,
            fields: json!({
                "subAction": "messageReceived",
                "conversationId": conv.id,
                "message": render::message(conv, message, &ours),
            }),
        })
    }
}

/// Whether Ayrshare has this webhook for the platform (`AYRSHARE.md`: `comments` and
/// `messages` cover Facebook and Instagram).
fn covered(platform: Platform) -> bool {
    matches!(platform, Platform::Facebook | Platform::Instagram)
}

/// Starts delivering `event`, which happened in `profile`'s world, to that profile's URL for
/// its action, if any (in the background; needs a Tokio runtime).
pub(crate) fn announce(sim: &Sim, profile: &Arc<Profile>, event: Event) {
    if !covered(event.platform) {
        return;
    }
    let Some((url, secret)) = profile.webhooks.registered(event.action) else {
        return;
    };
    let now = Utc::now();
    let salt = profile.world().ayr_salt;
    let hook_id = format!("hook-{}", ids::ayrshare_id(salt ^ sim.next_n()));
    let mut payload = json!({
        "action": event.action.as_str(),
        "hookId": hook_id,
        "created": iso_millis(now),
        "code": 200,
        "status": "success",
        "refId": ids::ref_id(salt, &profile.key),
        "platform": event.platform,
    });
    if let (Some(body), Some(fields)) = (payload.as_object_mut(), event.fields.as_object()) {
        body.extend(fields.clone());
    }
    let draw = profile.faults().draw_delivery(event.platform);
    profile.deliveries.push(Delivery {
        hook_id: hook_id.clone(),
        profile: profile.key.clone(),
        action: event.action.as_str(),
        platform: event.platform,
        url: url.clone(),
        created_at: iso_millis(now),
        outcome: if draw.drop {
            Outcome::Dropped
        } else {
            Outcome::Pending
        },
        attempts: 0,
        last_status: None,
        last_error: None,
        delay_ms: u64::try_from(draw.delay.as_millis()).unwrap_or(u64::MAX),
        duplicate: draw.duplicate,
        bad_signature: draw.bad_signature,
        delivered_at: None,
        payload: payload.clone(),
    });
    if draw.drop {
        return;
    }
    let key = if draw.bad_signature {
        secret.map(|s| format!("not-{s}"))
    } else {
        secret
    };
    tokio::spawn(deliver(profile.clone(), hook_id, url, key, payload, draw));
}

/// The lowercase hex HMAC-SHA256 of `body` under `secret`.
pub(crate) fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Whether a receiver's answer asks for the delivery to be tried again.
fn retried(status: u16) -> bool {
    matches!(status, 408 | 425 | 429) || status >= 500
}

async fn deliver(
    profile: Arc<Profile>,
    hook_id: String,
    url: String,
    secret: Option<String>,
    payload: Value,
    draw: DeliveryDraw,
) {
    tokio::time::sleep(draw.delay).await;
    let body = serde_json::to_vec(&payload).expect("JSON");
    let client = reqwest::Client::new();
    let sends = if draw.duplicate { 2 } else { 1 };
    for _ in 0..sends {
        let mut wait = FIRST_RETRY;
        for attempt in 1..=MAX_ATTEMPTS {
            let mut request = client
                .post(&url)
                .timeout(ATTEMPT_TIMEOUT)
                .header("content-type", "application/json")
                .header(TIMESTAMP_HEADER, Utc::now().timestamp().to_string())
                .body(body.clone());
            if let Some(secret) = &secret {
                request = request.header(SIGNATURE_HEADER, sign(secret, &body));
            }
            let answer = request.send().await;
            let status = answer.as_ref().ok().map(|r| r.status().as_u16());
            let error = answer.as_ref().err().map(ToString::to_string);
            let again = status.is_none_or(retried) && attempt < MAX_ATTEMPTS;
            profile.deliveries.update(&hook_id, |d| {
                d.attempts += 1;
                d.last_status = status;
                d.last_error.clone_from(&error);
                d.outcome = match status {
                    Some(s) if (200..300).contains(&s) => {
                        d.delivered_at = Some(iso_millis(Utc::now()));
                        Outcome::Delivered
                    }
                    _ if again => Outcome::Pending,
                    _ => Outcome::Failed,
                };
            });
            if !again {
                break;
            }
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }
}
