//! The resilience chain around every provider call (DESIGN §7):
//! `logging → rate budget → circuit breaker → retry with backoff → HTTP`, one [`Chain`] per
//! [`ProviderKey`] (a platform today, a (profile, platform) later).
//!
//! The layers are ordered by what they guard, and budget and breaker act on every request the
//! provider may see, retries included:
//!
//! ```text
//! call: span, outcome log
//!   attempt 1: breaker known open here? → refused
//!              budget slot → breaker admission → HTTP → breaker record
//!   backoff (full jitter; Retry-After and rate-limit headers first)
//!   attempt 2 …
//! ```
//!
//! On the common path none of these steps waits for the database: a budget slot comes from a
//! batch this process was granted (see [`budget`](RateBudget)), admission from a breaker it
//! saw closed within `BREAKER_RECHECK_MS`, and a healthy outcome is counted in memory until
//! then. The database is asked once per batch and once per recheck, and at once for every
//! failure, probe and transition.
//!
//! Taking a budget slot per attempt (not per call) is what keeps retries inside the
//! provider's budget; admitting per attempt is what makes a half-open probe exactly one
//! request (this is the usual nesting, retry outside breaker outside rate limiter). The slot
//! comes before the admission so that a probe permit is never held while waiting for the
//! budget; a call that a breaker opened by another process refuses has used a slot without
//! a request (this process then remembers the breaker is open and refuses before the budget).
//! A refusal by the breaker or the budget ends the call with [`ProviderError::Deferred`]: the
//! caller reschedules, it was not an attempt.

mod backoff;
mod breaker;
mod budget;

pub use backoff::{Delay, RetryPolicy};
pub use breaker::{
    AUDIT_ENTITY, Admission, BreakerSettings, BreakerState, BreakerStatus, CircuitBreaker, Outcome,
    Permit, STATE_METRIC, statuses,
};
pub use budget::{
    BudgetError, BudgetMode, RateBudget, SEND_MARGIN, SLOT_LEASE, SPENT_METRIC, Take,
};

use crate::config::ResilienceSettings;
use crate::provider::{
    Client, CommentsPage, CommentsTarget, DeferReason, Failure, HistoryPost, HistoryQuery,
    MessagesPage, MessagesQuery, OutgoingMessage, PlatformHistory, ProviderError, ProviderKey,
    ReplyReceipt, ReplyTarget, Request, SentMessage, model as parse,
};
use sea_orm::{DatabaseConnection, DbErr};
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

/// The provider, reached through the resilience chain for one [`ProviderKey`]. Cheap to
/// clone; clones share the breaker's memory.
#[derive(Debug, Clone)]
pub struct Chain {
    inner: Arc<Inner>,
    budget_mode: BudgetMode,
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

impl Chain {
    /// The chain for `key`: `client` for HTTP, the breaker and budget in `db`, audit rows
    /// written as `system:<process>`. Waits for the budget by default (see
    /// [`Chain::rescheduling`]).
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
            db,
        );
        Chain {
            inner: Arc::new(Inner {
                key,
                client,
                retry: RetryPolicy::from(settings),
                breaker,
                budget,
            }),
            budget_mode: BudgetMode::Wait,
        }
    }

    /// What this chain is for.
    pub fn key(&self) -> &ProviderKey {
        &self.inner.key
    }

    /// The same chain, answering a spent budget with [`ProviderError::Deferred`] (and when a
    /// slot frees) instead of waiting: for jobs that prefer to reschedule.
    pub fn rescheduling(&self) -> Self {
        Chain {
            inner: self.inner.clone(),
            budget_mode: BudgetMode::Reschedule,
        }
    }

    /// Posts made through Ayrshare on this platform (`GET /history`).
    pub async fn history(&self, query: &HistoryQuery) -> Result<Vec<HistoryPost>, ProviderError> {
        let request = Request::history(self.inner.key.platform, query);
        self.call(request, parse::history).await
    }

    /// The network's own posts (`GET /history/:platform`).
    pub async fn platform_history(&self) -> Result<PlatformHistory, ProviderError> {
        let request = Request::platform_history(self.inner.key.platform);
        self.call(request, parse::platform_history).await
    }

    /// The comments of a post, by either id form, or the replies below a comment. A post
    /// without comments may answer 404 ([`ProviderError::is_not_found`]).
    pub async fn comments(&self, target: &CommentsTarget) -> Result<CommentsPage, ProviderError> {
        let request = Request::comments(self.inner.key.platform, target);
        self.call(request, parse::comments).await
    }

    /// Replies to a comment. Never repeated once it may have reached the provider: an
    /// [`ProviderError::OutcomeUnknown`] means "reconcile before sending again".
    pub async fn reply(
        &self,
        target: &ReplyTarget,
        text: &str,
    ) -> Result<ReplyReceipt, ProviderError> {
        let request = Request::reply(self.inner.key.platform, target, text);
        self.call(request, parse::reply_receipt).await
    }

    /// Direct messages (`GET /messages/:platform`).
    pub async fn messages(&self, query: &MessagesQuery) -> Result<MessagesPage, ProviderError> {
        let request = Request::messages(self.inner.key.platform, query);
        self.call(request, parse::messages).await
    }

    /// Sends a direct message; retried only where nothing reached the provider, like
    /// [`Chain::reply`].
    pub async fn send_message(
        &self,
        message: &OutgoingMessage,
    ) -> Result<SentMessage, ProviderError> {
        let request = Request::send_message(self.inner.key.platform, message);
        self.call(request, parse::sent_message).await
    }

    /// The logging and retry layers around [`Chain::attempt`].
    async fn call<T>(
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
        match inner.budget.take(self.budget_mode).await {
            Ok(()) => {}
            Err(BudgetError::Spent { retry_at }) => {
                return Err(ProviderError::Deferred {
                    endpoint,
                    reason: DeferReason::BudgetSpent(inner.budget.key().to_owned()),
                    retry_at,
                });
            }
            Err(BudgetError::Database(e)) => return Err(database_error(endpoint, &e)),
        }
        let permit = match inner.breaker.admit().await {
            Ok(Admission::Granted(permit)) => permit,
            Ok(Admission::Refused { retry_at }) => return Err(breaker_open(retry_at)),
            Err(e) => return Err(database_error(endpoint, &e)),
        };
        let outcome = inner.client.send(request, attempt, parse).await;
        let health = match &outcome {
            Err(e) if e.is_provider_failure() => Outcome::Failed,
            _ => Outcome::Healthy,
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
}
