//! `POST|GET|DELETE /hook/webhook`: registrations per profile, validated, cleared by reset.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Answer, TestSim, small, spawn, time};

/// A `/hook/webhook` request.
async fn hooks(t: &TestSim, method: Method, body: Option<&Value>, profile: Option<&str>) -> Answer {
    t.api(method, "/hook/webhook", body, profile).await
}

#[tokio::test]
async fn a_webhook_is_registered_replaced_listed_and_deleted_as_documented() {
    let t = spawn(small()).await;
    let empty = hooks(&t, Method::GET, None, None).await;
    assert_eq!(empty.status, 200);
    assert_eq!(empty.body, json!({"status": "success"}));

    let body =
        json!({"action": "comments", "url": "https://hooks.example/one", "secret": "s3cret"});
    let registered = hooks(&t, Method::POST, Some(&body), None).await;
    assert_eq!(registered.status, 200, "{}", registered.body);
    assert_eq!(registered.body["status"], "success");
    assert_eq!(registered.body["action"], "comments");
    assert_eq!(registered.body["url"], "https://hooks.example/one");
    let user = t.api_get("/user").await;
    assert_eq!(registered.body["refId"], user.body["refId"]);

    let again =
        json!({"action": "comments", "url": "https://hooks.example/two", "secret": "s3cret"});
    assert_eq!(
        hooks(&t, Method::POST, Some(&again), None).await.status,
        200
    );
    let local = json!({"action": "messages", "url": "http://127.0.0.1:9000/hook"});
    assert_eq!(
        hooks(&t, Method::POST, Some(&local), None).await.status,
        200
    );

    let listed = hooks(&t, Method::GET, None, None).await;
    assert_eq!(listed.body["status"], "success");
    assert_eq!(
        listed.body["comments"], "https://hooks.example/two",
        "replaced"
    );
    assert_eq!(listed.body["messages"], "http://127.0.0.1:9000/hook");
    time(&listed.body["updated"]);
    assert!(
        !listed.body.to_string().contains("s3cret"),
        "never the secret"
    );

    let deleted = hooks(
        &t,
        Method::DELETE,
        Some(&json!({"action": "comments"})),
        None,
    )
    .await;
    assert_eq!(deleted.status, 200);
    assert_eq!(
        deleted.body,
        json!({"status": "success", "action": "comments"})
    );
    let after = hooks(&t, Method::GET, None, None).await;
    assert!(after.body.get("comments").is_none(), "{}", after.body);
    assert_eq!(after.body["messages"], "http://127.0.0.1:9000/hook");

    let missing = hooks(
        &t,
        Method::DELETE,
        Some(&json!({"action": "comments"})),
        None,
    )
    .await;
    missing.assert_error(404);
    assert_eq!(missing.body["code"], 185);
}

#[tokio::test]
async fn webhooks_belong_to_the_profile_that_registered_them() {
    let t = spawn(small()).await;
    let body = json!({"action": "feed", "url": "https://hooks.example/b"});
    let b = hooks(&t, Method::POST, Some(&body), Some("brand-b")).await;
    assert_eq!(b.status, 200);
    let as_b = hooks(&t, Method::GET, None, Some("brand-b")).await;
    assert_eq!(as_b.body["feed"], "https://hooks.example/b");
    let as_primary = hooks(&t, Method::GET, None, None).await;
    assert_eq!(as_primary.body, json!({"status": "success"}));
    hooks(&t, Method::DELETE, Some(&json!({"action": "feed"})), None)
        .await
        .assert_error(404);

    let reset = t.control_post("/reset", &json!({})).await;
    assert_eq!(reset.status, 200);
    let cleared = hooks(&t, Method::GET, None, Some("brand-b")).await;
    assert_eq!(cleared.body, json!({"status": "success"}));
}

#[tokio::test]
async fn unknown_actions_and_uncallable_urls_are_refused() {
    let t = spawn(small()).await;
    for body in [
        json!({"action": "everything", "url": "https://hooks.example/x"}),
        json!({"url": "https://hooks.example/x"}),
        json!({"action": "social", "url": "http://hooks.example/x"}),
        json!({"action": "social", "url": "ftp://hooks.example/x"}),
        json!({"action": "social", "url": "not a url"}),
        json!({"action": "social"}),
    ] {
        hooks(&t, Method::POST, Some(&body), None)
            .await
            .assert_error(400);
    }
    hooks(&t, Method::DELETE, Some(&json!({"action": "nope"})), None)
        .await
        .assert_error(400);
    for action in ["social", "scheduled", "feed", "batch", "accountActivity"] {
        let body = json!({"action": action, "url": "https://localhost/hook"});
        assert_eq!(
            hooks(&t, Method::POST, Some(&body), None).await.status,
            200,
            "{action}"
        );
    }
    let listed = hooks(&t, Method::GET, None, None).await;
    assert_eq!(listed.body["accountActivity"], "https://localhost/hook");
}
