//! A world for the ingestion tests: the simulator in-process, a fresh database and broker
//! vhost, real `ingestor` processes, and the comparisons between what the simulator holds and
//! what the database stored.

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::Value;
use shared::brands::{DEFAULT_BRAND, Watch};
use shared::config::PollPolicy;
use shared::domain::Platform;
use shared::ingest::plan::{self, PlanSettings};
use shared::outbox::scheduler;
use shared::testing::{Process, TestBroker, TestDb};
use simulator::{SimConfig, Simulator};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// How long a test may wait for ingestion to settle.
pub const SETTLE: Duration = Duration::from_secs(40);

/// The poll planner of every platform, adaptive, keeping `in_flight` reads in flight.
pub fn plan_settings(in_flight: u32) -> PlanSettings {
    PlanSettings {
        policy: PollPolicy::Adaptive,
        horizon: Duration::from_secs(3_600),
        last_days: 0,
        platforms: Platform::ALL.to_vec(),
        in_flight,
        push: None,
    }
}

/// The simulator, database and broker of one test.
pub struct World {
    pub sim: Simulator,
    pub db: TestDb,
    pub broker: TestBroker,
    http: reqwest::Client,
}

/// A simulator world of `platforms` × `posts` posts × `comments` top-level comments (each with
/// one reply; on X, threads), all posts within the last week, no rate limit, `nextUpdate` one
/// second ahead.
pub fn sim_config(posts: usize, comments: usize) -> SimConfig {
    SimConfig {
        rate_limit: 0,
        refresh_seconds: 1,
        posts_per_platform: posts,
        comments_per_post: comments,
        replies_per_comment: 1,
        post_days: 5,
        ..SimConfig::on_free_port()
    }
}

impl World {
    /// Starts the simulator with `config`, a database and a vhost.
    pub async fn start(config: SimConfig) -> World {
        let sim = simulator::spawn(config).await.expect("start the simulator");
        World {
            sim,
            db: TestDb::new().await,
            broker: TestBroker::new().await,
            http: reqwest::Client::new(),
        }
    }

    /// The environment of an ingestor (relay included) for this world, with test-sized delays,
    /// plus `extra`.
    pub fn env(&self, extra: &[(&str, &str)]) -> HashMap<String, String> {
        let api_url = self.sim.api_url();
        let mut env: HashMap<String, String> = [
            ("SOCIAL_MEDIA_API_URL", api_url.as_str()),
            ("SOCIAL_MEDIA_API_KEY", self.sim.api_key()),
            ("DATABASE_URL", self.db.url()),
            ("AMQP_URL", self.broker.url()),
            ("RELAY_ENABLED", "true"),
            ("POLL_INTERVAL_SECONDS", "2"),
            ("TASK_RETRY_BASE_SECONDS", "1"),
            ("TASK_RETRY_MAX_SECONDS", "2"),
            ("TASK_MAX_ATTEMPTS", "50"),
            ("PROVIDER_TIMEOUT_MS", "5000"),
            ("PROVIDER_RETRY_BASE_MS", "10"),
            ("PROVIDER_RETRY_CAP_MS", "100"),
            ("BREAKER_OPEN_SECONDS", "1"),
            ("BREAKER_OPEN_MAX_SECONDS", "2"),
            ("RATE_BUDGET_REQUESTS", "100000"),
            ("SHUTDOWN_GRACE_SECONDS", "2"),
            ("RUST_LOG", "info"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        for (k, v) in extra {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
        env
    }

    /// Starts an ingestor process with [`World::env`].
    pub fn ingestor(&self, extra: &[(&str, &str)]) -> Process {
        Process::spawn("ingestor", &[], &self.env(extra))
    }

    /// What the api's scheduler and planner do at a tick: one ingest task per platform, and a
    /// re-read of every post that is due (no cap on the reads in flight).
    pub async fn schedule(&self) {
        let brand = DEFAULT_BRAND;
        scheduler::schedule_ingests(
            self.db.conn(),
            brand,
            Platform::ALL,
            Duration::from_millis(1),
        )
        .await
        .expect("schedule ingests");
        let watch = Watch::default_brand(Platform::ALL);
        plan::enqueue_reads(self.db.conn(), &plan_settings(u32::MAX / 2), &watch)
            .await
            .expect("plan re-reads");
    }

    /// Tasks pending, published or running.
    pub async fn active_tasks(&self) -> i64 {
        self.scalar(
            "SELECT count(*) FROM tasks WHERE status IN ('pending', 'published', 'running')",
        )
        .await
    }

    /// Waits (bounded by [`SETTLE`]) until no task is active; `ingestors` are shown on failure.
    pub async fn drain(&self, ingestors: &[&Process]) {
        let deadline = Instant::now() + SETTLE;
        while self.active_tasks().await > 0 {
            if Instant::now() > deadline {
                let logs: Vec<String> = ingestors.iter().map(|p| p.output()).collect();
                panic!(
                    "{} tasks still active after {SETTLE:?}; tasks: {:?}\nlogs:\n{}",
                    self.active_tasks().await,
                    self.task_summary().await,
                    logs.join("\n----\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Tasks by (status, step) for failure messages.
    pub async fn task_summary(&self) -> BTreeMap<String, i64> {
        let rows = self
            .db
            .conn()
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT status || '/' || coalesce(payload->>'step', 'platform') || ' ' \
                        || coalesce(left(last_error, 120), '') AS k, count(*) AS n \
                 FROM tasks GROUP BY 1",
            ))
            .await
            .expect("task summary");
        rows.iter()
            .map(|r| {
                (
                    r.try_get::<String>("", "k").expect("k"),
                    r.try_get::<i64>("", "n").expect("n"),
                )
            })
            .collect()
    }

    /// One number from `sql`.
    pub async fn scalar(&self, sql: &str) -> i64 {
        let row = self
            .db
            .conn()
            .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
            .await
            .expect("query")
            .expect("a row");
        row.try_get_by_index::<i64>(0).expect("a number")
    }

    /// The customer comments the simulator holds (ours excluded), as (platform, Social
    /// Comment ID, parent's Social Comment ID), sorted; optionally only for `platform`s.
    pub async fn sim_comments(&self) -> Vec<(String, String, Option<String>)> {
        let body: Value = self
            .http
            .get(format!("{}/_sim/comments", self.sim.base_url()))
            .send()
            .await
            .expect("GET /_sim/comments")
            .json()
            .await
            .expect("json");
        let mut out: Vec<(String, String, Option<String>)> = body["comments"]
            .as_array()
            .expect("comments")
            .iter()
            .filter(|c| c["fromUs"] != Value::Bool(true))
            .map(|c| {
                (
                    c["platform"].as_str().expect("platform").to_owned(),
                    c["commentId"].as_str().expect("commentId").to_owned(),
                    c["parentId"].as_str().map(str::to_owned),
                )
            })
            .collect();
        out.sort();
        out
    }

    /// The stored comments and thread replies, as (platform, platform ref, parent's platform
    /// ref), sorted, one entry per row (so a duplicate would show).
    pub async fn stored_comments(&self) -> Vec<(String, String, Option<String>)> {
        let rows = self
            .db
            .conn()
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT m.platform, m.platform_ref, p.platform_ref AS parent_ref \
                 FROM mentions m LEFT JOIN mentions p ON p.id = m.parent_id \
                 WHERE m.type IN ('comment', 'reply')",
            ))
            .await
            .expect("stored comments");
        let mut out: Vec<(String, String, Option<String>)> = rows
            .iter()
            .map(|r| {
                (
                    r.try_get("", "platform").expect("platform"),
                    r.try_get("", "platform_ref").expect("ref"),
                    r.try_get("", "parent_ref").expect("parent"),
                )
            })
            .collect();
        out.sort();
        out
    }

    /// Replaces the simulator's fault set.
    pub async fn faults(&self, faults: Value) {
        let status = self
            .http
            .post(format!("{}/_sim/faults", self.sim.base_url()))
            .json(&faults)
            .send()
            .await
            .expect("POST /_sim/faults")
            .status();
        assert!(status.is_success(), "faults refused: {status}");
    }

    /// Adds a customer comment to the world; returns its Social Comment ID.
    pub async fn add_comment(&self, body: Value) -> String {
        let answer: Value = self
            .http
            .post(format!("{}/_sim/comments", self.sim.base_url()))
            .json(&body)
            .send()
            .await
            .expect("POST /_sim/comments")
            .json()
            .await
            .expect("json");
        answer["commentId"]
            .as_str()
            .unwrap_or_else(|| panic!("no commentId in {answer}"))
            .to_owned()
    }

    /// The simulator's request statistics.
    pub async fn stats(&self) -> Value {
        self.http
            .get(format!("{}/_sim/stats", self.sim.base_url()))
            .send()
            .await
            .expect("GET /_sim/stats")
            .json()
            .await
            .expect("json")
    }

    /// The direct messages the simulator lists for `platform`, in its order, every page.
    pub async fn sim_messages(&self, platform: Platform) -> Vec<Value> {
        let mut messages = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let mut request = self
                .http
                .get(format!("{}/messages/{platform}", self.sim.api_url()))
                .bearer_auth(self.sim.api_key());
            if let Some(cursor) = &next {
                request = request.query(&[("next", cursor)]);
            }
            let body: Value = request
                .send()
                .await
                .expect("GET /messages")
                .json()
                .await
                .expect("json");
            messages.extend(body["messages"].as_array().cloned().unwrap_or_default());
            match body["next"].as_str() {
                Some(cursor) => next = Some(cursor.to_owned()),
                None => return messages,
            }
        }
    }

    /// The received direct messages the simulator shows for `platform`, as message ids.
    pub async fn sim_received_messages(&self, platform: Platform) -> Vec<String> {
        let mut ids: Vec<String> = self
            .sim_messages(platform)
            .await
            .iter()
            .filter(|m| m["action"] == "received")
            .filter_map(|m| m["id"].as_str().map(str::to_owned))
            .collect();
        ids.sort();
        ids
    }

    /// Sends our direct message to `recipient` on `platform` through the provider surface.
    pub async fn send_message(&self, platform: Platform, recipient: &str, text: &str) {
        let response = self
            .http
            .post(format!("{}/messages/{platform}", self.sim.api_url()))
            .bearer_auth(self.sim.api_key())
            .json(&serde_json::json!({"recipientId": recipient, "message": text}))
            .send()
            .await
            .expect("POST /messages");
        assert!(response.status().is_success(), "{}", response.status());
    }

    /// The stored direct messages of `platform`, as platform refs.
    pub async fn stored_messages(&self, platform: Platform) -> Vec<String> {
        let rows = self
            .db
            .conn()
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT platform_ref FROM mentions WHERE type = 'message' AND platform = $1",
                [platform.as_str().into()],
            ))
            .await
            .expect("stored messages");
        let mut ids: Vec<String> = rows
            .iter()
            .map(|r| r.try_get("", "platform_ref").expect("ref"))
            .collect();
        ids.sort();
        ids
    }
}

/// Asserts that the database holds exactly the simulator's customer comments, with the same
/// threads: none missing, none extra, none twice.
pub async fn assert_same_comments(world: &World) {
    let expected = world.sim_comments().await;
    let stored = world.stored_comments().await;
    let missing: Vec<_> = expected
        .iter()
        .filter(|c| !stored.contains(c))
        .take(5)
        .collect();
    let extra: Vec<_> = stored
        .iter()
        .filter(|c| !expected.contains(c))
        .take(5)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty() && stored.len() == expected.len(),
        "expected {} comments, stored {}; missing (first 5): {missing:?}; extra or twice: \
         {extra:?}; tasks: {:?}",
        expected.len(),
        stored.len(),
        world.task_summary().await
    );
}
