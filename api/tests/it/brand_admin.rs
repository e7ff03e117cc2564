//! The brand routes: admins list, create and change brands; agents list their own brands only
//! and change none; each uniqueness rule and invalid field has its own answer; a Profile-Key
//! goes in and never comes out: in no answer, audit row or column in clear, and in no log line
//! of the api that takes it or of the ingestor and replier that send it.

use crate::app::{SignedIn, TestApp, assert_problem, count, settings};
use crate::stack::{Options, Stack};
use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use shared::brands::{self, BrandsKey, DEFAULT_BRAND};
use shared::domain::{BrandId, Platform, Role};
use shared::testing::{Process, TestBroker, TestDb, admin_token, free_port, sim_get, wait_http_ok};
use std::collections::HashMap;
use std::time::Duration;

const BRANDS_KEY: &str = "5f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

fn brands_key() -> BrandsKey {
    BrandsKey::from_hex(BRANDS_KEY).expect("64 hex digits")
}

/// An app whose settings have `BRANDS_KEY`.
async fn keyed_app() -> TestApp {
    let mut settings = settings();
    settings.brands_key = Some(brands_key());
    TestApp::spawn_with_settings(&settings).await
}

/// `method path` with `body` as `who`.
async fn call(
    app: &TestApp,
    who: &SignedIn,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app.request(method, path, Some(&who.token));
    if let Some(body) = body {
        request = request.json(&body);
    }
    app.send(request).await
}

async fn create(app: &TestApp, admin: &SignedIn, body: Value) -> Value {
    let response = call(app, admin, Method::POST, "/v1/brands", Some(body)).await;
    let status = response.status();
    let brand: Value = response.json().await.expect("json");
    assert_eq!(status, 201, "{brand}");
    brand
}

async fn patch(app: &TestApp, admin: &SignedIn, id: &str, body: Value) -> Value {
    let path = format!("/v1/brands/{id}");
    let response = call(app, admin, Method::PATCH, &path, Some(body)).await;
    let status = response.status();
    let brand: Value = response.json().await.expect("json");
    assert_eq!(status, 200, "{brand}");
    brand
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("an array of brands")
        .iter()
        .map(|b| b["name"].as_str().expect("name"))
        .collect()
}

#[tokio::test]
async fn an_admin_creates_renames_and_disables_a_brand_and_agents_list_only_their_own() {
    let app = keyed_app().await;
    let admin = app.user(Role::Admin, "root@example.com").await;
    let acme = create(
        &app,
        &admin,
        json!({"name": "  Acme  ", "profileKey": "pk-acme-0001", "platforms": ["twitter", "facebook"]}),
    )
    .await;
    let id = acme["id"].as_str().expect("id").to_owned();
    assert_eq!(acme["name"], "Acme", "trimmed: {acme}");
    assert_eq!(acme["hasProfileKey"], true, "{acme}");
    assert_eq!(acme["platforms"], json!(["twitter", "facebook"]), "{acme}");
    assert_eq!(acme["disabled"], false, "{acme}");
    assert_eq!(acme["disabledAt"], Value::Null, "{acme}");
    assert!(acme.get("profileKey").is_none(), "{acme}");

    let listed = app.get_json("/v1/brands", &admin.token).await;
    assert_eq!(names(&listed), ["Acme", "Default"], "{listed}");
    assert_eq!(listed[1]["hasProfileKey"], false, "{listed}");
    assert_eq!(listed[1]["platforms"], Value::Null, "{listed}");

    let renamed = patch(&app, &admin, &id, json!({"name": "Acme Corp"})).await;
    assert_eq!(renamed["name"], "Acme Corp");
    assert_eq!(renamed["platforms"], json!(["twitter", "facebook"]), "kept");
    let every = patch(&app, &admin, &id, json!({"platforms": null})).await;
    assert_eq!(every["platforms"], Value::Null, "{every}");
    let configured = [Platform::Facebook, Platform::Twitter, Platform::Youtube];
    let brand: BrandId = id.parse().expect("uuid");
    let watched = |watches: Vec<brands::Watch>| watches.into_iter().map(|w| w.brand).collect();
    let polled: Vec<BrandId> = watched(
        brands::watching(app.db.conn(), &configured)
            .await
            .expect("watching"),
    );
    assert!(polled.contains(&brand), "{polled:?}");

    let disabled = patch(&app, &admin, &id, json!({"disabled": true})).await;
    assert_eq!(disabled["disabled"], true, "{disabled}");
    assert!(disabled["disabledAt"].is_string(), "{disabled}");
    assert_eq!(disabled["name"], "Acme Corp", "{disabled}");
    let polled: Vec<BrandId> = watched(
        brands::watching(app.db.conn(), &configured)
            .await
            .expect("watching"),
    );
    assert_eq!(polled, [DEFAULT_BRAND], "a disabled brand is not polled");
    let listed = app.get_json("/v1/brands", &admin.token).await;
    assert_eq!(
        names(&listed),
        ["Acme Corp", "Default"],
        "still listed: {listed}"
    );

    // Ann works for Acme only, Bob for the default brand.
    let ann = app.user(Role::Agent, "ann@example.com").await;
    let bob = app.user(Role::Agent, "bob@example.com").await;
    let moved = call(
        &app,
        &admin,
        Method::PATCH,
        &format!("/v1/users/{}", ann.user.id),
        Some(json!({"brandIds": [id]})),
    )
    .await;
    assert_eq!(moved.status(), 200);
    let anns = app.get_json("/v1/brands", &ann.token).await;
    assert_eq!(names(&anns), ["Acme Corp"], "{anns}");
    assert_eq!(anns[0]["id"], id.as_str());
    let bobs = app.get_json("/v1/brands", &bob.token).await;
    assert_eq!(names(&bobs), ["Default"], "{bobs}");

    let refused = call(
        &app,
        &ann,
        Method::POST,
        "/v1/brands",
        Some(json!({"name": "Mine", "profileKey": "pk-ann"})),
    )
    .await;
    assert_problem(refused, 403, "forbidden").await;
    let refused = call(
        &app,
        &ann,
        Method::PATCH,
        &format!("/v1/brands/{id}"),
        Some(json!({"disabled": false})),
    )
    .await;
    assert_problem(refused, 403, "forbidden").await;
    let listed = app.get_json("/v1/brands", &admin.token).await;
    assert_eq!(names(&listed), ["Acme Corp", "Default"], "{listed}");
    assert_eq!(
        listed[0]["disabled"], true,
        "the agent changed nothing: {listed}"
    );

    // Each change is in the audit trail, naming the fields.
    let trail = app
        .get_json(
            &format!("/v1/audit?entity=brand&entityId={id}"),
            &admin.token,
        )
        .await;
    let rows: Vec<(&str, &Value)> = trail["result"]
        .as_array()
        .expect("result")
        .iter()
        .rev()
        .map(|r| (r["action"].as_str().expect("action"), &r["payload"]))
        .collect();
    let actions: Vec<&str> = rows.iter().map(|(a, _)| *a).collect();
    assert_eq!(
        actions,
        [
            "brand.created",
            "brand.updated",
            "brand.updated",
            "brand.updated"
        ],
        "{trail}"
    );
    assert_eq!(
        rows[0].1["fields"],
        json!(["name", "profileKey", "platforms"]),
        "{trail}"
    );
    assert_eq!(rows[1].1["name"], "Acme Corp", "{trail}");
    assert_eq!(rows[3].1["disabled"], true, "{trail}");
    assert!(!trail.to_string().contains("pk-acme-0001"), "{trail}");
}

#[tokio::test]
async fn taken_names_profile_keys_and_primary_profile_are_each_a_409_with_its_code() {
    let app = keyed_app().await;
    let admin = app.user(Role::Admin, "root@example.com").await;
    let acme = create(
        &app,
        &admin,
        json!({"name": "Acme", "profileKey": "pk-acme"}),
    )
    .await;
    create(
        &app,
        &admin,
        json!({"name": "Globex", "profileKey": "pk-globex"}),
    )
    .await;

    let cases = [
        (
            json!({"name": "ACME", "profileKey": "pk-other"}),
            "brand_name_taken",
            "name",
        ),
        (
            json!({"name": "Initech", "profileKey": "pk-acme"}),
            "profile_key_taken",
            "profileKey",
        ),
        (
            json!({"name": "Initech"}),
            "primary_profile_taken",
            "profileKey",
        ),
    ];
    for (body, code, field) in cases {
        let response = call(&app, &admin, Method::POST, "/v1/brands", Some(body.clone())).await;
        let problem = assert_problem(response, 409, code).await;
        assert_eq!(problem["field"], field, "{body}: {problem}");
    }
    let path = format!("/v1/brands/{}", acme["id"].as_str().expect("id"));
    let cases = [
        (json!({"name": "globex"}), "brand_name_taken"),
        (json!({"profileKey": "pk-globex"}), "profile_key_taken"),
    ];
    for (body, code) in cases {
        let response = call(&app, &admin, Method::PATCH, &path, Some(body)).await;
        assert_problem(response, 409, code).await;
    }
    let listed = app.get_json("/v1/brands", &admin.token).await;
    assert_eq!(names(&listed), ["Acme", "Default", "Globex"], "{listed}");

    // Without BRANDS_KEY a Profile-Key cannot be stored.
    let unkeyed = TestApp::spawn().await;
    let admin = unkeyed.user(Role::Admin, "root@example.com").await;
    let response = call(
        &unkeyed,
        &admin,
        Method::POST,
        "/v1/brands",
        Some(json!({"name": "Acme", "profileKey": "pk-acme"})),
    )
    .await;
    let problem = assert_problem(response, 409, "brands_key_not_set").await;
    assert_eq!(problem["field"], "profileKey", "{problem}");
    let path = format!("/v1/brands/{DEFAULT_BRAND}");
    let response = call(
        &unkeyed,
        &admin,
        Method::PATCH,
        &path,
        Some(json!({"profileKey": "pk-acme"})),
    )
    .await;
    assert_problem(response, 409, "brands_key_not_set").await;
    let listed = unkeyed.get_json("/v1/brands", &admin.token).await;
    assert_eq!(names(&listed), ["Default"], "{listed}");
    assert_eq!(listed[0]["hasProfileKey"], false, "{listed}");
}

#[tokio::test]
async fn invalid_fields_are_422_naming_the_field_and_unknown_ids_404() {
    let app = keyed_app().await;
    let admin = app.user(Role::Admin, "root@example.com").await;
    let long_name = "n".repeat(brands::MAX_NAME_LEN + 1);
    let long_key = "k".repeat(brands::MAX_PROFILE_KEY_LEN + 1);
    let creates = [
        (json!({"name": " \t "}), "name"),
        (json!({"name": long_name}), "name"),
        (json!({"profileKey": "pk-1"}), "name"),
        (json!({"name": "A", "profileKey": ""}), "profileKey"),
        (
            json!({"name": "A", "profileKey": "pk with space"}),
            "profileKey",
        ),
        (json!({"name": "A", "profileKey": long_key}), "profileKey"),
        (json!({"name": "A", "profileKey": null}), "profileKey"),
        (
            json!({"name": "A", "profileKey": "pk-1", "platforms": ["myspace"]}),
            "platforms[0]",
        ),
        (
            json!({"name": "A", "profileKey": "pk-1", "platforms": []}),
            "platforms",
        ),
        (
            json!({"name": "A", "profileKey": "pk-1", "platforms": null}),
            "platforms",
        ),
        (
            json!({"name": "A", "profileKey": "pk-1", "disabled": true}),
            "disabled",
        ),
    ];
    for (body, field) in creates {
        let response = call(&app, &admin, Method::POST, "/v1/brands", Some(body.clone())).await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(problem["field"], field, "{body}: {problem}");
    }
    let default = format!("/v1/brands/{DEFAULT_BRAND}");
    let patches = [
        (json!({}), Value::Null),
        (json!({"name": null}), json!("name")),
        (json!({"name": ""}), json!("name")),
        (json!({"profileKey": null}), json!("profileKey")),
        (json!({"disabled": null}), json!("disabled")),
        (json!({"platforms": ["myspace"]}), json!("platforms[0]")),
        (
            json!({"platforms": ["twitter", "youtube", "twitter"]}),
            json!("platforms[2]"),
        ),
        (json!({"color": "red"}), json!("color")),
    ];
    for (body, field) in patches {
        let response = call(&app, &admin, Method::PATCH, &default, Some(body.clone())).await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(
            problem.get("field").unwrap_or(&Value::Null),
            &field,
            "{body}: {problem}"
        );
    }
    let response = call(
        &app,
        &admin,
        Method::PATCH,
        "/v1/brands/not-a-uuid",
        Some(json!({"disabled": true})),
    )
    .await;
    assert_problem(response, 422, "validation_failed").await;
    let unknown = format!("/v1/brands/{}", BrandId::new());
    let response = call(
        &app,
        &admin,
        Method::PATCH,
        &unknown,
        Some(json!({"disabled": true})),
    )
    .await;
    assert_problem(response, 404, "not_found").await;
    let listed = app.get_json("/v1/brands", &admin.token).await;
    assert_eq!(names(&listed), ["Default"], "nothing was written: {listed}");
    assert_eq!(listed[0]["disabled"], false, "{listed}");
}

/// Text of the Profile-Keys below that must not appear anywhere.
const CANARY: &str = "LEAKCANARY";

#[tokio::test]
async fn a_profile_key_appears_in_no_answer_log_line_audit_row_or_column_in_clear() {
    let (db, broker) = tokio::join!(TestDb::new(), TestBroker::new());
    let addr = format!("127.0.0.1:{}", free_port());
    let base = format!("http://{addr}");
    let env: HashMap<String, String> = [
        ("DATABASE_URL", db.url()),
        ("AMQP_URL", broker.url()),
        ("SOCIAL_MEDIA_API_URL", "http://127.0.0.1:9/api"),
        ("API_ADDR", &addr),
        ("BRANDS_KEY", BRANDS_KEY),
        ("RUST_LOG", "trace"),
        ("SHUTDOWN_GRACE_SECONDS", "2"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let mut api = Process::spawn("api", &[], &env);
    let http = reqwest::Client::new();
    wait_http_ok(&http, &format!("{base}/healthz"), Duration::from_secs(30)).await;
    let token = admin_token(
        &http,
        &base,
        "api",
        &env,
        ("root@example.com", "a long password"),
    )
    .await;
    let first = format!("pk-{CANARY}-first");
    let second = format!("pk-{CANARY}-second");

    let mut answers = Vec::new();
    let mut send = async |method: Method, path: &str, body: Option<Value>| -> (u16, Value) {
        let mut request = http
            .request(method, format!("{base}{path}"))
            .bearer_auth(&token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("api reachable");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        answers.push(text.clone());
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    };
    let (status, brand) = send(
        Method::POST,
        "/v1/brands",
        Some(json!({"name": "Acme", "profileKey": first})),
    )
    .await;
    assert_eq!(status, 201, "{brand}");
    let id = brand["id"].as_str().expect("id").to_owned();
    let path = format!("/v1/brands/{id}");
    // Refusals that hold the key: taken, and invalid.
    let (status, _) = send(
        Method::POST,
        "/v1/brands",
        Some(json!({"name": "Other", "profileKey": first})),
    )
    .await;
    assert_eq!(status, 409);
    let (status, _) = send(
        Method::PATCH,
        &path,
        Some(json!({"profileKey": format!("{second} x")})),
    )
    .await;
    assert_eq!(status, 422);
    let (status, brand) = send(Method::PATCH, &path, Some(json!({"profileKey": second}))).await;
    assert_eq!(status, 200, "{brand}");
    assert_eq!(brand["hasProfileKey"], true, "{brand}");
    let (status, listed) = send(Method::GET, "/v1/brands", None).await;
    assert_eq!(status, 200, "{listed}");
    let (status, trail) = send(Method::GET, "/v1/audit?entity=brand", None).await;
    assert_eq!(status, 200, "{trail}");
    assert_eq!(trail["result"].as_array().map(Vec::len), Some(2), "{trail}");

    api.terminate();
    api.wait_exit(Duration::from_secs(30));
    let output = api.output();
    assert!(
        output.contains("/v1/brands") && output.contains("TRACE"),
        "the api logged its requests at trace level:\n{output}"
    );
    assert!(
        !output.contains(CANARY),
        "a Profile-Key in the log:\n{output}"
    );
    for answer in &answers {
        assert!(
            !answer.contains(CANARY),
            "a Profile-Key in an answer: {answer}"
        );
    }

    // Stored sealed: not in clear, yet it opens to the last key given.
    let brand: BrandId = id.parse().expect("uuid");
    let leaks = count(
        db.conn(),
        &format!(
            "SELECT count(*) FROM brands WHERE position(convert_to('{CANARY}', 'UTF8') IN profile_key) > 0 \
             OR position(convert_to('{CANARY}', 'UTF8') IN profile_key_hash) > 0 \
             OR encode(profile_key, 'escape') LIKE '%{CANARY}%'"
        ),
    )
    .await;
    assert_eq!(leaks, 0, "a Profile-Key stored in clear");
    let profile = brands::profile(db.conn(), Some(&brands_key()), brand)
        .await
        .expect("the sealed key opens");
    let opened = profile.profile_key.expect("a key is stored");
    assert_eq!(opened.expose_secret(), second);
    let audit_leaks = count(
        db.conn(),
        &format!("SELECT count(*) FROM audit_log WHERE payload::text LIKE '%{CANARY}%'"),
    )
    .await;
    assert_eq!(audit_leaks, 0, "a Profile-Key in the audit log");
}

#[tokio::test]
async fn the_ingestor_and_replier_that_use_a_brands_profile_key_log_it_nowhere() {
    let stack = Stack::start(Options {
        env: &[
            ("SOCIAL_PLATFORMS", "twitter"),
            ("BRANDS_KEY", BRANDS_KEY),
            ("RUST_LOG", "trace"),
        ],
        ..Options::default()
    })
    .await;
    let key = format!("pk-{CANARY}-worker");
    let created = stack
        .api(
            "POST",
            "/v1/brands",
            Some(json!({"name": "Acme", "profileKey": key})),
        )
        .await;
    let brand = created["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_owned();

    // The ingestor reads Acme's world with its key and stores its mentions as Acme's. Its
    // messages may come in before its comments, and the reply below answers a comment.
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let stored =
        format!("SELECT count(*) FROM mentions WHERE brand_id = '{brand}' AND type = 'comment'");
    while stack.scalar(&stored).await == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no mention of the brand stored\n{}",
            stack.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let world = sim_get(
        &stack.http,
        &stack.sim_base,
        &format!("stats?profile={key}"),
    )
    .await;
    assert!(world["total"].as_u64() > Some(0), "{world}");

    // The replier sends a reply to one of them with the key.
    let page = stack
        .api(
            "GET",
            &format!("/v1/mentions?brandId={brand}&type=comment&limit=1"),
            None,
        )
        .await;
    let mention = page["result"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{page}"));
    let reply = stack
        .api(
            "POST",
            &format!("/v1/mentions/{mention}/reply"),
            Some(json!({"content": "Thanks for writing"})),
        )
        .await;
    assert!(reply["id"].is_string(), "{reply}");
    let sent = format!(
        "SELECT count(*) FROM replies r JOIN mentions m ON m.id = r.mention_id \
         WHERE m.brand_id = '{brand}' AND r.status = 'sent'"
    );
    while stack.scalar(&sent).await == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the reply was not sent\n{}",
            stack.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ledger = sim_get(
        &stack.http,
        &stack.sim_base,
        &format!("ledger?profile={key}"),
    )
    .await;
    assert_eq!(
        ledger["replies"].as_array().map(Vec::len),
        Some(1),
        "{ledger}"
    );

    for (name, output) in stack.stop() {
        assert!(output.contains("TRACE"), "{name} logged at trace level");
        assert!(
            !output.contains(CANARY),
            "{name} logged a Profile-Key:\n{output}"
        );
    }
}
