//! The audit chain's head, and verify through an anchor taken from it.

use crate::app::{TestApp, assert_problem};
use reqwest::Method;
use shared::audit::{self, Actor, Entry};
use shared::domain::Role;

async fn append(app: &TestApp, n: usize) {
    for i in 0..n {
        audit::append(
            app.db.conn(),
            Entry::new(Actor::system("test"), "test.done", "test", i),
        )
        .await
        .expect("append");
    }
}

#[tokio::test]
async fn a_row_the_schema_owner_rewrote_and_rehashed_fails_verify_through_the_anchored_head() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin, "root@example.com").await;
    append(&app, 5).await;
    let head = app.get_json("/v1/audit/head", &admin.token).await;
    let seq = head["seq"].as_i64().expect("seq");
    let hash = head["hash"].as_str().expect("hash").to_owned();
    assert!(seq >= 5, "{head}");
    let anchored = format!("/v1/audit/verify?anchorSeq={seq}&anchorHash={hash}");
    let intact = app.get_json(&anchored, &admin.token).await;
    assert_eq!(intact["valid"], true, "{intact}");

    app.db.rewrite_audit_row(seq - 2).await;
    let plain = app.get_json("/v1/audit/verify", &admin.token).await;
    assert_eq!(
        plain["valid"], true,
        "without the anchor it looks intact: {plain}"
    );
    let report = app.get_json(&anchored, &admin.token).await;
    assert_eq!(report["valid"], false, "{report}");
    assert_eq!(report["firstBroken"]["id"], seq, "{report}");
    assert!(
        report["firstBroken"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("anchor")),
        "{report}"
    );
}

#[tokio::test]
async fn the_head_is_for_admins_and_an_anchor_must_be_whole_and_well_formed() {
    let app = TestApp::spawn().await;
    let admin = app.user(Role::Admin, "root@example.com").await;
    let agent = app.user(Role::Agent, "ann@example.com").await;
    let forbidden = app.request(Method::GET, "/v1/audit/head", Some(&agent.token));
    assert_problem(app.send(forbidden).await, 403, "forbidden").await;

    let hash = "0".repeat(64);
    for query in [
        "anchorSeq=1".to_owned(),
        format!("anchorHash={hash}"),
        format!("anchorSeq=0&anchorHash={hash}"),
        format!("anchorSeq=x&anchorHash={hash}"),
        format!("anchorSeq=1&anchorHash={}", "A".repeat(64)),
        "anchorSeq=1&anchorHash=abc".to_owned(),
    ] {
        let request = app.request(
            Method::GET,
            &format!("/v1/audit/verify?{query}"),
            Some(&admin.token),
        );
        assert_problem(app.send(request).await, 422, "validation_failed").await;
    }
}
