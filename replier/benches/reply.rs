//! Reply benchmark (`cargo bench -p replier --bench reply`), against the local PostgreSQL and
//! RabbitMQ (a database and vhost of its own) and an in-process simulator with no added
//! latency and no rate limit:
//!
//! 1. end to end: `POST /v1/mentions/{id}/reply` over HTTP (API 202) → outbox row → relay →
//!    RabbitMQ → replier worker → provider → `sent` committed; replies/s, and p50/p99 of
//!    request→sent latency (the reply's `created_at` to its `sent_at`, both database clocks);
//! 2. baseline, in the same run: the same transactions (request with audit and task, write-ahead,
//!    provider call, `sent` with audit) called directly, without HTTP, relay and broker hop.
//!
//! Both run with the same concurrency (`REPLY_BENCH_CONCURRENCY`, default 8) over
//! `REPLY_BENCH_REPLIES` replies each (default 300), on distinct comments of the world.

use anyhow::Context;
use futures_util::StreamExt;
use sea_orm::{ActiveModelTrait, ConnectionTrait, DbBackend, Set, Statement, TransactionTrait};
use serde_json::{Value, json};
use shared::adapters::{CommentAdapter, ReplyAdapter};
use shared::audit::Actor;
use shared::brands::DEFAULT_BRAND;
use shared::db::entities::mentions;
use shared::domain::{MentionId, MentionType, Platform};
use shared::outbox::{Relay, RelayConfig};
use shared::provider::{Client, PlatformApis};
use shared::reply::{self, ReplyRequest, protocol};
use shared::resilience::BudgetClass;
use shared::testing::{TestBroker, TestDb};
use shared::worker::{Worker, WorkerConfig};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or(f64::NAN)
}

async fn mentions_of_world(
    db: &TestDb,
    sim_base: &str,
    n: usize,
) -> anyhow::Result<Vec<mentions::Model>> {
    let world: Value = reqwest::get(format!("{sim_base}/_sim/comments"))
        .await?
        .json()
        .await?;
    let mut stored = Vec::new();
    for c in world["comments"]
        .as_array()
        .context("comments")?
        .iter()
        .filter(|c| c["fromUs"] == false)
        .take(n)
    {
        let platform: Platform = c["platform"].as_str().context("platform")?.parse()?;
        let mention = mentions::ActiveModel {
            id: Set(MentionId::new()),
            mention_type: Set(MentionType::Comment),
            platform: Set(platform),
            content: Set("Where is my order?".to_owned()),
            platform_ref: Set(c["commentId"].as_str().context("commentId")?.to_owned()),
            provider_post_ref: Set(c["postId"].as_str().map(str::to_owned)),
            raw: Set(json!({})),
            ..Default::default()
        }
        .insert(db.conn())
        .await?;
        stored.push(mention);
    }
    anyhow::ensure!(stored.len() == n, "the world has fewer than {n} comments");
    Ok(stored)
}

async fn sent_count(db: &TestDb) -> anyhow::Result<i64> {
    let row = db
        .conn()
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*) AS n FROM replies WHERE status = 'sent'",
        ))
        .await?
        .context("count")?;
    Ok(row.try_get("", "n")?)
}

/// Request→sent latencies in ms of the replies to `mentions`, sorted.
async fn latencies(db: &TestDb, mentions: &[mentions::Model]) -> anyhow::Result<Vec<f64>> {
    let ids: Vec<String> = mentions.iter().map(|m| format!("'{}'", m.id)).collect();
    let rows = db
        .conn()
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            format!(
                "SELECT EXTRACT(EPOCH FROM sent_at - created_at)::float8 * 1000 AS ms \
                 FROM replies WHERE status = 'sent' AND mention_id IN ({})",
                ids.join(", ")
            ),
        ))
        .await?;
    let mut ms: Vec<f64> = rows
        .iter()
        .map(|r| r.try_get::<f64>("", "ms"))
        .collect::<Result<_, _>>()?;
    ms.sort_by(f64::total_cmp);
    Ok(ms)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n = env_or("REPLY_BENCH_REPLIES", 300);
    let concurrency = env_or("REPLY_BENCH_CONCURRENCY", 8);
    let sim = simulator::spawn(simulator::SimConfig {
        rate_limit: 0,
        posts_per_platform: 20,
        ..simulator::SimConfig::on_free_port()
    })
    .await?;
    let (db, broker) = tokio::join!(TestDb::new(), TestBroker::new());
    let env: HashMap<String, String> = [
        ("DATABASE_URL", db.url()),
        ("AMQP_URL", broker.url()),
        ("SOCIAL_MEDIA_API_URL", sim.api_url().as_str()),
        ("RATE_BUDGET_REQUESTS", "1000000"),
        ("WORKER_PREFETCH", "32"),
        ("DATABASE_MAX_CONNECTIONS", "30"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let settings = shared::config::load_from(env)?;
    let all = mentions_of_world(&db, &sim.base_url(), 2 * n).await?;
    let (e2e_mentions, bare_mentions) = all.split_at(n);

    let agent = shared::testing::insert_agent(db.conn(), "bench@example.com").await?;
    let (token, hash) = api::auth::new_token();
    shared::db::tokens::insert(
        db.conn(),
        agent.id,
        &hash,
        chrono::Utc::now() + chrono::Duration::hours(1),
    )
    .await?;

    let cancel = CancellationToken::new();
    let state = api::AppState::new(db.conn().clone(), &settings).with_rate_limit(
        api::rate_limit::RateLimit {
            per_second: 1_000_000,
            burst: 1_000_000,
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api_addr = listener.local_addr()?;
    let app = api::router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let relay = Arc::new(Relay::new(
        db.conn().clone(),
        RelayConfig::from_settings(&settings, "bench"),
    ));
    let relay_task = {
        let (relay, cancel) = (relay.clone(), cancel.clone());
        tokio::spawn(async move { relay.run(&cancel).await })
    };
    let worker = Worker::new(
        db.conn().clone(),
        WorkerConfig::from_settings(&settings, replier::PROCESS_NAME),
        replier::jobs(&settings)?,
    );
    let worker_task = {
        let (worker, cancel) = (worker.clone(), cancel.clone());
        tokio::spawn(async move { worker.run(None, &cancel).await })
    };

    // 1. End to end.
    let http = reqwest::Client::new();
    let started = Instant::now();
    let accepted: Vec<u16> = futures_util::stream::iter(e2e_mentions.iter().enumerate())
        .map(|(i, m)| {
            let (http, token) = (&http, &token);
            async move {
                http.post(format!("http://{api_addr}/v1/mentions/{}/reply", m.id))
                    .bearer_auth(token)
                    .json(&json!({"content": format!("End to end reply {i}")}))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    anyhow::ensure!(accepted.iter().all(|s| *s == 202), "a request was refused");
    let deadline = Instant::now() + Duration::from_secs(180);
    while sent_count(&db).await? < i64::try_from(n)? {
        anyhow::ensure!(Instant::now() < deadline, "replies not sent within 180 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let e2e_secs = started.elapsed().as_secs_f64();
    let e2e = latencies(&db, e2e_mentions).await?;
    cancel.cancel();
    let _ = tokio::join!(relay_task, worker_task);

    // 2. The same transactions, called directly.
    let client = Client::new(&settings.provider, settings.resilience.request_timeout)?;
    // As the replier holds them: one per platform, spending the reply class.
    let apis = PlatformApis::new(
        client,
        &settings.resilience,
        "bench",
        BudgetClass::Reply,
        Duration::from_secs(10),
        None,
    );
    let brand = apis.brand(db.conn(), DEFAULT_BRAND).await?;
    let actor = Actor::system("bench");
    let started = Instant::now();
    let results: Vec<anyhow::Result<()>> =
        futures_util::stream::iter(bare_mentions.iter().enumerate())
            .map(|(i, m)| {
                let (db, apis, actor, brand) = (&db, &apis, &actor, &brand);
                async move {
                    let content = format!("Bare reply {i}");
                    let txn = db.conn().begin().await?;
                    let requested = reply::request_reply(
                        &txn,
                        ReplyRequest {
                            mention_id: m.id,
                            content: &content,
                            requested_by: agent.id,
                            idempotency_key: None,
                            trace_id: None,
                            seen_version: None,
                        },
                    )
                    .await?;
                    requested.audit(&txn, Actor::User(agent.id)).await?;
                    txn.commit().await?;
                    let attempt = protocol::begin_attempt(db.conn(), requested.reply(), actor)
                        .await?
                        .context("write-ahead")?;
                    let sent = CommentAdapter
                        .send(&apis.get(db.conn(), brand, m.platform)?, m, &content)
                        .await?;
                    let txn = db.conn().begin().await?;
                    protocol::record_sent(&txn, &attempt, &sent, false, actor)
                        .await?
                        .context("sent")?;
                    txn.commit().await?;
                    Ok(())
                }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
    let bare_secs = started.elapsed().as_secs_f64();
    for result in results {
        result?;
    }
    let bare = latencies(&db, bare_mentions).await?;

    let e2e_rate = n as f64 / e2e_secs;
    let bare_rate = n as f64 / bare_secs;
    println!("reply benchmark: {n} replies each, concurrency {concurrency}");
    println!(
        "  end to end (API 202 -> sent): {e2e_rate:8.1} replies/s   p50 {:7.1} ms   p99 {:7.1} ms",
        percentile(&e2e, 0.5),
        percentile(&e2e, 0.99)
    );
    println!(
        "  same transactions, no broker: {bare_rate:8.1} replies/s   p50 {:7.1} ms   p99 {:7.1} ms",
        percentile(&bare, 0.5),
        percentile(&bare, 0.99)
    );
    println!("  ratio end to end / bare: {:.2}x", e2e_rate / bare_rate);
    Ok(())
}
