//! What ingestion knows about each brand's platforms (`platform_status`): direct messages available
//! or not, our own account there (refreshed every [`OUR_ACCOUNT_REFRESH`]), and the last
//! successful ingest.
//!
//! A platform whose messaging is disabled (the provider's 403) is not asked again before
//! `messaging_next_check_at`; the circuit breaker never hears of it (a rejection is not a
//! provider failure) and only the change of state is logged.

use super::statement;
use crate::domain::{BrandId, Platform};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};
use std::time::Duration;

/// One row of `platform_status`.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct PlatformStatus {
    pub platform: Platform,
    /// `Some(false)`: the provider said messaging is not enabled; `None`: not checked yet.
    pub messaging_enabled: Option<bool>,
    /// When messaging was last checked.
    pub messaging_checked_at: Option<DateTime<Utc>>,
    /// While disabled: when it is checked again.
    pub messaging_next_check_at: Option<DateTime<Utc>>,
    /// The provider's reason, while disabled.
    pub messaging_error: Option<String>,
    /// When the last ingest of the platform succeeded.
    pub last_ingest_at: Option<DateTime<Utc>>,
}

/// Every platform's row of `brand`, by platform name (platforms never ingested have none).
pub async fn list(
    conn: &impl ConnectionTrait,
    brand: BrandId,
) -> Result<Vec<PlatformStatus>, DbErr> {
    PlatformStatus::find_by_statement(statement(
        "SELECT platform, messaging_enabled, messaging_checked_at, messaging_next_check_at, \
                messaging_error, last_ingest_at \
         FROM platform_status WHERE brand_id = $1 ORDER BY platform",
        vec![brand.into()],
    ))
    .all(conn)
    .await
}

/// How long our account on a platform is trusted before `GET /user` is asked again.
pub const OUR_ACCOUNT_REFRESH: Duration = Duration::from_secs(24 * 3600);

/// Our account's id on `platform`, if known.
pub async fn our_account(
    conn: &impl ConnectionTrait,
    brand: BrandId,
    platform: Platform,
) -> Result<Option<String>, DbErr> {
    let row = conn
        .query_one_raw(statement(
            "SELECT our_account_id FROM platform_status WHERE brand_id = $2 AND platform = $1",
            vec![platform.into(), brand.into()],
        ))
        .await?;
    match row {
        Some(row) => row.try_get("", "our_account_id"),
        None => Ok(None),
    }
}

/// Whether our account on `platform` should be asked for: never asked, or longer ago than
/// [`OUR_ACCOUNT_REFRESH`].
pub async fn our_account_due(
    conn: &impl ConnectionTrait,
    brand: BrandId,
    platform: Platform,
) -> Result<bool, DbErr> {
    let row = conn
        .query_one_raw(statement(
            "SELECT our_account_checked_at > now() - make_interval(secs => $2) AS fresh              FROM platform_status WHERE brand_id = $3 AND platform = $1",
            vec![
                platform.into(),
                OUR_ACCOUNT_REFRESH.as_secs_f64().into(),
                brand.into(),
            ],
        ))
        .await?;
    let fresh: Option<bool> = match row {
        Some(row) => row.try_get("", "fresh")?,
        None => None,
    };
    Ok(fresh != Some(true))
}

/// Records what `GET /user` said of our account on `platform` (`None`: no account there).
pub async fn record_our_account(
    conn: &impl ConnectionTrait,
    brand: BrandId,
    platform: Platform,
    account_id: Option<&str>,
) -> Result<(), DbErr> {
    conn.execute_raw(statement(
        "INSERT INTO platform_status (brand_id, platform, our_account_id, our_account_checked_at) \
         VALUES ($3, $1, $2, now()) \
         ON CONFLICT (brand_id, platform) DO UPDATE \
         SET our_account_id = EXCLUDED.our_account_id, our_account_checked_at = now(), \
             updated_at = now()",
        vec![
            platform.into(),
            account_id.map(str::to_owned).into(),
            brand.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Records that an ingest of `platform` succeeded now.
pub async fn record_ingest(
    conn: &impl ConnectionTrait,
    brand: BrandId,
    platform: Platform,
) -> Result<(), DbErr> {
    conn.execute_raw(statement(
        "INSERT INTO platform_status (brand_id, platform, last_ingest_at) VALUES ($2, $1, now()) \
         ON CONFLICT (brand_id, platform) DO UPDATE SET last_ingest_at = now(), updated_at = now()",
        vec![platform.into(), brand.into()],
    ))
    .await?;
    Ok(())
}

/// Whether `platform`'s direct messages should be read now: it has them, and it is not
/// marked disabled with a next check still ahead.
pub async fn messaging_due(
    conn: &impl ConnectionTrait,
    brand: BrandId,
    platform: Platform,
) -> Result<bool, DbErr> {
    if !platform.has_messages() {
        return Ok(false);
    }
    let row = conn
        .query_one_raw(statement(
            "SELECT 1 AS blocked FROM platform_status \
             WHERE brand_id = $2 AND platform = $1 AND messaging_enabled = false \
               AND messaging_next_check_at > now()",
            vec![platform.into(), brand.into()],
        ))
        .await?;
    Ok(row.is_none())
}

/// What a messages read found out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Messaging {
    /// Messages could be read.
    Enabled,
    /// The provider refused (403, codes 361/362): check again after `recheck_after`.
    Disabled {
        /// The provider's words.
        reason: String,
        /// How long until the next check.
        recheck_after: Duration,
    },
}

/// Records `state` for `platform`; returns whether it changed (the first check counts as a
/// change), so that callers log transitions only.
pub async fn record_messaging(
    conn: &impl ConnectionTrait,
    brand: BrandId,
    platform: Platform,
    state: &Messaging,
) -> Result<bool, DbErr> {
    let (enabled, reason, recheck_secs) = match state {
        Messaging::Enabled => (true, None, None),
        Messaging::Disabled {
            reason,
            recheck_after,
        } => (
            false,
            Some(reason.clone()),
            Some(recheck_after.as_secs_f64()),
        ),
    };
    let row = conn
        .query_one_raw(statement(
            "WITH old AS (SELECT messaging_enabled FROM platform_status \
                          WHERE brand_id = $5 AND platform = $1) \
             INSERT INTO platform_status (brand_id, platform, messaging_enabled, \
                 messaging_checked_at, messaging_next_check_at, messaging_error) \
             VALUES ($5, $1, $2, now(), now() + make_interval(secs => $4), $3) \
             ON CONFLICT (brand_id, platform) DO UPDATE \
             SET messaging_enabled = EXCLUDED.messaging_enabled, \
                 messaging_checked_at = EXCLUDED.messaging_checked_at, \
                 messaging_next_check_at = EXCLUDED.messaging_next_check_at, \
                 messaging_error = EXCLUDED.messaging_error, updated_at = now() \
             RETURNING (SELECT messaging_enabled FROM old) AS previous",
            vec![
                platform.into(),
                enabled.into(),
                reason.into(),
                recheck_secs.into(),
                brand.into(),
            ],
        ))
        .await?;
    let previous: Option<bool> = match row {
        Some(row) => row.try_get("", "previous")?,
        None => None,
    };
    Ok(previous != Some(enabled))
}
