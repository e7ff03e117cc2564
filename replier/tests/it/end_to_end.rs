//! The real binaries: `ayrshare-sim`, `api` (with its relay and sweeper) and one or more
//! `replier` processes. Replies are requested over HTTP and must reach the simulator's ledger
//! exactly once, through kills and faults.

use crate::support::{self, SimItem, ledger_replies, set_faults, sim_get};
use futures_util::StreamExt;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use shared::db::entities::{mentions, replies, tasks};
use shared::domain::{MentionType, Platform, ReplyStatus};
use shared::testing::{Process, TestBroker, TestDb, free_port, wait_http_ok};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long the simulator and the api may take to answer after they are spawned.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The processes of one test and the means to drive them.
pub(crate) struct Stack {
    pub(crate) db: TestDb,
    _broker: TestBroker,
    _sim: Process,
    _api: Process,
    pub(crate) sim_base: String,
    pub(crate) api_base: String,
    pub(crate) env: HashMap<String, String>,
    token: String,
    pub(crate) http: reqwest::Client,
}

impl Stack {
    /// The simulator (`sim_args` added; no rate limit unless they set one) and the api, with
    /// `extra` settings for every process (no polling unless they set an interval).
    pub(crate) async fn start(sim_args: &[&str], extra: &[(&str, &str)]) -> Stack {
        let (db, broker) = tokio::join!(TestDb::new(), TestBroker::new());
        let sim_port = free_port().to_string();
        let sim_addr = format!("127.0.0.1:{sim_port}");
        let mut args = vec!["--addr", sim_addr.as_str()];
        if !sim_args.contains(&"--rate-limit") {
            args.extend(["--rate-limit", "0"]);
        }
        args.extend(sim_args);
        let sim = Process::spawn("ayrshare-sim", &args, &HashMap::new());
        let sim_base = format!("http://{sim_addr}");
        let mut env = support::env(&db, &broker, &format!("{sim_base}/api"), extra);
        let api_addr = format!("127.0.0.1:{}", free_port());
        env.entry("POLL_INTERVAL_SECONDS".into())
            .or_insert_with(|| "86400".into());
        env.insert("SWEEPER_INTERVAL_SECONDS".into(), "1".into());
        env.insert("API_RATE_LIMIT_PER_SECOND".into(), "100000".into());
        env.insert("API_RATE_LIMIT_BURST".into(), "100000".into());
        let mut api_env = env.clone();
        api_env.insert("API_ADDR".into(), api_addr.clone());
        let api = Process::spawn("api", &[], &api_env);
        let http = reqwest::Client::new();
        let api_base = format!("http://{api_addr}");
        wait_http_ok(&http, &format!("{sim_base}/_sim/stats"), START_TIMEOUT).await;
        wait_http_ok(&http, &format!("{api_base}/healthz"), START_TIMEOUT).await;
        let agent = support::agent(&db).await;
        let (token, hash) = api::auth::new_token();
        shared::db::tokens::insert(
            db.conn(),
            agent,
            &hash,
            chrono::Utc::now() + chrono::Duration::hours(1),
        )
        .await
        .expect("token");
        Stack {
            db,
            _broker: broker,
            _sim: sim,
            _api: api,
            sim_base,
            api_base,
            env,
            token,
            http,
        }
    }

    pub(crate) fn replier(&self) -> Process {
        Process::spawn("replier", &[], &self.env)
    }

    async fn comment_mentions(&self, platform: Platform, n: usize) -> Vec<mentions::Model> {
        let items: Vec<SimItem> = support::comments(&self.http, &self.sim_base, platform, n).await;
        support::insert_mentions(&self.db, MentionType::Comment, &items).await
    }

    /// Requests a reply as a client should: a 503 (the api's database pool was busy, nothing
    /// was done) is tried again after its `Retry-After`, a few times.
    pub(crate) async fn post_reply(
        &self,
        mention: &mentions::Model,
        content: &str,
    ) -> (u16, Value) {
        for _ in 0..5 {
            let response = self
                .http
                .post(format!(
                    "{}/v1/mentions/{}/reply",
                    self.api_base, mention.id
                ))
                .bearer_auth(&self.token)
                .json(&json!({ "content": content }))
                .send()
                .await
                .expect("api reachable");
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            match (status, retry_after) {
                (503, Some(seconds)) => tokio::time::sleep(Duration::from_secs(seconds)).await,
                _ => return (status, response.json().await.expect("json")),
            }
        }
        panic!("the api answered 503 five times in a row");
    }

    pub(crate) async fn ledger(&self) -> Value {
        sim_get(&self.http, &self.sim_base, "ledger").await
    }

    /// Waits (bounded) until no reply is pending, sending or unknown; returns them all.
    async fn settled(&self, timeout: Duration) -> Vec<replies::Model> {
        let deadline = Instant::now() + timeout;
        loop {
            let all = replies::Entity::find()
                .all(self.db.conn())
                .await
                .expect("replies");
            let open = all
                .iter()
                .filter(|r| !matches!(r.status, ReplyStatus::Sent | ReplyStatus::Failed))
                .count();
            if open == 0 {
                return all;
            }
            if Instant::now() >= deadline {
                let mut stuck = Vec::new();
                for r in all
                    .iter()
                    .filter(|r| !matches!(r.status, ReplyStatus::Sent | ReplyStatus::Failed))
                    .take(5)
                {
                    let tasks = tasks::Entity::find()
                        .filter(tasks::Column::SubjectId.eq(r.id))
                        .all(self.db.conn())
                        .await
                        .expect("tasks");
                    let tasks: Vec<String> = tasks
                        .iter()
                        .map(|t| {
                            format!(
                                "task {:?} attempts={} available_at={} published_at={:?} \
                                 started_at={:?} error={:?}",
                                t.status,
                                t.attempts,
                                t.available_at,
                                t.published_at,
                                t.started_at,
                                t.last_error
                            )
                        })
                        .collect();
                    stuck.push(format!(
                        "reply {:?} attempts={} error={:?} created_at={}: {tasks:?}",
                        r.status, r.attempts, r.last_error, r.created_at
                    ));
                }
                panic!("{open} replies still open after {timeout:?}: {stuck:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test]
async fn five_concurrent_replies_through_the_api_send_exactly_one() {
    let stack = Stack::start(&[], &[]).await;
    let _replier = stack.replier();
    let m = &stack.comment_mentions(Platform::Facebook, 1).await[0];

    let answers = futures_util::future::join_all((0..5).map(|i| {
        let stack = &stack;
        async move { stack.post_reply(m, &format!("Answer {i}")).await }
    }))
    .await;

    let accepted: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == 202)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(accepted.len(), 1, "{answers:?}");
    assert_eq!(answers.iter().filter(|(s, _)| *s == 409).count(), 4);
    let replies = stack.settled(Duration::from_secs(30)).await;
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].status, ReplyStatus::Sent);
    let content = accepted[0]["content"].as_str().expect("content");
    let ledger = stack.ledger().await;
    assert_eq!(ledger_replies(&ledger, &m.platform_ref, content), 1);
    assert_eq!(ledger["replies"].as_array().expect("replies").len(), 1);
}

#[tokio::test]
async fn a_definite_rejection_shows_the_providers_message_in_the_api_and_the_audit_trail() {
    let stack = Stack::start(&[], &[]).await;
    let _replier = stack.replier();
    let m = &stack.comment_mentions(Platform::Linkedin, 1).await[0];
    set_faults(
        &stack.http,
        &stack.sim_base,
        json!({"rules": [{"endpoint": "reply", "platform": "*", "fault": "status",
            "status": 400, "count": 1}]}),
    )
    .await;
    let (status, body) = stack.post_reply(m, "Refused by the network").await;
    assert_eq!(status, 202, "{body}");
    stack.settled(Duration::from_secs(30)).await;

    let stack = &stack;
    let get = |path: String| async move {
        let response = stack
            .http
            .get(format!("{}{path}", stack.api_base))
            .bearer_auth(&stack.token)
            .send()
            .await
            .expect("api reachable");
        assert_eq!(response.status().as_u16(), 200, "{path}");
        response.json::<Value>().await.expect("json")
    };
    let reply = get(format!("/v1/replies/{}", body["id"].as_str().expect("id"))).await;
    assert_eq!(reply["status"], "failed", "{reply}");
    let message = reply["lastError"].as_str().expect("the provider's message");
    assert!(!message.is_empty());
    let mention = get(format!("/v1/mentions/{}", m.id)).await;
    assert_eq!(mention["state"], "provider_error", "{mention}");
    let audit = get(format!("/v1/mentions/{}/audit", m.id)).await;
    let rows = audit["result"].as_array().expect("audit rows");
    let failed = rows
        .iter()
        .find(|row| row["action"] == "reply.failed")
        .unwrap_or_else(|| panic!("no reply.failed row in {audit}"));
    assert_eq!(
        failed["payload"]["message"].as_str(),
        Some(message),
        "{failed}"
    );
    assert_eq!(
        ledger_replies(
            &stack.ledger().await,
            &m.platform_ref,
            "Refused by the network"
        ),
        0
    );
}

#[tokio::test]
async fn a_replier_killed_during_the_provider_call_is_reconciled_without_sending_twice() {
    let stack = Stack::start(&[], &[("TASK_LEASE_SECONDS", "3")]).await;
    let m = &stack.comment_mentions(Platform::Twitter, 1).await[0];
    // The reply request hangs 1.5 s at the provider (within the 2 s request timeout).
    set_faults(
        &stack.http,
        &stack.sim_base,
        json!({"rules": [{"endpoint": "reply", "platform": "*", "fault": "latency",
            "ms": 1500, "count": 1}]}),
    )
    .await;
    let first = stack.replier();
    let (status, body) = stack.post_reply(m, "Killed mid-flight").await;
    assert_eq!(status, 202, "{body}");

    // Kill it once the write-ahead is committed and the call is in flight.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = support::reply(
            &stack.db,
            body["id"].as_str().expect("id").parse().expect("uuid"),
        )
        .await;
        if r.status == ReplyStatus::Sending {
            break;
        }
        assert!(Instant::now() < deadline, "no attempt started: {r:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(first); // SIGKILL

    let _second = stack.replier();
    let replies = stack.settled(Duration::from_secs(40)).await;
    assert_eq!(replies[0].status, ReplyStatus::Sent);
    let ledger = stack.ledger().await;
    assert_eq!(
        ledger_replies(&ledger, &m.platform_ref, "Killed mid-flight"),
        1,
        "{ledger}"
    );
}

#[tokio::test]
async fn a_thousand_replies_across_eight_platforms_under_faults_are_each_sent_at_most_once() {
    let stack = Stack::start(
        &["--posts-per-platform", "25"],
        &[
            ("WORKER_PREFETCH", "32"),
            ("DATABASE_MAX_CONNECTIONS", "20"),
            // The simulator has no read cache here: only the request timeout is waited out.
            ("REPLY_CACHE_WINDOW_SECONDS", "0"),
            ("PROVIDER_TIMEOUT_MS", "1000"),
        ],
    )
    .await;
    let mut mentions = Vec::new();
    for platform in Platform::ALL {
        mentions.extend(stack.comment_mentions(*platform, 125).await);
    }
    assert_eq!(mentions.len(), 1000);
    set_faults(
        &stack.http,
        &stack.sim_base,
        json!({"rules": [
            {"endpoint": "*", "platform": "*", "fault": "status", "status": 503, "probability": 0.1},
            {"endpoint": "*", "platform": "*", "fault": "status", "status": 429, "probability": 0.05},
            {"endpoint": "reply", "platform": "*", "fault": "lost_response", "probability": 0.05}]}),
    )
    .await;
    let _repliers = [stack.replier(), stack.replier()];

    let statuses: Vec<u16> = futures_util::stream::iter(mentions.iter().enumerate())
        .map(|(i, m)| {
            let stack = &stack;
            async move { stack.post_reply(m, &format!("Reply {i} to you")).await.0 }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let refused: Vec<&u16> = statuses.iter().filter(|s| **s != 202).collect();
    assert!(refused.is_empty(), "every request accepted: {refused:?}");

    let replies = stack.settled(Duration::from_secs(50)).await;
    assert_eq!(replies.len(), 1000);
    let ledger = stack.ledger().await;
    let by_mention: HashMap<_, _> = mentions.iter().map(|m| (m.id, m)).collect();
    let mut sent = 0;
    for r in &replies {
        let parent = &by_mention[&r.mention_id].platform_ref;
        let expected = usize::from(r.status == ReplyStatus::Sent);
        sent += expected;
        assert_eq!(
            ledger_replies(&ledger, parent, &r.content),
            expected,
            "{r:?}"
        );
    }
    assert!(sent > 900, "only {sent} of 1000 sent");
    let tasks_open = tasks::Entity::find()
        .filter(tasks::Column::Kind.eq("reply"))
        .filter(tasks::Column::Status.is_in(["pending", "published", "running"]))
        .all(stack.db.conn())
        .await
        .expect("tasks");
    assert!(tasks_open.is_empty(), "no reply task left");
}
