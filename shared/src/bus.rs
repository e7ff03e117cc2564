//! RabbitMQ: connections and the topology of DESIGN §4.
//!
//! Exchange `jobs` (direct, durable) routes `<kind>.<platform>` to the quorum queue of the same
//! name; a queue dead-letters to the fanout exchange `jobs.dead` (bound to the queue `jobs.dead`)
//! after [`DELIVERY_LIMIT`] deliveries. Every process declares it at start-up; declaring is
//! idempotent. `rabbitmq/definitions.json` ships the same topology for the broker to load, and a
//! test keeps the two in step.

use crate::domain::Platform;
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Connection, ConnectionProperties, ExchangeKind};

/// The exchange every job is published to.
pub const JOBS_EXCHANGE: &str = "jobs";
/// The exchange (and queue) receiving messages that exceeded the delivery limit.
pub const DEAD_EXCHANGE: &str = "jobs.dead";
/// The queue holding dead-lettered messages for inspection.
pub const DEAD_QUEUE: &str = "jobs.dead";
/// Deliveries of one message before the broker dead-letters it (the tasks table, not this
/// limit, decides when work is given up; this only stops a poison message from looping).
pub const DELIVERY_LIMIT: i64 = 20;

/// The kinds of job, one queue per kind and platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// Reading from the provider: history, comments, messages.
    Ingest,
    /// Sending a reply.
    Reply,
}

impl JobKind {
    /// Every kind.
    pub const ALL: [JobKind; 2] = [JobKind::Ingest, JobKind::Reply];

    /// The spelling used in routing keys and queue names.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Ingest => "ingest",
            JobKind::Reply => "reply",
        }
    }
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
    for kind in JobKind::ALL {
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
        for kind in JobKind::ALL {
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
}
