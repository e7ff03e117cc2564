//! The relay: moves due `pending` tasks to the broker.
//!
//! One round claims up to a batch of due rows with `FOR UPDATE SKIP LOCKED`, publishes each
//! with publisher confirms (persistent, `mandatory`, `message_id` = task id), and marks the
//! confirmed ones `published` **in the transaction that claimed them**. The row locks are what
//! let several relays run at once without publishing a row twice, so this is the one place
//! where a transaction stays open across AMQP calls; it is bounded by the batch size and
//! [`RelayConfig::confirm_timeout`], which covers publishing as well as confirming (a broker
//! under flow control that stops reading cannot hold the claim's locks longer). A message the broker nacks or cannot route stays pending,
//! due again a little later, with the reason in `last_error`.
//!
//! Brands share the queues (one per kind and platform), so the relay keeps one brand's backlog
//! from filling a queue before another brand's work: it publishes at most
//! [`RelayConfig::brand_in_flight`] tasks of a brand per queue that are not finished yet
//! (`published` or `running`), and more as they finish; a claim takes the brands' due tasks in
//! turn (the first of each brand, then the second, ...), oldest first within a brand.
//!
//! The relay wakes on `NOTIFY tasks_pending` and also polls, and sleeps no longer than until
//! the next pending task is due. While the broker (or the database) is unreachable it claims
//! nothing and retries with capped backoff; rows simply stay pending, and the backlog drains
//! when the broker returns.

use crate::bus::{self, PublishError, TaskMessage};
use crate::config::Settings;
use crate::db::entities::tasks;
use crate::domain::JobKind;
use crate::domain::{TaskId, TaskStatus};
use crate::outbox::PENDING_CHANNEL;
use crate::process;
use chrono::Utc;
use lapin::{Channel, Connection};
use sea_orm::sea_query::Expr;
use sea_orm::sqlx::postgres::PgListener;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter,
    Statement, TransactionTrait,
};
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Task messages the broker confirmed, by kind and platform.
pub const PUBLISHED_METRIC: &str = "outbox_published_total";
/// Task messages the broker refused (retried later).
pub const REFUSED_METRIC: &str = "outbox_publish_refused_total";

/// How long a message the broker refused waits before the relay tries it again.
const REFUSED_RETRY: Duration = Duration::from_secs(30);

/// Batches one relay has in flight at once, each in its own transaction (`SKIP LOCKED` keeps
/// them apart): while one waits for the broker's confirmations, another claims and publishes,
/// so the database and the broker do not take turns waiting for each other.
const LANES: usize = 2;

/// Due pending rows, the brands in turn, each brand and queue under its in-flight limit ($2).
const CLAIM_SQL: &str = "SELECT t.* FROM tasks t \
     JOIN (SELECT due.id, due.turn FROM \
               (SELECT id, brand_id, kind, platform, row_number() OVER \
                    (PARTITION BY brand_id, kind, platform ORDER BY available_at, id) AS turn \
                FROM tasks WHERE status = 'pending' AND available_at <= now()) due \
           LEFT JOIN (SELECT brand_id, kind, platform, count(*) AS n FROM tasks \
                      WHERE status IN ('published', 'running') \
                      GROUP BY brand_id, kind, platform) busy \
             USING (brand_id, kind, platform) \
           WHERE due.turn + coalesce(busy.n, 0) <= $2) claimable ON claimable.id = t.id \
     WHERE t.status = 'pending' AND t.available_at <= now() \
     ORDER BY claimable.turn, t.available_at LIMIT $1 FOR UPDATE OF t SKIP LOCKED";

/// How a relay runs.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The broker (with its virtual host).
    pub amqp_url: SecretString,
    /// The connection name the broker shows.
    pub connection_name: String,
    /// Rows claimed, published and marked per transaction.
    pub batch_size: u32,
    /// Tasks of one brand a queue may hold at once, `published` or `running`.
    pub brand_in_flight: u32,
    /// Longest sleep between two rounds when no notification arrives.
    pub poll_interval: Duration,
    /// Longest wait between two attempts while the broker or database is unreachable.
    pub max_backoff: Duration,
    /// Longest time one batch may take to publish and be confirmed by the broker.
    pub confirm_timeout: Duration,
}

impl RelayConfig {
    /// The configuration from the settings, for a relay inside `process_name`.
    pub fn from_settings(settings: &Settings, process_name: &str) -> RelayConfig {
        RelayConfig {
            amqp_url: settings.amqp_url.clone(),
            connection_name: format!("{process_name} relay"),
            batch_size: settings.tasks.relay_batch_size,
            brand_in_flight: settings.tasks.relay_brand_in_flight,
            poll_interval: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            confirm_timeout: Duration::from_secs(5),
        }
    }
}

/// Why a round of the relay stopped.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The database failed; nothing was marked.
    #[error("database error: {0}")]
    Db(#[from] DbErr),
    /// The broker is unreachable or the connection broke; rows not confirmed stay pending.
    #[error("broker error: {0}")]
    Broker(#[from] lapin::Error),
    /// Confirmations did not arrive in time; the rows not confirmed stay pending.
    #[error("the broker did not confirm {0} messages in time")]
    ConfirmTimeout(usize),
    /// The broker did not even take a message in time (a connection blocked by flow control,
    /// a stalled socket); the rows not published stay pending.
    #[error("the broker did not take {0} messages in time")]
    PublishTimeout(usize),
}

/// An outbox relay (see the module documentation). Cheap to share by reference; run several
/// for throughput or availability.
pub struct Relay {
    db: DatabaseConnection,
    config: RelayConfig,
    publisher: Mutex<Option<Publisher>>,
}

struct Publisher {
    connection: Connection,
    channel: Channel,
}

impl Publisher {
    fn is_usable(&self) -> bool {
        self.connection.status().connected() && self.channel.status().connected()
    }
}

/// One published batch.
struct Round {
    claimed: usize,
    published: usize,
}

impl Relay {
    /// A relay over `db`; it connects to the broker on first use.
    pub fn new(db: DatabaseConnection, config: RelayConfig) -> Relay {
        Relay {
            db,
            config,
            publisher: Mutex::new(None),
        }
    }

    /// Publishes every task that is due now, batch after batch, and returns how many were
    /// published. Rows another relay holds are skipped, not waited for.
    pub async fn publish_due(&self) -> Result<usize, RelayError> {
        let mut guard = self.publisher.lock().await;
        let publisher = match guard.take() {
            Some(p) if p.is_usable() => p,
            stale => {
                if let Some(stale) = stale {
                    bus::close(&stale.connection, "relay reconnecting").await;
                }
                self.connect().await?
            }
        };
        let lane = || async {
            let mut published = 0;
            loop {
                let round = self.publish_batch(&publisher.channel).await?;
                published += round.published;
                if round.claimed < self.config.batch_size as usize {
                    return Ok::<_, RelayError>(published);
                }
            }
        };
        let lanes = futures_util::future::join_all((0..LANES).map(|_| lane())).await;
        let mut total = 0;
        let mut failure = None;
        let mut broken = false;
        for lane in lanes {
            match lane {
                Ok(published) => total += published,
                Err(e) => {
                    broken |= !matches!(e, RelayError::Db(_));
                    failure = Some(e);
                }
            }
        }
        if broken {
            // A broken or stalled channel: start over on a fresh connection.
            bus::close(&publisher.connection, "relay reconnecting").await;
        } else {
            *guard = Some(publisher);
        }
        failure.map_or(Ok(total), Err)
    }

    /// Runs rounds until `cancel` fires: on every notification, at least every poll interval,
    /// and when the next delayed task falls due; with backoff while a dependency is down.
    pub async fn run(&self, cancel: &CancellationToken) {
        let mut listener: Option<PgListener> = None;
        let mut backoff = self.backoff();
        let mut failing = false;
        while !cancel.is_cancelled() {
            if listener.is_none() {
                listener = self.listen().await;
            }
            match self.publish_due().await {
                Ok(_) => {
                    if failing {
                        tracing::info!("relay publishing again");
                    }
                    failing = false;
                    backoff = self.backoff();
                }
                Err(e) => {
                    let delay = backoff.next().unwrap_or(self.config.max_backoff);
                    tracing::warn!(error = %e, retry_in = ?delay, "relay cannot publish; tasks stay pending");
                    failing = true;
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(delay) => continue,
                    }
                }
            }
            let wait = self.until_next_due().await;
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
                woke = notified(&mut listener) => {
                    if let Err(e) = woke {
                        tracing::warn!(error = %e, "relay lost its LISTEN connection; polling until it is back");
                        listener = None;
                    }
                }
            }
        }
        if let Some(publisher) = self.publisher.lock().await.take() {
            bus::close(&publisher.connection, "relay stopping").await;
        }
    }

    fn backoff(&self) -> impl Iterator<Item = Duration> + use<> {
        process::dependency_backoff(self.config.max_backoff).waits()
    }

    async fn connect(&self) -> Result<Publisher, RelayError> {
        let connection = bus::connect(
            self.config.amqp_url.expose_secret(),
            &self.config.connection_name,
        )
        .await?;
        bus::declare_topology(&connection).await?;
        let channel = bus::confirmed_channel(&connection).await?;
        Ok(Publisher {
            connection,
            channel,
        })
    }

    async fn listen(&self) -> Option<PgListener> {
        let pool = self.db.get_postgres_connection_pool();
        let attempt = async {
            let mut listener = PgListener::connect_with(pool).await?;
            listener.listen(PENDING_CHANNEL).await?;
            Ok::<_, sea_orm::sqlx::Error>(listener)
        };
        match attempt.await {
            Ok(listener) => Some(listener),
            Err(e) => {
                tracing::warn!(error = %e, "relay cannot LISTEN; polling only for now");
                None
            }
        }
    }

    /// The poll interval, or less if a pending task falls due sooner (a task due already but
    /// held back by its brand's in-flight limit waits for the next round).
    async fn until_next_due(&self) -> Duration {
        let next = self
            .db
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT min(available_at) AS next FROM tasks \
                 WHERE status = 'pending' AND available_at > now()",
            ))
            .await
            .ok()
            .flatten()
            .and_then(|row| {
                row.try_get::<Option<chrono::DateTime<chrono::FixedOffset>>>("", "next")
                    .ok()
            })
            .flatten();
        let poll = self.config.poll_interval;
        match next {
            Some(at) => (at.with_timezone(&Utc) - Utc::now())
                .to_std()
                .map_or(Duration::ZERO, |d| d.min(poll)),
            None => poll,
        }
    }

    async fn publish_batch(&self, channel: &Channel) -> Result<Round, RelayError> {
        let txn = self.db.begin().await?;
        let rows = tasks::Entity::find()
            .from_raw_sql(Statement::from_sql_and_values(
                DbBackend::Postgres,
                CLAIM_SQL,
                [
                    i64::from(self.config.batch_size).into(),
                    i64::from(self.config.brand_in_flight).into(),
                ],
            ))
            .all(&txn)
            .await?;
        if rows.is_empty() {
            txn.commit().await?;
            return Ok(Round {
                claimed: 0,
                published: 0,
            });
        }

        // One deadline for publishing and confirming: the claim's locks are held meanwhile.
        let deadline = Instant::now() + self.config.confirm_timeout;
        let mut confirms = Vec::with_capacity(rows.len());
        let mut refused: Vec<(TaskId, String)> = Vec::new();
        let mut broken: Option<RelayError> = None;
        for (n, row) in rows.iter().enumerate() {
            let Ok(kind) = row.kind.parse::<JobKind>() else {
                refused.push((row.id, format!("unknown task kind {:?}", row.kind)));
                continue;
            };
            let message = TaskMessage::V1 {
                task_id: row.id,
                kind,
                platform: row.platform,
                attempt: row.attempts + 1,
            };
            let publish = bus::publish_task(channel, &message, row.trace_id.as_deref());
            match tokio::time::timeout_at(deadline, publish).await {
                Ok(Ok(confirm)) => confirms.push((row, confirm)),
                Ok(Err(PublishError::Broker(e))) => {
                    broken = Some(e.into());
                    break;
                }
                Ok(Err(e)) => refused.push((row.id, e.to_string())),
                Err(_) => {
                    broken = Some(RelayError::PublishTimeout(rows.len() - n));
                    break;
                }
            }
        }

        let mut published = Vec::with_capacity(confirms.len());
        let mut unconfirmed = 0;
        for (row, confirm) in confirms {
            match tokio::time::timeout_at(deadline, bus::confirmed(confirm)).await {
                Ok(Ok(())) => published.push(row),
                Ok(Err(PublishError::Broker(e))) => {
                    broken.get_or_insert(e.into());
                }
                Ok(Err(e)) => refused.push((row.id, e.to_string())),
                Err(_) => unconfirmed += 1,
            }
        }

        if !published.is_empty() {
            tasks::Entity::update_many()
                .col_expr(tasks::Column::Status, Expr::value(TaskStatus::Published))
                .col_expr(tasks::Column::PublishedAt, Expr::current_timestamp())
                .filter(tasks::Column::Id.is_in(published.iter().map(|row| row.id)))
                .exec(&txn)
                .await?;
        }
        for (id, reason) in &refused {
            txn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "UPDATE tasks SET available_at = now() + make_interval(secs => $2), \
                 last_error = $3 WHERE id = $1",
                [
                    (*id).into(),
                    REFUSED_RETRY.as_secs_f64().into(),
                    format!("not published: {reason}").into(),
                ],
            ))
            .await?;
        }
        txn.commit().await?;

        for row in &published {
            metrics::counter!(
                PUBLISHED_METRIC,
                "kind" => row.kind.clone(),
                "platform" => row.platform.as_str()
            )
            .increment(1);
        }
        if !refused.is_empty() {
            metrics::counter!(REFUSED_METRIC).increment(refused.len() as u64);
            for (id, reason) in &refused {
                tracing::error!(task_id = %id, %reason, retry_in = ?REFUSED_RETRY, "broker refused a task message");
            }
        }
        if let Some(e) = broken {
            return Err(e);
        }
        if unconfirmed > 0 {
            return Err(RelayError::ConfirmTimeout(unconfirmed));
        }
        Ok(Round {
            claimed: rows.len(),
            published: published.len(),
        })
    }
}

/// Waits for a notification on the listener (forever without one), then takes every buffered
/// notification too: one round handles them all.
async fn notified(listener: &mut Option<PgListener>) -> Result<(), sea_orm::sqlx::Error> {
    let Some(listener) = listener.as_mut() else {
        return std::future::pending().await;
    };
    // `None` means the connection dropped and was re-established: a notification may have
    // been missed, so a round is due either way.
    listener.try_recv().await?;
    while listener.next_buffered().is_some() {}
    Ok(())
}
