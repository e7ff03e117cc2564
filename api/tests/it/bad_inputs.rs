//! Requests of the wrong shape get the right 4xx and never a 5xx.

use crate::app::{TestApp, assert_problem};
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
        (Method::POST, "/v1/users/login".into(), json, r#"{"email": ["a"], "password": "x"}"#.into(), 422, "validation_failed", Some("email")),
        (Method::POST, "/v1/users/login".into(), "application/xml", "<login/>".into(), 415, "unsupported_media_type", None),
        (Method::POST, "/v1/tasks/nope/retry".into(), json, "".into(), 422, "validation_failed", Some("id")),
        (Method::GET, "/v1/audit?since=later".into(), json, "".into(), 422, "validation_failed", Some("since")),
        (Method::GET, "/v1/tasks?status=sleeping".into(), json, "".into(), 422, "validation_failed", Some("status")),
        (Method::GET, "/v1/nothing-here".into(), json, "".into(), 404, "route_not_found", None),
        (Method::DELETE, "/v1/mentions".into(), json, "".into(), 405, "method_not_allowed", None),
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
