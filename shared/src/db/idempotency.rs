//! `Idempotency-Key`: the first answer to a request, replayed for its repetitions.
//!
//! Within the request's transaction, [`claim`] takes a transaction-scoped advisory lock on
//! (user, key) without waiting: if another request with the key holds it, that request is
//! still being handled ([`Claim::InFlight`], a 409). With the lock, a stored answer is either
//! replayed (same request hash) or refused (another request under the same key, a 422);
//! without one the request proceeds and [`save`] stores its answer in the same transaction, so
//! the answer exists if and only if the request's effects committed, and a crash leaves
//! nothing behind to block a retry.
//!
//! Answers are kept for the configured time to live (`IDEMPOTENCY_KEY_TTL_SECONDS`), then
//! the sweeper purges them ([`purge_expired`]); a key used again after that is a new request.

use crate::domain::UserId;
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};
use serde_json::Value;

/// Longest accepted key.
pub const MAX_KEY_CHARS: usize = 255;

/// What a key says about a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// First use of the key: handle the request, then [`save`] its answer.
    Fresh,
    /// The same request was answered before: answer this again.
    Replay {
        /// The HTTP status.
        status: u16,
        body: Value,
    },
    /// The key was used for a different request.
    Mismatch,
    /// A request with this key is being handled right now.
    InFlight,
}

/// Looks the key up for `user`, taking its lock (see the module documentation).
pub async fn claim(
    txn: &impl ConnectionTrait,
    user: UserId,
    key: &str,
    request_hash: &str,
) -> Result<Claim, DbErr> {
    let lock = txn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0)) AS locked",
            [format!("idempotency:{user}:{key}").into()],
        ))
        .await?
        .ok_or(DbErr::RecordNotFound("advisory lock answer".to_owned()))?;
    if !lock.try_get::<bool>("", "locked")? {
        return Ok(Claim::InFlight);
    }
    let row = txn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT request_hash, response_status, response_body FROM idempotency_keys \
             WHERE user_id = $1 AND key = $2",
            [user.into(), key.into()],
        ))
        .await?;
    let Some(row) = row else {
        return Ok(Claim::Fresh);
    };
    let stored_hash: String = row.try_get("", "request_hash")?;
    if stored_hash != request_hash {
        return Ok(Claim::Mismatch);
    }
    let status: Option<i32> = row.try_get("", "response_status")?;
    let body: Option<Value> = row.try_get("", "response_body")?;
    Ok(match (status.and_then(|s| u16::try_from(s).ok()), body) {
        (Some(status), Some(body)) => Claim::Replay { status, body },
        _ => Claim::InFlight,
    })
}

/// Deletes up to `limit` keys stored more than `ttl` ago, oldest first, skipping rows another
/// transaction holds; returns how many.
pub async fn purge_expired(
    conn: &impl ConnectionTrait,
    ttl: std::time::Duration,
    limit: u64,
) -> Result<u64, DbErr> {
    let result = conn
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "DELETE FROM idempotency_keys WHERE (user_id, key) IN \
                 (SELECT user_id, key FROM idempotency_keys \
                  WHERE created_at < now() - make_interval(secs => $1) \
                  ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
            [ttl.as_secs_f64().into(), limit.into()],
        ))
        .await?;
    Ok(result.rows_affected())
}

/// Stores the answer to the request that claimed `key` ([`Claim::Fresh`]).
pub async fn save(
    txn: &impl ConnectionTrait,
    user: UserId,
    key: &str,
    request_hash: &str,
    status: u16,
    body: &Value,
) -> Result<(), DbErr> {
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO idempotency_keys (user_id, key, request_hash, response_status, \
                                       response_body) \
         VALUES ($1, $2, $3, $4, $5)",
        [
            user.into(),
            key.into(),
            request_hash.into(),
            i32::from(status).into(),
            body.clone().into(),
        ],
    ))
    .await?;
    Ok(())
}
