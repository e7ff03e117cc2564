//! The inbox: fields, filters, pagination, one mention with its replies.

use crate::app::{MentionSeed, TestApp, assert_problem};
use reqwest::Method;
use serde_json::Value;
use shared::domain::{MentionType, Platform, Role};
use std::collections::HashSet;

fn ids(page: &Value) -> Vec<String> {
    page["result"]
        .as_array()
        .expect("result array")
        .iter()
        .map(|m| m["id"].as_str().expect("id string").to_owned())
        .collect()
}

#[tokio::test]
async fn a_mention_is_shown_with_the_seed_field_names_and_ours() {
    let app = TestApp::spawn().await;
    let agent = app.user(Role::Agent, "ann@example.com").await;
    let mention = MentionSeed::comment("Where is my order?", 1)
        .insert(&app)
        .await;

    let page = app.get_json("/v1/mentions", &agent.token).await;
    let item = &page["result"][0];
    assert_eq!(item["id"], mention.id.to_string());
    assert_eq!(item["type"], "comment");
    assert_eq!(item["platform"], "facebook");
    assert_eq!(item["content"], "Where is my order?");
    assert_eq!(item["socialMediaPlatformRef"], mention.platform_ref);
    assert_eq!(item["socialMediaAPIPostRef"], "ayr-post-1");
    assert_eq!(item["state"], Value::Null);
    assert_eq!(item["disposition"], Value::Null);
    assert_eq!(item["userId"], Value::Null);
    assert_eq!(item["mentionId"], Value::Null);
    assert_eq!(
        item["data"]["socialMediaPayload"]["comment"],
        "Where is my order?"
    );
    assert!(item["createdAt"].is_string() && item["updatedAt"].is_string());
    assert_eq!(item["author"]["name"], "Jane Doe");
    assert_eq!(item["version"], 1);
    assert_eq!(item["reply"], Value::Null);
    assert_eq!(page["meta"]["nextCursor"], Value::Null);
    assert_eq!(page["meta"]["limit"], 50);
}

#[tokio::test]
async fn each_filter_narrows_the_list() {
    let app = TestApp::spawn().await;
    let agent = app.user(Role::Agent, "ann@example.com").await;
    let old = MentionSeed::comment("refund please", 120)
        .insert(&app)
        .await;
    let tweet = MentionSeed {
        platform: Platform::Twitter,
        ..MentionSeed::comment("love the new colours", 60)
    }
    .insert(&app)
    .await;
    let dm = MentionSeed {
        platform: Platform::Instagram,
        mention_type: MentionType::Message,
        author: "Zed Zebra",
        ..MentionSeed::comment("private question", 30)
    }
    .insert(&app)
    .await;
    let escalated = MentionSeed::comment("this is broken", 10)
        .insert(&app)
        .await;
    app.sql(&format!(
        "UPDATE mentions SET state = 'assignment', assignee_id = '{}', disposition = 'escalate' \
         WHERE id = '{}'",
        agent.user.id, escalated.id
    ))
    .await;
    let since = (chrono::Utc::now() - chrono::Duration::minutes(45)).to_rfc3339();
    let until = (chrono::Utc::now() - chrono::Duration::minutes(45)).to_rfc3339();

    let cases: Vec<(String, Vec<&shared::db::entities::mentions::Model>)> = vec![
        ("platform=twitter".into(), vec![&tweet]),
        ("platform=twitter,instagram".into(), vec![&dm, &tweet]),
        ("type=message".into(), vec![&dm]),
        ("state=assignment".into(), vec![&escalated]),
        ("state=new".into(), vec![&dm, &tweet, &old]),
        ("disposition=escalate".into(), vec![&escalated]),
        ("disposition=none".into(), vec![&dm, &tweet, &old]),
        (format!("userId={}", agent.user.id), vec![&escalated]),
        ("unassigned=true".into(), vec![&dm, &tweet, &old]),
        ("q=refund".into(), vec![&old]),
        ("q=zebra".into(), vec![&dm]),
        (
            format!("since={}", urlencode(&since)),
            vec![&escalated, &dm],
        ),
        (format!("until={}", urlencode(&until)), vec![&tweet, &old]),
        ("platform=facebook&state=new".into(), vec![&old]),
    ];
    for (query, expected) in cases {
        let page = app
            .get_json(&format!("/v1/mentions?{query}"), &agent.token)
            .await;
        let expected: Vec<String> = expected.iter().map(|m| m.id.to_string()).collect();
        assert_eq!(ids(&page), expected, "{query}");
    }
}

fn urlencode(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test]
async fn pagination_over_1000_mentions_returns_each_exactly_once_newest_first() {
    let app = TestApp::spawn().await;
    let agent = app.user(Role::Agent, "ann@example.com").await;
    // Ten mentions share each timestamp, so the id breaks ties.
    app.sql(
        "INSERT INTO mentions (type, platform, content, platform_ref, created_at) \
         SELECT 'comment', 'facebook', 'comment ' || n, 'ref-' || n, \
                now() - ((n / 10) * interval '1 second') \
         FROM generate_series(1, 1000) AS n",
    )
    .await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/mentions?limit=73&cursor={c}"),
            None => "/v1/mentions?limit=73".to_owned(),
        };
        let page = app.get_json(&path, &agent.token).await;
        let created: Vec<String> = page["result"]
            .as_array()
            .expect("array")
            .iter()
            .map(|m| m["createdAt"].as_str().expect("time").to_owned())
            .collect();
        assert!(created.windows(2).all(|w| w[0] >= w[1]), "newest first");
        seen.extend(ids(&page));
        pages += 1;
        match page["meta"]["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 100, "pagination does not end");
    }
    assert_eq!(pages, 14);
    assert_eq!(seen.len(), 1000);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 1000);
}

#[tokio::test]
async fn an_unknown_filter_value_is_a_422_naming_the_parameter() {
    let app = TestApp::spawn().await;
    let agent = app.user(Role::Agent, "ann@example.com").await;
    let cases = [
        ("platform=twitter,myspace", "platform"),
        ("type=tweet", "type"),
        ("state=done", "state"),
        ("disposition=maybe", "disposition"),
        ("userId=42", "userId"),
        ("unassigned=yes", "unassigned"),
        ("since=yesterday", "since"),
        ("until=2026-13-01", "until"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("cursor=abc", "cursor"),
    ];
    for (query, field) in cases {
        let response = app
            .send(app.request(
                Method::GET,
                &format!("/v1/mentions?{query}"),
                Some(&agent.token),
            ))
            .await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(problem["field"], field, "{query}: {problem}");
    }
}

#[tokio::test]
async fn one_mention_comes_with_its_replies_and_unknown_or_malformed_ids_are_refused() {
    let app = TestApp::spawn().await;
    let agent = app.user(Role::Agent, "ann@example.com").await;
    let mention = MentionSeed::comment("hello?", 5).insert(&app).await;
    app.sql(&format!(
        "INSERT INTO replies (mention_id, content, content_hash, requested_by, status, created_at) \
         VALUES ('{}', 'Hi there!', 'h1', '{}', 'failed', now() - interval '1 minute'), \
                ('{}', 'Hello!', 'h2', '{}', 'sent', now())",
        mention.id, agent.user.id, mention.id, agent.user.id
    ))
    .await;

    let response = app
        .send(app.request(
            Method::GET,
            &format!("/v1/mentions/{}", mention.id),
            Some(&agent.token),
        ))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers().get("etag").and_then(|v| v.to_str().ok()),
        Some("\"1\"")
    );
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["id"], mention.id.to_string());
    let replies = body["replies"].as_array().expect("replies");
    assert_eq!(replies.len(), 2);
    assert_eq!(replies[1]["content"], "Hello!");
    assert_eq!(body["reply"]["status"], "sent");

    let list = app.get_json("/v1/mentions", &agent.token).await;
    assert_eq!(list["result"][0]["reply"]["status"], "sent");

    let unknown = app
        .send(app.request(
            Method::GET,
            "/v1/mentions/0191e1c2-7b3a-7cc0-8f5e-1a2b3c4d5e6f",
            Some(&agent.token),
        ))
        .await;
    assert_problem(unknown, 404, "not_found").await;
    let malformed = app
        .send(app.request(Method::GET, "/v1/mentions/42", Some(&agent.token)))
        .await;
    let problem = assert_problem(malformed, 422, "validation_failed").await;
    assert_eq!(problem["field"], "id");
}
