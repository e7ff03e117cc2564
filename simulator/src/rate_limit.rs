//! The provider's request budget: at most `max` requests per profile in any sliding window
//! (300 per 300 s by default, `--rate-limit 0` turns it off). Each profile has its own
//! limiter ([`crate::profile`]); the profile is the `Profile-Key` header (absent: the primary
//! profile).
//!
//! A sliding log is stricter than the fixed windows some providers use, so a client that
//! never sees a 429 here stays inside the real budget too. Only requests the limiter accepts
//! count; a 429 does not use up budget.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The limiter's verdict on one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// No limit configured.
    Unlimited,
    /// Accepted; `count` requests (this one included) are in the window.
    Allowed { max: u32, count: u32 },
    /// Over the limit.
    Limited { max: u32 },
}

#[derive(Debug)]
pub(crate) struct RateLimiter {
    max: u32,
    window: Duration,
    /// Instants of the accepted requests still in the window, oldest first.
    log: Mutex<VecDeque<Instant>>,
}

impl RateLimiter {
    pub fn new(max: u32, window: Duration) -> Self {
        RateLimiter {
            max,
            window,
            log: Mutex::new(VecDeque::new()),
        }
    }

    /// Counts a request against the budget.
    pub fn admit(&self) -> Admit {
        if self.max == 0 {
            return Admit::Unlimited;
        }
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        while log
            .front()
            .is_some_and(|&t| now.duration_since(t) >= self.window)
        {
            log.pop_front();
        }
        if log.len() >= self.max as usize {
            return Admit::Limited { max: self.max };
        }
        log.push_back(now);
        Admit::Allowed {
            max: self.max,
            count: log.len() as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_after_the_limit_is_refused() {
        let limiter = RateLimiter::new(3, Duration::from_secs(60));
        for n in 1..=3 {
            assert_eq!(limiter.admit(), Admit::Allowed { max: 3, count: n });
        }
        assert_eq!(limiter.admit(), Admit::Limited { max: 3 });
        assert_eq!(
            RateLimiter::new(0, Duration::ZERO).admit(),
            Admit::Unlimited
        );
    }
}
