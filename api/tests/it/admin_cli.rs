//! `api create-admin`.

use crate::app::TestApp;
use reqwest::Method;
use serde_json::json;
use shared::testing::Process;
use std::collections::HashMap;
use std::time::Duration;

#[tokio::test]
async fn create_admin_makes_an_admin_who_can_log_in_and_refuses_a_second_with_the_same_email() {
    let app = TestApp::spawn().await;
    let env: HashMap<String, String> = [
        ("DATABASE_URL", app.db.url()),
        ("SOCIAL_MEDIA_API_URL", "http://127.0.0.1:9/api"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let args = [
        "create-admin",
        "--email",
        "root@example.com",
        "--password",
        "first admin pw",
    ];
    let mut first = Process::spawn("api", &args, &env);
    let status = first.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "{}", first.output());

    let login = app
        .send(
            app.request(Method::POST, "/v1/users/login", None)
                .json(&json!({"email": "root@example.com", "password": "first admin pw"})),
        )
        .await;
    assert_eq!(login.status(), 200);
    let body: serde_json::Value = login.json().await.expect("json");
    assert_eq!(body["user"]["role"], "admin");

    let mut second = Process::spawn("api", &args, &env);
    let status = second.wait_exit(Duration::from_secs(30));
    assert!(!status.success());
    assert!(
        second.output().contains("already exists"),
        "{}",
        second.output()
    );
}
