//! Push ingest's side of polling: which platforms healthy webhooks cover, and the record of
//! the api's registrations at the provider (`webhook_registrations`).
//!
//! A platform is covered when the provider has webhooks for it ([`PUSHED`]: Facebook and
//! Instagram), the `comments` registration of the brand's profile is confirmed (the provider listed it
//! within [`CHECKS_UNCONFIRMED`] checks) and not reported missing, and deliveries keep coming: one for
//! the platform within the quiet time, or a registration that recent. The scheduler and the
//! planner then read it only every safety interval; anything else is polled as usual.

use super::statement;
use crate::domain::{BrandId, Platform};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};
use std::time::Duration;

/// The platforms Ayrshare's `comments` and `messages` webhooks cover (AYRSHARE.md).
pub const PUSHED: [Platform; 2] = [Platform::Facebook, Platform::Instagram];

/// Checks of the registration that may pass without the provider confirming it.
pub const CHECKS_UNCONFIRMED: u32 = 3;

/// How polling treats platforms covered by webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushPolling {
    /// Their polling interval (a safety net).
    pub safety: Duration,
    /// Without a delivery for this long, they are polled as usual again.
    pub quiet: Duration,
    /// How often the api checks its registrations.
    pub check: Duration,
}

/// Which of `brand`'s `platforms` healthy webhooks cover now (see the module documentation).
pub async fn covered(
    conn: &impl ConnectionTrait,
    brand: BrandId,
    platforms: &[Platform],
    push: PushPolling,
) -> Result<Vec<Platform>, DbErr> {
    let candidates: Vec<&str> = platforms
        .iter()
        .filter(|p| PUSHED.contains(p))
        .map(|p| p.as_str())
        .collect();
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let rows = conn
        .query_all_raw(statement(
            "SELECT p.platform FROM unnest(string_to_array($1, ',')) AS p(platform), \
                 webhook_registrations r \
             WHERE r.brand_id = $2 AND r.action = 'comments' AND r.missing_since IS NULL \
               AND r.confirmed_at > now() - make_interval(secs => $3) \
               AND (r.registered_at > now() - make_interval(secs => $4) \
                    OR EXISTS (SELECT 1 FROM webhook_deliveries d \
                               WHERE d.brand_id = $2 AND d.platform = p.platform \
                                 AND d.received_at > now() - make_interval(secs => $4))) \
             ORDER BY p.platform",
            vec![
                candidates.join(",").into(),
                brand.into(),
                (push.check * CHECKS_UNCONFIRMED).as_secs_f64().into(),
                push.quiet.as_secs_f64().into(),
            ],
        ))
        .await?;
    rows.iter()
        .map(|row| {
            let name: String = row.try_get("", "platform")?;
            name.parse()
                .map_err(|_| DbErr::Custom(format!("unknown platform {name}")))
        })
        .collect()
}

/// One registration as recorded.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct Registration {
    pub action: String,
    pub url: String,
    pub secret_hash: String,
}

/// The brand's recorded registrations.
pub async fn registrations(
    conn: &impl ConnectionTrait,
    brand: BrandId,
) -> Result<Vec<Registration>, DbErr> {
    Registration::find_by_statement(statement(
        "SELECT action, url, secret_hash FROM webhook_registrations WHERE brand_id = $1 \
         ORDER BY action",
        vec![brand.into()],
    ))
    .all(conn)
    .await
}

/// The provider lists `action` at `url` (registered just now when `registered`).
pub async fn record_confirmed(
    conn: &impl ConnectionTrait,
    brand: BrandId,
    action: &str,
    url: &str,
    secret_hash: &str,
    registered: bool,
) -> Result<(), DbErr> {
    conn.execute_raw(statement(
        "INSERT INTO webhook_registrations (brand_id, action, url, secret_hash) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (brand_id, action) DO UPDATE SET url = $3, secret_hash = $4, \
             confirmed_at = now(), missing_since = NULL, \
             registered_at = CASE WHEN $5 THEN now() \
                                  ELSE webhook_registrations.registered_at END",
        vec![
            brand.into(),
            action.into(),
            url.into(),
            secret_hash.into(),
            registered.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// The provider no longer lists `action` (since now, unless it was already missing).
pub async fn record_missing(
    conn: &impl ConnectionTrait,
    brand: BrandId,
    action: &str,
) -> Result<(), DbErr> {
    conn.execute_raw(statement(
        "UPDATE webhook_registrations SET missing_since = coalesce(missing_since, now()) \
         WHERE brand_id = $1 AND action = $2",
        vec![brand.into(), action.into()],
    ))
    .await?;
    Ok(())
}

/// Forgets the registration of `action` (removed at the provider).
pub async fn forget(
    conn: &impl ConnectionTrait,
    brand: BrandId,
    action: &str,
) -> Result<(), DbErr> {
    conn.execute_raw(statement(
        "DELETE FROM webhook_registrations WHERE brand_id = $1 AND action = $2",
        vec![brand.into(), action.into()],
    ))
    .await?;
    Ok(())
}

/// The webhook state of one platform webhooks can cover.
#[derive(Debug, Clone, PartialEq, FromQueryResult)]
pub struct PlatformPush {
    pub platform: String,
    /// The `comments` registration is recorded and not reported missing.
    pub registered: bool,
    pub missing_since: Option<chrono::DateTime<chrono::FixedOffset>>,
    pub last_delivery_at: Option<chrono::DateTime<chrono::FixedOffset>>,
    /// Since midnight UTC.
    pub deliveries_today: i64,
}

/// [`PlatformPush`] of each of `brand`'s `platforms` webhooks can cover.
pub async fn state(
    conn: &impl ConnectionTrait,
    brand: BrandId,
    platforms: &[Platform],
) -> Result<Vec<PlatformPush>, DbErr> {
    let candidates: Vec<&str> = platforms
        .iter()
        .filter(|p| PUSHED.contains(p))
        .map(|p| p.as_str())
        .collect();
    PlatformPush::find_by_statement(statement(
        "SELECT p.platform, \
                coalesce(r.missing_since IS NULL, false) AS registered, r.missing_since, \
                (SELECT max(received_at) FROM webhook_deliveries d \
                 WHERE d.brand_id = $2 AND d.platform = p.platform) AS last_delivery_at, \
                (SELECT count(*) FROM webhook_deliveries d \
                 WHERE d.brand_id = $2 AND d.platform = p.platform \
                   AND d.received_at >= date_trunc('day', now() AT TIME ZONE 'UTC') \
                                        AT TIME ZONE 'UTC') AS deliveries_today \
         FROM unnest(string_to_array($1, ',')) AS p(platform) \
         LEFT JOIN webhook_registrations r ON r.brand_id = $2 AND r.action = 'comments' \
         ORDER BY p.platform",
        vec![candidates.join(",").into(), brand.into()],
    ))
    .all(conn)
    .await
}
