//! The state of a running simulator: one [`Profile`] per `Profile-Key`, each with its own
//! world; and the admission path every provider request takes in the profile it names:
//! authentication → the profile's rate limit → its faults → the endpoint → lost responses →
//! headers and its stats (a 401 is counted there too).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use axum::Json;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

use crate::config::SimConfig;
use crate::error::ApiError;
use crate::faults::{Ending, Endpoint};
use crate::ids;
use crate::platform::Platform;
use crate::profile::Profile;
use crate::rate_limit::Admit;
use crate::serve::ConnControl;
use crate::stats::{CallKey, Method, Stats};

/// Shared state of one simulator instance.
pub(crate) struct Sim {
    pub cfg: SimConfig,
    /// The instant every world is generated relative to (kept across resets).
    anchor: DateTime<Utc>,
    /// Every profile in use, by key; the primary profile (`""`) always.
    profiles: RwLock<HashMap<String, Arc<Profile>>>,
    /// Held while a new profile's world is generated, so it is generated once.
    creating: Mutex<()>,
    /// Numbers for ids created at run time, in every world; never reset, so ids are never
    /// reused.
    next_n: AtomicU64,
}

/// A provider request as the admission path sees it.
pub(crate) struct ApiCall<'a> {
    /// The profile it names ([`Sim::profile_of`]): its budget, faults and stats apply.
    pub profile: &'a Profile,
    pub endpoint: Endpoint,
    pub method: Method,
    /// The platforms the request concerns (for fault scopes; one platform labels the stats).
    pub platforms: &'a [Platform],
    pub headers: &'a HeaderMap,
    pub conn: &'a ConnControl,
}

/// Counts a request in the stats exactly once: when answered, or (status 0) when abandoned.
struct Recorder<'a> {
    stats: &'a Stats,
    key: CallKey,
    done: bool,
}

impl Recorder<'_> {
    fn answer(mut self, response: Response) -> Response {
        self.key.status = response.status().as_u16();
        self.stats.record(self.key);
        self.done = true;
        response
    }

    fn unanswered(&mut self) {
        if !self.done {
            self.stats.record(self.key);
            self.done = true;
        }
    }
}

impl Drop for Recorder<'_> {
    fn drop(&mut self) {
        self.unanswered();
    }
}

impl Sim {
    pub fn new(cfg: SimConfig) -> Self {
        let anchor = Utc::now();
        let profiles = RwLock::new(initial_profiles(&cfg, anchor));
        let next_n = ids::RUNTIME_BASE + (ids::mix(cfg.seed) % 1000) * 1_000_000_000;
        Sim {
            cfg,
            anchor,
            profiles,
            creating: Mutex::new(()),
            next_n: AtomicU64::new(next_n),
        }
    }

    fn existing(&self, key: &str) -> Option<Arc<Profile>> {
        let profiles = self.profiles.read().unwrap_or_else(PoisonError::into_inner);
        profiles.get(key).cloned()
    }

    fn install(&self, profile: Arc<Profile>) {
        let mut profiles = self
            .profiles
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        profiles.insert(profile.key.clone(), profile);
    }

    /// The profile of `key` (`""`: the primary profile), made with its seeded world on first
    /// use. Requests of existing profiles never wait for a new world to be generated.
    pub fn profile(&self, key: &str) -> Arc<Profile> {
        if let Some(profile) = self.existing(key) {
            return profile;
        }
        let _creating = self.creating.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(profile) = self.existing(key) {
            return profile;
        }
        let profile = Arc::new(Profile::new(&self.cfg, key, self.anchor));
        self.install(profile.clone());
        profile
    }

    /// The profile a provider request names with `Profile-Key` (absent: the primary profile).
    pub fn profile_of(&self, headers: &HeaderMap) -> Arc<Profile> {
        let key = headers
            .get("profile-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        self.profile(key)
    }

    /// Every profile in use, by key (the primary profile first).
    pub fn profiles(&self) -> Vec<Arc<Profile>> {
        let mut all: Vec<Arc<Profile>> = self
            .profiles
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| a.key.cmp(&b.key));
        all
    }

    /// A fresh unique number for ids created at run time.
    pub fn next_n(&self) -> u64 {
        self.next_n.fetch_add(1, Ordering::Relaxed)
    }

    /// `nextUpdate` for data read at `now`.
    pub fn next_update(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let refresh = TimeDelta::try_seconds(self.cfg.refresh_seconds as i64).unwrap_or_default();
        now.checked_add_signed(refresh).unwrap_or(now)
    }

    /// Back to the start: the primary profile as new, named profiles gone (made again from
    /// their seeds on next use). Requests under way finish on the profiles they started on.
    pub fn reset(&self) {
        let profiles = initial_profiles(&self.cfg, self.anchor);
        *self
            .profiles
            .write()
            .unwrap_or_else(PoisonError::into_inner) = profiles;
    }

    /// Replaces the profile of `key` with a new one: its seeded world, empty ledger and stats,
    /// a full budget, no webhooks or deliveries, the start-up fault set.
    pub fn reset_profile(&self, key: &str) {
        self.install(Arc::new(Profile::new(&self.cfg, key, self.anchor)));
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .is_some_and(|(scheme, key)| {
                scheme.eq_ignore_ascii_case("bearer") && key.trim() == self.cfg.api_key
            })
    }

    /// Runs a provider request through the admission path; `op` serves it (and applies its
    /// write, if any) and is skipped when a fault answers first.
    pub async fn serve_api(
        &self,
        call: ApiCall<'_>,
        op: impl FnOnce() -> Result<Value, ApiError>,
    ) -> Response {
        let profile = call.profile;
        let mut recorder = Recorder {
            stats: &profile.stats,
            key: CallKey {
                endpoint: call.endpoint,
                method: call.method,
                platform: match call.platforms {
                    [one] => Some(*one),
                    _ => None,
                },
                status: 0,
            },
            done: false,
        };
        if !self.authorized(call.headers) {
            return recorder.answer(ApiError::unauthorized().into_response());
        }
        let admit = profile.limiter.admit();
        if let Admit::Limited { max } = admit {
            let response = self.error_response(429);
            return recorder.answer(with_rate_headers(response, max, max));
        }
        profile.stats.accepted();
        let rate = |response: Response| match admit {
            Admit::Allowed { max, count } => with_rate_headers(response, max, count),
            _ => response,
        };

        let draw = profile.faults().draw(call.endpoint, call.platforms);
        if !draw.latency.is_zero() {
            tokio::time::sleep(draw.latency).await;
        }
        match draw.ending {
            Some(Ending::Status(status, retry_after)) => {
                let mut response = rate(self.error_response(status));
                if let Some(seconds) = retry_after {
                    response
                        .headers_mut()
                        .insert("retry-after", HeaderValue::from(seconds));
                }
                recorder.answer(response)
            }
            Some(Ending::Timeout(hang)) => {
                recorder.unanswered();
                tokio::time::sleep(hang).await;
                call.conn.drop_connection().await
            }
            Some(Ending::Lost(status)) => {
                // The write is applied (and in the ledger) before the answer is lost.
                let _applied = op();
                match status {
                    Some(status) => recorder.answer(rate(self.error_response(status))),
                    None => {
                        recorder.unanswered();
                        call.conn.drop_connection().await
                    }
                }
            }
            None => {
                let response = match op() {
                    Ok(body) => Json(body).into_response(),
                    Err(e) => e.into_response(),
                };
                recorder.answer(rate(response))
            }
        }
    }

    fn error_response(&self, status: u16) -> Response {
        ApiError::injected(status, self.cfg.rate_limit, self.cfg.rate_window_seconds)
            .into_response()
    }
}

/// The profiles a simulator starts with: the primary profile alone.
fn initial_profiles(cfg: &SimConfig, anchor: DateTime<Utc>) -> HashMap<String, Arc<Profile>> {
    HashMap::from([(String::new(), Arc::new(Profile::new(cfg, "", anchor)))])
}

fn with_rate_headers(mut response: Response, max: u32, count: u32) -> Response {
    let headers = response.headers_mut();
    headers.insert("x-ratelimit-max", HeaderValue::from(max));
    headers.insert("x-ratelimit-count", HeaderValue::from(count));
    response
}
