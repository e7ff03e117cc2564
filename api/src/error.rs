//! The one error type of the HTTP API and its `application/problem+json` form (RFC 9457).
//!
//! Every failure a handler can meet becomes an [`ApiError`] with the right status and a stable
//! `code` that clients can switch on. Database errors are read once here: unique violations
//! become 409, foreign key violations on a field the client named become 422, a database that
//! cannot be reached (or no pool connection in time) 503 `unavailable` with `Retry-After`,
//! anything unexpected is logged once with its cause chain and answered as an opaque 500.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sea_orm::DbErr;
use serde::Serialize;
use shared::domain::IllegalTransition;
use std::time::Duration;
use utoipa::ToSchema;

/// Media type of error bodies.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// `Retry-After` of a 503 `unavailable`.
pub const UNAVAILABLE_RETRY_AFTER: Duration = Duration::from_secs(5);

/// An error answer: status, stable code, message for people, and optional details.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: String,
    field: Option<String>,
    retry_after: Option<Duration>,
    extra: Option<serde_json::Value>,
}

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// Always `about:blank`: `code` says what went wrong.
    #[serde(rename = "type")]
    pub problem_type: &'static str,
    /// The HTTP status text.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong, for people.
    pub detail: String,
    /// Stable machine-readable code, e.g. `validation_failed`, `illegal_transition`.
    pub code: &'static str,
    /// The request field, parameter or header at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Code-specific details (e.g. the current version on a 412).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            detail: detail.into(),
            field: None,
            retry_after: None,
            extra: None,
        }
    }

    /// The same error, naming the field, parameter or header at fault.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// The same error with code-specific details.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.extra = Some(details);
        self
    }

    /// The same error, telling the client when to try again (`Retry-After`).
    pub fn with_retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// 401: no usable credentials.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    /// 403: authenticated, but not allowed.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    /// 404: the thing does not exist.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    /// 422: a field, parameter or header has an unusable value.
    pub fn invalid(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            detail,
        )
        .with_field(field)
    }

    /// 409 with a specific code.
    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    /// 503 `unavailable`: a dependency (the database) cannot be used right now; the client
    /// is told to come back in [`UNAVAILABLE_RETRY_AFTER`].
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
            .with_retry_after(UNAVAILABLE_RETRY_AFTER)
    }

    /// 500 for an unexpected failure: logs `cause` with its chain and says nothing of it.
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Self {
        let mut chain = cause.to_string();
        let mut source = cause.source();
        while let Some(next) = source {
            let text = next.to_string();
            if !chain.contains(&text) {
                chain.push_str(": ");
                chain.push_str(&text);
            }
            source = next.source();
        }
        tracing::error!(error = %chain, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the request could not be completed; it has been logged",
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The message for people.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl From<DbErr> for ApiError {
    fn from(err: DbErr) -> Self {
        if shared::db::is_unique_violation(&err) {
            // The constraint's name is the schema's business, not the client's.
            let constraint = shared::db::violated_constraint(&err).unwrap_or_default();
            tracing::info!(%constraint, "request refused: unique violation");
            return Self::conflict("conflict", "this would duplicate an existing record");
        }
        if shared::db::sqlstate(&err).as_deref() == Some(shared::db::FOREIGN_KEY_VIOLATION) {
            return Self::invalid("", "a referenced record does not exist");
        }
        if shared::db::is_unavailable(&err) {
            tracing::warn!(error = %err, "database unavailable");
            return Self::unavailable("the database is unavailable; try again shortly");
        }
        Self::internal(&err)
    }
}

impl From<IllegalTransition> for ApiError {
    fn from(err: IllegalTransition) -> Self {
        Self::conflict("illegal_transition", err.to_string()).with_details(serde_json::json!({
            "from": shared::domain::state_name(err.from),
            "to": shared::domain::state_name(err.to),
        }))
    }
}

/// Whether `err` is a foreign key violation of `constraint`.
pub fn is_foreign_key_violation(err: &DbErr, constraint: &str) -> bool {
    shared::db::sqlstate(err).as_deref() == Some(shared::db::FOREIGN_KEY_VIOLATION)
        && shared::db::violated_constraint(err).as_deref() == Some(constraint)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Problem {
            problem_type: "about:blank",
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            detail: self.detail,
            code: self.code,
            field: self.field.filter(|f| !f.is_empty()),
            details: self.extra,
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = (self.status, json).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(wait) = self.retry_after {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        response
    }
}
