//! `POST /v1/mentions/{id}/reply` and `GET /v1/replies/{id}`: one live reply per mention,
//! idempotency keys, and the replies on the mention.

use crate::app::{MentionSeed, TestApp, assert_problem};
use reqwest::Method;
use sea_orm::TransactionTrait;
use serde_json::{Value, json};
use shared::domain::Role;

async fn post_reply(
    app: &TestApp,
    token: &str,
    mention: &str,
    content: &str,
    key: Option<&str>,
) -> reqwest::Response {
    let mut request = app
        .request(
            Method::POST,
            &format!("/v1/mentions/{mention}/reply"),
            Some(token),
        )
        .json(&json!({ "content": content }));
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    app.send(request).await
}

#[tokio::test]
async fn a_reply_is_accepted_with_202_and_shown_on_the_mention_and_by_id() {
    let app = TestApp::spawn().await;
    let agent = app.user(Role::Agent, "agent@example.com").await;
    let mention = MentionSeed::comment("Where is my order?", 5)
        .insert(&app)
        .await;
    let id = mention.id.to_string();

    let response = post_reply(&app, &agent.token, &id, "  It ships today.  ", None).await;
    assert_eq!(response.status(), 202);
    let reply: Value = response.json().await.expect("json");
    assert_eq!(reply["mentionId"], id.as_str());
    assert_eq!(reply["content"], "It ships today.");
    assert_eq!(reply["status"], "pending");
    assert!(reply["createdAt"].is_string());

    let reply_id = reply["id"].as_str().expect("id");
    let by_id = app
        .get_json(&format!("/v1/replies/{reply_id}"), &agent.token)
        .await;
    assert_eq!(by_id, reply);
    let detail = app
        .get_json(&format!("/v1/mentions/{id}"), &agent.token)
        .await;
    assert_eq!(detail["state"], "reply_attempt");
    assert_eq!(detail["replies"][0]["id"], reply_id);
    assert_eq!(detail["reply"]["status"], "pending");
    let audit = app
        .get_json(&format!("/v1/mentions/{id}/audit"), &agent.token)
        .await;
    assert!(audit.to_string().contains("reply.requested"), "{audit}");
    assert_eq!(
        app.count("SELECT count(*) FROM tasks WHERE kind = 'reply'")
            .await,
        1
    );
}

#[tokio::test]
async fn fifty_concurrent_replies_with_different_content_accept_exactly_one() {
    let app = TestApp::spawn().await;
    let agent = app.user(Role::Agent, "agent@example.com").await;
    let mention = MentionSeed::comment("Hello?", 5).insert(&app).await;
    let id = mention.id.to_string();

    let responses = futures_util::future::join_all((0..50).map(|i| {
        let (app, token, id) = (&app, &agent.token, &id);
        async move { post_reply(app, token, id, &format!("Answer {i}"), None).await }
    }))
    .await;

    let mut statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    statuses.sort_unstable();
    assert_eq!(statuses.iter().filter(|s| **s == 202).count(), 1);
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 49);
    assert_eq!(
        app.count("SELECT count(*) FROM replies").await,
        1,
        "one reply"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM tasks WHERE kind = 'reply'")
            .await,
        1,
        "one task"
    );
}

#[tokio::test]
async fn the_same_content_without_a_key_is_the_existing_reply_and_other_content_is_a_409_naming_it()
{
    let app = TestApp::spawn().await;
    let agent = app.user(Role::Agent, "agent@example.com").await;
    let mention = MentionSeed::comment("Hello?", 5).insert(&app).await;
    let id = mention.id.to_string();
    let first: Value = post_reply(&app, &agent.token, &id, "Hi!", None)
        .await
        .json()
        .await
        .expect("json");

    let again = post_reply(&app, &agent.token, &id, "Hi!", None).await;
    assert_eq!(again.status(), 200);
    assert_eq!(
        again.json::<Value>().await.expect("json")["id"],
        first["id"]
    );

    let other = post_reply(&app, &agent.token, &id, "Something else", None).await;
    let problem = assert_problem(other, 409, "reply_exists").await;
    assert_eq!(problem["details"]["replyId"], first["id"]);

    // Still a 409 once the reply is sent.
    app.sql("UPDATE replies SET status = 'sent'").await;
    let after_sent = post_reply(&app, &agent.token, &id, "Something else", None).await;
    assert_problem(after_sent, 409, "reply_exists").await;
}

#[tokio::test]
async fn after_a_reply_failed_a_new_one_is_accepted() {
    let app = TestApp::spawn().await;
    let agent = app.user(Role::Agent, "agent@example.com").await;
    let mention = MentionSeed::comment("Hello?", 5).insert(&app).await;
    let id = mention.id.to_string();
    post_reply(&app, &agent.token, &id, "First", None).await;
    app.sql(&format!(
        "UPDATE replies SET status = 'failed'; \
         UPDATE mentions SET state = 'provider_error' WHERE id = '{id}'"
    ))
    .await;

    let second = post_reply(&app, &agent.token, &id, "Second", None).await;
    assert_eq!(second.status(), 202);
    let detail = app
        .get_json(&format!("/v1/mentions/{id}"), &agent.token)
        .await;
    assert_eq!(detail["replies"].as_array().expect("replies").len(), 2);
    assert_eq!(detail["state"], "reply_attempt");
}

#[tokio::test]
async fn the_same_key_and_body_replay_the_first_answer_even_after_the_reply_finished() {
    let app = TestApp::spawn().await;
    let agent = app.user(Role::Agent, "agent@example.com").await;
    let mention = MentionSeed::comment("Hello?", 5).insert(&app).await;
    let id = mention.id.to_string();
    let first = post_reply(&app, &agent.token, &id, "Hi!", Some("key-1")).await;
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.expect("json");
    app.sql("UPDATE replies SET status = 'sent', attempts = 1")
        .await;

    let replay = post_reply(&app, &agent.token, &id, "Hi!", Some("key-1")).await;
    assert_eq!(replay.status(), 202);
    assert_eq!(replay.json::<Value>().await.expect("json"), first);
    assert_eq!(app.count("SELECT count(*) FROM replies").await, 1);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_refused_with_422() {
    let app = TestApp::spawn().await;
    let agent = app.user(Role::Agent, "agent@example.com").await;
    let mention = MentionSeed::comment("Hello?", 5).insert(&app).await;
    let id = mention.id.to_string();
    post_reply(&app, &agent.token, &id, "Hi!", Some("key-1")).await;

    let reused = post_reply(&app, &agent.token, &id, "Bye!", Some("key-1")).await;
    assert_problem(reused, 422, "idempotency_key_reused").await;
}

#[tokio::test]
async fn the_same_key_while_the_first_request_is_in_flight_is_refused_with_409() {
    let app = TestApp::spawn().await;
    let agent = app.user(Role::Agent, "agent@example.com").await;
    let mention = MentionSeed::comment("Hello?", 5).insert(&app).await;
    let id = mention.id.to_string();
    // Hold the audit chain's head, which the first request's transaction appends to last
    // (after the mention's lock, whose short wait must not apply to it): it waits inside.
    let blocker = app.db.owner_conn().begin().await.expect("begin");
    {
        use sea_orm::ConnectionTrait;
        blocker
            .execute_unprepared("SELECT * FROM audit_chain_head FOR UPDATE")
            .await
            .expect("lock the chain head");
    }
    let first = {
        let (app, token, id) = (&app, agent.token.clone(), id.clone());
        let url = app.url(&format!("/v1/mentions/{id}/reply"));
        tokio::spawn(async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .header("Idempotency-Key", "key-1")
                .json(&json!({"content": "Hi!"}))
                .send()
                .await
                .expect("request")
                .status()
                .as_u16()
        })
    };
    // Bounded wait until the first request holds the key's lock (and waits for the head).
    let mut held = false;
    for _ in 0..250 {
        let advisory = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";
        if app.count(advisory).await > 0 {
            held = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(held, "the first request reached its transaction");
    let second = post_reply(&app, &agent.token, &id, "Hi!", Some("key-1")).await;
    assert_problem(second, 409, "request_in_flight").await;
    blocker.rollback().await.expect("release");
    assert_eq!(first.await.expect("first request"), 202);
}

#[tokio::test]
async fn invalid_replies_are_refused_before_any_work() {
    let app = TestApp::spawn().await;
    let agent = app.user(Role::Agent, "agent@example.com").await;
    let mention = MentionSeed::comment("Hello?", 5).insert(&app).await;
    let id = mention.id.to_string();

    let empty = post_reply(&app, &agent.token, &id, "   ", None).await;
    assert_eq!(
        assert_problem(empty, 422, "validation_failed").await["field"],
        "content"
    );
    let long_key = "k".repeat(256);
    let key = post_reply(&app, &agent.token, &id, "Hi", Some(&long_key)).await;
    assert_eq!(
        assert_problem(key, 422, "validation_failed").await["field"],
        "Idempotency-Key"
    );
    let unknown = post_reply(
        &app,
        &agent.token,
        &shared::domain::MentionId::new().to_string(),
        "Hi",
        None,
    )
    .await;
    assert_problem(unknown, 404, "not_found").await;
    let no_reply = app
        .send(app.request(
            Method::GET,
            &format!("/v1/replies/{}", shared::domain::ReplyId::new()),
            Some(&agent.token),
        ))
        .await;
    assert_problem(no_reply, 404, "not_found").await;
    assert_eq!(app.count("SELECT count(*) FROM replies").await, 0);
}

#[tokio::test]
async fn a_burst_on_a_mention_held_by_another_change_answers_409_or_503_at_once_and_never_500() {
    // Two pool connections, as a small process has; the mention held by another change for
    // longer than the pool's 5 s acquire timeout.
    let app = TestApp::spawn_with_pool(2).await;
    let agent = app.user(Role::Agent, "agent@example.com").await;
    let mention = MentionSeed::comment("Hello?", 5).insert(&app).await;
    let id = mention.id.to_string();
    let holder = app.db.conn().begin().await.expect("begin");
    use sea_orm::ConnectionTrait;
    holder
        .execute_unprepared(&format!(
            "SELECT id FROM mentions WHERE id = '{id}' FOR UPDATE"
        ))
        .await
        .expect("lock the mention");

    // Every request is answered while the lock is still held (it is released only after).
    let responses = futures_util::future::join_all((0..50).map(|i| {
        let (app, token, id) = (&app, &agent.token, &id);
        async move { post_reply(app, token, id, &format!("Answer {i}"), None).await }
    }))
    .await;
    let mut answers: Vec<(u16, Option<String>, String)> = Vec::new();
    for response in responses {
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body: Value = response.json().await.expect("problem json");
        answers.push((
            status,
            retry_after,
            body["code"].as_str().unwrap_or("").to_owned(),
        ));
    }
    assert!(
        answers.iter().all(|(status, retry_after, code)| {
            retry_after.is_some()
                && ((*status == 409 && code == "mention_busy")
                    || (*status == 503 && code == "unavailable"))
        }),
        "{answers:?}"
    );
    holder.rollback().await.expect("release the mention");

    assert_eq!(
        post_reply(&app, &agent.token, &id, "Answer again", None)
            .await
            .status(),
        202,
        "once the mention is free, a request wins"
    );
    assert_eq!(app.count("SELECT count(*) FROM replies").await, 1);
}
