//! Every JSON answer is `application/json; charset=utf-8`, as Ayrshare's test scripts assert.

use serde_json::json;

use crate::support::{Answer, small, spawn};

const JSON_UTF8: &str = "application/json; charset=utf-8";

fn content_type(a: &Answer) -> &str {
    a.headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test]
async fn successes_errors_faults_429s_and_control_answers_are_json_in_utf_8() {
    let t = spawn(simulator::SimConfig {
        rate_limit: 3,
        ..small()
    })
    .await;
    let success = t.api_get("/history?platform=twitter").await;
    assert_eq!(success.status, 200);
    assert_eq!(content_type(&success), JSON_UTF8);

    let invalid = t.api_get("/history?lastDays=soon").await;
    invalid.assert_error(400);
    assert_eq!(content_type(&invalid), JSON_UTF8);

    t.set_faults(
        json!({"rules": [{"endpoint": "user", "fault": "status", "status": 503, "count": 1}]}),
    )
    .await;
    let injected = t.api_get("/user").await;
    injected.assert_error(503);
    assert_eq!(content_type(&injected), JSON_UTF8);

    let limited = t.api_get("/user").await;
    limited.assert_error(429);
    assert_eq!(content_type(&limited), JSON_UTF8);

    let unauthorized = t
        .client
        .get(format!("{}/user", t.sim.api_url()))
        .send()
        .await
        .expect("request succeeds");
    assert_eq!(unauthorized.status(), 401);
    assert_eq!(unauthorized.headers()["content-type"], JSON_UTF8);

    for path in ["/stats", "/ledger", "/faults"] {
        let control = t
            .client
            .get(format!("{}/_sim{path}", t.sim.base_url()))
            .send()
            .await
            .expect("control answers");
        assert_eq!(control.status(), 200, "{path}");
        assert_eq!(control.headers()["content-type"], JSON_UTF8, "{path}");
    }
    let refused = t.control_post("/faults", &json!({"typo": 1})).await;
    assert_eq!(refused.status, 400);
    assert_eq!(content_type(&refused), JSON_UTF8);
}
