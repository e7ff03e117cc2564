//! Sign-in, tokens and roles.

use crate::app::{PASSWORD, TestApp, assert_problem};
use reqwest::Method;
use serde_json::json;
use shared::db::users::LoginThrottle;
use shared::domain::Role;

async fn login(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    app.send(
        app.request(Method::POST, "/v1/users/login", None)
            .json(&json!({ "email": email, "password": password })),
    )
    .await
}

#[tokio::test]
async fn login_with_the_right_password_returns_a_token_that_opens_protected_routes() {
    let app = TestApp::spawn().await;
    let agent = app.user(Role::Agent, "Ann@Example.com").await;

    // Any case of the email works.
    let response = login(&app, "ann@example.COM", PASSWORD).await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["user"]["id"], agent.user.id.to_string());
    assert_eq!(body["user"]["role"], "agent");
    assert_eq!(body["user"]["email"], "Ann@Example.com");
    let token = body["token"].as_str().expect("token");
    assert!(token.starts_with("smt_"), "{token}");

    let me = app.get_json("/v1/me", token).await;
    assert_eq!(me["id"], agent.user.id.to_string());
    let users = app.get_json("/v1/users", token).await;
    assert_eq!(
        users,
        json!([{
            "id": agent.user.id.to_string(), "email": "Ann@Example.com", "name": "Ann", "role": "agent",
            "disabled": false, "brandIds": [shared::brands::DEFAULT_BRAND.to_string()]
        }])
    );
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_401() {
    let app = TestApp::spawn().await;
    app.user(Role::Agent, "ann@example.com").await;

    let wrong = assert_problem(
        login(&app, "ann@example.com", "not the password").await,
        401,
        "invalid_credentials",
    )
    .await;
    let unknown = assert_problem(
        login(&app, "bob@example.com", PASSWORD).await,
        401,
        "invalid_credentials",
    )
    .await;
    assert_eq!(wrong, unknown);
}

#[tokio::test]
async fn protected_routes_answer_401_without_a_valid_token() {
    let app = TestApp::spawn().await;
    let routes = [
        (Method::GET, "/v1/me"),
        (Method::GET, "/v1/users"),
        (Method::POST, "/v1/users"),
        (Method::GET, "/v1/mentions"),
        (
            Method::GET,
            "/v1/mentions/0191e1c2-7b3a-7cc0-8f5e-1a2b3c4d5e6f",
        ),
        (
            Method::PUT,
            "/v1/mentions/0191e1c2-7b3a-7cc0-8f5e-1a2b3c4d5e6f",
        ),
        (Method::GET, "/v1/audit"),
        (Method::GET, "/v1/audit/verify"),
        (Method::GET, "/v1/tasks"),
        (
            Method::POST,
            "/v1/tasks/0191e1c2-7b3a-7cc0-8f5e-1a2b3c4d5e6f/retry",
        ),
    ];
    for (method, path) in routes {
        let missing = app.send(app.request(method.clone(), path, None)).await;
        assert_problem(missing, 401, "unauthorized").await;
        let bogus = app
            .send(app.request(method.clone(), path, Some("smt_not-a-token")))
            .await;
        assert_problem(bogus, 401, "unauthorized").await;
    }
}

#[tokio::test]
async fn public_routes_answer_without_a_token() {
    let app = TestApp::spawn().await;
    for path in [
        "/v1/status",
        "/v1/status/health",
        "/healthz",
        "/metrics",
        "/openapi.json",
        "/docs",
        "/docs/swagger-ui-bundle.js",
    ] {
        let response = app.send(app.request(Method::GET, path, None)).await;
        assert_eq!(response.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn a_revoked_token_is_refused_with_401() {
    let app = TestApp::spawn().await;
    let agent = app.user(Role::Agent, "ann@example.com").await;
    let other_token = app.token_for(&agent.user).await;

    let logout = app
        .send(app.request(Method::POST, "/v1/users/logout", Some(&agent.token)))
        .await;
    assert_eq!(logout.status(), 204);

    let after = app
        .send(app.request(Method::GET, "/v1/me", Some(&agent.token)))
        .await;
    assert_problem(after, 401, "unauthorized").await;
    // Only that token is revoked.
    app.get_json("/v1/me", &other_token).await;
}

#[tokio::test]
async fn an_agent_is_forbidden_from_admin_routes_with_403() {
    let app = TestApp::spawn().await;
    let agent = app.user(Role::Agent, "ann@example.com").await;
    let create = app
        .request(Method::POST, "/v1/users", Some(&agent.token))
        .json(&json!({"email": "x@example.com", "name": "X", "password": "long enough", "role": "admin"}));
    assert_problem(app.send(create).await, 403, "forbidden").await;
    let verify = app.request(Method::GET, "/v1/audit/verify", Some(&agent.token));
    assert_problem(app.send(verify).await, 403, "forbidden").await;
    let retry = app.request(
        Method::POST,
        "/v1/tasks/0191e1c2-7b3a-7cc0-8f5e-1a2b3c4d5e6f/retry",
        Some(&agent.token),
    );
    assert_problem(app.send(retry).await, 403, "forbidden").await;
}

#[tokio::test]
async fn an_admin_creates_a_user_who_can_log_in_and_the_email_cannot_be_taken_twice() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin, "root@example.com").await;
    let body = json!({"email": "Bob@Example.com", "name": "Bob", "password": "s3cret-enough", "role": "agent"});
    let created = app
        .send(
            app.request(Method::POST, "/v1/users", Some(&admin.token))
                .json(&body),
        )
        .await;
    assert_eq!(created.status(), 201);
    let user: serde_json::Value = created.json().await.expect("json");
    assert_eq!(user["role"], "agent");

    assert_eq!(
        login(&app, "bob@example.com", "s3cret-enough")
            .await
            .status(),
        200
    );

    let again = json!({"email": "bob@EXAMPLE.com", "name": "Bob 2", "password": "s3cret-enough", "role": "agent"});
    let duplicate = app
        .send(
            app.request(Method::POST, "/v1/users", Some(&admin.token))
                .json(&again),
        )
        .await;
    let problem = assert_problem(duplicate, 409, "email_taken").await;
    assert_eq!(problem["field"], "email");

    let audit = app
        .get_json("/v1/audit?entity=user&action=user.created", &admin.token)
        .await;
    assert_eq!(audit["result"][0]["entityId"], user["id"]);
    assert_eq!(
        audit["result"][0]["actor"],
        format!("user:{}", admin.user.id)
    );
    let payload = audit["result"][0]["payload"].to_string();
    assert!(!payload.contains("s3cret"), "{payload}");
}

#[tokio::test]
async fn repeated_failed_logins_from_one_address_get_429_with_retry_after() {
    let app = TestApp::spawn().await;
    app.user(Role::Agent, "ann@example.com").await;
    for _ in 0..5 {
        assert_eq!(login(&app, "ann@example.com", "guess").await.status(), 401);
    }
    // The sixth failure starts a block; from then on even the right password waits.
    assert_eq!(login(&app, "ann@example.com", "guess").await.status(), 401);
    let blocked = login(&app, "ann@example.com", PASSWORD).await;
    let retry_after: u64 = blocked
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!(retry_after >= 1, "{retry_after}");
    assert_problem(blocked, 429, "login_throttled").await;
}

/// A login to `app` sent from `source` (another loopback address: another client, as the
/// server sees it).
async fn login_from(app: &TestApp, source: [u8; 4], email: &str, password: &str) -> u16 {
    let client = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(source))
        .build()
        .expect("client");
    client
        .post(app.url("/v1/users/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .expect("request reaches the api")
        .status()
        .as_u16()
}

#[tokio::test]
async fn fifty_parallel_wrong_passwords_for_one_account_check_a_handful_and_refuse_the_rest() {
    let app = TestApp::spawn().await;
    app.user(Role::Agent, "ann@example.com").await;
    let attempts = (0..50).map(|_| login(&app, "ann@example.com", "guess"));
    let answers = futures_util::future::join_all(attempts).await;
    let mut statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    statuses.sort_unstable();
    let checked = statuses.iter().filter(|&&s| s == 401).count();
    let refused = statuses.iter().filter(|&&s| s == 429).count();
    // Five free failures; then one per block, as each one ends while the burst is still
    // arriving (blocks of 1 s, 2 s, 4 s…: a burst would need a minute to get 12 checked).
    assert!(checked <= 12, "{statuses:?}");
    assert!(refused >= 38, "{statuses:?}");
    assert_eq!(checked + refused, 50, "{statuses:?}");
    let wait = answers
        .iter()
        .filter_map(|r| {
            r.headers()
                .get("retry-after")?
                .to_str()
                .ok()?
                .parse::<u64>()
                .ok()
        })
        .max()
        .expect("a Retry-After");

    tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
    let response = login(&app, "ann@example.com", PASSWORD).await;
    assert_eq!(response.status(), 200, "the right password after the block");
}

/// The default throttle with blocks that outlast a slow test.
fn long_blocks() -> LoginThrottle {
    LoginThrottle {
        first_block: std::time::Duration::from_secs(120),
        ..LoginThrottle::default()
    }
}

#[tokio::test]
async fn guessing_one_account_from_many_addresses_is_throttled_by_account() {
    let app = TestApp::spawn_with_login_throttle(long_blocks()).await;
    app.user(Role::Agent, "ann@example.com").await;
    for n in 0..6 {
        assert_eq!(
            login_from(&app, [127, 0, 0, 10 + n], "ann@example.com", "guess").await,
            401
        );
    }
    assert_eq!(
        login_from(&app, [127, 0, 0, 30], "ann@example.com", PASSWORD).await,
        429,
        "the account is blocked for a moment, wherever the attempt comes from"
    );
}

#[tokio::test]
async fn signing_in_to_ones_own_account_does_not_clear_an_address_that_guesses_others() {
    let app = TestApp::spawn_with_login_throttle(long_blocks()).await;
    app.user(Role::Agent, "mallory@example.com").await;
    let source = [127, 0, 0, 40];
    // 20 failures (the address's free ones), 5 on each of four accounts (their free ones).
    for victim in 0..4 {
        for _ in 0..5 {
            let email = format!("victim{victim}@example.com");
            assert_eq!(login_from(&app, source, &email, "guess").await, 401);
        }
    }
    assert_eq!(
        login_from(&app, source, "mallory@example.com", PASSWORD).await,
        200
    );
    // The address's failures still count: the next one blocks it.
    assert_eq!(
        login_from(&app, source, "victim4@example.com", "guess").await,
        401
    );
    assert_eq!(
        login_from(&app, source, "mallory@example.com", PASSWORD).await,
        429
    );
}

#[tokio::test]
async fn unknown_tokens_cost_a_bounded_number_of_lookups_per_address_and_valid_ones_nothing() {
    let app = TestApp::spawn().await;
    let agent = app.user(Role::Agent, "ann@example.com").await;
    let me = |token: String| app.send(app.request(Method::GET, "/v1/me", Some(&token)));
    // Not even shaped like a token: refused without a look-up, however many.
    for _ in 0..30 {
        assert_problem(me("smt_nope".to_owned()).await, 401, "unauthorized").await;
    }
    for _ in 0..40 {
        assert_eq!(me(agent.token.clone()).await.status(), 200);
    }
    let mut statuses = Vec::new();
    for n in 0..30 {
        let guess = format!("smt_{n:064x}");
        statuses.push(me(guess).await.status().as_u16());
    }
    let looked_up = statuses.iter().filter(|&&s| s == 401).count();
    assert!((20..=22).contains(&looked_up), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
}
