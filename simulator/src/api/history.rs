//! `GET /history` (posts made through Ayrshare) and `GET /history/:platform` (the network's
//! own view of its posts). Both carry each network's own fields and metrics, comment counts
//! as of the request (see [`crate::render`]).
//!
//! `historyNotFound` platforms answer 404 on `/history/:platform`, and on `/history` when
//! every requested platform is such a platform; in a wider `/history` request their posts are
//! left out. gmb, reddit and telegram have no `/history/:platform` at all (404).

use std::cmp::Reverse;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::faults::Endpoint;
use crate::platform::Platform;
use crate::profile::Profile;
use crate::query::Query;
use crate::render;
use crate::serve::ConnControl;
use crate::sim::{ApiCall, Sim};
use crate::stats::Method;
use crate::time::iso_millis;

/// `lastDays` when absent (0 means all).
const DEFAULT_LAST_DAYS: u32 = 30;
/// `limit` when absent, and its maximum.
const DEFAULT_LIMIT: usize = 25;
const MAX_LIMIT: usize = 1000;

pub(super) async fn list_history(
    State(sim): State<Arc<Sim>>,
    Extension(conn): Extension<ConnControl>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = Query::parse(raw.as_deref());
    let requested = query.platforms();
    let scope = match &requested {
        Ok(platforms) if !platforms.is_empty() => platforms.clone(),
        _ => sim.cfg.platforms.clone(),
    };
    let profile = sim.profile_of(&headers);
    let call = ApiCall {
        profile: &profile,
        endpoint: Endpoint::History,
        method: Method::Get,
        platforms: &scope,
        headers: &headers,
        conn: &conn,
    };
    sim.serve_api(call, || history(&sim, &profile, &query, &requested?))
        .await
}

fn history(
    sim: &Sim,
    profile: &Profile,
    query: &Query,
    requested: &[Platform],
) -> Result<Value, ApiError> {
    let last_days: u32 = query.number("lastDays")?.unwrap_or(DEFAULT_LAST_DAYS);
    let limit = match query.number::<usize>("limit")? {
        Some(limit) => Some(limit),
        None => query.number("lastRecords")?,
    }
    .unwrap_or(DEFAULT_LIMIT)
    .min(MAX_LIMIT);
    let start = query.get("startDate").map(parse_date).transpose()?;
    let end = query.get("endDate").map(parse_date).transpose()?;

    let faults = profile.faults();
    if let Some(&first) = requested.first()
        && requested.iter().all(|&p| faults.history_not_found(p))
    {
        return Err(ApiError::history_not_available(first));
    }
    let now = Utc::now();
    let cutoff = (last_days > 0).then(|| now - TimeDelta::days(i64::from(last_days)));
    let wanted = |t: DateTime<Utc>| {
        cutoff.is_none_or(|c| t >= c) && start.is_none_or(|s| t >= s) && end.is_none_or(|e| t <= e)
    };
    let platforms = if requested.is_empty() {
        &sim.cfg.platforms
    } else {
        requested
    };

    let world = profile.world();
    let mut picked: Vec<usize> = Vec::new();
    for platform in platforms.iter().filter(|&&p| !faults.history_not_found(p)) {
        if let Some(posts) = world.by_platform.get(platform) {
            picked.extend(
                posts
                    .iter()
                    .copied()
                    .filter(|&i| wanted(world.posts[i].created))
                    .take(limit),
            );
        }
    }
    picked.sort_by_key(|&i| Reverse(world.posts[i].created));
    picked.truncate(limit);
    let history: Vec<Value> = picked
        .iter()
        .map(|&i| render::history_item(&world, i, now))
        .collect();
    Ok(json!({ "history": history }))
}

fn parse_date(value: &str) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| ApiError::bad_request(format!("invalid date `{value}`")))
}

pub(super) async fn list_platform_history(
    State(sim): State<Arc<Sim>>,
    Extension(conn): Extension<ConnControl>,
    headers: HeaderMap,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = Query::parse(raw.as_deref());
    let platform = name.parse::<Platform>();
    let scope: Vec<Platform> = platform.iter().copied().collect();
    let profile = sim.profile_of(&headers);
    let call = ApiCall {
        profile: &profile,
        endpoint: Endpoint::History,
        method: Method::Get,
        platforms: &scope,
        headers: &headers,
        conn: &conn,
    };
    sim.serve_api(call, || {
        let platform = platform.map_err(|e| ApiError::bad_request(e.to_string()))?;
        platform_history(&sim, &profile, platform, &query)
    })
    .await
}

fn platform_history(
    sim: &Sim,
    profile: &Profile,
    platform: Platform,
    query: &Query,
) -> Result<Value, ApiError> {
    if !platform.has_native_history() || profile.faults().history_not_found(platform) {
        return Err(ApiError::history_not_available(platform));
    }
    let limit: usize = query.number("limit")?.unwrap_or(usize::MAX);
    let now = Utc::now();
    let world = profile.world();
    let posts: Vec<Value> = world
        .by_platform
        .get(&platform)
        .into_iter()
        .flatten()
        .take(limit)
        .map(|&i| render::native_post(&world, i, now))
        .collect();
    Ok(json!({
        "status": "success",
        "posts": posts,
        "lastUpdated": iso_millis(now),
        "nextUpdate": iso_millis(sim.next_update(now)),
    }))
}
