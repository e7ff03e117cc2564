//! The guard every provider request passes (DESIGN §7):
//! `logging → rate budget → circuit breaker → retry with backoff → HTTP`, one [`Guard`] per
//! [`ProviderKey`] (a platform today, a (profile, platform) later). The typed operations that
//! call through it are [`crate::provider::Ayrshare`].
//!
//! The layers are ordered by what they guard, and budget and breaker act on every request the
//! provider may see, retries included:
//!
//! ```text
//! call: span, outcome log
//!   attempt 1: breaker known open here? → refused
//!              budget slot (of the guard's class) → breaker admission → HTTP
//!              → slot used or given back, provider's rate-limit word → breaker record
//!   backoff (full jitter; Retry-After and rate-limit headers first)
//!   attempt 2 …
//! ```
//!
//! A budget slot costs one database round trip per request (see [`budget`](RateBudget));
//! admission comes from a breaker this process saw closed within `BREAKER_RECHECK_MS`, and a
//! healthy outcome is counted in memory until then.
//!
//! Taking a budget slot per attempt (not per call) is what keeps retries inside the
//! provider's budget; admitting per attempt is what makes a half-open probe exactly one
//! request (this is the usual nesting, retry outside breaker outside rate limiter). The slot
//! comes before the admission so that a probe permit is never held while waiting for the
//! budget; a slot whose request never left (the breaker refused it, the connection could not
//! be made) is given back. A refusal by the breaker or the budget ends the call with
//! [`ProviderError::Deferred`]: the caller reschedules, it was not an attempt.

mod backoff;
mod breaker;
mod budget;

pub use backoff::{Backoff, Delay, RetryPolicy};
pub use breaker::{
    Admission, BreakerSettings, BreakerState, BreakerStatus, CircuitBreaker, Health, Permit,
    STATE_METRIC, statuses,
};
pub use budget::{
    BudgetClass, BudgetError, GRANTED_METRIC, RETURNED_METRIC, RateBudget, SEND_MARGIN,
    SPENT_METRIC, Slot, Take, USED_METRIC, burst, polling_pace, reserved,
};

use crate::config::ResilienceSettings;
use crate::provider::{Client, DeferReason, Failure, ProviderError, ProviderKey, Request};
use sea_orm::{DatabaseConnection, DbErr};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// The provider, reached through the resilience layers for one [`ProviderKey`]. Cheap to
/// clone; clones share the breaker's memory.
#[derive(Debug, Clone)]
pub struct Guard {
    inner: Arc<Inner>,
    class: BudgetClass,
    /// How long an attempt waits for a budget slot before the call is deferred.
    max_wait: Duration,
}

#[derive(Debug)]
struct Inner {
    key: ProviderKey,
    client: Client,
    retry: RetryPolicy,
    breaker: CircuitBreaker,
    budget: RateBudget,
}

fn database_error(endpoint: crate::provider::Endpoint, error: &DbErr) -> ProviderError {
    ProviderError::Transient {
        endpoint,
        failure: Failure::Database(error.to_string()),
        retry_after: None,
        rate_limit_exhausted: false,
    }
}

impl Guard {
    /// The guard for `key`: `client` for HTTP, the breaker and budget in `db`, audit rows
    /// written as `system:<process>`. Its requests are [`BudgetClass::Refresh`] and wait for
    /// the budget up to two windows, until told otherwise ([`Guard::for_class`],
    /// [`Guard::waiting_at_most`]).
    pub fn new(
        key: ProviderKey,
        client: Client,
        db: DatabaseConnection,
        settings: &ResilienceSettings,
        process: &str,
    ) -> Self {
        let breaker = CircuitBreaker::new(
            key.breaker_key(),
            BreakerSettings::from(settings),
            db.clone(),
            process,
        );
        let budget = RateBudget::new(
            key.budget_key(),
            settings.rate_budget_requests,
            settings.rate_budget_window,
            settings.budget_reserve_percent,
            db,
        );
        Guard {
            inner: Arc::new(Inner {
                key,
                client,
                retry: RetryPolicy::from(settings),
                breaker,
                budget,
            }),
            class: BudgetClass::Refresh,
            max_wait: 2 * (settings.rate_budget_window + SEND_MARGIN),
        }
    }

    /// What this guard is for.
    pub fn key(&self) -> &ProviderKey {
        &self.inner.key
    }

    /// The budget this guard spends.
    pub fn budget(&self) -> &RateBudget {
        &self.inner.budget
    }

    /// The same chain, answering a spent budget with [`ProviderError::Deferred`] (and when a
    /// slot frees) instead of waiting: for jobs that prefer to reschedule.
    pub fn rescheduling(&self) -> Self {
        self.waiting_at_most(Duration::ZERO)
    }

    /// The same chain, waiting up to `max_wait` for a budget slot before deferring.
    pub fn waiting_at_most(&self, max_wait: Duration) -> Self {
        Guard {
            max_wait,
            ..self.clone()
        }
    }

    /// The same chain, spending the budget of `class`.
    pub fn for_class(&self, class: BudgetClass) -> Self {
        Guard {
            class,
            ..self.clone()
        }
    }

    /// Sends `request` through the layers (logging, retries around [`Guard::attempt`]) and
    /// parses a success with `parse`.
    pub(crate) async fn call<T>(
        &self,
        request: Request,
        parse: fn(Value) -> Result<T, String>,
    ) -> Result<T, ProviderError> {
        let span = tracing::info_span!(
            "provider_call",
            platform = self.inner.key.platform.as_str(),
            endpoint = request.endpoint.as_str(),
        );
        async {
            let started = Instant::now();
            let mut attempt = 1;
            let outcome = loop {
                let result = self.attempt(&request, attempt, parse).await;
                let error = match result {
                    Ok(value) => break Ok(value),
                    Err(error) => error,
                };
                let Some(delay) = self.inner.retry.next_delay(attempt, &error) else {
                    break Err(error);
                };
                tracing::info!(
                    attempt,
                    delay_ms = delay.wait.as_millis() as u64,
                    ceiling_ms = delay.ceiling.as_millis() as u64,
                    reason = delay.reason,
                    error = %error,
                    "retrying provider call"
                );
                tokio::time::sleep(delay.wait).await;
                attempt += 1;
            };
            match &outcome {
                // A refusal or a deferral is an answer, not trouble (e.g. "no comments yet").
                Err(error) if error.is_definite_rejection() || error.is_deferred() => {
                    tracing::info!(
                        attempts = attempt,
                        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
                        deferred = error.is_deferred(),
                        retry_at = ?error.retry_at(),
                        error = %error,
                        "provider call not done"
                    );
                }
                Err(error) => tracing::warn!(
                    attempts = attempt,
                    duration_ms = started.elapsed().as_secs_f64() * 1000.0,
                    outcome_unknown = error.is_outcome_unknown(),
                    retry_at = ?error.retry_at(),
                    error = %error,
                    "provider call failed"
                ),
                Ok(_) => {}
            }
            outcome
        }
        .instrument(span)
        .await
    }

    /// One attempt: budget slot, breaker admission, HTTP, breaker record.
    async fn attempt<T>(
        &self,
        request: &Request,
        attempt: u32,
        parse: fn(Value) -> Result<T, String>,
    ) -> Result<T, ProviderError> {
        let inner = &*self.inner;
        let endpoint = request.endpoint;
        let breaker_open = |retry_at| ProviderError::Deferred {
            endpoint,
            reason: DeferReason::BreakerOpen(inner.breaker.key().to_owned()),
            retry_at,
        };
        if let Some(retry_at) = inner.breaker.known_open() {
            return Err(breaker_open(retry_at));
        }
        let slot = match inner.budget.take(self.class, self.max_wait).await {
            Ok(slot) => slot,
            Err(BudgetError::Spent { retry_at }) => {
                return Err(ProviderError::Deferred {
                    endpoint,
                    reason: DeferReason::BudgetSpent(inner.budget.key().to_owned()),
                    retry_at,
                });
            }
            Err(BudgetError::Database(e)) => return Err(database_error(endpoint, &e)),
        };
        let permit = match inner.breaker.admit().await {
            Ok(Admission::Granted(permit)) => permit,
            Ok(Admission::Refused { retry_at }) => {
                self.give_back(slot).await;
                return Err(breaker_open(retry_at));
            }
            Err(e) => {
                self.give_back(slot).await;
                return Err(database_error(endpoint, &e));
            }
        };
        let (outcome, hints) = inner.client.send(request, attempt, parse).await;
        let left = slot.left;
        let never_left = matches!(
            outcome.as_ref().err().and_then(ProviderError::failure),
            Some(Failure::Unreachable(_))
        );
        if never_left {
            self.give_back(slot).await;
        } else {
            inner.budget.used(slot);
        }
        let refused = matches!(
            outcome.as_ref().err().and_then(ProviderError::status),
            Some(429)
        );
        // A 429 whose headers say the provider's window is full stops grants until its reset
        // (or our oldest grant leaving the window); one that says nothing of the provider's
        // count is left to the retry's backoff.
        let provider_word = match hints.remaining {
            Some(0) if refused => Some((0, hints.retry_after)),
            Some(remaining) if remaining < u64::from(left) => Some((remaining, None)),
            _ => None,
        };
        if let Some((remaining, free_in)) = provider_word
            && let Err(e) = inner.budget.observe(remaining, free_in).await
        {
            tracing::warn!(budget = inner.budget.key(), error = %e, "cannot record the provider's rate limit");
        }
        let health = match &outcome {
            Err(e) if e.is_provider_failure() => Health::Failed,
            _ => Health::Healthy,
        };
        // The provider call happened: its outcome stands even if it cannot be counted.
        if let Err(e) = inner.breaker.record(permit, health).await {
            tracing::warn!(
                breaker = inner.breaker.key(), error = %e,
                "cannot record a call in the circuit breaker"
            );
        }
        outcome
    }

    /// Gives back a slot whose request never left; the budget only loses a slot if this fails.
    async fn give_back(&self, slot: Slot) {
        if let Err(e) = self.inner.budget.give_back(slot).await {
            tracing::warn!(budget = self.inner.budget.key(), error = %e, "cannot give a budget slot back");
        }
    }
}
