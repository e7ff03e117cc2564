//! Webhook deliveries: a Facebook or Instagram comment or message from a customer reaches the
//! registered URL, signed, retried on 5xx, and the `delivery` faults duplicate, delay, drop or
//! mis-sign it; `GET /_sim/webhooks` lists each delivery.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::support::{TestSim, small, spawn, wait_until};

const SECRET: &str = "whsec-test";
const WAIT: Duration = Duration::from_secs(10);

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    at: Instant,
    body: Value,
    signature: Option<String>,
    timestamp: Option<i64>,
    raw: Bytes,
}

/// A local webhook receiver that answers the statuses of `answers` in turn (then 200).
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    answers: Arc<Mutex<Vec<u16>>>,
}

impl Receiver {
    async fn start(answers: Vec<u16>) -> (Receiver, String) {
        let receiver = Receiver {
            answers: Arc::new(Mutex::new(answers)),
            ..Receiver::default()
        };
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, url)
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().expect("lock").clone()
    }
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    r.got.lock().expect("lock").push(Received {
        at: Instant::now(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        signature: text("x-authorization-content-sha256"),
        timestamp: text("x-authorization-timestamp").and_then(|t| t.parse().ok()),
        raw: body,
    });
    let mut answers = r.answers.lock().expect("lock");
    let status = if answers.is_empty() {
        200
    } else {
        answers.remove(0)
    };
    StatusCode::from_u16(status).expect("status")
}

fn signed_with(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

async fn register(t: &TestSim, action: &str, url: &str) {
    let body = json!({"action": action, "url": url, "secret": SECRET});
    let answer = t.api_post("/hook/webhook", &body).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
}

/// Adds a customer's comment on the first post of `platform`; its Social Comment ID.
async fn add_comment(t: &TestSim, platform: &str, content: &str) -> String {
    let post = t
        .sim_comments()
        .await
        .into_iter()
        .find(|c| c["platform"] == platform)
        .expect("a comment on the platform")["postId"]
        .clone();
    let body = json!({"platform": platform, "postId": post, "content": content});
    let added = t.control_post("/comments", &body).await;
    assert_eq!(added.status, 201, "{}", added.body);
    added.body["commentId"].as_str().expect("id").to_owned()
}

async fn deliveries(t: &TestSim) -> Vec<Value> {
    t.control_get("/webhooks").await["deliveries"]
        .as_array()
        .expect("deliveries")
        .clone()
}

async fn wait_for(receiver: &Receiver, n: usize) -> Vec<Received> {
    assert!(
        wait_until(WAIT, || async { receiver.got().len() >= n }).await,
        "{} of {n} deliveries arrived",
        receiver.got().len()
    );
    receiver.got()
}

#[tokio::test]
async fn a_facebook_comment_is_delivered_once_signed_with_the_profiles_secret() {
    let t = spawn(small()).await;
    let (receiver, url) = Receiver::start(vec![]).await;
    register(&t, "comments", &url).await;
    let id = add_comment(&t, "facebook", "Do you ship to Norway?").await;

    let got = wait_for(&receiver, 1).await;
    let delivery = &got[0];
    assert_eq!(delivery.body["action"], "comments");
    assert_eq!(delivery.body["subAction"], "commentAdded");
    assert_eq!(delivery.body["platform"], "facebook");
    assert_eq!(delivery.body["comment"]["commentId"], id.as_str());
    assert_eq!(
        delivery.body["comment"]["comment"],
        "Do you ship to Norway?"
    );
    assert!(delivery.body["postId"].is_string(), "{}", delivery.body);
    let user = t.api_get("/user").await;
    assert_eq!(delivery.body["refId"], user.body["refId"]);
    assert_eq!(
        delivery.signature.as_deref(),
        Some(signed_with(SECRET, &delivery.raw).as_str()),
        "HMAC-SHA256 of the body under the secret, in hex"
    );
    let now = chrono::Utc::now().timestamp();
    assert!(delivery.timestamp.is_some_and(|t| (now - t).abs() < 60));

    let listed = deliveries(&t).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["hookId"], delivery.body["hookId"]);
    assert_eq!(listed[0]["outcome"], "delivered");
    assert_eq!(listed[0]["attempts"], 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.got().len(), 1, "exactly once");
}

#[tokio::test]
async fn platforms_without_webhooks_and_unregistered_actions_deliver_nothing() {
    let t = spawn(small()).await;
    let (receiver, url) = Receiver::start(vec![]).await;
    register(&t, "messages", &url).await;
    add_comment(&t, "facebook", "Only a comments webhook would see this").await;
    add_comment(&t, "twitter", "X has no webhook").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(receiver.got().is_empty(), "{:?}", receiver.got());
    assert!(deliveries(&t).await.is_empty());
}

#[tokio::test]
async fn an_instagram_direct_message_is_delivered_to_the_messages_webhook() {
    let t = spawn(small()).await;
    let (receiver, url) = Receiver::start(vec![]).await;
    register(&t, "messages", &url).await;
    let conversation = t.control_get("/messages").await["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .find(|m| m["platform"] == "instagram")
        .expect("an instagram conversation")["conversationId"]
        .clone();
    let body = json!({"platform": "instagram", "conversationId": conversation,
        "content": "Is my order on its way?"});
    let added = t.control_post("/messages", &body).await;
    assert_eq!(added.status, 201, "{}", added.body);

    let got = wait_for(&receiver, 1).await;
    assert_eq!(got[0].body["action"], "messages");
    assert_eq!(got[0].body["subAction"], "messageReceived");
    assert_eq!(got[0].body["conversationId"], conversation);
    assert_eq!(got[0].body["message"]["message"], "Is my order on its way?");
    assert_eq!(got[0].body["message"]["action"], "received");
    assert_eq!(got[0].body["message"]["id"], added.body["messageId"]);
}

#[tokio::test]
async fn a_delivery_answered_503_is_tried_again_until_it_is_taken() {
    let t = spawn(small()).await;
    let (receiver, url) = Receiver::start(vec![503, 503]).await;
    register(&t, "comments", &url).await;
    add_comment(&t, "instagram", "Third time lucky").await;
    let got = wait_for(&receiver, 3).await;
    assert_eq!(
        got[0].body["hookId"], got[2].body["hookId"],
        "the same delivery"
    );
    assert!(
        wait_until(WAIT, || async {
            deliveries(&t).await[0]["outcome"] == "delivered"
        })
        .await
    );
    let listed = deliveries(&t).await;
    assert_eq!(listed[0]["attempts"], 3, "{listed:?}");
    assert_eq!(listed[0]["lastStatus"], 200);
}

#[tokio::test]
async fn a_delivery_answered_401_is_not_tried_again() {
    let t = spawn(small()).await;
    let (receiver, url) = Receiver::start(vec![401]).await;
    register(&t, "comments", &url).await;
    add_comment(&t, "facebook", "Refused").await;
    wait_for(&receiver, 1).await;
    assert!(
        wait_until(WAIT, || async {
            deliveries(&t).await[0]["outcome"] == "failed"
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.got().len(), 1);
}

#[tokio::test]
async fn delivery_faults_duplicate_delay_drop_and_mis_sign_as_asked() {
    let t = spawn(small()).await;
    let (receiver, url) = Receiver::start(vec![]).await;
    register(&t, "comments", &url).await;
    let rule = |fault: &str, extra: Value| {
        let mut rule = json!({"endpoint": "delivery", "platform": "facebook", "fault": fault,
            "count": 1});
        rule.as_object_mut()
            .expect("object")
            .extend(extra.as_object().expect("object").clone());
        json!({"rules": [rule]})
    };

    t.set_faults(rule("duplicate", json!({}))).await;
    add_comment(&t, "facebook", "Said twice").await;
    let got = wait_for(&receiver, 2).await;
    assert_eq!(got[0].body["hookId"], got[1].body["hookId"]);

    t.set_faults(rule("drop", json!({}))).await;
    add_comment(&t, "facebook", "Never said").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.got().len(), 2, "dropped");
    assert_eq!(deliveries(&t).await[1]["outcome"], "dropped");

    t.set_faults(rule("bad_signature", json!({}))).await;
    add_comment(&t, "facebook", "Forged").await;
    let got = wait_for(&receiver, 3).await;
    let forged = &got[2];
    assert!(forged.signature.is_some());
    assert_ne!(
        forged.signature.as_deref(),
        Some(signed_with(SECRET, &forged.raw).as_str())
    );

    t.set_faults(rule("latency", json!({"ms": 1500}))).await;
    let added = Instant::now();
    add_comment(&t, "facebook", "Late").await;
    let got = wait_for(&receiver, 4).await;
    assert!(
        got[3].at.duration_since(added) >= Duration::from_millis(1500),
        "delayed"
    );
    assert_eq!(deliveries(&t).await[3]["delayMs"], 1500);
}

#[tokio::test]
async fn delivery_only_faults_are_refused_for_other_endpoints() {
    let t = spawn(small()).await;
    for body in [
        json!({"rules": [{"endpoint": "reply", "fault": "duplicate"}]}),
        json!({"rules": [{"fault": "drop"}]}),
        json!({"rules": [{"endpoint": "delivery", "fault": "status", "status": 500}]}),
    ] {
        let answer = t.control_post("/faults", &body).await;
        assert_eq!(answer.status, 400, "{body}: {}", answer.body);
    }
}

#[tokio::test]
async fn a_delivery_goes_only_to_the_profile_whose_world_got_the_comment() {
    let t = spawn(small()).await;
    let mut receivers = Vec::new();
    for profile in ["", "brand-a", "brand-b"] {
        let (receiver, url) = Receiver::start(vec![]).await;
        let body =
            json!({"action": "comments", "url": url, "secret": format!("{SECRET}-{profile}")});
        let answer = t
            .api(
                reqwest::Method::POST,
                "/hook/webhook",
                Some(&body),
                Some(profile),
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        receivers.push(receiver);
    }
    let post = t.control_get("/comments?profile=brand-a").await["comments"]
        .as_array()
        .expect("comments")
        .iter()
        .find(|c| c["platform"] == "facebook")
        .expect("a facebook comment")["postId"]
        .clone();
    let body = json!({"platform": "facebook", "postId": post, "content": "For brand A"});
    let added = t.control_post("/comments?profile=brand-a", &body).await;
    assert_eq!(added.status, 201, "{}", added.body);

    let got = wait_for(&receivers[1], 1).await;
    assert_eq!(got[0].body["comment"]["commentId"], added.body["commentId"]);
    assert_eq!(
        got[0].signature.as_deref(),
        Some(signed_with(&format!("{SECRET}-brand-a"), &got[0].raw).as_str()),
        "signed with brand A's secret"
    );
    let user = t
        .api(reqwest::Method::GET, "/user", None, Some("brand-a"))
        .await;
    assert_eq!(got[0].body["refId"], user.body["refId"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        receivers[0].got().is_empty(),
        "not the primary profile's URL"
    );
    assert!(receivers[2].got().is_empty(), "not brand B's URL");

    let listed = t.control_get("/webhooks?profile=brand-a").await["deliveries"].clone();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["profile"], "brand-a");
    assert!(deliveries(&t).await.is_empty());
    assert_eq!(
        t.control_get("/webhooks?profile=brand-b").await["deliveries"],
        json!([])
    );
}
