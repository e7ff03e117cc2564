//! Managing accounts: an admin disables, enables, re-roles and resets users; a user changes
//! their own password and ends their own sessions. Every change is audited.

use crate::app::{PASSWORD, SignedIn, TestApp, assert_problem};
use reqwest::Method;
use serde_json::{Value, json};
use shared::domain::Role;

async fn patch_user(
    app: &TestApp,
    admin: &SignedIn,
    user: &SignedIn,
    body: Value,
) -> reqwest::Response {
    let path = format!("/v1/users/{}", user.user.id);
    app.send(
        app.request(Method::PATCH, &path, Some(&admin.token))
            .json(&body),
    )
    .await
}

async fn login(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    app.send(
        app.request(Method::POST, "/v1/users/login", None)
            .json(&json!({ "email": email, "password": password })),
    )
    .await
}

async fn me_status(app: &TestApp, token: &str) -> u16 {
    app.send(app.request(Method::GET, "/v1/me", Some(token)))
        .await
        .status()
        .as_u16()
}

/// The actions of the audit rows about `entity_id`, oldest first, and their payloads.
async fn audited(app: &TestApp, admin: &SignedIn, entity_id: &str) -> Vec<(String, Value)> {
    let page = app
        .get_json(
            &format!("/v1/audit?entityId={entity_id}&limit=100"),
            &admin.token,
        )
        .await;
    let mut rows: Vec<(String, Value)> = page["result"]
        .as_array()
        .expect("result")
        .iter()
        .map(|row| {
            (
                row["action"].as_str().unwrap_or_default().to_owned(),
                row["payload"].clone(),
            )
        })
        .collect();
    rows.reverse();
    rows
}

#[tokio::test]
async fn a_disabled_users_token_is_refused_on_the_next_request_and_they_cannot_sign_in() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin, "root@example.com").await;
    let ann = app.user(Role::Agent, "ann@example.com").await;
    assert_eq!(me_status(&app, &ann.token).await, 200);

    let disabled = patch_user(&app, &admin, &ann, json!({"disabled": true})).await;
    assert_eq!(disabled.status(), 200);
    let body: Value = disabled.json().await.expect("json");
    assert_eq!(body["disabled"], true);
    assert_eq!(me_status(&app, &ann.token).await, 401);
    assert_problem(
        login(&app, "ann@example.com", PASSWORD).await,
        403,
        "forbidden",
    )
    .await;
    let listed = app.get_json("/v1/users", &admin.token).await;
    let shown = listed
        .as_array()
        .expect("users")
        .iter()
        .find(|u| u["email"] == "ann@example.com")
        .expect("ann listed")
        .clone();
    assert_eq!(shown["disabled"], true);

    // Enabled again: she signs in anew; the old token stays revoked.
    let enabled = patch_user(&app, &admin, &ann, json!({"disabled": false})).await;
    assert_eq!(enabled.status(), 200);
    assert_eq!(login(&app, "ann@example.com", PASSWORD).await.status(), 200);
    assert_eq!(me_status(&app, &ann.token).await, 401);
    let actions: Vec<(String, Value)> = audited(&app, &admin, &ann.user.id.to_string()).await;
    let updates: Vec<&Value> = actions
        .iter()
        .filter(|(action, _)| action == "user.updated")
        .map(|(_, payload)| payload)
        .collect();
    assert_eq!(
        updates,
        [&json!({"disabled": true}), &json!({"disabled": false})]
    );
}

#[tokio::test]
async fn a_role_change_takes_effect_on_the_next_request() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin, "root@example.com").await;
    let ann = app.user(Role::Agent, "ann@example.com").await;
    let create = |token: String| {
        app.send(
            app.request(Method::POST, "/v1/users", Some(&token))
                .json(&json!({
            "email": format!("new{}@example.com", rand_suffix()),
            "name": "New", "password": "long enough", "role": "agent"})),
        )
    };
    assert_eq!(create(ann.token.clone()).await.status(), 403);
    let promoted = patch_user(&app, &admin, &ann, json!({"role": "admin"})).await;
    assert_eq!(promoted.status(), 200);
    assert_eq!(create(ann.token.clone()).await.status(), 201);
}

fn rand_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}

#[tokio::test]
async fn the_last_enabled_admin_can_be_neither_demoted_nor_disabled() {
    let app = TestApp::spawn().await;
    let root = app.user(Role::Admin, "root@example.com").await;
    for change in [json!({"role": "agent"}), json!({"disabled": true})] {
        let refused = patch_user(&app, &root, &root, change).await;
        assert_problem(refused, 409, "last_admin").await;
    }
    assert_eq!(me_status(&app, &root.token).await, 200);
    // With a second admin, the first may step down.
    let other = app.user(Role::Admin, "other@example.com").await;
    assert_eq!(
        patch_user(&app, &other, &root, json!({"role": "agent"}))
            .await
            .status(),
        200
    );
    assert_problem(
        patch_user(&app, &other, &other, json!({"disabled": true})).await,
        409,
        "last_admin",
    )
    .await;
}

#[tokio::test]
async fn an_admin_sets_a_new_password_and_the_users_sessions_end() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin, "root@example.com").await;
    let ann = app.user(Role::Agent, "ann@example.com").await;
    let reset = patch_user(&app, &admin, &ann, json!({"password": "a brand new one"})).await;
    assert_eq!(reset.status(), 200);
    assert_eq!(me_status(&app, &ann.token).await, 401);
    assert_eq!(login(&app, "ann@example.com", PASSWORD).await.status(), 401);
    assert_eq!(
        login(&app, "ann@example.com", "a brand new one")
            .await
            .status(),
        200
    );
    let actions = audited(&app, &admin, &ann.user.id.to_string()).await;
    let last = actions.last().expect("audited");
    assert_eq!(
        last,
        &("user.updated".to_owned(), json!({"reset": "password"}))
    );
    assert!(!last.1.to_string().contains("brand new"));

    for (body, field) in [
        (json!({}), None),
        (json!({"password": "short"}), Some("password")),
        (json!({"role": "owner"}), Some("role")),
    ] {
        let problem = assert_problem(
            patch_user(&app, &admin, &ann, body.clone()).await,
            422,
            "validation_failed",
        )
        .await;
        if let Some(field) = field {
            assert_eq!(problem["field"], field, "{body}");
        }
    }
    let path = format!("/v1/users/{}", uuid::Uuid::new_v4());
    let missing = app
        .send(
            app.request(Method::PATCH, &path, Some(&admin.token))
                .json(&json!({"disabled": true})),
        )
        .await;
    assert_problem(missing, 404, "not_found").await;
}

#[tokio::test]
async fn a_user_changes_their_password_and_only_this_session_survives() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin, "root@example.com").await;
    let ann = app.user(Role::Agent, "ann@example.com").await;
    let other_session = app.token_for(&ann.user).await;
    let change = |old: &str, new: &str| {
        app.send(
            app.request(Method::POST, "/v1/me/password", Some(&ann.token))
                .json(&json!({"oldPassword": old, "newPassword": new})),
        )
    };
    let wrong = assert_problem(
        change("not it", "a brand new one").await,
        403,
        "wrong_password",
    )
    .await;
    assert_eq!(wrong["field"], "oldPassword");
    let short = assert_problem(change(PASSWORD, "short").await, 422, "validation_failed").await;
    assert_eq!(short["field"], "newPassword");

    assert_eq!(change(PASSWORD, "a brand new one").await.status(), 204);
    assert_eq!(me_status(&app, &ann.token).await, 200);
    assert_eq!(me_status(&app, &other_session).await, 401);
    assert_eq!(
        login(&app, "ann@example.com", "a brand new one")
            .await
            .status(),
        200
    );
    let actions = audited(&app, &admin, &ann.user.id.to_string()).await;
    assert!(
        actions
            .iter()
            .any(|(action, payload)| action == "user.password_changed"
                && payload["sessionsEnded"] == 1),
        "{actions:?}"
    );
}

#[tokio::test]
async fn a_user_lists_and_revokes_their_own_sessions_and_no_one_elses() {
    let app = TestApp::spawn().await;
    let ann = app.user(Role::Agent, "ann@example.com").await;
    let bob = app.user(Role::Agent, "bob@example.com").await;
    let laptop = app.token_for(&ann.user).await;
    let listed = app.get_json("/v1/me/tokens", &ann.token).await;
    let sessions = listed.as_array().expect("tokens");
    assert_eq!(sessions.len(), 2, "{listed}");
    assert_eq!(sessions.iter().filter(|t| t["current"] == true).count(), 1);
    let laptop_id = sessions
        .iter()
        .find(|t| t["current"] == false)
        .and_then(|t| t["id"].as_str())
        .expect("the other session")
        .to_owned();

    let revoke = |token: &str, id: &str| {
        app.send(app.request(Method::DELETE, &format!("/v1/me/tokens/{id}"), Some(token)))
    };
    assert_problem(revoke(&bob.token, &laptop_id).await, 404, "not_found").await;
    assert_eq!(
        me_status(&app, &laptop).await,
        200,
        "bob cannot end ann's session"
    );
    assert_eq!(revoke(&ann.token, &laptop_id).await.status(), 204);
    assert_eq!(me_status(&app, &laptop).await, 401);
    assert_problem(revoke(&ann.token, &laptop_id).await, 404, "not_found").await;
    let left = app.get_json("/v1/me/tokens", &ann.token).await;
    assert_eq!(left.as_array().map(Vec::len), Some(1));
}
