//! Request statistics of one profile, served by `GET /_sim/stats`: counts by endpoint, method,
//! platform and status; the most simultaneous comment fetches seen for one post; the most
//! requests the rate limiter accepted in any sliding window; and the longest pause between two
//! accepted requests (`maxGapSeconds`: a client that bursts then stalls shows a long one).
//! `GET /_sim/profiles` shows each profile's accepted requests ([`Stats::load`]).
//!
//! Status 0 counts requests that got no answer (a `timeout` or connection-dropping
//! `lost_response` fault, or a client that gave up first). Platform `*` stands for a request
//! about several platforms, none, or an unknown one.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use crate::faults::Endpoint;
use crate::platform::Platform;

/// Accepted-request instants kept for `maxRequestsInWindow` and `maxGapSeconds` (the oldest
/// are dropped beyond).
const ACCEPTED_LOG_CAP: usize = 4_000_000;

/// HTTP method of a provider request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub(crate) enum Method {
    #[serde(rename = "GET")]
    Get,
    #[serde(rename = "POST")]
    Post,
    #[serde(rename = "DELETE")]
    Delete,
}

/// What a request is counted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct CallKey {
    pub endpoint: Endpoint,
    pub method: Method,
    pub platform: Option<Platform>,
    pub status: u16,
}

#[derive(Debug, Default)]
struct Counters {
    total: u64,
    by_key: HashMap<CallKey, u64>,
    /// Requests the rate limiter accepted.
    accepted_total: u64,
    /// Milliseconds since `start` of every request the rate limiter accepted, in order.
    accepted: VecDeque<u32>,
}

#[derive(Debug)]
pub(crate) struct Stats {
    start: Instant,
    counters: Mutex<Counters>,
    fetches_in_flight: Mutex<HashMap<usize, u32>>,
    max_fetches_per_post: AtomicU32,
}

/// How many requests the rate limiter accepted ([`Stats::load`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Load {
    pub accepted: u64,
    pub max_in_window: usize,
}

/// Marks one comment fetch for a post as in flight until dropped.
pub(crate) struct FetchGuard<'a> {
    stats: &'a Stats,
    post: usize,
}

impl Drop for FetchGuard<'_> {
    fn drop(&mut self) {
        let mut in_flight = self
            .stats
            .fetches_in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = in_flight.get_mut(&self.post) {
            *n -= 1;
            if *n == 0 {
                in_flight.remove(&self.post);
            }
        }
    }
}

impl Stats {
    pub fn new() -> Self {
        Stats {
            start: Instant::now(),
            counters: Mutex::new(Counters::default()),
            fetches_in_flight: Mutex::new(HashMap::new()),
            max_fetches_per_post: AtomicU32::new(0),
        }
    }

    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one finished (or abandoned) request.
    pub fn record(&self, key: CallKey) {
        let mut c = self.counters();
        c.total += 1;
        *c.by_key.entry(key).or_insert(0) += 1;
    }

    /// Notes a request the rate limiter accepted, now.
    pub fn accepted(&self) {
        let mut c = self.counters();
        // Read the clock under the lock so the log stays in order.
        let ms = self.start.elapsed().as_millis().min(u128::from(u32::MAX)) as u32;
        c.accepted_total += 1;
        if c.accepted.len() == ACCEPTED_LOG_CAP {
            c.accepted.pop_front();
        }
        c.accepted.push_back(ms);
    }

    /// Marks a comment fetch for `post` as in flight while the guard lives.
    pub fn comment_fetch(&self, post: usize) -> FetchGuard<'_> {
        let mut in_flight = self
            .fetches_in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let n = in_flight.entry(post).or_insert(0);
        *n += 1;
        self.max_fetches_per_post.fetch_max(*n, Ordering::Relaxed);
        FetchGuard { stats: self, post }
    }

    /// The requests the rate limiter accepted: in all, and the most within any `window`.
    pub fn load(&self, window: Duration) -> Load {
        let c = self.counters();
        Load {
            accepted: c.accepted_total,
            max_in_window: max_in_window(&c.accepted, window),
        }
    }

    /// The JSON of `GET /_sim/stats`, with `maxRequestsInWindow` over `window`.
    pub fn snapshot(&self, window: Duration) -> Value {
        let (total, mut rows, max_in_window, max_gap) = {
            let c = self.counters();
            let rows: Vec<(CallKey, u64)> = c.by_key.iter().map(|(k, v)| (*k, *v)).collect();
            (
                c.total,
                rows,
                max_in_window(&c.accepted, window),
                max_gap(&c.accepted),
            )
        };
        rows.sort();
        let requests: Vec<Value> = rows
            .into_iter()
            .map(|(k, count)| {
                json!({
                    "endpoint": k.endpoint,
                    "method": k.method,
                    "platform": k.platform.map_or("*", Platform::as_str),
                    "status": k.status,
                    "count": count,
                })
            })
            .collect();
        json!({
            "total": total,
            "requests": requests,
            "maxConcurrentCommentFetchesPerPost": self.max_fetches_per_post.load(Ordering::Relaxed),
            "windowSeconds": window.as_secs_f64(),
            "maxRequestsInWindow": max_in_window,
            "maxGapSeconds": max_gap.as_secs_f64(),
        })
    }
}

/// The most entries of the ordered log `times` (milliseconds) within any `window`.
fn max_in_window(times: &VecDeque<u32>, window: Duration) -> usize {
    let window_ms = window.as_millis().min(u128::from(u32::MAX)) as u32;
    let mut best = 0;
    let mut first = 0;
    for (last, &t) in times.iter().enumerate() {
        while t - times[first] >= window_ms.max(1) {
            first += 1;
        }
        best = best.max(last - first + 1);
    }
    best
}

/// The longest time between two consecutive entries of the ordered log `times`
/// (milliseconds); zero with fewer than two.
fn max_gap(times: &VecDeque<u32>) -> Duration {
    let gap = times
        .iter()
        .zip(times.iter().skip(1))
        .map(|(a, b)| b - a)
        .max()
        .unwrap_or(0);
    Duration::from_millis(u64::from(gap))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busiest_window_is_found() {
        let log: VecDeque<u32> = [0, 100, 900, 1000, 1500, 1999, 2500].into_iter().collect();
        assert_eq!(max_in_window(&log, Duration::from_secs(1)), 3);
        assert_eq!(max_in_window(&log, Duration::from_secs(10)), 7);
        assert_eq!(max_in_window(&VecDeque::new(), Duration::from_secs(1)), 0);
    }

    #[test]
    fn the_longest_pause_between_accepted_requests_is_found() {
        let log: VecDeque<u32> = [0, 100, 900, 1000, 2500, 2600].into_iter().collect();
        assert_eq!(max_gap(&log), Duration::from_millis(1500));
        assert_eq!(max_gap(&[7].into_iter().collect()), Duration::ZERO);
        assert_eq!(max_gap(&VecDeque::new()), Duration::ZERO);
    }
}
