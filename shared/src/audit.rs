//! The audit trail: one append-only row per state change, written in the same transaction as
//! the change, chained by hashes so that tampering is detectable.
//!
//! # Writing
//!
//! [`append`] inserts a row into `audit_log` through the caller's connection or transaction.
//! The payload is reduced to an [`excerpt`] first: values under secret-looking keys are
//! replaced by `"[redacted]"` and the result is bounded to [`MAX_PAYLOAD_BYTES`].
//!
//! The chain is extended by a `BEFORE INSERT` trigger, so rows written by raw SQL are chained
//! too. It locks the one-row `audit_chain_head` table until the transaction ends, which
//! serializes appenders: append as the **last write** of a transaction (this also keeps lock
//! order uniform: entity rows first, chain head last). Appenders must run at READ COMMITTED
//! (the default); at REPEATABLE READ or SERIALIZABLE a concurrent append surfaces as a
//! serialization failure.
//!
//! # Chain format
//!
//! Rows are numbered `id` = 1, 2, 3… in chain order, without gaps. For each row,
//!
//! ```text
//! hash = hex(sha256(utf8(jsonb_build_array(
//!            prev_hash, id, occurred_at, actor, action, entity_type, entity_id, payload)::text)))
//! ```
//!
//! where `prev_hash` is the previous row's `hash` ([`GENESIS_HASH`] for row 1), `occurred_at`
//! is formatted in UTC as `YYYY-MM-DDTHH:MI:SS.ffffffZ`, and `::text` is PostgreSQL's
//! canonical jsonb text (object keys sorted, `", "` and `": "` separators). The SQL function
//! `audit_row_hash` computes it for the insert trigger. [`verify`] recomputes it in Rust from
//! the stored columns (the payload read as its jsonb text), never through a function of the
//! schema, which whoever owns the schema could replace. The head row (`audit_chain_head`)
//! holds the last id and hash, so removing rows at the end of the chain is detected too.
//!
//! # Anchors
//!
//! The services' database role can only append (see the migration `m20261206_000010_app_role`),
//! but the schema's owner can still disable the triggers, change a row and recompute every
//! later hash and the head: the chain then verifies. An [`Anchor`], a position and its hash
//! written down outside the database earlier, catches that: the rewritten chain no longer
//! passes through it. [`head`] reads the current one (`GET /v1/audit/head`), and the api logs
//! it every `AUDIT_HEAD_LOG_SECONDS` ([`log_head`]), so the log store keeps a trail of anchors.

use crate::db::entities::audit_log;
use crate::domain::UserId;
use chrono::{DateTime, FixedOffset, Utc};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryResult, Set, Statement};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::fmt;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Upper bound of a stored payload, in bytes of compact JSON.
pub const MAX_PAYLOAD_BYTES: usize = 2048;

/// What replaces the value of a secret-looking key.
pub const REDACTED: &str = "[redacted]";

/// Key added to a payload that had to be shortened (with value `true`).
pub const TRUNCATED_KEY: &str = "_truncated";

/// `prev_hash` of the first row.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Rows read per query by [`verify`].
const VERIFY_BATCH: i64 = 1000;

/// Key fragments (lower case, without `_` and `-`) whose values are never stored.
const SECRET_KEY_PARTS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "authorization",
    "profilekey",
    "cookie",
    "credential",
    "privatekey",
];

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A signed-in user; written `user:<uuid>`.
    User(UserId),
    /// A process acting on its own (ingestor, replier, scheduler…); written `system:<name>`.
    System(String),
}

impl Actor {
    /// `Actor::System` for the named process.
    pub fn system(process: impl Into<String>) -> Self {
        Actor::System(process.into())
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::User(id) => write!(f, "user:{id}"),
            Actor::System(process) => write!(f, "system:{process}"),
        }
    }
}

/// The kinds of entity that audit rows name (`entity_type`).
pub mod entity {
    pub const MENTION: &str = "mention";
    pub const USER: &str = "user";
    pub const TASK: &str = "task";
    pub const TOKEN: &str = "token";
    pub const CIRCUIT_BREAKER: &str = "circuit_breaker";
    pub const BRAND: &str = "brand";
}

/// One audit record to append.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry<'a> {
    /// Who.
    pub actor: Actor,
    /// What happened, e.g. `mention.assigned`.
    pub action: &'a str,
    /// The kind of thing it happened to, e.g. `mention`.
    pub entity_type: &'a str,
    pub entity_id: String,
    /// Details; stored as an [`excerpt`].
    pub payload: Value,
}

impl<'a> Entry<'a> {
    /// An entry with an empty payload.
    pub fn new(
        actor: Actor,
        action: &'a str,
        entity_type: &'a str,
        entity_id: impl fmt::Display,
    ) -> Self {
        Entry {
            actor,
            action,
            entity_type,
            entity_id: entity_id.to_string(),
            payload: Value::Object(Map::new()),
        }
    }

    /// The same entry with these details.
    pub fn with_payload(mut self, payload: Value) -> Self {
        self.payload = payload;
        self
    }
}

/// Appends `entry` to the audit log and returns the stored row (with its chain position and
/// hash). Call it inside the transaction that makes the change, as its last write.
pub async fn append(
    conn: &impl ConnectionTrait,
    entry: Entry<'_>,
) -> Result<audit_log::Model, DbErr> {
    let row = audit_log::ActiveModel {
        actor: Set(entry.actor.to_string()),
        action: Set(entry.action.to_owned()),
        entity_type: Set(entry.entity_type.to_owned()),
        entity_id: Set(entry.entity_id),
        payload: Set(excerpt(entry.payload)),
        ..Default::default()
    };
    // id, prev_hash and hash are assigned by the chaining trigger.
    audit_log::Entity::insert(row)
        .exec_with_returning(conn)
        .await
}

/// `payload` as stored: secret-looking keys redacted at any depth (and NUL characters, which
/// PostgreSQL cannot store in `jsonb`, replaced by U+FFFD), then shortened if its
/// compact JSON exceeds [`MAX_PAYLOAD_BYTES`] (long strings cut, long arrays and objects
/// trimmed, and `"_truncated": true` added; a non-object is wrapped as
/// `{"_truncated": true, "value": …}`). The result is always valid JSON within the bound.
///
/// A key is secret-looking when, lower-cased and without `_` and `-`, it contains one of
/// `password`, `passwd`, `secret`, `token`, `apikey`, `authorization`, `profilekey`, `cookie`,
/// `credential` or `privatekey`.
pub fn excerpt(payload: Value) -> Value {
    let redacted = redact(payload);
    if json_len(&redacted) <= MAX_PAYLOAD_BYTES {
        return redacted;
    }
    // From gentle to drastic; the last level (empty strings and collections) always fits.
    const LEVELS: [(usize, usize); 5] = [(256, 32), (64, 16), (16, 8), (4, 4), (0, 0)];
    let mut shortened = Value::Null;
    for (max_chars, max_items) in LEVELS {
        shortened = mark_truncated(shrink(&redacted, max_chars, max_items, 0));
        if json_len(&shortened) <= MAX_PAYLOAD_BYTES {
            break;
        }
    }
    shortened
}

fn is_secret_key(key: &str) -> bool {
    let normalized: String = key
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    SECRET_KEY_PARTS
        .iter()
        .any(|part| normalized.contains(part))
}

/// Secrets replaced, and NUL characters (which `jsonb` refuses, failing the whole
/// transaction) replaced by U+FFFD.
fn redact(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| {
                    let value = if is_secret_key(&key) {
                        Value::String(REDACTED.to_owned())
                    } else {
                        redact(value)
                    };
                    (without_nul(key), value)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(redact).collect()),
        Value::String(text) => Value::String(without_nul(text)),
        other => other,
    }
}

fn without_nul(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', "\u{fffd}")
    } else {
        text
    }
}

fn json_len(value: &Value) -> usize {
    value.to_string().len()
}

fn cut(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(max_chars).collect();
    short.push('…');
    short
}

/// A copy of `value` with strings cut to `max_chars`, arrays and objects cut to `max_items`
/// (plus a note of how many were left out), keys to `max(max_chars, 32)` characters, and
/// nesting cut below a fixed depth.
fn shrink(value: &Value, max_chars: usize, max_items: usize, depth: usize) -> Value {
    const MAX_DEPTH: usize = 8;
    match value {
        Value::String(text) => Value::String(cut(text, max_chars)),
        Value::Array(_) | Value::Object(_) if depth >= MAX_DEPTH => Value::String("…".to_owned()),
        Value::Array(items) => {
            let mut out: Vec<Value> = items
                .iter()
                .take(max_items)
                .map(|item| shrink(item, max_chars, max_items, depth + 1))
                .collect();
            if items.len() > max_items {
                out.push(Value::String(format!("… {} more", items.len() - max_items)));
            }
            Value::Array(out)
        }
        Value::Object(map) => {
            let mut out: Map<String, Value> = map
                .iter()
                .take(max_items)
                .map(|(key, item)| {
                    (
                        cut(key, max_chars.max(32)),
                        shrink(item, max_chars, max_items, depth + 1),
                    )
                })
                .collect();
            if map.len() > max_items {
                out.insert(
                    "…".to_owned(),
                    Value::String(format!("{} more keys", map.len() - max_items)),
                );
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

fn mark_truncated(value: Value) -> Value {
    let mut map = match value {
        Value::Object(map) => map,
        other => Map::from_iter([("value".to_owned(), other)]),
    };
    map.insert(TRUNCATED_KEY.to_owned(), Value::Bool(true));
    Value::Object(map)
}

/// A chain position and the hash it had, as recorded outside the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    /// The row's `id` (1 or more).
    pub seq: i64,
    /// Its `hash`: 64 lower-case hex digits.
    pub hash: String,
}

/// The chain head now: the last row's position and hash (position 0 and [`GENESIS_HASH`]
/// while the log is empty).
pub async fn head(conn: &impl ConnectionTrait) -> Result<Anchor, DbErr> {
    let row = conn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT seq, hash FROM audit_chain_head",
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("audit_chain_head has no row".to_owned()))?;
    Ok(Anchor {
        seq: row.try_get("", "seq")?,
        hash: row.try_get("", "hash")?,
    })
}

/// Logs the chain head now and every `interval` until `cancel` fires: each line (`audit
/// chain head`, fields `seq` and `hash`) is an anchor kept by the log store, outside the
/// database. A failed read is logged and retried at the next tick. Run by the api.
pub async fn log_head(conn: &impl ConnectionTrait, interval: Duration, cancel: &CancellationToken) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = cancel.cancelled() => return,
        }
        match head(conn).await {
            Ok(head) => tracing::info!(seq = head.seq, hash = %head.hash, "audit chain head"),
            Err(e) => tracing::warn!(error = %e, "cannot read the audit chain head"),
        }
    }
}

/// Outcome of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Rows checked (rows appended after the walk began are not included).
    pub rows_checked: u64,
    /// The last chain position when the walk began.
    pub head_id: i64,
    /// The first row where the chain is broken; `None` means the chain is intact (and passes
    /// through the anchor, when one was given).
    pub first_broken: Option<ChainBreak>,
}

impl VerifyReport {
    /// Whether the chain is intact.
    pub fn is_valid(&self) -> bool {
        self.first_broken.is_none()
    }
}

/// Where and how the chain is broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    /// The row's `id` (chain position).
    pub id: i64,
    /// What is wrong with it.
    pub reason: BreakReason,
}

impl fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "audit row {}: {}", self.id, self.reason)
    }
}

/// What is wrong with a row of the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakReason {
    /// The row's content does not match its hash: it was altered.
    HashMismatch,
    /// The row's `prev_hash` is not the previous row's hash: a row before it was removed,
    /// replaced or rehashed.
    PrevHashMismatch,
    /// There is no row at this position although the chain head counts past it: it was
    /// deleted.
    Missing,
    /// The last row's hash is not the one the chain head recorded.
    HeadMismatch,
    /// The row at the anchor's position does not have the anchor's hash, or the chain ends
    /// before it: the chain was rewritten (or cut) since the anchor was taken.
    AnchorMismatch,
}

impl fmt::Display for BreakReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BreakReason::HashMismatch => "content does not match its hash (altered)",
            BreakReason::PrevHashMismatch => "prev_hash does not match the previous row's hash",
            BreakReason::Missing => "row is missing (deleted)",
            BreakReason::HeadMismatch => "hash does not match the chain head",
            BreakReason::AnchorMismatch => {
                "the chain does not pass through the anchor (rewritten since it was taken)"
            }
        })
    }
}

/// Walks the whole chain in order, in batches, recomputing every hash (in this process, not in
/// the database), and reports the first broken row. With an `anchor`, the chain must also pass
/// through it. Covers the rows up to the chain head as it was when the walk began, so it can
/// run while others append.
pub async fn verify(
    conn: &impl ConnectionTrait,
    anchor: Option<&Anchor>,
) -> Result<VerifyReport, DbErr> {
    let Anchor {
        seq: head_id,
        hash: head_hash,
    } = head(conn).await?;

    let mut report = VerifyReport {
        rows_checked: 0,
        head_id,
        first_broken: None,
    };
    let mut last_id = 0_i64;
    let mut last_hash = GENESIS_HASH.to_owned();
    let broken = |id, reason| Some(ChainBreak { id, reason });

    'walk: while last_id < head_id {
        let rows = conn
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT id, occurred_at, actor, action, entity_type, entity_id, \
                 payload::text AS payload, prev_hash, hash \
                 FROM audit_log WHERE id > $1 AND id <= $2 ORDER BY id LIMIT $3",
                [last_id.into(), head_id.into(), VERIFY_BATCH.into()],
            ))
            .await?;
        if rows.is_empty() {
            break;
        }
        for row in rows {
            let id: i64 = row.try_get("", "id")?;
            let prev_hash: String = row.try_get("", "prev_hash")?;
            let hash: String = row.try_get("", "hash")?;
            report.first_broken = if id != last_id + 1 {
                broken(last_id + 1, BreakReason::Missing)
            } else if prev_hash != last_hash {
                broken(id, BreakReason::PrevHashMismatch)
            } else if hash != row_hash(&row)? {
                broken(id, BreakReason::HashMismatch)
            } else if anchor.is_some_and(|a| a.seq == id && a.hash != hash) {
                broken(id, BreakReason::AnchorMismatch)
            } else {
                None
            };
            if report.first_broken.is_some() {
                break 'walk;
            }
            report.rows_checked += 1;
            last_id = id;
            last_hash = hash;
        }
    }

    if report.first_broken.is_none() {
        report.first_broken = if last_id < head_id {
            broken(last_id + 1, BreakReason::Missing)
        } else if head_id > 0 && last_hash != head_hash {
            broken(head_id, BreakReason::HeadMismatch)
        } else {
            match anchor {
                Some(a) if a.seq > last_id => broken(a.seq, BreakReason::AnchorMismatch),
                _ => None,
            }
        };
    }
    Ok(report)
}

/// The hash of a row read by [`verify`], computed as `audit_row_hash` does: the SHA-256 of
/// the jsonb text of `[prev_hash, id, occurred_at, actor, action, entity_type, entity_id,
/// payload]`. Strings are escaped as jsonb's output escapes them (`"`, `\`, `\b`, `\f`, `\n`,
/// `\r`, `\t`, other control characters as lower-case `\u00xx`, everything else as is), which
/// is what serde_json writes; the payload is the stored jsonb's own text.
fn row_hash(row: &QueryResult) -> Result<String, DbErr> {
    let text = |column: &str| -> Result<String, DbErr> {
        let value: String = row.try_get("", column)?;
        Ok(Value::String(value).to_string())
    };
    let id: i64 = row.try_get("", "id")?;
    let occurred_at: DateTime<FixedOffset> = row.try_get("", "occurred_at")?;
    let occurred_at = occurred_at
        .with_timezone(&Utc)
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    let payload: String = row.try_get("", "payload")?;
    let canonical = format!(
        "[{}, {id}, {}, {}, {}, {}, {}, {payload}]",
        text("prev_hash")?,
        Value::String(occurred_at),
        text("actor")?,
        text("action")?,
        text("entity_type")?,
        text("entity_id")?,
    );
    Ok(hex::encode(Sha256::digest(canonical.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn actors_are_written_with_their_kind() {
        let id: UserId = "0191e1c2-7b3a-7cc0-8f5e-1a2b3c4d5e6f"
            .parse()
            .expect("valid uuid");
        assert_eq!(
            Actor::User(id).to_string(),
            "user:0191e1c2-7b3a-7cc0-8f5e-1a2b3c4d5e6f"
        );
        assert_eq!(Actor::system("replier").to_string(), "system:replier");
    }

    #[test]
    fn secrets_are_redacted_at_any_depth_whatever_the_key_spelling() {
        let payload = json!({
            "password": "hunter2",
            "user": {"apiKey": "k", "API_KEY": "k", "Profile-Key": "p", "name": "Ann"},
            "headers": [{"Authorization": "Bearer x", "accept": "json"}],
            "access_token": {"nested": "object"},
            "clientSecret": 42,
            "content": "my password is not a key"
        });
        let out = excerpt(payload);
        assert_eq!(
            out,
            json!({
                "password": REDACTED,
                "user": {"apiKey": REDACTED, "API_KEY": REDACTED, "Profile-Key": REDACTED,
                         "name": "Ann"},
                "headers": [{"Authorization": REDACTED, "accept": "json"}],
                "access_token": REDACTED,
                "clientSecret": REDACTED,
                "content": "my password is not a key"
            })
        );
    }

    #[test]
    fn nul_characters_which_jsonb_refuses_are_replaced() {
        let out = excerpt(json!({"content\u{0}": "a\u{0}b"}));
        assert_eq!(out, json!({"content\u{fffd}": "a\u{fffd}b"}));
    }

    #[test]
    fn small_payloads_are_kept_as_they_are() {
        let payload = json!({"from": null, "to": "escalate", "n": [1, 2, 3]});
        assert_eq!(excerpt(payload.clone()), payload);
    }

    #[test]
    fn huge_payloads_are_cut_to_the_bound_and_marked() {
        let payload = json!({
            "content": "é".repeat(10_000),
            "items": (0..5_000).collect::<Vec<_>>(),
            "token": "secret",
        });
        let out = excerpt(payload);
        assert!(
            json_len(&out) <= MAX_PAYLOAD_BYTES,
            "{} bytes",
            json_len(&out)
        );
        assert_eq!(out[TRUNCATED_KEY], json!(true));
        assert_eq!(out["token"], json!(REDACTED));
        assert!(
            out["content"]
                .as_str()
                .expect("content stays a string")
                .starts_with("ééé")
        );
    }

    #[test]
    fn pathological_payloads_still_fit() {
        let long_key = "k".repeat(5_000);
        let nested = (0..100).fold(json!("leaf"), |inner, _| json!({ long_key.clone(): inner }));
        for payload in [
            nested,
            json!("\"".repeat(10_000)),
            json!(
                (0..500)
                    .map(|i| json!({ format!("{i}-{long_key}"): i }))
                    .collect::<Vec<_>>()
            ),
        ] {
            let out = excerpt(payload);
            assert!(
                json_len(&out) <= MAX_PAYLOAD_BYTES,
                "{} bytes",
                json_len(&out)
            );
            assert_eq!(out[TRUNCATED_KEY], json!(true));
        }
    }
}
