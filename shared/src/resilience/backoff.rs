//! When to try again: [`Backoff`], the one exponential backoff with jitter of the tree (provider
//! retries, task retries, reconnecting to a dependency), and [`RetryPolicy`], which retries a
//! provider call a bounded number of times, the provider's own hints (`Retry-After`,
//! rate-limit headers) first.
//!
//! Only transient errors are retried. By construction of [`ProviderError`] that excludes
//! every write whose outcome is unknown: a reply or message send is retried only after a 429
//! or a refused connection, where nothing reached the provider.

use crate::config::ResilienceSettings;
use crate::provider::ProviderError;
use rand::Rng;
use std::time::Duration;

/// Exponential backoff with jitter: the wait before retry `n` is drawn between half of its
/// ceiling and the ceiling, `min(cap, base × 2^(n-1))`, so it grows, is spread out, and never
/// passes `cap`, jitter included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Ceiling of the first retry's wait.
    pub base: Duration,
    /// Largest wait.
    pub cap: Duration,
}

impl Backoff {
    /// The ceiling of the wait before retry number `retry` (1 for the first retry).
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 2_u32.saturating_pow(retry.saturating_sub(1));
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The wait before retry number `retry`.
    pub fn wait(&self, retry: u32) -> Duration {
        let half = self.ceiling(retry) / 2;
        half + jitter(&mut rand::rng(), half)
    }

    /// The waits before retry 1, 2, … without end.
    pub fn waits(self) -> impl Iterator<Item = Duration> + Send + use<> {
        (1..=u32::MAX).map(move |retry| self.wait(retry))
    }
}

/// How failed calls are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// Its cap is also the longest wait for a provider hint honoured in place.
    pub backoff: Backoff,
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
            backoff: Backoff {
                base: settings.retry_base,
                cap: settings.retry_cap,
            },
        }
    }
}

impl RetryPolicy {
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
        let cap = self.backoff.cap;
        match retry_after {
            // Longer than we are willing to hold a worker: the caller reschedules instead
            // (ProviderError::retry_at carries the hint).
            Some(hint) if *hint > cap => None,
            // A little jitter on top, so that callers told the same time do not return at once.
            Some(hint) => Some(Delay {
                wait: *hint + jitter(&mut rand::rng(), *hint / 10),
                ceiling: *hint,
                reason: "retry_after",
            }),
            // The provider's budget is used up and it did not say until when: a short backoff
            // would only collect more 429s (and enough of them suspend the profile).
            None if *rate_limit_exhausted => Some(Delay {
                wait: cap,
                ceiling: cap,
                reason: "rate_limit_exhausted",
            }),
            None => {
                let ceiling = self.backoff.ceiling(attempt);
                Some(Delay {
                    wait: self.backoff.wait(attempt),
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
            backoff: Backoff {
                base: Duration::from_millis(100),
                cap: Duration::from_millis(700),
            },
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
        let ceilings: Vec<u128> = (1..=5).map(|r| p.backoff.ceiling(r).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 400, 700, 700]);
        for attempt in 1..5 {
            let delay = p
                .next_delay(attempt, &transient(None, false))
                .expect("retry");
            assert_eq!(delay.ceiling, p.backoff.ceiling(attempt));
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
        assert_eq!(exhausted.wait, p.backoff.cap);
    }

    #[test]
    fn a_backoff_grows_jittered_and_never_passes_its_cap() {
        for cap in [
            Duration::from_millis(150),
            Duration::from_secs(2),
            Duration::from_secs(10),
        ] {
            let backoff = Backoff {
                base: Duration::from_millis(100),
                cap,
            };
            let waits: Vec<Duration> = backoff.waits().take(200).collect();
            assert!(waits.iter().all(|w| *w <= cap), "{cap:?}: {waits:?}");
            assert!(waits[0] <= Duration::from_millis(200), "{waits:?}");
            let late = &waits[100..];
            assert!(late.iter().all(|w| *w >= cap / 2), "{cap:?}: {late:?}");
            assert!(
                late.windows(2).any(|w| w[0] != w[1]),
                "still jittered at the cap: {late:?}"
            );
        }
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
