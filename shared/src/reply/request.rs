//! Requesting a reply: the API's side of the protocol (DESIGN §8.1).
//!
//! [`request_reply`] runs inside the caller's transaction: a mention that already has a live
//! reply is answered at once without a lock; otherwise it locks the mention (waiting at most
//! [`MENTION_LOCK_WAIT`], so a burst on one mention never holds the pool), inserts the
//! reply with `ON CONFLICT DO NOTHING` on the partial unique index "one live reply per
//! mention", and only if the row was inserted moves the mention to `reply_attempt` and
//! enqueues the reply task. The index, not a prior read, decides between concurrent requests:
//! the loser reads the winner back and answers with it (same content) or a conflict naming it.
//! [`Requested::audit`] then appends the audit row, as the transaction's last write.

use crate::audit::{self, Actor, Entry, entity};
use crate::db::entities::{mentions, replies};
use crate::db::mentions::{self as mention_queries, Triage};
use crate::domain::{
    IllegalTransition, MentionEvent, MentionId, MentionState, ReplyId, UserId, next_state,
};
use crate::outbox::{self, NewTask, OutboxError};
use crate::reply::{ReplyTask, content_hash, same_content};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, EntityTrait, Statement};
use serde_json::json;

/// One request for a reply.
#[derive(Debug, Clone, Copy)]
pub struct ReplyRequest<'a> {
    /// The mention to answer.
    pub mention_id: MentionId,
    /// The text, already validated.
    pub content: &'a str,
    /// Who asks.
    pub requested_by: UserId,
    /// The request's `Idempotency-Key`, if any (stored with the reply for tracing).
    pub idempotency_key: Option<&'a str>,
    /// The trace id to give the reply task.
    pub trace_id: Option<&'a str>,
    /// The mention's version the requester was looking at: if it changed since, nothing is
    /// done ([`RequestError::Stale`]).
    pub seen_version: Option<i32>,
}

/// What a request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requested {
    /// A new reply, its task enqueued; the mention is `reply_attempt`.
    Created {
        reply: replies::Model,
        /// The mention's state before.
        from_state: Option<MentionState>,
        /// The mention's version after.
        version: i32,
    },
    /// The mention's live reply already has this content: it is that reply.
    Existing(replies::Model),
}

impl Requested {
    /// The reply, new or existing.
    pub fn reply(&self) -> &replies::Model {
        match self {
            Requested::Created { reply, .. } | Requested::Existing(reply) => reply,
        }
    }

    /// Appends the `reply.requested` audit row for a new reply (nothing for an existing
    /// one). Call it as the transaction's last write (see [`crate::audit`]).
    pub async fn audit(&self, conn: &impl ConnectionTrait, actor: Actor) -> Result<(), DbErr> {
        let Requested::Created {
            reply,
            from_state,
            version,
        } = self
        else {
            return Ok(());
        };
        audit::append(
            conn,
            Entry::new(actor, "reply.requested", entity::MENTION, reply.mention_id).with_payload(
                json!({
                    "replyId": reply.id,
                    "content": reply.content,
                    "fromState": from_state,
                    "toState": "reply_attempt",
                    "idempotencyKey": reply.idempotency_key,
                    "version": version,
                }),
            ),
        )
        .await?;
        Ok(())
    }
}

/// Why a reply cannot be requested.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// No mention has this id.
    #[error("no mention with this id")]
    MentionNotFound,
    /// The mention has a live or sent reply with other content.
    #[error("the mention already has reply {} ({}) with other content", .existing.id, .existing.status)]
    Conflict {
        /// That reply.
        existing: Box<replies::Model>,
    },
    /// Another change of the mention holds it longer than [`MENTION_LOCK_WAIT`] (a burst of
    /// requests on it): nothing was done; try again shortly.
    #[error("the mention is being changed by another request")]
    Busy,
    /// The mention changed since the version the requester was looking at.
    #[error("the mention changed: it is at version {current_version}")]
    Stale {
        /// Its version now.
        current_version: i32,
    },
    /// The mention's state does not allow a reply.
    #[error(transparent)]
    Illegal(#[from] IllegalTransition),
    /// The database failed.
    #[error("database error: {0}")]
    Db(#[from] DbErr),
    /// The task could not be enqueued.
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

/// Requests a reply through `txn` (see the module documentation). The caller commits, after
/// [`Requested::audit`].
pub async fn request_reply(
    txn: &impl ConnectionTrait,
    request: ReplyRequest<'_>,
) -> Result<Requested, RequestError> {
    // A request that cannot win is answered without waiting for the mention's lock (unless
    // it must first be checked against what the requester saw).
    if request.seen_version.is_none()
        && let Some(existing) = live_reply(txn, request.mention_id).await?
    {
        return answer_with(existing, request.content);
    }
    let mention = lock_mention(txn, request.mention_id)
        .await?
        .ok_or(RequestError::MentionNotFound)?;
    if let Some(seen) = request.seen_version
        && seen != mention.version
    {
        return Err(RequestError::Stale {
            current_version: mention.version,
        });
    }
    let Some(reply) = insert_live(txn, &request).await? else {
        // Holding the mention lock, the live reply cannot change status under us: the
        // replier's outcome transactions lock the mention first.
        let existing = live_reply(txn, request.mention_id)
            .await?
            .ok_or(DbErr::RecordNotFound(
                "the live reply that refused the insert".to_owned(),
            ))?;
        return answer_with(existing, request.content);
    };
    let state = next_state(mention.state, MentionEvent::RequestReply)?;
    let updated = mention_queries::update_triage(
        txn,
        mention.clone(),
        Triage {
            assignee_id: mention.assignee_id,
            state,
            disposition: mention.disposition,
        },
    )
    .await?;
    let mut task = NewTask::of(
        mention.brand_id,
        mention.platform,
        &ReplyTask { reply_id: reply.id },
    );
    if let Some(trace_id) = request.trace_id {
        task = task.with_trace_id(trace_id);
    }
    outbox::enqueue(txn, task).await?;
    Ok(Requested::Created {
        reply,
        from_state: mention.state,
        version: updated.version,
    })
}

/// How long a request waits for the mention's lock before answering [`RequestError::Busy`]:
/// long enough for another request's or the replier's short transaction, short enough that
/// a burst on one mention does not hold the pool's connections.
pub const MENTION_LOCK_WAIT: &str = "200ms";

/// The mention, locked, waiting at most [`MENTION_LOCK_WAIT`] (only for this statement).
async fn lock_mention(
    txn: &impl ConnectionTrait,
    id: MentionId,
) -> Result<Option<mentions::Model>, RequestError> {
    let limit = |value: &str| format!("SET LOCAL lock_timeout = {value}");
    txn.execute_unprepared(&limit(&format!("'{MENTION_LOCK_WAIT}'")))
        .await?;
    let locked = mention_queries::find_for_update(txn, id).await;
    if let Err(e) = &locked
        && crate::db::sqlstate(e).as_deref() == Some(crate::db::LOCK_NOT_AVAILABLE)
    {
        return Err(RequestError::Busy);
    }
    txn.execute_unprepared(&limit("DEFAULT")).await?;
    Ok(locked?)
}

/// The answer to a request when the mention already has `existing` live: that reply for the
/// same content, a conflict naming it for other content.
fn answer_with(existing: replies::Model, content: &str) -> Result<Requested, RequestError> {
    if same_content(&existing.content, content) {
        Ok(Requested::Existing(existing))
    } else {
        Err(RequestError::Conflict {
            existing: Box::new(existing),
        })
    }
}

/// Inserts the reply unless the mention has a live one (then `None`).
async fn insert_live(
    txn: &impl ConnectionTrait,
    request: &ReplyRequest<'_>,
) -> Result<Option<replies::Model>, DbErr> {
    // The predicate repeats the partial index's own, so PostgreSQL infers the index.
    replies::Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO replies (id, mention_id, content, content_hash, requested_by, \
                                  idempotency_key) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (mention_id) WHERE status <> 'failed' DO NOTHING \
             RETURNING *",
            [
                ReplyId::new().into(),
                request.mention_id.into(),
                request.content.into(),
                content_hash(request.content).into(),
                request.requested_by.into(),
                request.idempotency_key.map(str::to_owned).into(),
            ],
        ))
        .one(txn)
        .await
}

/// The mention's reply that is not `failed`, if any.
pub async fn live_reply(
    conn: &impl ConnectionTrait,
    mention_id: MentionId,
) -> Result<Option<replies::Model>, DbErr> {
    replies::Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT * FROM replies WHERE mention_id = $1 AND status <> 'failed'",
            [mention_id.into()],
        ))
        .one(conn)
        .await
}

/// The reply with this id.
pub async fn find(
    conn: &impl ConnectionTrait,
    id: ReplyId,
) -> Result<Option<replies::Model>, DbErr> {
    replies::Entity::find_by_id(id).one(conn).await
}
