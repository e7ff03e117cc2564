//! Background tasks: the list and the admin's manual retry.

use crate::app::{TestApp, assert_problem};
use reqwest::Method;
use serde_json::Value;
use shared::domain::Role;

/// Inserts a task and returns its id.
async fn task(app: &TestApp, kind: &str, platform: &str, status: &str, dedup: &str) -> String {
    let id = uuid::Uuid::now_v7();
    app.sql(&format!(
        "INSERT INTO tasks (id, kind, platform, status, dedup_key, attempts, last_error, finished_at) \
         VALUES ('{id}', '{kind}', '{platform}', '{status}', '{dedup}', 3, \
                 CASE WHEN '{status}' IN ('dead', 'failed') THEN 'provider said 500' END, \
                 CASE WHEN '{status}' IN ('dead', 'failed', 'succeeded') THEN now() END)"
    ))
    .await;
    id.to_string()
}

fn ids(page: &Value) -> Vec<&str> {
    page["result"]
        .as_array()
        .expect("result")
        .iter()
        .map(|t| t["id"].as_str().expect("id"))
        .collect()
}

#[tokio::test]
async fn the_task_list_filters_by_status_kind_and_platform_and_pages() {
    let app = TestApp::spawn().await;
    let ann = app.user(Role::Agent, "ann@example.com").await;
    let dead = task(&app, "ingest", "twitter", "dead", "a").await;
    let pending = task(&app, "reply", "twitter", "pending", "b").await;
    let failed = task(&app, "ingest", "facebook", "failed", "c").await;

    let page = app
        .get_json("/v1/tasks?status=dead,failed", &ann.token)
        .await;
    assert_eq!(ids(&page), [failed.as_str(), dead.as_str()]);
    let page = app.get_json("/v1/tasks?kind=reply", &ann.token).await;
    assert_eq!(ids(&page), [pending.as_str()]);
    let page = app
        .get_json("/v1/tasks?platform=twitter&kind=ingest", &ann.token)
        .await;
    assert_eq!(ids(&page), [dead.as_str()]);
    assert_eq!(page["result"][0]["lastError"], "provider said 500");

    let first = app.get_json("/v1/tasks?limit=2", &ann.token).await;
    let cursor = first["meta"]["nextCursor"].as_str().expect("more");
    let second = app
        .get_json(&format!("/v1/tasks?limit=2&cursor={cursor}"), &ann.token)
        .await;
    assert_eq!(ids(&second), [dead.as_str()]);
    assert_eq!(second["meta"]["nextCursor"], Value::Null);
}

#[tokio::test]
async fn an_admin_retries_a_dead_task_and_the_audit_row_keeps_its_last_error() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin, "root@example.com").await;
    let dead = task(&app, "ingest", "twitter", "dead", "ingest:twitter").await;

    let response = app
        .send(app.request(
            Method::POST,
            &format!("/v1/tasks/{dead}/retry"),
            Some(&admin.token),
        ))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["status"], "pending");
    assert_eq!(body["attempts"], 0);
    assert_eq!(body["lastError"], Value::Null);
    assert_eq!(body["finishedAt"], Value::Null);

    let audit = app
        .get_json(
            &format!("/v1/audit?entity=task&entityId={dead}"),
            &admin.token,
        )
        .await;
    let row = &audit["result"][0];
    assert_eq!(row["action"], "task.retried");
    assert_eq!(row["actor"], format!("user:{}", admin.user.id));
    assert_eq!(row["payload"]["lastError"], "provider said 500");
    assert_eq!(row["payload"]["previousStatus"], "dead");

    // Pending now: a second retry is refused.
    let again = app
        .send(app.request(
            Method::POST,
            &format!("/v1/tasks/{dead}/retry"),
            Some(&admin.token),
        ))
        .await;
    assert_problem(again, 409, "task_not_retryable").await;
}

#[tokio::test]
async fn retrying_while_another_active_task_holds_the_dedup_key_is_a_409() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin, "root@example.com").await;
    let failed = task(&app, "ingest", "twitter", "failed", "ingest:twitter").await;
    task(&app, "ingest", "twitter", "running", "ingest:twitter").await;

    let response = app
        .send(app.request(
            Method::POST,
            &format!("/v1/tasks/{failed}/retry"),
            Some(&admin.token),
        ))
        .await;
    assert_problem(response, 409, "task_duplicate_active").await;
    let page = app.get_json("/v1/tasks?status=failed", &admin.token).await;
    assert_eq!(ids(&page), [failed.as_str()], "still failed");

    let unknown = app
        .send(app.request(
            Method::POST,
            "/v1/tasks/0191e1c2-7b3a-7cc0-8f5e-1a2b3c4d5e6f/retry",
            Some(&admin.token),
        ))
        .await;
    assert_problem(unknown, 404, "not_found").await;
}
