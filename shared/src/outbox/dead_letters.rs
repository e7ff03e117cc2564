//! The dead-letter recorder (runs in `api`): drains `jobs.dead`, so that it cannot grow
//! without bound, and records what arrived there.
//!
//! A job queue dead-letters a message after [`bus::DELIVERY_LIMIT`] deliveries that were never
//! acknowledged (workers that kept stopping or handing it back). The message is only a
//! pointer: the task row decides, and the sweeper hands a `published` task whose message is
//! gone back to the relay. So for each message the recorder notes it on its task (in
//! `last_error`, while the task is still `published`), counts it in [`DEAD_LETTERED_METRIC`]
//! (label `queue`, `unknown` for a body that is not a task message), logs a warning, and
//! acknowledges it. While the database is unreachable the delivery is handed back and the
//! recorder pauses, so nothing is acknowledged unrecorded.

use crate::bus::{self, TaskMessage};
use crate::process;
use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use secrecy::SecretString;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The counter of dead-lettered messages (label `queue`).
pub const DEAD_LETTERED_METRIC: &str = "jobs_dead_lettered_total";

/// Unacknowledged dead letters in flight at once.
const PREFETCH: u16 = 32;

/// Longest pause while the broker or the database is unreachable.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Why a delivery could not be recorded.
enum Stop {
    /// No broker connection, or it broke (with the error, when there was one): subscribe
    /// again.
    Broker(Option<lapin::Error>),
    /// The database is unreachable: the delivery was handed back; pause.
    Database(DbErr),
}

/// Drains `jobs.dead` through the broker at `amqp_url` until `cancel` fires, reconnecting
/// with capped backoff (started afresh after each subscription that worked).
pub async fn run(
    db: &DatabaseConnection,
    amqp_url: &SecretString,
    process_name: &str,
    cancel: &CancellationToken,
) {
    let mut broker = bus::Link::new(amqp_url, &format!("{process_name} dead letters"));
    let mut backoff = process::dependency_backoff(MAX_BACKOFF).waits();
    loop {
        let mut subscribed = false;
        let stopped = tokio::select! {
            _ = cancel.cancelled() => break,
            stopped = drain(db, &mut broker, &mut subscribed) => stopped,
        };
        if subscribed {
            backoff = process::dependency_backoff(MAX_BACKOFF).waits();
        }
        match stopped {
            Stop::Broker(e) => {
                tracing::debug!(error = ?e, "dead-letter recorder lost the broker");
                broker.broken();
            }
            Stop::Database(e) => {
                tracing::warn!(error = %e, "dead-letter recorder cannot reach the database")
            }
        }
        let pause = backoff.next().unwrap_or(MAX_BACKOFF);
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(pause) => {}
        }
    }
    broker.close("dead-letter recorder stopping").await;
}

/// Consumes `jobs.dead` until something stops it; `subscribed` tells whether it got as far as
/// consuming.
async fn drain(db: &DatabaseConnection, broker: &mut bus::Link, subscribed: &mut bool) -> Stop {
    let Some(connection) = broker.connection().await else {
        return Stop::Broker(None);
    };
    let consumer = async {
        let channel = connection.create_channel().await?;
        bus::consume(&channel, bus::DEAD_QUEUE, "dead-letter-recorder", PREFETCH).await
    };
    let mut consumer = match consumer.await {
        Ok(consumer) => consumer,
        Err(e) => return Stop::Broker(Some(e)),
    };
    *subscribed = true;
    while let Some(delivery) = consumer.next().await {
        let delivery = match delivery {
            Ok(delivery) => delivery,
            Err(e) => return Stop::Broker(Some(e)),
        };
        if let Err(stop) = settle(db, &delivery).await {
            return stop;
        }
    }
    // The channel closed.
    Stop::Broker(None)
}

/// Records one dead letter and acknowledges it; hands it back if the database is unreachable.
async fn settle(db: &DatabaseConnection, delivery: &Delivery) -> Result<(), Stop> {
    let message = TaskMessage::from_bytes(&delivery.data).ok();
    if let Some(message) = &message
        && let Err(e) = record(db, message).await
    {
        let requeue = BasicNackOptions {
            requeue: true,
            ..Default::default()
        };
        delivery
            .acker
            .nack(requeue)
            .await
            .map_err(|e| Stop::Broker(Some(e)))?;
        return Err(Stop::Database(e));
    }
    let queue = message
        .as_ref()
        .map_or_else(|| "unknown".to_owned(), TaskMessage::routing_key);
    metrics::counter!(DEAD_LETTERED_METRIC, "queue" => queue.clone()).increment(1);
    tracing::warn!(
        %queue,
        task_id = message.as_ref().map(|m| m.task_id().to_string()),
        "a job message was dead-lettered after {} deliveries; the sweeper republishes its task",
        bus::DELIVERY_LIMIT
    );
    delivery
        .acker
        .ack(BasicAckOptions::default())
        .await
        .map(|_| ())
        .map_err(|e| Stop::Broker(Some(e)))
}

/// Notes the dead letter on its task while the task still waits for that message.
async fn record(db: &DatabaseConnection, message: &TaskMessage) -> Result<(), DbErr> {
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "UPDATE tasks SET last_error = format('its message was dead-lettered after %s \
                                               deliveries; to be published again', $2::int) \
         WHERE id = $1 AND status = 'published'",
        [message.task_id().0.into(), bus::DELIVERY_LIMIT.into()],
    ))
    .await?;
    Ok(())
}
