//! The web inbox in a real browser: Debian's Chromium driven by playwright-core
//! (`api/tests/browser/inbox.mjs`, installed by `scripts/browser-deps`) against the real
//! binaries: the simulator, api, ingestor and replier, on a database and vhost of their own.
//! Each test runs one scenario of the script and checks what it reports against the
//! simulator and the database. A failing scenario leaves screenshots of its pages in
//! `target/browser-screenshots/`.

#[path = "../common/stack.rs"]
#[allow(
    dead_code,
    reason = "the push tests of the `it` binary also start processes from its env"
)]
mod stack;

use serde_json::{Value, json};
use shared::testing::{set_faults, sim_get};
use stack::{ADMIN_EMAIL, Options, PASSWORD, Stack};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

const SCENARIO_TIMEOUT: Duration = Duration::from_secs(150);
/// The platforms of the simulated world; the reply scenario filters by the first.
const PLATFORMS: [&str; 2] = ["twitter", "facebook"];
const AGENTS: [(&str, &str); 2] = [
    ("Ada Agent", "ada@example.com"),
    ("Bo Agent", "bo@example.com"),
];
/// Seals the Profile-Keys the brand scenarios store (any 64 hex digits).
const BRANDS_KEY: &str = "8f1c2a7d4e5b6c3a9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e";
/// A second brand with mentions of its own and two agents who work only for it.
const NORTHWIND: &str = "00000000-0000-0000-0000-0000000000b2";
const NORTHWIND_MENTIONS: usize = 3;
const NORTHWIND_AGENTS: [(&str, &str); 2] = [
    ("Cy Northwind", "cy@example.com"),
    ("Di Northwind", "di@example.com"),
];

/// The whole system on a world of 64 mentions (more than a page of 50), with two agents.
async fn start() -> Stack {
    let platforms = PLATFORMS.join(",");
    let sim_args = [
        "--refresh-seconds",
        "1",
        "--platforms",
        &platforms,
        "--posts-per-platform",
        "3",
        "--comments-per-post",
        "5",
        "--post-days",
        "3",
    ];
    let env = [
        ("SOCIAL_PLATFORMS", platforms.as_str()),
        ("BRANDS_KEY", BRANDS_KEY),
    ];
    let stack = Stack::start(Options {
        sim_args: &sim_args,
        env: &env,
        webhook_secret: None,
    })
    .await;
    for (name, email) in AGENTS {
        let body = json!({"name": name, "email": email, "password": PASSWORD, "role": "agent"});
        let answer = stack.api("POST", "/v1/users", Some(body)).await;
        assert!(answer["id"].is_string(), "user not created: {answer}");
    }
    stack
}

async fn scenario(stack: &Stack, scenario: &str, total: usize) -> Value {
    scenario_with(stack, scenario, total, &[]).await
}

/// [`scenario`] with settings of its own for the script (`extra`).
async fn scenario_with(
    stack: &Stack,
    scenario: &str,
    total: usize,
    extra: &[(&str, &str)],
) -> Value {
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        browser_dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed: run scripts/browser-deps"
    );
    let [(agent_name, agent_email), (agent2_name, agent2_email)] = AGENTS;
    let total = total.to_string();
    let screenshots = screenshot_dir();
    let vars = [
        ("BASE_URL", stack.api_base.as_str()),
        ("SIM_URL", &stack.sim_base),
        ("AGENT_EMAIL", agent_email),
        ("AGENT_NAME", agent_name),
        ("AGENT2_EMAIL", agent2_email),
        ("AGENT2_NAME", agent2_name),
        ("PASSWORD", PASSWORD),
        ("PLATFORM", PLATFORMS[0]),
        ("TOTAL", &total),
        ("ADMIN_EMAIL", ADMIN_EMAIL),
        ("SCREENSHOT_DIR", screenshots.to_str().expect("utf-8 path")),
    ];
    let run = tokio::process::Command::new("node")
        .arg(browser_dir.join("inbox.mjs"))
        .arg(scenario)
        .current_dir(&browser_dir)
        .envs(vars)
        .envs(extra.iter().copied())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(SCENARIO_TIMEOUT, run)
        .await
        .unwrap_or_else(|_| panic!("{scenario} ran over {SCENARIO_TIMEOUT:?}"))
        .expect("node runs (Node.js 20 is needed)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = stdout
        .lines()
        .last()
        .and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| {
            panic!(
                "{scenario} printed no report; stderr:\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    assert!(
        output.status.success() && report["ok"] == true,
        "{scenario} failed: {report:#}\n{}",
        stack.logs()
    );
    eprintln!("{scenario}: {report}");
    report
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    target.join("browser-screenshots")
}

#[tokio::test]
async fn an_agent_signs_in_filters_opens_assigns_and_replies_and_the_provider_gets_it_once() {
    let stack = start().await;
    let mentions = stack.ingested().await;
    assert!(
        mentions > 50,
        "the world fills more than one page: {mentions}"
    );
    let report = scenario(&stack, "reply", mentions).await;
    assert_eq!(report["seen"], json!(mentions), "{report}");
    let twitter = stack
        .scalar("SELECT count(*) FROM mentions WHERE platform = 'twitter'")
        .await;
    assert_eq!(report["filtered"], json!(twitter), "{report}");
    let text = report["reply"].as_str().expect("reply text");

    // A comment is answered with a reply, a direct message with a message.
    let ledger = sim_get(&stack.http, &stack.sim_base, "ledger").await;
    let sent = ["replies", "messages"]
        .iter()
        .flat_map(|kind| ledger[kind].as_array().expect("ledger entries"))
        .filter(|entry| entry["content"] == text || entry["message"] == text)
        .count();
    assert_eq!(sent, 1, "the provider got the reply once: {ledger:#}");
    let mention = stack
        .api(
            "GET",
            &format!("/v1/mentions/{}", report["mentionId"].as_str().expect("id")),
            None,
        )
        .await;
    assert_eq!(mention["state"], "replied", "{mention:#}");
    assert_eq!(mention["disposition"], "reply", "{mention:#}");
    let users = stack.api("GET", "/v1/users", None).await;
    let ada = users
        .as_array()
        .expect("users")
        .iter()
        .find(|u| u["email"] == AGENTS[0].1)
        .expect("the agent");
    assert_eq!(mention["userId"], ada["id"], "assigned to the agent");
}

#[tokio::test]
async fn a_reply_the_provider_refuses_shows_failed_with_the_providers_message() {
    let stack = start().await;
    let mentions = stack.ingested().await;
    let fault = json!({"rules": [{"endpoint": "reply", "platform": "*", "fault": "status",
        "status": 400, "count": 1000}]});
    set_faults(&stack.http, &stack.sim_base, fault).await;
    let report = scenario(&stack, "reply-failed", mentions).await;

    let id = report["mentionId"].as_str().expect("id");
    let mention = stack.api("GET", &format!("/v1/mentions/{id}"), None).await;
    let reply = &mention["replies"][0];
    assert_eq!(reply["status"], "failed", "{mention:#}");
    let error = reply["lastError"].as_str().expect("the provider's message");
    assert_eq!(
        report["status"],
        json!(format!("failed: {error}")),
        "{report}"
    );
    let ledger = sim_get(&stack.http, &stack.sim_base, "ledger").await;
    assert_eq!(ledger["replies"], json!([]), "nothing was sent: {ledger:#}");
}

#[tokio::test]
async fn a_comment_posted_to_the_provider_appears_in_an_open_inbox_within_five_seconds() {
    let stack = start().await;
    let mentions = stack.ingested().await;
    let report = scenario(&stack, "live", mentions).await;
    assert!(report["elapsedMs"].as_u64() <= Some(5000), "{report}");
}

#[tokio::test]
async fn two_agents_on_the_same_mention_see_each_other_viewing_and_replying() {
    let stack = start().await;
    let mentions = stack.ingested().await;
    scenario(&stack, "presence", mentions).await;
}

#[tokio::test]
async fn a_wrong_password_is_a_visible_message_and_signs_nobody_in() {
    let stack = start().await;
    let report = scenario(&stack, "wrong-password", 0).await;
    assert_eq!(report["message"], "Wrong email or password.");
    let tokens = stack
        .scalar("SELECT count(*) FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE u.email = 'ada@example.com'")
        .await;
    assert_eq!(tokens, 0, "no token was issued");
}

#[tokio::test]
async fn an_admin_creates_changes_and_disables_a_user_retries_a_dead_task_and_reads_the_status() {
    let stack = start().await;
    let mentions = stack.ingested().await;
    // A task that ran out of attempts (as the worker leaves one).
    let dead = stack
        .owner_scalar(
            "WITH one AS (SELECT id FROM tasks WHERE status = 'succeeded' ORDER BY created_at LIMIT 1) \
             UPDATE tasks SET status = 'dead', last_error = 'provider kept failing' \
             FROM one WHERE tasks.id = one.id RETURNING tasks.id::text",
        )
        .await;
    let report = scenario(&stack, "admin", mentions).await;
    assert_eq!(report["retried"], json!(dead), "{report}");

    let users = stack.api("GET", "/v1/users", None).await;
    let created = users
        .as_array()
        .expect("users")
        .iter()
        .find(|u| u["email"] == report["created"])
        .unwrap_or_else(|| panic!("the new user is not listed: {users:#}"));
    assert_eq!(created["role"], "admin", "{created}");
    assert_eq!(created["disabled"], true, "{created}");
    let status = stack
        .owner_scalar(&format!(
            "SELECT status::text FROM tasks WHERE id = '{dead}'"
        ))
        .await;
    assert_ne!(status, "dead", "the retried task is queued again");
}

/// Brand Northwind (watching no platform, so nothing polls it) with its own mentions, and
/// its two agents.
async fn add_northwind(stack: &Stack) {
    stack
        .owner_scalar(&format!(
            "INSERT INTO brands (id, name, profile_key, profile_key_hash, platforms) \
             VALUES ('{NORTHWIND}', 'Northwind', '\\x01', '\\x02', '{{}}') RETURNING id::text"
        ))
        .await;
    let inserted = stack
        .owner_scalar(&format!(
            "WITH added AS (INSERT INTO mentions (brand_id, type, platform, content, platform_ref, \
                 provider_post_ref, author_name, author_handle, created_at) \
             SELECT '{NORTHWIND}', 'comment', 'facebook', 'Does Northwind ship to Oslo? #' || n, \
                 'nw-' || n, 'nw-post', 'Nora Customer', 'nora', now() - n * interval '1 minute' \
             FROM generate_series(1, {NORTHWIND_MENTIONS}) n RETURNING 1) \
             SELECT count(*)::text FROM added"
        ))
        .await;
    assert_eq!(inserted, NORTHWIND_MENTIONS.to_string());
    for (name, email) in NORTHWIND_AGENTS {
        let body = json!({"name": name, "email": email, "password": PASSWORD, "role": "agent",
            "brandIds": [NORTHWIND]});
        let answer = stack.api("POST", "/v1/users", Some(body)).await;
        assert_eq!(answer["brandIds"], json!([NORTHWIND]), "{answer}");
    }
}

fn strings(value: &Value) -> Vec<String> {
    let mut all: Vec<String> = value
        .as_array()
        .unwrap_or_else(|| panic!("an array: {value}"))
        .iter()
        .map(|v| v.as_str().expect("a string").to_owned())
        .collect();
    all.sort();
    all
}

#[tokio::test]
async fn an_agent_of_one_brand_sees_only_its_mentions_and_can_assign_them_only_to_its_users() {
    let stack = start().await;
    let mentions = stack.ingested().await;
    add_northwind(&stack).await;
    let [(cy_name, cy_email), (di_name, di_email)] = NORTHWIND_AGENTS;
    let total = NORTHWIND_MENTIONS.to_string();
    let report = scenario_with(
        &stack,
        "brand-inbox",
        mentions,
        &[
            ("BRAND_NAME", "Northwind"),
            ("BRAND_TOTAL", &total),
            ("BRAND_AGENT_EMAIL", cy_email),
            ("BRAND_AGENT2_NAME", di_name),
        ],
    )
    .await;

    let theirs = stack
        .owner_scalar(&format!(
            "SELECT string_agg(id::text, ',' ORDER BY id) FROM mentions WHERE brand_id = '{NORTHWIND}'"
        ))
        .await;
    let theirs: Vec<String> = theirs.split(',').map(str::to_owned).collect();
    assert_eq!(
        strings(&report["ids"]),
        theirs,
        "the agent's rows: {report}"
    );
    assert_eq!(report["rowBrands"], json!(["Northwind"]), "{report}");
    assert_eq!(
        strings(&report["adminIds"]),
        theirs,
        "the admin's filter: {report}"
    );
    assert!(
        ["Default", "Northwind"]
            .iter()
            .all(|b| strings(&report["adminBrands"]).contains(&(*b).to_owned())),
        "the admin's brand filter: {report}"
    );

    // Assign to: the brand's users and the admins, nobody else, the viewer marked "(me)" (an
    // agent's GET /v1/users is narrowed by the API already; the admin's is everyone's).
    for (viewer, key) in [(cy_email, "offered"), (ADMIN_EMAIL, "adminOffered")] {
        let assignable = stack
            .owner_scalar(&format!(
                "SELECT string_agg(CASE WHEN email = '{viewer}' THEN name || ' (me)' ELSE name END, ',') \
                 FROM users WHERE role = 'admin' \
                    OR id IN (SELECT user_id FROM user_brands WHERE brand_id = '{NORTHWIND}')"
            ))
            .await;
        let mut expected: Vec<String> = assignable.split(',').map(str::to_owned).collect();
        expected.push("Unassigned".into());
        expected.sort();
        assert_eq!(strings(&report[key]), expected, "{key}: {report}");
        assert!(
            expected.contains(&cy_name.to_owned()) || expected.contains(&format!("{cy_name} (me)")),
            "{expected:?}"
        );
        assert!(!expected.contains(&AGENTS[0].0.to_owned()), "{expected:?}");
    }
    let assignee = stack
        .owner_scalar(&format!(
            "SELECT u.email FROM mentions m JOIN users u ON u.id = m.assignee_id WHERE m.id = '{}'",
            report["mentionId"].as_str().expect("id")
        ))
        .await;
    assert_eq!(assignee, di_email, "{report}");
}

#[tokio::test]
async fn an_admin_adds_renames_and_disables_a_brand_and_sees_why_a_duplicate_name_is_refused() {
    let stack = start().await;
    let report = scenario(&stack, "brand-admin", 0).await;
    let id = report["id"].as_str().expect("id");
    let stored = stack
        .owner_scalar(&format!(
            "SELECT name || '|' || array_to_string(ARRAY(SELECT unnest(platforms) ORDER BY 1), ',') \
                 || '|' || (profile_key IS NOT NULL) || '|' || (disabled_at IS NOT NULL) \
             FROM brands WHERE id = '{id}'"
        ))
        .await;
    assert_eq!(
        stored, "Globex Retail|facebook,twitter|true|true",
        "{report}"
    );
    let globex = stack
        .scalar("SELECT count(*) FROM brands WHERE lower(name) LIKE 'globex%'")
        .await;
    assert_eq!(globex, 1, "the duplicate was not stored");

    let refused = stack
        .api(
            "POST",
            "/v1/brands",
            Some(json!({"name": report["duplicate"], "profileKey": "yet-another-key"})),
        )
        .await;
    assert_eq!(refused["code"], "brand_name_taken", "{refused}");
    assert_eq!(
        report["message"], refused["detail"],
        "the page shows the API's message"
    );

    let key = report["key"].as_str().expect("key");
    let listed = stack.api("GET", "/v1/brands", None).await;
    assert!(!listed.to_string().contains(key), "{listed}");
    assert!(!stack.logs().contains(key), "the Profile-Key is in a log");
}
