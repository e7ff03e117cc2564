//! RabbitMQ: connections, the topology of DESIGN §4, the task message, publishing with
//! confirms and consuming with manual acknowledgement.
//!
//! Exchange `jobs` (direct, durable) routes `<kind>.<platform>` to the quorum queue of the same
//! name; a queue dead-letters to the fanout exchange `jobs.dead` (bound to the queue `jobs.dead`)
//! after [`DELIVERY_LIMIT`] deliveries. Every process declares it at start-up; declaring is
//! idempotent. `rabbitmq/definitions.json` ships the same topology for the broker to load, and a
//! test keeps the two in step.
//!
//! A message is only a pointer to a `tasks` row ([`TaskMessage`]): the row is the truth, so a
//! duplicate delivery is harmless. Publishing is always confirmed and `mandatory`, so a message
//! the broker cannot route comes back as a failure ([`PublishError::Unroutable`]) instead of
//! being dropped silently.

use crate::domain::{JobKind, Platform, TaskId};
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, Consumer,
    ExchangeKind, PublisherConfirm,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The exchange every job is published to.
pub const JOBS_EXCHANGE: &str = "jobs";
/// The exchange (and queue) receiving messages that exceeded the delivery limit.
pub const DEAD_EXCHANGE: &str = "jobs.dead";
/// The queue holding dead-lettered messages for inspection.
pub const DEAD_QUEUE: &str = "jobs.dead";
/// Deliveries of one message before the broker dead-letters it (the tasks table, not this
/// limit, decides when work is given up; this only stops a poison message from looping).
pub const DELIVERY_LIMIT: i64 = 20;

/// Message header carrying the trace id of the work that created the task.
pub const TRACE_ID_HEADER: &str = "trace_id";

/// The body of a job message: which `tasks` row to work on. Tagged with a version, so that a
/// consumer can read the layouts of older and newer publishers during a rolling deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "version")]
pub enum TaskMessage {
    /// `{"version": "1", "task_id", "kind", "platform", "attempt"}`.
    #[serde(rename = "1")]
    V1 {
        /// The task (also the message's `message_id`).
        task_id: TaskId,
        /// Its kind (first half of the routing key).
        kind: JobKind,
        /// Its platform (second half of the routing key).
        platform: Platform,
        /// The attempt this message starts (the task's attempts so far + 1); informational,
        /// the row decides.
        attempt: i32,
    },
}

impl TaskMessage {
    /// The task the message points to.
    pub fn task_id(&self) -> TaskId {
        match self {
            TaskMessage::V1 { task_id, .. } => *task_id,
        }
    }

    /// The queue (and routing key) the message belongs to.
    pub fn routing_key(&self) -> String {
        match self {
            TaskMessage::V1 { kind, platform, .. } => routing_key(*kind, *platform),
        }
    }

    /// Parses a message body.
    pub fn from_bytes(body: &[u8]) -> Result<TaskMessage, serde_json::Error> {
        serde_json::from_slice(body)
    }
}

/// Why a publish did not reach a queue.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The connection or channel failed (the broker may be down).
    #[error("broker error: {0}")]
    Broker(#[from] lapin::Error),
    /// The broker refused responsibility for the message.
    #[error("the broker did not accept the message (nack)")]
    Nacked,
    /// No queue is bound for the routing key; the broker returned the message.
    #[error("no queue for routing key {routing_key}: {reason}")]
    Unroutable {
        /// The routing key used.
        routing_key: String,
        /// The broker's reply text, e.g. `NO_ROUTE`.
        reason: String,
    },
    /// The message could not be encoded.
    #[error("cannot encode the message: {0}")]
    Encode(serde_json::Error),
    /// The channel was not put in confirm mode ([`confirmed_channel`]).
    #[error("publisher confirms are not enabled on this channel")]
    NotConfirmed,
}

/// The routing key, which is also the queue name: `<kind>.<platform>`.
pub fn routing_key(kind: JobKind, platform: Platform) -> String {
    format!("{}.{}", kind.as_str(), platform.as_str())
}

/// Opens a connection named after the process (shown in the management UI).
pub async fn connect(url: &str, connection_name: &str) -> lapin::Result<Connection> {
    let properties = ConnectionProperties::default().with_connection_name(connection_name.into());
    Connection::connect(url, properties).await
}

/// A new channel in confirm mode: the broker acknowledges every message published on it.
pub async fn confirmed_channel(conn: &Connection) -> lapin::Result<Channel> {
    let channel = conn.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    Ok(channel)
}

/// Publishes `message` to [`JOBS_EXCHANGE`]: persistent, `mandatory`, `message_id` = task id,
/// JSON body, `trace_id` header. Returns the broker's pending confirmation; pass it to
/// [`confirmed`].
pub async fn publish_task(
    channel: &Channel,
    message: &TaskMessage,
    trace_id: Option<&str>,
) -> Result<PublisherConfirm, PublishError> {
    let body = serde_json::to_vec(message).map_err(PublishError::Encode)?;
    let mut headers = FieldTable::default();
    if let Some(trace_id) = trace_id {
        headers.insert(
            ShortString::from(TRACE_ID_HEADER),
            AMQPValue::LongString(trace_id.into()),
        );
    }
    let properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_message_id(message.task_id().to_string().into())
        .with_headers(headers);
    let routing_key = message.routing_key();
    channel
        .basic_publish(
            JOBS_EXCHANGE.into(),
            routing_key.as_str().into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            &body,
            properties,
        )
        .await
        .map_err(PublishError::Broker)
}

/// Waits for the broker's answer to one publish: `Ok` only if it accepted the message **and**
/// routed it to a queue.
pub async fn confirmed(confirm: PublisherConfirm) -> Result<(), PublishError> {
    match confirm.await? {
        Confirmation::Ack(None) => Ok(()),
        Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned)) => {
            Err(PublishError::Unroutable {
                routing_key: returned.delivery.routing_key.to_string(),
                reason: returned.reply_text.to_string(),
            })
        }
        Confirmation::Nack(None) => Err(PublishError::Nacked),
        Confirmation::NotRequested => Err(PublishError::NotConfirmed),
    }
}

/// The trace id a message carries in its [`TRACE_ID_HEADER`], if any.
pub fn trace_id(properties: &BasicProperties) -> Option<String> {
    let headers = properties.headers().as_ref()?;
    match headers.inner().get(TRACE_ID_HEADER)? {
        AMQPValue::LongString(text) => Some(text.to_string()),
        AMQPValue::ShortString(text) => Some(text.to_string()),
        _ => None,
    }
}

/// Subscribes to `queue` with manual acknowledgement, at most `prefetch` unacknowledged
/// deliveries at a time. Use a channel per consumer: the prefetch is set on the channel.
pub async fn consume(
    channel: &Channel,
    queue: &str,
    consumer_tag: &str,
    prefetch: u16,
) -> lapin::Result<Consumer> {
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await?;
    channel
        .basic_consume(
            queue.into(),
            consumer_tag.into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
}

/// Messages ready for delivery in `queue` (a passive declaration: the queue is not created).
/// Unacknowledged deliveries are not counted.
pub async fn queue_depth(channel: &Channel, queue: &str) -> lapin::Result<u32> {
    let queue = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions::default().passive(),
            FieldTable::default(),
        )
        .await?;
    Ok(queue.message_count())
}

/// Messages ready in the queue of each `(kind, platform)` given, read on a channel of its own.
pub async fn queue_depths(
    connection: &Connection,
    queues: &[(JobKind, Platform)],
) -> lapin::Result<Vec<((JobKind, Platform), u32)>> {
    let channel = connection.create_channel().await?;
    let mut depths = Vec::with_capacity(queues.len());
    for &(kind, platform) in queues {
        let depth = queue_depth(&channel, &routing_key(kind, platform)).await?;
        depths.push(((kind, platform), depth));
    }
    channel.close(200, "queue depths read".into()).await?;
    Ok(depths)
}

/// A broker connection for a background loop: opened when first needed, opened again after it
/// broke, closed politely at the end.
pub struct Link {
    url: SecretString,
    name: String,
    connection: Option<Connection>,
}

impl Link {
    /// A link to `url` whose connections the broker shows as `name`; nothing is opened yet.
    pub fn new(url: &SecretString, name: &str) -> Link {
        Link {
            url: url.clone(),
            name: name.to_owned(),
            connection: None,
        }
    }

    /// The open connection, opened now if there is none or it broke; `None` while the broker
    /// is unreachable.
    pub async fn connection(&mut self) -> Option<&Connection> {
        if self
            .connection
            .as_ref()
            .is_none_or(|c| !c.status().connected())
        {
            self.connection = match connect(self.url.expose_secret(), &self.name).await {
                Ok(connection) => Some(connection),
                Err(e) => {
                    tracing::debug!(link = %self.name, error = %e, "broker unreachable");
                    None
                }
            };
        }
        self.connection.as_ref()
    }

    /// Drops the connection after an error on it; the next [`Link::connection`] opens anew.
    pub fn broken(&mut self) {
        self.connection = None;
    }

    /// Closes the connection, if one is open.
    pub async fn close(self, reason: &str) {
        if let Some(connection) = self.connection {
            close(&connection, reason).await;
        }
    }
}

/// The arguments of every job queue; they must match `rabbitmq/definitions.json` exactly, or
/// the broker refuses the declaration.
pub fn queue_arguments() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        ShortString::from("x-queue-type"),
        AMQPValue::LongString("quorum".into()),
    );
    args.insert(
        ShortString::from("x-delivery-limit"),
        AMQPValue::LongLongInt(DELIVERY_LIMIT),
    );
    args.insert(
        ShortString::from("x-dead-letter-exchange"),
        AMQPValue::LongString(DEAD_EXCHANGE.into()),
    );
    args
}

/// Closes `connection` politely, giving up after two seconds (a broker that is gone never
/// answers).
pub async fn close(connection: &Connection, reason: &str) {
    let closing = connection.close(200, reason.into());
    match tokio::time::timeout(Duration::from_secs(2), closing).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(error = %e, "broker connection already closed"),
        Err(_) => tracing::debug!("broker connection did not close in time"),
    }
}

/// Declares exchanges, queues and bindings for every platform (idempotent).
pub async fn declare_topology(conn: &Connection) -> lapin::Result<()> {
    let channel = conn.create_channel().await?;
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .exchange_declare(
            JOBS_EXCHANGE.into(),
            ExchangeKind::Direct,
            durable,
            FieldTable::default(),
        )
        .await?;
    channel
        .exchange_declare(
            DEAD_EXCHANGE.into(),
            ExchangeKind::Fanout,
            durable,
            FieldTable::default(),
        )
        .await?;
    let durable_queue = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .queue_declare(DEAD_QUEUE.into(), durable_queue, FieldTable::default())
        .await?;
    channel
        .queue_bind(
            DEAD_QUEUE.into(),
            DEAD_EXCHANGE.into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    for &kind in JobKind::ALL {
        for platform in Platform::ALL {
            let name = routing_key(kind, *platform);
            channel
                .queue_declare(name.as_str().into(), durable_queue, queue_arguments())
                .await?;
            channel
                .queue_bind(
                    name.as_str().into(),
                    JOBS_EXCHANGE.into(),
                    name.as_str().into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
    }
    channel.close(200, "topology declared".into()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// `rabbitmq/definitions.json` must declare what `declare_topology` declares, with the same
    /// arguments, or a broker that loaded the file refuses the processes' declarations.
    #[test]
    fn definitions_file_matches_the_declared_topology() {
        let file: Value = serde_json::from_str(include_str!("../../rabbitmq/definitions.json"))
            .expect("definitions.json is JSON");
        let queues = file["queues"].as_array().expect("queues");
        let bindings = file["bindings"].as_array().expect("bindings");
        for &kind in JobKind::ALL {
            for platform in Platform::ALL {
                let name = routing_key(kind, *platform);
                let queue = queues
                    .iter()
                    .find(|q| q["name"] == name.as_str())
                    .unwrap_or_else(|| panic!("queue {name} missing from definitions.json"));
                assert_eq!(queue["durable"], true);
                assert_eq!(queue["arguments"]["x-queue-type"], "quorum");
                assert_eq!(queue["arguments"]["x-delivery-limit"], DELIVERY_LIMIT);
                assert_eq!(queue["arguments"]["x-dead-letter-exchange"], DEAD_EXCHANGE);
                assert!(
                    bindings.iter().any(|b| b["source"] == JOBS_EXCHANGE
                        && b["destination"] == name.as_str()
                        && b["routing_key"] == name.as_str()),
                    "binding for {name} missing"
                );
            }
        }
        assert_eq!(queues.len(), 1 + JobKind::ALL.len() * Platform::ALL.len());
    }

    #[test]
    fn a_task_message_is_versioned_json_that_round_trips() {
        let message = TaskMessage::V1 {
            task_id: TaskId::new(),
            kind: JobKind::Reply,
            platform: Platform::Twitter,
            attempt: 1,
        };
        let body = serde_json::to_value(&message).expect("serializes");
        assert_eq!(body["version"], "1");
        assert_eq!(body["kind"], "reply");
        assert_eq!(body["platform"], "twitter");
        assert_eq!(body["task_id"], message.task_id().to_string());
        let bytes = serde_json::to_vec(&body).expect("bytes");
        assert_eq!(TaskMessage::from_bytes(&bytes).expect("parses"), message);
        assert_eq!(message.routing_key(), "reply.twitter");
        assert!(TaskMessage::from_bytes(br#"{"version":"9","task_id":"x"}"#).is_err());
    }
}
