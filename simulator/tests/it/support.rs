//! Shared helpers: a small world on a free port, a client, and typed shortcuts for the
//! provider and control surfaces.

use std::future::Future;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;
use simulator::{SimConfig, Simulator};

/// A small world without a rate limit: 8 platforms × 4 posts (the newest without comments)
/// × 3 comments × 1 reply.
pub fn small() -> SimConfig {
    SimConfig {
        rate_limit: 0,
        posts_per_platform: 4,
        comments_per_post: 3,
        replies_per_comment: 1,
        empty_posts_per_platform: 1,
        ..SimConfig::on_free_port()
    }
}

/// An answer: status, headers and JSON body (`Value::Null` when the body is not JSON).
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<u64> {
        self.headers.get(name)?.to_str().ok()?.parse().ok()
    }

    /// Asserts an Ayrshare error body: `{"status": "error", "code": N, "message": "…"}`.
    pub fn assert_error(&self, status: u16) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(self.body["status"], "error", "body: {}", self.body);
        assert!(self.body["code"].is_u64(), "body: {}", self.body);
        assert!(self.body["message"].is_string(), "body: {}", self.body);
    }
}

pub struct TestSim {
    pub sim: Simulator,
    pub client: reqwest::Client,
}

pub async fn spawn(config: SimConfig) -> TestSim {
    let sim = simulator::spawn(config).await.expect("simulator starts");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client builds");
    TestSim { sim, client }
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("body reads");
    Answer {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

impl TestSim {
    /// A request to `/api<path>` with the right key, a JSON body if given, and a
    /// `Profile-Key` if given.
    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        profile: Option<&str>,
    ) -> Answer {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.sim.api_url()))
            .bearer_auth(self.sim.api_key());
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(profile) = profile {
            request = request.header("Profile-Key", profile);
        }
        answer(request.send().await.expect("request succeeds")).await
    }

    /// GET `/api<path>` with the right key.
    pub async fn api_get(&self, path: &str) -> Answer {
        self.api(reqwest::Method::GET, path, None, None).await
    }

    /// POST `/api<path>` with the right key and a JSON body.
    pub async fn api_post(&self, path: &str, body: &Value) -> Answer {
        self.api(reqwest::Method::POST, path, Some(body), None)
            .await
    }

    /// DELETE `/api<path>` with the right key and, if given, a JSON body.
    pub async fn api_delete(&self, path: &str, body: Option<&Value>) -> Answer {
        self.api(reqwest::Method::DELETE, path, body, None).await
    }

    /// GET `/_sim<path>`.
    pub async fn control_get(&self, path: &str) -> Value {
        let response = self
            .client
            .get(format!("{}/_sim{path}", self.sim.base_url()))
            .send()
            .await
            .expect("control request succeeds");
        assert!(response.status().is_success(), "GET /_sim{path}");
        response.json().await.expect("control JSON")
    }

    /// POST `/_sim<path>` with a JSON body.
    pub async fn control_post(&self, path: &str, body: &Value) -> Answer {
        let response = self
            .client
            .post(format!("{}/_sim{path}", self.sim.base_url()))
            .json(body)
            .send()
            .await
            .expect("control request succeeds");
        answer(response).await
    }

    pub async fn set_faults(&self, faults: Value) {
        let answer = self.control_post("/faults", &faults).await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "faults accepted: {}",
            answer.body
        );
    }

    /// Every comment the world holds (`GET /_sim/comments`).
    pub async fn sim_comments(&self) -> Vec<Value> {
        self.control_get("/comments").await["comments"]
            .as_array()
            .expect("comments array")
            .clone()
    }

    /// The world's comments of one platform.
    pub async fn comments_on(&self, platform: &str) -> Vec<Value> {
        self.sim_comments()
            .await
            .into_iter()
            .filter(|c| c["platform"] == platform)
            .collect()
    }

    pub async fn ledger(&self) -> Value {
        self.control_get("/ledger").await
    }

    /// Posts our reply to a Social Comment ID, as the service does.
    pub async fn reply(&self, platform: &str, comment_id: &str, text: &str) -> Answer {
        self.api_post(
            &format!("/comments/reply/{}", encode(comment_id)),
            &serde_json::json!({
                "comment": text,
                "platforms": [platform],
                "searchPlatformId": true,
            }),
        )
        .await
    }
}

/// Percent-encodes a path segment or query value (ids may hold `/`, `:`, `(`, `,`).
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Polls `check` every 50 ms until it holds or `limit` passes; returns whether it held.
pub async fn wait_until<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The comment with this Social Comment ID anywhere in a `GET /comments` answer, at any
/// depth of `replies`.
pub fn find_comment<'a>(body: &'a Value, id: &str) -> Option<&'a Value> {
    match body {
        Value::Object(map) if map.get("commentId").and_then(Value::as_str) == Some(id) => {
            Some(body)
        }
        Value::Object(map) => map.values().find_map(|v| find_comment(v, id)),
        Value::Array(items) => items.iter().find_map(|v| find_comment(v, id)),
        _ => None,
    }
}

/// A rendered comment's author id, from the field its platform uses (see `render`).
pub fn author_id<'a>(platform: &str, comment: &'a Value) -> Option<&'a str> {
    match platform {
        "facebook" | "instagram" => comment["from"]["id"].as_str(),
        "linkedin" | "threads" => comment["user"]["id"].as_str(),
        "twitter" => comment["authorId"].as_str(),
        _ => comment["userId"].as_str(),
    }
}

/// `GET /_sim/ledger` before any write.
pub fn empty_ledger() -> Value {
    serde_json::json!({"replies": [], "messages": [], "comments": [], "deletions": []})
}

/// Parses an ISO timestamp of a response.
pub fn time(value: &Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(value.as_str().expect("timestamp is a string"))
        .expect("timestamp is RFC 3339")
        .to_utc()
}

/// Asserts `lastUpdated` / `nextUpdate` are present and `refresh` seconds apart.
pub fn assert_update_times(body: &Value, refresh: i64) {
    let last = time(&body["lastUpdated"]);
    let next = time(&body["nextUpdate"]);
    assert_eq!((next - last).num_seconds(), refresh, "body: {body}");
}
