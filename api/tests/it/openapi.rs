//! The OpenAPI document and the viewer.

use crate::app::TestApp;
use reqwest::Method;
use std::path::PathBuf;

fn snapshot_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/openapi.json")
}

/// Run with `UPDATE_SNAPSHOTS=1` to accept a changed document (then review the diff).
#[test]
fn the_openapi_document_matches_the_reviewed_snapshot() {
    let document = api::routes::openapi()
        .to_pretty_json()
        .expect("serializable document")
        + "\n";
    let path = snapshot_path();
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &document).expect("write snapshot");
    }
    let reviewed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        reviewed == document,
        "the OpenAPI document changed; review it and run with UPDATE_SNAPSHOTS=1 to accept"
    );
}

#[tokio::test]
async fn the_served_document_is_openapi_3_1_and_the_viewer_is_served_without_internet() {
    let app = TestApp::spawn().await;
    let document: serde_json::Value = app
        .send(app.request(Method::GET, "/openapi.json", None))
        .await
        .json()
        .await
        .expect("json");
    assert!(
        document["openapi"]
            .as_str()
            .expect("version")
            .starts_with("3.1")
    );
    for path in [
        "/v1/mentions",
        "/v1/mentions/{id}",
        "/v1/users/login",
        "/v1/tasks/{id}/retry",
    ] {
        assert!(document["paths"][path].is_object(), "{path} missing");
    }
    assert!(document["components"]["securitySchemes"]["bearer"].is_object());

    let page = app
        .send(app.request(Method::GET, "/docs", None))
        .await
        .text()
        .await
        .expect("html");
    assert!(page.contains("url: '/openapi.json'"), "{page}");
    assert!(
        !page.contains("https://"),
        "the page loads nothing from the internet"
    );
    let script = app
        .send(app.request(Method::GET, "/docs/swagger-ui-bundle.js", None))
        .await;
    assert_eq!(script.status(), 200);
    assert!(script.bytes().await.expect("bytes").len() > 100_000);
}
