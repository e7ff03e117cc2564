//! One HTTP attempt against the provider: builds the request, sends it, classifies the outcome
//! into [`ProviderError`] once, logs it and records its duration.
//!
//! The API key and the profile key travel only in headers marked sensitive; they are never
//! part of a URL, a log line, an error or a `Debug` output.

use super::MAX_RETRY_AFTER;
use super::error::{Failure, ProviderError};
use super::request::{Endpoint, Request};
use crate::config::ProviderSettings;
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::fmt;
use std::time::{Duration, Instant};
use url::Url;

/// The metric every attempt's duration is recorded in, labelled by platform, endpoint and
/// status (an HTTP status, or `timeout`, `unreachable`, `connection_lost`).
pub const REQUEST_DURATION_METRIC: &str = "provider_request_duration_seconds";

/// Longest connection set-up; beyond it nothing was sent, so even a write may be retried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientBuildError {
    /// The HTTP stack could not be initialised (e.g. TLS).
    #[error("cannot build the provider's HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    /// A key contains characters a header cannot carry (the key itself is not shown).
    #[error("the {0} contains characters that cannot be sent in an HTTP header")]
    InvalidKey(&'static str),
}

/// The Ayrshare HTTP client: single attempts, no retries (those are the resilience guard's,
/// [`crate::resilience::Guard`], through which [`super::Ayrshare`] calls it). Cheap to clone;
/// clones share the connection pool.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    authorization: HeaderValue,
    profile_key: Option<HeaderValue>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field(
                "profile_key",
                &self.profile_key.as_ref().map(|_| "[redacted]"),
            )
            .finish_non_exhaustive()
    }
}

fn sensitive(value: String, what: &'static str) -> Result<HeaderValue, ClientBuildError> {
    let mut header =
        HeaderValue::from_str(&value).map_err(|_| ClientBuildError::InvalidKey(what))?;
    header.set_sensitive(true);
    Ok(header)
}

impl Client {
    /// A client for the provider at `settings.url`, giving each request `request_timeout`
    /// (connection included).
    pub fn new(
        settings: &ProviderSettings,
        request_timeout: Duration,
    ) -> Result<Self, ClientBuildError> {
        let http = reqwest::Client::builder()
            .timeout(request_timeout)
            .connect_timeout(request_timeout.min(CONNECT_TIMEOUT))
            .build()?;
        let authorization = sensitive(
            format!("Bearer {}", settings.api_key.expose_secret()),
            "API key",
        )?;
        let profile_key = settings
            .profile_key
            .as_ref()
            .map(|key| sensitive(key.expose_secret().to_owned(), "profile key"))
            .transpose()?;
        Ok(Client {
            http,
            base: settings.url.clone(),
            authorization,
            profile_key,
        })
    }

    /// The same client (sharing its connection pool) sending `profile_key` as `Profile-Key`
    /// instead of its own; `None` keeps its own.
    pub fn with_profile_key(
        &self,
        profile_key: Option<&SecretString>,
    ) -> Result<Client, ClientBuildError> {
        let mut client = self.clone();
        if let Some(key) = profile_key {
            client.profile_key = Some(sensitive(key.expose_secret().to_owned(), "profile key")?);
        }
        Ok(client)
    }

    fn url(&self, request: &Request) -> Url {
        let mut url = self.base.clone();
        // Only URLs that cannot be a base refuse segments; http(s) URLs with a host can.
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(&request.path);
        }
        url
    }

    /// Sends `request` once (`attempt` is for the log line) and reads the answer with
    /// `parse`; an answer `parse` cannot read is classified like a lost one. Also returns
    /// what the answer's headers said about the rate limit.
    pub(crate) async fn send<T>(
        &self,
        request: &Request,
        attempt: u32,
        parse: fn(Value) -> Result<T, String>,
    ) -> (Result<T, ProviderError>, RetryHints) {
        let started = Instant::now();
        let mut builder = self
            .http
            .request(request.method.clone(), self.url(request))
            .header(AUTHORIZATION, self.authorization.clone())
            .query(&request.query);
        if let Some(profile_key) = &self.profile_key {
            builder = builder.header("Profile-Key", profile_key.clone());
        }
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        let endpoint = request.endpoint;
        let mut answered = None;
        let mut hints = RetryHints::default();
        let outcome = match builder.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                answered = Some(status);
                hints = RetryHints::from_headers(response.headers(), Utc::now());
                match response.bytes().await {
                    Ok(body) => classify(endpoint, status, &hints, &body).and_then(|json| {
                        parse(json).map_err(|reason| {
                            not_applied_or_unknown(
                                endpoint,
                                Failure::InvalidResponse { status, reason },
                                &hints,
                            )
                        })
                    }),
                    Err(e) => Err(transport_error(endpoint, &e)),
                }
            }
            Err(e) => Err(transport_error(endpoint, &e)),
        };
        let elapsed = started.elapsed();
        let status = status_label(answered, &outcome);
        metrics::histogram!(
            REQUEST_DURATION_METRIC,
            "platform" => request.platform.as_str(),
            "endpoint" => endpoint.as_str(),
            "status" => status.clone(),
        )
        .record(elapsed.as_secs_f64());
        let duration_ms = elapsed.as_secs_f64() * 1000.0;
        let platform = request.platform.as_str();
        match &outcome {
            Ok(_) => tracing::info!(
                platform,
                endpoint = endpoint.as_str(),
                status,
                duration_ms,
                attempt,
                "provider request"
            ),
            Err(e) if e.is_definite_rejection() => tracing::info!(
                platform, endpoint = endpoint.as_str(), status, duration_ms, attempt, error = %e,
                "provider request rejected"
            ),
            Err(e) => tracing::warn!(
                platform, endpoint = endpoint.as_str(), status, duration_ms, attempt, error = %e,
                "provider request failed"
            ),
        }
        (outcome, hints)
    }
}

/// The `status` of the log line and metric: the HTTP status, or what happened instead.
fn status_label<T>(answered: Option<u16>, outcome: &Result<T, ProviderError>) -> String {
    match outcome {
        Ok(_) => answered.unwrap_or(200).to_string(),
        Err(e) => match e.failure() {
            Some(Failure::Status { status, .. } | Failure::InvalidResponse { status, .. }) => {
                status.to_string()
            }
            Some(Failure::Timeout) => "timeout".to_owned(),
            Some(Failure::Unreachable(_)) => "unreachable".to_owned(),
            Some(Failure::ConnectionLost(_)) => "connection_lost".to_owned(),
            Some(Failure::Database(_)) | None => "not_sent".to_owned(),
        },
    }
}

/// What the provider's headers say about waiting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RetryHints {
    /// From `Retry-After` (seconds or an HTTP date), else `x-ratelimit-reset`.
    pub retry_after: Option<Duration>,
    /// `x-ratelimit-remaining: 0`, or `x-ratelimit-count` at `x-ratelimit-max`.
    pub exhausted: bool,
    /// Requests the provider says are left: `x-ratelimit-remaining`, or `x-ratelimit-max`
    /// minus `x-ratelimit-count`.
    pub remaining: Option<u64>,
}

impl RetryHints {
    pub(crate) fn from_headers(headers: &HeaderMap, now: DateTime<Utc>) -> Self {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let number = |name: &str| text(name).and_then(|v| v.parse::<u64>().ok());
        let until = |t: DateTime<Utc>| (t - now).to_std().unwrap_or(Duration::ZERO);
        let retry_after = match text("retry-after") {
            Some(value) => match value.parse::<u64>() {
                Ok(seconds) => Some(Duration::from_secs(seconds)),
                Err(_) => DateTime::parse_from_rfc2822(value)
                    .ok()
                    .map(|t| until(t.with_timezone(&Utc))),
            },
            None => None,
        }
        .or_else(|| {
            // Documented only as "in ms": an epoch in ms or s, or a delay in ms.
            let reset = number("x-ratelimit-reset")?;
            let reset_i64 = i64::try_from(reset).ok()?;
            if reset >= 1_000_000_000_000 {
                DateTime::from_timestamp_millis(reset_i64).map(until)
            } else if reset >= 1_000_000_000 {
                DateTime::from_timestamp(reset_i64, 0).map(until)
            } else {
                Some(Duration::from_millis(reset))
            }
        });
        let remaining = number("x-ratelimit-remaining").or_else(|| {
            match (number("x-ratelimit-count"), number("x-ratelimit-max")) {
                (Some(count), Some(max)) if max > 0 => Some(max.saturating_sub(count)),
                _ => None,
            }
        });
        RetryHints {
            retry_after: retry_after.map(|wait| wait.min(MAX_RETRY_AFTER)),
            exhausted: remaining == Some(0),
            remaining,
        }
    }
}

/// `code` and `message` of an error body: request level, or the first per-network error.
fn error_details(body: Option<&Value>) -> (Option<i64>, Option<String>) {
    let Some(body) = body else {
        return (None, None);
    };
    let first_error = body
        .get("errors")
        .and_then(Value::as_array)
        .and_then(|errors| errors.first());
    let code = |v: &Value| match v.get("code")? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    };
    let message = |v: &Value| v.get("message").and_then(Value::as_str).map(str::to_owned);
    (
        code(body).or_else(|| first_error.and_then(code)),
        message(body).or_else(|| first_error.and_then(message)),
    )
}

/// A failure of a read is transient; of a write, its outcome is unknown.
fn not_applied_or_unknown(
    endpoint: Endpoint,
    failure: Failure,
    hints: &RetryHints,
) -> ProviderError {
    if endpoint.is_write() {
        ProviderError::OutcomeUnknown { endpoint, failure }
    } else {
        ProviderError::Transient {
            endpoint,
            failure,
            retry_after: hints.retry_after,
            rate_limit_exhausted: hints.exhausted,
        }
    }
}

/// Classifies an answer; the one place where statuses become error classes.
pub(crate) fn classify(
    endpoint: Endpoint,
    status: u16,
    hints: &RetryHints,
    body: &[u8],
) -> Result<Value, ProviderError> {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let status_failure = |json: Option<&Value>| {
        let (code, message) = error_details(json);
        Failure::Status {
            status,
            code,
            message: message.unwrap_or_else(|| {
                StatusCode::from_u16(status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("error")
                    .to_owned()
            }),
        }
    };
    match status {
        200..=299 => match json {
            Some(body) if body.get("status").and_then(Value::as_str) == Some("error") => {
                Err(ProviderError::Rejected {
                    endpoint,
                    failure: status_failure(Some(&body)),
                })
            }
            Some(body) => Ok(body),
            None => Err(not_applied_or_unknown(
                endpoint,
                Failure::InvalidResponse {
                    status,
                    reason: "the body is not JSON".to_owned(),
                },
                hints,
            )),
        },
        // Refused before anything was applied, for reads and writes alike.
        429 => Err(ProviderError::Transient {
            endpoint,
            failure: status_failure(json.as_ref()),
            retry_after: hints.retry_after,
            rate_limit_exhausted: hints.exhausted,
        }),
        500.. => Err(not_applied_or_unknown(
            endpoint,
            status_failure(json.as_ref()),
            hints,
        )),
        _ => Err(ProviderError::Rejected {
            endpoint,
            failure: status_failure(json.as_ref()),
        }),
    }
}

fn transport_error(endpoint: Endpoint, error: &reqwest::Error) -> ProviderError {
    let mut reason = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        reason.push_str(": ");
        reason.push_str(&cause.to_string());
        source = cause.source();
    }
    let hints = RetryHints::default();
    // A failed connect (refused, unreachable, or timed out connecting) sent nothing.
    if error.is_connect() {
        ProviderError::Transient {
            endpoint,
            failure: Failure::Unreachable(reason),
            retry_after: None,
            rate_limit_exhausted: false,
        }
    } else if error.is_timeout() {
        not_applied_or_unknown(endpoint, Failure::Timeout, &hints)
    } else {
        not_applied_or_unknown(endpoint, Failure::ConnectionLost(reason), &hints)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(endpoint: Endpoint, status: u16, body: &str) -> Result<Value, ProviderError> {
        classify(endpoint, status, &RetryHints::default(), body.as_bytes())
    }

    #[test]
    fn a_success_status_with_an_error_body_is_a_rejection_with_the_providers_code() {
        let body = json!({"status": "error", "errors": [{"action": "post", "status": "error",
            "code": 110, "message": "Status is a duplicate.", "platform": "twitter"}]});
        let err = answer(Endpoint::Reply, 200, &body.to_string()).expect_err("error body");
        assert!(err.is_definite_rejection());
        assert_eq!(err.provider_code(), Some(110));
        assert!(err.to_string().contains("Status is a duplicate."), "{err}");
    }

    #[test]
    fn statuses_are_classified_by_kind_of_call() {
        let body = r#"{"status":"error","code":101,"message":"bad"}"#;
        type Class = fn(&ProviderError) -> bool;
        let cases: [(Endpoint, u16, &str, Class); 8] = [
            (
                Endpoint::History,
                400,
                body,
                ProviderError::is_definite_rejection,
            ),
            (Endpoint::Reply, 404, body, ProviderError::is_not_found),
            (Endpoint::History, 503, "", ProviderError::is_transient),
            (Endpoint::Reply, 502, "", ProviderError::is_outcome_unknown),
            (
                Endpoint::SendMessage,
                500,
                body,
                ProviderError::is_outcome_unknown,
            ),
            (Endpoint::Reply, 429, body, ProviderError::is_transient),
            (
                Endpoint::Reply,
                200,
                "<html>",
                ProviderError::is_outcome_unknown,
            ),
            (
                Endpoint::Comments,
                200,
                "<html>",
                ProviderError::is_transient,
            ),
        ];
        for (endpoint, status, text, class) in cases {
            let err = answer(endpoint, status, text).expect_err("an error");
            assert!(class(&err), "{endpoint:?} {status} {text:?} → {err:?}");
        }
        assert_eq!(
            answer(Endpoint::Comments, 200, r#"{"status":"success","x":1}"#).expect("ok")["x"],
            1
        );
    }

    #[test]
    fn retry_after_and_rate_limit_headers_are_read_in_every_documented_form() {
        let now = Utc::now();
        let hints = |pairs: &[(&'static str, &str)]| {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                headers.insert(*name, HeaderValue::from_str(value).expect("header"));
            }
            RetryHints::from_headers(&headers, now)
        };
        assert_eq!(
            hints(&[("retry-after", "2")]).retry_after,
            Some(Duration::from_secs(2))
        );
        let date = (now + chrono::TimeDelta::seconds(30)).to_rfc2822();
        let from_date = hints(&[("retry-after", &date)]).retry_after.expect("date");
        assert!(from_date > Duration::from_secs(28) && from_date <= Duration::from_secs(30));
        assert_eq!(
            hints(&[("x-ratelimit-reset", "1500")]).retry_after,
            Some(Duration::from_millis(1500))
        );
        let epoch_ms = (now.timestamp_millis() + 10_000).to_string();
        let from_epoch = hints(&[("x-ratelimit-reset", &epoch_ms)])
            .retry_after
            .expect("epoch");
        assert!(from_epoch > Duration::from_secs(9));
        assert!(hints(&[("x-ratelimit-max", "300"), ("x-ratelimit-count", "300")]).exhausted);
        assert!(hints(&[("x-ratelimit-remaining", "0")]).exhausted);
        let partly = hints(&[("x-ratelimit-max", "300"), ("x-ratelimit-count", "12")]);
        assert!(!partly.exhausted);
        assert_eq!(partly.remaining, Some(288));
        assert_eq!(hints(&[("x-ratelimit-remaining", "7")]).remaining, Some(7));
        assert_eq!(hints(&[]).remaining, None);

        // Absurd waits are capped, and what is computed from them cannot overflow.
        let beyond = hints(&[("x-ratelimit-reset", "18446744073709551615")]).retry_after;
        assert!(
            beyond.is_none_or(|wait| wait <= MAX_RETRY_AFTER),
            "{beyond:?}"
        );
        for absurd in [
            ("retry-after", "100000000000000"),
            ("retry-after", "Fri, 31 Dec 9999 23:59:59 GMT"),
            ("x-ratelimit-reset", "99999999999999"),
        ] {
            let wait = hints(&[absurd]).retry_after;
            assert_eq!(wait, Some(MAX_RETRY_AFTER), "{absurd:?}");
            let error = ProviderError::Transient {
                endpoint: Endpoint::Comments,
                failure: Failure::Status {
                    status: 429,
                    code: None,
                    message: String::new(),
                },
                retry_after: wait,
                rate_limit_exhausted: true,
            };
            let retry_at = error.retry_at().expect("a time");
            assert!(retry_at <= Utc::now() + chrono::TimeDelta::minutes(15));
        }
    }
}
