//! When to try a failed call again: exponential backoff with full jitter, capped, a bounded
//! number of attempts, and the provider's own hints (`Retry-After`, rate-limit headers) first.
//!
//! Only transient errors are retried. By construction of [`ProviderError`] that excludes
//! every write whose outcome is unknown: a reply or message send is retried only after a 429
//! or a refused connection, where nothing reached the provider.

use crate::config::ResilienceSettings;
use crate::provider::ProviderError;
use rand::Rng;
use std::time::Duration;

/// How failed calls are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// Ceiling of the first retry's delay.
    pub base: Duration,
    /// Largest ceiling; also the longest wait for a provider hint honoured in place.
    pub cap: Duration,
}

/// The wait before the next attempt, and why that long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delay {
    /// How long to wait.
    pub wait: Duration,
    /// The most it could have been (the backoff ceiling, or the provider's hint).
    pub ceiling: Duration,
    /// `backoff`, `retry_after` or `rate_limit_exhausted`.
    pub reason: &'static str,
}

impl From<&ResilienceSettings> for RetryPolicy {
    fn from(settings: &ResilienceSettings) -> Self {
        RetryPolicy {
            max_attempts: settings.retry_max_attempts,
            base: settings.retry_base,
            cap: settings.retry_cap,
        }
    }
}

impl RetryPolicy {
    /// The ceiling of the delay before retry number `retry` (1 for the first retry):
    /// `min(cap, base × 2^(retry-1))`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 2_u32.saturating_pow(retry.saturating_sub(1));
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// Whether and how long to wait after attempt number `attempt` failed with `error`;
    /// `None` to stop and hand `error` to the caller.
    pub fn next_delay(&self, attempt: u32, error: &ProviderError) -> Option<Delay> {
        let ProviderError::Transient {
            retry_after,
            rate_limit_exhausted,
            ..
        } = error
        else {
            return None;
        };
        if attempt >= self.max_attempts {
            return None;
        }
        let mut rng = rand::rng();
        match retry_after {
            // Longer than we are willing to hold a worker: the caller reschedules instead
            // (ProviderError::retry_at carries the hint).
            Some(hint) if *hint > self.cap => None,
            // A little jitter on top, so that callers told the same time do not return at once.
            Some(hint) => Some(Delay {
                wait: *hint + jitter(&mut rng, *hint / 10),
                ceiling: *hint,
                reason: "retry_after",
            }),
            // The provider's budget is used up and it did not say until when: a short backoff
            // would only collect more 429s (and enough of them suspend the profile).
            None if *rate_limit_exhausted => Some(Delay {
                wait: self.cap,
                ceiling: self.cap,
                reason: "rate_limit_exhausted",
            }),
            None => {
                let ceiling = self.ceiling(attempt);
                Some(Delay {
                    wait: jitter(&mut rng, ceiling),
                    ceiling,
                    reason: "backoff",
                })
            }
        }
    }
}

/// A uniformly random duration between zero and `max`, to the millisecond.
fn jitter(rng: &mut impl Rng, max: Duration) -> Duration {
    let max_ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rng.random_range(0..=max_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{Endpoint, Failure};

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(100),
            cap: Duration::from_millis(700),
        }
    }

    fn transient(retry_after: Option<Duration>, exhausted: bool) -> ProviderError {
        ProviderError::Transient {
            endpoint: Endpoint::History,
            failure: Failure::Timeout,
            retry_after,
            rate_limit_exhausted: exhausted,
        }
    }

    #[test]
    fn ceilings_double_up_to_the_cap_and_delays_stay_below_them() {
        let p = policy();
        let ceilings: Vec<u128> = (1..=5).map(|r| p.ceiling(r).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 400, 700, 700]);
        for attempt in 1..5 {
            let delay = p
                .next_delay(attempt, &transient(None, false))
                .expect("retry");
            assert_eq!(delay.ceiling, p.ceiling(attempt));
            assert!(delay.wait <= delay.ceiling);
        }
        assert_eq!(
            p.next_delay(5, &transient(None, false)),
            None,
            "attempts are bounded"
        );
    }

    #[test]
    fn provider_hints_come_first_and_long_ones_go_back_to_the_caller() {
        let p = policy();
        let hinted = p
            .next_delay(1, &transient(Some(Duration::from_millis(500)), false))
            .expect("retry");
        assert!(hinted.wait >= Duration::from_millis(500));
        assert_eq!(hinted.reason, "retry_after");
        assert_eq!(
            p.next_delay(1, &transient(Some(Duration::from_secs(60)), false)),
            None
        );
        let exhausted = p.next_delay(1, &transient(None, true)).expect("retry");
        assert_eq!(exhausted.wait, p.cap);
    }

    #[test]
    fn only_transient_errors_are_retried() {
        let unknown = ProviderError::OutcomeUnknown {
            endpoint: Endpoint::Reply,
            failure: Failure::Timeout,
        };
        assert_eq!(policy().next_delay(1, &unknown), None);
    }
}
