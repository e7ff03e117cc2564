//! Fault injection: the fault set of `POST /_sim/faults` (and `--faults`), and how each
//! provider request draws its faults.
//!
//! ```json
//! {"rules": [{"endpoint": "reply", "platform": "twitter", "fault": "lost_response",
//!             "status": 502, "probability": 0.1, "count": 3}],
//!  "cacheDelaySeconds": 0, "messagingDisabled": ["instagram"], "historyNotFound": ["bluesky"]}
//! ```
//!
//! A rule applies to requests of its `endpoint` (`history`, `comments`, `reply`, `messages` —
//! reading and sending —, `post_comment`, `delete_comment`, `user`, `webhook` — register, list
//! and delete — or `*`) that concern its `platform` (or `*`). Every applicable rule
//! fires independently with its `probability` (default 1). The optional `count` caps how often
//! a rule fires: with probability 1, exactly the next `count` applicable requests (a
//! deterministic fault for tests); `GET /_sim/faults` shows the firings left.
//!
//! - `status`: answer `status` (4xx/5xx) with an error body instead of serving the request;
//!   a 429 looks exactly like the rate limiter's answer. With `retryAfterSeconds`, the answer
//!   also carries `Retry-After` (Ayrshare documents none; a test can then fix the wait).
//! - `latency`: wait `ms` more before serving (latencies of several rules add up).
//! - `timeout`: hang for `ms` (default 60 s, past any client timeout), then close the
//!   connection without an answer. Nothing is applied.
//! - `lost_response`: serve the request (a write *is* applied and in the ledger),
//!   then lose the answer: answer `status` if given (e.g. 502), else close the connection
//!   without an answer.
//!
//! Webhook deliveries (the simulator calling a registered URL) have rules of their own, with
//! `"endpoint": "delivery"` (a `*` rule never applies to them) and the platform of the comment
//! or message delivered: `latency` delays the delivery by `ms`, `duplicate` delivers it twice
//! (the same `hookId`), `drop` never delivers it, and `bad_signature` signs it with a wrong
//! secret. These three apply to deliveries only.
//!
//! When several terminal faults fire, the first in rule order wins; later terminal rules are
//! not drawn. `cacheDelaySeconds` hides comments and messages created from then on from GET
//! requests for that long; `messagingDisabled` makes `/messages/:platform` answer 403 (code
//! 361); `historyNotFound` makes history for those platforms answer 404.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::TimeDelta;
use rand::Rng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::platform::Platform;
use crate::time::delta_secs;

/// How long a `timeout` fault hangs when its rule gives no `ms`.
const DEFAULT_TIMEOUT_MS: u64 = 60_000;
/// Upper bound for `ms` (ten minutes).
const MAX_MS: u64 = 600_000;
/// Upper bound for `cacheDelaySeconds` (one day).
const MAX_CACHE_DELAY_SECONDS: f64 = 86_400.0;

/// A family of provider requests, as named in fault rules and `/_sim/stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// `GET /history`, `GET /history/:platform`.
    History,
    /// `GET /comments/:id`, `GET /comments?id=`.
    Comments,
    /// `POST /comments/reply/:commentId`, `POST /comments/reply`.
    Reply,
    /// `GET /messages/:platform`, `POST /messages/:platform`.
    Messages,
    /// `POST /comments`: our top-level comment on a post.
    PostComment,
    /// `DELETE /comments/:id`.
    DeleteComment,
    /// `GET /user`.
    User,
    /// `GET|POST|DELETE /hook/webhook`.
    Webhook,
    /// A webhook delivery to a registered URL (the simulator is the client).
    Delivery,
}

impl Endpoint {
    /// The name used in JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Endpoint::History => "history",
            Endpoint::Comments => "comments",
            Endpoint::Reply => "reply",
            Endpoint::Messages => "messages",
            Endpoint::PostComment => "post_comment",
            Endpoint::DeleteComment => "delete_comment",
            Endpoint::User => "user",
            Endpoint::Webhook => "webhook",
            Endpoint::Delivery => "delivery",
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `"*"` (any value) or exactly one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope<T> {
    /// Matches everything; written `"*"`.
    #[default]
    Any,
    /// Matches this value only.
    Only(T),
}

impl<T: PartialEq + Copy> Scope<T> {
    fn matches(&self, value: T) -> bool {
        match self {
            Scope::Any => true,
            Scope::Only(v) => *v == value,
        }
    }

    fn matches_any(&self, values: &[T]) -> bool {
        match self {
            Scope::Any => true,
            Scope::Only(v) => values.contains(v),
        }
    }
}

impl<T: Serialize> Serialize for Scope<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Scope::Any => serializer.serialize_str("*"),
            Scope::Only(v) => v.serialize(serializer),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Scope<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        if s == "*" {
            return Ok(Scope::Any);
        }
        T::deserialize(serde::de::value::StringDeserializer::<D::Error>::new(s)).map(Scope::Only)
    }
}

/// What a rule does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer `status` with an error body.
    Status,
    /// Add `ms` of latency.
    Latency,
    /// Hang (`ms`, default 60 s), then close the connection without answering.
    Timeout,
    /// Apply the request, then answer `status` or close the connection without answering.
    LostResponse,
    /// Deliver a webhook twice.
    Duplicate,
    /// Never deliver a webhook.
    Drop,
    /// Sign a webhook delivery with a wrong secret.
    BadSignature,
}

impl FaultKind {
    /// Whether it concerns webhook deliveries (and only them).
    const fn is_delivery(self) -> bool {
        matches!(
            self,
            FaultKind::Duplicate | FaultKind::Drop | FaultKind::BadSignature
        )
    }
}

/// One fault rule (see the module documentation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultRule {
    /// Requests this rule applies to; default `*`.
    #[serde(default)]
    pub endpoint: Scope<Endpoint>,
    /// Platform this rule applies to; default `*`.
    #[serde(default)]
    pub platform: Scope<Platform>,
    /// What happens when the rule fires.
    pub fault: FaultKind,
    /// HTTP status for `status` (required) and `lost_response` (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Milliseconds for `latency` (required) and `timeout` (default 60 000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ms: Option<u64>,
    /// Chance that the rule fires on an applicable request, 0 to 1; default 1.
    #[serde(default = "always")]
    pub probability: f64,
    /// Fire at most this many times (on a snapshot: the firings left); default unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// For `status`: a `Retry-After` header of this many seconds on the answer (Ayrshare
    /// documents none; a client that honours it can then be tested in fixed time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u32>,
}

fn always() -> f64 {
    1.0
}

/// The whole fault configuration; posting one replaces the previous one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultSet {
    /// Fault rules, drawn in order.
    #[serde(default)]
    pub rules: Vec<FaultRule>,
    /// Comments and messages created from now on stay invisible to GET for this many seconds.
    #[serde(default)]
    pub cache_delay_seconds: f64,
    /// Platforms whose `/messages` answer 403 (code 361).
    #[serde(default)]
    pub messaging_disabled: Vec<Platform>,
    /// Platforms whose history answers 404.
    #[serde(default)]
    pub history_not_found: Vec<Platform>,
}

/// Why a fault set was refused.
#[derive(Debug, thiserror::Error)]
pub enum FaultSetError {
    /// Not JSON of the documented shape.
    #[error("invalid fault set: {0}")]
    Json(#[from] serde_json::Error),
    /// A rule with impossible values.
    #[error("invalid fault rule {index}: {reason}")]
    Rule {
        /// Position of the rule in `rules`.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// `cacheDelaySeconds` out of range.
    #[error("cacheDelaySeconds must be between 0 and {MAX_CACHE_DELAY_SECONDS}")]
    CacheDelay,
}

impl FaultSet {
    /// Parses and validates the JSON of `POST /_sim/faults`.
    pub fn from_json(json: &str) -> Result<Self, FaultSetError> {
        let set: FaultSet = serde_json::from_str(json)?;
        set.validate()?;
        Ok(set)
    }

    /// Checks ranges and the fields each kind of fault needs.
    pub fn validate(&self) -> Result<(), FaultSetError> {
        if !(0.0..=MAX_CACHE_DELAY_SECONDS).contains(&self.cache_delay_seconds) {
            return Err(FaultSetError::CacheDelay);
        }
        for (index, rule) in self.rules.iter().enumerate() {
            rule.validate()
                .map_err(|reason| FaultSetError::Rule { index, reason })?;
        }
        Ok(())
    }
}

impl FromStr for FaultSet {
    type Err = FaultSetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FaultSet::from_json(s)
    }
}

impl FaultRule {
    fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.probability) {
            return Err("probability must be between 0 and 1".into());
        }
        if let Some(status) = self.status
            && !(400..=599).contains(&status)
        {
            return Err(format!("status {status} is not a 4xx or 5xx"));
        }
        if self.ms.is_some_and(|ms| ms > MAX_MS) {
            return Err(format!("ms must be at most {MAX_MS}"));
        }
        let delivery = self.endpoint == Scope::Only(Endpoint::Delivery);
        if self.fault.is_delivery() && !delivery {
            return Err(
                "`duplicate`, `drop` and `bad_signature` need `\"endpoint\": \"delivery\"`".into(),
            );
        }
        if delivery && !self.fault.is_delivery() && self.fault != FaultKind::Latency {
            return Err(
                "a `delivery` rule is `latency`, `duplicate`, `drop` or `bad_signature`".into(),
            );
        }
        match self.fault {
            FaultKind::Status if self.status.is_none() => {
                Err("a `status` fault needs a `status`".into())
            }
            FaultKind::Latency if self.ms.is_none() => Err("a `latency` fault needs `ms`".into()),
            kind if kind != FaultKind::Status && self.retry_after_seconds.is_some() => {
                Err("`retryAfterSeconds` belongs to a `status` fault".into())
            }
            _ => Ok(()),
        }
    }
}

/// How a request ends when a terminal fault fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Answer this status with an error body (and this `Retry-After`, if any), without
    /// serving the request.
    Status(u16, Option<u32>),
    /// Hang this long, then close the connection.
    Timeout(Duration),
    /// Serve the request, then answer this status or (None) close the connection.
    Lost(Option<u16>),
}

/// The faults drawn for one request.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Draw {
    pub latency: Duration,
    pub ending: Option<Ending>,
}

/// The faults drawn for one webhook delivery.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct DeliveryDraw {
    pub delay: Duration,
    pub duplicate: bool,
    pub drop: bool,
    pub bad_signature: bool,
}

/// The fault set in force, with the firing budgets of its counted rules.
#[derive(Debug)]
pub(crate) struct ActiveFaults {
    set: FaultSet,
    remaining: Vec<Option<AtomicU64>>,
}

impl ActiveFaults {
    pub fn new(set: FaultSet) -> Self {
        let remaining = set
            .rules
            .iter()
            .map(|r| r.count.map(AtomicU64::new))
            .collect();
        ActiveFaults { set, remaining }
    }

    /// The set as posted, with `count` showing the firings left.
    pub fn snapshot(&self) -> FaultSet {
        let mut set = self.set.clone();
        for (rule, left) in set.rules.iter_mut().zip(&self.remaining) {
            if let Some(left) = left {
                rule.count = Some(left.load(Ordering::Relaxed));
            }
        }
        set
    }

    pub fn cache_delay(&self) -> TimeDelta {
        delta_secs(self.set.cache_delay_seconds)
    }

    pub fn messaging_disabled(&self, platform: Platform) -> bool {
        self.set.messaging_disabled.contains(&platform)
    }

    pub fn history_not_found(&self, platform: Platform) -> bool {
        self.set.history_not_found.contains(&platform)
    }

    /// Whether `rule` (with its firings `left`) fires now: its chance, then its budget.
    fn fires(rule: &FaultRule, left: Option<&AtomicU64>, rng: &mut impl Rng) -> bool {
        rng.random_bool(rule.probability)
            && left.is_none_or(|left| {
                left.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                    .is_ok()
            })
    }

    /// Draws the `delivery` rules for a webhook delivery of a `platform` comment or message.
    pub fn draw_delivery(&self, platform: Platform) -> DeliveryDraw {
        let mut draw = DeliveryDraw::default();
        let mut rng = rand::rng();
        for (rule, left) in self.set.rules.iter().zip(&self.remaining) {
            if rule.endpoint != Scope::Only(Endpoint::Delivery)
                || !rule.platform.matches(platform)
                || !Self::fires(rule, left.as_ref(), &mut rng)
            {
                continue;
            }
            match rule.fault {
                FaultKind::Latency => draw.delay += Duration::from_millis(rule.ms.unwrap_or(0)),
                FaultKind::Duplicate => draw.duplicate = true,
                FaultKind::Drop => draw.drop = true,
                FaultKind::BadSignature => draw.bad_signature = true,
                _ => {}
            }
        }
        draw
    }

    /// Draws every applicable rule for a request to `endpoint` concerning `platforms`.
    pub fn draw(&self, endpoint: Endpoint, platforms: &[Platform]) -> Draw {
        let mut draw = Draw::default();
        if self.set.rules.is_empty() {
            return draw;
        }
        let mut rng = rand::rng();
        for (rule, left) in self.set.rules.iter().zip(&self.remaining) {
            let terminal = rule.fault != FaultKind::Latency;
            if (terminal && draw.ending.is_some())
                || rule.fault.is_delivery()
                || !rule.endpoint.matches(endpoint)
                || !rule.platform.matches_any(platforms)
                || !Self::fires(rule, left.as_ref(), &mut rng)
            {
                continue;
            }
            let ms = Duration::from_millis(rule.ms.unwrap_or(0));
            draw.ending = match rule.fault {
                FaultKind::Latency => {
                    draw.latency += ms;
                    draw.ending
                }
                FaultKind::Status => rule
                    .status
                    .map(|status| Ending::Status(status, rule.retry_after_seconds)),
                FaultKind::Timeout => Some(Ending::Timeout(Duration::from_millis(
                    rule.ms.unwrap_or(DEFAULT_TIMEOUT_MS),
                ))),
                FaultKind::LostResponse => Some(Ending::Lost(rule.status)),
                FaultKind::Duplicate | FaultKind::Drop | FaultKind::BadSignature => draw.ending,
            };
        }
        draw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_fault_json_parses_and_round_trips() {
        let json = r#"{"rules": [{"endpoint": "history", "platform": "*", "fault": "status",
            "status": 503, "ms": 200, "probability": 0.1}], "cacheDelaySeconds": 0,
            "messagingDisabled": ["instagram"], "historyNotFound": ["bluesky"]}"#;
        let set = FaultSet::from_json(json).expect("documented JSON parses");
        assert_eq!(set.rules[0].endpoint, Scope::Only(Endpoint::History));
        assert_eq!(set.rules[0].platform, Scope::Any);
        let back = serde_json::to_string(&set).expect("serialize");
        assert_eq!(FaultSet::from_json(&back).expect("reparse"), set);
    }

    #[test]
    fn rules_missing_their_parameters_are_refused() {
        assert!(FaultSet::from_json(r#"{"rules":[{"fault":"status"}]}"#).is_err());
        assert!(FaultSet::from_json(r#"{"rules":[{"fault":"latency"}]}"#).is_err());
        assert!(FaultSet::from_json(r#"{"rules":[{"fault":"timeout","probability":2}]}"#).is_err());
        assert!(FaultSet::from_json(r#"{"rules":[{"fault":"boom"}]}"#).is_err());
        assert!(FaultSet::from_json(r#"{"rules":[],"typo":1}"#).is_err());
        assert!(
            FaultSet::from_json(r#"{"rules":[{"fault":"timeout","retryAfterSeconds":2}]}"#)
                .is_err()
        );
    }

    #[test]
    fn a_counted_rule_fires_exactly_count_times() {
        let set = FaultSet::from_json(
            r#"{"rules":[{"endpoint":"reply","platform":"twitter","fault":"status","status":500,"count":2}]}"#,
        )
        .expect("valid");
        let active = ActiveFaults::new(set);
        let fired = (0..5)
            .filter(|_| {
                active
                    .draw(Endpoint::Reply, &[Platform::Twitter])
                    .ending
                    .is_some()
            })
            .count();
        assert_eq!(fired, 2);
        assert!(
            active
                .draw(Endpoint::History, &[Platform::Twitter])
                .ending
                .is_none()
        );
        assert_eq!(active.snapshot().rules[0].count, Some(0));
    }
}
