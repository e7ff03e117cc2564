//! Benchmark: ingestion from the simulator to committed rows, against a plain batched
//! `INSERT … ON CONFLICT DO NOTHING` of the same rows into the same database, in the same run;
//! and the peak memory of the ingestor process doing it.
//!
//! 1. The simulator (in-process, no rate limit, no added latency) holds one platform with
//!    `BENCH_POSTS` posts (default 200) × 250 comments × 1 reply = 100,000 comments.
//! 2. One release `ingestor` process (with its relay) ingests them: timed from the ingest task
//!    to the last committed mention; its peak RSS is `VmHWM` in `/proc/<pid>/status`.
//! 3. The same rows are read back and inserted into a copy of `mentions` (same indexes,
//!    generated search column included) in batches of 1,000 with `ON CONFLICT DO NOTHING`.
//!
//! Build the binary first: `cargo build --release -p ingestor`, then
//! `cargo bench -p ingestor --bench ingest`. Only 127.0.0.1.

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::Value;
use shared::domain::Platform;
use shared::outbox::scheduler;
use shared::testing::{Process, TestBroker, TestDb};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const COMMENTS_PER_POST: usize = 250;
const BATCH: usize = 1_000;
const TIMEOUT: Duration = Duration::from_secs(600);

#[tokio::main]
async fn main() {
    let posts: usize = std::env::var("BENCH_POSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let sim = simulator::spawn(simulator::SimConfig {
        rate_limit: 0,
        refresh_seconds: 3_600,
        platforms: vec![simulator::Platform::Facebook],
        posts_per_platform: posts,
        comments_per_post: COMMENTS_PER_POST,
        replies_per_comment: 1,
        empty_posts_per_platform: 0,
        conversations_per_platform: 0,
        post_days: 5,
        ..simulator::SimConfig::on_free_port()
    })
    .await
    .expect("start the simulator");
    let (db, broker) = (TestDb::new().await, TestBroker::new().await);
    let expected = posts * COMMENTS_PER_POST * 2;

    let api_url = sim.api_url();
    let env: HashMap<String, String> = [
        ("SOCIAL_PLATFORMS", "facebook"),
        ("SOCIAL_MEDIA_API_URL", api_url.as_str()),
        ("SOCIAL_MEDIA_API_KEY", sim.api_key()),
        ("DATABASE_URL", db.url()),
        ("AMQP_URL", broker.url()),
        ("RELAY_ENABLED", "true"),
        ("RATE_BUDGET_REQUESTS", "1000000"),
        ("RUST_LOG", "warn"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let ingestor = Process::spawn("ingestor", &[], &env);
    let pid = child_pid("ingestor").expect("the ingestor's pid");
    // Let it connect and declare before the clock starts.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let started = Instant::now();
    scheduler::schedule_ingests(
        db.conn(),
        shared::brands::DEFAULT_BRAND,
        &[Platform::Facebook],
        Duration::from_millis(1),
    )
    .await
    .expect("schedule");
    let deadline = started + TIMEOUT;
    loop {
        let active = scalar(
            db.conn(),
            "SELECT count(*) FROM tasks WHERE status IN ('pending', 'published', 'running')",
        )
        .await;
        if active == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not done after {TIMEOUT:?}\n{}",
            ingestor.output()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ingest_time = started.elapsed();
    let peak_kb = vm_hwm_kb(pid).expect("VmHWM of the ingestor");
    drop(ingestor);
    let stored = scalar(db.conn(), "SELECT count(*) FROM mentions").await;
    assert_eq!(
        usize::try_from(stored).unwrap_or_default(),
        expected,
        "every comment stored"
    );
    let ingest_rate = stored as f64 / ingest_time.as_secs_f64();

    let baseline_time = baseline(db.owner_conn()).await;
    let baseline_rate = stored as f64 / baseline_time.as_secs_f64();

    println!("ingest: {stored} comments from the simulator to committed rows (1 release ingestor)");
    println!(
        "  ingestor         {ingest_rate:>10.0} mentions/s  ({:.2?})",
        ingest_time
    );
    println!(
        "  plain batch insert {baseline_rate:>8.0} rows/s      ({:.2?}, {BATCH} rows per INSERT … ON CONFLICT DO NOTHING)",
        baseline_time
    );
    println!(
        "  ratio            {:>10.2}x (aim >= 0.3x)",
        ingest_rate / baseline_rate
    );
    println!(
        "  peak RSS of the ingestor: {:.1} MB (VmHWM; aim < 150 MB)",
        peak_kb as f64 / 1024.0
    );
}

/// Inserts the stored mentions again into a copy of the table, in batches; returns the time.
async fn baseline(db: &impl ConnectionTrait) -> Duration {
    db.execute_unprepared("CREATE TABLE mentions_baseline (LIKE mentions INCLUDING ALL)")
        .await
        .expect("create the copy");
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT type, platform, content, platform_ref, provider_post_ref, author_id, \
                    author_name, author_handle, posted_at, raw FROM mentions",
        ))
        .await
        .expect("read the rows");
    let rows: Vec<Vec<sea_orm::Value>> = rows
        .iter()
        .map(|r| {
            let text = |c: &str| r.try_get::<Option<String>>("", c).expect("text");
            vec![
                uuid_value(),
                text("type").into(),
                text("platform").into(),
                text("content").into(),
                text("platform_ref").into(),
                text("provider_post_ref").into(),
                text("author_id").into(),
                text("author_name").into(),
                text("author_handle").into(),
                r.try_get::<Option<chrono::DateTime<chrono::FixedOffset>>>("", "posted_at")
                    .expect("time")
                    .into(),
                r.try_get::<Value>("", "raw").expect("raw").into(),
            ]
        })
        .collect();
    let started = Instant::now();
    for chunk in rows.chunks(BATCH) {
        let mut sql = String::from(
            "INSERT INTO mentions_baseline (id, type, platform, content, platform_ref, \
             provider_post_ref, author_id, author_name, author_handle, posted_at, raw) VALUES ",
        );
        let mut values = Vec::with_capacity(chunk.len() * 11);
        for (i, row) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            let base = i * 11;
            let placeholders: Vec<String> = (1..=11).map(|k| format!("${}", base + k)).collect();
            sql.push('(');
            sql.push_str(&placeholders.join(", "));
            sql.push(')');
            values.extend(row.iter().cloned());
        }
        sql.push_str(" ON CONFLICT (brand_id, platform, type, platform_ref) DO NOTHING");
        db.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .await
        .expect("baseline insert");
    }
    started.elapsed()
}

fn uuid_value() -> sea_orm::Value {
    shared::domain::MentionId::new().0.into()
}

async fn scalar(db: &impl ConnectionTrait, sql: &str) -> i64 {
    db.query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .expect("query")
        .expect("row")
        .try_get_by_index::<i64>(0)
        .expect("number")
}

/// The pid of this process's child named `name` (from `/proc`).
fn child_pid(name: &str) -> Option<u32> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let status = std::fs::read_to_string(entry.path().join("status")).ok()?;
            let field = |key: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(key))
                    .map(str::trim)
                    .map(str::to_owned)
            };
            (field("Name:")? == name && field("PPid:")? == me).then_some(pid)
        })
}

/// Peak resident set size in KB (`VmHWM`).
fn vm_hwm_kb(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
