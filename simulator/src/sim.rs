//! The state of a running simulator, and the admission path every provider request takes:
//! authentication → rate limit → faults → the endpoint → lost responses → headers and stats.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use axum::Json;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

use crate::config::SimConfig;
use crate::delivery::Deliveries;
use crate::error::ApiError;
use crate::faults::{ActiveFaults, Ending, Endpoint, FaultSet};
use crate::ids;
use crate::platform::Platform;
use crate::rate_limit::{Admit, RateLimiter};
use crate::serve::ConnControl;
use crate::stats::{CallKey, Method, Stats};
use crate::webhooks::Webhooks;
use crate::world::{self, World};

/// Shared state of one simulator instance.
pub(crate) struct Sim {
    pub cfg: SimConfig,
    /// The instant the seeded world is generated relative to (kept across resets).
    anchor: DateTime<Utc>,
    world: RwLock<World>,
    faults: RwLock<Arc<ActiveFaults>>,
    limiter: RateLimiter,
    pub stats: Stats,
    pub webhooks: Webhooks,
    pub deliveries: Deliveries,
    /// Numbers for ids created at run time; never reset, so ids are never reused.
    next_n: AtomicU64,
}

/// A provider request as the admission path sees it.
pub(crate) struct ApiCall<'a> {
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
        let world = world::generate(&cfg, anchor);
        let faults = Arc::new(ActiveFaults::new(cfg.faults.clone()));
        let limiter =
            RateLimiter::new(cfg.rate_limit, Duration::from_secs(cfg.rate_window_seconds));
        let next_n = ids::RUNTIME_BASE + (ids::mix(cfg.seed) % 1000) * 1_000_000_000;
        Sim {
            cfg,
            anchor,
            world: RwLock::new(world),
            faults: RwLock::new(faults),
            limiter,
            stats: Stats::new(),
            webhooks: Webhooks::default(),
            deliveries: Deliveries::default(),
            next_n: AtomicU64::new(next_n),
        }
    }

    pub fn world(&self) -> RwLockReadGuard<'_, World> {
        self.world.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn world_mut(&self) -> RwLockWriteGuard<'_, World> {
        self.world.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The fault set in force.
    pub fn faults(&self) -> Arc<ActiveFaults> {
        self.faults
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the fault set.
    pub fn set_faults(&self, set: FaultSet) {
        *self.faults.write().unwrap_or_else(PoisonError::into_inner) =
            Arc::new(ActiveFaults::new(set));
    }

    /// A fresh unique number for ids created at run time.
    pub fn next_n(&self) -> u64 {
        self.next_n.fetch_add(1, Ordering::Relaxed)
    }

    /// When something created now becomes visible to GET requests.
    pub fn visible_from(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now.checked_add_signed(self.faults().cache_delay())
            .unwrap_or(now)
    }

    /// `nextUpdate` for data read at `now`.
    pub fn next_update(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let refresh = TimeDelta::try_seconds(self.cfg.refresh_seconds as i64).unwrap_or_default();
        now.checked_add_signed(refresh).unwrap_or(now)
    }

    /// Back to the seeded world: regenerated world, empty ledger and stats, fresh rate budgets,
    /// no webhooks or deliveries, and the fault set given at start-up.
    pub fn reset(&self) {
        let world = world::generate(&self.cfg, self.anchor);
        *self.world_mut() = world;
        self.set_faults(self.cfg.faults.clone());
        self.limiter.reset();
        self.stats.reset();
        self.webhooks.reset();
        self.deliveries.reset();
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
        op: impl FnOnce(&Sim) -> Result<Value, ApiError>,
    ) -> Response {
        let mut recorder = Recorder {
            stats: &self.stats,
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
        let admit = self.limiter.admit(profile(call.headers));
        if let Admit::Limited { max } = admit {
            let response = self.error_response(429);
            return recorder.answer(with_rate_headers(response, max, max));
        }
        self.stats.accepted();
        let rate = |response: Response| match admit {
            Admit::Allowed { max, count } => with_rate_headers(response, max, count),
            _ => response,
        };

        let draw = self.faults().draw(call.endpoint, call.platforms);
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
                let _applied = op(self);
                match status {
                    Some(status) => recorder.answer(rate(self.error_response(status))),
                    None => {
                        recorder.unanswered();
                        call.conn.drop_connection().await
                    }
                }
            }
            None => {
                let response = match op(self) {
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

/// The profile a request names with `Profile-Key`; `""` (absent) is the primary profile.
pub(crate) fn profile(headers: &HeaderMap) -> &str {
    headers
        .get("profile-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn with_rate_headers(mut response: Response, max: u32, count: u32) -> Response {
    let headers = response.headers_mut();
    headers.insert("x-ratelimit-max", HeaderValue::from(max));
    headers.insert("x-ratelimit-count", HeaderValue::from(count));
    response
}
