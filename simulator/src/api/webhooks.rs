//! `POST|GET|DELETE /hook/webhook`: the webhook registrations of the profile the request names
//! (`Profile-Key`; absent: the primary profile), kept in [`crate::webhooks`].
//!
//! - POST `{"action", "url", "secret"?}` registers `url` for `action`, replacing an earlier
//!   registration of that action → `{"status": "success", "action", "url", "refId"}` (the
//!   profile's `refId`, as in `GET /user`). `action` must be one of Ayrshare's
//!   (`accountActivity`, `automations`, `batch`, `comments`, `feed`, `mentions`, `messages`,
//!   `scheduled`, `social`) and `url` an `https://` URL, or `http://` on `localhost` or
//!   `127.0.0.1` for local receivers; otherwise 400 (code 101). A `secret` becomes the
//!   profile's signing secret for every delivery ([`crate::delivery`]).
//! - GET → `{"status": "success", "<action>": "<url>", …, "updated": "<ISO time>"}`, as
//!   Ayrshare's own test scripts read it: one key per registered action, and `updated` (the
//!   last registration or removal) once the profile registered anything. No secret is shown.
//! - DELETE `{"action"}` → `{"status": "success", "action"}`; an action without registration
//!   answers 404 (code 185).

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{json_body, required_text};
use crate::error::ApiError;
use crate::faults::Endpoint;
use crate::ids;
use crate::profile::Profile;
use crate::serve::ConnControl;
use crate::sim::{ApiCall, Sim};
use crate::stats::Method;
use crate::time::iso_millis;
use crate::webhooks::Action;

/// A POST or DELETE body; anything else is accepted and ignored.
#[derive(Debug, Deserialize)]
struct HookIn {
    action: Option<String>,
    url: Option<String>,
    secret: Option<String>,
}

impl HookIn {
    fn action(&self) -> Result<Action, ApiError> {
        let name = required_text(self.action.clone(), "action")?;
        Action::parse(&name).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown webhook action `{name}`: use one of {}",
                Action::names()
            ))
        })
    }
}

/// Whether Ayrshare would call `raw`: HTTPS, or plain HTTP to this machine.
fn callable(raw: &str) -> bool {
    match url::Url::parse(raw) {
        Ok(url) if url.scheme() == "https" => url.host().is_some(),
        Ok(url) if url.scheme() == "http" => {
            matches!(url.host_str(), Some("localhost" | "127.0.0.1"))
        }
        _ => false,
    }
}

fn call<'a>(
    profile: &'a Profile,
    method: Method,
    headers: &'a HeaderMap,
    conn: &'a ConnControl,
) -> ApiCall<'a> {
    ApiCall {
        profile,
        endpoint: Endpoint::Webhook,
        method,
        platforms: &[],
        headers,
        conn,
    }
}

pub(super) async fn register_webhook(
    State(sim): State<Arc<Sim>>,
    Extension(conn): Extension<ConnControl>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let profile = sim.profile_of(&headers);
    sim.serve_api(call(&profile, Method::Post, &headers, &conn), || {
        let body: HookIn = json_body(&body)?;
        let action = body.action()?;
        let url = required_text(body.url, "url")?;
        if !callable(&url) {
            return Err(ApiError::bad_request(format!(
                "url `{url}` is not valid: it must begin with https://"
            )));
        }
        let secret = body.secret.filter(|s| !s.is_empty());
        profile
            .webhooks
            .register(action, url.clone(), secret, Utc::now());
        Ok(json!({
            "status": "success",
            "action": action.as_str(),
            "url": url,
            "refId": ids::ref_id(profile.world().ayr_salt, &profile.key),
        }))
    })
    .await
}

pub(super) async fn list_webhooks(
    State(sim): State<Arc<Sim>>,
    Extension(conn): Extension<ConnControl>,
    headers: HeaderMap,
) -> Response {
    let profile = sim.profile_of(&headers);
    sim.serve_api(call(&profile, Method::Get, &headers, &conn), || {
        let hooks = profile.webhooks.snapshot();
        let mut body = Map::new();
        body.insert("status".into(), json!("success"));
        for (action, url) in hooks.urls {
            body.insert(action.as_str().into(), json!(url));
        }
        if let Some(updated) = hooks.updated {
            body.insert("updated".into(), json!(iso_millis(updated)));
        }
        Ok(Value::Object(body))
    })
    .await
}

pub(super) async fn delete_webhook(
    State(sim): State<Arc<Sim>>,
    Extension(conn): Extension<ConnControl>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let profile = sim.profile_of(&headers);
    sim.serve_api(call(&profile, Method::Delete, &headers, &conn), || {
        let action = json_body::<HookIn>(&body)?.action()?;
        if !profile.webhooks.remove(action, Utc::now()) {
            return Err(ApiError::webhook_not_found(action.as_str()));
        }
        Ok(json!({"status": "success", "action": action.as_str()}))
    })
    .await
}
