//! Request extractors whose failures are problem+json answers naming what is wrong.
//!
//! | failure | status | code |
//! |---|---|---|
//! | body over the limit | 413 | `payload_too_large` |
//! | no `Content-Type: application/json` | 415 | `unsupported_media_type` |
//! | not JSON | 400 | `malformed_json` |
//! | JSON that is not an object (an array, a string…) | 422 | `validation_failed` |
//! | JSON of the wrong shape (type, enum value, missing field) | 422 | `validation_failed`, with the field |
//! | a NUL character in any text, body or query (PostgreSQL cannot store it) | 422 | `validation_failed`, with the field |
//! | bad query string | 422 | `validation_failed` |

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use chrono::{DateTime, FixedOffset};
use serde::de::DeserializeOwned;
use shared::domain::UnknownValue;
use std::str::FromStr;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A JSON body; see the module docs for its failures.
#[derive(Debug, Clone, Copy, Default)]
pub struct Body<T>(pub T);

impl<S, T> FromRequest<S> for Body<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as Content-Type: application/json",
            )
            .with_field("Content-Type"));
        }
        let bytes = body_bytes(req, state).await?;
        // Syntax first (400), then shape (422): deserializing directly, serde_json reports
        // some shape errors (a number where an enum is expected) as syntax errors.
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                "the body is not valid JSON",
            )
        })?;
        if !value.is_object() {
            return Err(ApiError::invalid("", "the body must be a JSON object"));
        }
        if let Some(field) = nul_in(&value, "") {
            return Err(nul_error(field));
        }
        serde_path_to_error::deserialize(value)
            .map(Body)
            .map_err(|e| shape_error(&e))
    }
}

/// The body as sent, at most [`MAX_BODY_BYTES`] (else 413 `payload_too_large`).
pub async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the body is larger than {} KB", MAX_BODY_BYTES / 1024),
            )
        } else {
            ApiError::new(rejection.status(), "bad_request", rejection.body_text())
        }
    })
}

/// The path (as [`shape_error`] names fields: `a.b`, `a[0]`) of the first string or key in
/// `value` that holds a NUL character.
fn nul_in(value: &serde_json::Value, path: &str) -> Option<String> {
    let join = |key: &str| match path {
        "" => key.to_owned(),
        _ => format!("{path}.{key}"),
    };
    match value {
        serde_json::Value::String(text) if text.contains('\0') => Some(path.to_owned()),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_in(item, &format!("{path}[{i}]"))),
        serde_json::Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            if key.contains('\0') {
                Some(join(&key.replace('\0', "")))
            } else {
                nul_in(item, &join(key))
            }
        }),
        _ => None,
    }
}

fn nul_error(field: String) -> ApiError {
    let detail = format!("{field}: text must not contain the NUL character (U+0000)");
    ApiError::invalid(field, detail)
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .is_some_and(|mime| {
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
}

fn shape_error(e: &serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let message = e.inner().to_string();
    let path = e.path().to_string();
    let field = if path == "." {
        // "missing field `email`", "unknown field `admin`, expected one of …"
        message.split('`').nth(1).unwrap_or_default().to_owned()
    } else {
        path
    };
    let detail = if field.is_empty() {
        message
    } else {
        format!("{field}: {message}")
    };
    ApiError::invalid(field, detail)
}

/// Query parameters; a malformed query string is a 422.
#[derive(Debug, Clone, Copy, Default)]
pub struct Params<T>(pub T);

impl<S, T> FromRequestParts<S> for Params<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default().as_bytes();
        if let Some((key, _)) = url::form_urlencoded::parse(query)
            .find(|(key, value)| key.contains('\0') || value.contains('\0'))
        {
            return Err(nul_error(key.replace('\0', "")));
        }
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Params(value)),
            Err(rejection) => Err(query_rejection(&rejection)),
        }
    }
}

fn query_rejection(rejection: &QueryRejection) -> ApiError {
    ApiError::invalid("", rejection.body_text())
}

/// Parses a path or query id (a UUID in its hyphenated form, `format: uuid`), naming `field`
/// when it is malformed.
pub fn parse_id<T: FromStr>(field: &str, text: &str) -> Result<T, ApiError> {
    Some(text)
        .filter(|t| t.len() == 36)
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| ApiError::invalid(field, format!("{field}: {text:?} is not a valid id")))
}

/// Splits a comma list (`platform=twitter,facebook`: items separated by single commas, no
/// spaces) and parses each item, naming `field` and the allowed values when one is unknown or
/// empty. An absent or empty parameter gives an empty list.
pub fn parse_list<T>(field: &str, text: Option<&str>) -> Result<Vec<T>, ApiError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    let Some(text) = text.filter(|t| !t.is_empty()) else {
        return Ok(Vec::new());
    };
    text.split(',')
        .map(|item| {
            item.parse()
                .map_err(|e: T::Err| ApiError::invalid(field, format!("{field}: {e}")))
        })
        .collect()
}

/// Like [`parse_list`], where the word `absent` (`none`, `new`) stands for "no value" and
/// gives `None`; an unknown item's error lists `absent` among the allowed values.
pub fn parse_optional_list<T>(
    field: &str,
    text: Option<&str>,
    absent: &str,
) -> Result<Vec<Option<T>>, ApiError>
where
    T: FromStr<Err = UnknownValue>,
{
    parse_list::<String>(field, text)?
        .into_iter()
        .map(|item| {
            if item == absent {
                return Ok(None);
            }
            item.parse().map(Some).map_err(|e: UnknownValue| {
                let e = UnknownValue {
                    allowed: format!("{absent}, {}", e.allowed),
                    ..e
                };
                ApiError::invalid(field, format!("{field}: {e}"))
            })
        })
        .collect()
}

/// Deserializes a field that is present as `Some` (with `#[serde(default)]`, an absent one is
/// `None`): `Option<Option<T>>` tells absent, `null` and a value apart, and `Option<T>` refuses
/// `null` instead of reading it as absent.
pub fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// Parses an RFC 3339 time parameter, naming it when malformed.
pub fn parse_time(
    field: &str,
    text: Option<&str>,
) -> Result<Option<DateTime<FixedOffset>>, ApiError> {
    text.map(|t| {
        DateTime::parse_from_rfc3339(t).map_err(|_| {
            ApiError::invalid(field, format!("{field}: {t:?} is not an RFC 3339 time"))
        })
    })
    .transpose()
}
