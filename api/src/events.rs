//! Live updates: `GET /v1/events` (Server-Sent Events) and the collision hints posted to
//! `POST /v1/mentions/{id}/presence`.
//!
//! # Where events come from
//!
//! Every change of a mention writes an audit row in its own transaction (new mention, assigned,
//! disposition, reply requested, attempted, sent, failed), and audit rows are numbered in
//! commit order without gaps (the chain head's lock serializes appenders until they commit).
//! So the audit trail *is* the event log: an event's SSE `id` is its audit row's `id`. A
//! statement trigger sends `NOTIFY audit_appended` (migration `m20261208_000010_live_events`),
//! each api process's [`Feed`] `LISTEN`s, reads the new mention rows and fans them out to its
//! connected clients; it also reads every few seconds, so a lost notification costs only that.
//! Any replica serves any client, and one that reconnects with `Last-Event-ID` is sent every
//! mention change after that id from the table, as long as there are at most [`REPLAY_MAX`] of
//! them; beyond that it gets `reset` (reload everything) instead.
//!
//! # Presence
//!
//! Hints are not history: `POST …/presence` sends `NOTIFY presence` with who is doing what on
//! which mention, every feed passes it on as an event without an id, and clients forget a hint
//! they have not seen again for a while (the page re-posts every few seconds).

use crate::AppState;
use crate::auth::Principal;
use crate::error::{ApiError, Problem};
use crate::extract::{Body, parse_id};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use chrono::{DateTime, FixedOffset};
use futures_util::Stream;
use sea_orm::sqlx::postgres::PgListener;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use serde::{Deserialize, Serialize};
use shared::audit::entity;
use shared::brands;
use shared::domain::{BrandId, MentionId, UserId};
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Channel of the audit trigger: a transaction appended rows (no payload; identical
/// notifications of one transaction arrive as one).
const AUDIT_CHANNEL: &str = "audit_appended";
/// Channel of the collision hints; the payload is a [`Presence`] as JSON.
const PRESENCE_CHANNEL: &str = "presence";
/// Most mention changes sent to a client that reconnects; more, and it is told to reload.
pub const REPLAY_MAX: usize = 1000;
/// Audit rows a feed reads per query.
const READ_BATCH: i64 = 500;
/// How often a feed reads without a notification (a notification lost while its `LISTEN`
/// connection was down), and while it cannot listen at all.
const POLL_LISTENING: Duration = Duration::from_secs(5);
const POLL_DEAF: Duration = Duration::from_secs(1);
/// Events kept for a slow client before it is told to reload.
const CLIENT_BACKLOG: usize = 4096;
/// How long a stream waits for the feed of a process that is starting.
const STARTING: Duration = Duration::from_secs(10);
/// Between keep-alive comments, so proxies do not close a quiet stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Connected event streams (gauge).
const CLIENTS_METRIC: &str = "sse_clients";

/// The event routes (all need a token).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_events))
        .routes(routes!(post_presence))
}

/// One change of a mention: the audit row that recorded it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MentionChangeOut {
    /// The audit row's id, also the event's SSE `id`.
    pub seq: i64,
    /// What happened, e.g. `mention.ingested`, `mention.assigned`, `reply.sent`.
    pub action: String,
    /// The mention.
    #[schema(value_type = String, format = Uuid)]
    pub mention_id: String,
    /// Its brand.
    #[schema(value_type = String, format = Uuid)]
    pub brand_id: BrandId,
    /// `user:<id>` or `system:<process>`.
    pub actor: String,
    /// When it happened.
    pub at: DateTime<FixedOffset>,
}

/// What an agent is doing on a mention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Activity {
    /// Has it open.
    Viewing,
    /// Is typing a reply to it.
    Replying,
    /// Closed it.
    Left,
}

/// A collision hint.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PresenceOut {
    /// The mention.
    #[schema(value_type = String, format = Uuid)]
    pub mention_id: MentionId,
    /// Its brand.
    #[schema(value_type = String, format = Uuid)]
    pub brand_id: BrandId,
    /// Who.
    #[schema(value_type = String, format = Uuid)]
    pub user_id: UserId,
    /// Their display name.
    pub name: String,
    /// What they are doing.
    pub activity: Activity,
}

/// A collision hint to pass on.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PresenceIn {
    /// What the signed-in user is doing on the mention.
    pub activity: Activity,
}

#[derive(Debug, Clone)]
enum Live {
    Change(Arc<MentionChangeOut>),
    Presence(Arc<PresenceOut>),
}

/// Which brands' events a client is sent (`None`: every brand's).
type Scope = Option<Vec<BrandId>>;

fn in_scope(scope: &Scope, brand: BrandId) -> bool {
    scope.as_ref().is_none_or(|own| own.contains(&brand))
}

/// Audit rows with the brand of the mention they are about (`NULL` for other entities).
const WITH_BRAND: &str = "SELECT a.id, a.entity_type, a.action, a.entity_id, a.actor, \
         a.occurred_at, m.brand_id \
     FROM audit_log a LEFT JOIN mentions m ON a.entity_type = 'mention' \
         AND m.id = CASE WHEN a.entity_type = 'mention' THEN a.entity_id::uuid END";

/// The events of one api process: what its feed read, fanned out to every connected client.
#[derive(Clone)]
pub struct Feed {
    sender: broadcast::Sender<Live>,
    /// The last audit row the feed has read (0 before its first read).
    head: Arc<AtomicI64>,
    /// Whether the feed has read its head and tried to LISTEN: before, a stream would start
    /// at no position and miss the hints sent meanwhile.
    started: Arc<watch::Sender<bool>>,
}

impl Default for Feed {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(CLIENT_BACKLOG).0,
            head: Arc::new(AtomicI64::new(0)),
            started: Arc::new(watch::channel(false).0),
        }
    }
}

impl Feed {
    /// Reads and fans out events until `cancel` fires (see the module documentation).
    pub async fn run(self, db: DatabaseConnection, cancel: CancellationToken) {
        let mut listener: Option<PgListener> = None;
        let mut read_once = false;
        while !cancel.is_cancelled() {
            if listener.is_none() {
                listener = listen(&db).await;
            }
            match self.read_new(&db, read_once).await {
                Ok(()) => {
                    read_once = true;
                    self.started.send_replace(true);
                }
                Err(e) => tracing::warn!(error = %e, "event feed cannot read the audit trail"),
            }
            let poll = tokio::time::sleep(if listener.is_some() {
                POLL_LISTENING
            } else {
                POLL_DEAF
            });
            tokio::pin!(poll);
            // Hints are passed on as they come; a row appended (or the poll) ends the wait.
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = &mut poll => break,
                    note = recv(&mut listener) => match note {
                        Ok(Some(note)) if note.channel() == PRESENCE_CHANNEL => {
                            match serde_json::from_str::<PresenceOut>(note.payload()) {
                                Ok(hint) => self.send(Live::Presence(Arc::new(hint))),
                                Err(e) => tracing::warn!(error = %e, "unreadable presence notification"),
                            }
                        }
                        // A row was appended, or the connection was re-established (and
                        // a notification may have been missed).
                        Ok(_) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, "event feed lost its LISTEN connection; polling");
                            listener = None;
                            break;
                        }
                    },
                }
            }
        }
    }

    /// Sends on every audit row after the head; the first read only finds the head.
    async fn read_new(&self, db: &DatabaseConnection, read_once: bool) -> Result<(), DbErr> {
        if !read_once {
            let row = db
                .query_one_raw(Statement::from_string(
                    DbBackend::Postgres,
                    "SELECT coalesce(max(id), 0) AS head FROM audit_log",
                ))
                .await?;
            let head: i64 = row.map(|r| r.try_get("", "head")).transpose()?.unwrap_or(0);
            self.head.store(head, Ordering::Release);
            return Ok(());
        }
        loop {
            let after = self.head.load(Ordering::Acquire);
            let rows = db
                .query_all_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    format!("{WITH_BRAND} WHERE a.id > $1 ORDER BY a.id LIMIT $2"),
                    [after.into(), READ_BATCH.into()],
                ))
                .await?;
            for row in &rows {
                let seq: i64 = row.try_get("", "id")?;
                let mention = row.try_get::<String>("", "entity_type")? == entity::MENTION;
                if mention && row.try_get::<Option<uuid::Uuid>>("", "brand_id")?.is_some() {
                    self.send(Live::Change(Arc::new(change(row)?)));
                }
                self.head.store(seq, Ordering::Release);
            }
            if rows.len() < READ_BATCH as usize {
                return Ok(());
            }
        }
    }

    fn send(&self, event: Live) {
        // No receiver means no client is connected: nothing to do.
        let _ = self.sender.send(event);
    }

    /// Streams `after`'s missed changes, then the live ones, of the brands in `scope` into
    /// `out` until the client goes or `cancel` fires.
    async fn serve_client(
        self,
        db: DatabaseConnection,
        scope: Scope,
        after: Option<i64>,
        out: mpsc::Sender<Event>,
        cancel: CancellationToken,
    ) {
        metrics::gauge!(CLIENTS_METRIC).increment(1.0);
        // A stream opened while the process starts waits (a little) for the feed.
        let mut started = self.started.subscribe();
        let _ = tokio::time::timeout(STARTING, started.wait_for(|s| *s)).await;
        // Subscribed before reading the table, so nothing falls between the two.
        let mut live = self.sender.subscribe();
        let mut cursor = self.head.load(Ordering::Acquire);
        let first = match after {
            None => vec![ready(cursor)],
            Some(after) => match changes_after(&db, &scope, after).await {
                Ok(missed) if missed.len() > REPLAY_MAX => vec![reset()],
                Ok(missed) => {
                    cursor = missed.last().map_or(after, |c| c.seq).max(after);
                    missed.iter().map(change_event).collect()
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the events a client missed");
                    vec![reset()]
                }
            },
        };
        for event in first {
            if out.send(event).await.is_err() {
                return metrics::gauge!(CLIENTS_METRIC).decrement(1.0);
            }
        }
        loop {
            let event = tokio::select! {
                () = cancel.cancelled() => break,
                () = out.closed() => break,
                received = live.recv() => match received {
                    Ok(Live::Change(change)) if change.seq > cursor => {
                        cursor = change.seq;
                        if !in_scope(&scope, change.brand_id) {
                            continue;
                        }
                        change_event(&change)
                    }
                    Ok(Live::Change(_)) => continue,
                    Ok(Live::Presence(hint)) if in_scope(&scope, hint.brand_id) => {
                        json_event("presence", &*hint)
                    }
                    Ok(Live::Presence(_)) => continue,
                    Err(broadcast::error::RecvError::Lagged(_)) => reset(),
                    Err(broadcast::error::RecvError::Closed) => break,
                },
            };
            if out.send(event).await.is_err() {
                break;
            }
        }
        metrics::gauge!(CLIENTS_METRIC).decrement(1.0);
    }
}

async fn listen(db: &DatabaseConnection) -> Option<PgListener> {
    let attempt = async {
        let mut listener = PgListener::connect_with(db.get_postgres_connection_pool()).await?;
        listener
            .listen_all([AUDIT_CHANNEL, PRESENCE_CHANNEL])
            .await?;
        Ok::<_, sea_orm::sqlx::Error>(listener)
    };
    match attempt.await {
        Ok(listener) => Some(listener),
        Err(e) => {
            tracing::warn!(error = %e, "event feed cannot LISTEN; polling only for now");
            None
        }
    }
}

/// The next notification (`None`: the connection was re-established); forever without a
/// listener.
async fn recv(
    listener: &mut Option<PgListener>,
) -> Result<Option<sea_orm::sqlx::postgres::PgNotification>, sea_orm::sqlx::Error> {
    match listener.as_mut() {
        Some(listener) => listener.try_recv().await,
        None => std::future::pending().await,
    }
}

fn change(row: &sea_orm::QueryResult) -> Result<MentionChangeOut, DbErr> {
    Ok(MentionChangeOut {
        seq: row.try_get("", "id")?,
        action: row.try_get("", "action")?,
        mention_id: row.try_get("", "entity_id")?,
        brand_id: BrandId(row.try_get("", "brand_id")?),
        actor: row.try_get("", "actor")?,
        at: row.try_get("", "occurred_at")?,
    })
}

/// The changes of mentions of the brands in `scope` after `after`, oldest first; one more
/// than [`REPLAY_MAX`] at most.
async fn changes_after(
    db: &DatabaseConnection,
    scope: &Scope,
    after: i64,
) -> Result<Vec<MentionChangeOut>, DbErr> {
    let brands = brands::id_list(scope.as_deref());
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "{WITH_BRAND} WHERE a.id > $1 AND a.entity_type = $2 AND m.id IS NOT NULL \
                   AND ($4::text IS NULL \
                        OR m.brand_id = ANY(string_to_array($4, ',')::uuid[])) \
                 ORDER BY a.id LIMIT $3"
            ),
            [
                after.into(),
                entity::MENTION.into(),
                i64::try_from(REPLAY_MAX + 1).unwrap_or(i64::MAX).into(),
                brands.into(),
            ],
        ))
        .await?;
    rows.iter().map(change).collect()
}

fn json_event(name: &str, data: &impl Serialize) -> Event {
    Event::default()
        .event(name)
        .json_data(data)
        .unwrap_or_else(|_| reset())
}

fn change_event(change: &MentionChangeOut) -> Event {
    json_event("mention", change).id(change.seq.to_string())
}

/// The first event of a stream opened without `Last-Event-ID`: where it starts.
fn ready(head: i64) -> Event {
    Event::default()
        .event("ready")
        .id(head.to_string())
        .data(format!("{{\"seq\":{head}}}"))
}

/// The client missed more than can be sent again: it should reload what it shows.
fn reset() -> Event {
    Event::default().event("reset").data("{}")
}

/// The `Last-Event-ID` a reconnecting client sends; anything but a number counts as none.
fn last_event_id(headers: &HeaderMap) -> Option<i64> {
    headers
        .get("last-event-id")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|id| *id >= 0)
}

/// Server-Sent Events: every change of a mention (`event: mention`, with the audit row's id
/// as the SSE `id`; refetch what it changes), collision hints (`event: presence`, no id),
/// `event: ready` first when opened without `Last-Event-ID` (its `id` is where the stream
/// starts), and `event: reset` when the client missed more than can be sent again (reload).
/// Reconnect with `Last-Event-ID` to be sent what was missed (up to 1000 changes).
#[utoipa::path(get, path = "/v1/events", tag = "mentions", security(("bearer" = [])),
    params(
        ("Last-Event-ID" = Option<String>, Header, nullable = false, pattern = "^[0-9]{1,18}$",
            description = "The id of the last event received; the changes after it are sent first"),
    ),
    responses(
        (status = 200, description = "The event stream; it stays open", content_type = "text/event-stream", body = String),
    ))]
async fn get_events(
    State(state): State<AppState>,
    me: Principal,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let (out, events) = mpsc::channel(64);
    tokio::spawn(state.events.clone().serve_client(
        state.db.clone(),
        me.brands,
        last_event_id(&headers),
        out,
        state.shutdown.clone(),
    ));
    let stream = futures_util::stream::unfold(events, |mut events| async move {
        let event = events.recv().await?;
        Some((Ok(event), events))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}

/// Tells every agent with the mention open what the signed-in user is doing on it (`viewing`
/// every few seconds while it is open, `replying` while typing, `left` on closing it). Not
/// stored: clients forget a hint not repeated within 15 s.
#[utoipa::path(post, path = "/v1/mentions/{id}/presence", tag = "mentions", security(("bearer" = [])),
    params(("id" = String, Path, description = "Mention id")),
    request_body = PresenceIn,
    responses(
        (status = 204, description = "Passed on to every connected client"),
        (status = 404, description = "No such mention", body = Problem),
        (status = 422, description = "Invalid activity or id", body = Problem),
    ))]
async fn post_presence(
    State(state): State<AppState>,
    me: Principal,
    Path(id): Path<String>,
    Body(input): Body<PresenceIn>,
) -> Result<StatusCode, ApiError> {
    let mention_id: MentionId = parse_id("id", &id)?;
    let activity = serde_json::to_value(input.activity).map_err(|e| ApiError::internal(&e))?;
    // One statement: the mention must exist (in a brand the user sees), the name comes from
    // the user's row.
    let brands = brands::id_list(me.brands.as_deref());
    let sent = state
        .db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_notify($4, json_build_object('mentionId', m.id, 'brandId', m.brand_id, \
                 'userId', u.id, 'name', u.name, 'activity', $3::text)::text) \
             FROM mentions m, users u WHERE m.id = $1 AND u.id = $2 \
               AND ($5::text IS NULL OR m.brand_id = ANY(string_to_array($5, ',')::uuid[]))",
            [
                mention_id.into(),
                me.user_id.into(),
                activity.as_str().unwrap_or_default().into(),
                PRESENCE_CHANNEL.into(),
                brands.into(),
            ],
        ))
        .await?;
    if sent.is_none() {
        return Err(ApiError::not_found("no mention with this id"));
    }
    Ok(StatusCode::NO_CONTENT)
}
