//! The one error type of provider calls, classifying every outcome once.
//!
//! - [`ProviderError::Rejected`], a definite rejection: a 4xx other than 429, or a 2xx whose
//!   body says `"status": "error"`. The request was refused and not applied; stop.
//! - [`ProviderError::Transient`]: a 429; a 5xx, timeout or lost connection on a read; a
//!   refused connection on any call; our own database unavailable. Nothing was applied; try
//!   again later (the retry layer already did, within its bounds).
//! - [`ProviderError::OutcomeUnknown`]: a reply or message send that got a 5xx, a timeout, a
//!   dropped connection or an unreadable 2xx. It may have been applied: reconcile (read back)
//!   before ever sending it again.
//! - [`ProviderError::Deferred`]: the circuit breaker is open or the request budget is spent,
//!   so nothing was sent. Reschedule for `retry_at`; it was not an attempt.
//!
//! Retry, breaker and reply logic all read this classification; none re-derives it from
//! status codes.

use super::request::Endpoint;
use crate::domain::saturating_add;
use chrono::{DateTime, Utc};
use std::fmt;
use std::time::Duration;

/// Provider codes meaning "messaging is not enabled" (361) or "re-link required" (362).
const MESSAGING_DISABLED_CODES: [i64; 2] = [361, 362];

/// What went wrong with one request, below its classification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The provider answered with an error: its HTTP status, and the `code` and `message` of
    /// its error body when it had one.
    Status {
        /// HTTP status (200 for a success status carrying an error body).
        status: u16,
        /// The provider's error code (`code`, or the first of `errors[].code`).
        code: Option<i64>,
        /// The provider's message, or the HTTP reason phrase.
        message: String,
    },
    /// No answer within the request timeout.
    Timeout,
    /// No connection could be made: nothing reached the provider.
    Unreachable(String),
    /// The connection broke after the request may have been sent.
    ConnectionLost(String),
    /// The provider answered with a body that is not the expected JSON.
    InvalidResponse {
        /// HTTP status of the answer.
        status: u16,
        /// What could not be read.
        reason: String,
    },
    /// The database holding the breaker and budget could not be used; nothing was sent.
    Database(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Status {
                status,
                code: Some(code),
                message,
            } => write!(f, "HTTP {status}, code {code}: {message}"),
            Failure::Status {
                status,
                code: None,
                message,
            } => write!(f, "HTTP {status}: {message}"),
            Failure::Timeout => f.write_str("no answer within the request timeout"),
            Failure::Unreachable(reason) => write!(f, "cannot connect: {reason}"),
            Failure::ConnectionLost(reason) => write!(f, "connection lost: {reason}"),
            Failure::InvalidResponse { status, reason } => {
                write!(f, "unreadable answer (HTTP {status}): {reason}")
            }
            Failure::Database(reason) => write!(f, "database unavailable: {reason}"),
        }
    }
}

/// Why a call was not attempted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeferReason {
    /// The circuit breaker with this key is open (or half-open with every probe permit out).
    BreakerOpen(String),
    /// The request budget with this key is spent.
    BudgetSpent(String),
}

impl fmt::Display for DeferReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeferReason::BreakerOpen(key) => write!(f, "circuit breaker {key} is open"),
            DeferReason::BudgetSpent(key) => write!(f, "request budget {key} is spent"),
        }
    }
}

/// The outcome of a provider call that did not succeed; see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The provider refused the request; it was not applied and repeating it will not help.
    #[error("{endpoint} rejected by the provider: {failure}")]
    Rejected {
        /// The operation.
        endpoint: Endpoint,
        /// Always [`Failure::Status`].
        failure: Failure,
    },
    /// Nothing was applied, and the same request may succeed later.
    #[error("{endpoint} failed for now: {failure}")]
    Transient {
        /// The operation.
        endpoint: Endpoint,
        /// What happened.
        failure: Failure,
        /// How long the provider asked us to wait (`Retry-After`, `x-ratelimit-reset`).
        retry_after: Option<Duration>,
        /// The provider's rate-limit headers said its budget is used up.
        rate_limit_exhausted: bool,
    },
    /// A write may or may not have been applied; reconcile before sending it again.
    #[error("{endpoint} may or may not have been applied: {failure}")]
    OutcomeUnknown {
        /// The operation (a reply or a message send).
        endpoint: Endpoint,
        /// What happened.
        failure: Failure,
    },
    /// Not attempted (not an attempt either): try again at `retry_at`.
    #[error("{endpoint} not attempted: {reason}; try again at {retry_at}")]
    Deferred {
        /// The operation.
        endpoint: Endpoint,
        /// Breaker open or budget spent.
        reason: DeferReason,
        /// When it is worth trying again.
        retry_at: DateTime<Utc>,
    },
}

impl ProviderError {
    /// 429, 5xx, timeouts and connection problems where nothing was applied: try again later.
    pub fn is_transient(&self) -> bool {
        matches!(self, ProviderError::Transient { .. })
    }

    /// The provider refused the request (a 4xx other than 429, or an error body): final.
    pub fn is_definite_rejection(&self) -> bool {
        matches!(self, ProviderError::Rejected { .. })
    }

    /// A write that may have been applied: never resend blindly, reconcile first.
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, ProviderError::OutcomeUnknown { .. })
    }

    /// Breaker open or budget spent: reschedule for [`ProviderError::retry_at`].
    pub fn is_deferred(&self) -> bool {
        matches!(self, ProviderError::Deferred { .. })
    }

    /// The operation that failed.
    pub fn endpoint(&self) -> Endpoint {
        match self {
            ProviderError::Rejected { endpoint, .. }
            | ProviderError::Transient { endpoint, .. }
            | ProviderError::OutcomeUnknown { endpoint, .. }
            | ProviderError::Deferred { endpoint, .. } => *endpoint,
        }
    }

    /// What happened, for the classes that made a request.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            ProviderError::Rejected { failure, .. }
            | ProviderError::Transient { failure, .. }
            | ProviderError::OutcomeUnknown { failure, .. } => Some(failure),
            ProviderError::Deferred { .. } => None,
        }
    }

    /// The HTTP status the provider answered, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self.failure()? {
            Failure::Status { status, .. } | Failure::InvalidResponse { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }

    /// The provider's error code, if its answer had one.
    pub fn provider_code(&self) -> Option<i64> {
        match self.failure()? {
            Failure::Status { code, .. } => *code,
            _ => None,
        }
    }

    /// When a caller that reschedules should try again: the breaker's or budget's time, or
    /// now plus the provider's `Retry-After`; `None` when the provider gave no hint.
    pub fn retry_at(&self) -> Option<DateTime<Utc>> {
        match self {
            ProviderError::Deferred { retry_at, .. } => Some(*retry_at),
            ProviderError::Transient {
                retry_after: Some(wait),
                ..
            } => Some(saturating_add(Utc::now(), *wait)),
            _ => None,
        }
    }

    /// A definite 404 (for comments: the post has no comments yet, a documented quirk).
    pub fn is_not_found(&self) -> bool {
        self.is_definite_rejection() && self.status() == Some(404)
    }

    /// Messaging is not enabled (or must be re-linked) for the platform: a 403 on the
    /// messages endpoints, or the provider's codes 361/362.
    pub fn is_messaging_disabled(&self) -> bool {
        self.is_definite_rejection()
            && (self
                .provider_code()
                .is_some_and(|c| MESSAGING_DISABLED_CODES.contains(&c))
                || (self.status() == Some(403)
                    && matches!(self.endpoint(), Endpoint::Messages | Endpoint::SendMessage)))
    }

    /// Whether this outcome says the provider is unwell, for the circuit breaker: 429, 5xx,
    /// timeouts and connection failures. Rejections (a 400, messaging disabled) and answers
    /// we could not read show a provider that is up; a deferred call made no request.
    pub fn is_provider_failure(&self) -> bool {
        match self {
            ProviderError::Transient { failure, .. }
            | ProviderError::OutcomeUnknown { failure, .. } => match failure {
                Failure::Status { status, .. } => *status == 429 || *status >= 500,
                Failure::Timeout | Failure::Unreachable(_) | Failure::ConnectionLost(_) => true,
                Failure::InvalidResponse { .. } | Failure::Database(_) => false,
            },
            ProviderError::Rejected { .. } | ProviderError::Deferred { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, code: Option<i64>) -> Failure {
        Failure::Status {
            status,
            code,
            message: "m".to_owned(),
        }
    }

    #[test]
    fn each_outcome_has_exactly_one_class() {
        let errors = [
            ProviderError::Rejected {
                endpoint: Endpoint::Reply,
                failure: status(400, Some(101)),
            },
            ProviderError::Transient {
                endpoint: Endpoint::History,
                failure: status(503, None),
                retry_after: None,
                rate_limit_exhausted: false,
            },
            ProviderError::OutcomeUnknown {
                endpoint: Endpoint::Reply,
                failure: Failure::Timeout,
            },
            ProviderError::Deferred {
                endpoint: Endpoint::History,
                reason: DeferReason::BreakerOpen("twitter".to_owned()),
                retry_at: Utc::now(),
            },
        ];
        for e in &errors {
            let classes = [
                e.is_definite_rejection(),
                e.is_transient(),
                e.is_outcome_unknown(),
                e.is_deferred(),
            ];
            assert_eq!(classes.iter().filter(|c| **c).count(), 1, "{e}");
        }
    }

    #[test]
    fn rejections_and_unreadable_answers_do_not_count_against_the_provider() {
        let disabled = ProviderError::Rejected {
            endpoint: Endpoint::Messages,
            failure: status(403, Some(361)),
        };
        assert!(disabled.is_messaging_disabled());
        assert!(!disabled.is_provider_failure());
        let unreadable = ProviderError::Transient {
            endpoint: Endpoint::History,
            failure: Failure::InvalidResponse {
                status: 200,
                reason: "eof".to_owned(),
            },
            retry_after: None,
            rate_limit_exhausted: false,
        };
        assert!(!unreadable.is_provider_failure());
        let limited = ProviderError::Transient {
            endpoint: Endpoint::Reply,
            failure: status(429, Some(189)),
            retry_after: Some(Duration::from_secs(2)),
            rate_limit_exhausted: true,
        };
        assert!(limited.is_provider_failure());
        assert!(limited.retry_at().is_some_and(|t| t > Utc::now()));
    }
}
