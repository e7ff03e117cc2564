//! Outbox relay benchmark (`cargo bench -p shared --bench relay`), against the local
//! PostgreSQL and RabbitMQ, in a database and vhost of its own:
//!
//! 1. throughput, from committed `pending` rows to broker-confirmed messages, of one relay and
//!    of three relays at once, against a plain publisher-confirms loop (the same messages,
//!    confirmed in windows of the relay's batch size) to the same broker in the same run;
//! 2. latency from a task's commit to its job's start, one task at a time (the relay wakes on
//!    `NOTIFY`; its fallback poll is 1 s, so a p99 in milliseconds shows NOTIFY working).
//!
//! Each throughput is the best of `RELAY_BENCH_ROUNDS` rounds (default 3), run in turns, so that
//! a burst of other load on the machine does not decide the ratio. Tune the size with
//! `RELAY_BENCH_TASKS` (default 10000) and `RELAY_BENCH_SAMPLES` (default 200).

use anyhow::{Context, bail};
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};
use secrecy::SecretString;
use shared::bus::{self, TaskMessage};
use shared::domain::JobKind;
use shared::domain::{Platform, TaskId};
use shared::outbox::{self, NewTask, Relay, RelayConfig};
use shared::testing::{TestBroker, TestDb};
use shared::worker::{Job, JobContext, JobError, Jobs, Outcome, Worker, WorkerConfig};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const BATCH: u32 = 200;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn relay_config(broker: &TestBroker) -> RelayConfig {
    RelayConfig {
        amqp_url: SecretString::from(broker.url().to_owned()),
        connection_name: "bench relay".to_owned(),
        batch_size: BATCH,
        brand_in_flight: u32::MAX,
        poll_interval: Duration::from_secs(1),
        max_backoff: Duration::from_secs(1),
        confirm_timeout: Duration::from_secs(10),
    }
}

/// The plain loop: publish with confirms, waiting for each window of `BATCH` confirmations.
async fn plain_confirms(broker: &TestBroker, n: usize) -> anyhow::Result<f64> {
    let conn = broker.connect().await;
    let channel = bus::confirmed_channel(&conn).await?;
    let started = Instant::now();
    let mut sent = 0;
    while sent < n {
        let window = (n - sent).min(BATCH as usize);
        let mut confirms = Vec::with_capacity(window);
        for i in 0..window {
            let message = TaskMessage::V1 {
                task_id: TaskId::new(),
                kind: JobKind::Ingest,
                platform: Platform::ALL[(sent + i) % Platform::ALL.len()],
                attempt: 1,
            };
            confirms.push(bus::publish_task(&channel, &message, Some("bench")).await?);
        }
        for confirm in confirms {
            bus::confirmed(confirm).await?;
        }
        sent += window;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    conn.close(200, "done".into()).await?;
    Ok(rate)
}

async fn insert_pending(db: &TestDb, n: usize) -> anyhow::Result<()> {
    db.conn()
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO tasks (kind, platform) \
             SELECT 'ingest', (ARRAY['bluesky', 'facebook', 'instagram', 'linkedin', 'threads', \
                                     'tiktok', 'twitter', 'youtube'])[1 + g % 8] \
             FROM generate_series(1, $1) AS g",
            [i64::try_from(n)?.into()],
        ))
        .await?;
    Ok(())
}

async fn purge(broker: &TestBroker) -> anyhow::Result<()> {
    let conn = broker.connect().await;
    let channel = conn.create_channel().await?;
    for &platform in Platform::ALL {
        channel
            .queue_purge(
                bus::routing_key(JobKind::Ingest, platform).as_str().into(),
                Default::default(),
            )
            .await?;
    }
    conn.close(200, "purged".into()).await?;
    Ok(())
}

/// Tasks per second for `relays` relays publishing `n` committed rows.
async fn relay_rate(
    db: &TestDb,
    broker: &TestBroker,
    relays: usize,
    n: usize,
) -> anyhow::Result<f64> {
    let relays: Vec<Relay> = (0..relays)
        .map(|_| Relay::new(db.conn().clone(), relay_config(broker)))
        .collect();
    for relay in &relays {
        relay.publish_due().await?; // connects; nothing is due yet
    }
    insert_pending(db, n).await?;
    let started = Instant::now();
    let counts = futures_util::future::try_join_all(relays.iter().map(Relay::publish_due)).await?;
    let elapsed = started.elapsed();
    let published: usize = counts.iter().sum();
    if published != n {
        bail!("published {published} of {n}");
    }
    db.conn()
        .execute_unprepared("UPDATE tasks SET status = 'succeeded' WHERE status = 'published'")
        .await?;
    purge(broker).await?;
    Ok(n as f64 / elapsed.as_secs_f64())
}

/// Reports when each task's job started.
struct Stopwatch(mpsc::UnboundedSender<(TaskId, Instant)>);

#[async_trait::async_trait]
impl Job for Stopwatch {
    fn name(&self) -> &'static str {
        "stopwatch"
    }

    fn kind(&self) -> JobKind {
        JobKind::Ingest
    }

    async fn run(&self, ctx: &JobContext) -> Result<Outcome, JobError> {
        let _ = self.0.send((ctx.task_id(), Instant::now()));
        Ok(Outcome::Succeeded)
    }
}

async fn latencies(
    db: &TestDb,
    broker: &TestBroker,
    samples: usize,
) -> anyhow::Result<Vec<Duration>> {
    let (started_tx, mut started_rx) = mpsc::unbounded_channel();
    let worker = Worker::new(
        db.conn().clone(),
        WorkerConfig {
            process_name: "bench".to_owned(),
            amqp_url: SecretString::from(broker.url().to_owned()),
            platforms: Platform::ALL.to_vec(),
            prefetch: 4,
            lease: Duration::from_secs(30),
            max_attempts: 10,
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(1),
            max_backoff: Duration::from_secs(1),
        },
        Jobs::new().with(Stopwatch(started_tx)),
    );
    let relay = Relay::new(db.conn().clone(), relay_config(broker));
    let cancel = CancellationToken::new();
    let loops = tokio::spawn({
        let (worker, cancel) = (worker.clone(), cancel.clone());
        async move {
            tokio::join!(relay.run(&cancel), worker.run(None, &cancel));
        }
    });
    let mut measured = Vec::with_capacity(samples);
    let warm_up = 10;
    for i in 0..samples + warm_up {
        let txn = db.conn().begin().await?;
        let platform = Platform::ALL[i % Platform::ALL.len()];
        let id = outbox::enqueue(&txn, NewTask::new(JobKind::Ingest, platform))
            .await?
            .task()
            .id;
        txn.commit().await?;
        let committed = Instant::now();
        let started = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let (task, at) = started_rx.recv().await.context("worker stopped")?;
                if task == id {
                    return Ok::<_, anyhow::Error>(at);
                }
            }
        })
        .await
        .context("a job did not start within 5 s")??;
        if i >= warm_up {
            measured.push(started.saturating_duration_since(committed));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cancel.cancel();
    loops.await?;
    Ok(measured)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n = env_or("RELAY_BENCH_TASKS", 10_000);
    let rounds = env_or("RELAY_BENCH_ROUNDS", 3).max(1);
    let samples = env_or("RELAY_BENCH_SAMPLES", 200).max(1);
    let db = TestDb::new().await;
    let broker = TestBroker::new().await;
    println!(
        "relay benchmark: {n} tasks, batch {BATCH}, best of {rounds} rounds, {samples} latency samples"
    );

    // A first pass warms the broker's queues up, so the baseline is not measured cold.
    plain_confirms(&broker, n.min(2_000)).await?;
    purge(&broker).await?;
    let (mut baseline, mut one, mut three) = (0.0_f64, 0.0_f64, 0.0_f64);
    for _ in 0..rounds {
        baseline = baseline.max(plain_confirms(&broker, n).await?);
        purge(&broker).await?;
        one = one.max(relay_rate(&db, &broker, 1, n).await?);
        three = three.max(relay_rate(&db, &broker, 3, n).await?);
    }
    println!("plain publisher-confirms loop : {baseline:>9.0} msg/s");
    println!(
        "relay, 1 instance              : {one:>9.0} tasks/s  ({:.2}x the plain loop; aim >= 0.5x)",
        one / baseline
    );
    println!(
        "relay, 3 instances             : {three:>9.0} tasks/s  ({:.2}x the plain loop)",
        three / baseline
    );

    let mut measured = latencies(&db, &broker, samples).await?;
    measured.sort();
    println!(
        "commit -> job start            : p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (aim p99 < 50 ms)",
        percentile(&measured, 0.50).as_secs_f64() * 1e3,
        percentile(&measured, 0.99).as_secs_f64() * 1e3,
        measured.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
    Ok(())
}
