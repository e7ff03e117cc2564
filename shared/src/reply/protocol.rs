//! The replier's transitions of a `replies` row (DESIGN §8.2–§8.4), each in its own short
//! transaction with its audit row, never across a provider call:
//!
//! ```text
//! pending ──begin_attempt──► sending ──record_sent──────► sent
//!    ▲                         │  │  └──record_failed────► failed
//!    └──────abandon_attempt────┘  └──record_unknown──► unknown ──(reconcile)──► sent | sending
//! ```
//!
//! Every transition is fenced by the status and attempt count it was decided on (`WHERE status
//! … AND attempts = n`): a worker acting on a stale view (it hung, another took its task over)
//! changes nothing. Transitions that touch the mention lock it first, then the reply, then the
//! audit chain head: the same order as the API's request, so the two never deadlock.

use crate::adapters::SentReply;
use crate::audit::{self, Actor, Entry, entity};
use crate::db::entities::replies;
use crate::db::mentions::{self as mention_queries, Triage};
use crate::domain::{MentionEvent, ReplyStatus, next_state};
use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, Statement,
    TransactionTrait, Value,
};
use serde_json::json;

/// Why a reply ended `failed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyFailure {
    /// `rejected` (the provider refused it), `undecided` (its outcome could not be decided in
    /// time) or `unreplyable` (the mention cannot be answered).
    pub reason: &'static str,
    /// What happened, for people; stored as the reply's `last_error`.
    pub message: String,
    /// The provider's HTTP status, when it answered.
    pub provider_status: Option<u16>,
    /// The provider's error code, when it gave one.
    pub provider_code: Option<i64>,
}

/// Runs `sql`, an `UPDATE replies … RETURNING *` fenced by the status and attempt count the
/// caller read, and audits `action` with `payload` of the changed row, both through `conn`.
/// `None`, and nothing audited, if the row moved since.
async fn transition(
    conn: &impl ConnectionTrait,
    sql: &str,
    values: Vec<Value>,
    actor: &Actor,
    action: &str,
    payload: impl FnOnce(&replies::Model) -> serde_json::Value,
) -> Result<Option<replies::Model>, DbErr> {
    let statement = Statement::from_sql_and_values(DbBackend::Postgres, sql, values);
    let Some(row) = replies::Entity::find()
        .from_raw_sql(statement)
        .one(conn)
        .await?
    else {
        return Ok(None);
    };
    let entry = Entry::new(actor.clone(), action, entity::MENTION, row.mention_id);
    audit::append(conn, entry.with_payload(payload(&row))).await?;
    Ok(Some(row))
}

/// The write-ahead: `seen` (as read, `pending`, `sending` or `unknown`) becomes `sending` with
/// one more attempt, committed before the provider is called. `None` if the row moved since.
pub async fn begin_attempt(
    db: &DatabaseConnection,
    seen: &replies::Model,
    actor: &Actor,
) -> Result<Option<replies::Model>, DbErr> {
    let txn = db.begin().await?;
    let attempt = transition(
        &txn,
        "UPDATE replies SET status = 'sending', attempts = attempts + 1, \
             last_attempt_at = now(), updated_at = now() \
         WHERE id = $1 AND status = $2 AND attempts = $3 RETURNING *",
        vec![seen.id.into(), seen.status.into(), seen.attempts.into()],
        actor,
        "reply.attempt_started",
        |attempt| json!({"replyId": attempt.id, "attempt": attempt.attempts}),
    )
    .await?;
    if attempt.is_some() {
        txn.commit().await?;
    }
    Ok(attempt)
}

/// Gives back an attempt that reached nobody (breaker open, budget spent, a 429 or refused
/// connection after the retries): the row returns to `previous`, its state before
/// [`begin_attempt`]. `false` if the row moved since.
pub async fn abandon_attempt(
    db: &DatabaseConnection,
    attempt: &replies::Model,
    previous: &replies::Model,
    why: &str,
    actor: &Actor,
) -> Result<bool, DbErr> {
    let txn = db.begin().await?;
    let restored = transition(
        &txn,
        "UPDATE replies SET status = $3, attempts = $4, last_attempt_at = $5, \
             last_error = $6, updated_at = now() \
         WHERE id = $1 AND status = 'sending' AND attempts = $2 RETURNING *",
        vec![
            attempt.id.into(),
            attempt.attempts.into(),
            previous.status.into(),
            previous.attempts.into(),
            previous.last_attempt_at.into(),
            why.into(),
        ],
        actor,
        "reply.attempt_not_sent",
        // The attempt given back, not the restored count.
        |_| json!({"replyId": attempt.id, "attempt": attempt.attempts, "why": why}),
    )
    .await?;
    if restored.is_none() {
        return Ok(false);
    }
    txn.commit().await?;
    Ok(true)
}

/// The attempt may or may not have reached the provider: `unknown`, to be reconciled.
/// `last_attempt_at` becomes now, the end of the send call in the database's time: however
/// long the call took (the guard retries 429s and refused connections inside it), whatever
/// reached the provider was sent before this, so the read-back's wait counts from here.
/// `None` if the row moved since.
pub async fn record_unknown(
    db: &DatabaseConnection,
    attempt: &replies::Model,
    error: &str,
    actor: &Actor,
) -> Result<Option<replies::Model>, DbErr> {
    let txn = db.begin().await?;
    let unknown = transition(
        &txn,
        "UPDATE replies SET status = 'unknown', last_error = $3, last_attempt_at = now(), \
             updated_at = now() \
         WHERE id = $1 AND status = 'sending' AND attempts = $2 RETURNING *",
        vec![attempt.id.into(), attempt.attempts.into(), error.into()],
        actor,
        "reply.outcome_unknown",
        |_| json!({"replyId": attempt.id, "attempt": attempt.attempts, "error": error}),
    )
    .await?;
    if unknown.is_some() {
        txn.commit().await?;
    }
    Ok(unknown)
}

/// The database's clock now: reply timings are compared in it, never in a replier's.
pub async fn database_now(db: &impl ConnectionTrait) -> Result<DateTime<Utc>, DbErr> {
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT now() AS now",
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("now()".to_owned()))?;
    row.try_get("", "now")
}

/// Locks the mention and moves it on with `event` when the rules allow (a reply outcome
/// never fails over the mention's state: the reply's status is the record).
async fn move_mention(
    txn: &impl ConnectionTrait,
    reply: &replies::Model,
    event: MentionEvent,
) -> Result<(), DbErr> {
    let Some(mention) = mention_queries::find_for_update(txn, reply.mention_id).await? else {
        return Ok(());
    };
    match next_state(mention.state, event) {
        Ok(state) if state != mention.state => {
            let triage = Triage {
                assignee_id: mention.assignee_id,
                state,
                disposition: mention.disposition,
            };
            mention_queries::update_triage(txn, mention, triage).await?;
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(reply_id = %reply.id, error = %e, "mention state left as is"),
    }
    Ok(())
}

/// `sent` with the provider's ids (from `sending` or `unknown` at `reply.attempts`), mention
/// `replied`, audited, through the caller's `txn` (which also records the task's end state).
/// `None` if the row moved since.
pub async fn record_sent(
    txn: &impl ConnectionTrait,
    reply: &replies::Model,
    receipt: &SentReply,
    reconciled: bool,
    actor: &Actor,
) -> Result<Option<replies::Model>, DbErr> {
    move_mention(txn, reply, MentionEvent::ReplySent).await?;
    transition(
        txn,
        "UPDATE replies SET status = 'sent', provider_post_id = $3, provider_comment_id = $4, \
             last_error = NULL, sent_at = now(), updated_at = now() \
         WHERE id = $1 AND status IN ('sending', 'unknown') AND attempts = $2 RETURNING *",
        vec![
            reply.id.into(),
            reply.attempts.into(),
            receipt.provider_post_id.clone().into(),
            receipt.provider_comment_id.clone().into(),
        ],
        actor,
        "reply.sent",
        |sent| {
            json!({
                "replyId": sent.id,
                "attempts": sent.attempts,
                "reconciled": reconciled,
                "providerPostId": sent.provider_post_id,
                "providerCommentId": sent.provider_comment_id,
            })
        },
    )
    .await
}

/// `failed` with `failure` (from `reply`'s status and attempt count), mention
/// `provider_error`, audited with the provider's code and message. `None` if the row moved.
pub async fn record_failed(
    db: &DatabaseConnection,
    reply: &replies::Model,
    failure: &ReplyFailure,
    actor: &Actor,
) -> Result<Option<replies::Model>, DbErr> {
    let txn = db.begin().await?;
    move_mention(&txn, reply, MentionEvent::ReplyRejected).await?;
    let failed = transition(
        &txn,
        "UPDATE replies SET status = 'failed', last_error = $4, updated_at = now() \
         WHERE id = $1 AND status = $2 AND attempts = $3 RETURNING *",
        vec![
            reply.id.into(),
            reply.status.into(),
            reply.attempts.into(),
            failure.message.clone().into(),
        ],
        actor,
        "reply.failed",
        |failed| {
            json!({
                "replyId": failed.id,
                "reason": failure.reason,
                "message": failure.message,
                "providerStatus": failure.provider_status,
                "providerCode": failure.provider_code,
                "attempts": failed.attempts,
            })
        },
    )
    .await?;
    // A moved row leaves the mention untouched too: the transaction is rolled back.
    if failed.is_some() {
        txn.commit().await?;
    }
    Ok(failed)
}

/// Whether a reply in `status` still needs work from the replier.
pub fn is_open(status: ReplyStatus) -> bool {
    !matches!(status, ReplyStatus::Sent | ReplyStatus::Failed)
}
