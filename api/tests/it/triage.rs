//! Assigning, unassigning and dispositions: transitions, optimistic concurrency, audit.

use crate::app::{MentionSeed, TestApp, assert_problem};
use reqwest::Method;
use serde_json::{Value, json};
use shared::domain::Role;

async fn put(
    app: &TestApp,
    token: &str,
    id: &str,
    body: Value,
    if_match: Option<&str>,
) -> reqwest::Response {
    let mut request = app
        .request(Method::PUT, &format!("/v1/mentions/{id}"), Some(token))
        .json(&body);
    if let Some(version) = if_match {
        request = request.header("If-Match", version);
    }
    app.send(request).await
}

#[tokio::test]
async fn assign_unassign_and_assign_again_each_write_an_audit_row_with_the_acting_user() {
    let app = TestApp::spawn().await;
    let lead = app.user(Role::Agent, "lead@example.com").await;
    let ann = app.user(Role::Agent, "ann@example.com").await;
    let bob = app.user(Role::Agent, "bob@example.com").await;
    let mention = MentionSeed::comment("help", 1).insert(&app).await;
    let id = mention.id.to_string();

    let assigned = put(&app, &lead.token, &id, json!({"userId": ann.user.id}), None).await;
    assert_eq!(assigned.status(), 200);
    let body: Value = assigned.json().await.expect("json");
    assert_eq!(body["state"], "assignment");
    assert_eq!(body["userId"], ann.user.id.to_string());
    assert_eq!(body["version"], 2);

    let unassigned: Value = put(&app, &lead.token, &id, json!({"userId": null}), None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(unassigned["state"], Value::Null);
    assert_eq!(unassigned["userId"], Value::Null);

    let reassigned: Value = put(
        &app,
        &lead.token,
        &id,
        json!({"userId": bob.user.id}),
        Some("3"),
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(reassigned["userId"], bob.user.id.to_string());
    assert_eq!(reassigned["version"], 4);

    let audit = app
        .get_json(&format!("/v1/mentions/{id}/audit"), &lead.token)
        .await;
    let rows = audit["result"].as_array().expect("rows");
    let actions: Vec<&str> = rows
        .iter()
        .map(|r| r["action"].as_str().expect("action"))
        .collect();
    assert_eq!(
        actions,
        ["mention.assigned", "mention.unassigned", "mention.assigned"]
            .iter()
            .rev()
            .copied()
            .collect::<Vec<_>>()
    );
    let actor = format!("user:{}", lead.user.id);
    assert!(rows.iter().all(|r| r["actor"] == actor.as_str()), "{audit}");
    assert_eq!(rows[0]["payload"]["userId"], bob.user.id.to_string());
    assert_eq!(rows[2]["payload"]["toState"], "assignment");

    let verify_admin = app.user(Role::Admin, "root@example.com").await;
    let verify = app.get_json("/v1/audit/verify", &verify_admin.token).await;
    assert_eq!(verify["valid"], true, "{verify}");
    assert_eq!(verify["rowsChecked"], 3);
}

#[tokio::test]
async fn a_stale_if_match_is_refused_with_412_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let ann = app.user(Role::Agent, "ann@example.com").await;
    let mention = MentionSeed::comment("help", 1).insert(&app).await;
    let id = mention.id.to_string();
    let first = put(
        &app,
        &ann.token,
        &id,
        json!({"disposition": "reply"}),
        Some("\"1\""),
    )
    .await;
    assert_eq!(first.status(), 200);
    assert_eq!(
        first.headers().get("etag").and_then(|v| v.to_str().ok()),
        Some("\"2\"")
    );

    // A second agent still holding version 1.
    let stale = put(
        &app,
        &ann.token,
        &id,
        json!({"disposition": "ignore"}),
        Some("\"1\""),
    )
    .await;
    let problem = assert_problem(stale, 412, "version_mismatch").await;
    assert_eq!(problem["details"]["currentVersion"], 2);
    let now = app
        .get_json(&format!("/v1/mentions/{id}"), &ann.token)
        .await;
    assert_eq!(now["disposition"], "reply");

    // Without If-Match the last write wins; null clears.
    let cleared: Value = put(&app, &ann.token, &id, json!({"disposition": null}), None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(cleared["disposition"], Value::Null);
    let audit = app
        .get_json(&format!("/v1/mentions/{id}/audit"), &ann.token)
        .await;
    assert_eq!(audit["result"][0]["action"], "mention.disposition_cleared");
    assert_eq!(audit["result"][1]["action"], "mention.disposition_set");
}

#[tokio::test]
async fn a_replied_mention_cannot_be_reassigned_409_naming_both_states() {
    let app = TestApp::spawn().await;
    let ann = app.user(Role::Agent, "ann@example.com").await;
    let mention = MentionSeed::comment("thanks!", 1).insert(&app).await;
    app.sql(&format!(
        "UPDATE mentions SET state = 'replied', assignee_id = '{}' WHERE id = '{}'",
        ann.user.id, mention.id
    ))
    .await;
    let bob = app.user(Role::Agent, "bob@example.com").await;
    let response = put(
        &app,
        &ann.token,
        &mention.id.to_string(),
        json!({"userId": bob.user.id}),
        None,
    )
    .await;
    let problem = assert_problem(response, 409, "illegal_transition").await;
    let detail = problem["detail"].as_str().expect("detail");
    assert!(
        detail.contains("replied") && detail.contains("assignment"),
        "{detail}"
    );
    assert_eq!(
        problem["details"],
        json!({"from": "replied", "to": "assignment"})
    );
    let audit = app
        .get_json(&format!("/v1/mentions/{}/audit", mention.id), &ann.token)
        .await;
    assert_eq!(audit["result"], json!([]));
}

#[tokio::test]
async fn assigning_to_an_unknown_user_is_a_422_naming_user_id() {
    let app = TestApp::spawn().await;
    let ann = app.user(Role::Agent, "ann@example.com").await;
    let mention = MentionSeed::comment("help", 1).insert(&app).await;
    let response = put(
        &app,
        &ann.token,
        &mention.id.to_string(),
        json!({"userId": "0191e1c2-7b3a-7cc0-8f5e-1a2b3c4d5e6f"}),
        None,
    )
    .await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(problem["field"], "userId");
    let now = app
        .get_json(&format!("/v1/mentions/{}", mention.id), &ann.token)
        .await;
    assert_eq!(now["version"], 1);
}

#[tokio::test]
async fn patch_does_what_put_does() {
    let app = TestApp::spawn().await;
    let ann = app.user(Role::Agent, "ann@example.com").await;
    let mention = MentionSeed::comment("help", 1).insert(&app).await;
    let response = app
        .send(
            app.request(
                Method::PATCH,
                &format!("/v1/mentions/{}", mention.id),
                Some(&ann.token),
            )
            .json(&json!({"userId": ann.user.id, "disposition": "reply"})),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["state"], "assignment");
    assert_eq!(body["disposition"], "reply");
}
