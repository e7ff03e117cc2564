//! Per-token request rate limiting with GCRA (the generic cell rate algorithm).
//!
//! Each key keeps one instant, its theoretical arrival time (TAT). A request at `now` is
//! allowed when `max(TAT, now) + T - burst·T <= now` (with `T = 1 / rate`), and then moves the
//! TAT forward by `T`: a key may send `burst` requests at once, then `rate` per second. A
//! refused request learns exactly how long to wait. The state lives in this process: with N
//! API instances behind a balancer a token gets at most N times the rate.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many requests a key may make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: u32,
    /// Requests allowed at once.
    pub burst: u32,
}

/// Table size from which entries whose TAT has passed are pruned.
const PRUNE_EVERY: usize = 4096;

/// A GCRA limiter keyed by `K`.
#[derive(Debug)]
pub struct RateLimiter<K> {
    interval: Duration,
    tolerance: Duration,
    state: Mutex<HashMap<K, Instant>>,
}

impl<K: Eq + Hash + Copy> RateLimiter<K> {
    /// A limiter allowing `limit` per key.
    pub fn new(limit: RateLimit) -> Self {
        let interval = Duration::from_secs(1) / limit.per_second.max(1);
        RateLimiter {
            interval,
            tolerance: interval * limit.burst.max(1),
            state: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a request for `key` at `now`: `Ok` if allowed, else how long to wait.
    pub fn check(&self, key: K, now: Instant) -> Result<(), Duration> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let tat = state.get(&key).copied().unwrap_or(now).max(now);
        let next = tat + self.interval;
        let allowed_at = next.checked_sub(self.tolerance).unwrap_or(now);
        if allowed_at > now {
            return Err(allowed_at - now);
        }
        if state.len() >= PRUNE_EVERY && !state.contains_key(&key) {
            // An entry whose TAT has passed is the same as no entry.
            state.retain(|_, tat| *tat > now);
        }
        state.insert(key, next);
        Ok(())
    }

    /// Whether a request for `key` at `now` would be refused, and for how long, without
    /// counting one.
    pub fn peek(&self, key: K, now: Instant) -> Result<(), Duration> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let tat = state.get(&key).copied().unwrap_or(now).max(now);
        let allowed_at = (tat + self.interval)
            .checked_sub(self.tolerance)
            .unwrap_or(now);
        if allowed_at > now {
            Err(allowed_at - now)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_requests_flow_at_the_rate() {
        let limiter = RateLimiter::new(RateLimit {
            per_second: 10,
            burst: 3,
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check(1, t0), Ok(()));
        }
        let wait = limiter.check(1, t0).expect_err("burst exhausted");
        assert_eq!(wait, Duration::from_millis(100));
        assert_eq!(limiter.check(2, t0), Ok(()), "keys are independent");
        assert_eq!(limiter.check(1, t0 + wait), Ok(()));
        assert!(limiter.check(1, t0 + wait).is_err());
    }

    #[test]
    fn peeking_counts_nothing_and_tells_what_check_would() {
        let limiter = RateLimiter::new(RateLimit {
            per_second: 10,
            burst: 2,
        });
        let t0 = Instant::now();
        for _ in 0..5 {
            assert_eq!(limiter.peek(7, t0), Ok(()));
        }
        limiter.check(7, t0).expect("first");
        limiter.check(7, t0).expect("second");
        assert_eq!(limiter.peek(7, t0), Err(Duration::from_millis(100)));
        assert_eq!(limiter.check(7, t0), Err(Duration::from_millis(100)));
    }
}
