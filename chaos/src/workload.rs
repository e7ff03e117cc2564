//! The traffic of the run: customers comment (a third of them inside a thread) once a second
//! and send a DM every three seconds through the simulator's control API; every two seconds
//! an agent asks the api for a reply to a random stored comment or DM that has none. A
//! request that failed without an answer, or answered 5xx (the api or its database was
//! down), is repeated with the same `Idempotency-Key` and body: the api must answer it as the
//! first time, never make a second reply.
//!
//! Every reply's text carries [`REPLY_MARKER`]`<n>`, unique per request, so the checks find
//! it in the simulator's ledger whatever the network does to the text around it.

use crate::stack::Endpoints;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// Marks our replies: `chaos-r<n>`.
pub const REPLY_MARKER: &str = "chaos-r";
/// Tries of one reply request before it is given up.
const MAX_TRIES: u32 = 10;
/// Longest time spent repeating the unanswered requests after the chaos.
const FINISH_TIMEOUT: Duration = Duration::from_secs(30);

/// The posts and conversations customers write to.
pub struct World {
    pub posts: Vec<Post>,
    pub conversations: Vec<Conversation>,
}

pub struct Post {
    platform: String,
    id: String,
    /// Customer comments on it, to answer inside their thread.
    comments: Vec<String>,
}

pub struct Conversation {
    platform: String,
    id: String,
}

impl World {
    /// The simulator's seeded posts and conversations.
    pub async fn read(endpoints: &Endpoints) -> World {
        let comments = control_get(endpoints, "comments").await;
        let mut posts: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for c in comments["comments"].as_array().into_iter().flatten() {
            let key = (str_of(&c["platform"]), str_of(&c["postId"]));
            let thread = posts.entry(key).or_default();
            if c["fromUs"] == false {
                thread.push(str_of(&c["commentId"]));
            }
        }
        let messages = control_get(endpoints, "messages").await;
        let mut conversations: BTreeMap<(String, String), ()> = BTreeMap::new();
        for m in messages["messages"].as_array().into_iter().flatten() {
            conversations.insert((str_of(&m["platform"]), str_of(&m["conversationId"])), ());
        }
        World {
            posts: posts
                .into_iter()
                .map(|((platform, id), comments)| Post {
                    platform,
                    id,
                    comments,
                })
                .collect(),
            conversations: conversations
                .into_keys()
                .map(|(platform, id)| Conversation { platform, id })
                .collect(),
        }
    }
}

/// The traffic and what became of it.
pub struct Workload {
    rng: StdRng,
    world: World,
    comments: usize,
    messages: usize,
    /// Why an arrival was refused, one line each.
    arrival_errors: Vec<String>,
    requests: Vec<ReplyRequest>,
}

struct ReplyRequest {
    key: String,
    mention: String,
    content: String,
    tries: u32,
    /// The api's final answer (0: none in [`MAX_TRIES`] tries); `None` while it is to be
    /// repeated.
    status: Option<u16>,
}

/// What the traffic did, for the report.
pub struct Summary {
    pub comments: usize,
    pub messages: usize,
    pub arrival_errors: Vec<String>,
    /// Reply requests by their final answer (`no answer`: none in [`MAX_TRIES`] tries).
    pub requests: BTreeMap<String, usize>,
    /// Reply requests repeated after a failure.
    pub repeated: usize,
}

impl Workload {
    pub fn new(seed: u64, world: World) -> Workload {
        Workload {
            rng: StdRng::seed_from_u64(seed ^ 0x776f_726b),
            world,
            comments: 0,
            messages: 0,
            arrival_errors: Vec::new(),
            requests: Vec::new(),
        }
    }

    /// Runs the traffic for `length`.
    pub async fn run(&mut self, endpoints: &Endpoints, length: Duration) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let end = tokio::time::Instant::now() + length;
        for n in 0usize.. {
            tick.tick().await;
            if tokio::time::Instant::now() >= end {
                break;
            }
            self.comment(endpoints).await;
            if n % 3 == 0 {
                self.message(endpoints).await;
            }
            if n % 2 == 0 {
                self.repeat_unanswered(endpoints).await;
                self.request_reply(endpoints).await;
            }
        }
    }

    /// Repeats the unanswered reply requests until each has its answer, at most
    /// [`FINISH_TIMEOUT`].
    pub async fn finish(&mut self, endpoints: &Endpoints) {
        let end = tokio::time::Instant::now() + FINISH_TIMEOUT;
        while self.requests.iter().any(|r| r.status.is_none()) && tokio::time::Instant::now() < end
        {
            self.repeat_unanswered(endpoints).await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    pub fn summary(&self) -> Summary {
        let mut requests = BTreeMap::new();
        for r in &self.requests {
            let status = match r.status {
                None => "unanswered".to_owned(),
                Some(0) => "no answer".to_owned(),
                Some(s) => s.to_string(),
            };
            *requests.entry(status).or_default() += 1;
        }
        Summary {
            comments: self.comments,
            messages: self.messages,
            arrival_errors: self.arrival_errors.clone(),
            requests,
            repeated: self.requests.iter().filter(|r| r.tries > 1).count(),
        }
    }

    async fn comment(&mut self, endpoints: &Endpoints) {
        let Some(post) = self.world.posts.choose(&mut self.rng) else {
            return;
        };
        let parent = if self.rng.random_bool(1.0 / 3.0) {
            post.comments.choose(&mut self.rng).cloned()
        } else {
            None
        };
        let n = self.comments + self.arrival_errors.len();
        let body = json!({"platform": post.platform, "postId": post.id, "parentId": parent,
                          "content": format!("Where is my order? (chaos-c{n})")});
        let (platform, id) = (post.platform.clone(), post.id.clone());
        match control_post(endpoints, "comments", &body).await {
            Ok(created) => {
                self.comments += 1;
                if let Some(post) = self
                    .world
                    .posts
                    .iter_mut()
                    .find(|p| p.platform == platform && p.id == id)
                {
                    post.comments.push(str_of(&created["commentId"]));
                }
            }
            Err(e) => self.arrival_errors.push(format!("comment: {e}")),
        }
    }

    async fn message(&mut self, endpoints: &Endpoints) {
        let Some(conversation) = self.world.conversations.choose(&mut self.rng) else {
            return;
        };
        let n = self.messages;
        let body = json!({"platform": conversation.platform, "conversationId": conversation.id,
                          "content": format!("Can you help me with my account? (chaos-m{n})")});
        match control_post(endpoints, "messages", &body).await {
            Ok(_) => self.messages += 1,
            Err(e) => self.arrival_errors.push(format!("message: {e}")),
        }
    }

    /// Asks for a reply to a random stored comment or DM without one (none while the
    /// database is down).
    async fn request_reply(&mut self, endpoints: &Endpoints) {
        let pending: Vec<String> = self
            .requests
            .iter()
            .filter(|r| r.status.is_none())
            .map(|r| format!("'{}'", r.mention))
            .collect();
        let sql = format!(
            "SELECT m.id::text FROM mentions m WHERE m.type IN ('comment', 'message') \
             AND m.state IS NULL AND m.id::text NOT IN ({}) \
             AND NOT EXISTS (SELECT 1 FROM replies r WHERE r.mention_id = m.id) \
             ORDER BY random() LIMIT 1",
            if pending.is_empty() {
                "''".to_owned()
            } else {
                pending.join(", ")
            }
        );
        let Ok(Some(row)) = endpoints
            .db
            .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
            .await
        else {
            return;
        };
        let Ok(mention) = row.try_get_by_index::<String>(0) else {
            return;
        };
        let n = self.requests.len();
        let mut request = ReplyRequest {
            key: format!("chaos-{n}"),
            mention,
            content: format!("Thanks for writing, we are on it. ({REPLY_MARKER}{n})"),
            tries: 0,
            status: None,
        };
        request.send(endpoints).await;
        self.requests.push(request);
    }

    async fn repeat_unanswered(&mut self, endpoints: &Endpoints) {
        for request in self.requests.iter_mut().filter(|r| r.status.is_none()) {
            request.send(endpoints).await;
        }
    }
}

impl ReplyRequest {
    /// One try; a final answer (anything but 5xx) is kept, and the last try's answer too.
    async fn send(&mut self, endpoints: &Endpoints) {
        self.tries += 1;
        let answer = endpoints
            .http
            .post(format!(
                "{}/v1/mentions/{}/reply",
                endpoints.api_base, self.mention
            ))
            .bearer_auth(&endpoints.token)
            .header("Idempotency-Key", &self.key)
            .json(&json!({ "content": self.content }))
            .send()
            .await;
        let status = answer.ok().map(|a| a.status().as_u16());
        let last = self.tries >= MAX_TRIES;
        self.status = match status {
            Some(s) if s < 500 || last => Some(s),
            None if last => Some(0),
            _ => None,
        };
    }
}

async fn control_get(endpoints: &Endpoints, path: &str) -> Value {
    endpoints
        .http
        .get(format!("{}/_sim/{path}", endpoints.sim_base))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .unwrap_or_else(|e| panic!("GET /_sim/{path}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("GET /_sim/{path}: {e}"))
}

async fn control_post(endpoints: &Endpoints, path: &str, body: &Value) -> Result<Value, String> {
    let answer = endpoints
        .http
        .post(format!("{}/_sim/{path}", endpoints.sim_base))
        .json(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = answer.status();
    let body: Value = answer.json().await.map_err(|e| e.to_string())?;
    if status.is_success() {
        Ok(body)
    } else {
        Err(format!("{status} {body}"))
    }
}

/// The string in `v` (empty if it is none).
pub fn str_of(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}
