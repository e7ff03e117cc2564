//! `POST /v1/webhooks/ayrshare`: only a valid signature gets in, a delivery is taken in once
//! however often it comes, complete comments and messages become mentions straight away, and
//! anything else becomes a targeted read through the outbox.

use crate::app::{TestApp, assert_problem, settings};
use hmac::{Hmac, KeyInit, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;

const SECRET: &str = "whsec-current";
const OLD_SECRET: &str = "whsec-previous";
const POST: &str = "ayr-post-1";

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// An api whose deliveries are signed with `secret` (and `previous`, while rotating).
async fn app_with(secret: &str, previous: Option<&str>) -> TestApp {
    let mut settings = settings();
    settings.webhooks.secret = Some(secret.to_owned().into());
    settings.webhooks.previous_secret = previous.map(|p| p.to_owned().into());
    let app = TestApp::spawn_with_settings(&settings).await;
    app.sql(&format!(
        "INSERT INTO posts (platform, ayrshare_post_id, platform_post_id) \
         VALUES ('facebook', '{POST}', 'fb-post-1')"
    ))
    .await;
    app
}

async fn app() -> TestApp {
    app_with(SECRET, None).await
}

/// A customer's comment delivery on the post.
fn comment(hook: &str, comment_id: &str, text: &str) -> Value {
    json!({
        "action": "comments", "subAction": "commentAdded", "hookId": hook,
        "created": "2026-12-03T07:00:00.000Z", "code": 200, "status": "success",
        "refId": "ref", "platform": "facebook", "postId": POST, "socialPostId": "fb-post-1",
        "parentCommentId": null,
        "comment": {"comment": text, "commentId": comment_id, "created": "2026-12-03T06:59:58Z",
            "from": {"id": "customer-7", "name": "Ann Customer"}, "platform": "facebook"},
    })
}

/// Posts `body` signed with `secret` at `at` (Unix seconds).
async fn deliver_at(app: &TestApp, body: &Value, secret: &str, at: i64) -> reqwest::Response {
    deliver_to(app, "/v1/webhooks/ayrshare", body, secret, at).await
}

/// Posts `body` to `path`, signed with `secret` at `at` (Unix seconds).
async fn deliver_to(
    app: &TestApp,
    path: &str,
    body: &Value,
    secret: &str,
    at: i64,
) -> reqwest::Response {
    let bytes = serde_json::to_vec(body).expect("json");
    let request = app
        .request(Method::POST, path, None)
        .header("content-type", "application/json")
        .header("X-Authorization-Timestamp", at.to_string())
        .header("X-Authorization-Content-SHA256", sign(secret, &bytes))
        .body(bytes);
    app.send(request).await
}

async fn deliver(app: &TestApp, body: &Value) -> (u16, Value) {
    let response = deliver_at(app, body, SECRET, chrono::Utc::now().timestamp()).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn stored(app: &TestApp) -> (i64, i64, i64) {
    (
        app.count("SELECT count(*) FROM webhook_deliveries").await,
        app.count("SELECT count(*) FROM mentions").await,
        app.count("SELECT count(*) FROM tasks").await,
    )
}

#[tokio::test]
async fn a_complete_comment_becomes_a_mention_at_once_and_three_deliveries_give_one() {
    let app = app().await;
    let body = comment("hook-1", "fb-c-1", "Do you ship to Norway?");
    assert_eq!(
        deliver(&app, &body).await,
        (200, json!({"outcome": "stored"}))
    );
    for _ in 0..2 {
        assert_eq!(
            deliver(&app, &body).await,
            (200, json!({"outcome": "duplicate"}))
        );
    }
    assert_eq!(
        stored(&app).await,
        (1, 1, 0),
        "one delivery, one mention, no read"
    );
    let row = app
        .count(
            "SELECT count(*) FROM mentions WHERE platform = 'facebook' AND type = 'comment' \
             AND platform_ref = 'fb-c-1' AND provider_post_ref = 'ayr-post-1' \
             AND content = 'Do you ship to Norway?' AND author_name = 'Ann Customer'",
        )
        .await;
    assert_eq!(row, 1, "stored as a read of the post would store it");
    assert_eq!(
        app.count(
            "SELECT count(*) FROM audit_log WHERE action = 'mention.ingested' \
             AND actor = 'system:webhook'"
        )
        .await,
        1
    );
    // Another delivery of the same comment (a new hook id) changes nothing.
    let again = comment("hook-2", "fb-c-1", "Do you ship to Norway?");
    assert_eq!(
        deliver(&app, &again).await,
        (200, json!({"outcome": "known"}))
    );
    assert_eq!(app.count("SELECT count(*) FROM mentions").await, 1);
}

#[tokio::test]
async fn concurrent_copies_of_one_delivery_store_one_mention() {
    let app = app().await;
    let body = comment("hook-race", "fb-c-race", "Same words, many times");
    let answers = futures_util::future::join_all((0..8).map(|_| deliver(&app, &body))).await;
    let outcomes: Vec<&Value> = answers.iter().map(|(_, b)| &b["outcome"]).collect();
    assert!(answers.iter().all(|(s, _)| *s == 200), "{answers:?}");
    assert_eq!(
        outcomes.iter().filter(|o| **o == "stored").count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(stored(&app).await, (1, 1, 0));
}

#[tokio::test]
async fn a_forged_missing_or_stale_signature_is_401_and_nothing_is_stored() {
    let app = app().await;
    let body = comment("hook-x", "fb-c-x", "Forged");
    let now = chrono::Utc::now().timestamp();
    let forged = deliver_at(&app, &body, "not-the-secret", now).await;
    assert_problem(forged, 401, "invalid_signature").await;
    let stale = deliver_at(&app, &body, SECRET, now - 3600).await;
    assert_problem(stale, 401, "invalid_signature").await;
    let future = deliver_at(&app, &body, SECRET, now + 3600).await;
    assert_problem(future, 401, "invalid_signature").await;
    let unsigned = app
        .request(Method::POST, "/v1/webhooks/ayrshare", None)
        .header("content-type", "application/json")
        .header("X-Authorization-Timestamp", now.to_string())
        .body(serde_json::to_vec(&body).expect("json"));
    assert_problem(app.send(unsigned).await, 401, "invalid_signature").await;
    // Signed over other bytes than those sent.
    let bytes = serde_json::to_vec(&body).expect("json");
    let mut tampered = bytes.clone();
    tampered.extend_from_slice(b" ");
    let swapped = app
        .request(Method::POST, "/v1/webhooks/ayrshare", None)
        .header("content-type", "application/json")
        .header("X-Authorization-Timestamp", now.to_string())
        .header("X-Authorization-Content-SHA256", sign(SECRET, &bytes))
        .body(tampered);
    assert_problem(app.send(swapped).await, 401, "invalid_signature").await;
    assert_eq!(stored(&app).await, (0, 0, 0), "nothing stored or enqueued");
    let health: Value = app
        .send(app.request(Method::GET, "/v1/status/health", None))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(health["webhooks"]["enabled"], true);
    assert_eq!(health["webhooks"]["signatureFailures"], 5, "{health}");
}

#[tokio::test]
async fn during_a_rotation_both_secrets_verify_and_after_it_only_the_new_one() {
    let rotating = app_with(SECRET, Some(OLD_SECRET)).await;
    let now = chrono::Utc::now().timestamp();
    for (i, secret) in [SECRET, OLD_SECRET].into_iter().enumerate() {
        let body = comment(&format!("hook-r{i}"), &format!("fb-r{i}"), "Rotating");
        assert_eq!(
            deliver_at(&rotating, &body, secret, now).await.status(),
            200
        );
    }
    let rotated = app().await;
    let body = comment("hook-after", "fb-after", "After the rotation");
    let old = deliver_at(&rotated, &body, OLD_SECRET, now).await;
    assert_problem(old, 401, "invalid_signature").await;
    assert_eq!(deliver_at(&rotated, &body, SECRET, now).await.status(), 200);
}

#[tokio::test]
async fn without_a_secret_every_delivery_is_refused() {
    let app = TestApp::spawn().await;
    let body = comment("hook-n", "fb-n", "No secret configured");
    let answer = deliver_at(&app, &body, "", chrono::Utc::now().timestamp()).await;
    assert_problem(answer, 401, "invalid_signature").await;
}

#[tokio::test]
async fn what_cannot_be_stored_from_the_payload_becomes_one_targeted_read() {
    let app = app().await;
    // A post the history has not shown: the platform's history is read.
    let mut unknown_post = comment("hook-p", "fb-p", "On a new post");
    unknown_post["postId"] = json!("ayr-new-post");
    assert_eq!(
        deliver(&app, &unknown_post).await,
        (200, json!({"outcome": "fetch"}))
    );
    // A comment without its item, and a reply whose parent is not stored: the post is read,
    // once for both (the dedup key).
    let mut bare = comment("hook-b", "fb-b", "x");
    bare.as_object_mut().expect("object").remove("comment");
    assert_eq!(deliver(&app, &bare).await.1["outcome"], "fetch");
    let mut orphan = comment("hook-o", "fb-o", "Answering an unknown comment");
    orphan["parentCommentId"] = json!("fb-not-stored");
    assert_eq!(deliver(&app, &orphan).await.1["outcome"], "fetch");
    // A direct message without its item: the platform's messages are read.
    let message = json!({"action": "messages", "hookId": "hook-m", "platform": "facebook",
        "conversationId": "conv-1"});
    assert_eq!(deliver(&app, &message).await.1["outcome"], "fetch");

    // Neither an id nor a post: the same bytes are the same delivery, and the history is read.
    let anonymous = json!({"action": "comments", "platform": "facebook", "comment": {}});
    assert_eq!(deliver(&app, &anonymous).await.1["outcome"], "fetch");
    assert_eq!(deliver(&app, &anonymous).await.1["outcome"], "duplicate");

    assert_eq!(app.count("SELECT count(*) FROM mentions").await, 0);
    let tasks = app
        .count(
            "SELECT count(*) FROM tasks WHERE kind = 'ingest' AND platform = 'facebook' \
             AND status = 'pending'",
        )
        .await;
    assert_eq!(tasks, 3, "history, the post's comments, the messages");
    assert_eq!(
        app.count(
            "SELECT count(*) FROM tasks WHERE payload->>'step' = 'comments' \
             AND payload->>'postId' = (SELECT id::text FROM posts)"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn a_received_message_is_stored_and_our_own_comments_and_messages_are_ignored() {
    let app = app().await;
    let message = |hook: &str, id: &str, action: &str| {
        json!({"action": "messages", "subAction": "messageReceived", "hookId": hook,
            "platform": "facebook", "conversationId": "conv-1",
            "message": {"id": id, "conversationId": "conv-1", "action": action,
                "senderId": "customer-7", "recipientId": "page-1",
                "senderDetails": {"name": "Ann Customer"}, "message": "Where is my order?",
                "platform": "facebook", "created": "2026-12-03T06:59:00Z"}})
    };
    let received = message("hook-m1", "msg-1", "received");
    assert_eq!(deliver(&app, &received).await.1["outcome"], "stored");
    assert_eq!(
        app.count(
            "SELECT count(*) FROM mentions WHERE type = 'message' AND platform_ref = 'msg-1' \
             AND provider_post_ref = 'conv-1' AND author_name = 'Ann Customer'"
        )
        .await,
        1
    );
    let sent = message("hook-m2", "msg-2", "sent");
    assert_eq!(deliver(&app, &sent).await.1["outcome"], "ignored");

    app.sql("INSERT INTO platform_status (platform, our_account_id) VALUES ('facebook', 'page-1')")
        .await;
    let mut ours = comment("hook-ours", "fb-ours", "Thanks for asking!");
    ours["comment"]["from"] = json!({"id": "page-1", "name": "Acme Outdoors"});
    assert_eq!(deliver(&app, &ours).await.1["outcome"], "ignored");
    assert_eq!(app.count("SELECT count(*) FROM mentions").await, 1);
}

#[tokio::test]
async fn signed_bodies_that_are_not_deliveries_are_400_and_oversized_ones_413() {
    let app = app().await;
    for body in [
        json!({"action": "scheduled", "hookId": "h1", "platform": "facebook"}),
        json!({"action": "comments", "hookId": "h2", "platform": "myspace", "postId": POST}),
        json!([1, 2, 3]),
    ] {
        let (status, answer) = deliver(&app, &body).await;
        assert_eq!(
            (status, &answer["code"]),
            (400, &json!("invalid_delivery")),
            "{body}"
        );
    }
    let big = comment("hook-big", "fb-big", &"x".repeat(70 * 1024));
    let (status, answer) = deliver(&app, &big).await;
    assert_eq!(
        (status, &answer["code"]),
        (413, &json!("payload_too_large"))
    );
    assert_eq!(stored(&app).await, (0, 0, 0));
}

/// A brand other than the default, with a (stand-in) sealed Profile-Key and the post.
const BRAND_B: &str = "00000000-0000-0000-0000-0000000000b2";

#[tokio::test]
async fn each_brand_takes_deliveries_at_its_own_url_under_its_own_secret_only() {
    let app = app().await;
    app.sql(&format!(
        "INSERT INTO brands (id, name, profile_key, profile_key_hash) \
             VALUES ('{BRAND_B}', 'Brand B', '\\x01', '\\x02'); \
         INSERT INTO posts (brand_id, platform, ayrshare_post_id, platform_post_id) \
             VALUES ('{BRAND_B}', 'facebook', '{POST}', 'fb-post-1')"
    ))
    .await;
    // Brand B's secret, as documented: HMAC-SHA256 of "brand:<id>" under WEBHOOK_SECRET, hex.
    let b_secret = sign(SECRET, format!("brand:{BRAND_B}").as_bytes());
    let b_url = format!("/v1/webhooks/ayrshare?brandId={BRAND_B}");
    let now = chrono::Utc::now().timestamp();
    let body = comment("hook-1", "fb-c-1", "Is this in stock?");

    // Signed for the default brand, replayed at brand B's URL: refused, nothing stored.
    let replayed = deliver_to(&app, &b_url, &body, SECRET, now).await;
    assert_problem(replayed, 401, "invalid_signature").await;
    assert_eq!(stored(&app).await, (0, 0, 0));
    // And the other way round.
    let replayed = deliver_to(&app, "/v1/webhooks/ayrshare", &body, &b_secret, now).await;
    assert_problem(replayed, 401, "invalid_signature").await;

    let taken = deliver_to(&app, &b_url, &body, &b_secret, now).await;
    assert_eq!(taken.status(), 200);
    assert_eq!(
        taken.json::<Value>().await.expect("json")["outcome"],
        "stored"
    );
    // The same delivery id at the default brand's URL is the default brand's own delivery.
    assert_eq!(deliver(&app, &body).await.1["outcome"], "stored");
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM mentions WHERE platform_ref = 'fb-c-1' AND brand_id = '{BRAND_B}'"
        ))
        .await,
        1
    );
    assert_eq!(
        app.count("SELECT count(*) FROM mentions WHERE platform_ref = 'fb-c-1'")
            .await,
        2,
        "one mention per brand"
    );
    let again = deliver_to(&app, &b_url, &body, &b_secret, now).await;
    assert_eq!(
        again.json::<Value>().await.expect("json")["outcome"],
        "duplicate"
    );

    // A disabled brand keeps what it has and takes nothing new.
    app.sql(&format!(
        "UPDATE brands SET disabled_at = now() WHERE id = '{BRAND_B}'"
    ))
    .await;
    let late = comment("hook-2", "fb-c-2", "Hello?");
    let ignored = deliver_to(&app, &b_url, &late, &b_secret, now).await;
    assert_eq!(
        ignored.json::<Value>().await.expect("json")["outcome"],
        "ignored"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM mentions WHERE platform_ref = 'fb-c-2'")
            .await,
        0
    );

    // Signed for a brand that does not exist: 404; a malformed brand id: 422.
    let unknown = "00000000-0000-0000-0000-0000000000c3";
    let secret = sign(SECRET, format!("brand:{unknown}").as_bytes());
    let path = format!("/v1/webhooks/ayrshare?brandId={unknown}");
    let answer = deliver_to(&app, &path, &late, &secret, now).await;
    assert_problem(answer, 404, "not_found").await;
    let answer = deliver_to(&app, "/v1/webhooks/ayrshare?brandId=x", &late, SECRET, now).await;
    assert_eq!(answer.status(), 422);
}
