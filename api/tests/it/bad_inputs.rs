//! Requests of the wrong shape get the right 4xx and never a 5xx.

use crate::app::{PASSWORD, TestApp, assert_problem};
use reqwest::Method;
use shared::domain::Role;

/// Method, path, content type, body, expected status, code and field.
type Case<'a> = (
    Method,
    String,
    &'a str,
    String,
    u16,
    &'a str,
    Option<&'a str>,
);

#[tokio::test]
async fn a_table_of_bad_inputs_each_get_the_right_4xx_and_none_a_5xx() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin, "root@example.com").await;
    let mention = crate::app::MentionSeed::comment("help", 1)
        .insert(&app)
        .await;
    let m = format!("/v1/mentions/{}", mention.id);
    let huge = "x".repeat(70 * 1024);
    let long_name = "n".repeat(201);
    let json = "application/json";
    let cases: Vec<Case> = vec![
        (Method::PUT, m.clone(), json, r#"{"userId": 42}"#.into(), 422, "validation_failed", Some("userId")),
        (Method::PUT, m.clone(), json, r#"{"userId": "abc"}"#.into(), 422, "validation_failed", Some("userId")),
        (Method::PUT, m.clone(), json, r#"{"disposition": "maybe"}"#.into(), 422, "validation_failed", Some("disposition")),
        (Method::PUT, m.clone(), json, r#"{"disposition": 7}"#.into(), 422, "validation_failed", Some("disposition")),
        (Method::PUT, m.clone(), json, r#"[1, 2]"#.into(), 422, "validation_failed", None),
        (Method::PUT, m.clone(), json, r#"{"userId": "#.into(), 400, "malformed_json", None),
        (Method::PUT, m.clone(), json, "not json at all".into(), 400, "malformed_json", None),
        (Method::PUT, m.clone(), "text/plain", r#"{"disposition": "reply"}"#.into(), 415, "unsupported_media_type", None),
        (Method::PUT, m.clone(), json, format!(r#"{{"disposition": "{huge}"}}"#), 413, "payload_too_large", None),
        (Method::PUT, "/v1/mentions/not-a-uuid".into(), json, "{}".into(), 422, "validation_failed", Some("id")),
        (Method::PUT, "/v1/mentions/0191e1c2-7b3a-7cc0-8f5e-1a2b3c4d5e6f".into(), json, "{}".into(), 404, "not_found", None),
        (Method::POST, "/v1/users".into(), json, r#"{"email": "a@b.co", "name": "A", "password": "long enough", "role": "owner"}"#.into(), 422, "validation_failed", Some("role")),
        (Method::POST, "/v1/users".into(), json, r#"{"email": "not-an-email", "name": "A", "password": "long enough", "role": "agent"}"#.into(), 422, "validation_failed", Some("email")),
        (Method::POST, "/v1/users".into(), json, format!(r#"{{"email": "a@b.co", "name": "{long_name}", "password": "long enough", "role": "agent"}}"#), 422, "validation_failed", Some("name")),
        (Method::POST, "/v1/users".into(), json, r#"{"email": "a@b.co", "name": "A", "password": "short", "role": "agent"}"#.into(), 422, "validation_failed", Some("password")),
        (Method::POST, "/v1/users".into(), json, r#"{"email": "a@b.co", "name": "A", "role": "agent"}"#.into(), 422, "validation_failed", Some("password")),
        (Method::POST, "/v1/users".into(), json, r#"{"email": "a@b.co", "name": "A", "password": "long enough", "role": "agent", "admin": true}"#.into(), 422, "validation_failed", None),
        // `brandIds` is a list of brands that exist, or absent: never null.
        (Method::POST, "/v1/users".into(), json, r#"{"email": "a@b.co", "name": "A", "password": "long enough", "role": "agent", "brandIds": null}"#.into(), 422, "validation_failed", Some("brandIds")),
        (Method::POST, "/v1/users".into(), json, r#"{"email": "a@b.co", "name": "A", "password": "long enough", "role": "agent", "brandIds": ["e3e70682-c209-1cac-a29f-6fbed82c07cd"]}"#.into(), 422, "validation_failed", Some("brandIds")),
        (Method::POST, "/v1/users/login".into(), json, r#"{"email": ["a"], "password": "x"}"#.into(), 422, "validation_failed", Some("email")),
        (Method::POST, "/v1/users/login".into(), "application/xml", "<login/>".into(), 415, "unsupported_media_type", None),
        (Method::POST, "/v1/tasks/nope/retry".into(), json, "".into(), 422, "validation_failed", Some("id")),
        (Method::GET, "/v1/audit?since=later".into(), json, "".into(), 422, "validation_failed", Some("since")),
        (Method::GET, "/v1/tasks?status=sleeping".into(), json, "".into(), 422, "validation_failed", Some("status")),
        (Method::GET, "/v1/nothing-here".into(), json, "".into(), 404, "route_not_found", None),
        (Method::DELETE, "/v1/mentions".into(), json, "".into(), 405, "method_not_allowed", None),
        // A body is a JSON object, never read by position.
        (Method::PUT, m.clone(), json, "[]".into(), 422, "validation_failed", None),
        (Method::POST, "/v1/users".into(), json, r#"["a@b.co", "A", "long enough", "agent"]"#.into(), 422, "validation_failed", None),
        (Method::POST, format!("{m}/reply"), json, r#""Thanks""#.into(), 422, "validation_failed", None),
        // NUL (which PostgreSQL cannot store) in any text, named.
        (Method::POST, "/v1/users".into(), json, r#"{"email": "a@b.co", "name": "A\u0000", "password": "long enough", "role": "agent"}"#.into(), 422, "validation_failed", Some("name")),
        (Method::POST, "/v1/users".into(), json, r#"{"email": "a\u0000@b.co", "name": "A", "password": "long enough", "role": "agent"}"#.into(), 422, "validation_failed", Some("email")),
        (Method::POST, "/v1/users".into(), json, r#"{"email": "a@b.co", "name": "A", "password": "long enough\u0000", "role": "agent"}"#.into(), 422, "validation_failed", Some("password")),
        (Method::POST, format!("{m}/reply"), json, r#"{"content": "Thanks\u0000"}"#.into(), 422, "validation_failed", Some("content")),
        (Method::PUT, m.clone(), json, r#"{"disposition": "reply\u0000"}"#.into(), 422, "validation_failed", Some("disposition")),
        (Method::GET, "/v1/mentions?q=a%00b".into(), json, "".into(), 422, "validation_failed", Some("q")),
        (Method::GET, "/v1/audit?actor=a%00".into(), json, "".into(), 422, "validation_failed", Some("actor")),
        (Method::GET, "/v1/audit?entity=%00".into(), json, "".into(), 422, "validation_failed", Some("entity")),
        (Method::GET, "/v1/audit?action=x%00".into(), json, "".into(), 422, "validation_failed", Some("action")),
        (Method::GET, "/v1/tasks?kind=reply%00".into(), json, "".into(), 422, "validation_failed", Some("kind")),
    ];
    for (method, path, content_type, body, status, code, field) in cases {
        let response = app
            .send(
                app.request(method.clone(), &path, Some(&admin.token))
                    .header("content-type", content_type)
                    .body(body.clone()),
            )
            .await;
        let shown = format!(
            "{method} {path} {}",
            &body.chars().take(80).collect::<String>()
        );
        assert!(
            response.status().is_client_error(),
            "{shown}: {}",
            response.status()
        );
        let problem = assert_problem(response, status, code).await;
        if let Some(field) = field {
            assert_eq!(problem["field"], field, "{shown}: {problem}");
        }
    }
    let bad_if_match = app
        .send(
            app.request(Method::PUT, &m, Some(&admin.token))
                .header("If-Match", "yesterday")
                .json(&serde_json::json!({})),
        )
        .await;
    let problem = assert_problem(bad_if_match, 422, "validation_failed").await;
    assert_eq!(problem["field"], "If-Match");
}

#[tokio::test]
async fn nul_in_a_login_without_a_token_and_an_array_for_a_login_are_refused_by_name() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin, "root@example.com").await;
    let login = |body: &'static str| {
        app.send(
            app.request(Method::POST, "/v1/users/login", None)
                .header("content-type", "application/json")
                .body(body),
        )
    };
    let problem = assert_problem(
        login(r#"{"email": "a\u0000", "password": "x"}"#).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(problem["field"], "email");
    // Read by position, this would be the admin's email and password.
    let by_position = format!(r#"["{}", "{PASSWORD}"]"#, admin.user.email);
    let response = app
        .send(
            app.request(Method::POST, "/v1/users/login", None)
                .header("content-type", "application/json")
                .body(by_position),
        )
        .await;
    assert_problem(response, 422, "validation_failed").await;
}

#[tokio::test]
async fn an_agent_on_an_admin_route_is_refused_403_whatever_the_body() {
    let app = TestApp::spawn().await;
    let agent = app.user(Role::Agent, "agent@example.com").await;
    let json = "application/json";
    let cases: [(Method, &str, &str, &str); 4] = [
        (
            Method::POST,
            "/v1/users",
            json,
            r#"{"email": "incomplete"}"#,
        ),
        (Method::POST, "/v1/users", json, "not json"),
        (Method::POST, "/v1/users", "text/plain", "x"),
        (Method::POST, "/v1/sync?platform=nowhere", json, ""),
    ];
    for (method, path, content_type, body) in cases {
        let response = app
            .send(
                app.request(method.clone(), path, Some(&agent.token))
                    .header("content-type", content_type)
                    .body(body),
            )
            .await;
        assert_problem(response, 403, "forbidden").await;
    }
}
