//! Live updates: the event stream, reconnecting with `Last-Event-ID`, collision hints, the
//! refusal of a reply written against a stale view, and a mention's thread context.

use crate::app::{MentionSeed, TestApp, assert_problem};
use reqwest::{Method, Response};
use serde_json::{Value, json};
use shared::domain::{MentionType, Role};
use std::time::Duration;

/// How long an expected event may take.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// One event as received: its name, id and data.
#[derive(Debug)]
pub(crate) struct Received {
    pub(crate) event: String,
    pub(crate) id: Option<String>,
    pub(crate) data: Value,
}

/// A `GET /v1/events` stream, read event by event.
pub(crate) struct Events {
    response: Response,
    buffer: String,
}

impl Events {
    pub(crate) async fn open(app: &TestApp, token: &str, last_event_id: Option<&str>) -> Events {
        let mut request = app.request(Method::GET, "/v1/events", Some(token));
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = app.send(request).await;
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"].to_str().expect("ascii");
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        Events {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (keep-alive comments skipped); panics after [`EVENT_TIMEOUT`].
    pub(crate) async fn next(&mut self) -> Received {
        tokio::time::timeout(EVENT_TIMEOUT, async {
            loop {
                if let Some(end) = self.buffer.find("\n\n") {
                    let block: String = self.buffer.drain(..end + 2).collect();
                    let mut received = Received {
                        event: "message".to_owned(),
                        id: None,
                        data: Value::Null,
                    };
                    let mut any = false;
                    for line in block.lines() {
                        if let Some((field, value)) = line.split_once(':') {
                            let value = value.strip_prefix(' ').unwrap_or(value);
                            any |= !field.is_empty();
                            match field {
                                "event" => received.event = value.to_owned(),
                                "id" => received.id = Some(value.to_owned()),
                                "data" => {
                                    received.data = serde_json::from_str(value).expect("json")
                                }
                                _ => {}
                            }
                        }
                    }
                    if any {
                        return received;
                    }
                    continue;
                }
                let chunk = self.response.chunk().await.expect("stream").expect("open");
                self.buffer
                    .push_str(std::str::from_utf8(&chunk).expect("utf-8"));
            }
        })
        .await
        .expect("an event in time")
    }

    /// The next `mention` event, skipping others.
    pub(crate) async fn next_change(&mut self) -> Received {
        loop {
            let received = self.next().await;
            if received.event == "mention" {
                return received;
            }
        }
    }
}

async fn assign(app: &TestApp, token: &str, id: &str, user: &str) -> Value {
    let response = app
        .send(
            app.request(Method::PUT, &format!("/v1/mentions/{id}"), Some(token))
                .json(&json!({ "userId": user })),
        )
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("json")
}

#[tokio::test]
async fn a_stream_sends_ready_then_every_change_of_a_mention_as_it_commits() {
    let app = TestApp::spawn().await;
    let agent = app.user(Role::Agent, "ann@example.com").await;
    let mention = MentionSeed::comment("help", 1).insert(&app).await;
    let mut events = Events::open(&app, &agent.token, None).await;
    let ready = events.next().await;
    assert_eq!(ready.event, "ready");
    let start: i64 = ready.id.expect("id").parse().expect("number");

    let id = mention.id.to_string();
    assign(&app, &agent.token, &id, &agent.user.id.to_string()).await;
    let change = events.next_change().await;
    assert_eq!(change.data["action"], "mention.assigned");
    assert_eq!(change.data["mentionId"], id);
    assert_eq!(change.data["actor"], format!("user:{}", agent.user.id));
    let seq = change.data["seq"].as_i64().expect("seq");
    assert!(seq > start, "{seq} after {start}");
    assert_eq!(change.id, Some(seq.to_string()));
}

#[tokio::test]
async fn a_client_reconnecting_with_last_event_id_gets_what_it_missed_in_order() {
    let app = TestApp::spawn().await;
    let agent = app.user(Role::Agent, "ann@example.com").await;
    let other = app.user(Role::Agent, "bob@example.com").await;
    let first = MentionSeed::comment("first", 2).insert(&app).await;
    let second = MentionSeed::comment("second", 1).insert(&app).await;
    let mut events = Events::open(&app, &agent.token, None).await;
    let last = events.next().await.id.expect("ready id");
    drop(events);

    // Missed while disconnected.
    assign(
        &app,
        &agent.token,
        &first.id.to_string(),
        &other.user.id.to_string(),
    )
    .await;
    assign(
        &app,
        &agent.token,
        &second.id.to_string(),
        &other.user.id.to_string(),
    )
    .await;

    let mut events = Events::open(&app, &agent.token, Some(&last)).await;
    let a = events.next_change().await;
    let b = events.next_change().await;
    assert_eq!(a.data["mentionId"], first.id.to_string());
    assert_eq!(b.data["mentionId"], second.id.to_string());
    assert!(a.data["seq"].as_i64() < b.data["seq"].as_i64());

    // Reconnecting after the second sends nothing again: the next event is a new change.
    let mut events = Events::open(&app, &agent.token, b.id.as_deref()).await;
    assign(
        &app,
        &agent.token,
        &first.id.to_string(),
        &agent.user.id.to_string(),
    )
    .await;
    let c = events.next_change().await;
    assert_eq!(c.data["mentionId"], first.id.to_string());
    assert!(c.data["seq"].as_i64() > b.data["seq"].as_i64());
}

#[tokio::test]
async fn the_stream_needs_a_token() {
    let app = TestApp::spawn().await;
    let response = app.send(app.request(Method::GET, "/v1/events", None)).await;
    assert_problem(response, 401, "unauthorized").await;
}

#[tokio::test]
async fn presence_reaches_every_other_open_stream_with_the_agents_name() {
    let app = TestApp::spawn().await;
    let ann = app.user(Role::Agent, "ann@example.com").await;
    let bob = app.user(Role::Agent, "bob@example.com").await;
    let mention = MentionSeed::comment("help", 1).insert(&app).await;
    let mut bobs = Events::open(&app, &bob.token, None).await;
    assert_eq!(bobs.next().await.event, "ready");

    let path = format!("/v1/mentions/{}/presence", mention.id);
    let response = app
        .send(
            app.request(Method::POST, &path, Some(&ann.token))
                .json(&json!({"activity": "replying"})),
        )
        .await;
    assert_eq!(response.status(), 204);
    let hint = bobs.next().await;
    assert_eq!(hint.event, "presence");
    assert_eq!(hint.id, None);
    assert_eq!(
        hint.data,
        json!({"mentionId": mention.id, "brandId": mention.brand_id, "userId": ann.user.id, "name": "ann",
               "activity": "replying"})
    );

    let unknown = format!("/v1/mentions/{}/presence", uuid::Uuid::new_v4());
    let response = app
        .send(
            app.request(Method::POST, &unknown, Some(&ann.token))
                .json(&json!({"activity": "viewing"})),
        )
        .await;
    assert_problem(response, 404, "not_found").await;
    let response = app
        .send(
            app.request(Method::POST, &path, Some(&ann.token))
                .json(&json!({"activity": "dancing"})),
        )
        .await;
    assert_eq!(response.status(), 422);
}

async fn reply(app: &TestApp, token: &str, id: &str, version: i64, content: &str) -> Response {
    app.send(
        app.request(
            Method::POST,
            &format!("/v1/mentions/{id}/reply"),
            Some(token),
        )
        .header("If-Match", format!("\"{version}\""))
        .json(&json!({ "content": content })),
    )
    .await
}

/// Asserts a 412 `stale_view` whose detail says `what`; returns the problem.
async fn refused_as_stale(response: Response, what: &str) -> Value {
    let body = assert_problem(response, 412, "stale_view").await;
    let detail = body["detail"].as_str().expect("detail");
    assert!(detail.contains(what), "{detail}");
    body
}

#[tokio::test]
async fn a_reply_from_a_stale_view_is_refused_saying_who_changed_what() {
    let app = TestApp::spawn().await;
    let ann = app.user(Role::Agent, "ann@example.com").await;
    let bob = app.user(Role::Agent, "bob@example.com").await;
    let carol = app.user(Role::Agent, "carol@example.com").await;
    let mention = MentionSeed::comment("help", 1).insert(&app).await;
    let id = mention.id.to_string();
    let seen = app
        .get_json(&format!("/v1/mentions/{id}"), &ann.token)
        .await["version"]
        .as_i64()
        .expect("version");

    // Reassigned while Ann was writing.
    assign(&app, &bob.token, &id, &carol.user.id.to_string()).await;
    let body = refused_as_stale(
        reply(&app, &ann.token, &id, seen, "From Ann").await,
        "bob assigned it to carol",
    )
    .await;
    assert_eq!(body["details"]["changes"][0]["action"], "mention.assigned");
    let now = app
        .get_json(&format!("/v1/mentions/{id}"), &ann.token)
        .await;
    assert_eq!(now["replies"], json!([]), "nothing was requested");

    // Someone replied meanwhile: the second view's reply is refused too.
    let seen = now["version"].as_i64().expect("version");
    assert_eq!(
        reply(&app, &bob.token, &id, seen, "From Bob")
            .await
            .status(),
        202
    );
    refused_as_stale(
        reply(&app, &ann.token, &id, seen, "From Ann").await,
        "bob replied",
    )
    .await;
    let replies = app
        .get_json(&format!("/v1/mentions/{id}"), &ann.token)
        .await["replies"]
        .clone();
    assert_eq!(replies.as_array().map(Vec::len), Some(1), "{replies}");
    assert_eq!(replies[0]["content"], "From Bob");
}

#[tokio::test]
async fn a_message_shows_the_earlier_messages_of_its_conversation_oldest_first() {
    let app = TestApp::spawn().await;
    let agent = app.user(Role::Agent, "ann@example.com").await;
    let message = |content, minutes_ago| MentionSeed {
        mention_type: MentionType::Message,
        ..MentionSeed::comment(content, minutes_ago)
    };
    let first = message("hello?", 30).insert(&app).await;
    let second = message("anyone there?", 20).insert(&app).await;
    let latest = message("my order is late", 10).insert(&app).await;
    // A comment on the same post is not part of the conversation.
    MentionSeed::comment("nice post", 25).insert(&app).await;

    let body = app
        .get_json(&format!("/v1/mentions/{}", latest.id), &agent.token)
        .await;
    let thread: Vec<&str> = body["thread"]
        .as_array()
        .expect("thread")
        .iter()
        .map(|m| m["id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        thread,
        [first.id.to_string(), second.id.to_string()],
        "{body}"
    );
    let body = app
        .get_json(&format!("/v1/mentions/{}", first.id), &agent.token)
        .await;
    assert_eq!(body["thread"], json!([]));
}
