//! `POST /v1/sync`: an ingest now, once per platform however often it is asked.

use crate::app::{TestApp, assert_problem};
use reqwest::Method;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use shared::db::entities::tasks;
use shared::domain::{Role, TaskStatus};

async fn sync(app: &TestApp, query: &str, token: Option<&str>) -> reqwest::Response {
    app.send(app.request(Method::POST, &format!("/v1/sync{query}"), token))
        .await
}

#[tokio::test]
async fn an_admin_asking_twice_gets_one_ingest_per_platform_while_it_is_active() {
    let app = TestApp::spawn().await;
    let agent = app.user(Role::Admin, "admin@example.com").await;

    let first = sync(&app, "?platform=twitter", Some(&agent.token)).await;
    assert_eq!(first.status().as_u16(), 202);
    let first: serde_json::Value = first.json().await.expect("json");
    assert_eq!(first["result"][0]["platform"], "twitter");
    assert_eq!(first["result"][0]["created"], true);

    let again = sync(&app, "?platform=twitter", Some(&agent.token)).await;
    assert_eq!(again.status().as_u16(), 202);
    let again: serde_json::Value = again.json().await.expect("json");
    assert_eq!(again["result"][0]["created"], false);
    assert_eq!(again["result"][0]["taskId"], first["result"][0]["taskId"]);

    let active = tasks::Entity::find()
        .filter(tasks::Column::Status.eq(TaskStatus::Pending))
        .count(app.db.conn())
        .await
        .expect("count tasks");
    assert_eq!(active, 1, "one ingest task for twitter");

    // Without a platform: every configured platform (twitter's is still the same task).
    let all = sync(&app, "", Some(&agent.token)).await;
    let all: serde_json::Value = all.json().await.expect("json");
    let result = all["result"].as_array().expect("result");
    assert_eq!(result.len(), 3, "{all}");
    let created = result.iter().filter(|r| r["created"] == true).count();
    assert_eq!(created, 2, "{all}");
}

#[tokio::test]
async fn sync_needs_an_admin_and_a_configured_platform() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin, "admin@example.com").await;
    let agent = app.user(Role::Agent, "agent@example.com").await;
    assert_problem(
        sync(&app, "?platform=twitter", None).await,
        401,
        "unauthorized",
    )
    .await;
    // It spends the provider budget every agent's replies depend on.
    assert_problem(
        sync(&app, "?platform=twitter", Some(&agent.token)).await,
        403,
        "forbidden",
    )
    .await;
    let none = tasks::Entity::find()
        .count(app.db.conn())
        .await
        .expect("count");
    assert_eq!(none, 0, "nothing queued for the agent");
    let refused = sync(&app, "?platform=tiktok", Some(&admin.token)).await;
    let body = assert_problem(refused, 422, "validation_failed").await;
    assert!(body.to_string().contains("platform"), "{body}");
}
