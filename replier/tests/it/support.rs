//! A reply harness: a fresh database, its own broker vhost and an in-process simulator, with
//! a relay and a replier worker to drain deterministically, and helpers to make mentions of
//! the simulator's comments and conversations and request replies to them.

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, TransactionTrait};
use serde_json::{Value, json};
use shared::db::entities::{audit_log, mentions, replies};
use shared::db::users as user_queries;
use shared::domain::{MentionId, MentionType, Platform, ReplyId, Role, UserId};
use shared::outbox::{Relay, RelayConfig};
use shared::reply::{self, ReplyRequest};
use shared::testing::{TestBroker, TestDb};
pub use shared::testing::{set_faults, sim_get, sim_json};
use shared::worker::{Worker, WorkerConfig, run_to_completion};
use simulator::Simulator;
use std::collections::HashMap;
use std::time::Duration;

/// Settings every test starts from: fast retries, a 1 s cache window, no budget in the way.
pub const BASE_ENV: &[(&str, &str)] = &[
    ("PROVIDER_TIMEOUT_MS", "2000"),
    ("PROVIDER_RETRY_BASE_MS", "20"),
    ("PROVIDER_RETRY_CAP_MS", "200"),
    ("RATE_BUDGET_REQUESTS", "1000000"),
    ("BREAKER_OPEN_SECONDS", "1"),
    ("BREAKER_MIN_CALLS", "50"),
    ("BREAKER_FAILURE_RATE_PERCENT", "90"),
    ("TASK_RETRY_BASE_SECONDS", "1"),
    ("TASK_RETRY_MAX_SECONDS", "2"),
    ("TASK_LEASE_SECONDS", "10"),
    ("REPLY_CACHE_WINDOW_SECONDS", "1"),
    ("REPLY_UNDECIDED_LIMIT_SECONDS", "30"),
    ("SHUTDOWN_GRACE_SECONDS", "2"),
];

/// A comment or message of the simulator's world.
#[derive(Debug, Clone)]
pub struct SimItem {
    /// Its network.
    pub platform: Platform,
    /// Social Comment ID (comments) or the customer's id (messages).
    pub id: String,
    /// Ayrshare Post ID (comments) or conversation id (messages).
    pub thread: String,
}

/// The environment (as for a process) pointing at `db`, `broker` and `sim`, plus `extra`.
pub fn env(
    db: &TestDb,
    broker: &TestBroker,
    sim_api_url: &str,
    extra: &[(&str, &str)],
) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = BASE_ENV
        .iter()
        .chain(extra)
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    env.insert("DATABASE_URL".into(), db.url().to_owned());
    env.insert("AMQP_URL".into(), broker.url().to_owned());
    env.insert("SOCIAL_MEDIA_API_URL".into(), sim_api_url.to_owned());
    env
}

/// Everything a reply test needs, in-process.
pub struct Harness {
    /// The database.
    pub db: TestDb,
    /// The broker vhost.
    pub broker: TestBroker,
    /// The provider.
    pub sim: Simulator,
    relay: Relay,
    worker: Worker,
    http: reqwest::Client,
}

impl Harness {
    /// A harness whose replier uses `extra` settings on top of [`BASE_ENV`].
    pub async fn new(extra: &[(&str, &str)]) -> Harness {
        let sim = simulator::spawn(simulator::SimConfig {
            rate_limit: 0,
            ..simulator::SimConfig::on_free_port()
        })
        .await
        .expect("simulator starts");
        let (db, broker) = tokio::join!(TestDb::new(), TestBroker::new());
        let settings =
            shared::config::load_from(env(&db, &broker, &sim.api_url(), extra)).expect("settings");
        let relay = Relay::new(
            db.conn().clone(),
            RelayConfig::from_settings(&settings, "test"),
        );
        let worker = Worker::new(
            db.conn().clone(),
            WorkerConfig::from_settings(&settings, replier::PROCESS_NAME),
            replier::jobs(&settings).expect("reply job"),
        );
        Harness {
            db,
            broker,
            sim,
            relay,
            worker,
            http: reqwest::Client::new(),
        }
    }

    /// Publishes and runs reply tasks until none is active (bounded by `timeout`).
    pub async fn drain(&self, timeout: Duration) {
        run_to_completion(self.db.conn(), &self.relay, &[&self.worker], timeout)
            .await
            .expect("every task finishes");
    }

    /// `GET <sim>/_sim/<path>`.
    pub async fn sim_get(&self, path: &str) -> Value {
        sim_get(&self.http, &self.sim.base_url(), path).await
    }

    /// Replaces the simulator's fault set.
    pub async fn faults(&self, faults: Value) {
        set_faults(&self.http, &self.sim.base_url(), faults).await;
    }

    /// A user to request replies as.
    pub async fn agent(&self) -> UserId {
        agent(&self.db).await
    }

    /// `n` comments of the world on `platform` (top-level and replies), as mentions.
    pub async fn comment_mentions(&self, platform: Platform, n: usize) -> Vec<mentions::Model> {
        let items = comments(&self.http, &self.sim.base_url(), platform, n).await;
        insert_mentions(&self.db, MentionType::Comment, &items).await
    }

    /// Records our account on every platform from the provider's `GET /user`, as the
    /// ingestor does.
    pub async fn learn_our_accounts(&self) {
        let user: Value = self
            .http
            .get(format!("{}/user", self.sim.api_url()))
            .bearer_auth(self.sim.api_key())
            .send()
            .await
            .expect("GET /user")
            .json()
            .await
            .expect("json");
        for account in user["displayNames"].as_array().expect("displayNames") {
            let platform: Platform = account["platform"]
                .as_str()
                .and_then(|p| p.parse().ok())
                .expect("platform");
            shared::ingest::platform_status::record_our_account(
                self.db.conn(),
                shared::brands::DEFAULT_BRAND,
                platform,
                account["id"].as_str(),
            )
            .await
            .expect("record our account");
        }
    }

    /// Adds a customer's comment to the simulator's world (`POST /_sim/comments`).
    pub async fn customer_comment(&self, body: Value) {
        let response = self
            .http
            .post(format!("{}/_sim/comments", self.sim.base_url()))
            .json(&body)
            .send()
            .await
            .expect("POST /_sim/comments");
        assert_eq!(response.status(), 201);
    }

    /// `n` conversations' customers on `platform`, as message mentions.
    pub async fn message_mentions(&self, platform: Platform, n: usize) -> Vec<mentions::Model> {
        let items = conversations(&self.http, &self.sim.api_url(), platform, n).await;
        insert_mentions(&self.db, MentionType::Message, &items).await
    }
}

/// A new agent.
pub async fn agent(db: &TestDb) -> UserId {
    let email = format!("agent-{}@example.com", uuid::Uuid::new_v4().simple());
    user_queries::insert(
        db.conn(),
        user_queries::NewUser {
            email: &email,
            name: "Agent",
            role: Role::Agent,
            password_hash: "not-used".to_owned(),
        },
    )
    .await
    .expect("insert user")
    .id
}

/// `n` comments of the simulator's world on `platform`.
pub async fn comments(
    http: &reqwest::Client,
    base: &str,
    platform: Platform,
    n: usize,
) -> Vec<SimItem> {
    let all = sim_get(http, base, "comments").await;
    let items: Vec<SimItem> = all["comments"]
        .as_array()
        .expect("comments")
        .iter()
        .filter(|c| c["platform"] == platform.as_str() && c["fromUs"] == false)
        .take(n)
        .map(|c| SimItem {
            platform,
            id: c["commentId"].as_str().expect("commentId").to_owned(),
            thread: c["postId"].as_str().expect("postId").to_owned(),
        })
        .collect();
    assert_eq!(items.len(), n, "the world has {n} comments on {platform}");
    items
}

/// The customers of `n` conversations on `platform`, read through the provider API.
pub async fn conversations(
    http: &reqwest::Client,
    api: &str,
    platform: Platform,
    n: usize,
) -> Vec<SimItem> {
    let page = sim_json(
        http.get(format!("{api}/messages/{platform}"))
            .bearer_auth(simulator::DEFAULT_API_KEY),
    )
    .await;
    let mut items: Vec<SimItem> = Vec::new();
    for m in page["messages"].as_array().expect("messages") {
        let conversation = m["conversationId"].as_str().expect("conversation");
        if m["action"] == "received" && !items.iter().any(|i| i.thread == conversation) {
            items.push(SimItem {
                platform,
                id: m["senderId"].as_str().expect("senderId").to_owned(),
                thread: conversation.to_owned(),
            });
        }
    }
    items.truncate(n);
    assert_eq!(
        items.len(),
        n,
        "the world has {n} conversations on {platform}"
    );
    items
}

/// Stores `items` as mentions of `mention_type`, as the ingestor would.
pub async fn insert_mentions(
    db: &TestDb,
    mention_type: MentionType,
    items: &[SimItem],
) -> Vec<mentions::Model> {
    let mut stored = Vec::with_capacity(items.len());
    for item in items {
        let id = MentionId::new();
        let (platform_ref, author_id) = match mention_type {
            MentionType::Message => (format!("msg-{id}"), Some(item.id.clone())),
            _ => (item.id.clone(), None),
        };
        let mention = mentions::ActiveModel {
            id: Set(id),
            mention_type: Set(mention_type),
            platform: Set(item.platform),
            content: Set("Where is my order?".to_owned()),
            platform_ref: Set(platform_ref),
            provider_post_ref: Set(Some(item.thread.clone())),
            author_id: Set(author_id),
            raw: Set(json!({})),
            ..Default::default()
        }
        .insert(db.conn())
        .await
        .expect("insert mention");
        stored.push(mention);
    }
    stored
}

/// Requests a reply as the API does (one transaction, audited); returns it.
pub async fn request(db: &TestDb, by: UserId, mention: MentionId, content: &str) -> ReplyId {
    let txn = db.conn().begin().await.expect("begin");
    let requested = reply::request_reply(
        &txn,
        ReplyRequest {
            mention_id: mention,
            content,
            requested_by: by,
            idempotency_key: None,
            trace_id: None,
            seen_version: None,
        },
    )
    .await
    .expect("reply requested");
    requested
        .audit(&txn, shared::audit::Actor::User(by))
        .await
        .expect("audit");
    txn.commit().await.expect("commit");
    requested.reply().id
}

/// The reply with this id.
pub async fn reply(db: &TestDb, id: ReplyId) -> replies::Model {
    replies::Entity::find_by_id(id)
        .one(db.conn())
        .await
        .expect("query")
        .expect("reply exists")
}

/// The mention with this id.
pub async fn mention(db: &TestDb, id: MentionId) -> mentions::Model {
    mentions::Entity::find_by_id(id)
        .one(db.conn())
        .await
        .expect("query")
        .expect("mention exists")
}

/// The audit actions written about a mention, in order.
pub async fn audit_actions(db: &TestDb, mention: MentionId) -> Vec<audit_log::Model> {
    use sea_orm::QueryOrder;
    audit_log::Entity::find()
        .filter(audit_log::Column::EntityType.eq("mention"))
        .filter(audit_log::Column::EntityId.eq(mention.to_string()))
        .order_by_asc(audit_log::Column::Id)
        .all(db.conn())
        .await
        .expect("audit rows")
}

/// How often the ledger holds a reply to `parent` with `content`.
pub fn ledger_replies(ledger: &Value, parent: &str, content: &str) -> usize {
    ledger["replies"]
        .as_array()
        .expect("ledger replies")
        .iter()
        .filter(|r| r["parentId"] == parent && r["content"] == content)
        .count()
}

/// How often the ledger holds a message to `recipient` with `content`.
pub fn ledger_messages(ledger: &Value, recipient: &str, content: &str) -> usize {
    ledger["messages"]
        .as_array()
        .expect("ledger messages")
        .iter()
        .filter(|m| m["recipientId"] == recipient && m["message"] == content)
        .count()
}

/// `BRANDS_KEY` of the tests that make brands with a Profile-Key.
pub const BRANDS_KEY: &str = "6272616e64732d6b65792d666f722d7468652d7265706c6965722d7465737473";

/// Makes brand `name` with Profile-Key `profile_key` (sealed with [`BRANDS_KEY`]), watching
/// every platform, and lets every user there is work for it; returns its id.
pub async fn add_brand(db: &TestDb, name: &str, profile_key: &str) -> shared::domain::BrandId {
    use sea_orm::ConnectionTrait;
    let key = shared::brands::BrandsKey::from_hex(BRANDS_KEY).expect("64 hex digits");
    let brand = shared::brands::create(
        db.conn(),
        Some(&key),
        &shared::brands::NewBrand {
            name: name.to_owned(),
            profile_key: Some(profile_key.to_owned().into()),
            platforms: None,
        },
    )
    .await
    .expect("brand created");
    db.conn()
        .execute_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "INSERT INTO user_brands (user_id, brand_id) SELECT id, $1 FROM users",
            [brand.id.0.into()],
        ))
        .await
        .expect("users join the brand");
    brand.id
}

/// `GET <base>/_sim/<path>?profile=<profile>`: a control endpoint of one profile's world.
pub async fn sim_profile_get(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    profile: &str,
) -> Value {
    sim_json(
        http.get(format!("{base}/_sim/{path}"))
            .query(&[("profile", profile)]),
    )
    .await
}

/// `POST <base>/_sim/faults?profile=<profile>`: replaces one profile's fault set.
pub async fn set_profile_faults(http: &reqwest::Client, base: &str, profile: &str, faults: Value) {
    let response = http
        .post(format!("{base}/_sim/faults"))
        .query(&[("profile", profile)])
        .json(&faults)
        .send()
        .await
        .expect("simulator reachable");
    assert!(response.status().is_success(), "faults refused: {faults}");
}

/// `n` customer comments on `platform` of the world of `profile`.
pub async fn profile_comments(
    http: &reqwest::Client,
    base: &str,
    profile: &str,
    platform: Platform,
    n: usize,
) -> Vec<SimItem> {
    let all = sim_profile_get(http, base, "comments", profile).await;
    let items: Vec<SimItem> = all["comments"]
        .as_array()
        .expect("comments")
        .iter()
        .filter(|c| c["platform"] == platform.as_str() && c["fromUs"] == false)
        .take(n)
        .map(|c| SimItem {
            platform,
            id: c["commentId"].as_str().expect("commentId").to_owned(),
            thread: c["postId"].as_str().expect("postId").to_owned(),
        })
        .collect();
    assert_eq!(
        items.len(),
        n,
        "the world of {profile:?} has {n} comments on {platform}"
    );
    items
}

/// Stores `items` as comment mentions of `brand`, as the ingestor would.
pub async fn insert_brand_comments(
    db: &TestDb,
    brand: shared::domain::BrandId,
    items: &[SimItem],
) -> Vec<mentions::Model> {
    let mut stored = Vec::with_capacity(items.len());
    for item in items {
        let mention = mentions::ActiveModel {
            id: Set(MentionId::new()),
            brand_id: Set(brand),
            mention_type: Set(MentionType::Comment),
            platform: Set(item.platform),
            content: Set("Where is my order?".to_owned()),
            platform_ref: Set(item.id.clone()),
            provider_post_ref: Set(Some(item.thread.clone())),
            raw: Set(json!({})),
            ..Default::default()
        }
        .insert(db.conn())
        .await
        .expect("insert mention");
        stored.push(mention);
    }
    stored
}
